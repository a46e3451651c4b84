"""Readable text for people: statements, rejected records, contract summaries."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from ledger.adapters.tables import table
from ledger.domain.ids import printable
from ledger.domain.numbers import fmt


def money_text(value: str | None) -> str:
    """Money for reading: thousands separators, two places; — for none."""
    return "—" if value is None else f"{Decimal(value):,.2f}"


def number_text(value: str | None, limit: int = 14, places: int = 10, mark: str = "…") -> str:
    """A ratio or score for reading, shortened past ``limit`` characters (the JSON keeps every digit)."""
    if value is None:
        return "—"
    text = fmt(Decimal(value)) or ""
    return text if len(text) <= limit else f"{Decimal(value):.{places}f}{mark}"


_m = money_text  # the statement table's short name


def _row(label: str, value: str | None, indent: int = 0) -> str:
    return f"{' ' * indent}{label:<{44 - indent}}{_m(value):>20}"


def render_statement(s: Mapping[str, Any]) -> str:
    closed = s["year_close_payment"] is not None
    lines = [
        f"Statement  {s['contract_id']}  contract year {s['year']}  "
        f"({'closed' if closed else 'open: figures so far'})",
        "",
        _row("Budget", s["budget"]),
        _row("Core (annual)", s["core"]["annual"]),
    ]
    for inst in s["core"]["instalments"]:
        lines.append(_row(f"instalment {inst['period']}", inst["amount"], 2))
    if "balance_at_close" in s["core"]:
        lines.append(_row("core balance paid at close", s["core"]["balance_at_close"], 2))
    out = s["outcomes"]
    lines += [
        "",
        _row("Outcomes pot", out["pot"]),
        f"  {'indicator':<28}{'status':<11}{'value':>14}{'score':>10}{'weight':>8}{'norm.':>8}{'earned':>16}",
    ]
    for ind in out["indicators"]:
        value = "—" if ind["value"] is None else f"{Decimal(ind['value']):.4f}"
        lines.append(
            f"  {ind['id'][:27]:<28}{ind['status']:<11}{value:>14}{Decimal(ind['score']):>10.4f}"
            f"{ind['weight']:>8}{Decimal(ind['normalised_weight']):>8.4f}{_m(ind['earned']):>16}"
        )
    lines.append(_row("Outcome payment", out["payment"]))
    lines.append(_row("Reserve", s["reserve"]))
    rs = s["risk_share"]
    if rs is not None:
        lines += [
            "",
            "Risk share",
            _row("reported costs", rs["costs"], 2),
            _row("high-cost excess", rs["high_cost_excess"], 2),
            _row("reference", rs["reference"], 2),
            _row(
                f"variance ({'underspend' if Decimal(rs['variance']) > 0 else 'overspend'})",
                rs["variance"],
                2,
            ),
            _row("adjustment", rs["adjustment"], 2),
        ]
    card = s.get("rate_card")
    if card is not None:
        lines += [
            "",
            f"Rate card: {card['payable']} of {card['claims']} claims payable"
            + "".join(f", {n} {reason.replace('_', ' ')}" for reason, n in card["not_payable"].items()),
            *(
                _row(f"{o['id']} ({o['payable']} of {o['claims']})", o["payment"], 2)
                for o in card["outcomes"]
            ),
            _row("capped (price not paid)", card["capped"], 2),
            _row("Rate-card payment", card["payment"]),
        ]
    for entry in s.get("health_gain") or []:
        lines += ["", f"Health gain {entry['id']}"]
        for party, p in entry["by_party"].items():
            lines.append(
                _row(
                    f"{party}: {p['episodes']} episodes, excess {p['excess']} ({p['status']})",
                    p["payment"],
                    2,
                )
            )
        lines.append(_row(f"Health-gain payment {entry['id']}", entry["payment"]))
    lines += [
        "",
        _row("High-cost reimbursement", s["high_cost_reimbursement"]),
        _row("Year-close payment", s["year_close_payment"]),
        _row("Total" if closed else "Total decided so far", s["total"]),
        "",
        "By party",
    ]
    for party, amount in s["by_party"].items():
        lines.append(_row(party, amount, 2))
    if s["true_ups"]:
        lines += ["", "True-ups"]
        net = Decimal(s["total"])
        for t in s["true_ups"]:
            net += Decimal(t["amount"])
            lines.append(_row(f"{t['decided_at']}", t["amount"], 2))
            lines.append(f"    {t['reason']}")
        lines.append(_row("Net total (original + true-ups)", format(net, "f")))
    return "\n".join(lines)


def render_rejections(rows: Sequence[Mapping[str, Any]]) -> str:
    if not rows:
        return "no rejected records"
    shown = [
        {  # nothing raw a sender wrote reaches a terminal
            "where": printable(f"{r['source']}:{r['line']}" if r["line"] is not None else str(r["source"])),
            "code": printable(r["code"]),
            "field": printable(r["field"]) if r["field"] else None,
            "message": printable(r["message"]),
        }
        for r in rows
    ]
    columns = [("where", "source:line"), ("code", "code"), ("field", "field"), ("message", "reason")]
    return table(columns, shown) + f"\n{len(rows)} rejected record(s)"
