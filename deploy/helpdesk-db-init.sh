#!/usr/bin/env bash
# Runs once when the demo helpdesk database is created: a read-only account for the pipeline.
set -euo pipefail
MYSQL_PWD="${MARIADB_ROOT_PASSWORD}" mariadb -uroot <<SQL
CREATE USER '${HELPDESK_READER_USER:-helpdesk_reader}'@'%' IDENTIFIED BY '${HELPDESK_READER_PASSWORD}';
GRANT SELECT ON \`${MARIADB_DATABASE}\`.* TO '${HELPDESK_READER_USER:-helpdesk_reader}'@'%';
SQL
