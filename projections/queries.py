"""Queries over the read models: statements, history, submissions, decisions, contracts."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine, and_, select
from sqlalchemy.engine import Connection

from ledger.domain.definition import ContractDefinition
from ledger.domain.errors import InvalidCommand, LedgerError, NotFound
from ledger.domain.numbers import fmt, fmt_money
from ledger.domain.rules.budget import budget_for_year
from ledger.domain.rules.healthgain import Episode
from ledger.domain.rules.outcomes import Observation
from ledger.domain.rules.ratecard import Claim
from ledger.domain.rules.riskshare import CostFact
from ledger.domain.rules.settlement import settle_year
from ledger.domain.statement import closed_statement, open_statement
from ledger.domain.variations import terms_of, year_terms

from . import facts
from . import schema as t


class ReadModels:
    """Read-only access to the projected tables."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        # (contract id, stored definition, its variations' notification ids) -> definition
        self._definitions: dict[tuple[str, str, tuple[int, ...]], ContractDefinition] = {}

    def _contract(self, conn: Connection, contract_id: str) -> tuple[Any, ContractDefinition]:
        row = conn.execute(select(t.contracts).where(t.contracts.c.contract_id == contract_id)).first()
        if row is None:
            raise NotFound(f"no contract {contract_id!r} is registered", code="unknown_contract")
        marks = tuple(
            conn.execute(
                select(t.variations.c.notification_id).where(t.variations.c.contract_id == contract_id)
            ).scalars()
        )
        key = (contract_id, row.definition, marks)
        if key not in self._definitions:
            self._definitions[key] = facts.contract(conn, contract_id)[1]
        return row, self._definitions[key]

    @staticmethod
    def _check_year(row: Any, definition: ContractDefinition, year: int) -> None:
        years = definition.term_years(bool(row.extended))
        if not 1 <= year <= years:
            raise InvalidCommand(
                f"year {year} is outside the contract term (1..{years})", code="year_outside_term"
            )

    def contract_ids(self) -> list[str]:
        with self.engine.connect() as conn:
            return list(
                conn.execute(
                    select(t.contracts.c.contract_id).order_by(t.contracts.c.registered_at)
                ).scalars()
            )

    def statement(self, contract_id: str, year: int) -> dict[str, Any]:
        with self.engine.connect() as conn:
            row, definition = self._contract(conn, contract_id)
            self._check_year(row, definition, year)
            instalments = [
                (r.period, r.amount)
                for r in conn.execute(
                    select(t.instalments)
                    .where(and_(t.instalments.c.contract_id == contract_id, t.instalments.c.year == year))
                    .order_by(t.instalments.c.idx)
                )
            ]
            decided = list(
                conn.execute(
                    select(t.decisions)
                    .where(and_(t.decisions.c.contract_id == contract_id, t.decisions.c.year == year))
                    .order_by(t.decisions.c.notification_id)
                )
            )
            if decided:
                parties = self._decision_parties(conn, [d.notification_id for d in decided])
                true_ups = [
                    {
                        "decided_at": d.decided_at,
                        "amount": d.amount,
                        "reason": d.reason,
                        "by_party": parties.get(d.notification_id, {}),
                    }
                    for d in decided[1:]
                ]
                return closed_statement(
                    contract_id,
                    year,
                    json.loads(decided[0].figures),
                    instalments,
                    true_ups,
                    self._variation_ids(definition, year),
                )
            provisional = self.provisional(conn, row, definition, year)
            paid: dict[str, Decimal] = {}
            for r in conn.execute(
                select(t.instalment_parties).where(
                    and_(
                        t.instalment_parties.c.contract_id == contract_id, t.instalment_parties.c.year == year
                    )
                )
            ):
                paid[r.party_id] = paid.get(r.party_id, Decimal(0)) + r.amount
            return open_statement(
                contract_id,
                year,
                provisional,
                instalments,
                paid,
                year_terms(definition, year).providers,
                self._variation_ids(definition, year),
            )

    @staticmethod
    def _variation_ids(definition: ContractDefinition, year: int) -> list[str]:
        terms = terms_of(definition)
        return terms.variation_ids(year) if terms is not None else []

    @staticmethod
    def _decision_parties(conn: Connection, ids: list[int]) -> dict[int, dict[str, Decimal]]:
        out: dict[int, dict[str, Decimal]] = {}
        for r in conn.execute(
            select(t.decision_parties).where(t.decision_parties.c.notification_id.in_(ids))
        ):
            out.setdefault(r.notification_id, {})[r.party_id] = r.amount
        return out

    def provisional(self, conn: Connection, row: Any, definition: ContractDefinition, year: int) -> Any:
        """Settle an open year from the current submissions and cost reports (figures so far)."""
        contract_id = row.contract_id
        calendar = definition.calendar(bool(row.extended))
        observations = [
            Observation(
                r.submission_id,
                r.indicator_id,
                r.provider_id,
                calendar.stored(r.period),
                r.numerator,
                r.denominator,
                r.value,
            )
            for r in conn.execute(
                select(t.submissions).where(
                    and_(
                        t.submissions.c.contract_id == contract_id,
                        t.submissions.c.year == year,
                        t.submissions.c.is_current.is_(True),
                    )
                )
            )
        ]
        cases: dict[str, list[tuple[str, Decimal]]] = {}
        for r in conn.execute(
            select(t.high_cost_cases).where(t.high_cost_cases.c.contract_id == contract_id)
        ):
            cases.setdefault(r.report_id, []).append((r.case_ref, r.cost))
        costs = [
            CostFact(
                r.report_id,
                r.provider_id,
                calendar.stored(r.period),
                r.total_cost,
                tuple(cases.get(r.report_id, ())),
            )
            for r in conn.execute(
                select(t.cost_reports).where(
                    and_(
                        t.cost_reports.c.contract_id == contract_id,
                        t.cost_reports.c.year == year,
                        t.cost_reports.c.is_current.is_(True),
                    )
                )
            )
        ]
        budget = conn.execute(
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
        terms = year_terms(definition, year)
        if budget is None:
            budget = budget_for_year(terms, year).amount
        baselines = facts.terms_baselines(conn, contract_id, definition, year)
        claims: list[Claim] = []
        episodes: list[Episode] = []
        if definition.rate_card is not None:
            claims = [
                Claim(
                    r.claim_id,
                    r.provider_id,
                    r.participant_id,
                    r.outcome_id,
                    calendar.stored(r.period),
                    r.year,
                    tuple(json.loads(r.arrival)),
                )
                for r in conn.execute(
                    select(t.outcome_claims).where(
                        and_(
                            t.outcome_claims.c.contract_id == contract_id,
                            t.outcome_claims.c.year <= year,
                            t.outcome_claims.c.is_current.is_(True),
                        )
                    )
                )
            ]
        if definition.health_gain:
            for r in conn.execute(
                select(t.prom_episodes).where(
                    and_(
                        t.prom_episodes.c.contract_id == contract_id,
                        t.prom_episodes.c.year == year,
                        t.prom_episodes.c.is_current.is_(True),
                    )
                )
            ):
                entry = definition.health_gain_entry(r.health_gain_id)
                if entry is None:
                    continue
                expected = r.expected_gain if r.expected_gain is not None else entry.target_gain
                if expected is None:  # refused at ingest (ledger/domain/records.py): never stored
                    raise LedgerError(
                        f"episode {r.episode_id!r} has no expected gain and entry {entry.id!r} no target_gain",
                        code="inconsistent_terms",
                    )
                episodes.append(
                    Episode(
                        r.episode_id,
                        r.provider_id,
                        r.health_gain_id,
                        r.year,
                        r.pre_score,
                        r.post_score,
                        expected,
                    )
                )
        return settle_year(terms, year, budget, observations, costs, baselines, claims, episodes)

    def contract(self, contract_id: str) -> dict[str, Any]:
        with self.engine.connect() as conn:
            row, d = self._contract(conn, contract_id)
            budgets = {
                str(r.year): fmt(r.amount)
                for r in conn.execute(
                    select(t.budgets)
                    .where(and_(t.budgets.c.contract_id == contract_id, t.budgets.c.is_current.is_(True)))
                    .order_by(t.budgets.c.year)
                )
            }
            baselines = {k: str(v) for k, v in d.baselines}
            for r in conn.execute(
                select(t.baselines)
                .where(t.baselines.c.contract_id == contract_id)
                .order_by(t.baselines.c.notification_id)
            ):
                baselines[r.key] = fmt(r.value)
            variations = [
                {
                    "variation_id": r.variation_id,
                    "effective_from_year": r.effective_from_year,
                    "reason": r.reason,
                    "reference": r.reference,
                    "recorded_at": r.recorded_at,
                    "recorded_by": r.actor,
                    "restated_years": json.loads(r.restated_years),
                }
                for r in facts.variation_rows(conn, contract_id)
            ]
        return {
            "contract_id": d.id,
            "name": d.name,
            "model": d.model,
            "commissioner": d.commissioner.id,
            "lead_provider": d.lead_provider.id,
            "subcontractors": [p.id for p in d.subcontractors],
            "currency": d.currency,
            "start": d.start.isoformat(),
            "years": d.years,
            "extension_years": d.extension_years,
            "extended": bool(row.extended),
            "period": d.period,
            "budgets": budgets,
            "schedule": [
                {
                    "from_year": e.from_year,
                    "core": str(e.core),
                    "outcomes": str(e.outcomes),
                    "reserve": str(e.reserve),
                    "risk_share": e.risk_share,
                }
                for e in d.schedule
            ],
            "baselines": baselines,
            "indicators": [
                {
                    "id": i.id,
                    "name": i.name,
                    "domain": i.domain,
                    "weight": str(i.weight),
                    "paid_from_year": i.paid_from_year,
                    "measures": [m.id for m in i.measures],
                }
                for i in d.indicators
            ],
            "registered_at": row.registered_at,
            "registered_by": row.registered_by,
            "variations": variations,  # the registered terms above; `contract terms --year Y` gives a year's
        }

    def contracts(self) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            return [
                {
                    "contract_id": r.contract_id,
                    "name": r.name,
                    "model": r.model,
                    "lead_provider": r.lead_provider_id,
                    "start": r.start,
                    "years": r.years + (r.extension_years if r.extended else 0),
                    "period": r.period,
                }
                for r in conn.execute(select(t.contracts).order_by(t.contracts.c.contract_id))
            ]

    def history(self, contract_id: str, year: int) -> list[dict[str, Any]]:
        """Every settlement event of a contract year, with the data events it rested on."""
        with self.engine.connect() as conn:
            row, definition = self._contract(conn, contract_id)
            self._check_year(row, definition, year)
            out: list[dict[str, Any]] = []
            for r in conn.execute(
                select(t.budgets).where(
                    and_(t.budgets.c.contract_id == contract_id, t.budgets.c.year == year)
                )
            ):
                out.append(
                    {
                        "notification_id": r.notification_id,
                        "at": r.recorded_at,
                        "event": "budget_set",
                        "amount": fmt_money(r.amount),
                        "reason": r.reason,
                        "note": r.note,
                        "actor": r.actor,
                    }
                )
            for r in conn.execute(
                select(t.instalments).where(
                    and_(t.instalments.c.contract_id == contract_id, t.instalments.c.year == year)
                )
            ):
                out.append(
                    {
                        "notification_id": r.notification_id,
                        "at": r.decided_at,
                        "event": "instalment_decided",
                        "period": r.period,
                        "amount": fmt_money(r.amount),
                        "actor": r.actor,
                    }
                )
            for r in conn.execute(
                select(t.decisions).where(
                    and_(t.decisions.c.contract_id == contract_id, t.decisions.c.year == year)
                )
            ):
                trace = json.loads(r.trace)
                out.append(
                    {
                        "notification_id": r.notification_id,
                        "at": r.decided_at,
                        "event": {"close": "year_closed", "true_up": "true_up_decided"}.get(
                            r.kind, "adjustment_decided"
                        ),
                        "amount": fmt_money(r.amount),
                        "reason": r.reason,
                        "actor": r.actor,
                        "submissions_used": trace.get("submissions_used", []),
                        "cost_reports_used": trace.get("cost_reports_used", []),
                    }
                )
            for r in facts.variation_rows(conn, contract_id):
                if r.effective_from_year <= year:  # a variation in force for the year changed its terms
                    out.append(
                        {
                            "notification_id": r.notification_id,
                            "at": r.recorded_at,
                            "event": "variation_recorded",
                            "variation_id": r.variation_id,
                            "effective_from_year": r.effective_from_year,
                            "amount": "0.00",
                            "reason": r.reason,
                            "actor": r.actor,
                        }
                    )
            for r in conn.execute(
                select(t.disputes).where(
                    and_(t.disputes.c.contract_id == contract_id, t.disputes.c.year == year)
                )
            ):
                out.append(
                    {
                        "notification_id": r.notification_id,
                        "at": r.raised_at,
                        "event": "dispute_raised",
                        "dispute_id": r.dispute_id,
                        "amount": "0.00",
                        "reason": r.reason,
                        "actor": r.raised_by,
                    }
                )
                if r.status != "open":
                    out.append(
                        {
                            "notification_id": r.resolved_notification_id,
                            "at": r.resolved_at,
                            "event": f"dispute_{r.status}",
                            "dispute_id": r.dispute_id,
                            "amount": "0.00",
                            "reason": r.resolution_note,
                            "actor": r.resolved_by,
                        }
                    )
            out.sort(key=lambda e: e["notification_id"])
            return out

    def submissions(
        self,
        contract_id: str,
        indicator: str | None = None,
        period: str | None = None,
        all_versions: bool = False,
    ) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            self._contract(conn, contract_id)
            q = select(t.submissions).where(t.submissions.c.contract_id == contract_id)
            if indicator:
                q = q.where(t.submissions.c.indicator_id == indicator)
            if period:
                q = q.where(t.submissions.c.period == period)
            if not all_versions:
                q = q.where(t.submissions.c.is_current.is_(True))
            q = q.order_by(
                t.submissions.c.period,
                t.submissions.c.indicator_id,
                t.submissions.c.provider_id,
                t.submissions.c.notification_id,
            )
            return [
                {
                    "submission_id": r.submission_id,
                    "year": r.year,
                    "period": r.period,
                    "indicator_id": r.indicator_id,
                    "provider_id": r.provider_id,
                    "numerator": fmt(r.numerator),
                    "denominator": fmt(r.denominator),
                    "value": fmt(r.value),
                    "current": bool(r.is_current),
                    "supersedes": r.supersedes,
                    "superseded_by": r.superseded_by,
                    "recorded_at": r.recorded_at,
                }
                for r in conn.execute(q)
            ]

    def decisions(self, contract_id: str) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            self._contract(conn, contract_id)
            rows = list(
                conn.execute(
                    select(t.decisions)
                    .where(t.decisions.c.contract_id == contract_id)
                    .order_by(t.decisions.c.year, t.decisions.c.notification_id)
                )
            )
            parties = self._decision_parties(conn, [r.notification_id for r in rows])
            return [
                {
                    "year": r.year,
                    "kind": r.kind,
                    "decided_at": r.decided_at,
                    "amount": fmt_money(r.amount),
                    "reason": r.reason,
                    "actor": r.actor,
                    "by_party": {p: fmt_money(v) for p, v in parties.get(r.notification_id, {}).items()},
                }
                for r in rows
            ]

    def rejected(self) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            return [
                {
                    "source": r.source,
                    "line": r.line,
                    "code": r.code,
                    "field": r.field,
                    "message": r.message,
                    "contract_id": r.contract_id,
                    "record_type": r.record_type,
                    "record_id": r.record_id,
                    "recorded_at": r.recorded_at,
                    "raw": r.raw,
                }
                for r in conn.execute(
                    select(t.rejected_records).order_by(t.rejected_records.c.notification_id)
                )
            ]

    def settled_years(self, contract_id: str) -> list[int]:
        with self.engine.connect() as conn:
            years = set(
                conn.execute(
                    select(t.instalments.c.year).where(t.instalments.c.contract_id == contract_id)
                ).scalars()
            )
            years |= set(
                conn.execute(
                    select(t.decisions.c.year).where(t.decisions.c.contract_id == contract_id)
                ).scalars()
            )
        return sorted(years)
