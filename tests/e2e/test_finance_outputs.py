"""Finance-ready outputs: the dated payment schedule (text, CSV, xlsx, JSON), registers read back, accruals."""

import csv
import io
import json
import re
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import yaml
from openpyxl import load_workbook

from tests.support.cli import EXAMPLES

GOLDEN = Path(__file__).parent / "golden"
FINANCE = {
    "payment_terms": {"instalment_due_days": 10, "settlement_due_days": 14},
    "parties": {
        "circle": {"supplier_code": "SUP-0042", "cost_centre": "MSK100", "purchase_order": "PO-118"},
        "physio": {"supplier_code": "SUP-0077", "cost_centre": "MSK200"},
    },
}
STAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")


def _contract(tmp_path, finance=None):
    doc = yaml.safe_load((EXAMPLES / "worked-example.yaml").read_text())
    if finance is not None:
        doc["finance"] = finance
    path = tmp_path / "contract.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def _example(cli, tmp_path, *years, finance=None, late=False):
    cli.ok("contract", "register", _contract(tmp_path, finance))
    cli.ok("ingest", EXAMPLES / "worked-example-data.jsonl")
    for year in years:
        cli.ok("close-year", "beds-msk", str(year))
    if late:
        late_file = tmp_path / "late.jsonl"
        late_file.write_text(
            json.dumps(
                {
                    "type": "submission",
                    "submission_id": "s-0419",
                    "contract_id": "beds-msk",
                    "provider_id": "circle",
                    "indicator_id": "readmissions",
                    "period": "2027-Q1",
                    "value": "80",
                }
            )
            + "\n"
        )
        cli.ok("ingest", late_file)
        cli.ok("restate", "beds-msk", "2")


def _net(cli, year):
    s = cli.ok("statement", "beds-msk", "--year", str(year), "--json").json()
    return Decimal(s["total"]) + sum((Decimal(t["amount"]) for t in s["true_ups"]), Decimal(0))


def test_every_payment_line_carries_its_ids_finance_codes_kind_due_date_financial_year_and_currency(
    cli, tmp_path
):
    _example(cli, tmp_path, 1, 2, finance=FINANCE, late=True)
    lines = cli.ok("payments", "beds-msk", "--year", "2", "--json").json()
    assert [(x["period"], x["party"], x["kind"]) for x in lines][-3:] == [
        ("Y2-close", "circle", "year_close"),
        ("Y2-close", "physio", "year_close"),
        ("Y2-true-up-1", "circle", "true_up"),
    ]
    first = lines[0]
    assert first["payment_id"] == "beds-msk/2026-Q2/circle" and first["kind"] == "instalment"
    assert (first["supplier_code"], first["cost_centre"], first["purchase_order"]) == (
        "SUP-0042",
        "MSK100",
        "PO-118",
    )
    assert (first["service_from"], first["service_to"]) == ("2026-04-01", "2026-06-30")
    assert (
        first["due_date"] == "2026-07-10" and first["financial_year"] == "2026/27"
    )  # 10 days after the quarter
    assert first["currency"] == "GBP"
    history = {h["notification_id"]: h for h in cli.ok("history", "beds-msk", "--year", "2", "--json").json()}
    for line in lines:
        assert history[line["event_position"]]["at"] == line["decided_at"]
        assert re.fullmatch(r"[0-9a-f-]{36}:\d+", line["decision_id"])
    close = next(x for x in lines if x["kind"] == "year_close")
    assert (
        close["due_date"] == (date.fromisoformat(close["decided_at"][:10]) + timedelta(days=14)).isoformat()
    )
    assert lines[lines.index(close) + 1]["supplier_code"] == "SUP-0077"
    assert len({x["payment_id"] for x in lines}) == len(lines)
    again = cli.ok("payments", "beds-msk", "--year", "2", "--json").json()
    assert [x["payment_id"] for x in again] == [x["payment_id"] for x in lines]  # stable between exports


def test_without_a_finance_section_instalments_fall_due_on_their_last_day_and_decisions_30_days_after(
    cli, tmp_path
):
    _example(cli, tmp_path, 2)
    lines = cli.ok("payments", "beds-msk", "--year", "2", "--json").json()
    assert [x["due_date"] for x in lines if x["party"] == "circle" and x["kind"] == "instalment"] == [
        "2026-06-30",
        "2026-09-30",
        "2026-12-31",
        "2027-03-31",
    ]
    close = next(x for x in lines if x["kind"] == "year_close")
    assert (
        close["due_date"] == (date.fromisoformat(close["decided_at"][:10]) + timedelta(days=30)).isoformat()
    )
    assert close["supplier_code"] is None


