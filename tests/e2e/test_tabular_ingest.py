"""Providers' CSV and xlsx files: the same records, refusals and row numbers as JSON lines."""

import csv
import json
from decimal import Decimal

import openpyxl
import pytest

from ledger.adapters.tabular import COST_COLUMNS, SUBMISSION_COLUMNS
from tests.support.cli import EXAMPLES

RECORDS = [json.loads(line) for line in (EXAMPLES / "worked-example-data.jsonl").read_text().splitlines()]


def _cells(record, columns):
    row = []
    for name in columns:
        value = record.get(name)
        if name == "high_cost_cases":
            value = "; ".join(f"{c['case_ref']}:{c['cost']}" for c in value or [])
        row.append("" if value is None else value)
    return row


def _columns(record):
    return SUBMISSION_COLUMNS if record["type"] == "submission" else COST_COLUMNS


def _settled(cli, path, *extra):
    cli.ok("contract", "register", EXAMPLES / "worked-example.yaml")
    report = cli.ok("ingest", path, *extra, "--json").json()
    cli.ok("close-year", "beds-msk", "1")
    cli.ok("close-year", "beds-msk", "2")
    return report, [cli.ok("statement", "beds-msk", "--year", y, "--json").json() for y in ("1", "2")]


@pytest.fixture
def jsonl_statements(tmp_path):
    from tests.support.cli import Cli

    reference = Cli(f"sqlite:///{tmp_path / 'reference.db'}")
    return _settled(reference, EXAMPLES / "worked-example-data.jsonl")


def test_a_csv_file_settles_exactly_as_the_same_records_in_json_lines(cli, tmp_path, jsonl_statements):
    path = tmp_path / "records.csv"
    with path.open("w", newline="", encoding="utf-8-sig") as handle:  # with the BOM Excel writes
        writer = csv.writer(handle)
        writer.writerow(sorted(set(SUBMISSION_COLUMNS) | set(COST_COLUMNS)))
        header = sorted(set(SUBMISSION_COLUMNS) | set(COST_COLUMNS))
        for record in RECORDS:
            writer.writerow(_cells(record, header))
    report, statements = _settled(cli, path)
    assert (report["accepted"], report["duplicates"], report["rejected"]) == (33, 1, 0)
    assert statements == jsonl_statements[1]


def test_an_xlsx_workbook_with_numbers_typed_as_numbers_settles_exactly_the_same(
    cli, tmp_path, jsonl_statements
):
    book = openpyxl.Workbook()
    book.remove(book.active)
    for title, kind, columns in (
        ("submissions", "submission", SUBMISSION_COLUMNS),
        ("cost_reports", "cost_report", COST_COLUMNS),
    ):
        sheet = book.create_sheet(title)
        sheet.append([c for c in columns if c != "type"])  # the sheet's name gives the type
        for record in (r for r in RECORDS if r["type"] == kind):
            row = _cells(record, [c for c in columns if c != "type"])
            sheet.append(
                [
                    float(v)
                    if isinstance(v, str) and v.replace(".", "").isdigit() and "." in v
                    else int(v)
                    if isinstance(v, str) and v.isdigit()
                    else v
                    for v in row
                ]
            )
    path = tmp_path / "records.xlsx"
    book.save(path)
    report, statements = _settled(cli, path)
    assert (report["accepted"], report["duplicates"], report["rejected"]) == (33, 1, 0)
    assert statements == jsonl_statements[1]


def test_refused_rows_are_kept_with_their_row_numbers_and_sheet(registered_cli, tmp_path):
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "submissions"
    sheet.append(SUBMISSION_COLUMNS)
    sheet.append(
        ["submission", "x-1", "beds-msk", "circle", "readmissions", "2025-Q2", None, None, "1e999999999"]
    )
    sheet.append([None] * 9)
    sheet.append(
        ["submission", None, "beds-msk", "circle", "readmissions", "2025-Q3", None, None, None]
    )  # unfilled
    sheet.append(["submission", "x-2", "beds-msk", "circle", "readmissions", "2025-Q3", None, None, 80])
    sheet.append(["submission", "x-3\u202e", "beds-msk", "circle", "readmissions", "2025-Q4", None, None, 81])
    path = tmp_path / "upload.xlsx"
    book.save(path)
    report = registered_cli.refused("ingest", path, "--json").json()
    assert (report["accepted"], report["rejected"]) == (1, 2)
    kept = registered_cli.ok("rejected", "list", "--json").json()
    assert sorted((r["source"], r["line"], r["code"], r["field"]) for r in kept) == [
        ("upload.xlsx#submissions", 2, "number_out_of_range", "value"),
        ("upload.xlsx#submissions", 6, "invalid_id", "submission_id"),
    ]


@pytest.fixture
def registered_cli(cli):
    cli.ok("contract", "register", EXAMPLES / "worked-example.yaml")
    return cli


