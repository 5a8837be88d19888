"""A writer killed at any instant leaves a repository whose HEAD is fully readable."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import cli_env, zerofs_command
from tests.e2e.helpers import log_json


@pytest.mark.parametrize("delay", [0.05, 0.3, 0.8])
def test_killed_import_leaves_head_readable(zerofs: Any, cli_repo: Path, tmp_path: Path, delay: float) -> None:
    zerofs("write", "/before", input=b"committed")
    before = log_json(cli_repo)
    host = tmp_path / "host"
    host.mkdir()
    for i in range(4):
        (host / f"f{i}").write_bytes(os.urandom(8 << 20))
    proc = subprocess.Popen(
        zerofs_command(cli_repo, "import", str(host), "/big"),
        env=cli_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    after = log_json(cli_repo)
    # Either the import committed entirely, or not at all.
    assert after[-len(before) :] == before
    assert len(after) in (len(before), len(before) + 1)
    assert zerofs("cat", "/before").stdout == b"committed"
    if len(after) == len(before) + 1:
        for i in range(4):
            assert zerofs("cat", f"/big/f{i}").stdout == (host / f"f{i}").read_bytes()
    else:
        zerofs("ls", "/big", expect=3)
    # And the repository still takes writes.
    zerofs("write", "/after", input=b"ok")
    assert zerofs("cat", "/after").stdout == b"ok"
