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
import os
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from sqlalchemy import func, select

from ledger.adapters import audit
from ledger.adapters.audit import verify
from ledger.adapters.tables import progress
from ledger.domain.errors import LedgerError
from ledger.domain.numbers import ZERO, fmt, fmt_money
from ledger.domain.rules.completeness import year_gaps
from ledger.domain.variations import terms_of, year_terms
from ledger.usecases.checks import check_derived

from . import facts
from . import schema as t
from .bootstrap import Projections
from .schedule import schedule_lines
from .verify import verify_read_models

TEMPLATE = "report.html.j2"


def build(
    projections: Projections, contract_id: str, year: int | None = None, digest: str | None = None
) -> dict[str, Any]:
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
        disputes = [
            {
                "year": r.year,
                "dispute_id": r.dispute_id,
                "raised_by": r.raised_by,
                "raised_at": r.raised_at,
                "reason": r.reason,
                "decision": r.decision,
                "status": r.status,
                "note": r.resolution_note,
                "resolved_at": r.resolved_at,
                "resolved_by": r.resolved_by,
            }
            for r in facts.disputes(conn, contract_id)
            if year is None or r.year == year
        ]
        per_year = {
            y: _year(conn, read, row, definition, contract_id, y, decided, instalments) for y in years
        }
        quality = _data_quality(conn, definition, row, contract_id, years, decided)
    terms = terms_of(definition)
    data: dict[str, Any] = {
        "contract": contract,
        "years": years,
        "scope": f"year {year}" if year is not None else "all years",
        "per_year": [per_year[y] for y in years],
        "decisions": [_decision_row(d) for d in decided if year is None or d.year == year],
        "disputes": disputes,
        "variations": [
            dict(v, changes=held.summary())
            # the read models' variation rows and the definition's, in the same order
            for v, held in zip(contract["variations"], terms.variations if terms else (), strict=True)
        ],
        "verification": _verification(projections.app, digest, projections),
        "as_of": _as_of(projections, contract_id),
        "generated_at": datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z"),
    }
    data["true_ups"] = [d for d in data["decisions"] if d["kind"] != "close"]
    data["totals"] = {
        "decided": fmt_money(
            sum((Decimal(y["net_total"]) for y in data["per_year"] if y["net_total"] is not None), ZERO)
        )
    }
    data["measures"] = _measures(definition, data["per_year"])
    data["by_party"] = _by_party(read, definition, contract_id, year)
    data["indicator_scores"] = _indicator_scores(definition, data["per_year"])
    data["risk_terms"] = _risk_terms(definition)
    data["data_quality"] = quality
    data["figures"] = FIGURES
    return data


# Every figure of the page, in order: (anchor, title, the section explaining it)
FIGURES = [
    {
        "id": "fig-payments",
        "n": 1,
        "title": "Payment components by contract year",
        "explained": "explain-payments",
    },
    {
        "id": "fig-adjustments",
        "n": 2,
        "title": "Adjustments to the core: outcomes, risk share, high-cost, true-ups",
        "explained": "explain-adjustments",
    },
    {
        "id": "fig-costs",
        "n": 3,
        "title": "Cost against budget, with the risk-share corridor",
        "explained": "explain-risk-share",
    },
    {
        "id": "fig-indicators",
        "n": 4,
        "title": "Indicator values against baseline and thresholds",
        "explained": "explain-indicators",
    },
]


def _by_party(read: Any, definition: Any, contract_id: str, year: int | None) -> dict[str, Any]:
    """Each party's payments per contract year (every decided payment of the dated schedule), lead first."""
    parties = list(definition.providers)
    names = {p.id: p.name for p in (definition.lead_provider, *definition.subcontractors)}
    cells: dict[tuple[int, str], Decimal] = {}
    for line in schedule_lines(read, contract_id, year):
        key = (line["year"], line["party"])
        cells[key] = cells.get(key, ZERO) + Decimal(line["amount"])
        if line["party"] not in parties:
            parties.append(line["party"])
    years = sorted({y for y, _ in cells})
    return {
        "years": years,
        "rows": [
            {
                "party": p,
                "name": names.get(p),
                "role": "lead provider" if p == definition.lead_provider.id else "subcontractor",
                "amounts": {y: fmt_money(cells.get((y, p), ZERO)) for y in years},
                "total": fmt_money(sum((cells.get((y, p), ZERO) for y in years), ZERO)),
            }
            for p in parties
        ],
        "totals": {y: fmt_money(sum((v for (yy, _), v in cells.items() if yy == y), ZERO)) for y in years},
    }


