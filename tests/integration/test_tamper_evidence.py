"""verify catches every direct edit of the stored log, on SQLite and on PostgreSQL."""

import json
import sqlite3

import psycopg

from ledger.usecases import services_for
from ledger.usecases.application import Ledger
from tests.support.cli import Cli, worked_example_ledger


class Store:
    """Direct access to the stored events, as an intruder with database access would have."""

    def __init__(self, url):
        self.url = url
        if url.startswith("sqlite:///"):
            self.conn = sqlite3.connect(url[len("sqlite:///") :])
            self.table, self.id, self.mark = "stored_events", "rowid", "?"
        else:
            self.conn = psycopg.connect(url, autocommit=False)
            self.table, self.id, self.mark = "ledger_events", "notification_id", "%s"

    def q(self, sql, *params):
        cur = self.conn.cursor()
        cur.execute(sql.replace("?", self.mark), params)
        return cur

    def state(self, nid):
        return bytes(self.q(f"SELECT state FROM {self.table} WHERE {self.id} = ?", nid).fetchone()[0])

    def set_state(self, nid, state):
        self.q(f"UPDATE {self.table} SET state = ? WHERE {self.id} = ?", state, nid)
        self.conn.commit()

    def delete(self, nid):
        self.q(f"DELETE FROM {self.table} WHERE {self.id} = ?", nid)
        self.conn.commit()

    def ids(self):
        return [r[0] for r in self.q(f"SELECT {self.id} FROM {self.table} ORDER BY {self.id}").fetchall()]


def _verify(url, *args):
    result = Cli(url)("verify", "--json", *args)
    return result.code, json.loads(result.out)


def test_an_untouched_log_verifies(ledger_url):
    worked_example_ledger(ledger_url)
    code, report = _verify(ledger_url)
    assert code == 0 and report["ok"] and report["events_checked"] > 40


def test_editing_one_stored_event_is_caught_at_that_event(ledger_url):
    worked_example_ledger(ledger_url)
    store = Store(ledger_url)
    target = store.ids()[10]
    store.set_state(target, store.state(target) + b" ")  # still valid JSON, one byte more
    code, report = _verify(ledger_url)
    assert code == 1
    assert report["first_broken_link"]["kind"] == "altered"
    assert report["first_broken_link"]["notification_id"] == target


def test_deleting_an_event_is_caught(ledger_url):
    worked_example_ledger(ledger_url)
    store = Store(ledger_url)
    target = store.ids()[5]
    store.delete(target)
    code, report = _verify(ledger_url)
    assert code == 1
    assert report["first_broken_link"]["kind"] == "removed"
    assert report["first_broken_link"]["notification_id"] == target


def test_swapping_two_events_contents_is_caught(ledger_url):
    worked_example_ledger(ledger_url)
    store = Store(ledger_url)
    a, b = store.ids()[3], store.ids()[4]
    state_a, state_b = store.state(a), store.state(b)
    store.set_state(a, state_b)
    store.set_state(b, state_a)
    code, report = _verify(ledger_url)
    assert code == 1
    assert report["first_broken_link"]["notification_id"] == a


def test_a_truncated_tail_is_caught_against_a_kept_digest(ledger_url, tmp_path):
    worked_example_ledger(ledger_url)
    cli = Cli(ledger_url)
    kept = tmp_path / "digest.json"
    kept.write_text(cli.ok("digest").out)
    assert _verify(ledger_url, "--against", str(kept))[0] == 0
    store = Store(ledger_url)
    last = store.ids()[-1]
    store.delete(last)
    store.q("DELETE FROM event_hashes WHERE notification_id = ?", last)
    store.conn.commit()
    assert _verify(ledger_url)[0] == 0  # the chain alone cannot see a cut tail...
    code, report = _verify(ledger_url, "--against", str(kept))
    assert code == 1 and not report["against_digest"]["ok"]  # ...the digest can
    assert "removed from its end" in report["against_digest"]["message"]


def test_a_later_log_still_extends_an_earlier_digest(tmp_path):
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    worked_example_ledger(url)
    cli = Cli(url)
    earlier = cli.ok("digest").out
    _ledger_more = Ledger.from_url(url)
    services_for(_ledger_more).settlement.close_year("beds-msk", 2)
    code, report = _verify(url, "--against", earlier)
    assert code == 0 and report["against_digest"]["ok"]
    assert report["position"] > json.loads(earlier)["position"]
