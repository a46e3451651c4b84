"""The auditor's report: one self-contained HTML page for a commissioner's board.

Payment components per year, indicator performance against baseline and
thresholds over time, cost against budget with the risk-share corridor, every
decision and true-up (and dispute events, when the ledger records them), and a
verification section with the log's head position and, when the ledger offers
one, its digest. Charts are inline SVG (matplotlib, Agg backend); the page loads
nothing from anywhere and runs no script.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any, Mapping

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from ledger.numbers import ZERO, fmt, fmt_money

from . import charts, facts
from .bootstrap import Projections

TEMPLATE = "report.html.j2"


def build(projections: Projections, contract_id: str, year: int | None = None) -> dict[str, Any]:
    """Everything the report shows, as plain values (also the ``--json`` output)."""
    read = projections.current()
    contract = read.contract(contract_id)
    with read.engine.connect() as conn:
        row, definition = facts.contract(conn, contract_id)
        if year is not None:
            facts.check_year(row, definition, year)
        term = definition.term_years(bool(row.extended))
        years = [year] if year is not None else list(range(1, term + 1))
        decided = facts.decisions(conn, contract_id)
        instalments = facts.instalments(conn, contract_id)
        disputes = [{"year": r.year, "dispute_id": r.dispute_id, "raised_by": r.raised_by, "raised_at": r.raised_at,
                     "reason": r.reason, "decision": r.decision, "status": r.status, "note": r.resolution_note,
                     "resolved_at": r.resolved_at, "resolved_by": r.resolved_by}
                    for r in facts.disputes(conn, contract_id) if year is None or r.year == year]
        per_year = {y: _year(conn, read, row, definition, contract_id, y, decided, instalments) for y in years}
    data = {
        "contract": contract, "years": years, "scope": f"year {year}" if year is not None else "all years",
        "per_year": [per_year[y] for y in years],
        "decisions": [_decision_row(d) for d in decided if year is None or d.year == year],
        "disputes": disputes,
        "verification": _verification(projections.app, projections),
        "as_of": _as_of(projections, contract_id),
        "generated_at": datetime.now(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z"),
    }
    data["true_ups"] = [d for d in data["decisions"] if d["kind"] != "close"]
    data["totals"] = {"decided": fmt_money(sum((Decimal(y["net_total"]) for y in data["per_year"]
                                               if y["net_total"] is not None), ZERO))}
    data["measures"] = _measures(definition, data["per_year"])
    return data


def _year(conn: Any, read: Any, row: Any, definition: Any, contract_id: str, year: int,
          decided: list[Any], instalments: list[Any]) -> dict[str, Any]:
    mine = [d for d in decided if d.year == year]
    restated = [d for d in mine if d.kind in ("close", "true_up")]  # adjustments carry no figures
    paid = sum((i.amount for i in instalments if i.year == year), ZERO)
    current_costs = [r for r in facts.cost_reports(conn, contract_id, year) if r.is_current]
    costs = sum((r.total_cost for r in current_costs), ZERO) if current_costs else None
    budget = facts.budget_now(conn, contract_id, definition, year)
    entry = definition.schedule_for(year)
    out: dict[str, Any] = {"year": year, "status": "closed" if mine else ("open" if paid else "not started"),
                           "budget": fmt_money(budget), "costs": fmt_money(costs) if costs is not None else None,
                           "variance": fmt_money(budget - costs) if costs is not None else None,
                           "risk_share": entry.risk_share, "measures": {}, "corridor": []}
    if mine:
        first, last = json.loads(mine[0].figures), json.loads(restated[-1].trace)
        rs = first.get("risk_share") or {}
        true_ups = sum((d.amount for d in mine[1:] if d.kind == "true_up"), ZERO)
        adjustments = sum((d.amount for d in mine[1:] if d.kind not in ("close", "true_up")), ZERO)
        out["components"] = {
            "core": first["core"], "outcomes": first["outcome_payment"], "reserve": first["reserve"],
            "risk adjustment": rs.get("adjustment", "0.00"), "high-cost": first["high_cost_reimbursement"],
            "true-ups": fmt_money(true_ups), "adjustments": fmt_money(adjustments)}
        out["total"] = first["total"]
        out["net_total"] = fmt_money(Decimal(first["total"]) + true_ups + adjustments)
        out["budget"] = json.loads(restated[-1].figures)["budget"]
        reference = Decimal(rs["reference"]) if rs.get("reference") else Decimal(out["budget"])
        if costs is not None:
            out["variance"] = fmt_money(Decimal(out["budget"]) - costs)
        for i in last.get("indicators", []):
            for m in i.get("measures", []):
                out["measures"][m["id"]] = {"value": m.get("value"), "baseline": m.get("baseline"),
                                            "scoring": m.get("scoring")}
    else:
        out["components"] = {"core": fmt_money(paid), "outcomes": "0.00", "reserve": "0.00",
                             "risk adjustment": "0.00", "high-cost": "0.00", "true-ups": "0.00",
                             "adjustments": "0.00"}
        out["total"] = fmt_money(paid) if paid else None
        out["net_total"] = out["total"]
        reference = budget
        if paid or current_costs:
            provisional = read.provisional(conn, row, definition, year)
            for ind in provisional.indicators:
                for m in ind.measures:
                    if m.value is not None:
                        out["measures"][m.measure_id] = {"value": fmt(m.value), "baseline": m.trace.get("baseline"),
                                                         "scoring": m.trace.get("scoring"), "provisional": True}
    if entry.risk_share:
        terms = definition.risk_share(entry.risk_share)
        out["corridor"] = [{"upto": fmt(t.upto), "low": fmt_money(reference * (1 - t.upto)),
                            "high": fmt_money(reference * (1 + t.upto))} for t in terms.tiers if t.upto is not None]
        out["reference"] = fmt_money(reference)
    return out


def _decision_row(d: Any) -> dict[str, Any]:
    figures = json.loads(d.figures)
    return {"year": d.year, "kind": d.kind, "decided_at": d.decided_at, "actor": d.actor,
            "amount": fmt_money(d.amount), "reason": d.reason, "notification_id": d.notification_id,
            "year_close_payment": figures.get("year_close_payment")}


def _thresholds(scoring: Mapping[str, Any] | None) -> dict[str, str]:
    if not scoring:
        return {}
    if scoring.get("rule") == "fixed":
        return {f"target ({scoring.get('direction')})": scoring["target"]}
    if scoring.get("rule") == "sliding":
        return {"zero_at": scoring["zero_at"], "full_at": scoring["full_at"]}
    out = {}
    for b in scoring.get("bands", []):
        key = "at_least" if "at_least" in b else "at_most"
        out[f"{key} → {b['score']}"] = b[key]
    return out


def _measures(definition: Any, per_year: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for ind in definition.indicators:
        for m in ind.measures:
            rows = [{"year": y["year"], **y["measures"][m.id]} for y in per_year if m.id in y["measures"]]
            if not rows:
                continue
            names: dict[str, None] = {}
            for r in rows:
                r["thresholds"] = _thresholds(r.get("scoring"))
                names.update(dict.fromkeys(r["thresholds"]))
            out.append({"indicator_id": ind.id, "measure_id": m.id, "name": ind.name, "weight": fmt(ind.weight),
                        "paid_from_year": ind.paid_from_year, "rows": rows, "threshold_names": list(names)})
    return out


def _as_of(projections: Any, contract_id: str) -> dict[str, Any] | None:
    """For a report of the past: the instant, and the contract's last event recorded by then."""
    if projections.as_of_instant is None:
        return None
    from sqlalchemy import func, select

    from . import schema as t

    with projections.engine.connect() as conn:
        last = conn.execute(select(func.max(t.audit_trail.c.notification_id))
                            .where(t.audit_trail.c.contract_id == contract_id)).scalar()
    return {"instant": projections.as_of_instant.isoformat(), "last_event": last}


