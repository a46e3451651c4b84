"""Ingest of outcome claims and PROM episodes, and close-year latency on a rate card (payment rules §8, §9).

    python -m bench.outcomes [--claims 1000000] [--episodes 200000] [--participants 100000] [--keep]

1. Registers a rate-card contract (4 outcomes with prerequisites, participant and contract caps) and
   a health-gain contract in a fresh SQLite ledger.
2. Ingests ``--claims`` outcome claims (``--participants`` participants over 3 years, quarterly) and
   ``--episodes`` PROM episodes with ``Ledger.ingest_lines`` (batches of 2000): records/s and peak RSS.
3. Closes each rate-card year (the claims of years 1..y are read and evaluated): seconds per close.

Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from ledger.bootstrap import bootstrap
from ledger.usecases import services_for

from .common import mib, peak_rss_self

QUARTERS = [
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
OUTCOMES = ("engaged", "job-start", "sustained-13", "sustained-26")

RATE_CARD = """\
contract: {id: bench-rc, name: Bench rate card, model: pathway, commissioner: {id: c, name: C},
           lead_provider: {id: p1, name: P1}, subcontractors: [{id: p2, name: P2}], start: 2026-04-01,
           years: 3, period: quarterly}
budget: {year1: "0.00"}
payment: {schedule: [{from_year: 1, core: "1.00", outcomes: "0.00"}]}
rate_card:
  outcomes:
    - {id: engaged, price: "500.00"}
    - {id: job-start, price: "1500.00", requires: [engaged]}
    - {id: sustained-13, price: "2000.00", requires: [job-start]}
    - {id: sustained-26, price: "3000.00", requires: [sustained-13]}
  participant_cap: "6500.00"
  contract_cap: "900000000.00"
"""

HEALTH_GAIN = """\
contract: {id: bench-hg, name: Bench health gain, model: pathway, commissioner: {id: c, name: C},
           lead_provider: {id: p1, name: P1}, subcontractors: [{id: p2, name: P2}], start: 2025-04-01,
           years: 3, period: quarterly}
budget: {year1: "1000000.00"}
payment: {schedule: [{from_year: 1, core: "1.00", outcomes: "0.00"}]}
health_gain:
  - {id: hip, measure: OHS, scale: {min: 0, max: 48}, price_per_point: "150.00", target_gain: "21.5",
     min_episodes: 30}
"""


def claims(n: int, participants: int, seed: int) -> Iterator[str]:
    rnd = random.Random(seed)
    for i in range(n):
        participant = rnd.randrange(participants)
        step = rnd.randrange(4)
        quarter = min(11, (participant % 9) + step)
        yield json.dumps(
            {
                "type": "outcome_claim",
                "claim_id": f"oc-{i}",
                "contract_id": "bench-rc",
                "provider_id": "p1" if participant % 2 else "p2",
                "participant_id": f"P{participant}",
                "outcome_id": OUTCOMES[step],
                "period": QUARTERS[quarter],
            }
        )


def episodes(n: int, seed: int) -> Iterator[str]:
    rnd = random.Random(seed)
    quarters = [
        "2025-Q2",
        "2025-Q3",
        "2025-Q4",
        "2026-Q1",
        "2026-Q2",
        "2026-Q3",
        "2026-Q4",
        "2027-Q1",
        "2027-Q2",
        "2027-Q3",
        "2027-Q4",
        "2028-Q1",
    ]
    for i in range(n):
        pre = rnd.randint(5, 25)
        yield json.dumps(
            {
                "type": "prom_episode",
                "episode_id": f"ep-{i}",
                "contract_id": "bench-hg",
                "provider_id": "p1" if i % 2 else "p2",
                "health_gain_id": "hip",
                "period": quarters[i % 12],
                "pre_score": str(pre),
                "post_score": str(min(48, pre + rnd.randint(10, 30))),
            }
        )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.outcomes", description=__doc__.split("\n\n")[0])
    p.add_argument("--claims", type=int, default=1_000_000)
    p.add_argument("--episodes", type=int, default=200_000)
    p.add_argument("--participants", type=int, default=100_000)
    p.add_argument("--seed", type=int, default=16)
    p.add_argument("--keep", action="store_true")
    args = p.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="obc-bench-outcomes-"))
    try:
        app = bootstrap(f"sqlite:///{tmp / 'bench.db'}").ledger
        services_for(app).registration.register_contract(RATE_CARD)
        services_for(app).registration.register_contract(HEALTH_GAIN)
        for label, lines, total in (
            ("outcome claims", claims(args.claims, args.participants, args.seed), args.claims),
            ("PROM episodes", episodes(args.episodes, args.seed), args.episodes),
        ):
            started = time.perf_counter()
            report = services_for(app).ingest.ingest_lines(lines, label)
            seconds = time.perf_counter() - started
            print(
                f"ingest {total:,} {label}: {seconds:,.1f} s, {report.accepted / seconds:,.0f} records/s "
                f"({report.accepted:,} accepted, {report.rejected:,} rejected); peak RSS {mib(peak_rss_self())}"
            )
        for year in (1, 2, 3):
            started = time.perf_counter()
            statement = services_for(app).settlement.close_year("bench-rc", year)
            seconds = time.perf_counter() - started
            card = statement["rate_card"]
            print(
                f"close-year bench-rc {year} ({args.participants:,} participants, {card['claims']:,} claims of the "
                f"year): {seconds:,.2f} s; payment {card['payment']}"
            )
        started = time.perf_counter()
        services_for(app).settlement.close_year("bench-hg", 1)
        print(f"close-year bench-hg 1: {time.perf_counter() - started:,.2f} s")
        print(f"peak RSS {mib(peak_rss_self())}")
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
