"""The demo business: a deterministic CRM and helpdesk generator, its loaders (the reference layout
and the synced layouts the adapters read), public data sets, and the `make demo` run."""