def _checks(app: Any, projections: Any) -> dict[str, Any]:
    """``verify``'s result as the report was made: the chain, snapshots and record index, and (for the
    live read models) a row-by-row comparison with a rebuild from the events."""
    from ledger.audit import verify
    from ledger.checks import check_derived

    chain = verify(app)
    problems = [chain.problem["message"]] if chain.problem else []
    if not problems:
        problems += [p["message"] for p in check_derived(app)["problems"]]
    if projections is not None and projections.as_of_instant is None and not problems:
        from .verify import verify_read_models

        models = verify_read_models(projections)
        problems += [f"read model {d['table']} {d['key']} {d['column'] or 'row'}: live {d['live']}, "
                     f"from events {d['from_events']}" for d in models["differences"][:50]]
    return {"ok": not problems, "events_checked": chain.checked, "problems": problems}


def _verification(app: Any, projections: Any = None) -> dict[str, Any]:
    out: dict[str, Any] = {"max_notification_id": app.recorder.max_notification_id(), "digest": None,
                           "digest_error": None}
    try:
        out["checks"] = _checks(app, projections)
    except Exception as exc:  # noqa: BLE001 - the report still renders; the section says what failed
        out["checks"] = {"ok": False, "events_checked": 0, "problems": [f"{type(exc).__name__}: {exc}"]}
    try:
        from ledger.audit import digest  # type: ignore[attr-defined]
    except ImportError:
        out["digest_note"] = "this ledger has no digest function (ledger.audit.digest) yet"
        return out
    try:
        value = digest(app)
    except Exception as exc:  # the report still renders; the section says what failed
        out["digest_error"] = f"{type(exc).__name__}: {exc}"
        return out
    out["digest"] = value if isinstance(value, str) else json.dumps(value, indent=2, sort_keys=True, default=str)
    return out


