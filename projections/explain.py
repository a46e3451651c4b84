"""Why a year's figures are what they are: the chain from each payment back to the data.

``explain`` assembles, for every decision of a contract year (the original close,
then each true-up, in order; or the provisional figures of an open year), each
indicator's submissions used with their version history, the combined value, the
thresholds and the baseline each came from, the score, weight, normalised weight
and earned amount; and the risk-share working. Every figure is the decision's own
(its stored ``figures`` and ``trace``): nothing is recomputed here, so the
explanation agrees with the statement to the penny by construction, and a reader
can redo the arithmetic from what it lists.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from sqlalchemy.engine import Connection, Row

from ledger.adapters.render import money_text, number_text
from ledger.domain.definition import ContractDefinition, Indicator, Measure, Threshold
from ledger.domain.errors import NotFound
from ledger.domain.numbers import ZERO, exact, fmt, fmt_money
from ledger.domain.variations import terms_of, year_terms

from . import facts
from .queries import ReadModels

_LATER = 2**62  # the notification id of "now", for an open year's provisional figures
_LABELS = {"close": "original close", "true_up": "true-up {n}", "adjustment": "manual adjustment {n}"}


def explain(read: ReadModels, contract_id: str, year: int, indicator: str | None = None) -> dict[str, Any]:
    with read.engine.connect() as conn:
        row, registered = facts.contract(conn, contract_id)
        facts.check_year(row, registered, year)
        definition = year_terms(registered, year)  # the terms in force for the year (payment rules §7)
        if (
            indicator is not None
            and definition.indicator(indicator) is None
            and definition.measure(indicator) is None
        ):
            raise NotFound(
                f"{indicator!r} is not an indicator of contract {contract_id!r}", code="unknown_indicator"
            )
        data = _YearData(conn, contract_id, definition, year)
        decided = facts.decisions(conn, contract_id, year)
        parties = facts.decision_parties(conn, [d.notification_id for d in decided])
        out: list[dict[str, Any]] = []
        if decided:
            previous: Mapping[str, Any] | None = None
            counts: dict[str, int] = {}
            for d in decided:
                counts[d.kind] = counts.get(d.kind, 0) + 1
                figures, trace = json.loads(d.figures), json.loads(d.trace)
                entry = {
                    "kind": d.kind,
                    "label": _LABELS.get(d.kind, d.kind).format(n=counts[d.kind]),
                    "notification_id": d.notification_id,
                    "decided_at": d.decided_at,
                    "actor": d.actor,
                    "reason": d.reason,
                    "amount": fmt_money(d.amount),
                    "by_party": {p: fmt_money(v) for p, v in parties.get(d.notification_id, {}).items()},
                }
                if d.kind not in ("close", "true_up"):
                    # a manual adjustment (e.g. an upheld dispute) moves money without recomputing the year
                    entry.update(figures=None, dispute_id=trace.get("dispute_id"))
                    out.append(entry)
                    continue
                entry.update(_decision(data, figures, trace, d.notification_id, indicator))
                if previous is not None:
                    entry["previous_total"] = previous["total"]
                out.append(entry)
                previous = figures
        else:
            settlement = read.provisional(conn, row, registered, year)
            entry = {
                "kind": "provisional",
                "label": "open year: provisional figures from the data held now",
                "notification_id": None,
                "decided_at": None,
                "actor": None,
                "reason": None,
                "amount": None,
                "by_party": None,
            }
            entry.update(_decision(data, settlement.figures(), dict(settlement.trace), _LATER, indicator))
            out.append(entry)
    net = None
    if decided:
        net = fmt_money(
            Decimal(out[0]["figures"]["total"]) + sum((Decimal(e["amount"]) for e in out[1:]), ZERO)
        )
    terms = terms_of(registered)
    return {
        "contract_id": contract_id,
        "year": year,
        "closed": bool(decided),
        "indicator": indicator,
        "terms": {"variations": terms.variation_ids(year) if terms is not None else []},
        "decisions": out,
        "net_total": net,
    }


class _YearData:
    """Every version of the year's submissions and cost reports, and the baselines recorded."""

    def __init__(self, conn: Connection, contract_id: str, definition: ContractDefinition, year: int) -> None:
        self.definition = definition
        self.year = year
        self.submissions = {r.submission_id: r for r in facts.submissions(conn, contract_id, year)}
        self.costs = {r.report_id: r for r in facts.cost_reports(conn, contract_id, year)}
        self.cases = facts.cases_by_report(conn, contract_id, self.costs)
        self.baselines = facts.recorded_baselines(conn, contract_id)


