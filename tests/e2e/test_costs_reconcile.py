"""Open book (`costs`) and reconciliation against baselines, spend and a payment register."""

import csv
import json
from decimal import Decimal

import pytest

from projections.reconcile import InvalidRegister, parse_register
from tests.support.cli import EXAMPLES

EXPECTED = json.loads((EXAMPLES / "worked-example-expected.json").read_text())

# Year 2 of the worked example as the finance system paid it: four instalments of 5,292,864.00 split
# 80/20 (core_split), then the year-close payment (by_party less the core paid in instalments).
MATCHING = [
    ("2026-Q2", "circle", "4234291.20"),
    ("2026-Q2", "physio", "1058572.80"),
    ("2026-Q3", "circle", "4234291.20"),
    ("2026-Q3", "physio", "1058572.80"),
    ("2026-Q4", "circle", "4234291.20"),
    ("2026-Q4", "physio", "1058572.80"),
    ("2027-Q1", "circle", "4234291.20"),
    ("2027-Q1", "physio", "1058572.80"),
    ("Y2-close", "circle", "434918.67"),
    ("Y2-close", "physio", "206650.40"),
]


def _example(cli, *years, contract=None):
    cli.ok("contract", "register", contract or EXAMPLES / "worked-example.yaml")
    cli.ok("ingest", EXAMPLES / "worked-example-data.jsonl")
    for year in years:
        cli.ok("close-year", "beds-msk", str(year))


def _register(tmp_path, rows, name="payments.csv", header=("period", "party", "amount")):
    path = tmp_path / name
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def _write(tmp_path, name, records):
    path = tmp_path / name
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


# ------------------------------------------------------------------ costs


def test_costs_list_reports_by_provider_period_and_case_with_the_budget_variance(cli):
    _example(cli, 2)
    c = cli.ok("costs", "beds-msk", "--year", "2", "--json").json()
    assert c["total_cost"] == EXPECTED[1]["risk_share"]["costs"] == "21183000.00"
    assert c["by_provider"] == {"circle": "19150000.00", "physio": "2033000.00"}
    assert c["by_period"]["2026-Q2"] == "5210000.00"
    assert c["by_provider_period"]["physio"]["2027-Q1"] == "520000.00"
    cases = {k["case_ref"]: (k["cost"], k["excess"]) for k in c["high_cost_cases"]}
    assert cases == {
        "HC-1": ("35000.00", "15000.00"),
        "HC-2": ("21000.00", "1000.00"),
        "HC-3": ("18500.00", "0.00"),
    }
    assert [
        r["report_id"] for r in next(k for k in c["high_cost_cases"] if k["case_ref"] == "HC-1")["reports"]
    ] == ["c-0001", "c-0002"]
    assert c["variance"]["budget"] == "23523840.00" and c["variance"]["variance"] == "2340840.00"
    assert c["variance"]["direction"] == "underspend"
    assert c["variance"]["risk_share"]["variance_before_sharing"] == EXPECTED[1]["risk_share"]["variance"]
    assert c["decision"]["costs"] == c["total_cost"]
    text = cli.ok("costs", "beds-msk", "--year", "2").out
    assert "Variance (budget − costs)" in text and "2,340,840.00" in text and "HC-1" in text


def test_a_superseded_cost_report_is_listed_flagged_and_left_out_of_the_totals(cli, tmp_path):
    _example(cli)
    cli.ok(
        "ingest",
        _write(
            tmp_path,
            "fix.jsonl",
            [
                {
                    "type": "cost_report",
                    "report_id": "c-0099",
                    "contract_id": "beds-msk",
                    "provider_id": "physio",
                    "period": "2027-Q1",
                    "total_cost": "620000.00",
                    "high_cost_cases": [],
                }
            ],
        ),
    )
    c = cli.ok("costs", "beds-msk", "--year", "2", "--json").json()
    old = next(r for r in c["reports"] if r["report_id"] == "c-0008")
    new = next(r for r in c["reports"] if r["report_id"] == "c-0099")
    assert (old["current"], old["superseded_by"]) == (False, "c-0099")
    assert (new["current"], new["supersedes"]) == (True, "c-0008")
    assert (c["current_reports"], c["superseded_reports"]) == (8, 1)
    assert c["total_cost"] == "21283000.00"
    assert "SUPERSEDED by c-0099" in cli.ok("costs", "beds-msk", "--year", "2").out


