"""`make demo`: the main job runs end to end on a fresh SQLite file and says what it did."""

from ledger.entrypoints.cli.main import main


def test_the_demo_settles_both_contracts_and_lists_rejections(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["demo", "--out", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "== oxon-mh" in out and "== cheshire-amh" in out
    assert "extension recorded (years 6-7)" in out
    assert "variation oxon-cv-2027-01 from year 3" in out and "subcontractor(s) leaving: elmore" in out
    assert "variation cheshire-cv-alliance from year 4" in out
    assert "true-up" in out
    assert "numerator_exceeds_denominator" in out and "provider_not_party" in out
    assert (tmp_path / "out" / "demo.db").exists()
    # a second run starts afresh rather than piling onto the first ledger
    assert main(["demo", "--out", str(tmp_path / "out")]) == 0
    assert capsys.readouterr().out.count("== oxon-mh") == 1


def test_the_demo_shows_the_rate_card_and_health_gain_contracts_and_one_whatif(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["demo", "--out", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "== ldn-employ" in out and "== beds-ortho" in out
    assert "Rate card:" in out and "Health gain knee-oks" in out and "insufficient_data" in out
    assert (
        "ldn-employ year 1: late claim -> true-up 500.00 (restated after late outcome claim oc-late-1)" in out
    )
    assert "what-if for beds-ortho: whatif-schedule-of-year-2" in out and "nothing recorded" in out
    assert (tmp_path / "out" / "ldn-employ.jsonl").exists()
