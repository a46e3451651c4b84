"""`obc-ledger demo`: the main job, end to end, on the embedded default.

Registers the two demo contracts in a fresh SQLite file, then runs their
providers' record streams the way a contract finance team would: each year's
data is ingested, instalments are decided, the year is closed; the population
contract's extension is recorded before year 6; late corrections arriving after
a close are ingested and the affected years restated with true-ups. Finally it
prints each contract's settlement by year, one full statement per contract and
every rejected record with its reason.
"""

from __future__ import annotations

import json
import time
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any

from ..application import Ledger
from ..errors import LedgerError
from ..render import render_rejections, render_statement
from .generate import generate_tagged_records, write_jsonl
from .loader import DEMO_CONTRACTS
from ..yamlio import load_yaml

DEMO_YEARS = {"oxon-mh": 7, "cheshire-amh": 5}  # oxon-mh runs its five years plus the two-year extension


def _fresh_database(db: str | None, out: Path) -> str:
    if db is None:
        path = out / "demo.db"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        return f"sqlite:///{path}"
    if db.startswith("sqlite:///"):
        path = Path(db[len("sqlite:///"):])
        if path.exists() and path.stat().st_size > 0:
            raise LedgerError(f"the demo builds a fresh ledger, but {path} already exists; remove it or omit --db",
                              code="demo_needs_fresh_db")
    return db


def _summary_row(statement: dict[str, Any]) -> dict[str, str]:
    net = Decimal(statement["total"]) + sum((Decimal(t["amount"]) for t in statement["true_ups"]), Decimal(0))
    risk = statement["risk_share"]
    return {
        "year": str(statement["year"]), "budget": statement["budget"], "core": statement["core"]["annual"],
        "outcomes": statement["outcomes"]["payment"], "risk_adjustment": risk["adjustment"] if risk else "—",
        "high_cost": statement["high_cost_reimbursement"], "total": statement["total"],
        "true_ups": str(len(statement["true_ups"])), "net": format(net, "f"),
    }


def _money(text: str) -> str:
    return text if text == "—" else f"{Decimal(text):,.2f}"


def run_demo(db: str | None, out: Path, as_json: bool = False) -> int:
    started = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    url = _fresh_database(db, out)
    app = Ledger.from_url(url)
    log: list[str] = []
    results: dict[str, Any] = {"database": url, "contracts": {}}
    for name in DEMO_CONTRACTS:
        text = resources.files("ledger.demo").joinpath(f"{name}.yaml").read_text(encoding="utf-8")
        document = load_yaml(text)
        actor = f"commissioner:{document['contract']['commissioner']['id']}"
        definition, _ = app.register_contract(text, actor=actor)
        years = DEMO_YEARS[name]
        tagged = generate_tagged_records(document, years)
        write_jsonl((t.record for t in tagged), out / f"{definition.id}.jsonl")
        on_time = [t for t in tagged if t.detail != "late"]
        late = [t for t in tagged if t.detail == "late"]
        counts = {"accepted": 0, "duplicates": 0, "rejected": 0, "true_ups": 0}
        for year in range(1, years + 1):
            if year == definition.years + 1:
                app.record_extension(definition.id, actor=actor)
                log.append(f"{definition.id}: extension recorded (years {definition.years + 1}-{years})")
            batch = [json.dumps(t.record) for t in on_time if t.year == year or (year == 1 and t.year == 0)]
            report = app.ingest_lines(batch, f"{definition.id}-year{year}.jsonl", actor="system")
            counts["accepted"] += report.accepted
            counts["duplicates"] += report.duplicates
            counts["rejected"] += report.rejected
            last_period = definition.calendar(True).periods(year)[-1].label
            app.pay(definition.id, last_period, actor=actor)
            app.close_year(definition.id, year, actor=actor)
        report = app.ingest_lines([json.dumps(t.record) for t in late], f"{definition.id}-late.jsonl",
                                  actor="system")
        counts["accepted"] += report.accepted
        counts["duplicates"] += report.duplicates
        counts["rejected"] += report.rejected
        for (_, year), n in sorted(report.late.items()):
            true_up = app.restate(definition.id, year, actor=actor)
            if true_up:
                counts["true_ups"] += 1
                log.append(f"{definition.id} year {year}: {n} late record(s) -> true-up {true_up['amount']} "
                           f"({true_up['reason']})")
        statements = [app.statement(definition.id, y) for y in range(1, years + 1)]
        results["contracts"][definition.id] = {"name": definition.name, "records": len(tagged), **counts,
                                               "statements": statements}
    results["rejected"] = app.rejected()
    results["seconds"] = round(time.perf_counter() - started, 2)  # float-ok: elapsed time, not money
    if as_json:
        print(json.dumps(results, indent=2))
        return 0
    _print_report(results, log, out)
    return 0


def _print_report(results: dict[str, Any], log: list[str], out: Path) -> None:
    print(f"obc-ledger demo — ledger at {results['database']}, generated records in {out}/\n")
    for cid, c in results["contracts"].items():
        print(f"== {cid}: {c['name']}")
        print(f"   {c['records']} records streamed: {c['accepted']} accepted, {c['duplicates']} duplicates "
              f"acknowledged, {c['rejected']} rejected; {c['true_ups']} true-up(s) after late data")
        cols = ("year", "budget", "core", "outcomes", "risk_adjustment", "high_cost", "total", "net")
        print("   " + "".join(f"{h:>16}" if h != "year" else f"{h:>5}" for h in cols))
        for s in c["statements"]:
            row = _summary_row(s)
            print("   " + "".join(f"{row[h]:>5}" if h == "year" else f"{_money(row[h]):>16}" for h in cols))
        print()
    for line in log:
        print(f"- {line}")
    for cid, c in results["contracts"].items():
        closed = [s for s in c["statements"] if s["true_ups"]] or c["statements"]
        print(f"\n-- full statement: {cid} year {closed[-1]['year']}\n")
        print(render_statement(closed[-1]))
    print("\n-- rejected records (kept in the ledger with their reasons)\n")
    print(render_rejections(results["rejected"]))
    print(f"\ndone in {results['seconds']} s. Explore: obc-ledger --db {results['database']} statement oxon-mh --year 3")