def test_a_year_without_risk_share_still_shows_budget_against_cost(cli, tmp_path):
    _example(cli)
    cli.ok(
        "ingest",
        _write(
            tmp_path,
            "y1.jsonl",
            [
                {
                    "type": "cost_report",
                    "report_id": f"y1-{q}",
                    "contract_id": "beds-msk",
                    "provider_id": "circle",
                    "period": period,
                    "total_cost": "6100000.00",
                    "high_cost_cases": [],
                }
                for q, period in enumerate(["2025-Q2", "2025-Q3", "2025-Q4", "2026-Q1"])
            ],
        ),
    )
    c = cli.ok("costs", "beds-msk", "--year", "1", "--json").json()
    assert c["risk_share"] is None and "risk_share" not in c["variance"]
    assert (c["variance"]["budget"], c["variance"]["costs"], c["variance"]["variance"]) == (
        "24000000.00",
        "24400000.00",
        "-400000.00",
    )
    assert c["variance"]["direction"] == "overspend"


# -------------------------------------------------------------- reconcile


def test_a_matching_payment_register_reconciles_and_exits_zero(any_cli, tmp_path):
    cli = any_cli  # SQLite, then a real PostgreSQL server
    _example(cli, 1, 2)
    rows = [*MATCHING, ("2025-Q2", "circle", "4800000.00")]  # a year-1 row: not this year's, ignored
    result = cli("reconcile", "beds-msk", "--year", "2", "--payments", _register(tmp_path, rows), "--json")
    assert result.code == 0, result.err
    r = result.json()
    assert r["reconciled"] is True and r["mismatches"] == []
    p = r["payments"]
    assert (p["rows"], p["rows_for_year"], p["rows_other_years"]) == (11, 10, 1)
    assert p["ledger_total"] == p["register_total"] == EXPECTED[1]["total"]
    assert {(line["period"], line["party"]): line["status"] for line in p["lines"]} == {
        (period, party): "ok" for period, party, _ in MATCHING
    }
    text = cli("reconcile", "beds-msk", "--year", "2", "--payments", _register(tmp_path, rows)).out
    assert "reconciled: nothing differs" in text


def test_planted_register_mismatches_are_each_listed_and_the_exit_status_is_non_zero(cli, tmp_path):
    _example(cli, 2)
    rows = [r for r in MATCHING if r[:2] != ("2027-Q1", "physio")]  # missing row
    rows = [
        ("2026-Q3", "circle", "4234219.20") if r[:2] == ("2026-Q3", "circle") else r for r in rows
    ]  # typo
    rows.append(("2026-Q4", "nhs-supplier", "1200.00"))  # extra row
    result = cli("reconcile", "beds-msk", "--year", "2", "--payments", _register(tmp_path, rows), "--json")
    assert result.code == 3
    assert json.loads(result.err)["error"] == "not_reconciled"
    r = result.json()
    assert r["reconciled"] is False
    found = {(m["key"], m["status"], m["ledger"], m["register"], m["difference"]) for m in r["mismatches"]}
    assert found == {
        ("2026-Q3 circle", "amount_differs", "4234291.20", "4234219.20", "-72.00"),
        ("2027-Q1 physio", "missing_in_register", "1058572.80", None, "-1058572.80"),
        ("2026-Q4 nhs-supplier", "missing_in_ledger", None, "1200.00", "1200.00"),
    }
    text = cli("reconcile", "beds-msk", "--year", "2", "--payments", _register(tmp_path, rows))
    assert text.code == 3 and "error: not_reconciled:" in text.err
    assert "NOT RECONCILED: 3 difference(s)" in text.out
    assert "2027-Q1 physio: missing in register" in text.out


