"""`--as-of ""` is refused as an invalid instant, not read as no --as-of (the current figures)."""

import pytest

from tests.support.cli import Cli, worked_example_ledger


@pytest.fixture(scope="module")
def cli(tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('asof') / 'ledger.db'}"
    worked_example_ledger(url)
    return Cli(url)


@pytest.mark.parametrize(
    "args",
    [
        ("statement", "beds-msk", "--year", "1", "--as-of", ""),
        ("replay", "--as-of", "", "--contract", "beds-msk"),
        ("report", "beds-msk", "--out", "unused.html", "--as-of", ""),
    ],
)
def test_an_empty_as_of_is_refused_as_an_invalid_instant(cli, args, tmp_path):
    args = tuple(str(tmp_path / a) if a == "unused.html" else a for a in args)
    result = cli(*args)
    assert result.code != 0 and result.out == ""
    assert result.err.startswith("error: invalid_instant: ")
