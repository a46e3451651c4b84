"""The demo's outcome-priced contracts: generated claims and PROM episodes (payment rules §8, §9).

Deterministic (seeded): ``ldn-employ``'s participants move through engagement, job start and 13-
and 26-week sustainment with some drop-out, a few claims sent too early (prerequisite missing),
some re-sent (already paid), a correction and a late claim; ``beds-ortho``'s hip and knee episodes
have pre/post scores within the scale and a case-mix expected gain (knee) or the target (hip).
"""

from __future__ import annotations

import random
from decimal import Decimal
from typing import Any

EMPLOY_PROVIDERS = ("ips-1", "ips-2")


def employment_claims(seed: int = 16) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(on-time claims, late claims) for ldn-employ's three years."""
    rnd = random.Random(seed)
    quarters = [
        f"{y}-Q{q}"
        for y, q in [
            (2026, 2),
            (2026, 3),
            (2026, 4),
            (2027, 1),
            (2027, 2),
            (2027, 3),
            (2027, 4),
            (2028, 1),
            (2028, 2),
            (2028, 3),
            (2028, 4),
            (2029, 1),
        ]
    ]
    claims: list[dict[str, Any]] = []

    def claim(provider: str, participant: str, outcome: str, quarter: int, **extra: Any) -> None:
        claims.append(
            {
                "type": "outcome_claim",
                "claim_id": f"oc-{len(claims) + 1:05d}",
                "contract_id": "ldn-employ",
                "provider_id": provider,
                "participant_id": participant,
                "outcome_id": outcome,
                "period": quarters[min(quarter, len(quarters) - 1)],
                **extra,
            }
        )

    for i in range(420):
        provider = EMPLOY_PROVIDERS[i % 2]
        participant = f"P-{i + 1:05d}"
        start = rnd.randrange(0, 10)
        if rnd.random() < 0.03:  # a job start sent before the engagement: prerequisite missing
            claim(provider, participant, "job-start", start)
        claim(provider, participant, "engaged", start, evidence="key worker record")
        if rnd.random() < 0.02:
            claim(provider, participant, "engaged", start + 1)  # sent twice: already paid
        if rnd.random() < 0.55:
            claim(provider, participant, "job-start", start + 1, evidence="contract of employment")
            if rnd.random() < 0.7:
                claim(provider, participant, "sustained-13", start + 2, evidence="payslips weeks 1-13")
                if rnd.random() < 0.75:
                    claim(provider, participant, "sustained-26", start + 3, evidence="payslips weeks 1-26")
    # a correction: the first claim named the wrong participant
    wrong = claims[0]
    claims.append(dict(wrong, claim_id="oc-corr-1", participant_id="P-09999", supersedes=wrong["claim_id"]))
    late = [
        {
            "type": "outcome_claim",
            "claim_id": "oc-late-1",
            "contract_id": "ldn-employ",
            "provider_id": "ips-2",
            "participant_id": "P-08888",
            "outcome_id": "engaged",
            "period": "2026-Q3",
            "evidence": "key worker record found after the close",
        }
    ]
    return claims, late


def prom_episodes(seed: int = 183, per_year: int = 160) -> list[dict[str, Any]]:
    """PROM episodes for beds-ortho's three years (hip: the target gain; knee: a case-mix expectation)."""
    rnd = random.Random(seed)
    quarters = {
        1: ["2025-Q2", "2025-Q3", "2025-Q4", "2026-Q1"],
        2: ["2026-Q2", "2026-Q3", "2026-Q4", "2027-Q1"],
        3: ["2027-Q2", "2027-Q3", "2027-Q4", "2028-Q1"],
    }
    out: list[dict[str, Any]] = []
    for year in (1, 2, 3):
        for i in range(per_year):
            provider = "circle" if i % 3 else "ortho-isp"
            entry = "hip-ohs" if i % 2 else "knee-oks"
            pre = rnd.randint(8, 24)
            # the independent centre's knee outcomes improve over the years
            skill = 1.0 if provider == "circle" else 0.9 + 0.06 * year
            gain = max(0, min(48 - pre, round(rnd.gauss(21 if entry == "hip-ohs" else 16, 5) * skill)))
            record: dict[str, Any] = {
                "type": "prom_episode",
                "episode_id": f"ep-{year}-{i + 1:04d}",
                "contract_id": "beds-ortho",
                "provider_id": provider,
                "health_gain_id": entry,
                "period": quarters[year][i % 4],
                "pre_score": str(pre),
                "post_score": str(pre + gain),
            }
            if entry == "knee-oks":
                record["expected_gain"] = str(Decimal(16) + Decimal(24 - pre) * Decimal("0.15"))
            out.append(record)
    return out


def ortho_costs() -> list[dict[str, Any]]:
    """Quarterly cost reports for beds-ortho (years 2-3 carry the risk share; year 1's feed the what-if)."""
    out = []
    budgets = {1: "1465000.00", 2: "1470000.00", 3: "1520000.00"}
    quarters = {
        1: ["2025-Q2", "2025-Q3", "2025-Q4", "2026-Q1"],
        2: ["2026-Q2", "2026-Q3", "2026-Q4", "2027-Q1"],
        3: ["2027-Q2", "2027-Q3", "2027-Q4", "2028-Q1"],
    }
    for year, amount in budgets.items():
        for q in quarters[year]:
            out.append(
                {
                    "type": "cost_report",
                    "report_id": f"cost-{q}",
                    "contract_id": "beds-ortho",
                    "provider_id": "circle",
                    "period": q,
                    "total_cost": amount,
                }
            )
    return out
