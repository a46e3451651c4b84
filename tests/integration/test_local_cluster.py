"""The local cluster (deploy/local_cluster.py) really runs: PostgreSQL, a Tansu broker, three
consumer processes in one group, a projection worker and a decisions publisher, each an
``obc-ledger`` process configured by environment variables. One consumer is killed with
SIGKILL mid-run; its partitions move to the others; a replacement joins. The statements the
read models hold at the end equal those of ONE JSON-lines ingest of the same records into a
fresh SQLite ledger (the embedded default), computed here independently with the CLI.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from deploy.workload import demo_workload
from ledger.usecases import services_for
from ledger.usecases.application import Ledger
from tests.support.cli import OBC_LEDGER

REPO = Path(__file__).resolve().parents[2]
COPIES, YEARS, PARTITIONS = 5, 4, 6


def embedded_default(tmp_path: Path) -> tuple[dict, dict]:
    """Statements of the same records through `obc-ledger ingest FILE` on SQLite, years closed."""
    workload = demo_workload(COPIES, YEARS)
    url = f"sqlite:///{tmp_path / 'embedded.db'}"
    app = Ledger.from_url(url)
    for _, text in workload.contracts:
        services_for(app).registration.register_contract(text)
    app.close()
    records = workload.write_jsonl(tmp_path / "records.jsonl")
    done = subprocess.run(
        [str(OBC_LEDGER), "--db", url, "--json", "ingest", str(records)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == (3 if json.loads(done.stdout)["rejected"] else 0), (
        done.stderr
    )  # 3: some refused
    app = Ledger.from_url(url)
    for cid in workload.contract_ids:
        for year in range(1, YEARS + 1):
            services_for(app).settlement.close_year(cid, year)
    statements = {
        cid: {str(y): services_for(app).settlement.statement(cid, y) for y in range(1, YEARS + 1)}
        for cid in workload.contract_ids
    }
    app.close()
    return statements, json.loads(done.stdout)


@pytest.mark.slow
def test_the_local_cluster_with_a_consumer_killed_mid_run_gives_the_statements_of_one_embedded_ingest(
    tmp_path,
):
    out = tmp_path / "cluster"
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "deploy.local_cluster",
            "--copies",
            str(COPIES),
            "--years",
            str(YEARS),
            "--partitions",
            str(PARTITIONS),
            "--consumers",
            "3",
            "--kill-one-at",
            "0.25",
            "--restart-killed",
            "--session-timeout-ms",
            "3000",  # the killed consumer's partitions move sooner, and every join is shorter
            "--out",
            str(out),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    result = json.loads((out / "result.json").read_text())

    expected, ingest = embedded_default(tmp_path)
    assert result["statements"] == expected
    assert sum(len(years) for years in expected.values()) == COPIES * 2 * YEARS

    # every record the producer sent was applied, once: the reports of the consumers that stopped
    # cleanly reconcile, and the ledger's tracked offsets reached the produced ones (the cluster
    # only gets past waiting when they do)
    assert (
        result["sent"] + result["refused_by_producer"]
        == result["records"]
        == ingest["accepted"] + ingest["duplicates"] + ingest["rejected"]
    )
    reports = result["worker_reports"]
    survivors = {name: r for name, r in reports.items() if name.startswith("consumer") and r is not None}
    assert all(r["reconciles"] for r in survivors.values())

    # the killed consumer's partitions stalled, then the others took them over
    kill = result["kill"]
    assert kill["consumer"] in {"consumer-1", "consumer-2", "consumer-3"}
    assert reports[kill["consumer"]] is None, "killed: no report"
    assert kill["stalled_partitions"], "the kill landed while the consumer still had records to apply"
    assert kill["taken_over_after_s"] is not None
    taken = set().union(*(r["consumed_by_partition"] for r in survivors.values()))
    assert {f"ledger.records:{p}" for p in kill["stalled_partitions"]} <= taken
    assert kill["restarted"] == "consumer-4"
    assert reports["consumer-4"] is not None, result["stop_logs"]
    assert result["stop_logs"] == {}, "every worker but the killed one stopped cleanly and reported"

    # decisions were published and the projection worker caught up with the log
    assert result["last_decision"] > 0 and reports["publisher"]["published"] > 0
    assert result["read_models"]["lag"] == 0
