"""pull into a repository that is mounted, and push from one: the mount commits first, then follows (issue #13)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import Zerofs, run_zerofs
from tests.e2e.helpers import assert_one_error_line, log_json
from tests.e2e.mountutil import eventually, mounted


@pytest.mark.plain_only(
    "finds the source's commit id in the destination's history: two encrypted repositories never share"
    " a key, so a pull re-makes the commit under another id"
)
def test_a_mount_of_the_repository_shows_what_a_pull_brought(zerofs: Zerofs, cli_repo: Path, tmp_path: Path) -> None:
    source = tmp_path / "source"
    run_zerofs("init", "-q", repo=source)
    run_zerofs("write", "/pulled.txt", input=b"from the source\n", repo=source)
    with mounted(cli_repo, tmp_path / "m") as mount:
        zerofs("pull", "-q", str(source))

        def shows_it() -> None:
            assert (mount.path / "pulled.txt").read_bytes() == b"from the source\n"

        eventually(shows_it, timeout=10)
    # The pulled commit is in the history (the mount may commit the atime of its read on top).
    assert log_json(source)[0]["commit"] in [c["commit"] for c in log_json(cli_repo)]


def test_a_write_through_the_mount_is_committed_before_a_pull_and_is_never_lost(
    zerofs: Zerofs, cli_repo: Path, tmp_path: Path
) -> None:
    source = tmp_path / "source"
    run_zerofs("init", "-q", repo=source)
    run_zerofs("write", "/pulled.txt", input=b"x", repo=source)
    zerofs("pull", "-q", str(source))
    run_zerofs("write", "/newer.txt", input=b"y", repo=source)
    with mounted(cli_repo, tmp_path / "m") as mount:
        (mount.path / "local.txt").write_bytes(b"written through the mount\n")
        # The mount's write becomes a commit the source lacks: the pull is no fast-forward.
        proc = zerofs("pull", str(source), expect=4)
        assert "pull refused: this repository has commits" in assert_one_error_line(proc)
        assert (mount.path / "local.txt").read_bytes() == b"written through the mount\n"
        # Pushing from the mounted repository sends the mount's write.
        zerofs("push", "-q", "--force", str(source))
    assert run_zerofs("cat", "/local.txt", repo=source).stdout == b"written through the mount\n"
