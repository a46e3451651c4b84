"""Projects the ledger's notification log into the read-model tables, exactly once.

A batch of notifications is turned into rows and applied in ONE database
transaction together with the projection's new position, so a crash mid-batch
neither loses nor double-applies an event: a restart resumes from the last
committed position. Rows are written in bulk (executemany), which is what makes
a rebuild of a million events take seconds rather than minutes.
"""

from __future__ import annotations

import json
import logging
import time
import unicodedata
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine, and_, bindparam, delete, insert, select, update
from sqlalchemy.engine import Connection

from ledger.adapters.gcpace import bulk_pace
from ledger.domain.errors import LedgerError, infrastructure_fault
from ledger.usecases.application import Ledger

from . import codec
from . import schema as t

NAME = "read-models"
BATCH = 5000


_log = logging.getLogger("obc_ledger.projector")


def one_line(text: str, limit: int) -> str:
    """Text safe to print on one line: control and invisible characters escaped, at most ``limit``."""
    out = "".join(
        c
        if unicodedata.category(c)[0] != "C"
        else c.encode("unicode_escape", "backslashreplace").decode("ascii")
        for c in text[:limit]
    )
    return out[:limit] + ("…" if len(text) > limit or len(out) > limit else "")


def case_totals(cases: Any) -> list[tuple[str, Any]]:
    """A report's cases, one row per case reference: a case listed more than once in one
    report (several episodes) is the sum of its entries (payment-rules §5)."""
    totals: dict[str, Any] = {}
    for ref, cost in cases:
        if ref in totals:
            totals[ref] = format(
                Decimal(codec.decimal_text(totals[ref]) or "0") + Decimal(codec.decimal_text(cost) or "0"),
                "f",
            )
        else:
            totals[ref] = cost
    return list(totals.items())


class _Fast:
    """The hot path: rows as tuples, written through the driver.

    Submissions and cost reports are read from their stored JSON without building
    Decimal and datetime objects, and written without SQLAlchemy's per-row parameter
    processing: on SQLite with one executemany per table, on PostgreSQL with one
    ``COPY … FROM STDIN`` per table (psycopg's executemany is per row and measured 5×
    slower than SQLAlchemy's multi-row inserts; COPY is PostgreSQL's bulk load). The
    rows are exactly those the ordinary handlers write (a test compares a fast rebuild
    with them, on both databases).
    """

    def __init__(self) -> None:
        self.audit: list[tuple[Any, ...]] = []
        self.rows: dict[Any, list[tuple[Any, ...]]] = {
            t.submissions: [],
            t.cost_reports: [],
            t.high_cost_cases: [],
        }

    def add(
        self,
        b: _Batch,
        n: Any,
        kind: str,
        s: dict[str, Any],
        stream: tuple[str, str, int | None],
        recorded_at: str,
    ) -> None:
        _, contract_id, year = stream
        if kind == "YearData.SubmissionAccepted":
            self.rows[t.submissions].append(
                (
                    contract_id,
                    s["submission_id"],
                    year,
                    s["provider_id"],
                    s["indicator_id"],
                    s["period"],
                    codec.decimal_text(s["numerator"]),
                    codec.decimal_text(s["denominator"]),
                    codec.decimal_text(s["value"]),
                    s["digest"],
                    s["supersedes"],
                    None,
                    True,
                    recorded_at,
                    s.get("actor"),
                    n.id,
                )
            )
            if s["supersedes"] is not None:
                b.supersede[t.submissions].append(
                    {"b_contract": contract_id, "b_old": s["supersedes"], "b_new": s["submission_id"]}
                )
        else:
            self.rows[t.cost_reports].append(
                (
                    contract_id,
                    s["report_id"],
                    year,
                    s["provider_id"],
                    s["period"],
                    codec.decimal_text(s["total_cost"]),
                    s["supersedes"],
                    None,
                    True,
                    recorded_at,
                    s.get("actor"),
                    n.id,
                )
            )
            self.rows[t.high_cost_cases].extend(
                (contract_id, s["report_id"], ref, codec.decimal_text(cost))
                for ref, cost in case_totals(s["high_cost_cases"])
            )
            if s["supersedes"] is not None:
                b.supersede[t.cost_reports].append(
                    {"b_contract": contract_id, "b_old": s["supersedes"], "b_new": s["report_id"]}
                )

    def write(self, conn: Connection, b: _Batch, sql: Callable[[Any], str]) -> None:
        """Insert the tuple rows and the batch's other rows, table by table in dependency order."""
        tuples = dict(self.rows)
        tuples[t.audit_trail] = self.audit
        copy = conn.dialect.name == "postgresql"
        for table in t.metadata.sorted_tables:
            if tuples.get(table):
                if copy:
                    _copy(conn, table, tuples[table])
                else:
                    conn.exec_driver_sql(sql(table), tuples[table])
            if b.inserts.get(table):
                conn.execute(insert(table), b.inserts.pop(table))


