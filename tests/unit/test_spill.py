"""Spill files against a bytearray, and their descriptors closed on the closer's thread."""

from __future__ import annotations

import contextlib
import os
import random
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from zerofs.mount.spill import SpillCloser, SpillFile

write_op = st.tuples(st.just("write"), st.integers(0, 300_000), st.integers(1, 200_000))
read_op = st.tuples(st.just("read"), st.integers(0, 400_000), st.integers(0, 300_000))
truncate_op = st.tuples(st.just("truncate"), st.integers(0, 400_000), st.just(0))
ops = st.lists(st.one_of(write_op, write_op, read_op, truncate_op), max_size=40)


@given(operations=ops, seed=st.integers(0, 2**32 - 1))
def test_a_spill_file_matches_a_bytearray(
    tmp_path_factory: pytest.TempPathFactory, operations: list[tuple[str, int, int]], seed: int
) -> None:
    """``read`` and ``readinto`` give what was written, and zeros where nothing was (holes, past the end)."""
    rng = random.Random(seed)
    spill = SpillFile(str(tmp_path_factory.mktemp("spill")))
    model = bytearray()
    try:
        for op, offset, length in operations:
            if op == "write":
                data = rng.randbytes(length)
                assert spill.write(offset, data) == length
                model.extend(bytes(max(0, offset - len(model))))
                model[offset : offset + length] = data
            elif op == "truncate":
                spill.truncate(offset)
                del model[offset:]
                model.extend(bytes(offset - len(model)))
            else:
                expected = bytes(model[offset : offset + length])
                expected += bytes(length - len(expected))
                assert spill.read(offset, length) == expected
                buffer = bytearray(b"?" * length)
                spill.readinto(offset, memoryview(buffer))
                assert buffer == expected
    finally:
        spill.close()


def _open_descriptors(directory: Path) -> int:
    """Descriptors of this process open on files in ``directory`` (other tests' threads may open and close theirs)."""
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):  # closed since listed
            count += os.readlink(f"/proc/self/fd/{fd}").startswith(f"{directory}/")
    return count


def test_closing_gives_every_descriptor_back(tmp_path: Path) -> None:
    """A closed spill file's descriptor is closed by the closer's thread, which starts with the first close."""
    closer = SpillCloser()
    before = _open_descriptors(tmp_path)
    for _ in range(50):
        spill = SpillFile(str(tmp_path), closer)
        spill.write(0, b"d" * (1 << 20))
        assert _open_descriptors(tmp_path) >= 1  # the count sees spill files
        spill.close()
        spill.close()  # a second close does nothing
    deadline = time.monotonic() + 30
    while _open_descriptors(tmp_path) > before and time.monotonic() < deadline:
        time.sleep(0.01)
    assert _open_descriptors(tmp_path) == before == 0
