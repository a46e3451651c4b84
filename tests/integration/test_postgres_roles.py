"""Least privilege on the real PostgreSQL server: each worker role is refused what it must not do."""

import re
import secrets
from urllib.parse import urlsplit, urlunsplit

import httpx
import psycopg
import pytest

from deploy.servers import unique_name
from ledger.adapters.roles import grant_party
from ledger.adapters.tokens import TokenStore
from ledger.usecases import services_for
from ledger.usecases.application import Ledger
from projections.bootstrap import Projections
from tests.support.cli import EXAMPLES, Cli
from tests.support.service import start_service


def _as(url, user, password):
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=f"{user}:{password}@{parts.hostname}:{parts.port}"))


def _roles(postgres_url):
    """`db init --roles` on a fresh database, then one login user per group role, then the worked
    example written by the writer and projected by the projector."""
    Cli(postgres_url).ok("db", "init", "--roles")
    dbname = urlsplit(postgres_url).path.lstrip("/")
    tag = secrets.token_hex(4)
    users = {}
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        for group in ("obc_writer", "obc_projector", "obc_reader", "obc_owner", "obc_service"):
            name, password = f"{group}_{tag}", secrets.token_hex(8)
            conn.execute(f"CREATE ROLE {name} LOGIN PASSWORD '{password}' IN ROLE {group}")
            conn.execute(f'GRANT CONNECT ON DATABASE "{dbname}" TO {name}')
            users[group] = (name, _as(postgres_url, name, password))
        other = f"obc_reader_other_{tag}"
        conn.execute(f"CREATE ROLE {other} LOGIN PASSWORD 'other' IN ROLE obc_reader")
        conn.execute(f'GRANT CONNECT ON DATABASE "{dbname}" TO {other}')
        users["other_reader"] = (other, _as(postgres_url, other, "other"))
    writer = Ledger.from_url(users["obc_writer"][1])  # the writer does the ledger's real work
    services_for(writer).registration.register_contract((EXAMPLES / "worked-example.yaml").read_text())
    services_for(writer).ingest.ingest_lines(
        (EXAMPLES / "worked-example-data.jsonl").read_text().splitlines(), "example.jsonl"
    )
    services_for(writer).settlement.close_year("beds-msk", 1)
    projector_url = users["obc_projector"][1]
    Projections(Ledger.from_url(projector_url), projector_url).projector.run()
    yield users
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f'REVOKE CONNECT ON DATABASE "{dbname}" FROM ' + ", ".join(u for u, _ in users.values()))
    # the login roles are dropped with the cluster; their names are unique to this run


@pytest.fixture
def roles(postgres_url, monkeypatch):
    """The roles on a database of this test's own (for the tests that change something)."""
    monkeypatch.setenv("CREATE_TABLE", "no")  # workers hold no DDL rights
    yield from _roles(postgres_url)


@pytest.fixture(scope="module")
def _shared_roles(postgres_server):
    """The roles on one database for this module's tests that only read or are refused: each
    refusal changes nothing (the trigger's maintenance check rolls its transaction back)."""
    name = unique_name("postgres_roles_shared", max_length=63)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CREATE_TABLE", "no")
        yield from _roles(postgres_server.create_database(name))
    postgres_server.drop_database(name)


@pytest.fixture
def shared_roles(_shared_roles, monkeypatch):
    monkeypatch.setenv("CREATE_TABLE", "no")
    return _shared_roles


def _refused(url, sql, *, match):
    with psycopg.connect(url, autocommit=True) as conn, pytest.raises(psycopg.Error) as caught:
        conn.execute(sql)
    assert match in str(caught.value), str(caught.value)


