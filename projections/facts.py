"""Row-level reads for the audit views (explain, costs, reconcile, report).

Small functions over one connection to the read models; each returns plain rows
or values. The views assemble them with the decisions' stored figures and trace.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from sqlalchemy import and_, select
from sqlalchemy.engine import Connection, Row

from ledger.domain.definition import ContractDefinition, from_document
from ledger.domain.errors import InvalidCommand, NotFound
from ledger.domain.rules.budget import budget_for_year
from ledger.domain.variations import ContractTerms, attach, from_stored, terms_of, year_terms

from . import schema as t


def contract(conn: Connection, contract_id: str) -> tuple[Row[Any], ContractDefinition]:
    """The contract's row and registered definition, with the terms of every year attached (§7)."""
    row = conn.execute(select(t.contracts).where(t.contracts.c.contract_id == contract_id)).first()
    if row is None:
        raise NotFound(f"no contract {contract_id!r} is registered", code="unknown_contract")
    definition = from_document(json.loads(row.definition))
    attach(
        definition,
        ContractTerms(
            definition, [from_stored(json.loads(r.document)) for r in variation_rows(conn, contract_id)]
        ),
    )
    return row, definition


def variation_rows(conn: Connection, contract_id: str) -> list[Row[Any]]:
    return list(
        conn.execute(
            select(t.variations)
            .where(t.variations.c.contract_id == contract_id)
            .order_by(t.variations.c.notification_id)
        )
    )


def terms_baselines(
    conn: Connection, contract_id: str, definition: ContractDefinition, year: int
) -> dict[str, Decimal]:
    """The year's baselines: its terms' overlaid by recorded ones, unless a later variation in force sets them."""
    terms = terms_of(definition)
    rows = recorded_baselines(conn, contract_id)
    if terms is None:
        out = dict(definition.baselines)
        out.update((r.key, r.value) for r in rows)
        return out
    marks = [r.notification_id for r in variation_rows(conn, contract_id)]
    recorded = [(r.key, r.value, sum(1 for m in marks if m < r.notification_id)) for r in rows]
    return terms.baselines(year, recorded)


def check_year(row: Row[Any], definition: ContractDefinition, year: int) -> None:
    years = definition.term_years(bool(row.extended))
    if not 1 <= year <= years:
        raise InvalidCommand(
            f"year {year} is outside the contract term (1..{years})", code="year_outside_term"
        )


def decisions(conn: Connection, contract_id: str, year: int | None = None) -> list[Row[Any]]:
    """Year closes and true-ups in the order they were decided."""
    q = select(t.decisions).where(t.decisions.c.contract_id == contract_id)
    if year is not None:
        q = q.where(t.decisions.c.year == year)
    return list(conn.execute(q.order_by(t.decisions.c.year, t.decisions.c.notification_id)))


def decision_parties(conn: Connection, ids: Iterable[int]) -> dict[int, dict[str, Decimal]]:
    out: dict[int, dict[str, Decimal]] = {}
    for r in conn.execute(
        select(t.decision_parties)
        .where(t.decision_parties.c.notification_id.in_(list(ids)))
        .order_by(t.decision_parties.c.notification_id, t.decision_parties.c.party_id)
    ):
        out.setdefault(r.notification_id, {})[r.party_id] = r.amount
    return out


def submissions(conn: Connection, contract_id: str, year: int) -> list[Row[Any]]:
    """Every version of the year's submissions, in arrival order."""
    return list(
        conn.execute(
            select(t.submissions)
            .where(and_(t.submissions.c.contract_id == contract_id, t.submissions.c.year == year))
            .order_by(t.submissions.c.notification_id)
        )
    )


def cost_reports(conn: Connection, contract_id: str, year: int) -> list[Row[Any]]:
    """Every version of the year's cost reports, in arrival order."""
    return list(
        conn.execute(
            select(t.cost_reports)
            .where(and_(t.cost_reports.c.contract_id == contract_id, t.cost_reports.c.year == year))
            .order_by(t.cost_reports.c.notification_id)
        )
    )


def cases_by_report(
    conn: Connection, contract_id: str, report_ids: Iterable[str]
) -> dict[str, list[Row[Any]]]:
    out: dict[str, list[Row[Any]]] = {}
    ids = list(report_ids)
    if not ids:
        return out
    for r in conn.execute(
        select(t.high_cost_cases)
        .where(and_(t.high_cost_cases.c.contract_id == contract_id, t.high_cost_cases.c.report_id.in_(ids)))
        .order_by(t.high_cost_cases.c.report_id, t.high_cost_cases.c.case_ref)
    ):
        out.setdefault(r.report_id, []).append(r)
    return out


def recorded_baselines(conn: Connection, contract_id: str) -> list[Row[Any]]:
    return list(
        conn.execute(
            select(t.baselines)
            .where(t.baselines.c.contract_id == contract_id)
            .order_by(t.baselines.c.notification_id)
        )
    )


def baselines_now(conn: Connection, contract_id: str, definition: ContractDefinition) -> dict[str, Decimal]:
    """The contract's baselines overlaid with every recorded one (the latest wins)."""
    out = dict(definition.baselines)
    for r in recorded_baselines(conn, contract_id):
        out[r.key] = r.value
    return out


def budget_now(conn: Connection, contract_id: str, definition: ContractDefinition, year: int) -> Decimal:
    amount = conn.execute(
        select(t.budgets.c.amount)
        .where(
            and_(
                t.budgets.c.contract_id == contract_id,
                t.budgets.c.year == year,
                t.budgets.c.is_current.is_(True),
            )
        )
        .order_by(t.budgets.c.notification_id.desc())
    ).scalar()
    return amount if amount is not None else budget_for_year(year_terms(definition, year), year).amount


def instalments(conn: Connection, contract_id: str, year: int | None = None) -> list[Row[Any]]:
    q = select(t.instalments).where(t.instalments.c.contract_id == contract_id)
    if year is not None:
        q = q.where(t.instalments.c.year == year)
    return list(conn.execute(q.order_by(t.instalments.c.year, t.instalments.c.idx)))


def instalment_parties(conn: Connection, contract_id: str, year: int) -> list[Row[Any]]:
    return list(
        conn.execute(
            select(t.instalment_parties)
            .where(
                and_(t.instalment_parties.c.contract_id == contract_id, t.instalment_parties.c.year == year)
            )
            .order_by(t.instalment_parties.c.period, t.instalment_parties.c.party_id)
        )
    )


def disputes(conn: Connection, contract_id: str) -> list[Row[Any]]:
    return list(
        conn.execute(
            select(t.disputes)
            .where(t.disputes.c.contract_id == contract_id)
            .order_by(t.disputes.c.notification_id)
        )
    )
