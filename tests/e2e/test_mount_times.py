"""Times and link counts through a real mount, ``import`` and ``export`` (issue #12).

ctime follows every change of contents or metadata; atime is set by utimensat (``touch -a``,
``os.utime``, UTIME_NOW, UTIME_OMIT) and moved by reads under the ``--atime`` policy (relatime by
default, as Linux); a directory's link count is 2 plus its subdirectories; an open file whose
name was removed has a link count of 0. The times survive a remount, and import and export keep
atime and mtime to the nanosecond.
"""

from __future__ import annotations

import os
import subprocess
import tarfile
import time
from pathlib import Path

import pytest

from tests.conftest import Zerofs
from tests.e2e.helpers import UTIME_NOW, UTIME_OMIT, log_json, utimensat
from tests.e2e.mountutil import mounted

FIXTURES = Path(__file__).parent.parent / "fixtures"
NEVER = "3600"  # a --commit-interval that never fires during a test
NOBODY = 65534
COARSE_CLOCK_NS = 20_000_000
# Far in the future: newer than any mtime or ctime and never a day old, so relatime leaves it.
FUTURE_ATIME_NS = 2_200_000_000_123_456_789


def times(path: Path) -> tuple[int, int, int]:
    """(atime, mtime, ctime) in nanoseconds, not following a symlink."""
    st = os.lstat(path)
    return st.st_atime_ns, st.st_mtime_ns, st.st_ctime_ns


def stat_tool(path: Path, fields: str) -> list[int]:
    """Seconds since the epoch from stat(1), e.g. fields "%X %Y %Z"."""
    out = subprocess.run(["stat", "-c", fields, str(path)], capture_output=True, check=True, timeout=30).stdout
    return [int(word) for word in out.split()]


def run(*argv: str | Path) -> None:
    proc = subprocess.run([str(a) for a in argv], capture_output=True, timeout=60, check=False)
    assert proc.returncode == 0, f"{argv}: exit {proc.returncode}\n{proc.stderr.decode(errors='replace')}"


def tick() -> None:
    """Let the clock move past the last change (times are compared for strict order)."""
    time.sleep(0.002)


def read(path: Path) -> bytes:
    return path.read_bytes()


# ------------------------------------------------------------------------------------------ ctime


def test_create_sets_three_times_and_a_write_moves_mtime_and_ctime(cli_repo: Path, tmp_path: Path) -> None:
    """Pins: a new file's times are its creation; a write sets mtime and ctime, and leaves atime."""
    mnt = tmp_path / "mnt"
    with mounted(cli_repo, mnt):
        before = time.time_ns()
        f = mnt / "f"
        f.write_bytes(b"one\n")
        atime, mtime, ctime = times(f)
        assert before <= atime <= mtime == ctime <= time.time_ns()
        tick()
        with f.open("ab") as out:
            out.write(b"two\n")
        atime2, mtime2, ctime2 = times(f)
        assert atime2 == atime
        assert mtime2 == ctime2 > mtime
        tick()
        os.truncate(f, 2)
        atime3, mtime3, ctime3 = times(f)
        assert (atime3, mtime3 == ctime3) == (atime, True)
        assert mtime3 > mtime2


