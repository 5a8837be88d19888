"""Builders of broken repositories: damage on disk, and damage injected into reads.

On disk (for tests that run the CLI): bytes of a pack are flipped or cut where
``Repository.locate`` says an object lives, or the index, ref log and config
files are hit directly. Nothing writes through LMDB or any backend's
internals: each builder stands for damage the disk did, not anything zerofs
would do. ``drop`` is the exception that proves the rule: it makes an object
missing as a lost index entry would, through the public batch API.

In process (for unit tests): ``faulty`` opens a repository whose store is
wrapped in ``FaultyStore``, which damages chosen objects as they are read.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.conftest import repo_secrets
from zerofs.content import iter_chunk_ids
from zerofs.history import head
from zerofs.objects import FileNode, ObjectId
from zerofs.paths import StorePath
from zerofs.repo import Repository
from zerofs.store.local import PackStore
from zerofs.store.locks import RepoLocks
from zerofs.store.packfile import BLOB_HEADER
from zerofs.store.wrappers import Fault, FaultyStore
from zerofs.tree import lookup

HEADER_FIELDS = {"id": 0, "kind": 32, "codec": 33, "stored_length": 34, "raw_length": 38}
"""Offsets of a blob header's fields (packfile.BLOB_HEADER)."""


def chunk_ids_of(repo_path: Path, store_path: str, password: bytes | None = None) -> list[ObjectId]:
    """The chunk ids of the file at ``store_path`` in HEAD, in order (``password``: an encrypted repository's)."""
    with Repository.open(repo_path, readonly=True, **repo_secrets(password)) as repo:
        entry = lookup(repo, head(repo)[1].root_id, StorePath.parse(store_path))
        return [chunk for chunk, _ in iter_chunk_ids(repo, repo.get_typed(entry.id, FileNode))]


def node_id_of(repo_path: Path, store_path: str, password: bytes | None = None) -> ObjectId:
    """The id of the node at ``store_path`` in HEAD (``password``: an encrypted repository's)."""
    with Repository.open(repo_path, readonly=True, **repo_secrets(password)) as repo:
        return lookup(repo, head(repo)[1].root_id, StorePath.parse(store_path)).id


def place_of(repo_path: Path, object_id: ObjectId, password: bytes | None = None) -> tuple[str, int, int]:
    """(pack file, offset of the blob's header, header and payload length) of a stored object."""
    with Repository.open(repo_path, readonly=True, **repo_secrets(password)) as repo:
        place = repo.locate(object_id)
    assert place is not None, f"no object {object_id.hex()} to damage"
    return place


def flip_bit(path: Path | str, offset: int, bit: int = 0) -> None:
    """Flip one bit of a file in place (negative offsets count from its end)."""
    with open(path, "r+b") as handle:
        size = handle.seek(0, os.SEEK_END)
        position = offset if offset >= 0 else size + offset
        handle.seek(position)
        byte = handle.read(1)
        handle.seek(position)
        handle.write(bytes([byte[0] ^ (1 << bit)]))


def flip_byte(repo_path: Path, object_id: ObjectId, offset: int = -1, password: bytes | None = None) -> None:
    """Flip the low bit of one byte of an object's stored payload (default: its last byte)."""
    pack, start, length = place_of(repo_path, object_id, password)
    payload_bytes = length - BLOB_HEADER.size
    position = offset if offset >= 0 else payload_bytes + offset
    assert 0 <= position < payload_bytes, "no such payload byte"
    flip_bit(pack, start + BLOB_HEADER.size + position)


def flip_header(repo_path: Path, object_id: ObjectId, field: str) -> None:
    """Flip the low bit of one field of an object's blob header in its pack."""
    pack, start, _ = place_of(repo_path, object_id)
    flip_bit(pack, start + HEADER_FIELDS[field])