def test_an_unknown_finance_party_or_field_is_refused_with_its_path(cli, tmp_path):
    bad = {
        "payment_terms": {"settlement_due_days": -1, "net": 30},
        "parties": {"nobody": {"supplier_code": "X"}},
    }
    result = cli("contract", "register", _contract(tmp_path, bad), "--json")
    assert result.code != 0
    text = result.err + result.out
    for where in (
        "finance.payment_terms.settlement_due_days",
        "finance.payment_terms.net",
        "finance.parties.nobody",
    ):
        assert where in text


def test_the_payments_text_is_the_golden_table_for_the_worked_example(cli, tmp_path):
    _example(cli, tmp_path, 1, 2, finance=FINANCE, late=True)
    text = cli.ok("payments", "beds-msk").out
    stamps = set(STAMP.findall(text))
    assert stamps and all(s.endswith("Z") for s in stamps)
    decided = {date.fromisoformat(s[:10]) + timedelta(days=14) for s in stamps}
    normal = STAMP.sub("YYYY-MM-DDThh:mm:ssZ", text)
    for day in decided:
        normal = re.sub(rf"   {day.isoformat()}   \d{{4}}/\d\d   ", "   DECIDED+14   FY(due)   ", normal)
    golden = GOLDEN / "payments-worked-example.txt"
    if not golden.exists():  # pragma: no cover - a missing golden file is written for review, and fails
        golden.write_text(normal)
        pytest.fail(f"wrote {golden}: review it and commit")
    assert normal == golden.read_text()


def test_the_csv_and_xlsx_schedules_add_up_to_the_statements_and_reconcile_back(cli, tmp_path):
    _example(cli, tmp_path, 1, 2, finance=FINANCE, late=True)
    exported = cli.ok("payments", "beds-msk", "--csv").out
    rows = list(csv.DictReader(io.StringIO(exported)))
    assert {"payment_id", "due_date", "supplier_code", "financial_year", "currency", "decision_id"} <= set(
        rows[0]
    )
    for year in (1, 2):
        assert sum(Decimal(r["amount"]) for r in rows if r["year"] == str(year)) == _net(cli, year)
    register = tmp_path / "schedule.csv"
    register.write_text(exported)
    result = cli("reconcile", "beds-msk", "--year", "2", "--payments", register, "--json")
    assert result.code == 0, result.err
    assert result.json()["payments"]["register_format"] == "period,party,amount"

    book = tmp_path / "schedule.xlsx"
    summary = cli.ok("payments", "beds-msk", "--xlsx", book, "--json").json()
    assert summary["lines"] == len(rows)
    sheet = load_workbook(book)["Payments"]
    header = [c.value for c in sheet[1]]
    amount, year_at, due = header.index("amount"), header.index("year"), header.index("due_date")
    values = list(sheet.iter_rows(min_row=2))
    assert all(
        r[amount].number_format == "#,##0.00" and isinstance(r[amount].value, (int, float)) for r in values
    )
    assert all(isinstance(r[due].value, __import__("datetime").datetime) for r in values)
    for year in (1, 2):  # each cell's shortest text is the exact Decimal: the sums are exact
        assert sum(Decimal(repr(r[amount].value)) for r in values if r[year_at].value == year) == _net(
            cli, year
        )
    totals = load_workbook(book)["Totals"]
    assert sum(Decimal(repr(r[2].value)) for r in totals.iter_rows(min_row=2)) == _net(cli, 1) + _net(cli, 2)


def test_a_finance_systems_own_register_is_matched_by_payment_id_or_by_supplier_and_due_date(
    any_cli, tmp_path
):
    cli = any_cli  # SQLite, then a real PostgreSQL server
    _example(cli, tmp_path, 1, 2, finance=FINANCE)
    lines = cli.ok("payments", "beds-msk", "--year", "2", "--json").json()
    by_ref = tmp_path / "by-ref.csv"
    paid_on = [x["due_date"] for x in lines]
    paid_on[0] = (date.fromisoformat(paid_on[0]) + timedelta(days=3)).isoformat()  # paid three days late
    by_ref.write_text(
        "Invoice_Reference,Paid_On,Amount,Narrative\n"
        + "".join(
            f"{x['payment_id']},{day},{x['amount']},MSK\n" for x, day in zip(lines, paid_on, strict=True)
        )
    )
    result = cli("reconcile", "beds-msk", "--year", "2", "--payments", by_ref, "--json")
    assert result.code == 0, result.out  # a late payment is a note, not a difference
    payments = result.json()["payments"]
    assert payments["register_format"] == "references and dates"
    assert payments["date_differences"] == [
        {
            "register_line": 2,
            "payment_id": lines[0]["payment_id"],
            "due_date": lines[0]["due_date"],
            "register_date": paid_on[0],
        }
    ]
    assert payments["register_total"] == payments["ledger_total"]

    by_date = tmp_path / "by-date.csv"  # no ledger ids at all: supplier code and due date, one close short
    body = [f"{x['supplier_code']},{x['due_date']},{x['amount']}" for x in lines]
    body[-1] = body[-1].rsplit(",", 1)[0] + ",206650.00"
    by_date.write_text("supplier_code,due_date,amount\n" + "\n".join(body) + "\nSUP-0077,2027-02-01,99.00\n")
    result = cli("reconcile", "beds-msk", "--year", "2", "--payments", by_date, "--json")
    assert result.code == 3
    mismatches = {m["key"]: (m["status"], m["difference"]) for m in result.json()["mismatches"]}
    assert mismatches == {
        "Y2-close physio": ("amount_differs", "-0.40"),
        "Y2-unmatched-2027-02-01-SUP-0077 SUP-0077": ("missing_in_ledger", "99.00"),
    }


