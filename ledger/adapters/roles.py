"""Least privilege on PostgreSQL: ``obc-ledger db init --roles``.

Four group roles (NOLOGIN; a deployment's login users are made members of one):

* ``obc_owner`` owns the event tables (DDL, migrations, the maintenance switch);
* ``obc_writer`` (ingest, consume, close-year, publish-decisions) may SELECT and INSERT
  the event tables; DELETE and TRUNCATE are not granted. UPDATE is granted on
  ``ledger_events`` only because ``LOCK TABLE … IN EXCLUSIVE MODE`` (the store's write
  lock) requires it, and on ``notification_tracking`` because single-row tracking moves
  its position forward in place; the trigger below refuses every UPDATE of an event;
* ``obc_projector`` reads the event tables and owns (writes) only the read models;
* ``obc_reader`` may SELECT the read models, row-level security limiting it to the
  contracts its login user is a party to (``obc_reader_parties``: role name → party id);
* ``obc_service`` (``obc-ledger serve``) is a member of ``obc_writer`` (its writes are the
  ledger's use cases), may SELECT, INSERT, UPDATE and DELETE the read models' rows (each
  worker catches them up in process; it owns none, so no DDL or TRUNCATE), may only SELECT
  ``service_tokens`` (issuing and revoking a token is the operator's, as a member of
  ``obc_owner``: a compromised service can neither mint a token nor revive a revoked one),
  SELECT, INSERT, UPDATE and DELETE ``service_idempotency`` (a key is claimed, completed, or
  released when its request failed) and SELECT, INSERT ``service_secrets`` (the first worker
  creates the session secret; nobody changes it) and SELECT, INSERT, DELETE ``service_signouts``
  (a session signed out, kept until its cookie would have expired). No other role may touch the
  service tables.

A trigger on ``ledger_events``, ``event_hashes``, ``record_index`` and
``ledger_snapshots`` refuses UPDATE, DELETE and TRUNCATE for everyone — the owner
and superusers too — unless the session is a member of ``obc_owner`` and has set the
maintenance switch: ``SET obc_ledger.maintenance = 'on'`` (a restore, a record-index
rebuild). Workers then run with ``CREATE_TABLE=no`` (they hold no DDL rights).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ledger.adapters.config import persistence_env
from ledger.domain.errors import LedgerError

ROLES = ("obc_owner", "obc_writer", "obc_projector", "obc_reader", "obc_service")
EVENT_TABLES = ("ledger_events", "event_hashes", "record_index", "ledger_snapshots", "notification_tracking")
APPEND_ONLY = ("ledger_events", "event_hashes", "record_index", "ledger_snapshots")
SWITCH = "obc_ledger.maintenance"
# the HTTP service's own tables (ledger.adapters.tokens) and what obc_service may do on each
SERVICE_TABLES = {
    "service_tokens": "SELECT",
    "service_idempotency": "SELECT, INSERT, UPDATE, DELETE",
    "service_secrets": "SELECT, INSERT",
    "service_signouts": "SELECT, INSERT, DELETE",
}


def statements(schema: str, read_models: list[str], party_tables: list[str]) -> list[str]:
    s = f'"{schema}"'
    out = [
        f"DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{r}') THEN CREATE ROLE {r} NOLOGIN; "
        f"END IF; END $$"
        for r in ROLES
    ]
    out.append(f"GRANT USAGE ON SCHEMA {s} TO obc_writer, obc_projector, obc_reader, obc_service")
    out.append("GRANT obc_writer TO obc_service")
    out.append(f"GRANT USAGE, CREATE ON SCHEMA {s} TO obc_owner, obc_projector")
    for table in EVENT_TABLES:
        out.append(f"ALTER TABLE {s}.{table} OWNER TO obc_owner")
        out.append(f"REVOKE ALL ON {s}.{table} FROM PUBLIC, obc_writer, obc_projector, obc_reader")
        out.append(f"GRANT SELECT, INSERT ON {s}.{table} TO obc_writer")
        out.append(f"GRANT SELECT ON {s}.{table} TO obc_projector")
    out.append(f"GRANT UPDATE ON {s}.ledger_events, {s}.notification_tracking TO obc_writer")
    out.append(f"GRANT USAGE ON ALL SEQUENCES IN SCHEMA {s} TO obc_writer")
    out.append(f"""CREATE OR REPLACE FUNCTION {s}.obc_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF coalesce(current_setting('{SWITCH}', true), '') = 'on' AND pg_has_role(session_user, 'obc_owner', 'MEMBER') THEN
    RETURN coalesce(NEW, OLD);
  END IF;
  RAISE EXCEPTION 'append_only: % of %.% is refused: the event tables only grow (maintenance: a member of obc_owner sets {SWITCH} = on)',
    TG_OP, TG_TABLE_SCHEMA, TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';
