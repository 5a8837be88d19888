"""The tree keeps changing while a commit stores, and nothing changed meanwhile is lost (#12).

A commit freezes what changed and stores it on a thread while the mount goes
on serving changes; the marks of what changed meanwhile must survive the
commit's end. One thread changes the tree through a real mount without pause
(creates, overwrites, appends, renames, unlinks, chmods, mkdirs, rmdirs,
symlinks, some files large enough to make a commit take a while) while
another forces commits through the control socket back to back, and a
command commits its own change now and then (so the mount merges onto a HEAD
that moved while it was dirty). What the mount shows, and what HEAD holds
after the unmount, must then be exactly what was written.
"""

from __future__ import annotations

import functools
import os
import random
import stat
import threading
import time
from pathlib import Path

from tests.conftest import repo_secrets, run_zerofs
from tests.e2e.mountutil import eventually, mounted
from zerofs.content import iter_file_bytes
from zerofs.dirnodes import iter_dir
from zerofs.mount.control import commit_mounts
from zerofs.objects import Commit, Kind, ObjectId, SymlinkNode
from zerofs.paths import StorePath
from zerofs.repo import Repository
from zerofs.tree import lookup

SIZES = (0, 1, 100, 5000, 40_000, 70_000, 1_500_000)
"""Up to 32 KiB a file stays in memory, past it it spills; the large ones make a commit last."""

Tree = dict[str, tuple[str, bytes, int]]
"""Relative path -> (kind "f"/"d"/"l", contents or target, permission bits)."""


class Churn:
    """Random changes through the mount, mirrored in a model of what the tree must hold."""

    def __init__(self, top: Path, seed: int) -> None:
        self.top = top
        self.rng = random.Random(seed)
        self.model: Tree = {}
        self.counter = 0
        self.operations = 0

    def _fresh(self, prefix: str) -> str:
        self.counter += 1
        parent = self.rng.choice(["", *self._of_kind("d")])
        return f"{parent}/{prefix}{self.counter}" if parent else f"{prefix}{self.counter}"

    def _of_kind(self, kind: str) -> list[str]:
        return sorted(path for path, (k, _, _) in self.model.items() if k == kind)

    def _data(self) -> bytes:
        size = self.rng.choice(SIZES) if self.rng.random() < 0.2 else self.rng.choice(SIZES[:4])
        return self.rng.randbytes(size)

    def step(self) -> None:
        files, dirs = self._of_kind("f"), self._of_kind("d")
        choice = self.rng.random()
        if choice < 0.25 or not files:
            path, data = self._fresh("f"), self._data()
            (self.top / path).write_bytes(data)
            self.model[path] = ("f", data, 0o644)
        elif choice < 0.40:
            path, data = self.rng.choice(files), self._data()
            (self.top / path).write_bytes(data)  # O_TRUNC, then writes
            self.model[path] = ("f", data, self.model[path][2])
        elif choice < 0.48:
            path, extra = self.rng.choice(files), self.rng.randbytes(self.rng.choice((1, 300, 9000)))
            with open(self.top / path, "ab") as out:
                out.write(extra)
            kind, data, mode = self.model[path]
            self.model[path] = (kind, data + extra, mode)
        elif choice < 0.58:
            self._rename_file(files)
        elif choice < 0.66:
            path = self.rng.choice(files)
            os.unlink(self.top / path)
            del self.model[path]
        elif choice < 0.74:
            path, mode = self.rng.choice(files), self.rng.choice((0o600, 0o640, 0o755, 0o444))
            os.chmod(self.top / path, mode)
            kind, data, _ = self.model[path]
            self.model[path] = (kind, data, mode)
        elif choice < 0.82 or not dirs:
            path = self._fresh("d")
            os.mkdir(self.top / path, 0o755)
            self.model[path] = ("d", b"", 0o755)
        elif choice < 0.88:
            self._rename_dir(dirs)
        elif choice < 0.93:
            empty = [d for d in dirs if not any(p.startswith(d + "/") for p in self.model)]
            if empty:
                path = self.rng.choice(empty)
                os.rmdir(self.top / path)
                del self.model[path]
        else:
            path, target = self._fresh("l"), f"target-{self.counter}".encode()
            os.symlink(target, self.top / path)
            self.model[path] = ("l", target, 0o777)
        self.operations += 1

    def _rename_file(self, files: list[str]) -> None:
        source = self.rng.choice(files)
        target = self.rng.choice(files) if self.rng.random() < 0.3 else self._fresh("r")
        os.rename(self.top / source, self.top / target)
        self.model[target] = self.model.pop(source)

    def _rename_dir(self, dirs: list[str]) -> None:
        source = self.rng.choice(dirs)
        parent = source.rpartition("/")[0]
        self.counter += 1
        target = f"{parent}/m{self.counter}" if parent else f"m{self.counter}"
        os.rename(self.top / source, self.top / target)
        for path in [p for p in self.model if p == source or p.startswith(source + "/")]:
            self.model[target + path[len(source) :]] = self.model.pop(path)


