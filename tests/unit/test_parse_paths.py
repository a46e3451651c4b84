"""The fast paths of record reading give the verdicts of the full checks they shortcut.

A line of ASCII without a ``\\u`` escape is parsed checking duplicate keys only; a printable ASCII id is
accepted before the id grammar runs; a small whole number becomes a Decimal before the bounds are
worked out. Each is compared here with the full check on the same input (a ``str`` or ``int``
subclass takes the full path, as the fast paths test the exact type)."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.domain import records
from ledger.domain.numbers import MAX_DIGITS, NotANumber, to_decimal
from ledger.domain.records import RecordRefused, parse_json_line, text_field


def _verdict(call):
    try:
        return ("ok", call())
    except RecordRefused as exc:
        return ("refused", exc.refusal.code, exc.refusal.field, exc.refusal.message)
    except NotANumber as exc:
        return ("not a number", type(exc).__name__, getattr(exc, "code", None), str(exc))
    except ValueError as exc:  # the decoder's own error, before parse_json_line words it
        return ("invalid", str(exc))


def _full_parse(text, monkeypatch):
    """parse_json_line with every line checked text by text (the fast decoder replaced by the full one)."""
    with monkeypatch.context() as m:
        m.setattr(records, "_ASCII_DECODER", records._DECODER)
        return _verdict(lambda: parse_json_line(text))


LINES = [
    '{"type":"submission","a":1,"a":2}',
    '{"a":{"b":1,"b":1}}',
    '{"a":[{"x":1},{"x":2,"x":3}]}',
    '{"a":"\\ud800"}',
    '{"\\ud800":1}',
    '{"a":"\\u00e9","a":1}',
    '{"a":["ok","\\udfff"]}',
    '{"k":"caf\u00e9","k":2}',
    '{"a":1e999999999,"b":-0.5,"c":123456789012345678901234567890}',
    '{"a":NaN}',
    '{"a":Infinity}',
    '{"a":1,}',
    "[1,2,3]",
    '"just text"',
    '{"a":"' + "9" * 70 + '"}',
    '{"n":' + "9" * 70 + "}",
    '{"n":0.' + "1" * 70 + "}",
    "",
    "{",
]


@pytest.mark.parametrize("line", LINES)
def test_parse_fast_path_gives_the_full_verdict(line, monkeypatch):
    assert _verdict(lambda: parse_json_line(line)) == _full_parse(line, monkeypatch)


def test_the_fast_path_is_taken_for_plain_lines_only(monkeypatch):
    taken = []
    with monkeypatch.context() as m:
        m.setattr(records, "_ascii_object", lambda pairs: taken.append(pairs) or dict(pairs))
        m.setattr(records, "_ASCII_DECODER", records._decoder(records._ascii_object))
        parse_json_line('{"a":"plain"}')
        parse_json_line('{"a":"\\u0041"}')
        parse_json_line('{"a":"caf\u00e9"}')
    assert taken == [[("a", "plain")]]


_keys = st.sampled_from(["a", "b", "type", "x", "caf\u00e9", "\\ud800", "\\u0041"])
_leaf = st.one_of(
    st.integers(-(10**20), 10**20).map(str),
    st.sampled_from(['"t"', '"\\ud800"', '"\\u00e9"', '"caf\u00e9"', "1.50", "null", "true", '"\\n"']),
)


def _objects(children):
    return st.lists(st.tuples(_keys, children), max_size=5).map(
        lambda pairs: "{" + ",".join(f'"{k}":{v}' for k, v in pairs) + "}"
    )


_json = st.recursive(
    _leaf,
    lambda c: st.one_of(_objects(c), st.lists(c, max_size=3).map(lambda v: "[" + ",".join(v) + "]")),
    max_leaves=12,
)


@settings(max_examples=400, deadline=None)
@given(_objects(_json))
def test_parse_paths_agree_on_generated_lines(line):
    full = _verdict(lambda: records._DECODER.decode(line))
    assert _verdict(lambda: parse_json_line(line)) == full


class Text(str):
    """A str the fast path does not take (it tests ``type(value) is str``)."""


class Whole(int):
    """An int the fast path does not take."""


_id_texts = st.one_of(
    st.text(alphabet=st.characters(max_codepoint=127), max_size=70),
    st.sampled_from(["", " ", " a", "a ", "a b", "x" * 64, "x" * 65, "y" * 128, "y" * 129, "\t", "a\x7f"]),
)


@settings(max_examples=600, deadline=None)
@given(_id_texts, st.sampled_from(["contract_id", "submission_id", "period", "supersedes"]))
def test_id_fast_path_gives_the_grammars_verdict(value, name):
    fast = _verdict(lambda: text_field({name: value}, name))
    full = _verdict(lambda: text_field({name: Text(value)}, name))
    assert fast == full


@pytest.mark.parametrize("digits", [13, 15, 18, 28, 40])
def test_whole_number_fast_path_gives_the_bounds_verdict(digits):
    edge = 10 ** min(digits, MAX_DIGITS)
    for value in (0, 1, -1, edge - 1, -(edge - 1), edge, -edge, edge * 10, 10**40):
        fast = _verdict(lambda v=value: to_decimal(v, digits=digits))
        full = _verdict(lambda v=value: to_decimal(Whole(v), digits=digits))
        assert fast == full, value


_number_texts = st.one_of(
    st.from_regex(r"[0-9]{1,20}(\.[0-9]{0,20})?", fullmatch=True),
    st.from_regex(r"[-+ ]?[0-9_]{0,16}[.eE]?[0-9]{0,4}[ ]?", fullmatch=True),
    st.sampled_from(["0", "0.00", "00000000000001", "9" * 13 + ".99", "9" * 14, "1.999", "١٢", "1e3", ""]),
)


@settings(max_examples=800, deadline=None)
@given(_number_texts, st.sampled_from([(13, 2, True), (15, 12, False), (18, 18, False), (28, 1, False)]))
def test_plain_number_text_fast_path_gives_the_full_verdict(text, bounds):
    digits, places, exact = bounds
    fast = _verdict(lambda: to_decimal(text, digits=digits, places=places, exact_places=exact))
    full = _verdict(lambda: to_decimal(Text(text), digits=digits, places=places, exact_places=exact))
    assert fast == full
    if fast[0] == "ok":
        assert fast[1].as_tuple() == full[1].as_tuple()  # the same digits and exponent, not just value