def test_true_ups_are_paid_under_their_own_period_label(cli, tmp_path):
    _example(cli, 2)
    cli.ok(
        "ingest",
        _write(
            tmp_path,
            "late.jsonl",
            [
                {
                    "type": "submission",
                    "submission_id": "s-0419",
                    "contract_id": "beds-msk",
                    "provider_id": "circle",
                    "indicator_id": "readmissions",
                    "period": "2027-Q1",
                    "value": "80",
                }
            ],
        ),
    )
    cli.ok("restate", "beds-msk", "2")
    register = _register(tmp_path, [*MATCHING, ("Y2-true-up-1", "circle", "-882144.00")])
    assert cli("reconcile", "beds-msk", "--year", "2", "--payments", register).code == 0
    result = cli(
        "reconcile",
        "beds-msk",
        "--year",
        "2",
        "--payments",
        _register(tmp_path, MATCHING, "old.csv"),
        "--json",
    )
    assert result.code == 3
    assert [(m["key"], m["status"]) for m in result.json()["mismatches"]] == [
        ("Y2-true-up-1 circle", "missing_in_register")
    ]


def test_data_corrected_after_the_close_and_not_restated_does_not_reconcile(cli, tmp_path):
    _example(cli, 2)
    assert cli("reconcile", "beds-msk", "--year", "2").code == 0
    cli.ok(
        "ingest",
        _write(
            tmp_path,
            "late.jsonl",
            [
                {
                    "type": "submission",
                    "submission_id": "s-0419",
                    "contract_id": "beds-msk",
                    "provider_id": "circle",
                    "indicator_id": "readmissions",
                    "period": "2027-Q1",
                    "value": "80",
                },
                {
                    "type": "cost_report",
                    "report_id": "c-0099",
                    "contract_id": "beds-msk",
                    "provider_id": "physio",
                    "period": "2027-Q1",
                    "total_cost": "620000.00",
                    "high_cost_cases": [],
                },
            ],
        ),
    )
    result = cli("reconcile", "beds-msk", "--year", "2", "--json")
    assert result.code == 3
    checks = {(m["check"], m["key"]) for m in result.json()["mismatches"]}
    assert checks == {("indicator", "readmissions"), ("spend", "costs"), ("decision", "year 2 total")}
    readmissions = next(i for i in result.json()["indicators"] if i["measure_id"] == "readmissions")
    assert (readmissions["value_decided"], readmissions["value_now"], readmissions["status"]) == (
        "277",
        "285",
        "value_changed",
    )
    cli.ok("restate", "beds-msk", "2")
    assert cli("reconcile", "beds-msk", "--year", "2").code == 0


def test_indicators_are_compared_with_their_historical_and_recorded_baselines(cli):
    _example(cli, 2)
    cli.ok("baseline", "record", "beds-msk", "readmissions", "300", "--note", "re-audited")
    r = cli("reconcile", "beds-msk", "--year", "2", "--json")
    assert r.code == 3
    readmissions = next(i for i in r.json()["indicators"] if i["measure_id"] == "readmissions")
    assert readmissions["historical_baseline"] == "310" and readmissions["baseline_used"] == "310"
    assert readmissions["baseline_now"] == "300"
    assert [b["value"] for b in readmissions["recorded_baselines"]] == ["300"]
    assert readmissions["thresholds_used"]["target"] == "279.00"
    assert readmissions["thresholds_now"]["target"] == "270.00"
    assert readmissions["vs_baseline"]["difference"] == "-23"  # 277 against 300
    # the baseline difference itself is a note (decisions keep the baseline they used), not a failure;
    # but the year's total no longer follows from the terms now held (277 misses 270): restate
    assert readmissions["status"] == "ok"
    assert any("a restatement would use the new one" in n for n in readmissions["notes"])
    assert [(m["check"], m["difference"]) for m in r.json()["mismatches"]] == [("decision", "-882144.00")]


