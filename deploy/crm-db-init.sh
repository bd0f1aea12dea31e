#!/usr/bin/env bash
# Runs once when the demo CRM database is created (docker-entrypoint-initdb.d): a read-only role
# for the pipeline. Tables the demo seeder creates later (as the owner) are readable by it too.
set -euo pipefail
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" <<SQL
CREATE ROLE ${CRM_READER_USER:-crm_reader} LOGIN PASSWORD '${CRM_READER_PASSWORD}';
GRANT CONNECT ON DATABASE ${POSTGRES_DB} TO ${CRM_READER_USER:-crm_reader};
GRANT USAGE ON SCHEMA public TO ${CRM_READER_USER:-crm_reader};
ALTER DEFAULT PRIVILEGES FOR ROLE ${POSTGRES_USER} IN SCHEMA public GRANT SELECT ON TABLES TO ${CRM_READER_USER:-crm_reader};
SQL