def test_the_template_filled_in_by_a_provider_is_accepted(registered_cli, tmp_path):
    path = tmp_path / "template.xlsx"
    registered_cli.ok("template", "beds-msk", "--year", "2", "--format", "xlsx", "--out", path)
    book = openpyxl.load_workbook(path)
    sheet = book["submissions"]
    header = [c.value for c in sheet[1]]
    filled = 0
    for row in sheet.iter_rows(min_row=2):
        cells = dict(zip(header, row, strict=True))  # both the sheet's width
        if cells["indicator_id"].value == "readmissions":
            cells["submission_id"].value = f"t-{cells['period'].value}"
            cells["value"].value = "70"
            filled += 1
    assert sheet["F2"].number_format == "@"  # text cells: Excel keeps 2026-Q2 and 0.10 as written
    assert "reference" in book.sheetnames
    book.save(path)
    report = registered_cli.ok("ingest", path, "--json").json()
    assert (report["accepted"], report["rejected"]) == (filled, 0) and filled == 4
    rows = registered_cli.ok("submissions", "beds-msk", "--indicator", "readmissions", "--json").json()
    assert sorted(r["submission_id"] for r in rows) == ["t-2026-Q2", "t-2026-Q3", "t-2026-Q4", "t-2027-Q1"]
    assert {Decimal(r["value"]) for r in rows} == {Decimal(70)}


def test_a_csv_template_lists_every_measure_and_period_of_the_year(registered_cli):
    out = registered_cli.ok("template", "beds-msk", "--year", "2").out
    rows = list(csv.DictReader(out.splitlines()))
    assert {(r["indicator_id"], r["period"]) for r in rows} == {
        (m, q)
        for m in ("proms-improved", "readmissions", "shared-decisions.offered", "shared-decisions.documented")
        for q in ("2026-Q2", "2026-Q3", "2026-Q4", "2027-Q1")
    }


def test_a_json_lines_file_that_is_csv_gets_a_hint_and_a_workbook_that_is_not_one_is_refused(
    registered_cli, tmp_path
):
    path = tmp_path / "oops.jsonl"
    path.write_text("type,submission_id,contract_id\nsubmission,s-1,beds-msk\n")
    registered_cli.refused("ingest", path)
    assert all(
        "looks like CSV" in r["message"] for r in registered_cli.ok("rejected", "list", "--json").json()
    )
    fake = tmp_path / "fake.xlsx"
    fake.write_bytes(b"not a zip")
    result = registered_cli("ingest", fake, "--json")
    assert result.code == 1 and json.loads(result.err)["error"] == "invalid_xlsx"


def _workbook(path, rows):
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(SUBMISSION_COLUMNS)  # rows without a value: its cell left empty
    for row in rows:
        sheet.append(row)
    book.save(path)


def _rewrite_part(path, out, name, change=lambda xml: xml, renamed=None):
    """The workbook with part ``name`` changed and, given ``renamed``, moved to that name with
    every relationship to it following (openpyxl finds a sheet by relationship, not by name)."""
    import zipfile

    targets = (name.removeprefix("xl/").encode(), renamed.removeprefix("xl/").encode()) if renamed else None
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            data = src.read(info.filename)
            if targets:
                data = data.replace(*targets)
            if info.filename == name:
                dst.writestr(renamed or info, change(data))
            else:
                dst.writestr(info, data)


def test_a_workbook_declaring_entities_is_refused_whole_naming_the_part(registered_cli, tmp_path):
    good = tmp_path / "good.xlsx"
    _workbook(good, [["submission", "s-1", "beds-msk", "circle", "proms-improved", "2027-Q2", "1", "2"]])
    bomb = tmp_path / "bomb.xlsx"
    laughs = (
        b'<!DOCTYPE d [<!ENTITY a "aaaaaaaaaa">'
        + b"".join(
            b'<!ENTITY a%d "%s">' % (i, (b"&a%d;" % (i - 1) if i > 1 else b"&a;") * 10) for i in range(1, 10)
        )
        + b"]>"
    )

    def plant(xml: bytes) -> bytes:  # the DTD after the XML declaration, if any; its entity in a cell
        head, body = xml.split(b"?>", 1) if xml.startswith(b"<?xml") else (None, xml)
        body = laughs + body.replace(b"s-1", b"&a9;", 1)
        return body if head is None else head + b"?>" + body

    _rewrite_part(good, bomb, "xl/worksheets/sheet1.xml", plant)
    result = registered_cli("ingest", bomb, "--json")
    error = json.loads(result.err)
    assert result.code == 1 and error["error"] == "invalid_xlsx"
    assert "xl/worksheets/sheet1.xml declares a DTD or entities" in error["message"]
    assert registered_cli.ok("submissions", "beds-msk", "--json").json() == []


