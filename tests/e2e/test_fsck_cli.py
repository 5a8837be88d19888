"""fsck through the CLI: clean and damaged repositories, findings naming paths, exit codes."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

from tests import damage
from tests.e2e.helpers import assert_one_error_line
from zerofs.errors import CorruptionError

RANDOM = random.Random(9).randbytes(400_000)  # several raw chunks
TEXT = b"".join(b"report line %d\n" % i for i in range(20_000))


@pytest.fixture
def stored(zerofs: Any, cli_repo: Path) -> Path:
    zerofs("write", "-p", "/data/report.txt", input=TEXT)
    zerofs("write", "/data/r.bin", input=RANDOM)
    zerofs("write", "/data/ok.txt", input=b"fine")
    zerofs("clone", "-p", "/data", "/snapshots/monday")
    return cli_repo


def test_clean_repository(zerofs: Any, stored: Path) -> None:
    proc = zerofs("fsck")
    assert proc.stdout.decode().startswith("checked 5 commits, ")
    assert "0 errors" in proc.stdout.decode()
    assert proc.stderr == ""
    data = json.loads(zerofs("fsck", "--read-data", "--json").stdout)
    assert data["findings"] == []
    assert set(data["summary"]) == {"commits", "objects", "chunks", "read_bytes", "read_data", "errors", "warnings"}
    assert data["summary"]["read_data"] is True
    assert data["summary"]["read_bytes"] > len(RANDOM)
    assert zerofs("fsck", "-q").stdout == b""


def test_flipped_chunk_names_the_file(zerofs: Any, stored: Path) -> None:
    chunk = damage.chunk_ids_of(stored, "/data/report.txt")[0]
    damage.flip_byte(stored, chunk)
    cat = zerofs("cat", "/data/report.txt", expect=CorruptionError.exit_code)
    assert chunk.hex()[:16] in assert_one_error_line(cat)
    assert cat.stdout == b""
    assert zerofs("fsck").stdout.decode().count("error:") == 0  # chunks: presence only
    proc = zerofs("fsck", "--read-data", expect=CorruptionError.exit_code)
    lines = proc.stdout.decode().splitlines()
    findings = [line for line in lines if line.startswith("error:")]
    assert len(findings) == 2
    assert any(line.startswith("error: hash-mismatch: /data/report.txt (") for line in findings)
    assert any(line.startswith("error: hash-mismatch: /snapshots/monday/report.txt (") for line in findings)
    assert lines[-1].endswith("2 errors, 0 warnings")
    assert assert_one_error_line(proc) == "zerofs: fsck found 2 problems (see above)"


def test_damaged_small_file_and_dropped_chunk_json(zerofs: Any, stored: Path) -> None:
    small_id = damage.node_id_of(stored, "/data/ok.txt")  # a file stored as its one chunk
    chunk_id = damage.chunk_ids_of(stored, "/data/r.bin")[1]
    damage.flip_byte(stored, small_id)
    damage.drop(stored, chunk_id)
    proc = zerofs("fsck", "--read-data", "--json", expect=CorruptionError.exit_code)
    data = json.loads(proc.stdout)
    found = {(f["kind"], f["path"], f["object"]) for f in data["findings"]}
    assert ("missing-object", "/data/r.bin", chunk_id.hex()) in found
    assert ("missing-object", "/snapshots/monday/r.bin", chunk_id.hex()) in found
    assert ("hash-mismatch", "/data/ok.txt", small_id.hex()) in found
    for finding in data["findings"]:
        assert set(finding) == {"kind", "severity", "object", "path", "commit", "detail"}
        assert finding["severity"] == "error"
        assert len(finding["commit"]) == 64
    assert data["summary"]["errors"] == len(data["findings"])
    assert_one_error_line(proc)
