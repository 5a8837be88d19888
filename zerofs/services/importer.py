"""Import a host file or directory tree into the store, as one commit.

The walk is depth first: a directory's node is built after its children,
from their entries. Contents go to the store in batched transactions as the
walk proceeds (objects first); the single commit that places the imported
tree at its store path, and moves HEAD, comes last. Importing onto an
existing path replaces it. Symlinks are stored as links and never followed;
FIFOs, sockets and devices are skipped with a warning each.

Unchanged files are skipped without reading them, as restic and borg do: a
per-repository cache maps each host path to (device, inode, size, mtime,
ctime) and the file node stored for it; a file whose stat matches, and whose
node is still stored, re-uses that node.

Small files are read whole and stored on the calling thread (for them the
GIL, not the CPU, is the limit); large files stream through FastCDC with
hashing and compression on a small thread pool, a few chunks in flight.
"""

from __future__ import annotations

import os
import stat
import struct
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from zerofs.content import BatchSink, ContentWriter
from zerofs.errors import HostIOError, NotFoundError
from zerofs.history import apply_change
from zerofs.objects import DirEntry, Kind, ObjectId, SymlinkNode, validate_name
from zerofs.paths import StorePath
from zerofs.repo import Repository, Staging
from zerofs.store import WriteBatch
from zerofs.tree import build_dir, place

STREAM_THRESHOLD_BYTES: Final = 1 << 20
"""Files larger than this are streamed and hashed on worker threads."""
_CACHE_VALUE = struct.Struct("<QQQqq32s")  # dev, ino, size, mtime, ctime, file node id


@dataclass(frozen=True, slots=True)
class ImportProgress:
    """Counters passed to the progress callback after each file."""

    files: int
    bytes_read: int
    bytes_total: int


@dataclass(frozen=True, slots=True)
class ImportResult:
    """What an import did."""

    store_path: StorePath
    commit_id: ObjectId | None
    files: int
    dirs: int
    symlinks: int
    bytes_total: int
    files_unchanged: int
    new_bytes: int
    warnings: tuple[str, ...] = ()


@dataclass
class _Counters:
    files: int = 0
    dirs: int = 0
    symlinks: int = 0
    bytes_total: int = 0
    bytes_read: int = 0
    files_unchanged: int = 0
    warnings: list[str] = field(default_factory=list)


ProgressCallback = Callable[[ImportProgress], None]


def import_tree(repo: Repository, host_path: Path, store_path: StorePath, *, parents: bool = False,
                skip_errors: bool = False, workers: int | None = None,
                on_progress: ProgressCallback | None = None,
                on_warning: Callable[[str], None] | None = None) -> ImportResult:
    """Import ``host_path`` (file, directory or symlink) to ``store_path`` in one commit.

    Writes contents and nodes in batched transactions while walking, then
    one commit that places the tree (replacing what was there) and moves
    HEAD by compare-and-swap, together with the updated host-file cache.

    Raises:
        NotFoundError: ``host_path`` does not exist.
        HostIOError: a host file could not be read (unless ``skip_errors``).
        UsageError: ``store_path`` is the root.
    """
    absolute = Path(os.path.abspath(host_path))
    try:
        top_stat = os.lstat(absolute)
    except FileNotFoundError:
        raise NotFoundError(f"no such host file or directory: {host_path}") from None
    except OSError as exc:
        raise HostIOError(f"cannot read {host_path}: {exc.strerror}") from exc
    if store_path.is_root:
        from zerofs.errors import UsageError  # noqa: PLC0415

        raise UsageError("cannot import onto the root directory /; name a path such as /data")
    n_workers = workers or min(4, os.cpu_count() or 1)
    counters = _Counters()
    cache_updates: dict[bytes, bytes] = {}
    with ThreadPoolExecutor(n_workers, thread_name_prefix="zerofs-hash") as executor:
        with repo.store.batch() as batch:
            sink = BatchSink(repo, batch)
            walker = _Walker(repo, sink, ContentWriter(repo, sink, executor, n_workers), counters,
                             cache_updates, skip_errors, on_progress, on_warning)
            top = walker.entry_for(os.fsencode(absolute), store_path.name, top_stat)
    if top is None:
        raise HostIOError(f"nothing to import: {host_path} is not a file, directory or symlink")

    def place_import(staging: Staging, root_id: ObjectId, now_ns: int) -> ObjectId:
        return place(staging, root_id, store_path, top, now_ns, parents=parents, replace=True)

    def write_cache(batch: WriteBatch) -> None:
        for key, value in cache_updates.items():
            batch.put_cache(key, value)

    message = (f"import {absolute} -> {store_path} ({counters.files} files, "
               f"{_human_bytes(counters.bytes_total)})")
    outcome = apply_change(repo, place_import, message=message, before_commit=write_cache, operation={
        "op": "import", "host_path": os.fsdecode(absolute), "path": str(store_path),
        "files": counters.files, "bytes": counters.bytes_total})
    return ImportResult(store_path, outcome.commit_id, counters.files, counters.dirs, counters.symlinks,
                        counters.bytes_total, counters.files_unchanged, sink.new_bytes,
                        tuple(counters.warnings))