# ------------------------------------------------------------------ decision


def _decision(
    data: _YearData, figures: Mapping[str, Any], trace: Mapping[str, Any], at: int, only: str | None
) -> dict[str, Any]:
    d = data.definition
    traced = {i["id"]: i for i in trace.get("indicators", [])}
    with exact():
        linked_weight = sum((i.weight for i in d.indicators if i.paid_from_year <= data.year), ZERO)
    indicators = []
    for shown in figures["indicators"]:
        ind = d.indicator(shown["id"])
        if ind is None or (only is not None and only != ind.id and only not in {m.id for m in ind.measures}):
            continue
        indicators.append(_indicator(data, ind, shown, traced.get(ind.id, {}), trace, at, figures["pot"]))
    risk = None
    if only is None and figures.get("risk_share") is not None and trace.get("risk_share") is not None:
        risk = _risk_share(data, figures, trace["risk_share"], at)
    out: dict[str, Any] = {
        "figures": dict(figures),
        "budget": {"amount": figures["budget"], "history": trace.get("budget_history", [])},
        "schedule": trace.get("schedule"),
        "core": {
            "annual": figures["core"],
            "split": trace.get("core_split", {}),
            "instalments_paid": trace.get("instalments_paid"),
            "balance_at_close": figures.get("core_balance_at_close"),
        },
        "outcomes": {
            "pot": figures["pot"],
            "linked_weight_total": fmt(linked_weight),
            "payment": figures["outcome_payment"],
            "indicators": indicators,
        },
        "reserve": {"amount": figures["reserve"], "split": trace.get("reserve_split", {})},
        "risk_share": risk,
        "year_close": {
            "outcome_payment": figures["outcome_payment"],
            "reserve": figures["reserve"],
            "risk_share_adjustment": (figures.get("risk_share") or {}).get("adjustment", "0.00"),
            "high_cost_reimbursement": figures["high_cost_reimbursement"],
            "year_close_payment": figures["year_close_payment"],
            "total": figures["total"],
            "by_party": figures["by_party"],
        },
        "data_version": trace.get("data_version"),
        "rate_card": _rate_card(figures, trace),
        "health_gain": (
            {"figures": figures.get("health_gain"), "entries": trace.get("health_gain", [])}
            if figures.get("health_gain") is not None
            else None
        ),
    }
    if only is not None:
        out["risk_share_omitted"] = "explanation limited to one indicator"
    return out


_WHY = {
    "before_payment_years": "not payable: its year is before the rate card's paid_from_year",
    "already_paid": "not payable: the participant already has max_per_participant payable claims for it",
    "prerequisite_missing": "not payable: a required outcome has no earlier payable claim for the participant",
    "cap_reached": "not payable: a cap is reached (nothing left under it)",
}


def _rate_card(figures: Mapping[str, Any], trace: Mapping[str, Any]) -> dict[str, Any] | None:
    """Each claim of the year in evaluation order (period, arrival), why it is payable or not, and the
    cap state before it (payment rules §8)."""
    if figures.get("rate_card") is None:
        return None
    claims = []
    for c in (trace.get("rate_card") or {}).get("claims", []):
        why = (
            _WHY.get(c["reason"], c["reason"])
            if not c["payable"]
            else (
                "payable, capped: min(price, participant_cap − paid to the participant, contract_cap − paid "
                "under the card) is below the price"
                if c["capped"]
                else "payable at its price"
            )
        )
        claims.append(dict(c, why=why))
    return {"figures": figures["rate_card"], "claims": claims}


# ---------------------------------------------------------------- indicators