# -------------------------------------------------------------------- render


def _money(value: Any) -> str:
    return "—" if value is None else f"{Decimal(value):,.2f}"


def _number(value: Any) -> str:
    if value is None:
        return "—"
    text = fmt(Decimal(value)) or ""
    return text if len(text) <= 10 else f"{Decimal(value):.4f}"


def render_html(data: Mapping[str, Any]) -> str:
    env = Environment(loader=PackageLoader("projections", "templates"),
                      autoescape=select_autoescape(["html", "j2"]), undefined=StrictUndefined,
                      trim_blocks=True, lstrip_blocks=True)
    env.filters["money"] = _money
    env.filters["number"] = _number
    cid = data["contract"]["contract_id"]
    years = [y["year"] for y in data["per_year"]]
    names = ["core", "outcomes", "reserve", "risk adjustment", "high-cost", "true-ups", "adjustments"]
    svg = {
        "payments": charts.payments_chart(
            years, {n: [Decimal(y["components"][n]) for y in data["per_year"]] for n in names},
            charts.salt_for(cid, "payments")),
        "costs": charts.cost_chart(
            years, [Decimal(y["budget"]) for y in data["per_year"]],
            [Decimal(y["costs"]) if y["costs"] is not None else None for y in data["per_year"]],
            [[(Decimal(c["low"]), Decimal(c["high"])) for c in y["corridor"]] for y in data["per_year"]],
            charts.salt_for(cid, "costs")),
        "measures": {},
    }
    for m in data["measures"]:
        by_year = {r["year"]: r for r in m["rows"]}
        svg["measures"][m["measure_id"]] = charts.indicator_chart(
            m["measure_id"], years,
            [Decimal(by_year[y]["value"]) if y in by_year and by_year[y]["value"] is not None else None for y in years],
            [Decimal(by_year[y]["baseline"]) if y in by_year and by_year[y].get("baseline") else None for y in years],
            {name: [Decimal(by_year[y]["thresholds"][name]) if y in by_year and name in by_year[y]["thresholds"]
                    else None for y in years] for name in m["threshold_names"]},
            charts.salt_for(cid, "measure", m["measure_id"]))
    return env.get_template(TEMPLATE).render(data=data, svg=svg, components=names)


def write(projections: Projections, contract_id: str, out: Path, year: int | None = None) -> dict[str, Any]:
    data = build(projections, contract_id, year)
    html = render_html(data)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(html, encoding="utf-8")
    return {"contract_id": contract_id, "out": str(out), "bytes": len(html.encode("utf-8")),
            "years": data["years"], "decisions": len(data["decisions"]), "charts": 2 + len(data["measures"]),
            "max_notification_id": data["verification"]["max_notification_id"],
            "verified": data["verification"]["checks"]["ok"],
            "verification_problems": data["verification"]["checks"]["problems"]}