class _Walker:
    """Depth-first walk of a host tree that builds and writes nodes."""

    def __init__(self, repo: Repository, sink: BatchSink, writer: ContentWriter, counters: _Counters,
                 cache_updates: dict[bytes, bytes], skip_errors: bool,
                 on_progress: ProgressCallback | None, on_warning: Callable[[str], None] | None) -> None:
        self.repo = repo
        self.sink = sink
        self.writer = writer
        self.counters = counters
        self.cache_updates = cache_updates
        self.skip_errors = skip_errors
        self.on_progress = on_progress
        self.on_warning = on_warning
        self.store = repo.store

    def warn(self, text: str) -> None:
        self.counters.warnings.append(text)
        if self.on_warning is not None:
            self.on_warning(text)

    def failed(self, path: bytes, exc: OSError) -> None:
        text = f"cannot read {os.fsdecode(path)}: {exc.strerror or exc}"
        if not self.skip_errors:
            raise HostIOError(text + " (use --skip-errors to import the rest)") from exc
        self.warn(text + "; skipped")

    def entry_for(self, path: bytes, name: bytes, st: os.stat_result) -> DirEntry | None:
        """Store what is at ``path`` and return its entry, or None if skipped."""
        mode = st.st_mode
        try:
            if stat.S_ISREG(mode):
                return self.file_entry(path, name, st)
            if stat.S_ISDIR(mode):
                return self.dir_entry(path, name, st)
            if stat.S_ISLNK(mode):
                target = os.readlink(path)
                node_id = self.sink.put(SymlinkNode(target))
                self.counters.symlinks += 1
                return DirEntry(name, Kind.SYMLINK, mode, st.st_uid, st.st_gid, st.st_mtime_ns,
                                len(target), node_id)
        except OSError as exc:
            self.failed(path, exc)
            return None
        what = ("FIFO" if stat.S_ISFIFO(mode) else "socket" if stat.S_ISSOCK(mode) else "device file")
        self.warn(f"skipped {what} {os.fsdecode(path)}")
        return None

    def dir_entry(self, path: bytes, name: bytes, st: os.stat_result) -> DirEntry:
        entries = []
        with os.scandir(path) as iterator:
            children = list(iterator)
        for child in children:
            child_name = child.name
            try:
                validate_name(child_name)  # scandir never yields '.', '..' or '/'
            except Exception:  # noqa: BLE001 - a name the store cannot hold is a warning
                self.warn(f"skipped {os.fsdecode(child.path)}: name cannot be stored")
                continue
            try:
                child_stat = child.stat(follow_symlinks=False)
            except OSError as exc:
                self.failed(child.path, exc)
                continue
            entry = self.entry_for(child.path, child_name, child_stat)
            if entry is not None:
                entries.append(entry)
        self.counters.dirs += 1
        dir_id = build_dir(self.sink, entries)
        return DirEntry(name, Kind.DIR, st.st_mode, st.st_uid, st.st_gid, st.st_mtime_ns, 0, dir_id)

    def file_entry(self, path: bytes, name: bytes, st: os.stat_result) -> DirEntry:
        counters = self.counters
        file_id = self.cached_file_id(path, st)
        if file_id is not None:
            counters.files_unchanged += 1
            size = st.st_size
        else:
            file_id, size = self.store_file(path, st)
        self.cache_updates[path] = _CACHE_VALUE.pack(st.st_dev, st.st_ino, size, st.st_mtime_ns,
                                                     st.st_ctime_ns, file_id)
        counters.files += 1
        counters.bytes_total += size
        if self.on_progress is not None:
            self.on_progress(ImportProgress(counters.files, counters.bytes_read, counters.bytes_total))
        return DirEntry(name, Kind.FILE, st.st_mode, st.st_uid, st.st_gid, st.st_mtime_ns, size, file_id)

    def cached_file_id(self, path: bytes, st: os.stat_result) -> ObjectId | None:
        raw = self.store.get_cache(path)
        if raw is None or len(raw) != _CACHE_VALUE.size:
            return None
        dev, ino, size, mtime_ns, ctime_ns, file_id = _CACHE_VALUE.unpack(raw)
        if (dev, ino, size, mtime_ns, ctime_ns) != (st.st_dev, st.st_ino, st.st_size,
                                                    st.st_mtime_ns, st.st_ctime_ns):
            return None
        return file_id if self.sink.batch.has(file_id) else None

    def store_file(self, path: bytes, st: os.stat_result) -> tuple[ObjectId, int]:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        with os.fdopen(fd, "rb", buffering=0) as reader:
            if st.st_size <= STREAM_THRESHOLD_BYTES:
                data = reader.read()
                file_id, node = self.writer.write_bytes(data)
            else:
                file_id, node = self.writer.write_stream(reader)
        self.counters.bytes_read += node.size_bytes
        return file_id, node.size_bytes


def _human_bytes(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"