def _copy(conn: Connection, table: Any, rows: list[tuple[Any, ...]]) -> None:
    """COPY the rows into ``table`` on this connection's psycopg connection (same transaction).

    Text format: decimals go as their exact text, booleans as t/f, None as NULL.
    """
    from psycopg import sql as pgsql

    statement = pgsql.SQL("COPY {} ({}) FROM STDIN").format(
        pgsql.Identifier(*([table.schema] if table.schema else []), table.name),
        pgsql.SQL(", ").join(pgsql.Identifier(c.name) for c in table.columns),
    )
    raw = conn.connection.driver_connection
    with raw.cursor() as cursor, cursor.copy(statement) as copy:  # type: ignore[union-attr]
        for row in rows:
            copy.write_row(row)


class _Batch:
    """Rows to insert and updates to run for one batch, applied in a fixed order."""

    def __init__(self) -> None:
        self.inserts: dict[Any, list[dict[str, Any]]] = defaultdict(list)
        self.supersede: dict[Any, list[dict[str, Any]]] = defaultdict(list)
        self.flags: list[tuple[Any, dict[str, Any]]] = []
        self.extended: list[str] = []

    def apply(self, conn: Connection) -> None:
        for table in t.metadata.sorted_tables:
            rows = self.inserts.get(table)
            if rows:
                conn.execute(insert(table), rows)
        for table, rows in self.supersede.items():
            key = (
                table.c.submission_id
                if table is t.submissions
                else (
                    table.c.report_id
                    if table is t.cost_reports
                    else table.c.claim_id
                    if table is t.outcome_claims
                    else table.c.episode_id
                    if table is t.prom_episodes
                    else table.c.record_id
                )
            )
            conn.execute(
                update(table)
                .where(and_(table.c.contract_id == bindparam("b_contract"), key == bindparam("b_old")))
                .values(is_current=False, superseded_by=bindparam("b_new")),
                rows,
            )
        for statement, params in self.flags:
            conn.execute(statement, params)
        for contract_id in self.extended:
            conn.execute(
                update(t.contracts).where(t.contracts.c.contract_id == contract_id).values(extended=True)
            )


class _Overtaken(Exception):
    """Another projector moved the position past the start of the page being projected."""