def _indicator(
    data: _YearData,
    ind: Indicator,
    shown: Mapping[str, Any],
    traced: Mapping[str, Any],
    trace: Mapping[str, Any],
    at: int,
    pot: str,
) -> dict[str, Any]:
    by_measure = {m["id"]: m for m in traced.get("measures", [])}
    with exact():
        sub_total = sum((m.weight for m in ind.subcomponents), ZERO)
    measures = []
    for m in ind.measures:
        share = None if ind.measure is not None else fmt(m.weight / sub_total)
        measures.append(_measure(data, m, by_measure.get(m.id, {}), trace.get("baselines", {}), at, share))
    return {
        "id": ind.id,
        "name": ind.name,
        "domain": ind.domain,
        "paid_from_year": ind.paid_from_year,
        "status": shown["status"],
        "value": shown["value"],
        "score": shown["score"],
        "weight": shown["weight"],
        "normalised_weight": shown["normalised_weight"],
        "earned": shown["earned"],
        "by_party": traced.get("by_party", {}),
        "attribution": {p: fmt(v) for p, v in ind.attribution} or {data.definition.lead_provider.id: "1"},
        "earned_rule": f"round({pot} × {shown['normalised_weight']} × {shown['score']})"
        if shown["status"] != "not_linked"
        else "not linked to payment this year: earns nothing",
        "measures": measures,
    }


def _measure(
    data: _YearData,
    m: Measure,
    traced: Mapping[str, Any],
    baselines: Mapping[str, str],
    at: int,
    share: str | None,
) -> dict[str, Any]:
    used_ids = list(traced.get("submissions", []))
    used = set(used_ids)
    submissions = sorted(
        (_submission(data, sid, used) for sid in used_ids),
        key=lambda x: (x.get("period") or "", x.get("provider_id") or "", x["submission_id"]),
    )
    excluded = []
    for r in data.submissions.values():
        if r.indicator_id != m.id or r.submission_id in used:
            continue
        if r.notification_id > at:
            why = "recorded after this decision"
        elif r.superseded_by is not None:
            why = f"superseded by {r.superseded_by}"
        else:
            why = "not used"
        excluded.append({**_sub_row(r), "reason": why})
    baseline = _baseline(data, m.id, baselines, at)
    return {
        "id": m.id,
        "unit": m.unit,
        "aggregation": m.aggregation,
        "subweight_share": share,
        "status": traced.get("status"),
        "value": traced.get("value"),
        "score": traced.get("score"),
        "combined_by_period": traced.get("periods", []),
        "submissions": submissions,
        "excluded_versions": excluded,
        "baseline": baseline,
        "scoring": traced.get("scoring"),
        "thresholds": _thresholds(m, traced.get("scoring"), baseline),
    }


def _sub_row(r: Row[Any]) -> dict[str, Any]:
    return {
        "submission_id": r.submission_id,
        "period": r.period,
        "provider_id": r.provider_id,
        "numerator": fmt(r.numerator),
        "denominator": fmt(r.denominator),
        "value": fmt(r.value),
        "recorded_at": r.recorded_at,
        "actor": r.actor,
    }


def _submission(data: _YearData, sid: str, used: set[str]) -> dict[str, Any]:
    r = data.submissions.get(sid)
    if r is None:  # read models behind the decision: list the id alone
        return {"submission_id": sid, "version": None}
    chain: list[str] = []
    previous = r.supersedes
    while previous is not None and previous in data.submissions and len(chain) < 1000:
        chain.append(previous)
        previous = data.submissions[previous].supersedes
    return {
        **_sub_row(r),
        "version": len(chain) + 1,
        "supersedes": r.supersedes,
        "superseded_versions": [{"submission_id": s, "excluded": s not in used} for s in chain],
        "later_superseded_by": r.superseded_by,
    }


def _baseline(data: _YearData, measure_id: str, used: Mapping[str, str], at: int) -> dict[str, Any] | None:
    short = measure_id.rsplit(".", 1)[-1]
    key = measure_id if measure_id in used else short if short in used else None
    if key is None:
        return None
    value = used[key]
    recorded = [r for r in data.baselines if r.key == key and r.notification_id < at]
    if recorded and recorded[-1].value == Decimal(value):
        last = recorded[-1]
        return {
            "key": key,
            "value": value,
            "source": "recorded",
            "recorded_at": last.recorded_at,
            "note": last.note,
            "actor": last.actor,
        }
    return {"key": key, "value": value, "source": "contract"}