def _indicator_scores(definition: Any, per_year: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for ind in definition.indicators:
        cells = {y["year"]: y["indicators"][ind.id] for y in per_year if ind.id in y.get("indicators", {})}
        out.append(
            {
                "id": ind.id,
                "name": ind.name,
                "weight": fmt(ind.weight),
                "paid_from_year": ind.paid_from_year,
                "years": cells,
            }
        )
    return out


def _pct(value: Decimal | None) -> str:
    return "—" if value is None else f"{(value * 100).normalize():f}%"


def _risk_terms(definition: Any) -> list[dict[str, Any]]:
    """Each risk share's tiers as percentage bands of the reference, and who bears what in each."""
    out = []
    for terms in definition.risk_shares:
        lower = ZERO
        tiers = []
        for tier in terms.tiers:
            band = f"{_pct(lower)} to {_pct(tier.upto)}" if tier.upto is not None else f"beyond {_pct(lower)}"
            tiers.append(
                {
                    "band": band,
                    "provider_gain": _pct(tier.gain_share),
                    "commissioner_gain": _pct(1 - tier.gain_share),
                    "provider_loss": _pct(tier.loss_share),
                    "commissioner_loss": _pct(1 - tier.loss_share),
                }
            )
            lower = tier.upto if tier.upto is not None else lower
        years = [e.from_year for e in definition.schedule if e.risk_share == terms.name]
        out.append(
            {
                "name": terms.name,
                "reference": terms.reference,
                "cap": _pct(terms.cap),
                "high_cost_threshold": fmt_money(terms.high_cost_threshold)
                if terms.high_cost_threshold is not None
                else None,
                "from_years": years,
                "tiers": tiers,
            }
        )
    return out


def _data_quality(
    conn: Any, definition: Any, row: Any, contract_id: str, years: list[int], decided: list[Any]
) -> dict[str, Any]:
    """Gaps per year (as ``completeness`` reports them, from the read models), data recorded after a year's
    close (late data), superseded records, rejected records by code, and refused access."""
    calendar = definition.calendar(bool(row.extended))
    per_year = []
    for y in years:
        subs = facts.submissions(conn, contract_id, y)
        costs = facts.cost_reports(conn, contract_id, y)
        gaps = year_gaps(
            definition,
            y,
            [p.label for p in calendar.periods(y)],
            {(r.provider_id, r.period) for r in costs if r.is_current},
            {(r.indicator_id, r.period) for r in subs if r.is_current},
        )
        closes = [d.notification_id for d in decided if d.year == y and d.kind == "close"]
        late = [r for r in [*subs, *costs] if closes and r.notification_id > closes[0]]
        per_year.append(
            {
                "year": y,
                "complete": gaps.complete,
                "gaps": gaps.lines(),
                "cost_reports_missing": len(gaps.cost_reports_missing),
                "submissions_missing": len(gaps.submissions_missing),
                "late": len(late),
                "superseded": sum(1 for r in [*subs, *costs] if not r.is_current),
                "submissions": len(subs),
                "cost_reports": len(costs),
            }
        )
    rejected = [
        {"code": code, "count": n}
        for code, n in conn.execute(
            select(t.rejected_records.c.code, func.count())
            .where(t.rejected_records.c.contract_id == contract_id)
            .group_by(t.rejected_records.c.code)
            .order_by(func.count().desc(), t.rejected_records.c.code)
        )
    ]
    refused = [
        {"actor": r.actor, "action": r.action, "reason": r.reason, "recorded_at": r.recorded_at}
        for r in conn.execute(
            select(t.access_refusals)
            .where(t.access_refusals.c.contract_id == contract_id)
            .order_by(t.access_refusals.c.notification_id)
        )
    ]
    return {
        "years": per_year,
        "rejected": rejected,
        "rejected_total": sum(r["count"] for r in rejected),
        "refused": refused,
    }


def _year(
    conn: Any,
    read: Any,
    row: Any,
    definition: Any,
    contract_id: str,
    year: int,
    decided: list[Any],
    instalments: list[Any],
) -> dict[str, Any]:
    mine = [d for d in decided if d.year == year]
    restated = [d for d in mine if d.kind in ("close", "true_up")]  # adjustments carry no figures
    paid = sum((i.amount for i in instalments if i.year == year), ZERO)
    current_costs = [r for r in facts.cost_reports(conn, contract_id, year) if r.is_current]
    costs = sum((r.total_cost for r in current_costs), ZERO) if current_costs else None
    budget = facts.budget_now(conn, contract_id, definition, year)
    entry = year_terms(definition, year).schedule_for(year)
    out: dict[str, Any] = {
        "year": year,
        "status": "closed" if mine else ("open" if paid else "not started"),
        "budget": fmt_money(budget),
        "costs": fmt_money(costs) if costs is not None else None,
        "variance": fmt_money(budget - costs) if costs is not None else None,
        "risk_share": entry.risk_share,
        "measures": {},
        "corridor": [],
        "indicators": {},
    }
    if mine:
        first, last = json.loads(mine[0].figures), json.loads(restated[-1].trace)
        rs = first.get("risk_share") or {}
        true_ups = sum((d.amount for d in mine[1:] if d.kind == "true_up"), ZERO)
        adjustments = sum((d.amount for d in mine[1:] if d.kind not in ("close", "true_up")), ZERO)
        out["components"] = {
            "core": first["core"],
            "outcomes": first["outcome_payment"],
            "reserve": first["reserve"],
            "risk adjustment": rs.get("adjustment", "0.00"),
            "high-cost": first["high_cost_reimbursement"],
            "true-ups": fmt_money(true_ups),
            "adjustments": fmt_money(adjustments),
        }
        out["total"] = first["total"]
        out["net_total"] = fmt_money(Decimal(first["total"]) + true_ups + adjustments)
        out["budget"] = json.loads(restated[-1].figures)["budget"]
        reference = Decimal(rs["reference"]) if rs.get("reference") else Decimal(out["budget"])
        if costs is not None:
            out["variance"] = fmt_money(Decimal(out["budget"]) - costs)
        out["indicators"] = {
            i["id"]: {"score": i.get("score"), "earned": i.get("earned"), "status": i.get("status")}
            for i in json.loads(restated[-1].figures).get("indicators", [])
        }
        for i in last.get("indicators", []):
            for m in i.get("measures", []):
                out["measures"][m["id"]] = {
                    "value": m.get("value"),
                    "baseline": m.get("baseline"),
                    "scoring": m.get("scoring"),
                }
    else:
        out["components"] = {
            "core": fmt_money(paid),
            "outcomes": "0.00",
            "reserve": "0.00",
            "risk adjustment": "0.00",
            "high-cost": "0.00",
            "true-ups": "0.00",
            "adjustments": "0.00",
        }
        out["total"] = fmt_money(paid) if paid else None
        out["net_total"] = out["total"]
        reference = budget
        if paid or current_costs:
            provisional = read.provisional(conn, row, definition, year)
            out["indicators"] = {
                i.id: {
                    "score": fmt(i.score),
                    "earned": fmt_money(i.earned),
                    "status": i.status,
                    "provisional": True,
                }
                for i in provisional.indicators
            }
            for ind in provisional.indicators:
                for m in ind.measures:
                    if m.value is not None:
                        out["measures"][m.measure_id] = {
                            "value": fmt(m.value),
                            "baseline": m.trace.get("baseline"),
                            "scoring": m.trace.get("scoring"),
                            "provisional": True,
                        }
    if entry.risk_share:
        terms = year_terms(definition, year).risk_share(entry.risk_share)
        out["corridor"] = [
            {
                "upto": fmt(t.upto),
                "pct": _pct(t.upto),
                "provider_gain": _pct(t.gain_share),
                "provider_loss": _pct(t.loss_share),
                "low": fmt_money(reference * (1 - t.upto)),
                "high": fmt_money(reference * (1 + t.upto)),
            }
            for t in terms.tiers
            if t.upto is not None
        ]
        out["reference"] = fmt_money(reference)
    return out


def _decision_row(d: Any) -> dict[str, Any]:
    figures = json.loads(d.figures)
    return {
        "year": d.year,
        "kind": d.kind,
        "decided_at": d.decided_at,
        "actor": d.actor,
        "amount": fmt_money(d.amount),
        "reason": d.reason,
        "notification_id": d.notification_id,
        "year_close_payment": figures.get("year_close_payment"),
    }


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
    seen: set[str] = set()
    for ind in _every_indicator(definition):
        for m in ind.measures:
            if m.id in seen:
                continue
            seen.add(m.id)
            rows = [{"year": y["year"], **y["measures"][m.id]} for y in per_year if m.id in y["measures"]]
            if not rows:
                continue
            names: dict[str, None] = {}
            for r in rows:
                r["thresholds"] = _thresholds(r.get("scoring"))
                names.update(dict.fromkeys(r["thresholds"]))
            out.append(
                {
                    "indicator_id": ind.id,
                    "measure_id": m.id,
                    "name": ind.name,
                    "weight": fmt(ind.weight),
                    "paid_from_year": ind.paid_from_year,
                    "rows": rows,
                    "threshold_names": list(names),
                }
            )
    return out


def _every_indicator(definition: Any) -> list[Any]:
    """Every indicator of any year's terms (a variation adds some and removes others), latest terms first."""
    terms = terms_of(definition)
    if terms is None or not terms.variations:
        return list(definition.indicators)
    out: dict[str, Any] = {}
    for year in range(terms.last_year(), 0, -1):
        for ind in terms.for_year(year).indicators:
            out.setdefault(ind.id, ind)
    ordered = [i.id for i in definition.indicators] + [
        k for k in out if k not in {i.id for i in definition.indicators}
    ]
    return [out[k] for k in ordered if k in out]


def _as_of(projections: Any, contract_id: str) -> dict[str, Any] | None:
    """For a report of the past: the instant, and the contract's last event recorded by then."""
    if projections.as_of_instant is None:
        return None

    with projections.engine.connect() as conn:
        last = conn.execute(
            select(func.max(t.audit_trail.c.notification_id)).where(
                t.audit_trail.c.contract_id == contract_id
            )
        ).scalar()
    instant = projections.as_of_instant.astimezone(UTC).isoformat().replace("+00:00", "Z")  # UTC, Z
    return {"instant": instant, "last_event": last}


def _checks(app: Any, projections: Any) -> dict[str, Any]:
    """``verify``'s result as the report was made: the chain, snapshots and record index, and (for the
    live read models) a row-by-row comparison with a rebuild from the events."""
    chain = verify(app)
    problems = [chain.problem["message"]] if chain.problem else []
    if not problems:
        problems += [p["message"] for p in check_derived(app)["problems"]]
    if projections is not None and projections.as_of_instant is None and not problems:
        models = verify_read_models(projections)
        problems += [f"read models: {models['unsettled']}"] if models.get("unsettled") else []
        problems += [
            f"read model {d['table']} {d['key']} {d['column'] or 'row'}: live {d['live']}, "
            f"from events {d['from_events']}"
            for d in models["differences"][:50]
        ]
    return {"ok": not problems, "events_checked": chain.checked, "problems": problems}


def _verification(app: Any, digest_text: str | None = None, projections: Any = None) -> dict[str, Any]:
    """``ledger.adapters.audit.verify`` run as the report is made (against a signed digest when one is given), the
    checks of derived state (:func:`_checks`) and the log's current digest."""
    out: dict[str, Any] = {
        "max_notification_id": app.recorder.max_notification_id(),
        "digest": None,
        "digest_error": None,
        "result": None,
        "given_digest": digest_text,
    }
    try:
        out["checks"] = _checks(app, projections)
    except Exception as exc:
        out["checks"] = {"ok": False, "events_checked": 0, "problems": [f"{type(exc).__name__}: {exc}"]}
    try:
        against = audit.load_digest(digest_text) if digest_text else None
        result = audit.verify(app, against) if against is not None else audit.verify(app)
        out["result"] = result.to_dict()
        out["result"]["checked_at"] = (
            datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
        )
    except Exception as exc:  # the report still renders; the section says what failed
        out["verify_error"] = f"{type(exc).__name__}: {exc}"
    try:
        value = audit.digest(app)
    except Exception as exc:
        out["digest_error"] = f"{type(exc).__name__}: {exc}"
        return out
    out["digest"] = (
        value if isinstance(value, str) else json.dumps(value, indent=2, sort_keys=True, default=str)
    )
    return out


# -------------------------------------------------------------------- render


def _money(value: Any) -> str:
    return "—" if value is None else f"{Decimal(value):,.2f}"


def _number(value: Any) -> str:
    if value is None:
        return "—"
    text = fmt(Decimal(value)) or ""
    return text if len(text) <= 10 else f"{Decimal(value):.4f}"


def _tier_labels(per_year: list[dict[str, Any]]) -> list[str]:
    corridor: list[dict[str, Any]] = next((y["corridor"] for y in per_year if y["corridor"]), [])
    out, lower = [], "0%"
    for c in corridor:
        who = (
            f"provider bears {c['provider_loss']}"
            if c["provider_gain"] == c["provider_loss"]
            else f"provider {c['provider_gain']} of gain, {c['provider_loss']} of loss"
        )
        out.append(f"±{c['pct']}: {who}" if lower == "0%" else f"±{lower}–{c['pct']}: {who}")
        lower = c["pct"]
    return out


def render_html(data: Mapping[str, Any]) -> str:
    from . import charts  # matplotlib (~1 s to import): paid by whoever draws a report, not by every start

    env = Environment(
        loader=PackageLoader("projections", "templates"),
        autoescape=select_autoescape(["html", "j2"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["money"] = _money
    env.filters["number"] = _number
    cid = data["contract"]["contract_id"]
    years = [y["year"] for y in data["per_year"]]
    names = ["core", "outcomes", "reserve", "risk adjustment", "high-cost", "true-ups", "adjustments"]
    svg: dict[str, Any] = {
        "payments": charts.payments_chart(
            years,
            {n: [Decimal(y["components"][n]) for y in data["per_year"]] for n in names},
            charts.salt_for(cid, "payments"),
        ),
        "costs": charts.cost_chart(
            years,
            [Decimal(y["budget"]) for y in data["per_year"]],
            [Decimal(y["costs"]) if y["costs"] is not None else None for y in data["per_year"]],
            [[(Decimal(c["low"]), Decimal(c["high"])) for c in y["corridor"]] for y in data["per_year"]],
            charts.salt_for(cid, "costs"),
            _tier_labels(data["per_year"]),
        ),
        "adjustments": charts.adjustments_chart(
            years,
            {n: [Decimal(y["components"][n]) for y in data["per_year"]] for n in names},
            charts.salt_for(cid, "adjustments"),
        ),
        "measures": {},
    }

    for m in progress(data["measures"], "drawing the indicator charts"):  # a bar on stderr only on a terminal
        by_year = {r["year"]: r for r in m["rows"]}
        svg["measures"][m["measure_id"]] = charts.indicator_chart(
            m["measure_id"],
            years,
            [
                Decimal(by_year[y]["value"]) if y in by_year and by_year[y]["value"] is not None else None
                for y in years
            ],
            [
                Decimal(by_year[y]["baseline"]) if y in by_year and by_year[y].get("baseline") else None
                for y in years
            ],
            {
                name: [
                    Decimal(by_year[y]["thresholds"][name])
                    if y in by_year and name in by_year[y]["thresholds"]
                    else None
                    for y in years
                ]
                for name in m["threshold_names"]
            },
            charts.salt_for(cid, "measure", m["measure_id"]),
        )
    return env.get_template(TEMPLATE).render(data=data, svg=svg, components=names)


def write(
    projections: Projections, contract_id: str, out: Path, year: int | None = None, digest: str | None = None
) -> dict[str, Any]:
    data = build(projections, contract_id, year, digest)
    html = render_html(data)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(html, encoding="utf-8")
    return {
        "contract_id": contract_id,
        "out": str(out),
        "bytes": len(html.encode("utf-8")),
        "years": data["years"],
        "decisions": len(data["decisions"]),
        "charts": 3 + len(data["measures"]),
        "max_notification_id": data["verification"]["max_notification_id"],
        "verified": data["verification"]["checks"]["ok"],
        "verification_problems": data["verification"]["checks"]["problems"],
    }


CHROMIUM_ENV = "OBC_LEDGER_CHROMIUM"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--no-pdf-header-footer",
    "--run-all-compositor-stages-before-draw",
]


def chromium() -> str:
    """The headless browser that prints the PDF: $OBC_LEDGER_CHROMIUM, else chromium on the PATH."""
    found = os.environ.get(CHROMIUM_ENV) or shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        raise LedgerError(
            f"no headless Chromium to print the PDF: install chromium (Debian: apt-get install "
            f"chromium) or set ${CHROMIUM_ENV}",
            code="chromium_not_found",
        )
    return found


def print_pdf(html: Path, pdf: Path, timeout: float = 180) -> dict[str, Any]:  # float-ok: seconds
    """Print the written page to A4 PDF with headless Chromium (the page's own @page rules set size and margins)."""
    browser = chromium()
    pdf.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="obc-ledger-chromium-") as profile:
        try:
            proc = subprocess.run(
                [
                    browser,
                    *CHROMIUM_FLAGS,
                    f"--user-data-dir={profile}",
                    f"--print-to-pdf={pdf.resolve()}",
                    html.resolve().as_uri(),
                ],
                capture_output=True,
                text=True,
                timeout=timeout,
            )
        except subprocess.TimeoutExpired:
            raise LedgerError(
                f"chromium did not print {pdf} within {timeout:.0f} s", code="pdf_failed"
            ) from None
    if proc.returncode != 0 or not pdf.exists() or pdf.stat().st_size == 0:
        tail = (proc.stderr or "").strip().splitlines()[-1:] or ["no output"]
        raise LedgerError(f"chromium could not print {pdf}: {tail[0][:200]}", code="pdf_failed")
    return {"pdf": str(pdf), "pdf_bytes": pdf.stat().st_size}
