"""A database URL in an error message never shows its password."""

import pytest

from ledger.adapters.config import shown_url
from tests.support.cli import Cli


@pytest.mark.parametrize(
    "url",
    [
        "mysql://bob:S3cretPW@h/x",
        "postgresql://bob:S3cretPW@h:5432/",
        "postgresql://h/?user=bob&password=S3cretPW",
        "oracle://bob:S3cret@PW@h/x",
    ],
)
def test_the_db_url_in_an_error_has_its_password_masked(url):
    result = Cli(url)("verify")
    assert result.code != 0 and "invalid_db_url" in result.err
    assert "S3cret" not in result.err and "PW" not in result.err.replace("S3cretPW", "")
    assert "***" in result.err


def test_the_projections_db_url_in_an_error_has_its_password_masked(tmp_path):
    result = Cli(f"sqlite:///{tmp_path / 'l.db'}")(
        "--projections-db", "mysql://bob:S3cretPW@h/x", "verify", "--read-models"
    )
    assert result.code != 0 and "S3cretPW" not in result.err + result.out


def test_shown_url_keeps_what_has_no_password():
    assert shown_url("sqlite:///dir/a:b@c.db") == "sqlite:///dir/a:b@c.db"
    assert shown_url("postgresql://bob@h/x") == "postgresql://bob@h/x"
    assert shown_url("postgresql://bob:p@ss@h/x?password=q") == "postgresql://bob:***@h/x?password=***"