class Projector:
    """Keeps the read models in step with one ledger's event log."""

    def __init__(self, app: Ledger, engine: Engine, name: str = NAME) -> None:
        self.app = app
        self.engine = engine
        self.name = name
        self._streams: dict[str, tuple[str, str, int | None]] | None = None
        self._sql: dict[Any, str] = {}
        if not codec.readable(app.mapper):
            raise LedgerError(
                "the projector reads stored event state directly; it does not support "
                "encrypted or compressed events",
                code="unsupported_store",
            )
        self._handlers: dict[
            str, Callable[[_Batch, Any, dict[str, Any], tuple[str, str, int | None]], None]
        ] = {
            "Contract.Registered": self._registered,
            "Contract.BudgetSet": self._budget,
            "Contract.BaselineRecorded": self._baseline,
            "Contract.ExtensionRecorded": self._extension,
            "Contract.VariationRecorded": self._variation,
            "YearData.SubmissionAccepted": self._submission,
            "YearData.CostReported": self._cost,
            "YearData.PopulationCounted": self._population,
            "YearData.OutcomeClaimed": self._claim,
            "YearData.PromEpisodeRecorded": self._episode,
            "Settlement.InstalmentDecided": self._instalment,
            "Settlement.YearClosed": self._closed,
            "Settlement.TrueUpDecided": self._true_up,
            "Rejection.Recorded": self._rejection,
            "Settlement.AdjustmentDecided": self._adjustment,
            "Settlement.DisputeRaised": self._dispute_raised,
            "Settlement.DisputeResolved": self._dispute_resolved,
            "AccessRefused.Recorded": self._refused,
        }

    # ------------------------------------------------------------------ control

    def create_tables(self) -> None:
        t.metadata.create_all(self.engine)

    def position(self) -> int:
        with self.engine.connect() as conn:
            value = conn.execute(select(t.position.c.position).where(t.position.c.name == self.name)).scalar()
        return int(value or 0)

    def head(self) -> int:
        return int(self.app.recorder.max_notification_id() or 0)

    def status(self) -> dict[str, Any]:
        self.create_tables()
        position, head = self.position(), self.head()
        out: dict[str, Any] = {
            "position": position,
            "head": head,
            "lag": max(head - position, 0),
            "quarantined": self.quarantined(),
        }
        try:  # the read models saw events the log no longer has: an alarm, not lag 0
            self._check_not_truncated(position)
        except LedgerError as exc:
            out["alarm"], out["message"] = exc.code, exc.message
        return out

    def _check_not_truncated(self, position: int) -> None:
        """Refuse to go on from a position the log no longer has, or whose last projected event is not
        the log's event of that id (the tail was cut and regrown: new events reuse the removed ids)."""
        head = self.head()
        advice = "run `obc-ledger verify --against` a kept digest, then `projections rebuild`"
        if position > head:
            raise LedgerError(
                f"the read models are at event #{position} but the log ends at #{head}: events were "
                f"removed from the log's end (new events would reuse their ids and be skipped); "
                f"{advice}",
                code="log_truncated",
            )
        if not position:
            return
        with self.engine.connect() as conn:
            last = conn.execute(
                select(
                    t.audit_trail.c.notification_id,
                    t.audit_trail.c.originator_id,
                    t.audit_trail.c.originator_version,
                )
                .order_by(t.audit_trail.c.notification_id.desc())
                .limit(1)
            ).first()
        if last is None:
            return
        found = self.app.recorder.select_notifications(start=last[0], limit=1)
        if (
            not found
            or found[0].id != last[0]
            or (str(found[0].originator_id), found[0].originator_version) != (last[1], last[2])
        ):
            raise LedgerError(
                f"event #{last[0]} of the log is not the event the read models projected under that "
                f"id: the log's end was cut and new events reuse the removed ids; {advice}",
                code="log_truncated",
            )

    def rebuild(self, *, progress: Callable[[int], None] | None = None) -> int:
        """Drop and recreate every read model, then project the whole log from position zero.

        The quarantine is emptied too: every quarantined event is tried again (an event a fixed bug
        could not write is projected now; one that still fails is quarantined again).
        ``progress(n)`` is told of each page of events projected (a progress bar's advance)."""
        with self.engine.begin() as conn:
            t.metadata.drop_all(conn)
            t.metadata.create_all(conn)
        self._streams = None
        return self.run(progress=progress)

    def run(
        self,
        *,
        batch: int = BATCH,
        as_of: datetime | None = None,
        contracts: set[str] | None = None,
        upto: int | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> int:
        """Catch up to the head of the log; returns the number of events projected.

        ``as_of`` projects only events recorded up to that instant (for replays into
        a scratch database); ``contracts`` keeps only those contracts' events;
        ``upto`` stops at that notification id. A position beyond the log's head is
        refused (``log_truncated``).
        """
        with bulk_pace():  # the collector's bulk pace (ledger.adapters.gcpace)
            return self._run(batch, as_of, contracts, upto, progress)

    def _run(
        self,
        batch: int,
        as_of: datetime | None,
        contracts: set[str] | None,
        upto: int | None,
        progress: Callable[[int], None] | None,
    ) -> int:
        self.create_tables()
        done = 0
        position = self.position()
        self._check_not_truncated(position)
        while True:
            page = [codec.stored(row) for row in self.app.stored_log.select_log(position, batch)]
            if upto is not None:
                page = [n for n in page if n.id <= upto]
            if not page:
                return done
            try:
                self._isolating(page, as_of, contracts)
            except _Overtaken:  # another projector (a worker, a concurrent read) projected these first
                self._streams = None
                position = self.position()
                continue
            position = page[-1].id
            done += len(page)
            if progress is not None:
                progress(len(page))

    def follow(
        self,
        *,
        poll_seconds: float = 1.0,  # float-ok: seconds
        stop: Callable[[], bool] = lambda: False,
    ) -> int:  # float-ok: seconds, not money
        done = 0
        while not stop():
            n = self.run()
            done += n
            if n == 0:
                time.sleep(poll_seconds)
        return done

    # --------------------------------------------------------------- projecting

    def _load_streams(self, conn: Connection) -> dict[str, tuple[str, str, int | None]]:
        if self._streams is None:
            self._streams = {
                r.originator_id: (r.stream, r.contract_id, r.year) for r in conn.execute(select(t.streams))
            }
        return self._streams

    def _insert_sql(self, table: Any) -> str:
        if table not in self._sql:
            self._sql[table] = str(insert(table).compile(dialect=self.engine.dialect))
        return self._sql[table]

    def _project(
        self, page: Sequence[codec.Stored], as_of: datetime | None, contracts: set[str] | None
    ) -> None:
        decode = self.app.mapper.transcoder.decode
        batch = _Batch()
        fast = _Fast() if (self.engine.dialect.name in ("sqlite", "postgresql") and as_of is None) else None
        with self.engine.begin() as conn:
            streams = self._load_streams(conn)
            new_streams: dict[str, tuple[str, str, int | None]] = {}
            try:
                for n in page:
                    kind = codec.kind(n.topic)
                    hot = fast is not None and kind in codec.HOT
                    if hot:
                        state = codec.scan(n.state)
                        recorded_at = codec.recorded_at(state)
                    else:
                        state = decode(n.state)
                        if as_of is not None and state["timestamp"] > as_of:
                            continue
                        recorded_at = codec.when(state["timestamp"])
                    oid = str(n.originator_id)
                    stream = streams.get(oid)
                    if stream is None:
                        stream = self._stream_of(kind, state)
                        if stream is None:
                            continue
                        streams[oid] = new_streams[oid] = stream
                    if contracts is not None and stream[1] not in contracts:
                        continue
                    audit = (
                        n.id,
                        oid,
                        n.originator_version,
                        stream[0],
                        stream[1],
                        stream[2],
                        kind,
                        recorded_at,
                        state.get("actor"),
                    )
                    if fast is not None:
                        fast.audit.append(audit)
                    else:
                        batch.inserts[t.audit_trail].append(dict(zip(_AUDIT_COLUMNS, audit, strict=True)))
                    if hot:
                        fast.add(batch, n, kind, state, stream, recorded_at)  # type: ignore[union-attr]
                        continue
                    handler = self._handlers.get(kind)
                    if handler is not None:
                        handler(batch, n, state, stream)
                batch.inserts[t.streams].extend(
                    {"originator_id": oid, "stream": s, "contract_id": c, "year": y}
                    for oid, (s, c, y) in new_streams.items()
                )
                if fast is not None:
                    fast.write(conn, batch, self._insert_sql)
                batch.apply(conn)
                self._save_position(conn, page[-1].id)
            except BaseException:
                for oid in new_streams:
                    streams.pop(oid, None)
                raise

    def _isolating(
        self, page: Sequence[codec.Stored], as_of: datetime | None, contracts: set[str] | None
    ) -> None:
        """Project a page; when it fails for the data's sake, split it to find the event that cannot be
        written and quarantine that one (halving: a poison event in a batch of 5,000 costs ~26 small
        transactions, not 5,000). A storage or connection failure is no event's fault: it is raised
        and nothing is quarantined."""
        try:
            self._project(page, as_of, contracts)
        except Exception as exc:
            if infrastructure_fault(exc):
                raise
            if self.position() >= page[0].id:  # not this event's fault: its rows were written meanwhile
                raise _Overtaken() from exc
            if len(page) == 1:
                self._quarantine(page[0], exc)
                return
            middle = len(page) // 2
            self._isolating(page[:middle], as_of, contracts)
            self._isolating(page[middle:], as_of, contracts)

    def _quarantine(self, n: Any, exc: BaseException) -> None:
        """Record the event that cannot be projected, and move past it, in one transaction."""
        kind = codec.kind(n.topic)
        oid = str(n.originator_id)
        stream = (self._streams or {}).get(oid) or (None, None, None)
        row = {
            "notification_id": n.id,
            "name": self.name,
            "originator_id": oid,
            "originator_version": n.originator_version,
            "stream": stream[0],
            "contract_id": stream[1],
            "year": stream[2],
            "event_type": one_line(kind, 120),
            "error": type(exc).__name__,
            "reason": one_line(str(exc) or type(exc).__name__, 300),
            "quarantined_at": datetime.now(UTC).isoformat(),
        }
        with self.engine.begin() as conn:
            conn.execute(delete(t.quarantine).where(t.quarantine.c.notification_id == n.id))
            conn.execute(insert(t.quarantine).values(**row))
            self._save_position(conn, n.id)
        _log.warning(
            "quarantined event #%s (%s): %s: %s", n.id, row["event_type"], row["error"], row["reason"]
        )

    def quarantined(self) -> list[dict[str, Any]]:
        """The events this projection skipped because it could not write them, oldest first."""
        with self.engine.connect() as conn:
            rows = (
                conn.execute(
                    select(t.quarantine)
                    .where(t.quarantine.c.name == self.name)
                    .order_by(t.quarantine.c.notification_id)
                )
                .mappings()
                .all()
            )
        return [{k: v for k, v in r.items() if k != "name"} for r in rows]

    def _save_position(self, conn: Connection, position: int) -> None:
        changed = conn.execute(
            update(t.position).where(t.position.c.name == self.name).values(position=position)
        ).rowcount
        if not changed:
            conn.execute(insert(t.position).values(name=self.name, position=position))

    @staticmethod
    def _stream_of(kind: str, state: dict[str, Any]) -> tuple[str, str, int | None] | None:
        if kind == "Contract.Registered":
            return "contract", state["contract_id"], None
        if kind == "YearData.Opened":
            return "data", state["contract_id"], state["year"]
        if kind == "Settlement.Opened":
            return "settlement", state["contract_id"], state["year"]
        if kind == "Rejection.Recorded":
            return "rejection", state.get("contract_id") or "", None
        if kind == "AccessRefused.Recorded":
            return "refusal", state.get("contract_id") or "", None
        return None

    # ----------------------------------------------------------------- handlers

    def _registered(self, b: _Batch, n: Any, s: dict[str, Any], stream: tuple[str, str, int | None]) -> None:
        doc = s["definition"]
        c = doc["contract"]
        b.inserts[t.contracts].append(
            {
                "contract_id": s["contract_id"],
                "name": c.get("name"),
                "model": c.get("model"),
                "commissioner_id": c["commissioner"]["id"],
                "lead_provider_id": c["lead_provider"]["id"],
                "currency": c.get("currency", "GBP"),
                "start": c.get("start"),
                "years": c.get("years"),
                "extension_years": c.get("extension_years", 0),
                "extended": False,
                "period": c.get("period", "monthly"),
                "definition": json.dumps(doc, sort_keys=True),
                "source_sha256": s.get("source_sha256"),
                "registered_at": codec.when(s["timestamp"]),
                "registered_by": s.get("actor"),
            }
        )
        roles = [("commissioner", c["commissioner"]), ("lead_provider", c["lead_provider"])]
        roles += [("subcontractor", p) for p in c.get("subcontractors") or []]
        b.inserts[t.parties].extend(
            {"contract_id": s["contract_id"], "party_id": p["id"], "role": role, "name": p.get("name")}
            for role, p in roles
        )

    def _budget(self, b: _Batch, n: Any, s: dict[str, Any], stream: tuple[str, str, int | None]) -> None:
        contract_id = stream[1]
        b.inserts[t.budgets].append(
            {
                "notification_id": n.id,
                "contract_id": contract_id,
                "year": s["year"],
                "amount": s["amount"],
                "reason": s["reason"],
                "note": s.get("note"),
                "is_current": True,
                "recorded_at": codec.when(s["timestamp"]),
                "actor": s.get("actor"),
            }
        )
        b.flags.append(
            (
                update(t.budgets)
                .where(
                    and_(
                        t.budgets.c.contract_id == contract_id,
                        t.budgets.c.year == s["year"],
                        t.budgets.c.notification_id < n.id,
                    )
                )
                .values(is_current=False),
                {},
            )
        )

    def _variation(self, b: _Batch, n: Any, s: dict[str, Any], stream: tuple[str, str, int | None]) -> None:
        doc = s["document"]
        b.inserts[t.variations].append(
            {
                "notification_id": n.id,
                "contract_id": stream[1],
                "variation_id": s["variation_id"],
                "effective_from_year": s["effective_from_year"],
                "reason": s["reason"],
                "reference": ((doc.get("variation") or {}).get("agreed") or {}).get("reference"),
                "document": json.dumps(doc, sort_keys=True),
                "restated_years": json.dumps(s.get("restated_years") or []),
                "recorded_at": codec.when(s["timestamp"]),
                "actor": s.get("actor"),
            }
        )

    def _baseline(self, b: _Batch, n: Any, s: dict[str, Any], stream: tuple[str, str, int | None]) -> None:
        b.inserts[t.baselines].append(
            {
                "notification_id": n.id,
                "contract_id": stream[1],
                "key": s["key"],
                "value": s["value"],
                "note": s.get("note"),
                "recorded_at": codec.when(s["timestamp"]),
                "actor": s.get("actor"),
            }
        )

    def _extension(self, b: _Batch, n: Any, s: dict[str, Any], stream: tuple[str, str, int | None]) -> None:
        b.extended.append(stream[1])

    def _supersede(self, b: _Batch, table: Any, contract_id: str, old: str | None, new: str) -> None:
        if old is not None:
            b.supersede[table].append({"b_contract": contract_id, "b_old": old, "b_new": new})

    def _submission(self, b: _Batch, n: Any, s: dict[str, Any], stream: tuple[str, str, int | None]) -> None:
        _, contract_id, year = stream
        b.inserts[t.submissions].append(
            {
                "contract_id": contract_id,
                "submission_id": s["submission_id"],
                "year": year,
                "provider_id": s["provider_id"],
                "indicator_id": s["indicator_id"],
                "period": s["period"],
                "numerator": s["numerator"],
                "denominator": s["denominator"],
                "value": s["value"],
                "digest": s["digest"],
                "supersedes": s["supersedes"],
                "superseded_by": None,
                "is_current": True,
                "recorded_at": codec.when(s["timestamp"]),
                "actor": s.get("actor"),
                "notification_id": n.id,
            }
        )
        self._supersede(b, t.submissions, contract_id, s["supersedes"], s["submission_id"])

    def _cost(self, b: _Batch, n: Any, s: dict[str, Any], stream: tuple[str, str, int | None]) -> None:
        _, contract_id, year = stream
        b.inserts[t.cost_reports].append(
            {
                "contract_id": contract_id,
                "report_id": s["report_id"],
                "year": year,
                "provider_id": s["provider_id"],
                "period": s["period"],
                "total_cost": s["total_cost"],
                "supersedes": s["supersedes"],
                "superseded_by": None,
                "is_current": True,
                "recorded_at": codec.when(s["timestamp"]),
                "actor": s.get("actor"),
                "notification_id": n.id,
            }
        )
        b.inserts[t.high_cost_cases].extend(
            {"contract_id": contract_id, "report_id": s["report_id"], "case_ref": ref, "cost": Decimal(cost)}
            for ref, cost in case_totals(s["high_cost_cases"])
        )
        self._supersede(b, t.cost_reports, contract_id, s["supersedes"], s["report_id"])

    def _population(self, b: _Batch, n: Any, s: dict[str, Any], stream: tuple[str, str, int | None]) -> None:
        _, contract_id, year = stream
        b.inserts[t.population_counts].append(
            {
                "contract_id": contract_id,
                "record_id": s["record_id"],
                "year": year,
                "segment_id": s["segment_id"],
                "count": s["count"],
                "supersedes": s["supersedes"],
                "superseded_by": None,
                "is_current": True,
                "recorded_at": codec.when(s["timestamp"]),
                "actor": s.get("actor"),
                "notification_id": n.id,
            }
        )
        self._supersede(b, t.population_counts, contract_id, s["supersedes"], s["record_id"])

    def _claim(self, b: _Batch, n: Any, s: dict[str, Any], stream: tuple[str, str, int | None]) -> None:
        _, contract_id, year = stream
        b.inserts[t.outcome_claims].append(
            {
                "contract_id": contract_id,
                "claim_id": s["claim_id"],
                "year": year,
                "provider_id": s["provider_id"],
                "participant_id": s["participant_id"],
                "outcome_id": s["outcome_id"],
                "period": s["period"],
                "arrival": json.dumps(s["arrival"]),
                "evidence": s.get("evidence"),
                "supersedes": s["supersedes"],
                "superseded_by": None,
                "is_current": True,
                "recorded_at": codec.when(s["timestamp"]),
                "actor": s.get("actor"),
                "notification_id": n.id,
            }
        )
        self._supersede(b, t.outcome_claims, contract_id, s["supersedes"], s["claim_id"])

    def _episode(self, b: _Batch, n: Any, s: dict[str, Any], stream: tuple[str, str, int | None]) -> None:
        _, contract_id, year = stream
        b.inserts[t.prom_episodes].append(
            {
                "contract_id": contract_id,
                "episode_id": s["episode_id"],
                "year": year,
                "provider_id": s["provider_id"],
                "health_gain_id": s["health_gain_id"],
                "period": s["period"],
                "pre_score": Decimal(s["pre_score"]),
                "post_score": Decimal(s["post_score"]),
                "expected_gain": Decimal(s["expected_gain"]) if s["expected_gain"] is not None else None,
                "supersedes": s["supersedes"],
                "superseded_by": None,
                "is_current": True,
                "recorded_at": codec.when(s["timestamp"]),
                "actor": s.get("actor"),
                "notification_id": n.id,
            }
        )
        self._supersede(b, t.prom_episodes, contract_id, s["supersedes"], s["episode_id"])

    def _instalment(self, b: _Batch, n: Any, s: dict[str, Any], stream: tuple[str, str, int | None]) -> None:
        _, contract_id, year = stream
        b.inserts[t.instalments].append(
            {
                "contract_id": contract_id,
                "year": year,
                "period": s["period"],
                "idx": s["index"],
                "count": s["count"],
                "amount": s["amount"],
                "budget": s["budget"],
                "core_annual": s["core_annual"],
                "paid_before": s["paid_before"],
                "decided_at": s["decided_at"],
                "actor": s.get("actor"),
                "notification_id": n.id,
            }
        )
        b.inserts[t.instalment_parties].extend(
            {
                "contract_id": contract_id,
                "year": year,
                "period": s["period"],
                "party_id": p,
                "amount": Decimal(v),
            }
            for p, v in s["by_party"].items()
        )

    def _decision(
        self,
        b: _Batch,
        n: Any,
        s: dict[str, Any],
        stream: tuple[str, str, int | None],
        kind: str,
        amount: Decimal,
        by_party: dict[str, Any],
        reason: str | None,
    ) -> None:
        _, contract_id, year = stream
        figures, trace = s["figures"], s["trace"]
        b.inserts[t.decisions].append(
            {
                "notification_id": n.id,
                "contract_id": contract_id,
                "year": year,
                "kind": kind,
                "amount": amount,
                "reason": reason,
                "decided_at": s["decided_at"],
                "actor": s.get("actor"),
                "figures": json.dumps(figures, sort_keys=True),
                "trace": json.dumps(trace, sort_keys=True),
            }
        )
        b.inserts[t.decision_parties].extend(
            {
                "notification_id": n.id,
                "party_id": p,
                "contract_id": contract_id,
                "year": year,
                "kind": kind,
                "amount": Decimal(v),
            }
            for p, v in by_party.items()
        )
        shown = {i["id"]: i for i in figures["indicators"]}
        for traced in trace.get("indicators", []):
            row = shown.get(traced["id"], {})
            for m in traced.get("measures", []):
                b.inserts[t.indicator_performance].append(
                    {
                        "notification_id": n.id,
                        "measure_id": m["id"],
                        "contract_id": contract_id,
                        "year": year,
                        "indicator_id": traced["id"],
                        "status": m.get("status"),
                        "value": m.get("value"),
                        "score": m.get("score"),
                        "baseline": m.get("baseline"),
                        "thresholds": json.dumps(m.get("scoring"), sort_keys=True),
                        "indicator_score": row.get("score"),
                        "weight": row.get("weight"),
                        "normalised_weight": row.get("normalised_weight"),
                        "earned": row.get("earned"),
                    }
                )

    def _closed(self, b: _Batch, n: Any, s: dict[str, Any], stream: tuple[str, str, int | None]) -> None:
        f = s["figures"]
        self._decision(b, n, s, stream, "close", Decimal(f["total"]), f["by_party"], None)

    def _true_up(self, b: _Batch, n: Any, s: dict[str, Any], stream: tuple[str, str, int | None]) -> None:
        self._decision(b, n, s, stream, "true_up", Decimal(s["amount"]), s["by_party"], s["reason"])

    def _adjustment(self, b: _Batch, n: Any, s: dict[str, Any], stream: tuple[str, str, int | None]) -> None:
        _, contract_id, year = stream
        b.inserts[t.decisions].append(
            {
                "notification_id": n.id,
                "contract_id": contract_id,
                "year": year,
                "kind": "adjustment",
                "amount": s["amount"],
                "reason": s["reason"],
                "decided_at": s["decided_at"],
                "actor": s.get("actor"),
                "figures": "{}",
                "trace": json.dumps({"dispute_id": s.get("dispute_id")}),
            }
        )
        b.inserts[t.decision_parties].extend(
            {
                "notification_id": n.id,
                "party_id": p,
                "contract_id": contract_id,
                "year": year,
                "kind": "adjustment",
                "amount": Decimal(v),
            }
            for p, v in s["by_party"].items()
        )

    def _dispute_raised(
        self, b: _Batch, n: Any, s: dict[str, Any], stream: tuple[str, str, int | None]
    ) -> None:
        _, contract_id, year = stream
        b.inserts[t.disputes].append(
            {
                "contract_id": contract_id,
                "year": year,
                "dispute_id": s["dispute_id"],
                "raised_by": s["raised_by"],
                "reason": s["reason"],
                "decision": s["decision"],
                "decision_at": s["decision_at"],
                "raised_at": s["raised_at"],
                "status": "open",
                "resolution_note": None,
                "resolved_at": None,
                "resolved_by": None,
                "notification_id": n.id,
            }
        )

    def _dispute_resolved(
        self, b: _Batch, n: Any, s: dict[str, Any], stream: tuple[str, str, int | None]
    ) -> None:
        _, contract_id, year = stream
        b.flags.append(
            (
                update(t.disputes)
                .where(
                    and_(
                        t.disputes.c.contract_id == contract_id,
                        t.disputes.c.year == year,
                        t.disputes.c.dispute_id == s["dispute_id"],
                    )
                )
                .values(
                    status="upheld" if s["upheld"] else "rejected",
                    resolution_note=s["note"],
                    resolved_at=s["resolved_at"],
                    resolved_by=s.get("actor"),
                    resolved_notification_id=n.id,
                ),
                {},
            )
        )

    def _refused(self, b: _Batch, n: Any, s: dict[str, Any], stream: tuple[str, str, int | None]) -> None:
        b.inserts[t.access_refusals].append(
            {
                "notification_id": n.id,
                "actor": s["actor"],
                "action": s["action"],
                "contract_id": s["contract_id"],
                "reason": s["reason"],
                "recorded_at": codec.when(s["timestamp"]),
            }
        )

    def _rejection(self, b: _Batch, n: Any, s: dict[str, Any], stream: tuple[str, str, int | None]) -> None:
        b.inserts[t.rejected_records].append(
            {
                "notification_id": n.id,
                "source": s["source"],
                "line": s["line"],
                "raw": s["raw"],
                "code": s["code"],
                "field": s["field"],
                "message": s["message"],
                "contract_id": s["contract_id"],
                "record_type": s["record_type"],
                "record_id": s["record_id"],
                "recorded_at": codec.when(s["timestamp"]),
                "actor": s.get("actor"),
            }
        )


_AUDIT_COLUMNS = tuple(c.name for c in t.audit_trail.columns)


def table_rows(engine: Engine) -> Iterator[tuple[str, list[tuple[Any, ...]]]]:
    """Every read-model table's rows in primary-key order (to compare two databases)."""
    with engine.connect() as conn:
        for table in t.READ_MODELS:
            order = list(table.primary_key.columns)
            yield table.name, [tuple(r) for r in conn.execute(select(table).order_by(*order))]


def clear(engine: Engine) -> None:
    with engine.begin() as conn:
        for table in reversed(t.metadata.sorted_tables):
            conn.execute(delete(table))
