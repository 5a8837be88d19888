"""du and stats through the CLI: text, --json schemas, exit codes."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.helpers import assert_fails

RANDOM = random.Random(5).randbytes(150_000)


@pytest.fixture
def stored(zerofs: Any, cli_repo: Path) -> Path:
    zerofs("write", "-p", "/data/r.bin", input=RANDOM)
    zerofs("write", "/data/small.txt", input=b"hello\n")
    zerofs("clone", "/data", "/snap")
    return cli_repo


def test_du_text(zerofs: Any, stored: Path) -> None:
    lines = zerofs("du", "/data", "/snap").stdout.decode().splitlines()
    assert lines[0] == "apparent\tstored\tunique\tpath"
    data = lines[1].split("\t")
    snap = lines[2].split("\t")
    assert data[3] == "/data"
    assert snap[3] == "/snap"
    assert int(data[0]) == int(snap[0]) == len(RANDOM) + 6
    assert data[1] == snap[1]
    assert data[2] == snap[2] == "0"


def test_du_defaults_to_root_and_h_is_human(zerofs: Any, stored: Path) -> None:
    lines = zerofs("du", "-h").stdout.decode().splitlines()
    assert lines[1].endswith("\t/")
    assert lines[1].split("\t")[0] == "293.0K"  # two copies of 146.5K


def test_du_json(zerofs: Any, stored: Path) -> None:
    rows = json.loads(zerofs("du", "--json", "/data/small.txt", "/").stdout)
    assert [r["path"] for r in rows] == ["/data/small.txt", "/"]
    assert set(rows[0]) == {"path", "type", "apparent_bytes", "stored_bytes", "unique_bytes", "objects"}
    assert rows[0]["type"] == "file"
    assert rows[0]["apparent_bytes"] == 6
    assert rows[1]["type"] == "dir"
    assert rows[1]["apparent_bytes"] == 2 * (len(RANDOM) + 6)
    # The clone costs nothing; an encrypted repository pads each blob (Padmé: under 3.2% from 64 KiB).
    assert rows[1]["stored_bytes"] < len(RANDOM) * 1.032 + 2_000


def test_du_help_is_long_only(zerofs: Any, cli_repo: Path) -> None:
    assert "--human-readable" in zerofs("du", "--help").stdout.decode()


def test_du_bad_paths(stored: Path) -> None:
    assert "no such path" in assert_fails(stored, "du", "/nope", expect=3)
    assert_fails(stored, "du", "relative", expect=2)


def test_stats_text_and_json(zerofs: Any, stored: Path) -> None:
    text = dict(line.split("\t", 1) for line in zerofs("stats").stdout.decode().splitlines())
    assert {"logical", "stored", "content", "dedup ratio", "compression ratio", "commits", "objects", "on disk"} <= set(
        text
    )
    assert text["dedup ratio"] == "2.00x"
    data = json.loads(zerofs("stats", "--json").stdout)
    assert set(data) == {
        "logical_bytes",
        "stored_bytes",
        "reachable_stored_bytes",
        "content_bytes",
        "content_stored_bytes",
        "dedup_ratio",
        "compression_ratio",
        "objects",
        "objects_by_kind",
        "commits",
        "disk_bytes",
        "packs",
        "pack_bytes",
        "index_bytes",
    }
    assert data["logical_bytes"] == 2 * (len(RANDOM) + 6)
    assert data["content_bytes"] == len(RANDOM) + 6
    assert data["dedup_ratio"] == 2.0
    assert data["commits"] == 4  # init, two writes, clone
    assert data["objects_by_kind"]["commit"] == 4
    assert data["objects"] == sum(data["objects_by_kind"].values())
    assert data["disk_bytes"] >= data["pack_bytes"] + data["index_bytes"]
    assert data["pack_bytes"] >= data["stored_bytes"]
    assert data["packs"] >= 1


def test_stats_without_a_repository(tmp_path: Path) -> None:
    from tests.conftest import run_zerofs

    proc = run_zerofs("stats", repo=tmp_path / "none", expect=5)
    assert "no zerofs repository" in proc.stderr


def test_du_reads_revisions(zerofs: Any, stored: Path) -> None:
    zerofs("rm", "-r", "/data")
    assert_fails(stored, "du", "/data", expect=3)
    rows = json.loads(zerofs("du", "--json", "HEAD~1:/data", "/snap").stdout)
    assert rows[0]["apparent_bytes"] == rows[1]["apparent_bytes"] == len(RANDOM) + 6
    assert "past the first commit" in assert_fails(stored, "du", "HEAD~99:/data", expect=3)
    assert_fails(stored, "du", "nope0:/data", expect=2)
