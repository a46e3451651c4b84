"""Providers' records as CSV or xlsx: rows read into the same records JSON lines carry.

A row is a record whose columns are the record's fields (``type``, ``submission_id``,
``numerator``, …; see contract-format.md); the column order is free and unknown columns
are ignored, as extra JSON fields are. An empty cell is an absent field. A cost report's
``high_cost_cases`` cell lists its cases as ``REF:COST; REF:COST``. A row with neither an
id nor a figure is an unfilled template row and is skipped like a blank line.

Every row becomes a :class:`~ledger.adapters.framing.Line` carrying the decoded record (or the
refusal of the row), its row number and the row's own text, so the ingest that judges
JSON lines judges rows the same way, with the same refusals and the same keeping of
refused rows. The readers are bounded like the JSON-lines reader: a cell over the line
limit, an xlsx file over :data:`MAX_XLSX_BYTES` or one that would expand beyond
:data:`MAX_XLSX_EXPANDED` (a zip bomb) is refused.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
import zipfile
from collections.abc import Iterator
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, BinaryIO

from ledger.adapters.framing import Line, max_line_bytes
from ledger.domain.errors import LedgerError
from ledger.domain.records import RecordRefused, Refusal

FORMATS = ("jsonl", "csv", "xlsx")
MAX_XLSX_BYTES = 64 * 1024 * 1024
MAX_XLSX_EXPANDED = 512 * 1024 * 1024
# openpyxl keeps every shared string in memory before the first row: a 1.2 MB file whose
# sharedStrings.xml was 493 MB of tiny entries took 4 minutes and 2.8 GB.
SHARED_STRINGS = "xl/sharedStrings.xml"
MAX_SHARED_STRINGS_EXPANDED = 32 * 1024 * 1024
MAX_SHARED_STRINGS = 1_000_000  # <si> entries
MAX_XLSX_COLUMNS = 256  # a header's columns (the records have at most ten fields)
MAX_XLSX_ROWS = 1_048_576  # Excel's own limit; a cell at row 10^9 would otherwise mean 10^9 empty rows

SUBMISSION_COLUMNS = [
    "type",
    "submission_id",
    "contract_id",
    "provider_id",
    "indicator_id",
    "period",
    "numerator",
    "denominator",
    "value",
]
COST_COLUMNS = ["type", "report_id", "contract_id", "provider_id", "period", "total_cost", "high_cost_cases"]
POPULATION_COLUMNS = ["type", "record_id", "contract_id", "year", "segment_id", "count"]
CLAIM_COLUMNS = [
    "type",
    "claim_id",
    "contract_id",
    "provider_id",
    "participant_id",
    "outcome_id",
    "period",
    "evidence",
    "supersedes",
]
EPISODE_COLUMNS = [
    "type",
    "episode_id",
    "contract_id",
    "provider_id",
    "health_gain_id",
    "period",
    "pre_score",
    "post_score",
    "expected_gain",
    "supersedes",
]
FIGURES = (
    "numerator",
    "denominator",
    "value",
    "total_cost",
    "high_cost_cases",
    "count",
    "pre_score",
    "post_score",
)
IDS = ("submission_id", "report_id", "record_id", "claim_id", "episode_id")
SHEET_TYPES = {
    "submissions": "submission",
    "cost_reports": "cost_report",
    "population": "population",
    "outcome_claims": "outcome_claim",
    "prom_episodes": "prom_episode",
}


def format_of(name: str, given: str | None = None) -> str:
    """The input format: as given, else from the file name (``.csv``, ``.xlsx``), else JSON lines."""
    if given:
        return given
    suffix = Path(name).suffix.lower()
    return {".csv": "csv", ".xlsx": "xlsx", ".xlsm": "xlsx"}.get(suffix, "jsonl")


def _cases(text: str) -> list[dict[str, str]]:
    cases = []
    for i, piece in enumerate(p.strip() for p in text.split(";")):
        if not piece:
            continue
        ref, sep, cost = piece.rpartition(":")
        if not sep or not ref.strip() or not cost.strip():
            raise RecordRefused(
                Refusal(
                    "invalid_field",
                    f"high_cost_cases[{i}]",
                    f"{piece[:60]!r} is not CASE_REF:COST (cases are separated by ';')",
                )
            )
        cases.append({"case_ref": ref.strip(), "cost": cost.strip()})
    return cases


def row_record(header: list[str], cells: list[Any], default_type: str | None = None) -> dict[str, Any] | None:
    """The record a row holds, or None for an unfilled (blank) row; raises RecordRefused."""
    record: dict[str, Any] = {}
    for name, cell in zip(header, cells, strict=False):  # a row may be shorter or longer than its header
        if not name or cell is None or (isinstance(cell, str) and not cell.strip()):
            continue
        if name in record:
            raise RecordRefused(
                Refusal("duplicate_key", name, "the column appears more than once in the header")
            )
        record[name] = cell.strip() if isinstance(cell, str) else cell
    if not any(k in record for k in IDS + FIGURES):
        return None
    if default_type and "type" not in record:
        record["type"] = default_type
    if isinstance(record.get("high_cost_cases"), str):
        record["high_cost_cases"] = _cases(record["high_cost_cases"])
    year = record.get("year")
    if isinstance(year, str) and year.isascii() and year.isdigit() and len(year) <= 4:
        record["year"] = int(year)
    return record


def _row_text(cells: list[Any]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="").writerow(["" if c is None else c for c in cells])
    return out.getvalue()


def _smuggled(cells: list[str]) -> int | None:
    """The position of the first byte that was not UTF-8 (decoded with surrogateescape), or None."""
    for cell in cells:
        for i, char in enumerate(cell):
            if 0xDC80 <= ord(char) <= 0xDCFF:
                return i
    return None


# csv's field limit is process-wide: set once here, not per reader (readers interleave). It only
# needs to exceed any row limit: _RowFeed keeps each row's text within the line limit itself.
csv.field_size_limit(2**31 - 1)
_SHAPE = re.compile(r'[^",\r\n]+')


class _RowFeed:
    """Physical lines of a CSV text for ``csv.reader``, holding each row to ``limit`` bytes.

    Once a row passes the limit, the rest of it is fed only as its shape (quotes, commas and line
    ends kept, every other run of characters one ``x``), so the reader still finds where the row
    ends but never holds it; the first ``limit`` bytes and the sha256 and length of the whole row
    are kept, as :func:`~ledger.adapters.framing.read_lines` keeps a line too long."""

    def __init__(self, text: io.TextIOBase, limit: int) -> None:
        self.text, self.limit = text, limit
        self.start_row()

    def start_row(self) -> None:
        self.size = self.kept_size = 0
        self.kept: list[bytes] = []
        self.digest: Any = None

    def __iter__(self) -> _RowFeed:
        return self

    def __next__(self) -> str:
        line = self.text.readline(self.limit + 1)
        if not line:
            raise StopIteration
        data = line.encode("utf-8", errors="surrogateescape")
        if self.digest is None and self.size + len(data) <= self.limit:  # a line cut at limit + 1 never fits
            self.size += len(data)
            self.kept_size += len(data)
            self.kept.append(data)
            return line
        if self.digest is None:
            self.digest = hashlib.sha256(b"".join(self.kept))
        shape = [_SHAPE.sub("x", line)]
        while True:  # the rest of this physical line, in bounded pieces
            self.size += len(data)
            self.digest.update(data)
            if self.kept_size < self.limit:
                self.kept.append(data[: self.limit - self.kept_size])
                self.kept_size += len(self.kept[-1])
            if line.endswith(("\n", "\r")):
                break
            line = self.text.readline(self.limit + 1)
            if not line:
                break
            data = line.encode("utf-8", errors="surrogateescape")
            shape.append(_SHAPE.sub("x", line))
        return _SHAPE.sub("x", "".join(shape))

    def too_long(self, number: int) -> Line | None:
        """The refusal of the row just read when it passed the limit, else None."""
        if self.digest is None:
            return None
        raw = b"".join(self.kept)[: self.limit].decode("utf-8", errors="backslashreplace")
        message = f"the row is longer than {self.limit:,} bytes ({self.size:,} bytes, sha256 {self.digest.hexdigest()})"
        return Line(number, None, Refusal("line_too_long", None, message), raw)


def read_csv(stream: BinaryIO, limit: int | None = None) -> Iterator[Line]:
    """Rows of a CSV file (UTF-8, a leading byte-order mark allowed as Excel writes one); a row
    over the line limit is refused ``line_too_long``, its first ``limit`` bytes and sha256 kept."""
    limit = limit or max_line_bytes()
    text = io.TextIOWrapper(stream, encoding="utf-8-sig", errors="surrogateescape", newline="")
    feed = _RowFeed(text, limit)
    try:
        reader = csv.reader(feed)
        header: list[str] | None = None
        last = 0
        while True:
            feed.start_row()
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                number, last = last + 1, reader.line_num
                yield Line(number, None, Refusal("invalid_csv", None, f"row is not readable CSV: {exc}"), "")
                continue
            number, last = last + 1, reader.line_num
            refused = feed.too_long(number)
            if refused is not None:
                yield refused
                continue
            if not any(c.strip() for c in cells):
                continue
            raw = _row_text(cells)
            if _smuggled(cells) is not None:
                safe_raw = raw.encode("utf-8", errors="surrogateescape").decode(
                    "utf-8", errors="backslashreplace"
                )
                yield Line(
                    number, None, Refusal("invalid_encoding", None, "the row is not valid UTF-8"), safe_raw
                )
                continue
            if header is None:
                header = [c.strip() for c in cells]
                if "type" not in header:
                    yield Line(
                        number,
                        None,
                        Refusal(
                            "missing_field",
                            "type",
                            "the first row must be a header naming the record's fields, with a 'type' column",
                        ),
                        raw,
                    )
                    return
                continue
            yield _line(number, header, list(cells), raw)
    finally:
        text.detach()


def _line(
    number: int,
    header: list[str],
    cells: list[Any],
    raw: str,
    default_type: str | None = None,
    source: str | None = None,
) -> Line:
    try:
        record = row_record(header, cells, default_type)
    except RecordRefused as exc:
        return Line(number, None, exc.refusal, raw, source=source)
    if record is None:
        return Line(number, None, None, raw, source=source, blank=True)
    return Line(number, None, None, raw, obj=record, source=source)


def _cell(value: Any, column: str) -> Any:
    """An xlsx cell as record text: numbers by their shortest round-tripping decimal text (never
    float), a date in a period column as its month (Excel turns "2025-04" into 1 April 2025)."""
    if isinstance(value, bool) or value is None or isinstance(value, (str, int)):
        return value
    if isinstance(value, float):
        return format(Decimal(repr(value)), "f")
    if isinstance(value, (datetime, date)):
        day = value.date() if isinstance(value, datetime) else value
        return f"{day.year:04d}-{day.month:02d}" if column == "period" and day.day == 1 else day.isoformat()
    return str(value)


def check_xlsx(data_or_path: Path) -> None:
    """Refuse an xlsx file that is too large or would expand too far (a zip bomb)."""
    size = data_or_path.stat().st_size
    if size > MAX_XLSX_BYTES:
        raise LedgerError(
            f"{data_or_path.name} is {size:,} bytes (at most {MAX_XLSX_BYTES:,})", code="file_too_large"
        )
    try:
        with zipfile.ZipFile(data_or_path) as archive:
            expanded = sum(info.file_size for info in archive.infolist())
            shared = sum(info.file_size for info in archive.infolist() if _is_shared_strings(info.filename))
    except zipfile.BadZipFile:
        raise LedgerError(
            f"{data_or_path.name} is not an xlsx workbook (not a zip archive)", code="invalid_xlsx"
        ) from None
    if expanded > MAX_XLSX_EXPANDED:
        raise LedgerError(
            f"{data_or_path.name} expands to {expanded:,} bytes (at most {MAX_XLSX_EXPANDED:,})",
            code="file_too_large",
        )
    if shared > MAX_SHARED_STRINGS_EXPANDED:
        raise _too_many_strings(data_or_path, SHARED_STRINGS, f"expands to {shared:,} bytes")


def _too_many_strings(path: Path, part: str, what: str) -> LedgerError:
    return LedgerError(
        f"{path.name}: {part} {what} (at most {MAX_SHARED_STRINGS_EXPANDED:,} bytes and "
        f"{MAX_SHARED_STRINGS:,} strings); refused",
        code="invalid_xlsx",
    )


def _is_shared_strings(name: str) -> bool:
    return name.lower().lstrip("/") == SHARED_STRINGS.lower()


def _starts_as_xml(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> bool:
    """Whether a part reads as XML, whatever it is named: a workbook's relationships may point
    a sheet at ``sheet1.dat`` and openpyxl parses it all the same, so the name decides nothing.
    Byte-order marks, whitespace (however much of it) and UTF-16's zero bytes are skipped; the
    first other byte decides."""
    if info.is_dir():
        return False
    try:
        with archive.open(info) as part:
            chunk = part.read(64 * 1024)
            for mark in (b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff"):
                chunk = chunk.removeprefix(mark)
            while chunk:
                if rest := chunk.lstrip(b" \t\r\n\x00"):
                    return rest.startswith(b"<")
                chunk = part.read(64 * 1024)
    except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError, RuntimeError):
        return True  # unreadable: the parse names the part and the reason
    return False  # empty, or nothing but whitespace: no XML to parse


def check_xlsx_xml(path: Path) -> None:
    """Refuse a workbook whose XML is malformed or declares a DTD or entities (no xlsx workbook
    does: an entity-expansion bomb), before any row is read — so a workbook is applied whole or not
    at all, never up to the row where its XML breaks. The parts are streamed, nothing kept."""
    from xml.etree.ElementTree import ParseError

    from defusedxml import DefusedXmlException
    from defusedxml.ElementTree import iterparse

    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            if not info.filename.endswith((".xml", ".rels")) and not _starts_as_xml(archive, info):
                continue  # a thumbnail, a vbaProject.bin: nothing openpyxl parses as XML
            try:
                with archive.open(info) as part:
                    entries = 0  # shared strings (<si>), in whatever part the content types name for them
                    for _, element in iterparse(part, forbid_dtd=True):
                        if element.tag.rpartition("}")[2] == "si":
                            entries += 1
                            if entries > MAX_SHARED_STRINGS:
                                raise _too_many_strings(
                                    path, info.filename, f"holds more than {MAX_SHARED_STRINGS:,} strings"
                                )
                        if entries and part.tell() > MAX_SHARED_STRINGS_EXPANDED:  # declared sizes may lie
                            raise _too_many_strings(
                                path, info.filename, f"expands past {MAX_SHARED_STRINGS_EXPANDED:,} bytes"
                            )
                        element.clear()
            except DefusedXmlException:
                raise LedgerError(
                    f"{path.name}: {info.filename} declares a DTD or entities, which no xlsx workbook "
                    f"does (an XML entity bomb?); refused",
                    code="invalid_xlsx",
                ) from None
            except (ParseError, zipfile.BadZipFile, OSError, EOFError) as exc:
                raise LedgerError(
                    f"{path.name}: {info.filename} is not readable XML ({type(exc).__name__}: {exc})",
                    code="invalid_xlsx",
                ) from None


def _header(sheet: Any, default_type: str | None, source: str) -> tuple[list[str], int] | Line | None:
    """The sheet's header (its first non-empty row, trailing empty cells dropped) and its row
    number; None for a sheet that holds no records; a refusal for a header too wide to read."""
    for number, values in enumerate(sheet.iter_rows(values_only=True), start=1):
        if number > MAX_XLSX_ROWS:
            return None
        if not any(v is not None for v in values):
            continue
        header = ["" if v is None else str(v).strip() for v in values]
        while header and not header[-1]:
            header.pop()
        if "type" not in header and default_type is None:
            return None  # not a data sheet (e.g. the template's reference sheet)
        if len(header) > MAX_XLSX_COLUMNS:
            message = f"the header has {len(header):,} columns (at most {MAX_XLSX_COLUMNS:,}); sheet not read"
            return Line(number, None, Refusal("invalid_xlsx", None, message), "", source=source)
        return header, number
    return None


def read_xlsx(path: Path, limit: int | None = None) -> Iterator[Line]:
    """Rows of every sheet with a header row; a sheet named submissions, cost_reports or
    population gives its rows that type when they have no ``type`` column. Row numbers are
    the sheet's; the source names the sheet (``file.xlsx#submissions``)."""
    from openpyxl import load_workbook  # openpyxl (~0.3 s to import) only when an xlsx is read

    limit = limit or max_line_bytes()
    check_xlsx(path)
    check_xlsx_xml(path)
    try:
        book = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:
        raise LedgerError(
            f"{path.name} is not a readable xlsx workbook: {type(exc).__name__}: {exc}", code="invalid_xlsx"
        ) from None
    try:
        for sheet in book.worksheets:
            source = f"{path.name}#{sheet.title}"
            default_type = SHEET_TYPES.get(sheet.title)
            # The declared <dimension> is the sender's word: openpyxl pads every row to it (A1:XFD20000
            # with one cell made 20,000 rows of 16,384 cells). Rows are read as written, and data
            # rows no wider than the header.
            sheet.reset_dimensions()
            found = _header(sheet, default_type, source)
            if found is None:
                continue
            if isinstance(found, Line):
                yield found
                continue
            header, start = found
            rows = sheet.iter_rows(min_row=start + 1, max_col=len(header), values_only=True)
            for number, values in enumerate(rows, start=start + 1):
                if number > MAX_XLSX_ROWS:
                    yield Line(
                        number,
                        None,
                        Refusal("invalid_xlsx", None, f"the sheet has rows past row {MAX_XLSX_ROWS:,}"),
                        "",
                        source=source,
                    )
                    break
                cells = [_cell(v, header[i] if i < len(header) else "") for i, v in enumerate(values)]
                if not any(c is not None and str(c).strip() for c in cells):
                    continue
                raw = _row_text(cells)
                if len(raw.encode("utf-8", errors="surrogatepass")) > limit:
                    yield Line(
                        number,
                        None,
                        Refusal("line_too_long", None, f"the row is longer than {limit:,} bytes"),
                        raw[:limit],
                        source=source,
                    )
                    continue
                yield _line(number, header, cells, raw, default_type, source)
    finally:
        book.close()


