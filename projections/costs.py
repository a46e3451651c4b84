"""Open book: a year's cost reports by provider, period and case, and budget vs cost variance.

Every version of every cost report is listed (superseded ones flagged and pointing
at their successor); totals use the current versions only, as the risk share does
(payment rules §5). The variance is budget − costs for every year; in a
risk-share year the rule's own variance, reference − (costs − high-cost excess),
is shown beside it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from ledger.domain.numbers import ZERO, fmt, fmt_money, money
from ledger.domain.variations import year_terms

from . import facts
from .queries import ReadModels


def costs(read: ReadModels, contract_id: str, year: int) -> dict[str, Any]:
    with read.engine.connect() as conn:
        row, definition = facts.contract(conn, contract_id)
        facts.check_year(row, definition, year)
        reports = facts.cost_reports(conn, contract_id, year)
        cases = facts.cases_by_report(conn, contract_id, [r.report_id for r in reports])
        budget = facts.budget_now(conn, contract_id, definition, year)
        decided = [d for d in facts.decisions(conn, contract_id, year) if d.kind in ("close", "true_up")]
    entry = year_terms(definition, year).schedule_for(year)
    terms = year_terms(definition, year).risk_share(entry.risk_share) if entry.risk_share else None
    threshold = terms.high_cost_threshold if terms else None

    listed = []
    by_provider: dict[str, Decimal] = {}
    by_period: dict[str, Decimal] = {}
    matrix: dict[str, dict[str, Decimal]] = {}
    by_case: dict[str, list[dict[str, Any]]] = {}
    total = ZERO
    for r in reports:
        listed.append(
            {
                "report_id": r.report_id,
                "provider_id": r.provider_id,
                "period": r.period,
                "total_cost": fmt_money(r.total_cost),
                "current": bool(r.is_current),
                "supersedes": r.supersedes,
                "superseded_by": r.superseded_by,
                "recorded_at": r.recorded_at,
                "actor": r.actor,
                "high_cost_cases": [
                    {"case_ref": c.case_ref, "cost": fmt_money(c.cost)} for c in cases.get(r.report_id, [])
                ],
            }
        )
        if not r.is_current:
            continue
        total += r.total_cost
        by_provider[r.provider_id] = by_provider.get(r.provider_id, ZERO) + r.total_cost
        by_period[r.period] = by_period.get(r.period, ZERO) + r.total_cost
        cell = matrix.setdefault(r.provider_id, {})
        cell[r.period] = cell.get(r.period, ZERO) + r.total_cost
        for c in cases.get(r.report_id, []):
            by_case.setdefault(c.case_ref, []).append(
                {"report_id": r.report_id, "provider_id": r.provider_id, "period": r.period, "cost": c.cost}
            )
    case_rows = []
    excess_total = ZERO
    for ref in sorted(by_case):
        cost = sum((c["cost"] for c in by_case[ref]), ZERO)
        excess = max(ZERO, cost - threshold) if threshold is not None else None
        excess_total += excess or ZERO
        case_rows.append(
            {
                "case_ref": ref,
                "cost": fmt_money(cost),
                "excess": fmt_money(excess) if excess is not None else None,
                "reports": [dict(c, cost=fmt_money(c["cost"])) for c in by_case[ref]],
            }
        )
    variance: dict[str, Any] = {
        "budget": fmt_money(budget),
        "costs": fmt_money(total),
        "variance": fmt_money(budget - total),
        "direction": "underspend" if budget > total else "overspend" if budget < total else "on budget",
    }
    if terms is not None:
        excess = money(excess_total)
        variance["risk_share"] = {
            "terms": terms.name,
            "reference_basis": terms.reference,
            "high_cost_excess": fmt_money(excess),
            "variance_before_sharing": fmt_money(budget - (total - excess))
            if terms.reference == "budget"
            else None,
        }
    decision = None
    if decided:
        last = decided[-1]
        figures = json.loads(last.figures)
        rs = figures.get("risk_share") or {}
        decision = {
            "kind": last.kind,
            "decided_at": last.decided_at,
            "budget": figures["budget"],
            "costs": rs.get("costs"),
            "variance": rs.get("variance"),
            "cost_reports_used": json.loads(last.trace).get("cost_reports_used", []),
        }
    return {
        "contract_id": contract_id,
        "year": year,
        "risk_share": entry.risk_share,
        "high_cost_threshold": fmt(threshold),
        "reports": listed,
        "current_reports": sum(1 for r in listed if r["current"]),
        "superseded_reports": sum(1 for r in listed if not r["current"]),
        "by_provider": {p: fmt_money(v) for p, v in sorted(by_provider.items())},
        "by_period": {p: fmt_money(v) for p, v in sorted(by_period.items())},
        "by_provider_period": {
            p: {k: fmt_money(v) for k, v in sorted(cells.items())} for p, cells in sorted(matrix.items())
        },
        "high_cost_cases": case_rows,
        "total_cost": fmt_money(total),
        "variance": variance,
        "decision": decision,
    }


def _m(value: str | None) -> str:
    return "—" if value is None else f"{Decimal(value):,.2f}"


def render(c: Mapping[str, Any]) -> str:
    lines = [
        f"Open book  {c['contract_id']}  contract year {c['year']}  "
        f"({c['current_reports']} current report(s), {c['superseded_reports']} superseded)",
        "",
    ]
    for r in c["reports"]:
        flag = "" if r["current"] else f"  SUPERSEDED by {r['superseded_by']}"
        sup = f"  (corrects {r['supersedes']})" if r["supersedes"] else ""
        lines.append(
            f"  {r['period']:<8} {r['provider_id']:<16} {r['report_id']:<26}{_m(r['total_cost']):>18}{sup}{flag}"
        )
        for case in r["high_cost_cases"]:
            lines.append(f"      case {case['case_ref']:<20}{_m(case['cost']):>18}")
    if not c["reports"]:
        lines.append("  no cost reports for this year")
    lines += ["", "By provider (current versions)"]
    lines += [f"  {p:<24}{_m(v):>20}" for p, v in c["by_provider"].items()]
    lines += ["", "By period (current versions)"]
    lines += [f"  {p:<24}{_m(v):>20}" for p, v in c["by_period"].items()]
    if c["high_cost_cases"]:
        lines += [
            "",
            "High-cost cases (year total across providers)"
            + (f", threshold {_m(c['high_cost_threshold'])}" if c["high_cost_threshold"] else ""),
        ]
        for case in c["high_cost_cases"]:
            lines.append(
                f"  {case['case_ref']:<24}{_m(case['cost']):>20}"
                + (f"  excess {_m(case['excess'])}" if case["excess"] is not None else "")
            )
    v = c["variance"]
    lines += [
        "",
        f"  {'Budget':<28}{_m(v['budget']):>16}",
        f"  {'Costs':<28}{_m(v['costs']):>16}",
        f"  {'Variance (budget − costs)':<28}{_m(v['variance']):>16}  {v['direction']}",
    ]
    if v.get("risk_share"):
        rs = v["risk_share"]
        lines.append(
            f"  risk share {rs['terms']}: high-cost excess {_m(rs['high_cost_excess'])}"
            + (
                f", variance before sharing {_m(rs['variance_before_sharing'])}"
                if rs["variance_before_sharing"]
                else ""
            )
        )
    d = c["decision"]
    if d:
        lines.append(
            f"  decided ({d['kind']} {d['decided_at']}): budget {_m(d['budget'])}"
            + (f", costs {_m(d['costs'])}, variance {_m(d['variance'])}" if d["costs"] else "")
        )
    return "\n".join(lines)
