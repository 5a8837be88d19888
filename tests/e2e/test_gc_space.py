"""gc gives the space of deleted data back to the file system (issue #11), measured with du.

The requirement: after deleting half the data and running gc, the allocated
size of the repository directory (``du -s --block-size=1``: st_blocks * 512
of every file and directory) falls by at least 80 % of the bytes gc says it
freed, however the half was chosen (whole directories, every other file, or
the layout that gives least back to gc's DEAD_SHARE threshold), and without
exclusive access: a live mount that has read and written through the
repository does not stop gc from rewriting packs, and lets go of the packs gc
deleted (else their blocks stay allocated, out of du's sight).

Sizes only, never timings. The tree (about 84 MB: 8 random files of 8 MiB and
2,000 small files of mixed text and random bytes) is imported once into a
pristine repository that every test copies; one import of it makes three
packs of up to 32 MiB, so gc must rewrite packs, not just delete them. After
every gc, ``fsck --read-data`` is clean and what was kept reads back byte
for byte.
"""

from __future__ import annotations

import filecmp
import json
import os
import random
import shutil
import stat
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import run_zerofs
from tests.e2e.mountutil import mounted
from zerofs.services.gc import DEAD_SHARE

MiB = 1 << 20
DIRS = 8
SMALL_FILES_PER_DIR = 250
BIG_FILE_BYTES = 8 * MiB
REQUIRED_SHARE = 0.8
"""du must fall by at least this share of gc's ``bytes_freed``."""
WORDS = b"the of and to in is that for it as was with be by on not he this are or his from at which".split()
NO_TIMER = ("--commit-interval", "3600")


def du_bytes(path: Path) -> int:
    """Allocated bytes of everything under ``path`` (itself included), as ``du -s --block-size=1``.

    Hard links are counted once and symlinks are not followed, like du. Syncs
    first, so the figure does not depend on how far write-back has got.
    """
    os.sync()
    seen: set[tuple[int, int]] = set()
    total = 0
    for directory, dirs, files in os.walk(path):
        total += os.lstat(directory).st_blocks * 512
        for name in files + [d for d in dirs if os.path.islink(os.path.join(directory, d))]:
            st = os.lstat(os.path.join(directory, name))
            if st.st_nlink > 1 and not stat.S_ISDIR(st.st_mode):
                if (st.st_dev, st.st_ino) in seen:
                    continue
                seen.add((st.st_dev, st.st_ino))
            total += st.st_blocks * 512
    return total