def host_tree(top: Path) -> Tree:
    """What the mount shows under ``top``."""
    tree: Tree = {}
    for dirpath, dirnames, filenames in os.walk(top):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            relative = str(path.relative_to(top))
            info = path.lstat()
            if stat.S_ISLNK(info.st_mode):
                tree[relative] = ("l", os.fsencode(os.readlink(path)), 0o777)
            elif stat.S_ISDIR(info.st_mode):
                tree[relative] = ("d", b"", stat.S_IMODE(info.st_mode))
            else:
                tree[relative] = ("f", path.read_bytes(), stat.S_IMODE(info.st_mode))
    return tree


def stored_tree(repo_path: Path, top: str) -> Tree:
    """What HEAD holds under the store path ``top``, read as a fresh command would."""
    with Repository.open(str(repo_path), readonly=True, **repo_secrets()) as repo:
        root = repo.get_typed(repo.head_id(), Commit).root_id
        tree: Tree = {}
        _walk(repo, lookup(repo, root, StorePath.parse(top)).id, "", tree)
        return tree


def _walk(repo: Repository, dir_id: ObjectId, prefix: str, tree: Tree) -> None:
    for entry in iter_dir(repo, dir_id):
        path = prefix + entry.name.decode()
        mode = stat.S_IMODE(entry.mode)
        if entry.kind is Kind.DIR:
            tree[path] = ("d", b"", mode)
            _walk(repo, entry.id, path + "/", tree)
        elif entry.kind is Kind.SYMLINK:
            tree[path] = ("l", repo.get_typed(entry.id, SymlinkNode).target, 0o777)
        else:
            tree[path] = ("f", b"".join(iter_file_bytes(repo, entry.id)), mode)


def differences(expected: Tree, actual: Tree) -> list[str]:
    """One line per path that differs (contents shown by length only)."""
    out = []
    for path in sorted(expected.keys() | actual.keys()):
        want, got = expected.get(path), actual.get(path)
        if want != got:
            show = [None if v is None else (v[0], len(v[1]), oct(v[2])) for v in (want, got)]
            out.append(f"{path}: expected {show[0]}, got {show[1]}")
    return out


def _fail(message: str) -> None:
    raise AssertionError(f"a command was warned: {message}")


def test_changes_made_while_commits_store_are_all_committed(cli_repo: Path, tmp_path: Path) -> None:
    churn_done = threading.Event()
    commits = [0]
    clones: list[str] = []
    errors: list[BaseException] = []
    mountpoint = tmp_path / "m"

    def commit_continuously() -> None:
        try:
            n = 0
            while not churn_done.is_set():
                commit_mounts(str(cli_repo), writing=True, warn=_fail)
                commits[0] += 1
                n += 1
                if n % 15 == 0:  # a command's own commit: HEAD moves while the mount is dirty
                    clones.append(f"/clone{n}")
                    run_zerofs("clone", "/seed", clones[-1], repo=cli_repo)
                    # It shows in the mount while the tree goes on changing, not only once it stops.
                    eventually(functools.partial(_holds_seed, mountpoint / clones[-1].lstrip("/") / "f"), timeout=5)
        except (AssertionError, OSError) as exc:  # reported by the test's thread
            errors.append(exc)

    with mounted(cli_repo, mountpoint) as m:
        (m.path / "seed").mkdir()
        (m.path / "seed" / "f").write_bytes(b"seed")
        top = m.path / "t"
        top.mkdir()
        churn = Churn(top, seed=12)
        committer = threading.Thread(target=commit_continuously)
        committer.start()
        try:
            deadline = time.monotonic() + 12
            while time.monotonic() < deadline and not errors:
                churn.step()
        finally:
            churn_done.set()
            committer.join(timeout=120)
        assert not errors, errors
        print(f"{commits[0]} commits, {churn.operations} changes, {len(clones)} clones")
        assert commits[0] >= 20
        assert churn.operations >= 500
        assert differences(churn.model, host_tree(top)) == []
        assert clones
        for clone in clones:
            assert (m.path / clone.lstrip("/") / "f").read_bytes() == b"seed"
    assert differences(churn.model, stored_tree(cli_repo, "/t")) == []
    for clone in clones:
        assert stored_tree(cli_repo, clone) == {"f": ("f", b"seed", 0o644)}


def _holds_seed(path: Path) -> None:
    assert path.read_bytes() == b"seed"
