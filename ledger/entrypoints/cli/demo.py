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

from ledger.adapters.render import render_rejections, render_statement
from ledger.adapters.yamlio import load_yaml
from ledger.bootstrap import bootstrap
from ledger.demo.generate import generate_tagged_records, write_jsonl
from ledger.demo.loader import DEMO_CONTRACTS
from ledger.demo.outcomes import employment_claims, ortho_costs, prom_episodes
from ledger.domain.errors import LedgerError
from ledger.domain.variations import year_terms
from ledger.entrypoints.cli.commands.settle import whatif_text
from ledger.usecases import Services
from ledger.usecases.application import Ledger

DEMO_YEARS = {"oxon-mh": 7, "cheshire-amh": 5}  # oxon-mh runs its five years plus the two-year extension
# Contract variations recorded before the given year's data (payment rules §7): the Oxfordshire
# outcome measures revised from year 3 and a subcontractor leaving / one joining in year 4; the
# Cheshire contract's alliance risk pool with a quality-linked gain share from year 4.
DEMO_VARIATIONS = {
    "oxon-mh": {3: "oxon-mh-cv-2027-01", 4: "oxon-mh-cv-2028-01"},
    "cheshire-amh": {4: "cheshire-amh-cv-alliance"},
}
ADDED_MEASURES = {
    "physical-health-checks": ("ohft", 550, 40)
}  # provider, numerator per 1,000 in its first year, yearly gain


def _sent(
    app: Ledger, contract_id: str, records: list[dict[str, Any]], year: int, added: bool = True
) -> list[str]:
    """The records providers send for ``year`` under the terms in force then: a party that has left or an
    indicator that was removed sends nothing; an indicator added by a variation is reported by its provider."""
    _, registered = app.load_contract(contract_id)
    terms = year_terms(registered, year)
    out = []
    for record in records:
        provider, measure = record.get("provider_id"), record.get("indicator_id")
        if provider in registered.providers and provider not in terms.providers:
            continue
        if (
            record.get("type") == "submission"
            and measure is not None
            and registered.measure(measure) is not None
            and terms.measure(measure) is None
        ):
            continue
        out.append(json.dumps(record))
    if not added:
        return out
    for measure, (provider, first, gain) in ADDED_MEASURES.items():
        if terms.measure(measure) is None or registered.measure(measure) is not None:
            continue
        since = min(y for y in range(1, year + 1) if year_terms(registered, y).measure(measure) is not None)
        for index, period in enumerate(registered.calendar(True).periods(year)):
            numerator = first + gain * (year - since) + (index % 3) * 5
            out.append(
                json.dumps(
                    {
                        "type": "submission",
                        "submission_id": f"{measure}-{period.label}",
                        "contract_id": contract_id,
                        "provider_id": provider,
                        "indicator_id": measure,
                        "period": period.label,
                        "numerator": str(numerator),
                        "denominator": "1000",
                    }
                )
            )
    return out


def _fresh_database(db: str | None, out: Path) -> str:
    if db is None:
        path = out / "demo.db"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        return f"sqlite:///{path}"
    if db.startswith("sqlite:///"):
        path = Path(db[len("sqlite:///") :])
        if path.exists() and path.stat().st_size > 0:
            raise LedgerError(
                f"the demo builds a fresh ledger, but {path} already exists; remove it or omit --db",
                code="demo_needs_fresh_db",
            )
    return db


def _summary_row(statement: dict[str, Any]) -> dict[str, str]:
    net = Decimal(statement["total"]) + sum((Decimal(t["amount"]) for t in statement["true_ups"]), Decimal(0))
    risk = statement["risk_share"]
    return {
        "year": str(statement["year"]),
        "budget": statement["budget"],
        "core": statement["core"]["annual"],
        "outcomes": statement["outcomes"]["payment"],
        "risk_adjustment": risk["adjustment"] if risk else "—",
        "high_cost": statement["high_cost_reimbursement"],
        "total": statement["total"],
        "rate_card": statement["rate_card"]["payment"] if statement.get("rate_card") else "—",
        "health_gain": format(sum((Decimal(g["payment"]) for g in statement["health_gain"]), Decimal(0)), "f")
        if statement.get("health_gain")
        else "—",
        "true_ups": str(len(statement["true_ups"])),
        "net": format(net, "f"),
    }


def _money(text: str) -> str:
    return text if text == "—" else f"{Decimal(text):,.2f}"


