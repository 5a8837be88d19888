"""Opening a repository while another process moves HEAD never reports a lost transaction (found under #13).

``Repository.open`` compares the index's HEAD with the ref log's last move.
Between its two reads a writer may move HEAD, even to a commit that does not
descend from the old one (``push --force``); without the log's lock held
shared across both reads, the open took that for an index that lost a
transaction and refused the repository (exit 6).
"""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

from tests.conftest import AUTHOR
from zerofs.paths import StorePath
from zerofs.repo import Repository
from zerofs.services import edit

MOVER = """
import sys, time
from zerofs.history import HEAD
from zerofs.repo import Repository
repo = Repository.open(sys.argv[1])
first, second = bytes.fromhex(sys.argv[2]), bytes.fromhex(sys.argv[3])
moves = 0
deadline = time.monotonic() + float(sys.argv[4])
while time.monotonic() < deadline:
    current = repo.head_id()
    with repo.batch() as batch:
        assert batch.cas_ref(HEAD, current, first if current == second else second)
    moves += 1
repo.close()
print(moves)
"""


def test_opens_during_forced_head_moves_never_fail(tmp_path: Path) -> None:
    """Another process moves HEAD between two unrelated commits as fast as it can; every open succeeds."""
    path = tmp_path / "repo"
    repo = Repository.init(path, author=AUTHOR)
    edit.write_file(repo, StorePath.parse("/a"), io.BytesIO(b"one"))
    first = repo.head_id()
    edit.write_file(repo, StorePath.parse("/b"), io.BytesIO(b"two"))
    second = repo.head_id()
    repo.close()
    mover = subprocess.Popen(
        [sys.executable, "-c", MOVER, str(path), first.hex(), second.hex(), "3"], stdout=subprocess.PIPE, text=True
    )
    opens = 0
    try:
        while mover.poll() is None:
            Repository.open(path, readonly=True).close()
            opens += 1
    finally:
        out, _ = mover.communicate(timeout=60)
    assert mover.returncode == 0
    assert int(out) > 100
    assert opens > 100