def _thresholds(
    m: Measure, scoring: Mapping[str, Any] | None, baseline: Mapping[str, Any] | None
) -> list[dict[str, Any]]:
    """Each threshold as written in the contract and as resolved by the decision."""
    if not scoring:
        return []
    s = m.scoring

    def one(name: str, written: Threshold, resolved: str | None) -> dict[str, Any]:
        entry: dict[str, Any] = {"name": name, "resolved": resolved}
        if written.is_relative:
            entry["written"] = {"baseline_change": fmt(written.baseline_change)}
            entry["from_baseline"] = baseline["value"] if baseline else None
            entry["rule"] = f"baseline {entry['from_baseline']} × (1 + {fmt(written.baseline_change)})"
        else:
            entry["written"] = fmt(written.absolute)
        return entry

    if s.rule == "fixed" and s.target is not None:
        return [one(f"target ({s.direction} is better)", s.target, scoring.get("target"))]
    if s.rule == "sliding" and s.zero_at is not None and s.full_at is not None:
        return [
            one("zero_at", s.zero_at, scoring.get("zero_at")),
            one("full_at", s.full_at, scoring.get("full_at")),
        ]
    out = []
    # the definition's bands beside the decision's trace of them (a trace may hold fewer)
    for band, shown in zip(s.bands, scoring.get("bands", []), strict=False):
        key = "at_least" if band.higher_is_better else "at_most"
        entry = one(f"band {key} (score {fmt(band.score)})", band.threshold, shown.get(key))
        entry["met"] = shown.get("met")
        out.append(entry)
    return out


# ----------------------------------------------------------------- risk share


def _risk_share(
    data: _YearData, figures: Mapping[str, Any], rs: Mapping[str, Any], at: int
) -> dict[str, Any]:
    shown = figures["risk_share"]
    used = list(rs.get("cost_reports", []))
    reports = []
    by_provider: dict[str, Decimal] = {}
    by_period: dict[str, Decimal] = {}
    for c in rs.get("costs_by_provider_period", []):
        amount = Decimal(c["total_cost"])
        by_provider[c["provider_id"]] = by_provider.get(c["provider_id"], ZERO) + amount
        by_period[c["period"]] = by_period.get(c["period"], ZERO) + amount
        r = data.costs.get(c["report_id"])
        reports.append(
            {
                **c,
                "recorded_at": r.recorded_at if r else None,
                "supersedes": r.supersedes if r else None,
                "later_superseded_by": r.superseded_by if r else None,
            }
        )
    excluded = []
    for r in data.costs.values():
        if r.report_id in used:
            continue
        why = (
            "recorded after this decision"
            if r.notification_id > at
            else f"superseded by {r.superseded_by}"
            if r.superseded_by
            else "not used"
        )
        excluded.append(
            {
                "report_id": r.report_id,
                "provider_id": r.provider_id,
                "period": r.period,
                "total_cost": fmt(r.total_cost),
                "reason": why,
            }
        )
    contributions: dict[str, list[dict[str, str | None]]] = {}  # no report row: provider, period None
    for rid in used:
        r = data.costs.get(rid)
        for case in data.cases.get(rid, []):
            contributions.setdefault(case.case_ref, []).append(
                {
                    "report_id": rid,
                    "provider_id": r.provider_id if r else None,
                    "period": r.period if r else None,
                    "cost": fmt(case.cost),
                }
            )
    cases = [{**c, "reports": contributions.get(c["case_ref"], [])} for c in rs.get("high_cost_cases", [])]
    terms = data.definition.risk_share(rs["terms"]) if rs.get("terms") else None
    tiers = []
    for n, tier in enumerate(rs.get("tiers", [])):
        entry = dict(tier)
        if terms is not None and n < len(terms.tiers):
            entry["upto_fraction"] = fmt(terms.tiers[n].upto)
        entry["commissioner_share"] = fmt(Decimal(1) - Decimal(tier["provider_share"]))
        tiers.append(entry)
    capped = rs.get("cap_amount") is not None and abs(Decimal(rs["uncapped_adjustment"])) > Decimal(
        rs["cap_amount"]
    )
    return {
        "terms": rs.get("terms"),
        "reference_basis": rs.get("reference_basis"),
        "reference": shown["reference"],
        "direction": rs.get("direction"),
        "cost_reports": reports,
        "excluded_versions": excluded,
        "costs_by_provider": {p: fmt_money(v) for p, v in sorted(by_provider.items())},
        "costs_by_period": {p: fmt_money(v) for p, v in sorted(by_period.items())},
        "costs": shown["costs"],
        "high_cost_threshold": rs.get("high_cost_threshold"),
        "high_cost_cases": cases,
        "high_cost_excess": shown["high_cost_excess"],
        "variance": shown["variance"],
        "variance_rule": "reference − (costs − high_cost_excess)",
        "tiers": tiers,
        "commissioner_part": rs.get("commissioner_part"),
        "uncapped_adjustment": rs.get("uncapped_adjustment"),
        "cap": rs.get("cap"),
        "cap_amount": rs.get("cap_amount"),
        "capped": capped,
        "adjustment": shown["adjustment"],
        "adjustment_rule": (
            "−commissioner part (a gain: the provider returns the commissioner's share)"
            if rs.get("direction") == "gain"
            else "+commissioner part (a loss: the commissioner funds its share)"
        )
        + ", capped at cap × reference, rounded to pence",
        # who bears what (alliance terms, payment rules §5); traces recorded before these terms lack them
        "quality_link": rs.get("quality_link"),
        "split": rs.get("split"),
        "adjustment_by_party": rs.get("adjustment_by_party")
        or {data.definition.lead_provider.id: shown["adjustment"]},
        "high_cost_to": rs.get("high_cost_to", "lead"),
        "reimbursement_by_party": rs.get("reimbursement_by_party")
        or {data.definition.lead_provider.id: shown["high_cost_excess"]},
        "reimbursement_by_case": rs.get("reimbursement_by_case"),
    }