def run_demo(db: str | None, out: Path, as_json: bool = False) -> int:
    started = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    url = _fresh_database(db, out)
    world = bootstrap(url)
    app, services = world.ledger, world.services
    log: list[str] = []
    results: dict[str, Any] = {"database": url, "contracts": {}}
    for name in DEMO_CONTRACTS:
        text = resources.files("ledger.demo").joinpath(f"{name}.yaml").read_text(encoding="utf-8")
        document = load_yaml(text)
        actor = f"commissioner:{document['contract']['commissioner']['id']}"
        definition, _ = services.registration.register_contract(text, actor=actor)
        years = DEMO_YEARS[name]
        tagged = generate_tagged_records(document, years)
        write_jsonl((t.record for t in tagged), out / f"{definition.id}.jsonl")
        on_time = [t for t in tagged if t.detail != "late"]
        late = [t for t in tagged if t.detail == "late"]
        counts = {"accepted": 0, "duplicates": 0, "rejected": 0, "true_ups": 0}
        for year in range(1, years + 1):
            if year == definition.years + 1:
                services.registration.record_extension(definition.id, actor=actor)
                log.append(f"{definition.id}: extension recorded (years {definition.years + 1}-{years})")
            variation = DEMO_VARIATIONS.get(name, {}).get(year)
            if variation is not None:
                varied = services.registration.vary_contract(
                    definition.id,
                    resources.files("ledger.demo").joinpath(f"{variation}.yaml").read_text(encoding="utf-8"),
                    actor=actor,
                )
                log.append(
                    f"{definition.id}: variation {varied['variation_id']} from year "
                    f"{varied['effective_from_year']} ({varied['reason']}): " + "; ".join(varied["changes"])
                )
            batch = _sent(
                app,
                definition.id,
                [t.record for t in on_time if t.year == year or (year == 1 and t.year == 0)],
                year,
            )
            report = services.ingest.ingest_lines(batch, f"{definition.id}-year{year}.jsonl", actor="system")
            counts["accepted"] += report.accepted
            counts["duplicates"] += report.duplicates
            counts["rejected"] += report.rejected
            last_period = definition.calendar(True).periods(year)[-1].label
            services.settlement.pay(definition.id, last_period, actor=actor)
            services.settlement.close_year(definition.id, year, actor=actor)
        late_sent = [
            line
            for y in sorted({t.year for t in late})
            for line in _sent(
                app, definition.id, [t.record for t in late if t.year == y], max(y, 1), added=False
            )
        ]
        report = services.ingest.ingest_lines(late_sent, f"{definition.id}-late.jsonl", actor="system")
        counts["accepted"] += report.accepted
        counts["duplicates"] += report.duplicates
        counts["rejected"] += report.rejected
        for (_, year), n in sorted(report.late.items()):
            true_up = services.settlement.restate(definition.id, year, actor=actor)
            if true_up:
                counts["true_ups"] += 1
                log.append(
                    f"{definition.id} year {year}: {n} late record(s) -> true-up {true_up['amount']} "
                    f"({true_up['reason']})"
                )
        statements = [services.settlement.statement(definition.id, y) for y in range(1, years + 1)]
        results["contracts"][definition.id] = {
            "name": definition.name,
            "records": len(tagged),
            **counts,
            "statements": statements,
        }
    _outcome_contracts(services, out, log, results)
    results["rejected"] = services.ingest.rejected()
    results["seconds"] = round(time.perf_counter() - started, 2)  # float-ok: elapsed time, not money
    if as_json:
        print(json.dumps(results, indent=2))
        return 0
    _print_report(results, log, out)
    return 0


def _outcome_contracts(services: Services, out: Path, log: list[str], results: dict[str, Any]) -> None:
    """The third demo: an employment-support rate card (§8) and an orthopaedic health-gain component (§9),
    each year closed after its data; a late claim restated; one what-if (the shadow settlement of the
    orthopaedic contract's year 1 on year 2's schedule and risk share)."""
    claims, late = employment_claims()
    streams = {"ldn-employ": claims, "beds-ortho": prom_episodes() + ortho_costs()}
    for cid, records in streams.items():
        text = resources.files("ledger.demo").joinpath(f"{cid}.yaml").read_text(encoding="utf-8")
        actor = f"commissioner:{load_yaml(text)['contract']['commissioner']['id']}"
        definition, _ = services.registration.register_contract(text, actor=actor)
        write_jsonl(records + (late if cid == "ldn-employ" else []), out / f"{cid}.jsonl")
        report = services.ingest.ingest_lines(
            [json.dumps(r) for r in records], f"{cid}.jsonl", actor="system"
        )
        counts = {
            "accepted": report.accepted,
            "duplicates": report.duplicates,
            "rejected": report.rejected,
            "true_ups": 0,
        }
        calendar = definition.calendar()
        for year in range(1, definition.years + 1):
            services.settlement.pay(cid, calendar.periods(year)[-1].label, actor=actor)
            services.settlement.close_year(cid, year, actor=actor)
        if cid == "ldn-employ":
            report = services.ingest.ingest_lines(
                [json.dumps(r) for r in late], f"{cid}-late.jsonl", actor="system"
            )
            counts["accepted"] += report.accepted
            first = min(y for _, y in report.late)
            true_up = services.settlement.restate(cid, first, actor=actor)
            later = services.settlement.restate_later_years(cid, first, actor=actor)
            for year, t in [(first, true_up), *((y["year"], y["true_up"]) for y in later)]:
                if t:
                    counts["true_ups"] += 1
                    log.append(f"{cid} year {year}: late claim -> true-up {t['amount']} ({t['reason']})")
        results["contracts"][cid] = {
            "name": definition.name,
            "records": len(records) + len(late if cid == "ldn-employ" else []),
            **counts,
            "statements": [services.settlement.statement(cid, y) for y in range(1, definition.years + 1)],
        }
    results["whatif"] = services.registration.whatif("beds-ortho", None, (1, 1), schedule_of_year=2)


def _print_report(results: dict[str, Any], log: list[str], out: Path) -> None:
    print(f"obc-ledger demo — ledger at {results['database']}, generated records in {out}/\n")
    for cid, c in results["contracts"].items():
        print(f"== {cid}: {c['name']}")
        print(
            f"   {c['records']} records streamed: {c['accepted']} accepted, {c['duplicates']} duplicates "
            f"acknowledged, {c['rejected']} rejected; {c['true_ups']} true-up(s) after late data"
        )
        cols = (
            "year",
            "budget",
            "core",
            "outcomes",
            "risk_adjustment",
            "high_cost",
            "rate_card",
            "health_gain",
            "total",
            "net",
        )
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
    if results.get("whatif"):
        print(
            "\n-- what-if (nothing recorded): beds-ortho year 1 settled on year 2's schedule and risk share\n"
        )
        print(whatif_text(results["whatif"]))
    print("\n-- rejected records (kept in the ledger with their reasons)\n")
    print(render_rejections(results["rejected"]))
    print(
        f"\ndone in {results['seconds']} s. Explore: obc-ledger --db {results['database']} statement oxon-mh --year 3"
    )
