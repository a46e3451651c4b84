"""Property: random byte mutations of valid records never raise out of ingest.

Every mutated line is either accepted, acknowledged as a duplicate or refused with a
code (and kept); the file's other lines are applied; and the ledger still reads.
"""

import io
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.usecases import services_for
from ledger.usecases.application import Ledger
from tests.support.cli import EXAMPLES

CONTRACT = (EXAMPLES / "worked-example.yaml").read_text()
VALID = (EXAMPLES / "worked-example-data.jsonl").read_bytes().splitlines()
HOSTILE_BYTES = [
    b"\x00",
    b"\xff",
    b"\xe9",
    b"\xed\xa0\x80",
    b"\\ud800",
    b'"',
    b"\\",
    b"e999999999",
    b"e-99999999",
    b"\xe2\x80\xae",
    b"\xe2\x80\x8b",
    b"\n",
    b"\r",
    b"{",
    b"]",
    b"9" * 80,
    b"\xef\xbb\xbf",
]


@st.composite
def mutated(draw):
    line = bytearray(draw(st.sampled_from(VALID)))
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(line)))
        action = draw(st.sampled_from(["insert", "replace", "delete", "flip"]))
        if action == "insert":
            line[at:at] = draw(st.sampled_from(HOSTILE_BYTES))
        elif action == "replace" and at < len(line):
            line[at : at + draw(st.integers(1, 8))] = draw(st.sampled_from(HOSTILE_BYTES))
        elif action == "delete" and at < len(line):
            del line[at : at + draw(st.integers(1, 8))]
        elif at < len(line):
            line[at] ^= 1 << draw(st.integers(0, 7))
    return bytes(line)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(bad=st.lists(mutated(), min_size=1, max_size=12))
def test_random_byte_mutations_never_raise_out_of_ingest(bad):
    with tempfile.TemporaryDirectory() as tmp:
        app = Ledger.from_url(f"sqlite:///{Path(tmp) / 'ledger.db'}")
        services_for(app).registration.register_contract(CONTRACT)
        stream = io.BytesIO(b"\n".join(bad + VALID) + b"\n")
        report = services_for(app).ingest.ingest_stream(stream, "mutated.jsonl", batch_size=16)
        framed_lines = sum(1 for line in b"\n".join(bad + VALID).split(b"\n") if line.strip())
        assert report.accepted + report.duplicates + report.rejected == framed_lines
        # the valid records all count (accepted, or duplicates of a mutation that kept its id and content)
        for year in (1, 2):
            statement = services_for(app).settlement.statement("beds-msk", year)
            assert statement["total"]