# ---------------------------------------------------------------------- text


_m = money_text
_n = number_text


def render(data: Mapping[str, Any]) -> str:
    lines = [
        f"Explanation  {data['contract_id']}  contract year {data['year']}"
        + ("" if data["closed"] else "  (open: provisional)")
    ]
    for d in data["decisions"]:
        lines += [
            "",
            "=" * 78,
            f"{d['label'].upper()}"
            + (
                f"  decided {d['decided_at']} by {d['actor']}  (event {d['notification_id']})"
                if d["decided_at"]
                else ""
            ),
        ]
        if d["reason"]:
            lines.append(f"  reason: {d['reason']}")
        if d["figures"] is None:
            lines.append(
                f"  manual adjustment {_m(d['amount'])}"
                + (f" (dispute {d['dispute_id']})" if d.get("dispute_id") else "")
                + "; the year's figures are unchanged"
            )
            lines += [f"    {p:<24}{_m(v):>20}" for p, v in d["by_party"].items()]
            continue
        if d["kind"] == "true_up":
            lines.append(
                f"  true-up = new total {_m(d['figures']['total'])} − previous total "
                f"{_m(d['previous_total'])} = {_m(d['amount'])}"
            )
            lines += [f"    {p:<24}{_m(v):>20}" for p, v in d["by_party"].items()]
        lines += _render_decision(d)
    if data["net_total"] is not None:
        lines += ["", f"Net total (original + true-ups): {_m(data['net_total'])}"]
    return "\n".join(lines)


