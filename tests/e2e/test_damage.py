"""Damaged repositories: corruption is reported (exit 6, one line), never returned as data."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from tests import damage
from tests.e2e.helpers import assert_one_error_line
from zerofs.errors import CorruptionError

RANDOM = random.Random(3).randbytes(600_000)  # incompressible: raw records, several chunks
TEXT = b"".join(b"line %d of some text\n" % i for i in range(40_000))  # zstd records


@pytest.fixture
def stored(zerofs: Any, cli_repo: Path) -> Path:
    zerofs("write", "/random.bin", input=RANDOM)
    zerofs("write", "-p", "/docs/text.txt", input=TEXT)
    zerofs("write", "/docs/ok.txt", input=b"fine")
    return cli_repo


CASES = {
    "flip-first-byte-of-payload": lambda repo, chunk: damage.flip_byte(repo, chunk, 0),
    "flip-last-byte": lambda repo, chunk: damage.flip_byte(repo, chunk, -1),
    "flip-codec-in-header": lambda repo, chunk: damage.flip_header(repo, chunk, "codec"),
    "flip-kind-in-header": lambda repo, chunk: damage.flip_header(repo, chunk, "kind"),
    "flip-id-in-header": lambda repo, chunk: damage.flip_header(repo, chunk, "id"),
    "flip-length-in-header": lambda repo, chunk: damage.flip_header(repo, chunk, "stored_length"),
    "flip-raw-length-in-header": lambda repo, chunk: damage.flip_header(repo, chunk, "raw_length"),
    "pack-cut-inside-it": lambda repo, chunk: damage.truncate(repo, chunk),
    "pack-cut-after-1-byte": lambda repo, chunk: damage.truncate(repo, chunk, 1),
    "dropped": lambda repo, chunk: damage.drop(repo, chunk),
}
CUTS = {"pack-cut-inside-it", "pack-cut-after-1-byte"}
"""A cut pack loses everything after the cut too: here the file's later chunks and its FILE node."""


def expect_corruption(zerofs: Any, *args: str) -> Any:
    proc = zerofs(*args, expect=CorruptionError.exit_code)
    line = assert_one_error_line(proc)
    assert any(
        word in line
        for word in (
            "damaged",
            "hash",
            "missing",
            "truncated",
            "decompressed",
            "unknown",
            "not a valid",
            "fails authentication",  # an encrypted repository's blob that does not open
        )
    ), line
    return proc


@pytest.mark.parametrize("how", sorted(CASES))
@pytest.mark.parametrize(("path", "content"), [("/random.bin", RANDOM), ("/docs/text.txt", TEXT)], ids=["raw", "zstd"])
def test_damaged_first_chunk(zerofs: Any, stored: Path, how: str, path: str, content: bytes) -> None:
    chunk = damage.chunk_ids_of(stored, path)[0]
    CASES[how](stored, chunk)
    proc = expect_corruption(zerofs, "cat", path)
    assert proc.stdout == b"", "damaged data reached stdout"
    if how not in CUTS:
        assert chunk.hex()[:16] in proc.stderr


@pytest.mark.parametrize("how", ["flip-last-byte", "flip-id-in-header", "dropped"])
def test_damaged_later_chunk_prints_no_wrong_bytes(zerofs: Any, stored: Path, how: str) -> None:
    chunks = damage.chunk_ids_of(stored, "/random.bin")
    assert len(chunks) >= 3
    CASES[how](stored, chunks[2])
    proc = expect_corruption(zerofs, "cat", "/random.bin")
    assert RANDOM.startswith(proc.stdout), "bytes that are not the file's reached stdout"
    assert len(proc.stdout) < len(RANDOM)
    # Other files are still readable.
    assert zerofs("cat", "/docs/ok.txt").stdout == b"fine"


def test_damaged_chunk_fails_export(zerofs: Any, stored: Path, tmp_path: Path) -> None:
    damage.flip_byte(stored, damage.chunk_ids_of(stored, "/docs/text.txt")[1])
    expect_corruption(zerofs, "export", "/docs", str(tmp_path / "out"))


def test_damaged_directory_node(zerofs: Any, stored: Path) -> None:
    damage.flip_byte(stored, damage.node_id_of(stored, "/docs"), -5)
    expect_corruption(zerofs, "ls", "/docs")
    expect_corruption(zerofs, "cat", "/docs/ok.txt")
    assert zerofs("cat", "/random.bin").stdout == RANDOM


def test_dropped_directory_node(zerofs: Any, stored: Path) -> None:
    damage.drop(stored, damage.node_id_of(stored, "/docs"))
    proc = expect_corruption(zerofs, "ls", "/docs")
    assert "missing" in proc.stderr


def test_damaged_file_node(zerofs: Any, stored: Path) -> None:
    damage.truncate(stored, damage.node_id_of(stored, "/random.bin"))
    expect_corruption(zerofs, "cat", "/random.bin")
    expect_corruption(zerofs, "stat", "/random.bin")


def test_writes_after_damage_elsewhere_still_work(zerofs: Any, stored: Path) -> None:
    damage.flip_byte(stored, damage.chunk_ids_of(stored, "/random.bin")[0])
    zerofs("write", "/new", input=b"new")
    assert zerofs("cat", "/new").stdout == b"new"
    expect_corruption(zerofs, "cat", "/random.bin")