def truncate(repo_path: Path, object_id: ObjectId, keep: int | None = None) -> None:
    """Cut the object's pack inside its payload (default: half of it), as a lost tail of the file would.

    Everything the pack held after that point is gone too.
    """
    pack, start, length = place_of(repo_path, object_id)
    payload_bytes = length - BLOB_HEADER.size
    os.truncate(pack, start + BLOB_HEADER.size + (payload_bytes // 2 if keep is None else keep))


def drop(repo_path: Path, object_id: ObjectId) -> None:
    """Make a stored object missing, as a lost index entry would, while things still reference it."""
    with Repository.open(repo_path, writer_lease=False, **repo_secrets()) as repo, repo.batch() as batch:
        assert batch.delete(object_id), f"no object {object_id.hex()} to drop"


def index_file(repo_path: Path) -> Path:
    """The repository's LMDB index file."""
    return Path(repo_path) / "index.mdb"


@contextmanager
def faulty(repo_path: Path) -> Iterator[tuple[Repository, FaultyStore]]:
    """A repository whose reads go through a FaultyStore; inject faults with ``store.inject``."""
    path = os.fspath(repo_path)
    with Repository.open(path, readonly=True) as plain:
        config = plain.config
    store = FaultyStore(PackStore(path, readonly=True))
    repo = Repository(store, config, path, RepoLocks(path, readonly=True, writer_lease=False))
    try:
        yield repo, store
    finally:
        repo.close()


__all__ = [
    "Fault",
    "chunk_ids_of",
    "drop",
    "faulty",
    "flip_bit",
    "flip_byte",
    "flip_header",
    "index_file",
    "node_id_of",
    "place_of",
    "truncate",
]


# -- storage files: whole-file damage and LMDB's meta pages ------------------------------

LMDB_PAGE_BYTES = 4096
"""The page size of the index (LMDB's default, the system page size here)."""
LMDB_META_FIELDS = {
    "page-flags": (10, 2),
    "magic": (16, 4),
    "version": (20, 4),
    "mapsize": (32, 8),
    "free-db-root": (80, 8),
    "main-db-entries": (120, 8),
    "main-db-root": (128, 8),
    "last-page": (136, 8),
    "txnid": (144, 8),
}
"""(offset in its page, length) of fields of LMDB's ``MDB_meta`` (64-bit build, LMDB 0.9).

Each of the first two pages of the file holds one: a 16-byte page header
(pgno 8, pad 2, flags 2, lower 2, upper 2), then magic u32, version u32,
address 8, mapsize 8, two ``MDB_db`` of 48 bytes (free pages at 40, main at
88; each: pad u32, flags u16, depth u16, branch, leaf, overflow pages,
entries, root page, 8 bytes each), last page 8 and txnid 8. LMDB opens the
page whose txnid is the larger: a flip there can roll the index back.
"""


def lmdb_txnids(path: Path | str) -> tuple[int, int]:
    """The txnid of each of the two meta pages of an LMDB file."""
    offset, length = LMDB_META_FIELDS["txnid"]
    with open(path, "rb") as handle:
        data = handle.read(2 * LMDB_PAGE_BYTES)
    return tuple(  # type: ignore[return-value]
        int.from_bytes(data[page * LMDB_PAGE_BYTES + offset : page * LMDB_PAGE_BYTES + offset + length], "little")
        for page in (0, 1)
    )


def is_lock_file(path: Path | str) -> bool:
    """True for a repository's lock files (LMDB's ``index.mdb-lock``, the empty ``*.lock`` files): they hold no data."""
    return str(path).endswith(("-lock", ".lock"))


def storage_files(repo_path: Path | str) -> dict[str, bytes]:
    """Every file of a repository that holds data (not its lock files), by relative path, with its bytes."""
    root = Path(repo_path)
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file() and not is_lock_file(p)
    }


def restore_files(repo_path: Path | str, files: dict[str, bytes]) -> None:
    """Put a repository's data files back as ``storage_files`` recorded them, and remove those it did not record."""
    root = Path(repo_path)
    for path in sorted(root.rglob("*"), reverse=True):
        if path.is_file() and not is_lock_file(path) and str(path.relative_to(root)) not in files:
            path.unlink()
    for relative, data in files.items():
        target = root / relative
        if not target.exists() or target.read_bytes() != data:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)


def index_keys(repo_path: Path | str, db: bytes) -> list[bytes]:
    """The keys of one database of the index (read-only, without its lock file)."""
    import lmdb

    env = lmdb.open(str(index_file(Path(repo_path))), subdir=False, readonly=True, lock=False, max_dbs=8)
    try:
        table = env.open_db(db, create=False)
        with env.begin(db=table) as txn:
            return [bytes(key) for key, _ in txn.cursor()]
    finally:
        env.close()


