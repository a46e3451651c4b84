"""Exit statuses a script can rely on: ingest with refusals exits 3; a closed pipe ends quietly."""

import json
import subprocess

from ledger.entrypoints.cli.main import main
from tests.support.cli import EXAMPLES, OBC_LEDGER

GOOD = {
    "type": "submission",
    "submission_id": "s-9001",
    "contract_id": "beds-msk",
    "provider_id": "circle",
    "indicator_id": "readmissions",
    "period": "2026-Q2",
    "value": "90",
}


def _write(path, *lines):
    path.write_text("".join(line + "\n" for line in lines))
    return path


def test_ingest_exits_3_when_a_record_is_refused_and_keeps_the_good_ones(cli, tmp_path):
    cli.ok("contract", "register", EXAMPLES / "worked-example.yaml")
    mixed = _write(tmp_path / "mixed.jsonl", json.dumps(GOOD), '{"type": "submission"')
    checked = cli("ingest", mixed, "--check", "--json")
    assert checked.code == 3 and checked.json()["rejected"] == 1
    assert cli.ok("submissions", "beds-msk", "--json").json() == []  # the dry run recorded nothing
    done = cli("ingest", mixed)
    assert done.code == 3 and done.out.startswith("accepted 1, duplicates 0, rejected 1")
    assert [s["submission_id"] for s in cli.ok("submissions", "beds-msk", "--json").json()] == ["s-9001"]
    assert cli("ingest", mixed).code == 3  # the refusal stands on a re-run; the good record is a duplicate
    good = _write(tmp_path / "good.jsonl", json.dumps({**GOOD, "submission_id": "s-9002"}))
    assert cli("ingest", good, "--check").code == 0
    assert cli("ingest", good).code == 0


def test_output_into_a_closed_pipe_exits_141_without_a_traceback(tmp_path):
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    subprocess.run(
        [str(OBC_LEDGER), "--db", url, "contract", "register", str(EXAMPLES / "worked-example.yaml")],
        check=True,
        capture_output=True,
    )
    proc = subprocess.Popen(
        [str(OBC_LEDGER), "--db", url, "contract", "show", "beds-msk"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    proc.stdout.close()  # the reader is gone before the command writes, as `| head` after its lines
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141
    assert err == ""


def test_db_and_as_given_on_the_command_line_win_over_their_variables(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("OBC_LEDGER_DB", f"sqlite:///{tmp_path / 'a.db'}")
    monkeypatch.setenv("OBC_LEDGER_ACTOR", "provider:circle")
    wanted = f"sqlite:///{tmp_path / 'b.db'}"
    assert (
        main(
            ["--db", wanted, "--as", "system", "contract", "register", str(EXAMPLES / "worked-example.yaml")]
        )
        == 0
    )
    assert main(["contract", "list", "--db", wanted, "--as", "system", "--json"]) == 0
    assert '"beds-msk"' in capsys.readouterr().out
    assert (tmp_path / "b.db").exists() and not (tmp_path / "a.db").exists()


def test_json_from_the_environment_also_makes_errors_json(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("OBC_LEDGER_JSON", "1")
    assert main(["--db", f"sqlite:///{tmp_path / 'l.db'}", "statement", "nope", "--year", "1"]) == 1
    assert json.loads(capsys.readouterr().err)["error"] == "unknown_contract"
