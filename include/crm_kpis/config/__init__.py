"""The reports configuration (`include/config/reports.yaml`): `schema` says what the file may contain
(pydantic models, and the JSON Schema editors read); `settings` is what the product reads from it."""
