"""Read-model tables (SQLAlchemy Core). Every row is derived from the event log.

They can be dropped and rebuilt from position zero at any time; a rebuild gives
identical rows. Money, ratios and scores are exact decimals: ``NUMERIC`` on
PostgreSQL, decimal text on SQLite (which has no exact decimal type).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    TypeDecorator,
)
from sqlalchemy.engine import Dialect


class ExactDecimal(TypeDecorator[Decimal]):
    """Decimal stored exactly: NUMERIC where the database has it, text elsewhere."""

    impl = String
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> Any:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(Numeric(asdecimal=True))
        return dialect.type_descriptor(String(64))

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        text = plain(Decimal(value))
        return Decimal(text) if dialect.name == "postgresql" else text

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        return None if value is None else Decimal(value) if not isinstance(value, Decimal) else value


# The widest decimal a read model holds: digits either side of the point (NUMERIC holds far more,
# but a value this wide is no figure of a contract; refusing it keeps an event whose value would
# expand to a billion digits from exhausting memory — the projector quarantines that event).
MAX_PLACES = 100


def plain(value: Decimal) -> str:
    """A decimal as plain text (no exponent), refused if it is not finite or wider than MAX_PLACES."""
    if not value.is_finite():
        raise ValueError(f"decimal {value} is not a finite number")
    exponent = value.as_tuple().exponent
    assert isinstance(exponent, int)
    if exponent < -MAX_PLACES or value.adjusted() > MAX_PLACES:
        raise ValueError(f"decimal {value:.6E} has more than {MAX_PLACES} digits before or after the point")
    return format(value, "f")


metadata = MetaData()
D = ExactDecimal

position = Table(
    "projection_position",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("position", BigInteger, nullable=False),
)

streams = Table(
    "projection_streams",
    metadata,
    Column("originator_id", String(36), primary_key=True),
    Column("stream", String(16), nullable=False),
    Column("contract_id", String(64), nullable=False),
    Column("year", Integer),
)

contracts = Table(
    "contracts",
    metadata,
    Column("contract_id", String(64), primary_key=True),
    Column("name", Text, nullable=False),
    Column("model", String(16)),
    Column("commissioner_id", String(64)),
    Column("lead_provider_id", String(64)),
    Column("currency", String(3)),
    Column("start", String(10)),
    Column("years", Integer),
    Column("extension_years", Integer),
    Column("extended", Boolean, nullable=False),
    Column("period", String(10)),
    Column("definition", Text, nullable=False),  # canonical JSON document
    Column("source_sha256", String(64)),
    Column("registered_at", String(40)),
    Column("registered_by", String(128)),
)

parties = Table(
    "contract_parties",
    metadata,
    Column("contract_id", String(64), primary_key=True),
    Column("party_id", String(64), primary_key=True),
    Column("role", String(16), nullable=False),  # commissioner | lead_provider | subcontractor
    Column("name", Text),
)

variations = Table(
    "contract_variations",
    metadata,  # payment rules §7, in recording order
    Column("notification_id", BigInteger, primary_key=True),
    Column("contract_id", String(64), nullable=False, index=True),
    Column("variation_id", String(64), nullable=False),
    Column("effective_from_year", Integer, nullable=False),
    Column("reason", Text, nullable=False),
    Column("reference", Text),  # the signed change notice (agreed.reference)
    Column("document", Text, nullable=False),  # canonical JSON variation document
    Column("restated_years", Text, nullable=False),  # JSON list
    Column("recorded_at", String(40)),
    Column("actor", String(128)),
)

budgets = Table(
    "budgets",
    metadata,
    Column("notification_id", BigInteger, primary_key=True),
    Column("contract_id", String(64), nullable=False),
    Column("year", Integer, nullable=False),
    Column("amount", D, nullable=False),
    Column("reason", String(32), nullable=False),
    Column("note", Text),
    Column("is_current", Boolean, nullable=False),
    Column("recorded_at", String(40)),
    Column("actor", String(128)),
    Index("ix_budgets_contract_year", "contract_id", "year"),
)

baselines = Table(
    "baselines",
    metadata,
    Column("notification_id", BigInteger, primary_key=True),
    Column("contract_id", String(64), nullable=False),
    Column("key", String(128), nullable=False),
    Column("value", D, nullable=False),
    Column("note", Text),
    Column("recorded_at", String(40)),
    Column("actor", String(128)),
)

submissions = Table(
    "submissions",
    metadata,
    Column("contract_id", String(64), primary_key=True),
    Column("submission_id", String(128), primary_key=True),
    Column("year", Integer, nullable=False),
    Column("provider_id", String(64), nullable=False),
    Column("indicator_id", String(128), nullable=False),
    Column("period", String(7), nullable=False),
    Column("numerator", D),
    Column("denominator", D),
    Column("value", D),
    Column("digest", String(64)),
    Column("supersedes", String(128)),
    Column("superseded_by", String(128)),
    Column("is_current", Boolean, nullable=False),
    Column("recorded_at", String(40)),
    Column("actor", String(128)),
    Column("notification_id", BigInteger, nullable=False),
    Index("ix_submissions_current", "contract_id", "year", "is_current"),
)

cost_reports = Table(
    "cost_reports",
    metadata,
    Column("contract_id", String(64), primary_key=True),
    Column("report_id", String(128), primary_key=True),
    Column("year", Integer, nullable=False),
    Column("provider_id", String(64), nullable=False),
    Column("period", String(7), nullable=False),
    Column("total_cost", D, nullable=False),
    Column("supersedes", String(128)),
    Column("superseded_by", String(128)),
    Column("is_current", Boolean, nullable=False),
    Column("recorded_at", String(40)),
    Column("actor", String(128)),
    Column("notification_id", BigInteger, nullable=False),
    Index("ix_costs_current", "contract_id", "year", "is_current"),
)

high_cost_cases = Table(
    "high_cost_cases",
    metadata,
    Column("contract_id", String(64), primary_key=True),
    Column("report_id", String(128), primary_key=True),
    Column("case_ref", String(128), primary_key=True),
    Column("cost", D, nullable=False),
)

outcome_claims = Table(
    "outcome_claims",
    metadata,
    Column("contract_id", String(64), primary_key=True),
    Column("claim_id", String(128), primary_key=True),
    Column("year", Integer, nullable=False),
    Column("provider_id", String(64), nullable=False),
    Column("participant_id", String(128), nullable=False),
    Column("outcome_id", String(128), nullable=False),
    Column("period", String(7), nullable=False),
    Column("arrival", String(200), nullable=False),  # JSON: the claim's place in arrival order (§8)
    Column("evidence", String(1000)),
    Column("supersedes", String(128)),
    Column("superseded_by", String(128)),
    Column("is_current", Boolean, nullable=False),
    Column("recorded_at", String(40)),
    Column("actor", String(128)),
    Column("notification_id", BigInteger, nullable=False),
    Index("ix_claims_current", "contract_id", "year", "is_current"),
)

prom_episodes = Table(
    "prom_episodes",
    metadata,
    Column("contract_id", String(64), primary_key=True),
    Column("episode_id", String(128), primary_key=True),
    Column("year", Integer, nullable=False),
    Column("provider_id", String(64), nullable=False),
    Column("health_gain_id", String(128), nullable=False),
    Column("period", String(7), nullable=False),
    Column("pre_score", D, nullable=False),
    Column("post_score", D, nullable=False),
    Column("expected_gain", D),
    Column("supersedes", String(128)),
    Column("superseded_by", String(128)),
    Column("is_current", Boolean, nullable=False),
    Column("recorded_at", String(40)),
    Column("actor", String(128)),
    Column("notification_id", BigInteger, nullable=False),
    Index("ix_episodes_current", "contract_id", "year", "is_current"),
)

population_counts = Table(
    "population_counts",
    metadata,
    Column("contract_id", String(64), primary_key=True),
    Column("record_id", String(128), primary_key=True),
    Column("year", Integer, nullable=False),
    Column("segment_id", String(64), nullable=False),
    Column("count", BigInteger, nullable=False),
    Column("supersedes", String(128)),
    Column("superseded_by", String(128)),
    Column("is_current", Boolean, nullable=False),
    Column("recorded_at", String(40)),
    Column("actor", String(128)),
    Column("notification_id", BigInteger, nullable=False),
)

rejected_records = Table(
    "rejected_records",
    metadata,
    Column("notification_id", BigInteger, primary_key=True),
    Column("source", Text),
    Column("line", Integer),
    Column("raw", Text),
    Column("code", String(64), nullable=False),
    Column("field", String(128)),
    Column("message", Text),
    Column("contract_id", String(64)),
    Column("record_type", String(32)),
    Column("record_id", String(128)),
    Column("recorded_at", String(40)),
    Column("actor", String(128)),
)

instalments = Table(
    "instalments",
    metadata,
    Column("contract_id", String(64), primary_key=True),
    Column("year", Integer, primary_key=True),
    Column("period", String(7), primary_key=True),
    Column("idx", Integer, nullable=False),
    Column("count", Integer, nullable=False),
    Column("amount", D, nullable=False),
    Column("budget", D, nullable=False),
    Column("core_annual", D, nullable=False),
    Column("paid_before", D, nullable=False),
    Column("decided_at", String(40)),
    Column("actor", String(128)),
    Column("notification_id", BigInteger, nullable=False),
)

instalment_parties = Table(
    "instalment_parties",
    metadata,
    Column("contract_id", String(64), primary_key=True),
    Column("year", Integer, primary_key=True),
    Column("period", String(7), primary_key=True),
    Column("party_id", String(64), primary_key=True),
    Column("amount", D, nullable=False),
)

decisions = Table(
    "year_decisions",
    metadata,
    Column("notification_id", BigInteger, primary_key=True),
    Column("contract_id", String(64), nullable=False),
    Column("year", Integer, nullable=False),
    Column("kind", String(16), nullable=False),  # close | true_up
    Column("amount", D, nullable=False),  # the close's total, or the true-up's difference
    Column("reason", Text),
    Column("decided_at", String(40)),
    Column("actor", String(128)),
    Column("figures", Text, nullable=False),  # JSON: every figure of the decision
    Column("trace", Text, nullable=False),  # JSON: inputs, thresholds, ids of the data used
    Index("ix_decisions_contract_year", "contract_id", "year"),
)

decision_parties = Table(
    "decision_parties",
    metadata,
    Column("notification_id", BigInteger, primary_key=True),
    Column("party_id", String(64), primary_key=True),
    Column("contract_id", String(64), nullable=False),
    Column("year", Integer, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("amount", D, nullable=False),
)

indicator_performance = Table(
    "indicator_performance",
    metadata,
    Column("notification_id", BigInteger, primary_key=True),
    Column("measure_id", String(128), primary_key=True),
    Column("contract_id", String(64), nullable=False),
    Column("year", Integer, nullable=False),
    Column("indicator_id", String(128), nullable=False),
    Column("status", String(16)),
    Column("value", D),
    Column("score", D),
    Column("baseline", D),
    Column("thresholds", Text),  # JSON of the resolved scoring thresholds
    Column("indicator_score", D),
    Column("weight", D),
    Column("normalised_weight", D),
    Column("earned", D),
)

disputes = Table(
    "disputes",
    metadata,
    Column("contract_id", String(64), primary_key=True),
    Column("year", Integer, primary_key=True),
    Column("dispute_id", String(32), primary_key=True),
    Column("raised_by", String(128)),
    Column("reason", Text),
    Column("decision", String(32)),
    Column("decision_at", String(40)),
    Column("raised_at", String(40)),
    Column("status", String(16), nullable=False),  # open | upheld | rejected
    Column("resolution_note", Text),
    Column("resolved_at", String(40)),
    Column("resolved_by", String(128)),
    Column("notification_id", BigInteger, nullable=False),
    Column("resolved_notification_id", BigInteger),
)

access_refusals = Table(
    "access_refusals",
    metadata,
    Column("notification_id", BigInteger, primary_key=True),
    Column("actor", String(128), nullable=False),
    Column("action", String(32), nullable=False),
    Column("contract_id", String(64)),
    Column("reason", Text),
    Column("recorded_at", String(40)),
)

audit_trail = Table(
    "audit_trail",
    metadata,
    Column("notification_id", BigInteger, primary_key=True),
    Column("originator_id", String(36), nullable=False),
    Column("originator_version", Integer, nullable=False),
    Column("stream", String(16)),
    Column("contract_id", String(64)),
    Column("year", Integer),
    Column("event_type", String(64), nullable=False),
    Column("recorded_at", String(40)),
    Column("actor", String(128)),
    Index("ix_audit_contract", "contract_id", "year"),
)

# Events the projector could not write (a value the read models cannot hold, a handler that raised):
# skipped so reads are never blocked, kept here with the reason until a rebuild projects them.
quarantine = Table(
    "projection_quarantine",
    metadata,
    Column("notification_id", BigInteger, primary_key=True),
    Column("name", String(64), nullable=False),  # the projection (projection_position.name)
    Column("originator_id", String(36), nullable=False),
    Column("originator_version", Integer, nullable=False),
    Column("stream", String(16)),
    Column("contract_id", Text),
    Column("year", Integer),
    Column("event_type", Text, nullable=False),
    Column("error", Text, nullable=False),  # the exception's class
    Column("reason", Text, nullable=False),  # its first line, at most 500 characters
    Column("quarantined_at", String(40), nullable=False),
)

# The derived rows (what a rebuild must reproduce): not the position, nor the quarantine.
READ_MODELS = [
    t for t in metadata.sorted_tables if t.name not in ("projection_position", "projection_quarantine")
]