def test_accruals_by_financial_year_split_decided_not_yet_due_and_provisional_lines(cli, tmp_path):
    _example(cli, tmp_path, 1, 2, finance={"payment_terms": {"settlement_due_days": 180}})
    a = cli.ok("accruals", "--financial-year", "2026/27", "--json").json()
    assert (a["from"], a["to"]) == ("2026-04-01", "2027-03-31")
    assert {line["year"] for line in a["lines"]} == {2}  # contract year 2 is the financial year 2026/27
    close = [line for line in a["lines"] if line["kind"] == "year_close"]
    decided = date.fromisoformat(close[0]["decided_at"][:10])  # the ledger's clock: today
    expected = (
        "decided_after_year_end" if decided > date(2027, 3, 31) else "decided_not_due"
    )  # due 180 days on
    assert {c["status"] for c in close} == {expected}
    parties = {p["party"]: p for p in a["parties"]}
    assert [p["party"] for p in a["parties"]] == ["circle", "physio"]  # lead provider first
    assert parties["circle"]["to_accrue"] == "434918.67" and parties["physio"]["to_accrue"] == "206650.40"
    total = sum(Decimal(line["fy_amount"]) for line in a["lines"])
    assert total == _net(cli, 2)
    assert all(line["basis"] for line in a["lines"])

    later = cli.ok("accruals", "--financial-year", "2027/28", "--json").json()  # year 3 is open
    assert {line["status"] for line in later["lines"]} == {"provisional"}
    provisional = read_provisional(cli)
    assert sum(Decimal(line["fy_amount"]) for line in later["lines"]) == provisional
    assert "provisional settlement from the data held now" in later["lines"][0]["basis"]

    book = tmp_path / "accruals.xlsx"
    cli.ok("accruals", "--financial-year", "2026/27", "--xlsx", book)
    sheet = load_workbook(book)["By party"]
    header = [c.value for c in sheet[1]]
    col = header.index("to_accrue")
    assert sum(Decimal(repr(r[col].value)) for r in sheet.iter_rows(min_row=2)) == Decimal(a["to_accrue"])
    assert cli("accruals", "--financial-year", "2027-28").code != 0


def read_provisional(cli):
    figures = cli.ok("explain", "beds-msk", "--year", "3", "--json").json()["decisions"][-1]["figures"]
    return Decimal(figures["total"])  # no instalment of year 3 decided yet: the whole provisional total


def test_the_payments_accruals_and_report_help_describes_every_argument_and_gives_examples():
    import argparse

    from ledger.entrypoints.cli.main import build_parser

    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    for name in ("payments", "accruals", "report"):
        parser = sub.choices[name]
        own = [
            a
            for a in parser._actions
            if not a.option_strings
            or a.dest not in {"db", "json", "projections_db", "actor", "log_level", "help"}
        ]
        assert own and all(a.help for a in own), [a.dest for a in own if not a.help]
        assert f"examples:\n  obc-ledger {name}" in parser.format_help()


def test_an_upheld_dispute_adjustment_is_a_payment_line_of_its_own_due_after_its_decision(cli, tmp_path):
    _example(cli, tmp_path, 2)
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
    lines = cli.ok("payments", "beds-msk", "--year", "2", "--json").json()
    last = lines[-1]
    assert (last["payment_id"], last["kind"], last["party"], last["amount"]) == (
        "beds-msk/Y2-adjustment-1/physio",
        "dispute_adjustment",
        "physio",
        "12500.00",
    )
    assert last["due_date"] == (date.fromisoformat(last["decided_at"][:10]) + timedelta(days=30)).isoformat()
    history = cli.ok("history", "beds-msk", "--year", "2", "--json").json()
    assert any(
        h["notification_id"] == last["event_position"] and h["event"] == "adjustment_decided" for h in history
    )
    a = cli.ok("accruals", "--financial-year", "2026/27", "--json").json()
    physio = next(p for p in a["parties"] if p["party"] == "physio")
    assert sum(
        Decimal(physio[k]) for k in ("due_by_year_end", "decided_not_due", "decided_after_year_end")
    ) == sum(Decimal(x["amount"]) for x in lines if x["party"] == "physio")