def test_spend_is_compared_with_the_budget_and_the_historical_spend(cli, tmp_path):
    text = (
        (EXAMPLES / "worked-example.yaml")
        .read_text()
        .replace(
            '  uplift: ["0.021", "0.019"]\n',
            '  uplift: ["0.021", "0.019"]\n  historical_spend: {2023: "23100000.00", 2024: "23800000.00"}\n',
        )
    )
    contract = tmp_path / "contract.yaml"
    contract.write_text(text)
    _example(cli, 2, contract=contract)
    s = cli.ok("reconcile", "beds-msk", "--year", "2", "--json").json()["spend"]
    assert s["historical_spend"] == [
        {"year": 2023, "amount": "23100000.00"},
        {"year": 2024, "amount": "23800000.00"},
    ]
    assert (s["budget_now"], s["budget_decided"], s["costs_now"], s["costs_decided"]) == (
        "23523840.00",
        "23523840.00",
        "21183000.00",
        "21183000.00",
    )
    assert s["vs_historical"]["year"] == 2024
    assert s["vs_historical"]["spend_difference"] == "-2617000.00"
    assert s["vs_historical"]["budget_difference"] == "-276160.00"
    cli.ok("budget", "adjust", "beds-msk", "--year", "2", "--amount", "23600000.00", "--reason", "variation")
    result = cli("reconcile", "beds-msk", "--year", "2", "--json")
    assert result.code == 3
    assert ("spend", "budget", "76160.00") in {
        (m["check"], m["key"], m.get("difference")) for m in result.json()["mismatches"]
    }


def test_an_unreadable_register_lists_every_problem_and_compares_nothing(cli, tmp_path):
    _example(cli, 2)
    bad = _register(
        tmp_path,
        [("2026-Q2", "circle", "4,234,291.20"), ("2026-13", "circle", "1.00"), ("Y2-close", "", "12.345")],
    )
    result = cli("reconcile", "beds-msk", "--year", "2", "--payments", bad)
    assert result.code == 1 and result.out == ""
    assert "error: invalid_payment_register: payments.csv: 4 problem(s)" in result.err
    assert "payments.csv:2: amount: '4,234,291.20' is not money" in result.err
    assert "payments.csv:3: period: '2026-13' is not YYYY-MM" in result.err
    assert "payments.csv:4: party: is empty" in result.err
    assert "payments.csv:4: amount: '12.345' is not money" in result.err
    headerless = _register(tmp_path, MATCHING, "h.csv", header=("when", "who", "how much"))
    result = cli("reconcile", "beds-msk", "--year", "2", "--payments", headerless, "--json")
    assert result.code == 1 and json.loads(result.err)["error"] == "invalid_payment_register"


@pytest.mark.parametrize(
    "text, amounts",
    [
        ("period,party,amount\n2026-Q2,circle,10\n", ["10"]),
        ("\ufeffAmount,Period,Party,Reference\n-5.5,Y2-close,circle,INV-1\n\n", ["-5.5"]),
        ("period,party,amount\r\nY2-true-up-3,physio,0.01\r\n", ["0.01"]),
    ],
)
def test_register_rows_are_read_as_decimal_money_whatever_the_column_order(text, amounts):
    assert [r.amount for r in parse_register(text)] == [Decimal(a) for a in amounts]