@pytest.mark.parametrize(
    "sql, match",
    [
        (
            "UPDATE ledger_events SET state = state WHERE notification_id = 3",
            "append_only: UPDATE of public.ledger_events",
        ),
        ("DELETE FROM ledger_events WHERE notification_id = 3", "permission denied"),
        ("TRUNCATE ledger_events", "permission denied"),
        ("UPDATE event_hashes SET global_hash = stream_hash", "permission denied"),
        ("DELETE FROM event_hashes", "permission denied"),
        ("DELETE FROM record_index", "permission denied"),
        ("UPDATE ledger_snapshots SET state = state", "permission denied"),
        ("UPDATE instalment_parties SET amount = 1", "permission denied"),
        ("CREATE TABLE sneaky (x int)", "permission denied"),
        (  # an event (or seal) hidden at an id ≤ 0: refused by the CHECK (verify reports one too)
            "INSERT INTO ledger_events (notification_id, originator_id, originator_version, topic, state) "
            "SELECT -1, originator_id, 99, topic, state FROM ledger_events WHERE notification_id = 3",
            "obc_positive_id",
        ),
        (
            "INSERT INTO event_hashes SELECT -1, originator_id, 99, stream_hash, global_hash FROM event_hashes "
            "WHERE notification_id = 3",
            "obc_seal_positive_id",
        ),
    ],
)
def test_the_writer_role_is_refused_every_change_but_an_insert(shared_roles, sql, match):
    _refused(shared_roles["obc_writer"][1], sql, match=match)


def test_the_writer_cannot_use_the_maintenance_switch(shared_roles):
    with (
        psycopg.connect(shared_roles["obc_writer"][1], autocommit=True) as conn,
        pytest.raises(psycopg.Error) as caught,
    ):
        conn.execute("SET obc_ledger.maintenance = 'on'")
        conn.execute("UPDATE ledger_events SET state = state WHERE notification_id = 3")
    assert "append_only" in str(caught.value)


def test_the_trigger_refuses_the_owner_and_superuser_unless_the_maintenance_switch_is_set(
    roles, postgres_url
):
    _refused(postgres_url, "DELETE FROM ledger_events WHERE notification_id = 3", match="append_only: DELETE")
    _refused(postgres_url, "TRUNCATE event_hashes", match="append_only: TRUNCATE")
    _refused(roles["obc_owner"][1], "UPDATE record_index SET digest = digest", match="append_only: UPDATE")
    with psycopg.connect(roles["obc_owner"][1]) as conn:  # maintenance, in a transaction rolled back
        conn.execute("SET LOCAL obc_ledger.maintenance = 'on'")
        assert conn.execute("UPDATE record_index SET digest = digest").rowcount == 33
        conn.rollback()


@pytest.mark.parametrize(
    "sql, match",
    [
        (
            "INSERT INTO ledger_events (originator_id, originator_version, topic, state) "
            "VALUES (gen_random_uuid(), 1, 'x', 'x')",
            "permission denied",
        ),
        ("UPDATE ledger_events SET state = state", "permission denied"),
        ("DELETE FROM event_hashes", "permission denied"),
    ],
)
def test_the_projector_role_only_reads_the_event_tables(shared_roles, sql, match):
    _refused(shared_roles["obc_projector"][1], sql, match=match)