@pytest.mark.parametrize(
    "lead", [b"", b"\xef\xbb\xbf", b" \r\n" * 30_000], ids=["plain", "utf8-bom", "padded"]
)
def test_a_sheet_part_not_named_xml_is_checked_all_the_same(registered_cli, tmp_path, lead):
    # the check read only parts named *.xml or *.rels; a sheet moved to sheet1.dat (its
    # relationship following it) was parsed by openpyxl unchecked, DTD, entities and all
    good = tmp_path / "good.xlsx"
    _workbook(good, [["submission", "s-1", "beds-msk", "circle", "proms-improved", "2027-Q2", "1", "2"]])
    bomb = tmp_path / "renamed.xlsx"

    def plant(xml: bytes) -> bytes:  # no XML declaration, so whitespace may lead
        body = xml.split(b"?>", 1)[1] if xml.startswith(b"<?xml") else xml
        return lead + b'<!DOCTYPE d [<!ENTITY e "s-9">]>' + body.replace(b"s-1", b"&e;", 1)

    _rewrite_part(good, bomb, "xl/worksheets/sheet1.xml", plant, renamed="xl/worksheets/sheet1.dat")
    result = registered_cli("ingest", bomb, "--json")
    error = json.loads(result.err)
    assert result.code == 1 and error["error"] == "invalid_xlsx", result.err
    assert "xl/worksheets/sheet1.dat declares a DTD or entities" in error["message"]
    assert registered_cli.ok("submissions", "beds-msk", "--json").json() == []


def test_a_renamed_sheet_and_a_binary_part_still_ingest(registered_cli, tmp_path):
    import zipfile

    good = tmp_path / "good.xlsx"
    _workbook(good, [["submission", "s-1", "beds-msk", "circle", "proms-improved", "2027-Q2", "1", "2"]])
    renamed = tmp_path / "renamed.xlsx"
    _rewrite_part(good, renamed, "xl/worksheets/sheet1.xml", renamed="xl/worksheets/sheet1.dat")
    with zipfile.ZipFile(renamed, "a") as archive:  # a thumbnail, as Excel saves one
        archive.writestr("docProps/thumbnail.png", b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8)
        archive.writestr("xl/media/blank.bin", b"")
    report = registered_cli.ok("ingest", renamed, "--json").json()
    assert (report["accepted"], report["rejected"]) == (1, 0)
    assert [s["submission_id"] for s in registered_cli.ok("submissions", "beds-msk", "--json").json()] == [
        "s-1"
    ]


def test_a_workbook_whose_xml_breaks_after_a_batch_of_rows_applies_none_of_them(registered_cli, tmp_path):
    rows = [
        ["submission", f"s-{i}", "beds-msk", "circle", "proms-improved", "2027-Q2", "1", "2"]
        for i in range(2500)
    ]
    good = tmp_path / "good.xlsx"
    _workbook(good, rows)
    broken = tmp_path / "broken.xlsx"
    _rewrite_part(good, broken, "xl/worksheets/sheet1.xml", lambda xml: xml[: len(xml) - 200])  # cut short
    result = registered_cli("ingest", broken, "--json")
    error = json.loads(result.err)
    assert result.code == 1 and error["error"] == "invalid_xlsx"
    assert "xl/worksheets/sheet1.xml is not readable XML" in error["message"]
    assert registered_cli.ok("submissions", "beds-msk", "--json").json() == []  # not the first 2,000


def test_a_workbook_declaring_a_huge_dimension_is_read_as_written_and_quickly(registered_cli, tmp_path):
    # <dimension ref="A1:XFD20000"> and one cell in row 20000: openpyxl padded every row to
    # 16,384 cells (36 s); now rows are read as written and no wider than the header
    import re
    import time

    good = tmp_path / "good.xlsx"
    _workbook(good, [["submission", "s-1", "beds-msk", "circle", "proms-improved", "2027-Q2", "1", "2"]])
    wide = tmp_path / "wide.xlsx"

    def widen(xml: bytes) -> bytes:
        xml = re.sub(rb'<dimension ref="[^"]*"', b'<dimension ref="A1:XFD20000"', xml)
        far = b'<row r="20000"><c r="XFD20000" t="inlineStr"><is><t>x</t></is></c></row>'
        return xml.replace(b"</sheetData>", far + b"</sheetData>")

    _rewrite_part(good, wide, "xl/worksheets/sheet1.xml", widen)
    assert b"XFD20000" in __import__("zipfile").ZipFile(wide).read("xl/worksheets/sheet1.xml")
    started = time.monotonic()
    report = registered_cli.ok("ingest", wide, "--json").json()
    assert time.monotonic() - started < 20  # not a timing test: it took 36 s
    assert (report["accepted"], report["rejected"]) == (1, 0)


