"""CRM KPI reporting on Apache Airflow: sources in, KPIs computed and kept, reports rendered and delivered.

The package is layered; each package imports only those below it (checked by import-linter, the
contracts in pyproject.toml, and drawn in docs/architecture.md):

    tools                      demo data, benchmark, local and distributed Airflow, backfill CLI
    orchestration | ui         task bodies, DAG factory, timetable, deadlines, approval | history view
    delivery                   intents, email, chat, the reports store
    report                     context, what changed, KPI alerts' verdicts, charts, HTML and PDF
    history                    the warehouse: KPI history, runs, delivery intents
    compute                    one area's KPIs for one period
    sources                    connections, contract, adapters, typed reading, extracts, checks
    quality                    row rules and the quality gate
    kpis                       KPI declarations and their pandas formulas
    clv                        lifetime-value models
    config | periods | paths   reports.yaml (schema, settings), reporting periods, project folders

Importable without Airflow running; the DAGs in `dags/` only wire these functions into tasks.
"""