# ------------------------------------------------------------------ upload templates


def template_rows(definition: Any, calendar: Any, year: int) -> dict[str, tuple[list[str], list[list[str]]]]:
    """The upload template of a contract year: per kind, its header and pre-filled rows.

    Submissions: one row per measure (an indicator, or each of its subcomponents) and period,
    the lead provider filled in (change it where a subcontractor reports the measure); cost
    reports: one row per provider and period; population (capitation contracts): one row per
    segment. Ids and figures are left for the provider: a row left unfilled is skipped.
    """
    periods = [p.label for p in calendar.periods(year)]
    lead = definition.lead_provider.id
    measures = [m for i in definition.indicators for m in i.measures]
    sheets: dict[str, tuple[list[str], list[list[str]]]] = {
        "submissions": (
            SUBMISSION_COLUMNS,
            [["submission", "", definition.id, lead, m.id, q, "", "", ""] for m in measures for q in periods],
        ),
        "cost_reports": (
            COST_COLUMNS,
            [["cost_report", "", definition.id, p, q, "", ""] for p in definition.providers for q in periods],
        ),
    }
    if definition.budget.capitation is not None:
        sheets["population"] = (
            POPULATION_COLUMNS,
            [
                ["population", "", definition.id, str(year), s.id, ""]
                for s in definition.budget.capitation.segments
            ],
        )
    # claims and episodes are per participant or patient: the header only (payment rules §8, §9)
    if definition.rate_card is not None:
        sheets["outcome_claims"] = (CLAIM_COLUMNS, [])
    if definition.health_gain:
        sheets["prom_episodes"] = (EPISODE_COLUMNS, [])
    return sheets


