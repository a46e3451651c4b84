"""Paying for health gain (payment rules §9): per entry and provider, a year's payment. Pure."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from ledger.domain.definition import HealthGainEntry
from ledger.domain.numbers import ZERO, exact, fmt, fmt_money, money


@dataclass(frozen=True)
class Episode:
    episode_id: str
    provider_id: str
    entry_id: str
    year: int
    pre_score: Decimal
    post_score: Decimal
    expected_gain: Decimal  # the record's, else the entry's target_gain (resolved at ingest)


@dataclass(frozen=True)
class ProviderGain:
    provider_id: str
    episodes: tuple[str, ...]
    mean_gain: Decimal
    mean_expected: Decimal
    excess: Decimal
    status: str  # scored | insufficient_data | not_linked
    raw: Decimal | None
    payment: Decimal

    def to_statement(self) -> dict[str, Any]:
        return {
            "episodes": len(self.episodes),
            "mean_gain": fmt(self.mean_gain),
            "mean_expected": fmt(self.mean_expected),
            "excess": fmt(self.excess),
            "status": self.status,
            "payment": fmt_money(self.payment),
        }


@dataclass(frozen=True)
class EntryGain:
    entry: HealthGainEntry
    payment: Decimal
    providers: tuple[ProviderGain, ...]

    def to_statement(self) -> dict[str, Any]:
        return {
            "id": self.entry.id,
            "payment": fmt_money(self.payment),
            "by_party": {p.provider_id: p.to_statement() for p in self.providers},
        }

    def trace(self) -> dict[str, Any]:
        return {
            "id": self.entry.id,
            "price_per_point": fmt_money(self.entry.price_per_point),
            "min_episodes": self.entry.min_episodes,
            "floor": fmt_money(self.entry.floor) if self.entry.floor is not None else None,
            "cap": fmt_money(self.entry.cap) if self.entry.cap is not None else None,
            "providers": {
                p.provider_id: dict(p.to_statement(), raw=fmt(p.raw), episodes_used=list(p.episodes))
                for p in self.providers
            },
        }


def provider_gain(
    entry: HealthGainEntry, year: int, provider: str, episodes: Sequence[Episode]
) -> ProviderGain:
    n = len(episodes)
    with exact():
        gains = sum((e.post_score - e.pre_score for e in episodes), ZERO)
        expected = sum((e.expected_gain for e in episodes), ZERO)
        excess = gains - expected
        mean_gain = gains / n
        mean_expected = expected / n
        raw = None
        if year < entry.paid_from_year:
            status, payment = "not_linked", ZERO
        elif n < entry.min_episodes:
            status, payment = "insufficient_data", ZERO
        else:
            status = "scored"
            raw = entry.price_per_point * excess
            bounded = raw
            if entry.floor is not None:
                bounded = max(entry.floor, bounded)
            if entry.cap is not None:
                bounded = min(entry.cap, bounded)
            payment = money(bounded)
    return ProviderGain(
        provider,
        tuple(sorted(e.episode_id for e in episodes)),
        mean_gain,
        mean_expected,
        excess,
        status,
        raw,
        payment,
    )


def health_gain_year(
    entries: Iterable[HealthGainEntry], year: int, episodes: Iterable[Episode]
) -> list[EntryGain]:
    """Every entry's figures for ``year`` from the episodes in force of that year."""
    grouped: dict[tuple[str, str], list[Episode]] = {}
    for e in episodes:
        if e.year == year:
            grouped.setdefault((e.entry_id, e.provider_id), []).append(e)
    out = []
    for entry in entries:
        providers = [
            provider_gain(entry, year, p, eps) for (eid, p), eps in sorted(grouped.items()) if eid == entry.id
        ]
        out.append(EntryGain(entry, sum((p.payment for p in providers), ZERO), tuple(providers)))
    return out


def by_party(gains: Iterable[EntryGain]) -> Mapping[str, Decimal]:
    out: dict[str, Decimal] = {}
    for g in gains:
        for p in g.providers:
            out[p.provider_id] = out.get(p.provider_id, ZERO) + p.payment
    return out