END $$""")
    out.append(f"ALTER FUNCTION {s}.obc_append_only() OWNER TO obc_owner")
    for table in APPEND_ONLY:
        out.append(f"DROP TRIGGER IF EXISTS obc_append_only ON {s}.{table}")
        out.append(
            f"CREATE TRIGGER obc_append_only BEFORE UPDATE OR DELETE ON {s}.{table} "
            f"FOR EACH ROW EXECUTE FUNCTION {s}.obc_append_only()"
        )
        out.append(f"DROP TRIGGER IF EXISTS obc_append_only_truncate ON {s}.{table}")
        out.append(
            f"CREATE TRIGGER obc_append_only_truncate BEFORE TRUNCATE ON {s}.{table} "
            f"FOR EACH STATEMENT EXECUTE FUNCTION {s}.obc_append_only()"
        )
    out.append(
        f"CREATE TABLE IF NOT EXISTS {s}.obc_reader_parties (role_name text NOT NULL, party_id text NOT NULL, "
        f"PRIMARY KEY (role_name, party_id))"
    )
    out.append(f"ALTER TABLE {s}.obc_reader_parties OWNER TO obc_owner")
    out.append(f"GRANT SELECT ON {s}.obc_reader_parties TO obc_projector")
    for table in read_models:
        out.append(f"ALTER TABLE {s}.{table} OWNER TO obc_projector")
        out.append(f"REVOKE ALL ON {s}.{table} FROM PUBLIC, obc_writer, obc_reader, obc_service")
        out.append(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {s}.{table} TO obc_service")
    for table, rights in SERVICE_TABLES.items():
        out.append(f"ALTER TABLE {s}.{table} OWNER TO obc_owner")
        out.append(
            f"REVOKE ALL ON {s}.{table} FROM PUBLIC, obc_writer, obc_projector, obc_reader, obc_service"
        )
        out.append(f"GRANT {rights} ON {s}.{table} TO obc_service")
    out.append(f"""CREATE OR REPLACE FUNCTION {s}.obc_visible_contracts() RETURNS SETOF text LANGUAGE sql STABLE
SECURITY DEFINER SET search_path = {s}, pg_temp AS $$
  SELECT p.contract_id FROM {s}.contract_parties p JOIN {s}.obc_reader_parties r ON r.party_id = p.party_id
  WHERE r.role_name = session_user $$""")
    out.append(f"ALTER FUNCTION {s}.obc_visible_contracts() OWNER TO obc_projector")
    out.append(f"REVOKE ALL ON FUNCTION {s}.obc_visible_contracts() FROM PUBLIC")
    out.append(f"GRANT EXECUTE ON FUNCTION {s}.obc_visible_contracts() TO obc_reader")
    for table in party_tables:
        out.append(f"GRANT SELECT ON {s}.{table} TO obc_reader")
        out.append(f"ALTER TABLE {s}.{table} ENABLE ROW LEVEL SECURITY")
        out.append(f"DROP POLICY IF EXISTS obc_party ON {s}.{table}")
        out.append(
            f"CREATE POLICY obc_party ON {s}.{table} FOR SELECT TO obc_reader "
            f"USING (contract_id IN (SELECT {s}.obc_visible_contracts()))"
        )
        # the service catches the read models up: every row, as their owner (the projector) sees them
        out.append(f"DROP POLICY IF EXISTS obc_service ON {s}.{table}")
        out.append(f"CREATE POLICY obc_service ON {s}.{table} TO obc_service USING (true) WITH CHECK (true)")
    return out


def init_roles(
    url: str,
    *,
    read_models: list[str],
    party_tables: list[str],
    create_tables: Callable[[], None],
    execute: bool = True,
) -> list[str]:
    """Create the event tables and read models (``create_tables``, as the connecting administrator), then
    the roles, grants, trigger and policies; returns the SQL run (or, with ``execute=False``, the SQL to run).

    ``read_models`` (every read-model table) and ``party_tables`` (those row-level security limits to a
    party's contracts) come from the wiring (``ledger.bootstrap``), which knows the projections' schema.
    """
    if not url.startswith(("postgresql://", "postgres://", "postgresql+psycopg://")):
        raise LedgerError(
            "db init --roles is for PostgreSQL; SQLite has no roles (protect its file instead)",
            code="invalid_db_url",
        )
    env = persistence_env(url)
    schema = env.get("POSTGRES_SCHEMA", "public")
    sql = statements(schema, read_models, party_tables)
    if not execute:
        return sql
    create_tables()
    plain = "postgresql://" + url.split("://", 1)[1].split("?", 1)[0]
    import psycopg  # here, not at the top: a SQLite ledger's every command would load it

    with psycopg.connect(plain, autocommit=True) as conn:
        for statement in sql:
            conn.execute(statement)
    return sql


def grant_party(conn: Any, schema: str, role_name: str, party_id: str) -> None:
    """Let login role ``role_name`` (a member of obc_reader) read the contracts ``party_id`` is party to."""
    conn.execute(
        f'INSERT INTO "{schema}".obc_reader_parties VALUES (%s, %s) ON CONFLICT DO NOTHING',
        (role_name, party_id),
    )