def make_tree(root: Path) -> None:
    """8 directories, each with 250 files of 0-16 KiB (half text, half random) and one 8 MiB random file."""
    rng = random.Random(11)
    for d in range(DIRS):
        directory = root / f"d{d}"
        directory.mkdir(parents=True)
        for f in range(SMALL_FILES_PER_DIR):
            size = rng.randint(0, 16 << 10)
            if rng.random() < 0.5:
                text = b" ".join(rng.choice(WORDS) for _ in range(size // 3 + 1))
                data = text[:size]
            else:
                data = rng.randbytes(size)
            (directory / f"f{f:03d}").write_bytes(data)
        (directory / "big.bin").write_bytes(rng.randbytes(BIG_FILE_BYTES))


def all_files(root: Path) -> list[str]:
    """Every file of the tree, relative to ``root``, sorted."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory, repo_mode: str) -> tuple[Path, Path]:
    """(host tree, repository with the tree imported at /t): copy the repository, never change it."""
    base = tmp_path_factory.mktemp("gc-space")
    tree = base / "tree"
    make_tree(tree)
    repo = base / "repo"
    run_zerofs("init", "-q", repo=repo)
    run_zerofs("import", str(tree), "/t", "-q", repo=repo, timeout=300)
    return tree, repo


@pytest.fixture
def work_repo(pristine: tuple[Path, Path], tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    shutil.copytree(pristine[1], repo)
    return repo


def gc_json(repo: Path, *args: str) -> dict[str, Any]:
    proc = run_zerofs("gc", "--keep-last", "1", "--json", *args, repo=repo, timeout=300)
    assert "Traceback" not in proc.stderr, proc.stderr
    result: dict[str, Any] = json.loads(proc.stdout)
    return result


def pack_sizes(repo: Path) -> list[int]:
    return sorted(p.stat().st_size for p in (repo / "packs").rglob("*.pack"))


def assert_fsck_clean(repo: Path) -> None:
    proc = run_zerofs("fsck", "--read-data", "--json", repo=repo, expect=None, timeout=300)
    assert proc.returncode == 0, f"fsck --read-data: exit {proc.returncode}\n{proc.stdout[:4000]!r}\n{proc.stderr}"
    report = json.loads(proc.stdout)
    assert report["findings"] == [], report["findings"]
    assert report["summary"]["errors"] == 0


def assert_reads_back(
    repo: Path, tree: Path, kept: list[str], out: Path, extra: dict[str, bytes] | None = None
) -> None:
    """Export /t: the files of ``tree`` that were kept, byte for byte, and the ``extra`` files, nothing else."""
    extra = extra or {}
    run_zerofs("export", "/t", str(out), "-q", repo=repo, timeout=300)
    assert all_files(out) == sorted([*kept, *extra])
    _, mismatch, errors = filecmp.cmpfiles(tree, out, kept, shallow=False)
    assert mismatch == [], mismatch[:10]
    assert errors == [], errors[:10]
    for name, data in extra.items():
        assert (out / name).read_bytes() == data, name


def assert_space_back(before: int, after: int, gc: dict[str, Any], repo: Path) -> None:
    freed = gc["bytes_freed"]
    fall = before - after
    detail = (
        f"du before {before:,} B, after {after:,} B (fell {fall:,} B); gc bytes_freed {freed:,} B, "
        f"objects_deleted {gc['objects_deleted']}, packs_deleted {gc['packs_deleted']}, "
        f"packs_rewritten {gc['packs_rewritten']}, bytes_reclaimed {gc['bytes_reclaimed']:,} B; "
        f"ratio {fall / max(freed, 1):.3f} (required >= {REQUIRED_SHARE}); packs now {pack_sizes(repo)}"
    )
    assert freed > 0.3 * before, "gc freed far less than the half that was removed: " + detail
    assert fall >= REQUIRED_SHARE * freed, detail


def removed_whole_directories(files: list[str]) -> tuple[list[str], list[str]]:
    """Store paths to remove (d0, d2, d4, d6) and the files kept."""
    gone = [f"/t/d{d}" for d in range(0, DIRS, 2)]
    kept = [f for f in files if int(f.split("/")[0][1:]) % 2 == 1]
    return gone, kept


def removed_every_other_file(files: list[str]) -> tuple[list[str], list[str]]:
    """Every other file of the sorted list across all directories (4 of the 8 big files among them)."""
    return [f"/t/{f}" for f in files[0::2]], files[1::2]


@pytest.mark.parametrize("variant", ["whole_directories", "every_other_file"])
def test_du_falls_by_most_of_what_gc_freed(
    variant: str, pristine: tuple[Path, Path], work_repo: Path, tmp_path: Path
) -> None:
    tree, _ = pristine
    files = all_files(tree)
    choose = removed_whole_directories if variant == "whole_directories" else removed_every_other_file
    gone, kept = choose(files)
    assert len(kept) * 2 == len(files)
    before = du_bytes(work_repo)
    run_zerofs("rm", "-r", "-q", *gone, repo=work_repo)
    gc = gc_json(work_repo)
    after = du_bytes(work_repo)
    assert_space_back(before, after, gc, work_repo)
    assert_fsck_clean(work_repo)
    assert_reads_back(work_repo, tree, kept, tmp_path / "out")


@dataclass(frozen=True)
class SplitRepo:
    """A repository imported in two parts whose packs never mix, and a deletion of half its data."""

    host: Path
    repo: Path
    gone: list[str]
    kept: list[str]


@pytest.fixture(scope="module")
def split_pristine(tmp_path_factory: pytest.TempPathFactory, repo_mode: str) -> SplitRepo:
    """Random (incompressible) small files, /a imported first, then /b: every pack holds one part only.

    The deletion frees half the data in the layout that gives the least back to a threshold t
    (``DEAD_SHARE``, read, never changed): all of /a, so its packs are wholly dead, and in every
    directory of /b random files making up t - 1.5 % of its bytes, so each pack of /b stays just under
    t. /a is sized so that the two make half: a + (1 - a)(t - 0.015) = 1/2. Then du falls by only
    1 - t / (1 - t) of what gc freed: at least 80 % needs t <= 1/6.
    """
    base = tmp_path_factory.mktemp("gc-split")
    host = base / "tree"
    rng = random.Random(38)
    b_share = max(DEAD_SHARE - 0.015, 0.0)
    a_share = (0.5 - b_share) / (1 - b_share)
    n_dirs, per_dir = 120, 100  # about 96 MB: /b makes two packs of at least 8 MiB
    gone: list[str] = []
    kept: list[str] = []
    for d in range(n_dirs):
        part = "a" if d < round(a_share * n_dirs) else "b"
        directory = host / part / f"dir{d}"
        directory.mkdir(parents=True)
        sizes = [rng.randint(0, 16 << 10) for _ in range(per_dir)]
        for f, size in enumerate(sizes):
            (directory / f"file{f}").write_bytes(rng.randbytes(size))
        if part == "a":
            continue
        budget = b_share * sum(sizes)
        for f in rng.sample(range(per_dir), per_dir):
            if sizes[f] <= budget:
                budget -= sizes[f]
                gone.append(f"/b/dir{d}/file{f}")
            else:
                kept.append(f"dir{d}/file{f}")
    repo = base / "repo"
    run_zerofs("init", "-q", repo=repo)
    run_zerofs("import", str(host / "a"), "/a", "-q", repo=repo, timeout=300)
    run_zerofs("import", str(host / "b"), "/b", "-q", repo=repo, timeout=300)
    return SplitRepo(host, repo, ["/a", *gone], sorted(kept))


def test_du_falls_by_most_of_what_gc_freed_when_half_is_whole_packs_and_the_rest_just_under_the_threshold(
    split_pristine: SplitRepo, tmp_path: Path
) -> None:
    """Deleting half the data: whole packs, plus a little less than DEAD_SHARE of every other pack."""
    repo = tmp_path / "repo"
    shutil.copytree(split_pristine.repo, repo)
    before = du_bytes(repo)
    run_zerofs("rm", "-r", "-q", *split_pristine.gone, repo=repo)
    gc = gc_json(repo)
    after = du_bytes(repo)
    assert_space_back(before, after, gc, repo)
    assert_fsck_clean(repo)
    out = tmp_path / "out"
    run_zerofs("export", "/b", str(out), "-q", repo=repo, timeout=300)
    assert all_files(out) == split_pristine.kept
    _, mismatch, errors = filecmp.cmpfiles(split_pristine.host / "b", out, split_pristine.kept, shallow=False)
    assert mismatch == [], mismatch[:10]
    assert errors == [], errors[:10]


def deleted_packs_held(pid: int) -> list[tuple[str, int]]:
    """(path, allocated bytes) of the pack files process ``pid`` holds open although they were deleted."""
    held = []
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
            if target.endswith(".pack (deleted)"):
                held.append((target, os.stat(f"/proc/{pid}/fd/{fd}").st_blocks * 512))
        except OSError:
            continue
    return held


def mount_pid(mountpoint: Path) -> int:
    """The pid of the ``zerofs mount`` process serving ``mountpoint``."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            argv = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"mount" in argv and os.fsencode(mountpoint) in argv:
            return int(entry)
    raise AssertionError(f"no zerofs mount process for {mountpoint}")


def test_gc_gives_space_back_while_a_mount_writes(pristine: tuple[Path, Path], work_repo: Path, tmp_path: Path) -> None:
    """A live read-write mount (its own open pack, readers on every pack) does not keep gc from rewriting."""
    tree, _ = pristine
    files = all_files(tree)
    gone, kept = removed_whole_directories(files)
    new_data = random.Random(3).randbytes(3 * MiB)
    with mounted(work_repo, tmp_path / "mnt", *NO_TIMER) as mount:
        view = mount.path / "t"
        for name in files:  # the mount now holds a reader on every pack
            assert (view / name).read_bytes() == (tree / name).read_bytes(), name
        with open(view / "new.bin", "wb") as out:  # committed by the fsync; the mount keeps its pack open
            out.write(new_data)
            out.flush()
            os.fsync(out.fileno())
        before = du_bytes(work_repo)
        run_zerofs("rm", "-r", "-q", *gone, repo=work_repo)
        deadline = time.monotonic() + 30
        while (view / "d0").exists():  # the mount follows HEAD (polls every 0.3 s)
            assert time.monotonic() < deadline, "the mount did not move onto the commit of rm"
            time.sleep(0.1)
        gc = gc_json(work_repo)
        after = du_bytes(work_repo)
        assert gc["packs_rewritten"] + gc["packs_deleted"] > 0, gc
        assert_space_back(before, after, gc, work_repo)
        # The mount reads what gc moved, and lets go of the packs gc deleted.
        time.sleep(1.2)
        for name in kept:
            assert (view / name).read_bytes() == (tree / name).read_bytes(), name
        assert (view / "new.bin").read_bytes() == new_data
        assert deleted_packs_held(mount_pid(mount.path)) == []
        with open(view / "after.txt", "wb") as out:  # and still writes
            out.write(b"written after gc\n")
            out.flush()
            os.fsync(out.fileno())
    assert_fsck_clean(work_repo)
    extra = {"new.bin": new_data, "after.txt": b"written after gc\n"}
    assert_reads_back(work_repo, tree, kept, tmp_path / "out", extra)


def test_an_idle_mount_lets_go_of_the_packs_gc_deleted(
    pristine: tuple[Path, Path], work_repo: Path, tmp_path: Path
) -> None:
    """Space comes back to the file system, not only out of du, while a mount that read the packs sits idle.

    A deleted pack a process still holds open keeps its blocks: du no
    longer counts them, but the file system does not get them back until
    the descriptor is closed. A mount polls HEAD every 0.3 s, so it can let
    go of deleted packs without waiting for its next read.
    """
    tree, _ = pristine
    files = all_files(tree)
    gone, _ = removed_whole_directories(files)
    with mounted(work_repo, tmp_path / "mnt", *NO_TIMER) as mount:
        view = mount.path / "t"
        for name in files:  # the mount now holds a reader on every pack
            assert (view / name).read_bytes() == (tree / name).read_bytes(), name
        run_zerofs("rm", "-r", "-q", *gone, repo=work_repo)
        deadline = time.monotonic() + 30
        while (view / "d0").exists():
            assert time.monotonic() < deadline, "the mount did not move onto the commit of rm"
            time.sleep(0.1)
        gc = gc_json(work_repo)
        assert gc["packs_rewritten"] + gc["packs_deleted"] > 0, gc
        pid = mount_pid(mount.path)
        deadline = time.monotonic() + 5  # nothing reads through the mount meanwhile
        while (held := deleted_packs_held(pid)) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert held == [], (
            f"5 s after gc the idle mount still holds {len(held)} deleted packs open, "
            f"{sum(size for _, size in held):,} B the file system does not get back: {held}"
        )