@pytest.mark.parametrize(
    "text",
    [
        "period,party\n2026-Q2,circle\n",
        "period,party,amount\n2026-Q2,circle,1.001\n",
        "period,party,amount\n2026-Q2,circle,1e3\n",
        "period,party,amount\n2026-Q2,circle,£10.00\n",
        "period,party,amount\nY2-closing,circle,10.00\n",
        "period,party,amount\n2026-Q2,circle\n",
        "period,party,amount\n2026-Q2,circle,1,234.00\n",
    ],
)
def test_register_rows_that_are_not_money_or_not_a_period_are_refused(text):
    with pytest.raises(InvalidRegister):
        parse_register(text)


def test_a_manual_adjustment_from_an_upheld_dispute_is_a_payment_of_its_own(cli, tmp_path):
    _example(cli, 2)
    cli.ok(
        "dispute",
        "raise",
        "beds-msk",
        "--year",
        "2",
        "--reason",
        "physio sessions missed",
        "--as",
        "provider:physio",
    )
    cli.ok(
        "dispute",
        "resolve",
        "beds-msk",
        "D2-1",
        "--year",
        "2",
        "--upheld",
        "--note",
        "agreed",
        "--adjust",
        "12500.00",
        "--party",
        "physio",
        "--as",
        "commissioner:bccg",
    )
    adjusted = [*MATCHING, ("Y2-adjustment-1", "physio", "12500.00")]
    assert cli("reconcile", "beds-msk", "--year", "2", "--payments", _register(tmp_path, adjusted)).code == 0
    result = cli(
        "reconcile", "beds-msk", "--year", "2", "--payments", _register(tmp_path, MATCHING, "m.csv"), "--json"
    )
    assert result.code == 3
    assert [(m["key"], m["difference"]) for m in result.json()["mismatches"]] == [
        ("Y2-adjustment-1 physio", "-12500.00")
    ]
    explanation = cli.ok("explain", "beds-msk", "--year", "2", "--json").json()
    _, adjustment = explanation["decisions"]  # the close, then the adjustment
    assert (adjustment["kind"], adjustment["label"], adjustment["dispute_id"]) == (
        "adjustment",
        "manual adjustment 1",
        "D2-1",
    )
    assert adjustment["figures"] is None and adjustment["by_party"] == {"physio": "12500.00"}
    assert explanation["net_total"] == "21825525.07"
    assert "manual adjustment 12,500.00 (dispute D2-1)" in cli.ok("explain", "beds-msk", "--year", "2").out


def test_the_ledgers_payments_export_is_the_register_the_finance_system_would_hold(cli, tmp_path):
    _example(cli, 1, 2)
    cli.ok(
        "ingest",
        _write(
            tmp_path,
            "late.jsonl",
            [
                {
                    "type": "submission",
                    "submission_id": "s-0419",
                    "contract_id": "beds-msk",
                    "provider_id": "circle",
                    "indicator_id": "readmissions",
                    "period": "2027-Q1",
                    "value": "80",
                }
            ],
        ),
    )
    cli.ok("restate", "beds-msk", "2")
    exported = cli.ok("payments", "beds-msk", "--year", "2", "--csv").out
    rows = list(
        csv.DictReader(exported.splitlines())
    )  # the dated schedule: its columns include the register's
    assert [(r["period"], r["party"], r["amount"]) for r in rows] == [
        *MATCHING,
        ("Y2-true-up-1", "circle", "-882144.00"),
    ]
    register = tmp_path / "exported.csv"
    register.write_text(exported)
    assert cli("reconcile", "beds-msk", "--year", "2", "--payments", register).code == 0

    # every year's rows add up to its statement: the total decided plus each true-up
    every = cli.ok("payments", "beds-msk", "--json").json()
    assert {r["year"] for r in every} == {1, 2}
    for year in (1, 2):
        statement = cli.ok("statement", "beds-msk", "--year", str(year), "--json").json()
        net = Decimal(statement["total"]) + sum(
            (Decimal(t["amount"]) for t in statement["true_ups"]), Decimal(0)
        )
        assert sum(Decimal(r["amount"]) for r in every if r["year"] == year) == net
