"""Tools around the product, never imported by it: the demo data and its run (`make demo`), the
benchmark (`make bench`), Airflow on this machine (`make airflow`, `make celery`) and the period
backfill command (`make backfill`)."""
