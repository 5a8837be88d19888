"""mount/overlay.py without a mount: the relatime rule, subdirectory counts, and ctime on changes (issue #12)."""

from __future__ import annotations

import stat

import pytest

from tests.unit.conftest import NOW
from zerofs.mount.overlay import RELATIME_SECONDS, Overlay, atime_is_due
from zerofs.objects import DirEntry, DirNode, Kind

DAY_NS = RELATIME_SECONDS * 10**9


def entry_at(atime_ns: int, mtime_ns: int, ctime_ns: int) -> DirEntry:
    return DirEntry(b"f", Kind.FILE, stat.S_IFREG | 0o644, 0, 0, mtime_ns, 0, b"", (), atime_ns, ctime_ns)


@pytest.mark.parametrize(
    ("atime", "mtime", "ctime", "due"),
    [
        (NOW - 10, NOW - 10, NOW - 20, True),  # not newer than mtime
        (NOW - 10, NOW - 20, NOW - 10, True),  # not newer than ctime
        (NOW - 10, NOW - 20, NOW - 20, False),  # newer than both, recent
        (NOW - DAY_NS, NOW - 2 * DAY_NS, NOW - 2 * DAY_NS, True),  # a day old
        (NOW - DAY_NS + 1, NOW - 2 * DAY_NS, NOW - 2 * DAY_NS, False),
        (NOW + DAY_NS, NOW, NOW, False),  # in the future
    ],
)
def test_relatime_rule(atime: int, mtime: int, ctime: int, due: bool) -> None:
    entry = entry_at(atime, mtime, ctime)
    assert atime_is_due(entry, NOW, "relatime") is due
    assert atime_is_due(entry, NOW, "strictatime") is True
    assert atime_is_due(entry, NOW, "noatime") is False


def test_subdirectories_are_counted_once_then_kept_up_to_date(overlay: Overlay) -> None:
    root = overlay.root
    a = overlay.lookup(root, b"a")
    e = overlay.lookup(root, b"e")
    assert a is not None
    assert e is not None
    assert not a.complete
    assert overlay.subdir_count(a) == 2
    assert a.kids == {}, "counting made inodes"
    assert overlay.subdir_count(root) == 2
    new = DirEntry(b"d", Kind.DIR, stat.S_IFDIR | 0o755, 0, 0, NOW, 0, b"", (), NOW, NOW)
    overlay.create(a, new, DirNode())
    assert overlay.subdir_count(a) == 3
    overlay.rename(a, b"b", e, b"b", noreplace=False)
    assert (overlay.subdir_count(a), overlay.subdir_count(e)) == (2, 1)
    overlay.rename(a, b"f", e, b"f", noreplace=False)  # a file: no change
    assert (overlay.subdir_count(a), overlay.subdir_count(e)) == (2, 1)
    overlay.rmdir(a, b"c")
    assert overlay.subdir_count(a) == 1
    overlay.exchange(a, b"d", e, b"f")  # a directory for a file: both counted again
    assert (a.subdirs, e.subdirs) == (None, None)
    assert (overlay.subdir_count(a), overlay.subdir_count(e)) == (0, 2)


def test_changes_set_ctime_and_a_read_is_counted_apart(overlay: Overlay) -> None:
    a = overlay.lookup(overlay.root, b"a")
    assert a is not None
    f = overlay.lookup(a, b"f")
    assert f is not None
    overlay.accessed(f, NOW + 1)
    assert f.entry.atime_ns == NOW + 1
    assert overlay.summary() == "accessed /a/f"
    overlay.set_entry(f, f.entry._replace(mode=stat.S_IFREG | 0o600), NOW + 2)
    assert (f.entry.ctime_ns, f.entry.atime_ns) == (NOW + 2, NOW + 1)
    overlay.file_data(f).write(0, b"y")
    overlay.wrote(f, NOW + 3)
    assert (f.entry.mtime_ns, f.entry.ctime_ns) == (NOW + 3, NOW + 3)
    assert "wrote" in overlay.summary()
    overlay.rename(a, b"f", a, b"g", noreplace=False)
    assert f.entry.ctime_ns > NOW + 3
    assert (a.entry.mtime_ns, a.entry.ctime_ns) == (f.entry.ctime_ns, f.entry.ctime_ns)