def template_reference(definition: Any, calendar: Any, year: int) -> list[list[str]]:
    """What a provider needs beside the rows: the measures (unit, how periods combine), parties, periods."""
    rows = [["what", "id", "name", "unit", "aggregation", "how to fill in"]]
    for indicator in definition.indicators:
        for m in indicator.measures:
            how = "numerator and denominator (whole counts or decimals)" if m.unit == "ratio" else "value"
            rows.append(["measure", m.id, indicator.name, m.unit, m.aggregation, how])
    for party in [definition.lead_provider, *definition.subcontractors]:
        rows.append(["provider", party.id, party.name, "", "", "provider_id"])
    for p in calendar.periods(year):
        rows.append(["period", p.label, f"contract year {year}", "", "", "period"])
    rows.append(
        [
            "cost report",
            "high_cost_cases",
            "cases above the threshold",
            "",
            "",
            "CASE_REF:COST; CASE_REF:COST (a case may appear more than once: its entries add up)",
        ]
    )
    return rows


def write_csv(header: list[str], rows: list[list[str]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


def write_template_xlsx(
    path: Path,
    sheets: dict[str, tuple[list[str], list[list[str]]]],
    reference: list[list[str]],
    providers: list[str],
    measures: list[str],
) -> None:
    """An xlsx template: one sheet per record kind with every cell formatted as text (so Excel
    keeps "2025-04" and "0.10" as written), lists to pick providers and measures from, and a
    reference sheet."""
    # openpyxl (~0.3 s to import) only when an xlsx is written: CSV and JSON lines never need it
    from openpyxl import Workbook
    from openpyxl.styles import Font
    from openpyxl.worksheet.datavalidation import DataValidation

    book = Workbook()
    if book.active is not None:  # a new workbook's one empty sheet
        book.remove(book.active)
    for title, (header, rows) in sheets.items():
        sheet = book.create_sheet(title)
        sheet.append(header)
        for cell in sheet[1]:
            cell.font = Font(bold=True)
        for row in rows:
            sheet.append(row)
        last = max(len(rows) + 1, 2) + 200  # room for rows the provider adds
        for column in range(1, len(header) + 1):
            for r in range(2, last + 1):
                sheet.cell(row=r, column=column).number_format = "@"
            sheet.column_dimensions[sheet.cell(row=1, column=column).column_letter].width = max(
                14, len(header[column - 1]) + 4
            )
        sheet.freeze_panes = "A2"
        for name, choices in (("provider_id", providers), ("indicator_id", measures)):
            if name in header and choices and len(",".join(choices)) < 250:
                letter = sheet.cell(row=1, column=header.index(name) + 1).column_letter
                rule = DataValidation(type="list", formula1='"' + ",".join(choices) + '"', allow_blank=True)
                rule.add(f"{letter}2:{letter}{last}")
                sheet.add_data_validation(rule)
    ref = book.create_sheet("reference")
    for row in reference:
        ref.append(row)
    for cell in ref[1]:
        cell.font = Font(bold=True)
    book.save(path)
