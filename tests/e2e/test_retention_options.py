"""The ``--keep-*`` counts of gc and prune take plain positive numbers only.

typer's int would take ``+3``, `` 3`` and digits of other scripts, and 0
used to mean "not given", so ``--keep-last 0`` silently kept everything.
Each bad count is refused with one line naming the option, exit 2, and the
repository untouched.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import Zerofs
from tests.e2e.helpers import assert_fails
from zerofs.errors import UsageError

COUNTS = ["--keep-last", "--keep-hourly", "--keep-daily", "--keep-weekly", "--keep-monthly", "--keep-yearly"]
BAD = ["+3", " 3", "3 ", "\u0663", "3.0", "0", "00", "-1", ""]


@pytest.fixture
def snapshots(zerofs: Zerofs, cli_repo: Path) -> Path:
    """Two commits, and two snapshots under /snapshots."""
    zerofs("mkdir", "-p", "/data")
    zerofs("write", "/data/a.txt", input=b"alpha")
    zerofs("clone", "-p", "/data", "/snapshots/one")
    zerofs("clone", "/data", "/snapshots/two")
    return cli_repo


@pytest.mark.parametrize("value", BAD, ids=repr)
@pytest.mark.parametrize("command", [["gc"], ["prune", "/snapshots"]], ids=lambda c: c[0])
def test_a_count_that_is_not_plain_positive_digits_is_refused(snapshots: Path, command: list[str], value: str) -> None:
    line = assert_fails(snapshots, *command, "--keep-last", value, expect=UsageError.exit_code)
    assert line.startswith("zerofs: invalid value for '--keep-last': "), line
    assert f"(see 'zerofs {command[0]} --help')" in line


@pytest.mark.parametrize("option", COUNTS)
def test_every_count_option_refuses_zero_and_a_sign(snapshots: Path, option: str) -> None:
    for value in ("0", "+1"):
        line = assert_fails(snapshots, "gc", option, value, expect=UsageError.exit_code)
        assert f"'{option}'" in line, line


def test_zero_no_longer_keeps_everything_silently(zerofs: Zerofs, snapshots: Path) -> None:
    line = assert_fails(snapshots, "prune", "/snapshots", "--keep-last", "0", expect=UsageError.exit_code)
    assert "keep at least 1" in line
    kept = json.loads(zerofs("prune", "/snapshots", "--keep-last", "01", "--dry-run", "--json").stdout)
    assert [item["path"] for item in kept["removed"]] == ["/snapshots/one"]