@pytest.mark.parametrize(
    "change",
    [
        "chmod",
        "chmod-same-mode",
        "chown",
        "setxattr",
        "removexattr",
        "rename",
        "rename-over",
        "utime",
        "link-count",
    ],
)
def test_every_metadata_change_sets_ctime_only(cli_repo: Path, tmp_path: Path, change: str) -> None:
    """Pins: chmod (even to the same mode), chown, xattrs, rename, utimensat and unlink set ctime and keep mtime."""
    mnt = tmp_path / "mnt"
    with mounted(cli_repo, mnt):
        f = mnt / "f"
        f.write_bytes(b"data\n")
        os.setxattr(f, "user.gone", b"1")
        (mnt / "other").write_bytes(b"x")
        atime_ns, mtime_ns, ctime_ns = times(f)
        tick()
        path = f
        if change == "chmod":
            os.chmod(f, 0o600)
        elif change == "chmod-same-mode":
            os.chmod(f, os.stat(f).st_mode & 0o7777)
        elif change == "chown":
            os.chown(f, NOBODY, NOBODY)
        elif change == "setxattr":
            os.setxattr(f, "user.k", b"v")
        elif change == "removexattr":
            os.removexattr(f, "user.gone")
        elif change == "rename":
            path = mnt / "g"
            os.rename(f, path)
        elif change == "rename-over":
            path = mnt / "other"
            os.rename(f, path)
        elif change == "utime":
            os.utime(f, ns=(atime_ns, mtime_ns))  # the same times: ctime moves all the same
        else:
            fd = os.open(f, os.O_RDONLY)
            os.unlink(f)
            st = os.fstat(fd)
            os.close(fd)
            assert st.st_nlink == 0
            assert (st.st_mtime_ns, st.st_ctime_ns > ctime_ns) == (mtime_ns, True)
            return
        atime2, mtime2, ctime2 = times(path)
        assert (atime2, mtime2) == (atime_ns, mtime_ns)
        assert ctime2 > ctime_ns
        assert stat_tool(path, "%Y") == [mtime_ns // 10**9]


def test_directory_ctime_and_mtime_follow_its_names(cli_repo: Path, tmp_path: Path) -> None:
    """Pins: adding, removing and renaming a name sets the directory's mtime and ctime."""
    mnt = tmp_path / "mnt"
    with mounted(cli_repo, mnt):
        d = mnt / "d"
        d.mkdir()
        for change in ("create", "rename", "unlink", "mkdir", "rmdir"):
            _, mtime_ns, _ = times(d)
            tick()
            if change == "create":
                (d / "f").write_bytes(b"")
            elif change == "rename":
                os.rename(d / "f", d / "g")
            elif change == "unlink":
                os.unlink(d / "g")
            elif change == "mkdir":
                (d / "sub").mkdir()
            else:
                (d / "sub").rmdir()
            _, mtime2, ctime2 = times(d)
            assert mtime2 == ctime2, change
            assert mtime2 > mtime_ns, change


# ------------------------------------------------------------------------------------------ atime


def test_touch_sets_atime_and_mtime_with_nanoseconds(cli_repo: Path, tmp_path: Path) -> None:
    """Pins: touch -a/-m/-d and os.utime(ns=...) set exactly the times asked for, and ctime to now."""
    mnt = tmp_path / "mnt"
    with mounted(cli_repo, mnt):
        f = mnt / "f"
        f.write_bytes(b"x")
        _, mtime_ns, _ = times(f)
        run("touch", "-a", "-d", "2001-02-03 04:05:06.123456789 UTC", f)
        assert times(f)[:2] == (981_173_106_123_456_789, mtime_ns)
        assert stat_tool(f, "%X %Y") == [981_173_106, mtime_ns // 10**9]
        run("touch", "-m", "-d", "2002-02-03 04:05:06.987654321 UTC", f)
        assert times(f)[:2] == (981_173_106_123_456_789, 1_012_709_106_987_654_321)
        before = time.time_ns()
        os.utime(f, ns=(1_000_000_001, -2_000_000_002))
        atime_ns, mtime2, ctime_ns = times(f)
        assert (atime_ns, mtime2) == (1_000_000_001, -2_000_000_002)
        assert ctime_ns >= before
        assert stat_tool(f, "%X %Z")[1] >= before // 10**9
        d = mnt / "d"
        d.mkdir()
        os.symlink("f", mnt / "link")
        os.utime(d, ns=(5, 6))
        os.utime(mnt / "link", ns=(7, 8), follow_symlinks=False)
        assert (times(d)[:2], times(mnt / "link")[:2], times(f)[:2]) == (
            (5, 6),
            (7, 8),
            (1_000_000_001, -2_000_000_002),
        )


def test_utimensat_now_and_omit(cli_repo: Path, tmp_path: Path) -> None:
    """Pins: UTIME_OMIT keeps a time, UTIME_NOW sets it to the clock, each independently of the other."""
    mnt = tmp_path / "mnt"
    with mounted(cli_repo, mnt):
        f = mnt / "f"
        f.write_bytes(b"x")
        os.utime(f, ns=(111, 222))
        utimensat(f, (0, UTIME_OMIT), (3, 4))
        assert times(f)[:2] == (111, 3_000_000_004)
        utimensat(f, (5, 6), (0, UTIME_OMIT))
        assert times(f)[:2] == (5_000_000_006, 3_000_000_004)
        before = time.time_ns()
        utimensat(f, (0, UTIME_NOW), (0, UTIME_OMIT))
        atime_ns, mtime_ns, ctime_ns = times(f)
        assert mtime_ns == 3_000_000_004
        # The kernel's "now" for UTIME_NOW is its coarse clock (a tick behind), as on ext4.
        assert before - COARSE_CLOCK_NS <= atime_ns <= ctime_ns <= time.time_ns()
        run("touch", "-m", f)  # utimensat(..., {UTIME_OMIT, UTIME_NOW}) as a user runs it
        atime2, mtime2, _ = times(f)
        assert atime2 == atime_ns
        assert mtime2 >= before - COARSE_CLOCK_NS


def test_relatime_moves_atime_once_after_a_change(cli_repo: Path, tmp_path: Path) -> None:
    """Pins: relatime: a read moves an atime not newer than mtime/ctime or a day old; other reads leave it."""
    mnt = tmp_path / "mnt"
    with mounted(cli_repo, mnt, "--commit-interval", NEVER):
        f = mnt / "f"
        f.write_bytes(b"contents\n")
        tick()
        assert read(f) == b"contents\n"
        first, mtime_ns, ctime_ns = times(f)
        assert first > max(mtime_ns, ctime_ns)
        tick()
        read(f)
        assert times(f)[0] == first, "a second read moved a recent atime under relatime"
        hour_ago = time.time_ns() - 3600 * 10**9
        os.utime(f, ns=(hour_ago, mtime_ns - 10**9))  # newer than mtime, older than ctime (now)
        read(f)
        assert times(f)[0] > hour_ago
        os.utime(f, ns=(FUTURE_ATIME_NS, mtime_ns))  # newer than both, not a day old
        read(f)
        assert times(f)[0] == FUTURE_ATIME_NS
        # A day old but newer than mtime and ctime is only possible with a clock that went back; a
        # directory shows the rule on readdir: ls moves its atime once after a change.
        d = mnt / "d"
        d.mkdir()
        tick()
        os.listdir(d)
        listed = times(d)[0]
        assert listed > times(d)[2]
        os.listdir(d)
        assert times(d)[0] == listed


@pytest.mark.parametrize("policy", ["noatime", "strictatime"])
def test_atime_option(cli_repo: Path, tmp_path: Path, policy: str) -> None:
    """Pins: --atime noatime never moves an atime on read; strictatime moves it on every read."""
    mnt = tmp_path / "mnt"
    with mounted(cli_repo, mnt, "--atime", policy):
        f = mnt / "f"
        f.write_bytes(b"x")
        os.utime(f, ns=(1_000, 2_000))
        read(f)
        if policy == "noatime":
            assert times(f)[0] == 1_000
            return
        first = times(f)[0]
        assert first > 2_000
        tick()
        read(f)
        assert times(f)[0] > first


def test_unknown_atime_option_is_a_usage_error(zerofs: Zerofs, cli_repo: Path, tmp_path: Path) -> None:
    """Pins: a bad --atime is one line on stderr and exit 2, before anything is mounted."""
    (tmp_path / "mnt").mkdir()
    proc = zerofs("mount", "--atime", "sometimes", str(tmp_path / "mnt"), expect=2)
    assert proc.stderr.splitlines() == [
        "zerofs: unknown --atime policy 'sometimes' (choose relatime, strictatime, noatime)"
    ]


def test_read_only_mount_never_moves_atime(zerofs: Zerofs, cli_repo: Path, tmp_path: Path) -> None:
    """Pins: reads through --read-only and --at mounts leave the stored atime as it was."""
    mnt = tmp_path / "mnt"
    with mounted(cli_repo, mnt):
        f = mnt / "f"
        f.write_bytes(b"x")
        os.utime(f, ns=(1_000, 2_000))
    for options in (["--read-only"], ["--at", "HEAD"]):
        with mounted(cli_repo, mnt, *options):
            assert read(mnt / "f") == b"x"
            os.listdir(mnt)
            assert times(mnt / "f")[:2] == (1_000, 2_000)
    assert len(log_json(cli_repo)) == 2, "a read-only mount committed"
    with mounted(cli_repo, mnt):
        assert times(mnt / "f")[:2] == (1_000, 2_000)


def test_atime_is_kept_by_the_next_commit_not_one_per_read(cli_repo: Path, tmp_path: Path) -> None:
    """Pins: reads of many files make no commit of their own; their atimes are stored by the next one.

    A command run against the repository (here ``zerofs log``) has the mount commit first: the
    atimes of 60 reads make that one commit, and nothing more is committed afterwards.
    """
    mnt = tmp_path / "mnt"
    with mounted(cli_repo, mnt, "--commit-interval", NEVER) as mount:
        for i in range(20):
            (mnt / f"f{i}").write_bytes(b"%d" % i)
            os.utime(mnt / f"f{i}", ns=(1_000 + i, 2_000 + i))
        commits = len(log_json(cli_repo))
        for _ in range(3):
            for i in range(20):
                read(mnt / f"f{i}")
        atimes = [times(mnt / f"f{i}")[0] for i in range(20)]
        assert all(atime > 2_000 for atime in atimes)
        time.sleep(1.0)  # the mount's background loop runs several times meanwhile
        log = log_json(cli_repo)
        assert len(log) == commits + 1, "reads made commits of their own"
        assert log[0]["message"].startswith("mount: 20 accessed"), log[0]["message"]
        assert len(log_json(cli_repo)) == commits + 1
        mount.umount()
    assert len(log_json(cli_repo)) == commits + 1
    with mounted(cli_repo, mnt, "--atime", "noatime"):
        assert [times(mnt / f"f{i}")[0] for i in range(20)] == atimes


def test_times_survive_a_remount(cli_repo: Path, tmp_path: Path) -> None:
    """Pins: atime, mtime and ctime are stored, not made up on mount."""
    mnt = tmp_path / "mnt"
    with mounted(cli_repo, mnt):
        (mnt / "d").mkdir()
        f = mnt / "d" / "f"
        f.write_bytes(b"x")
        os.utime(f, ns=(FUTURE_ATIME_NS, 123_456_789))
        os.chmod(f, 0o640)
        expected = {p: times(p) for p in (f, mnt / "d")}
    with mounted(cli_repo, mnt, "--atime", "noatime"):
        assert {p: times(p) for p in expected} == expected


# ------------------------------------------------------------------------------------ link counts


def test_directory_link_count_is_two_plus_subdirectories(cli_repo: Path, tmp_path: Path) -> None:
    """Pins: st_nlink of a directory is 2 + subdirectories, through mkdir, rmdir, rename, and a remount."""
    mnt = tmp_path / "mnt"
    host = tmp_path / "host"
    with mounted(cli_repo, mnt):
        for root in (host, mnt):
            root.mkdir(exist_ok=True)
            (root / "a" / "b" / "c").mkdir(parents=True)
            (root / "a" / "d").mkdir()
            (root / "a" / "f").write_bytes(b"")
            os.symlink("b", root / "a" / "link")
            (root / "e").mkdir()

        def counts(root: Path) -> dict[str, int]:
            paths = [p for p in ("a", "a/b", "a/b/c", "a/d", "e", "e/d") if (root / p).exists()]
            return {p: os.stat(root / p).st_nlink for p in paths} | {".": os.stat(root).st_nlink}

        assert counts(mnt) == counts(host) == {"a": 4, "a/b": 3, "a/b/c": 2, "a/d": 2, "e": 2, ".": 4}
        for root in (host, mnt):
            os.rename(root / "a" / "d", root / "e" / "d")
            (root / "a" / "b" / "c").rmdir()
            os.rename(root / "a" / "f", root / "e" / "f")
        assert counts(mnt) == counts(host) == {"a": 3, "a/b": 2, "e": 3, "e/d": 2, ".": 4}
        assert stat_tool(mnt / "e", "%h") == [3]
        assert os.stat(mnt / "e" / "f").st_nlink == 1
    with mounted(cli_repo, mnt):
        assert os.stat(mnt / "a").st_nlink == 3
        assert os.stat(mnt / "e").st_nlink == 3
        assert os.stat(mnt).st_nlink == 4


def test_open_file_has_no_links_after_unlink(cli_repo: Path, tmp_path: Path) -> None:
    """Pins: fstat of a file whose name was removed gives st_nlink 0 (POSIX), and its data stays readable."""
    mnt = tmp_path / "mnt"
    with mounted(cli_repo, mnt):
        f = mnt / "f"
        f.write_bytes(b"still here")
        fd = os.open(f, os.O_RDWR)
        try:
            assert os.fstat(fd).st_nlink == 1
            os.unlink(f)
            assert os.fstat(fd).st_nlink == 0
            assert os.pread(fd, 100, 0) == b"still here"
            os.pwrite(fd, b"S", 0)
            assert os.fstat(fd).st_nlink == 0
        finally:
            os.close(fd)
        assert not f.exists()


# ----------------------------------------------------------------------------- import and export


def test_import_and_export_keep_atime_and_mtime_to_the_nanosecond(
    zerofs: Zerofs, cli_repo: Path, tmp_path: Path
) -> None:
    """Pins: import stores the atime and mtime of a file, a directory, a symlink and a FIFO; export sets them back."""
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "sub" / "f").write_bytes(b"contents" * 1000)
    (src / "g").write_bytes(b"")
    os.symlink("g", src / "link")
    os.mkfifo(src / "sub" / "fifo")
    wanted = {
        "sub/fifo": (1_300_000_000_000_000_007, 1_300_000_000_000_000_008),
        "sub/f": (1_111_111_111_222_333_444, 1_234_567_890_123_456_789),
        "g": (FUTURE_ATIME_NS, 987_654_321),
        "link": (1_500_000_000_000_000_001, 1_500_000_000_000_000_002),
        "sub": (FUTURE_ATIME_NS, 1_400_000_000_999_999_999),
    }
    for rel, ns in wanted.items():
        os.utime(src / rel, ns=ns, follow_symlinks=False)
    zerofs("import", str(src), "/data")
    out = tmp_path / "out"
    zerofs("export", "/data", str(out))
    assert {rel: times(out / rel)[:2] for rel in wanted} == wanted
    mnt = tmp_path / "mnt"
    with mounted(cli_repo, mnt, "--read-only"):
        assert {rel: times(mnt / "data" / rel)[:2] for rel in wanted} == wanted


# ------------------------------------------------------------------------------- old repositories


def test_version_1_directories_read_with_mtime_as_atime_and_ctime(zerofs: Zerofs, tmp_path: Path) -> None:
    """Pins: entries of a repository made before issue #12 show atime = ctime = mtime; changes to them are kept."""
    with tarfile.open(FIXTURES / "format1.tar.gz") as tar:
        tar.extractall(tmp_path, filter="data")
    repo = tmp_path / "repo"
    zerofs("upgrade", repo=repo)
    history = log_json(repo)
    mnt = tmp_path / "mnt"
    with mounted(repo, mnt, "--atime", "noatime"):
        many = mnt / "data" / "many"  # a sharded directory
        for path in (mnt / "data" / "docs" / "a.txt", many / "f001", mnt / "data" / "docs"):
            atime_ns, mtime_ns, ctime_ns = times(path)
            assert atime_ns == mtime_ns == ctime_ns, path
        assert os.stat(many).st_nlink == 2
        os.utime(many / "f000", ns=(FUTURE_ATIME_NS, 42))
        (many / "new").write_bytes(b"new")
        (many / "newdir").mkdir()
        old = times(many / "f001")
        assert os.stat(many).st_nlink == 3
    assert log_json(repo)[1:] == history
    fsck = zerofs("fsck", "--read-data", repo=repo).stdout.decode()
    assert fsck.rstrip().endswith("0 errors, 0 warnings"), fsck
    with mounted(repo, mnt, "--atime", "noatime"):
        assert times(many / "f000")[:2] == (FUTURE_ATIME_NS, 42)
        assert times(many / "f001") == old
        assert (many / "new").read_bytes() == b"new"
        assert os.stat(many).st_nlink == 3
