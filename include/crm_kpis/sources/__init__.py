"""The sources: how the product reaches a company's CRM and helpdesk and reads what the KPIs need.

Declarations below mechanisms. The contract (`source_contract.yaml`), the adapters' declarations
(`include/sql/adapters/<name>/adapter.yaml`) and the extracts' registry are data; reading, checking
and coverage read them. From the bottom: `errors`, `sql_files`, `contract`, `adapters`,
`connections` and `typed_read`, `extracts`; then `reading` and `contract_checks`; then `loading`
and `coverage`; then the `check` command (`python -m crm_kpis.sources check|coverage`).
"""
