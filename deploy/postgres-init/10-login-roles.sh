#!/usr/bin/env bash
# First start of the compose PostgreSQL only (docker-entrypoint-initdb.d): the login users the
# workers connect as, each a member of one group role. `obc-ledger db init --roles` (ledger-init)
# then gives the group roles their grants, the append-only trigger and row-level security.
set -euo pipefail
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
  -v writer="$LEDGER_WRITER_PASSWORD" -v projector="$LEDGER_PROJECTOR_PASSWORD" \
  -v service="$LEDGER_SERVICE_PASSWORD" <<'SQL'
DO $$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'obc_writer') THEN CREATE ROLE obc_writer NOLOGIN; END IF;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'obc_projector') THEN CREATE ROLE obc_projector NOLOGIN; END IF;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'obc_service') THEN CREATE ROLE obc_service NOLOGIN; END IF;
END $$;
CREATE ROLE ledger_writer LOGIN PASSWORD :'writer' IN ROLE obc_writer;
CREATE ROLE ledger_projector LOGIN PASSWORD :'projector' IN ROLE obc_projector;
CREATE ROLE ledger_service LOGIN PASSWORD :'service' IN ROLE obc_service;
SQL