def _render_decision(d: Mapping[str, Any]) -> list[str]:
    f = d["figures"]
    sched = d.get("schedule") or {}
    lines = [
        f"  budget {_m(f['budget'])}; schedule from year {sched.get('from_year')}: core {sched.get('core')}, "
        f"outcomes {sched.get('outcomes')}, reserve {sched.get('reserve')}, "
        f"risk share {sched.get('risk_share') or 'none'}",
        f"  core {_m(f['core'])} = round(budget × {sched.get('core')}); pot {_m(f['pot'])} = "
        f"round(budget × {sched.get('outcomes')})",
    ]
    out = d["outcomes"]
    card = d.get("rate_card")
    if card is not None:
        lines.append(
            f"  rate card: {card['figures']['payable']} of {card['figures']['claims']} claims payable, "
            f"payment {_m(card['figures']['payment'])}, capped {_m(card['figures']['capped'])}"
        )
        for c in card["claims"]:
            lines.append(
                f"    claim {c['claim_id']} {c['participant_id']} {c['outcome_id']} {c['period']} "
                f"({c['provider_id']}): {_m(c['amount'])}, {c['why']} [before it: participant "
                f"{_m(c['participant_paid_before'])}, contract {_m(c['contract_paid_before'])}]"
            )
    for entry in (d.get("health_gain") or {}).get("entries", []):
        lines.append(
            f"  health gain {entry['id']}: £{entry['price_per_point']}/point, min episodes "
            f"{entry['min_episodes']}, floor {entry['floor']}, cap {entry['cap']}"
        )
        for party, p in entry["providers"].items():
            lines.append(
                f"    {party}: {p['episodes']} episodes, mean gain {p['mean_gain']}, mean expected "
                f"{p['mean_expected']}, excess {p['excess']}, {p['status']}, raw {p['raw']}, payment "
                f"{_m(p['payment'])}; episodes used: {', '.join(p['episodes_used'])}"
            )
    lines.append(f"  linked weights total {out['linked_weight_total']}")
    for ind in out["indicators"]:
        lines += [
            "",
            f"  Indicator {ind['id']} ({ind['status']}): weight {ind['weight']}, normalised "
            f"{_n(ind['normalised_weight'])}, score {_n(ind['score'])}, earned {_m(ind['earned'])}",
            f"    earned = {ind['earned_rule']}",
        ]
        for m in ind["measures"]:
            head = f"    measure {m['id']}" + (
                f" (share {_n(m['subweight_share'])})" if m["subweight_share"] else ""
            )
            lines.append(
                f"{head}: {m['unit']}, {m['aggregation']}; value {_n(m['value'])}; score {_n(m['score'])}"
                + ("" if m["status"] != "missing" else "  MISSING (no submission)")
            )
            if m["baseline"]:
                b = m["baseline"]
                src = (
                    f"recorded {b['recorded_at']} by {b['actor']}"
                    + (f" ({b['note']})" if b.get("note") else "")
                    if b["source"] == "recorded"
                    else "contract baselines"
                )
                lines.append(f"      baseline {b['key']} = {b['value']} from {src}")
            for th in m["thresholds"]:
                how = th.get("rule") or f"absolute {th['written']}"
                met = "" if th.get("met") is None else ("  met" if th["met"] else "  not met")
                lines.append(f"      {th['name']}: {_n(th['resolved'])}  ({how}){met}")
            for p in m["combined_by_period"]:
                fig = f"{p['numerator']}/{p['denominator']}" if "numerator" in p else p["value"]
                lines.append(f"      period {p['period']}: combined {fig}")
            for s in m["submissions"]:
                fig = (
                    s.get("value")
                    if s.get("value") is not None
                    else f"{s.get('numerator')}/{s.get('denominator')}"
                )
                ver = f"v{s['version']}" if s.get("version") else "v?"
                sup = "".join(
                    f", supersedes {v['submission_id']} ({'excluded' if v['excluded'] else 'USED'})"
                    for v in s.get("superseded_versions", [])
                )
                later = (
                    f", later superseded by {s['later_superseded_by']}"
                    if s.get("later_superseded_by")
                    else ""
                )
                lines.append(
                    f"      used {s['submission_id']} {ver} {s.get('period')} {s.get('provider_id')}: "
                    f"{fig}{sup}{later}"
                )
            for x in m["excluded_versions"]:
                lines.append(
                    f"      excluded {x['submission_id']} {x['period']} {x['provider_id']}: {x['reason']}"
                )
    lines.append(f"  outcome payment = Σ earned = {_m(out['payment'])}")
    rs = d.get("risk_share")
    if rs:
        lines += [
            "",
            f"  Risk share ({rs['terms']}, reference = {rs['reference_basis']} {_m(rs['reference'])})",
        ]
        for c in rs["cost_reports"]:
            lines.append(
                f"    cost {c['report_id']} {c['period']} {c['provider_id']:<14}{_m(c['total_cost']):>18}"
                + (f"  (later superseded by {c['later_superseded_by']})" if c["later_superseded_by"] else "")
            )
        for x in rs["excluded_versions"]:
            lines.append(f"    excluded {x['report_id']} {x['period']} {x['provider_id']}: {x['reason']}")
        lines += [f"    by provider {p}: {_m(v)}" for p, v in rs["costs_by_provider"].items()]
        lines.append(f"    costs C = {_m(rs['costs'])}")
        for c in rs["high_cost_cases"]:
            lines.append(
                f"    high-cost case {c['case_ref']}: {_m(c['cost'])} − threshold "
                f"{_m(rs['high_cost_threshold'])} → excess {_m(c['excess'])}"
            )
        lines += [
            f"    high-cost excess E = {_m(rs['high_cost_excess'])}",
            f"    variance V = R − (C − E) = {_m(rs['variance'])} ({rs['direction']})",
        ]
        for tier in rs["tiers"]:
            lines.append(
                f"    tier {_m(tier['from'])} – {_m(tier['to']) if tier['to'] else 'beyond'}: "
                f"slice {_m(tier['slice'])}, provider share {tier['provider_share']}, "
                f"commissioner part {_n(tier['commissioner_part'])}"
            )
        lines.append(
            f"    commissioner part K = {_n(rs['commissioner_part'])}; uncapped {_n(rs['uncapped_adjustment'])}; "
            f"cap {rs['cap'] or 'none'}"
            + (f" = {_m(rs['cap_amount'])}" if rs["cap_amount"] else "")
            + ("  (CAPPED)" if rs["capped"] else "")
        )
        lines.append(f"    adjustment A = {_m(rs['adjustment'])}")
        q = rs.get("quality_link")
        if q:
            lines.append(
                f"    quality link: Q = min(1, outcome payment {_m(q['outcome_payment'])} / pot {_m(q['pot'])}) "
                f"= {_n(q['quality_factor'])}; "
                + ("gain shares above are × Q" if q["applies"] else "a loss year: shares unaffected")
            )
        lines.append(
            "    A borne "
            + (
                "by split " + ", ".join(f"{p} {v}" for p, v in rs["split"].items())
                if rs.get("split")
                else "by the lead provider"
            )
            + ": "
            + ", ".join(f"{p} {_m(v)}" for p, v in rs["adjustment_by_party"].items())
        )
        for case in rs.get("reimbursement_by_case") or []:
            lines.append(
                f"    case {case['case_ref']} excess {_m(case['excess'])} to reporters: "
                + ", ".join(
                    f"{p} ({_m(v['cost'])}) {_n(v['excess_part'])}" for p, v in case["by_provider"].items()
                )
            )
        lines.append(
            f"    E to {'the reporting providers' if rs['high_cost_to'] == 'reporting' else 'the lead provider'}: "
            + ", ".join(f"{p} {_m(v)}" for p, v in rs["reimbursement_by_party"].items())
        )
    yc = d["year_close"]
    lines += [
        "",
        f"  year-close payment = outcomes {_m(yc['outcome_payment'])} + reserve {_m(yc['reserve'])} "
        f"+ adjustment {_m(yc['risk_share_adjustment'])} + high-cost {_m(yc['high_cost_reimbursement'])} "
        + (f"+ rate card {_m(f['rate_card']['payment'])} " if f.get("rate_card") else "")
        + (
            f"+ health gain {_m(str(sum(Decimal(g['payment']) for g in f['health_gain'])))} "
            if f.get("health_gain")
            else ""
        )
        + f"= {_m(yc['year_close_payment'])}",
        f"  total = core {_m(f['core'])} + year-close payment = {_m(yc['total'])}",
    ]
    lines += [f"    {p:<24}{_m(v):>20}" for p, v in yc["by_party"].items()]
    return lines