def test_the_reader_sees_only_its_partys_contracts_and_writes_nothing(roles, postgres_url):
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        grant_party(conn, "public", roles["obc_reader"][0], "physio")
    with psycopg.connect(roles["obc_reader"][1], autocommit=True) as conn:
        assert conn.execute("SELECT contract_id FROM contracts").fetchall() == [("beds-msk",)]
        assert conn.execute("SELECT count(*) FROM instalment_parties").fetchone()[0] > 0
    with psycopg.connect(roles["other_reader"][1], autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM contracts").fetchone()[0] == 0
        assert conn.execute("SELECT count(*) FROM instalment_parties").fetchone()[0] == 0
    _refused(roles["obc_reader"][1], "UPDATE instalment_parties SET amount = 1", match="permission denied")
    _refused(roles["obc_reader"][1], "SELECT count(*) FROM ledger_events", match="permission denied")
    _refused(
        roles["obc_reader"][1],
        "INSERT INTO obc_reader_parties VALUES (current_user, 'circle')",
        match="permission denied",
    )


def test_db_init_roles_prints_its_sql_for_a_dba(postgres_url):
    out = Cli(postgres_url).ok("db", "init", "--roles", "--print-sql").out
    assert 'CREATE TRIGGER obc_append_only BEFORE UPDATE OR DELETE ON "public".ledger_events' in out
    assert "ENABLE ROW LEVEL SECURITY" in out


def test_the_projector_role_can_verify_and_sign_a_digest_read_only(shared_roles, tmp_path):
    cli = Cli(shared_roles["obc_projector"][1])
    cli.ok("keys", "generate", "--out", tmp_path / "k")
    digest = cli.ok("digest", "--sign-key", tmp_path / "k" / "ledger-signing.key").out
    result = cli(
        "verify", "--json", "--against", digest, "--public-key", tmp_path / "k" / "ledger-signing.pub"
    )
    assert result.code == 0, result.err


def test_the_service_role_runs_the_service_and_is_refused_the_rest(roles, postgres_url, tmp_path):
    """`obc-ledger serve` as a member of obc_service: reads (catching the read models up), writes
    with idempotency keys and records refusals; it cannot mint, revive or delete a token."""
    service_url = roles["obc_service"][1]
    admin_tokens = TokenStore(postgres_url)  # the operator issues the tokens (a member of obc_owner)
    commissioner = admin_tokens.issue("commissioner:bccg", "Finance manager")[1]
    stranger = admin_tokens.issue("provider:stranger", "Another provider")[1]
    service = start_service(service_url, tmp_path / "service.log")
    try:
        with service.client(commissioner) as c:
            statement = c.get("/api/v1/contracts/beds-msk/years/1/statement")
            assert statement.status_code == 200, statement.text + service.log.read_text()[-2000:]
            first = c.post("/api/v1/contracts/beds-msk/years/2/close", headers={"Idempotency-Key": "k2"})
            assert first.status_code == 200, first.text + service.log.read_text()[-2000:]
            again = c.post("/api/v1/contracts/beds-msk/years/2/close", headers={"Idempotency-Key": "k2"})
            assert again.headers["Idempotent-Replayed"] == "true" and again.json() == first.json()
            assert c.get("/api/v1/contracts/beds-msk/years/2/statement").status_code == 200
        with service.client(stranger) as c:
            assert (
                c.get("/api/v1/contracts/beds-msk").status_code == 404
            )  # refused (an event written) as unknown
        with httpx.Client(base_url=service.url, follow_redirects=False) as browser:  # a session, signed out
            browser.get("/signin")
            signed_in = browser.post(
                "/signin", data={"token": commissioner, "csrf": browser.cookies.get("obc_csrf")}
            )
            assert signed_in.status_code == 303, signed_in.text
            copied = browser.cookies.get("obc_session")
            page = browser.get("/contracts")
            csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
            assert csrf is not None, page.text
            assert browser.post("/signout", data={"csrf": csrf.group(1)}).status_code == 303
        with httpx.Client(base_url=service.url, cookies={"obc_session": copied}) as replay:
            assert replay.get("/api/v1/whoami").status_code == 401
    finally:
        service.stop()
    assert "permission denied" not in service.log.read_text()
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        refused = conn.execute(
            "SELECT count(*) FROM ledger_events WHERE topic LIKE '%AccessRefused%'"
        ).fetchone()[0]
    assert refused >= 1
    for sql, match in [
        (
            "INSERT INTO service_tokens VALUES ('tok_x', 'x', 'system', 'x', now(), NULL, NULL)",
            "permission denied",
        ),
        ("UPDATE service_tokens SET revoked_at = NULL", "permission denied"),
        ("DELETE FROM service_tokens", "permission denied"),
        ("UPDATE service_secrets SET value = 'x'", "permission denied"),
        ("DELETE FROM service_secrets", "permission denied"),
        ("UPDATE service_signouts SET expires_at = now()", "permission denied"),  # a sign-out stays
        ("DELETE FROM ledger_events WHERE notification_id = 3", "permission denied"),
        ("TRUNCATE contracts", "permission denied"),
        ("DROP TABLE contracts", "must be owner"),
        ("CREATE TABLE sneaky (x int)", "permission denied"),
    ]:
        _refused(service_url, sql, match=match)


@pytest.mark.parametrize("group", ["obc_writer", "obc_projector", "obc_reader"])
@pytest.mark.parametrize(
    "table", ["service_tokens", "service_idempotency", "service_secrets", "service_signouts"]
)
def test_no_other_worker_role_touches_the_service_tables(shared_roles, group, table):
    _refused(shared_roles[group][1], f"SELECT count(*) FROM {table}", match="permission denied")