def test_a_sheet_whose_header_is_too_wide_is_refused_and_kept(registered_cli, tmp_path):
    book = openpyxl.Workbook()
    book.active.append(SUBMISSION_COLUMNS + [f"c{i}" for i in range(300)])
    book.active.append(["submission", "s-1", "beds-msk", "circle", "proms-improved", "2027-Q2", "1", "2"])
    path = tmp_path / "wide-header.xlsx"
    book.save(path)
    report = registered_cli.refused("ingest", path, "--json").json()
    assert (report["accepted"], report["rejected"]) == (0, 1)
    (kept,) = registered_cli.ok("rejected", "list", "--json").json()
    assert kept["code"] == "invalid_xlsx" and "309 columns (at most 256)" in kept["message"]


@pytest.mark.parametrize(
    "entries, each, declared, reason",
    [
        (5_000, b"", False, "holds more than 1,000 strings"),  # many tiny entries
        (20, b"x" * 20_000, False, "expands past 65,536 bytes"),  # few big ones, the zip's sizes lied
        (20, b"x" * 20_000, True, "expands to "),  # few big ones, as declared
    ],
)
def test_a_shared_strings_bomb_is_refused_whole_naming_the_part(
    registered_cli, tmp_path, monkeypatch, entries, each, declared, reason
):
    # a 1.2 MB workbook whose sharedStrings.xml was 493 MB of tiny entries: 4 min, 2.8 GB, nothing kept
    import zipfile

    from ledger.adapters import tabular

    monkeypatch.setattr(tabular, "MAX_SHARED_STRINGS", 1_000)
    monkeypatch.setattr(tabular, "MAX_SHARED_STRINGS_EXPANDED", 64 * 1024)
    good = tmp_path / "good.xlsx"
    _workbook(good, [["submission", "s-1", "beds-msk", "circle", "proms-improved", "2027-Q2", "1", "2"]])
    bomb = tmp_path / "bomb.xlsx"

    sst = b'<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
    sst += b"<si><t>%s</t></si>" % each * entries + b"</sst>"
    override = (
        b'<Override PartName="/xl/sharedStrings.xml" ContentType="application/'
        b'vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/></Types>'
    )
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():  # openpyxl writes inline strings: add the part it would read
            data = src.read(info.filename)
            dst.writestr(
                info, data.replace(b"</Types>", override) if info.filename == "[Content_Types].xml" else data
            )
        dst.writestr("xl/sharedStrings.xml", sst)
    if not declared:  # the central directory says the part is small
        monkeypatch.setattr(tabular, "check_xlsx", lambda path: None)
    assert zipfile.ZipFile(bomb).getinfo("xl/sharedStrings.xml").file_size > 60_000
    result = registered_cli("ingest", bomb, "--json")
    error = json.loads(result.err)
    assert result.code == 1 and error["error"] == "invalid_xlsx"
    assert f"xl/sharedStrings.xml {reason}" in error["message"]
    assert registered_cli.ok("submissions", "beds-msk", "--json").json() == []


def test_a_csv_row_over_the_line_limit_is_refused_kept_in_part_and_the_next_row_is_read(
    registered_cli, tmp_path
):
    # 200 extra 1 MB columns were accepted (1.25 GB RSS), and a refused row's text was kept whole
    import hashlib

    header = ",".join(SUBMISSION_COLUMNS)
    good = "submission,c-2,beds-msk,circle,proms-improved,2027-Q2,1,2,"
    wide = "submission,c-1,beds-msk,circle,proms-improved,2027-Q2,1,2," + ",".join(["y" * 100_000] * 30)
    quoted = 'submission,c-3,beds-msk,circle,proms-improved,2027-Q2,1,2,"' + "z\n" * 600_000 + '"'
    path = tmp_path / "wide.csv"
    path.write_bytes(
        f"{header}\n{wide}\n{good}\n{quoted}\nsubmission,c-4,beds-msk,circle,proms-improved,2027-Q3,1,2,\n".encode()
    )
    report = registered_cli.refused("ingest", path, "--max-line-bytes", "1000000", "--json").json()
    assert (report["accepted"], report["rejected"]) == (2, 2)
    kept = sorted(registered_cli.ok("rejected", "list", "--json").json(), key=lambda r: r["line"])
    assert [(r["line"], r["code"]) for r in kept] == [(2, "line_too_long"), (4, "line_too_long")]
    row = (wide + "\n").encode()
    assert f"{len(row):,} bytes, sha256 {hashlib.sha256(row).hexdigest()}" in kept[0]["message"]
    assert len(kept[0]["raw"]) == 1_000_000 and wide.startswith(kept[0]["raw"])
    assert len(kept[1]["raw"]) == 1_000_000
    ids = {s["submission_id"] for s in registered_cli.ok("submissions", "beds-msk", "--json").json()}
    assert ids == {"c-2", "c-4"}  # the row after the quoted one is found where it starts