def index_value_offset(repo_path: Path | str, db: bytes, key: bytes) -> int:
    """The offset in index.mdb of the value LMDB returns for ``key`` in database ``db`` (a leaf node's data).

    A value may be in the file several times (LMDB copies pages on write and
    leaves the old copies as free pages): each candidate after the key is
    flipped in turn and the index read again (read-only, without its lock
    file) to find the copy LMDB reads.
    """
    import lmdb

    path = index_file(Path(repo_path))

    def read() -> bytes | None:
        env = lmdb.open(str(path), subdir=False, readonly=True, lock=False, max_dbs=8)
        try:
            table = env.open_db(db, create=False)
            with env.begin(db=table) as txn:
                return txn.get(key)
        finally:
            env.close()

    value = read()
    assert value is not None, f"no {key!r} in the index's {db!r}"
    data = path.read_bytes()
    start = data.find(key + value)
    while start >= 0:
        offset = start + len(key)
        flip_bit(path, offset)
        changed = read() != value
        flip_bit(path, offset)
        if changed:
            return offset
        start = data.find(key + value, start + 1)
    raise AssertionError(f"the value of {key!r} is nowhere in {path}")


def live_blob_regions(repo_path: Path | str) -> dict[str, list[tuple[int, int]]]:
    """For each pack file, the (start, end) byte ranges of the blobs the index places in it (header and payload)."""
    regions: dict[str, list[tuple[int, int]]] = {}
    with Repository.open(repo_path, readonly=True, **repo_secrets()) as repo:
        for object_id, _ in repo.iter_blobs():
            place = repo.locate(object_id)
            assert place is not None
            pack, start, length = place
            regions.setdefault(pack, []).append((start, start + length))
    return {pack: sorted(ranges) for pack, ranges in regions.items()}


# -- running many commands cheaply: a fork server ----------------------------------------------


def serve_commands() -> None:
    """Run zerofs command lines read from stdin, each in a forked child; answer each with a JSON line.

    A request is a JSON list of argv lists; the answer, a JSON list of
    ``{"rc", "stdout" (base64), "stderr"}``, rc negative for a death by a
    signal (as ``subprocess`` reports it), None after a 120 s timeout. The
    server imports zerofs once and opens no repository, so every child
    starts like a fresh ``python -m zerofs`` minus the interpreter's start-up.
    """
    import base64
    import importlib
    import json
    import pkgutil
    import sys
    import tempfile
    import time
    import traceback

    import zerofs
    from zerofs.cli.main import main

    for module in pkgutil.walk_packages(zerofs.__path__, "zerofs."):  # what a command imports on its way
        if not module.name.startswith(("zerofs.mount", "zerofs.cli.app", "zerofs.__main__")):
            importlib.import_module(module.name)

    replies = os.fdopen(os.dup(1), "w")
    devnull = os.open(os.devnull, os.O_RDONLY)
    for line in sys.stdin:
        answers = []
        for argv in json.loads(line):
            with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
                sys.stdout.flush()
                sys.stderr.flush()
                pid = os.fork()
                if pid == 0:  # the child: one command, then out without running the server's cleanup
                    code = 1
                    try:
                        os.dup2(devnull, 0)
                        os.dup2(out.fileno(), 1)
                        os.dup2(err.fileno(), 2)
                        code = main(argv)
                        sys.stdout.flush()
                        sys.stderr.flush()
                    except SystemExit as exc:
                        code = exc.code if isinstance(exc.code, int) else 1
                    except BaseException:  # noqa: BLE001  # a child must never return into the server loop
                        traceback.print_exc()
                        sys.stderr.flush()
                    finally:
                        os._exit(code)
                deadline = time.monotonic() + 120
                rc: int | None = None
                while True:
                    done, status = os.waitpid(pid, os.WNOHANG)
                    if done:
                        rc = os.waitstatus_to_exitcode(status)
                        break
                    if time.monotonic() > deadline:
                        os.kill(pid, 9)
                        os.waitpid(pid, 0)
                        break
                    time.sleep(0.002)
                out.seek(0)
                err.seek(0)
                answers.append(
                    {
                        "rc": rc,
                        "stdout": base64.b64encode(out.read()).decode(),
                        "stderr": err.read().decode("utf-8", "replace"),
                    }
                )
        replies.write(json.dumps(answers) + "\n")
        replies.flush()
