"""Work on a local store as a whole: read every pack, check the index, reclaim space, rebuild.

- ``scan``: every indexed blob, each pack read once, front to back (the fsck
  that reads all data).
- ``check_storage``: the config file, the ref log, and every pack's header
  and trailer against the index (plain fsck).
- ``reclaim``: give back the space of blobs gc forgot. Packs that hold no
  indexed blob are deleted; packs with at least a given share of dead bytes
  (and packs without a trailer, left by a writer that died) have their live
  blobs copied into a new pack, which is made durable, then one index
  transaction points those blobs at their copies, and only then is the old
  pack deleted. This needs no writer to wait: no writer adds blobs to a
  closed pack, a blob a writer is about to reference stays indexed (it only
  moves), and a reader that looked a blob up in a pack deleted since looks
  it up again (``PackStore._read_at``). One gc at a time (``locks.py``).
- ``rebuild_index``: a new index from the packs alone, the refs from the
  ref log.
- ``compact_index``: the index copied without its free pages.

In an encrypted repository (the store has a ``Sealer``) every pack must
have the encrypted header with this repository's key check, its trailer is
opened (a trailer that does not open is an error: damage, or a pack copied
under another name), and every blob is opened before it is used: to learn
its kind and lengths (a rebuild, which tries each kind), or to compare them
with the index (``scan``). ``check_storage`` reads no payload, so for a
sealed blob it compares only the id and stored length with the index.
Rewriting a pack copies its sealed blobs as they are (their associated
data names no pack).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

import lmdb

from zerofs.errors import CorruptionError, RepositoryError
from zerofs.objects import Commit, Kind, ObjectId, decode
from zerofs.objects import object_id as plain_object_id
from zerofs.store.codec import Record, decode_record
from zerofs.store.index import (
    DATABASES,
    INDEX_FILE,
    MAP_BYTES,
    NEXT_PACK_KEY,
    LmdbIndex,
    Location,
    PackEntry,
    store_error,
)
from zerofs.store.packfile import (
    BLOB_HEADER,
    PACK_HEADER,
    TAIL,
    ScannedBlob,
    Trailer,
    open_blob,
    pack_header_problem,
    parse_blob_header,
    parse_sealed_blob_header,
    read_trailer,
    scan_blobs,
    tail_bytes,
    trailer_start,
)
from zerofs.store.packs import (
    PackFiles,
    PackWriter,
    disk_error,
    fsync_directory,
    link_unnamed,
    make_names_durable,
    pack_hex,
)
from zerofs.store.reflog import LogDamage, RefLog, RefMove
from zerofs.store.results import ReclaimResult, ScannedRecord, StorageProblem, StorageProblemKind, StorageUsage

if TYPE_CHECKING:
    from zerofs.store.local import PackStore
    from zerofs.store.sealer import IdFunction, Sealer

SMALL_PACK_BYTES: Final = 8 << 20
"""Closed packs smaller than this are merged when there are at least two of them."""
HEAD: Final = b"HEAD"
GRAFTS: Final = b"GRAFTS"
LEFTOVER_FILES: Final = (
    "data.mdb",
    "lock.mdb",
    "grow.lock",
    "compact.tmp",
    "refs.log.tmp",
    "config.tmp",
    "index.mdb.compact",
    "index.mdb.rebuild",
)


# -- reading packs --------------------------------------------------------------------


@dataclass
class ParsedPack:
    """What the bytes of one pack hold."""

    blobs: list[ScannedBlob]
    has_trailer: bool
    problems: list[str] = field(default_factory=list)


def parse_pack(data: bytes, name: bytes = b"", sealer: Sealer | None = None) -> ParsedPack:
    """The blobs of a whole pack: by its trailer when it has a valid one, else read from the start.

    With a ``sealer`` (an encrypted repository; ``name`` is the pack's), every
    blob comes opened, and one that does not open is left out with a problem.
    """
    problem = pack_header_problem(data, None if sealer is None else sealer.key_check)
    if problem is not None:
        return ParsedPack([], False, [problem])
    problems: list[str] = []
    found = _read_trailer(data, name, sealer, problems)
    if found is None:
        return ParsedPack(list(scan_blobs(data, sealer=sealer)), False, problems)
    blobs = []
    view = memoryview(data)
    for offset in found.offsets:
        blob = _blob_at(view, offset, found.data_end, sealer, problems)
        if blob is not None:
            blobs.append(blob)
    return ParsedPack(blobs, True, problems)


def _read_trailer(data: bytes, name: bytes, sealer: Sealer | None, problems: list[str]) -> Trailer | None:
    """A pack's valid trailer, or None; a sealed trailer that does not open adds a problem."""
    size = len(data)
    if size < PACK_HEADER.size + tail_bytes(sealer):
        return None
    start = trailer_start(data[-tail_bytes(sealer) :], size, sealer)
    if start is None:
        return None
    try:
        return read_trailer(memoryview(data)[start:], size, name, sealer)
    except CorruptionError as exc:  # AuthenticationError: the pack is read from its start instead
        problems.append(f"its sealed trailer does not open: damaged, or the trailer of another pack ({exc.message})")
        return None


def _blob_at(
    view: memoryview, offset: int, data_end: int, sealer: Sealer | None, problems: list[str]
) -> ScannedBlob | None:
    """The blob a trailer lists at ``offset`` (opened, with a ``sealer``), or None with a problem."""
    if sealer is not None:
        try:
            blob = open_blob(sealer, view, offset, data_end)
        except CorruptionError as exc:
            problems.append(f"its blob at offset {offset} does not open: {exc.message}")
            return None
        if blob is None:
            problems.append(f"its trailer lists a blob at offset {offset} that has no valid header")
        return blob
    header = parse_blob_header(view, offset)
    end = offset + BLOB_HEADER.size + (header.stored_bytes if header is not None else 0)
    if header is None or end > data_end:
        problems.append(f"its trailer lists a blob at offset {offset} that has no valid header")
        return None
    payload = view[offset + BLOB_HEADER.size : end]
    return ScannedBlob(offset, header, Record(header.kind, header.codec, header.raw_bytes, payload))


def whole_blobs(data: bytes, name: bytes, problems: list[str], sealer: Sealer | None = None) -> list[ScannedBlob]:
    """The blobs of pack ``name`` (its bytes ``data``) that can be indexed again; what is wrong goes to ``problems``.

    Through a valid trailer, every blob it lists with a valid header; without
    one, the blobs from the start that verify, up to the first that does not.
    With a ``sealer``, only blobs that open.
    """
    parsed = parse_pack(data, name, sealer)
    problems.extend(f"pack {pack_hex(name)}: {p}" for p in parsed.problems)
    kept = []
    for blob in parsed.blobs:
        if not parsed.has_trailer and not _verifies(blob, sealer):
            problems.append(f"pack {pack_hex(name)}: read up to a blob that is not whole, at {blob.offset}")
            break
        kept.append(blob)
    return kept


def read_pack(files: PackFiles, name: bytes) -> bytes | None:
    """The whole pack, or None if it is not there."""
    try:
        with open(files.path(name), "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def _live_in(store: PackStore, pack_no: int, blobs: list[ScannedBlob]) -> list[tuple[ScannedBlob, Location]]:
    """The blobs of a pack that the index places there (the others are dead copies)."""
    live = []
    with store.index.reading() as txn:
        for blob in blobs:
            raw = txn.get(blob.header.object_id, db=store.index.blobs)
            if raw is None:
                continue
            location = store.index.read_location(blob.header.object_id, raw)
            if location.pack_no == pack_no and location.offset == blob.offset:
                live.append((blob, location))
    return live


def scan(store: PackStore) -> Iterator[ScannedRecord]:
    """Every indexed blob in pack order; a blob whose header disagrees with the index comes without a record."""
    for pack_no, entry in sorted(store.index.pack_entries().items()):
        data = read_pack(store.files, entry.name)
        if data is None:
            continue  # fsck reads what it misses one by one, and reports the missing pack
        for blob, location in _live_in(store, pack_no, parse_pack(data, entry.name, store.sealer).blobs):
            header = blob.header
            if (header.kind, header.stored_bytes, header.raw_bytes) != (
                location.kind,
                location.stored_bytes,
                location.raw_bytes,
            ):
                yield ScannedRecord(header.object_id, None, "its header in the pack is not what the index says")
            else:
                yield ScannedRecord(header.object_id, blob.record, None)


# -- checking -------------------------------------------------------------------------


def check_storage(store: PackStore) -> Iterator[StorageProblem]:
    """The config file, the ref log and every pack against the index."""
    yield from _check_config(store)
    yield from check_ref_log(store)
    yield from _check_packs(store)
    for name in LEFTOVER_FILES:
        if os.path.lexists(os.path.join(store.root, name)):
            yield StorageProblem(
                StorageProblemKind.LEFTOVER, f"{name} is left over from an interrupted operation", is_error=False
            )


def _check_config(store: PackStore) -> Iterator[StorageProblem]:
    from zerofs.store.local import CONFIG_FILE, CONFIG_META_KEY, decode_config_file

    path = os.path.join(store.root, CONFIG_FILE)
    try:
        with open(path, "rb") as handle:
            config = decode_config_file(handle.read())
    except OSError as exc:
        yield StorageProblem(StorageProblemKind.CONFIG, f"the config file cannot be read: {exc.strerror}")
        return
    if config is None:
        yield StorageProblem(StorageProblemKind.CONFIG, "the config file fails its checksum (the index's copy is used)")
    elif store.index.get(store.index.meta, CONFIG_META_KEY) != config:
        yield StorageProblem(StorageProblemKind.CONFIG, "the config file and the index's copy of it differ")


def check_ref_log(store: PackStore) -> Iterator[StorageProblem]:
    """Every record of the ref log intact and chained, and its last moves where the index's refs are."""
    last: dict[bytes, RefMove] = {}
    earlier: dict[bytes, set[bytes]] = {}
    for item in store.reflog.iter_moves():
        if isinstance(item, LogDamage):
            yield StorageProblem(StorageProblemKind.REF_LOG, f"ref log at byte {item.position}: {item.detail}")
            continue
        previous = last.get(item.name)
        if previous is not None and item.old != previous.new:
            yield StorageProblem(
                StorageProblemKind.REF_LOG,
                f"ref log record {item.sequence} moves {item.name.decode()} from a value no record left it at",
            )
        if previous is not None:
            earlier.setdefault(item.name, set()).add(previous.new)
        last[item.name] = item
    for name, move in sorted(last.items()):
        current = store.get_ref(name)
        if current == move.new:
            continue
        label = name.decode()
        if current is not None and current in earlier.get(name, set()) | ({move.old} if move.old else set()):
            yield StorageProblem(
                StorageProblemKind.REF_LOG,
                f"the index has {label} at {current.hex()[:12]}, older than the ref log's {move.new.hex()[:12]}: "
                "the index lost a transaction",
            )
        else:
            yield StorageProblem(
                StorageProblemKind.REF_LOG,
                f"the ref log's last {label} is {move.new.hex()[:12]}, the index has "
                f"{current.hex()[:12] if current else 'none'} (a log that lags behind the index is harmless)",
                is_error=False,
            )


def _check_packs(store: PackStore) -> Iterator[StorageProblem]:
    entries = store.index.pack_entries()
    registered = {entry.name for entry in entries.values()}
    for pack_no, entry in sorted(entries.items()):
        yield from _check_pack(store, pack_no, entry)
    counter = store.index.get(store.index.meta, NEXT_PACK_KEY)
    if entries and (counter is None or int.from_bytes(counter, "big") <= max(entries)):
        yield StorageProblem(
            StorageProblemKind.PACK_ACCOUNTING,
            f"the index's pack counter ({int.from_bytes(counter or b'', 'big')}) is not past its highest pack "
            f"number ({max(entries)}): damaged (new packs still get numbers of their own)",
        )
    total = sum(entry.live_count for entry in entries.values())
    with store.index.reading() as txn:
        n_entries = txn.stat(store.index.blobs)["entries"]
    if total != n_entries:
        yield StorageProblem(
            StorageProblemKind.PACK_ACCOUNTING,
            f"the index holds {n_entries} entries but its packs account for {total}",
        )
    for name in store.files.list():
        if name not in registered and not store.files.is_active(name):
            yield StorageProblem(
                StorageProblemKind.LEFTOVER,
                f"pack {pack_hex(name)} is named by no index entry (left by a writer that died; gc deletes it)",
                is_error=False,
            )


def _check_pack(store: PackStore, pack_no: int, entry: PackEntry) -> Iterator[StorageProblem]:
    label = f"pack {pack_hex(entry.name)}"
    path = store.files.path(entry.name)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        if entry.live_count:
            yield StorageProblem(
                StorageProblemKind.PACK_MISSING, f"{label} is missing: {entry.live_count} indexed blobs were in it"
            )
        return
    try:
        yield from _check_open_pack(store, pack_no, entry, fd, label)
    finally:
        os.close(fd)


def _check_open_pack(store: PackStore, pack_no: int, entry: PackEntry, fd: int, label: str) -> Iterator[StorageProblem]:
    sealer = store.sealer
    size = os.fstat(fd).st_size
    problem = pack_header_problem(os.pread(fd, PACK_HEADER.size, 0), None if sealer is None else sealer.key_check)
    if problem is not None:
        yield StorageProblem(StorageProblemKind.PACK_HEADER, f"{label}: {problem}")
        if sealer is not None:
            return  # its blobs are not this repository's sealed blobs: every one of them is reported when read
    n_tail = tail_bytes(sealer)
    start = trailer_start(os.pread(fd, n_tail, max(0, size - n_tail)), size, sealer)
    trailer: Trailer | None = None
    if start is not None:
        try:
            trailer = read_trailer(os.pread(fd, size - start, start), size, entry.name, sealer)
        except CorruptionError:  # AuthenticationError: damaged, or another pack's trailer (a pack copied or renamed)
            yield StorageProblem(
                StorageProblemKind.PACK_TRAILER,
                f"{label}: its sealed trailer does not open: damaged, or the trailer of another pack "
                "(gc rewrites the pack)",
            )
            return
    if trailer is None:
        if not store.files.is_active(entry.name):
            yield StorageProblem(
                StorageProblemKind.PACK_TRAILER,
                f"{label} has no valid trailer (left by a writer that died, or damaged; gc rewrites it)",
                is_error=False,
            )
        return
    matched = matched_bytes = 0
    with store.index.reading() as txn:
        for offset in trailer.offsets:
            found = _header_at(fd, offset, sealer)
            if found is None:
                yield StorageProblem(
                    StorageProblemKind.PACK_TRAILER,
                    f"{label}: its trailer lists a blob at offset {offset} where there is no valid header",
                )
                continue
            object_id, stored_bytes, facts = found
            raw = txn.get(object_id, db=store.index.blobs)
            location = store.index.read_location(object_id, raw) if raw is not None else None
            if location is None or location.pack_no != pack_no or location.offset != offset:
                continue  # a dead or duplicate copy
            if location.stored_bytes != stored_bytes or (
                facts is not None and (location.kind, location.raw_bytes) != facts
            ):
                yield StorageProblem(
                    StorageProblemKind.INDEX_ENTRY,
                    f"the index entry of {object_id.hex()[:16]} disagrees with its header in {label}",
                )
            matched += 1
            matched_bytes += BLOB_HEADER.size + stored_bytes
    if matched != entry.live_count:
        yield StorageProblem(
            StorageProblemKind.INDEX_ENTRY,
            f"the index places {entry.live_count} blobs in {label}, but {matched} of its blobs are where "
            "the index says: some index entries point at bytes that are not their blob",
        )


def _header_at(fd: int, offset: int, sealer: Sealer | None) -> tuple[ObjectId, int, tuple[Kind, int] | None] | None:
    """(id, stored length, (kind, raw length) or None if sealed inside) of the blob header at ``offset``, or None."""
    data = os.pread(fd, BLOB_HEADER.size, offset)
    if sealer is not None:
        parsed = parse_sealed_blob_header(data)
        return None if parsed is None else (parsed[0], parsed[1], None)
    header = parse_blob_header(data)
    if header is None:
        return None
    return header.object_id, header.stored_bytes, (header.kind, header.raw_bytes)


# -- reclaiming -----------------------------------------------------------------------


def _data_bytes(size: int, has_trailer: bool, live_count: int) -> int:
    """Bytes of a pack that hold blobs (or could): without its header and trailer."""
    trailer = TAIL.size + 4 * live_count if has_trailer else 0
    return max(1, size - PACK_HEADER.size - trailer)


def _has_trailer(files: PackFiles, name: bytes, size: int) -> bool:
    """True if the pack ends with a trailer's tail (a sealed trailer must also open)."""
    sealer = files.sealer
    try:
        fd = os.open(files.path(name), os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    try:
        n_tail = tail_bytes(sealer)
        start = trailer_start(os.pread(fd, n_tail, max(0, size - n_tail)), size, sealer)
        if start is None or sealer is None:
            return start is not None
        try:
            return read_trailer(os.pread(fd, size - start, start), size, name, sealer) is not None
        except CorruptionError:  # does not open: rewritten like a pack without a trailer
            return False
    finally:
        os.close(fd)


def reclaim(store: PackStore, dead_share: float, *, dry_run: bool = False) -> ReclaimResult:
    """Delete packs that hold no indexed blob; rewrite those with at least ``dead_share`` of dead bytes.

    The caller holds the gc lock. Writes: each rewritten pack's live blobs to
    a new pack (made durable), then the index (their new places, the old
    pack forgotten), then the old pack is deleted.
    """
    if not dry_run:
        store.close_writer()  # this process's own pack (gc's graft table) is merged like any small pack
    entries = store.index.pack_entries()
    own = store._writer.name if store._writer is not None else None
    registered = {entry.name for entry in entries.values()}
    deleted = rewritten = before = 0
    for name in store.files.list():
        if name in registered or name == own or store.files.is_active(name):
            continue
        size = store.files.size(name) or 0
        if dry_run or store.files.delete(name):
            deleted += 1
            before += size
    empty: list[PackEntry] = []
    rewrite: list[PackEntry] = []
    small: list[PackEntry] = []
    for entry in entries.values():
        if entry.name == own or store.files.is_active(entry.name):
            continue
        found = store.files.size(entry.name)
        if found is None:
            continue
        size = found
        if entry.live_count == 0:
            empty.append(entry)
            continue
        has_trailer = _has_trailer(store.files, entry.name, size)
        dead = 1 - entry.live_bytes / _data_bytes(size, has_trailer, entry.live_count)
        if not has_trailer or dead >= dead_share:
            rewrite.append(entry)
        elif size < SMALL_PACK_BYTES:
            small.append(entry)
    if len(small) >= 2:
        rewrite.extend(small)
    if dry_run:
        freed = sum(store.files.size(e.name) or 0 for e in empty)
        moved = sum(e.live_bytes for e in rewrite)
        return ReclaimResult(
            deleted + len(empty),
            len(rewrite),
            before + freed + sum(store.files.size(e.name) or 0 for e in rewrite),
            moved,
        )
    gone = _forget_packs(store, [e.pack_no for e in empty])
    for entry in empty:
        if entry.pack_no in gone:
            before += store.files.size(entry.name) or 0
            store.files.delete(entry.name)
            deleted += 1
    writer: PackWriter | None = None
    written = 0
    try:
        for entry in sorted(rewrite, key=lambda e: e.pack_no):
            size = store.files.size(entry.name) or 0
            writer, is_done = _rewrite_pack(store, entry, writer)
            if is_done:
                rewritten += 1
                before += size
            if writer is not None and writer.size >= _pack_target():
                written += writer.size
                writer.seal()
                writer = None
    finally:
        if writer is not None:
            written += writer.indexed_size
            writer.seal()
    return ReclaimResult(deleted, rewritten, before, written)


def _pack_target() -> int:
    from zerofs.store.local import PACK_TARGET_BYTES

    return PACK_TARGET_BYTES


def _forget_packs(store: PackStore, pack_nos: list[int]) -> set[int]:
    """Drop from the index the packs that still hold no blob; return those dropped."""
    if not pack_nos:
        return set()
    dropped = set()
    with store.index.writing() as txn:
        current = store.index.pack_entries(txn)
        for pack_no in pack_nos:
            entry = current.get(pack_no)
            if entry is not None and entry.live_count == 0:
                store.index.drop_pack(txn, pack_no)
                dropped.add(pack_no)
    return dropped


def _rewrite_pack(store: PackStore, entry: PackEntry, writer: PackWriter | None) -> tuple[PackWriter | None, bool]:
    """Copy a pack's live blobs into ``writer``, point the index at them, delete the pack; True if deleted."""
    data = read_pack(store.files, entry.name)
    if data is None:
        return writer, False
    if writer is not None and writer.size + entry.live_bytes > _pack_target():
        writer.seal()  # its copies are indexed: the next pack's live objects start a new one
        writer = None
    live = _live_in(store, entry.pack_no, parse_pack(data, entry.name, store.sealer).blobs)
    copies: list[tuple[ObjectId, Location, int]] = []
    if live:
        if writer is None:
            writer = store.files.create()
        view = memoryview(data)
        for blob, location in live:  # copied as stored: a sealed blob's associated data names no pack
            payload_start = blob.offset + BLOB_HEADER.size
            header = bytes(view[blob.offset : payload_start])
            offset = writer.append(header, view[payload_start : payload_start + blob.header.stored_bytes])
            copies.append((blob.header.object_id, location, offset))
        writer.sync()
        make_names_durable([writer])
    with store.index.writing() as txn:
        moved_bytes = moved_count = 0
        if copies:
            assert writer is not None
            if writer.pack_no is None:
                writer.pack_no = store.index.new_pack_no(txn, writer.name)
            for object_id, old, offset in copies:
                raw = txn.get(object_id, db=store.index.blobs)
                if raw is None or store.index.read_location(object_id, raw) != old:
                    continue
                new = Location(writer.pack_no, offset, old.stored_bytes, old.raw_bytes, old.kind)
                txn.put(object_id, store.index.location_value(object_id, new), db=store.index.blobs)
                moved_bytes += BLOB_HEADER.size + old.stored_bytes
                moved_count += 1
            store.index.adjust_pack(txn, writer.pack_no, moved_bytes, moved_count)
        store.index.adjust_pack(txn, entry.pack_no, -moved_bytes, -moved_count)
        remaining = store.index.pack_entries(txn)[entry.pack_no]
        is_empty = remaining.live_count == 0
        if is_empty:
            store.index.drop_pack(txn, entry.pack_no)
    if writer is not None:
        writer.indexed_size = writer.synced_size
    if is_empty:
        store.files.delete(entry.name)
    return writer, is_empty


# -- usage ----------------------------------------------------------------------------


def usage(store: PackStore) -> StorageUsage:
    """Packs, live bytes, the index in use and the blocks the repository directory occupies."""
    entries = store.index.pack_entries()
    pack_bytes = sum(store.files.size(e.name) or 0 for e in entries.values())
    return StorageUsage(
        n_packs=len(entries),
        pack_bytes=pack_bytes,
        live_bytes=sum(e.live_bytes for e in entries.values()),
        index_bytes=store.index.used_bytes(),
        disk_bytes=disk_bytes(store.root),
    )


def disk_bytes(root: str) -> int:
    """Blocks allocated to everything under ``root``, directories included, as ``du`` counts them."""
    total = 0
    for directory, dirs, files in os.walk(root):
        total += os.lstat(directory).st_blocks * 512
        for name in files:
            try:
                total += os.lstat(os.path.join(directory, name)).st_blocks * 512
            except FileNotFoundError:
                continue
        dirs[:] = [d for d in dirs if not os.path.islink(os.path.join(directory, d))]
    return total


# -- compaction and rebuild ---------------------------------------------------------------


def compact_index(store: PackStore) -> tuple[int, int]:
    """Rewrite the index with full pages and no free ones, and swap it in (the caller has the repository alone).

    Entries are copied in key order with LMDB's append mode, so every page
    is full. The copy is an unnamed file (``O_TMPFILE``, opened by LMDB
    through /proc) until it is complete and durable; then it is linked under
    a temporary name and renamed over the index. A kill or a full disk
    leaves the old index and nothing else.

    Raises:
        DiskFullError: no room for the copy (the old index is kept).
    """
    path = store.index.path
    temporary = path + ".compact"
    _remove(temporary)
    before = os.stat(path).st_blocks * 512
    try:
        fd = os.open(store.root, os.O_TMPFILE | os.O_RDWR | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        raise disk_error("cannot compact the index", exc) from exc
    try:
        try:
            _copy_index(store.index, f"/proc/self/fd/{fd}")
            os.fsync(fd)
            link_unnamed(fd, temporary)
        except OSError as exc:
            raise disk_error("cannot compact the index", exc) from exc
        except lmdb.Error as exc:
            raise store_error("cannot compact the index", exc) from exc
    finally:
        os.close(fd)
    store.index.close()
    os.replace(temporary, path)
    fsync_directory(store.root)
    store.index = LmdbIndex(store.root, readonly=store.readonly, sealer=store.sealer)
    store._names.clear()
    return before, os.stat(path).st_blocks * 512


def _copy_index(index: LmdbIndex, destination: str) -> None:
    """Copy every database of ``index`` into a new environment at ``destination``, in full pages."""
    zero_fresh_pages = index.sealer is not None  # see LmdbIndex: unzeroed pages leak the heap into the file
    copy = lmdb.open(
        destination, subdir=False, lock=False, map_size=MAP_BYTES, max_dbs=8, create=True, meminit=zero_fresh_pages
    )
    try:
        with index.reading() as source, copy.begin(write=True) as target:
            for name in DATABASES:
                old = index.env.open_db(name, txn=source, create=False)
                new = copy.open_db(name, txn=target)
                target.cursor(db=new).putmulti(source.cursor(db=old).iternext(), append=True)
        copy.sync(True)
    finally:
        copy.close()


def index_bloat(store: PackStore) -> float:
    """How much larger the index file is than its entries would be in full pages (1.0: not at all)."""
    with store.index.reading() as txn:
        entries = {
            name: txn.stat(store.index.env.open_db(name, txn=txn, create=False))["entries"] for name in DATABASES
        }
    ideal = 64 * 1024 + 62 * entries[b"blobs"] + 44 * entries[b"packs"]
    return os.stat(store.index.path).st_size / ideal


def _remove(*paths: str) -> None:
    for path in paths:
        if os.path.lexists(path):
            os.unlink(path)


@dataclass(frozen=True, slots=True)
class RebuildResult:
    """What ``rebuild_index`` found in the packs and the ref log."""

    n_packs: int
    n_blobs: int
    n_duplicates: int
    head: ObjectId | None
    problems: tuple[str, ...]


def rebuild_index(root: str, config: bytes, sealer: Sealer | None = None) -> RebuildResult:
    """Build a new index from the pack files and the ref log, and swap it in (the caller has the repository alone).

    Packs with a valid trailer are read through it; others are read from the
    start, each blob verified, until the first that is not whole. Where a
    blob is in several packs, a copy that verifies wins. HEAD and the graft
    table come from the ref log's last intact records. The new index is
    written beside the old one and renamed over it: a crash leaves the old.
    An encrypted repository's needs its ``sealer``: every blob is opened to
    learn its kind and lengths.

    Raises:
        RepositoryError: the new index cannot be written (a full disk).
    """
    from zerofs.store.local import CONFIG_META_KEY, REFLOG_FILE

    temporary_name = INDEX_FILE + ".rebuild"
    for leftover in (temporary_name, temporary_name + "-lock"):
        if os.path.lexists(os.path.join(root, leftover)):
            os.unlink(os.path.join(root, leftover))
    files = PackFiles(root, sealer)
    if next(files.list(), None) is None and RefLog(os.path.join(root, REFLOG_FILE), sealer).last_moves():
        raise RepositoryError(
            f"no pack files under {files.directory}, though the ref log records commits: "
            "nothing to rebuild the index from (the index is left as it is)"
        )
    old_refs = _old_refs(root, sealer)
    index = LmdbIndex(root, create=True, file_name=temporary_name, sealer=sealer)
    problems: list[str] = []
    n_packs = n_blobs = n_duplicates = 0
    head: ObjectId | None = None
    try:
        with index.writing() as txn:
            txn.put(CONFIG_META_KEY, config, db=index.meta)
            places: dict[ObjectId, tuple[int, ScannedBlob, bytes]] = {}
            for name in sorted(files.list()):
                data = read_pack(files, name)
                if data is None:
                    continue
                kept = whole_blobs(data, name, problems, sealer)
                if not kept:
                    continue
                pack_no = index.new_pack_no(txn, name)
                n_packs += 1
                for blob in kept:
                    object_id = blob.header.object_id
                    other = places.get(object_id)
                    if other is not None:
                        n_duplicates += 1
                        if _verifies(other[1], sealer) or not _verifies(blob, sealer):
                            continue
                    places[object_id] = (pack_no, blob, data)
            totals: dict[int, tuple[int, int]] = {}
            for object_id, (pack_no, blob, _) in sorted(places.items()):
                header = blob.header
                location = Location(pack_no, blob.offset, header.stored_bytes, header.raw_bytes, header.kind)
                txn.put(object_id, index.location_value(object_id, location), db=index.blobs)
                size, count = totals.get(pack_no, (0, 0))
                totals[pack_no] = (size + BLOB_HEADER.size + header.stored_bytes, count + 1)
                n_blobs += 1
            for pack_no, (size, count) in totals.items():
                index.adjust_pack(txn, pack_no, size, count)
            reflog = RefLog(os.path.join(root, REFLOG_FILE), sealer)
            parents = _Parents(places, sealer.id_function if sealer is not None else plain_object_id)
            head = _restore_refs(reflog, txn, parents, index, old_refs, problems)
        index.env.sync(True)
    except OSError as exc:
        index.close()
        raise disk_error("cannot write the rebuilt index", exc) from exc
    except RepositoryError:
        index.close()
        raise
    index.close()
    final = os.path.join(root, INDEX_FILE)
    os.replace(os.path.join(root, temporary_name), final)
    for stale in (final + "-lock", os.path.join(root, temporary_name + "-lock")):
        if os.path.lexists(stale):
            os.unlink(stale)
    fsync_directory(root)
    return RebuildResult(n_packs, n_blobs, n_duplicates, head, tuple(problems))


def _old_refs(root: str, sealer: Sealer | None) -> dict[bytes, bytes]:
    """HEAD and GRAFTS as the index being replaced has them, if it can be read at all (and opened)."""
    try:
        old = LmdbIndex(root, readonly=True, sealer=sealer)
    except (CorruptionError, RepositoryError):
        return {}
    try:
        found = {}
        for name in (HEAD, GRAFTS):
            with contextlib.suppress(CorruptionError):
                value = old.get_ref(name)
                if value is not None and len(value) == 32:
                    found[name] = value
        return found
    finally:
        old.close()


def _verifies(blob: ScannedBlob, sealer: Sealer | None) -> bool:
    try:
        if sealer is None:
            decode_record(blob.header.object_id, blob.record)
        else:
            decode_record(blob.header.object_id, blob.record, sealer.id_function)
    except CorruptionError:
        return False
    return True


def _restore_refs(
    reflog: RefLog,
    txn: lmdb.Transaction[bytes],
    parents: _Parents,
    index: LmdbIndex,
    old_refs: dict[bytes, bytes],
    problems: list[str],
) -> ObjectId | None:
    """Set HEAD and GRAFTS from the ref log, the old index (if it could be read) and the packs; return HEAD.

    HEAD is the ref log's newest value whose commit the packs hold, unless
    the old index's HEAD descends from it (the log lagged, or its last
    record is damaged); with no old index and a damaged last record, the
    newest commit in the packs that descends from the log's HEAD, so a flipped
    bit in the log costs no commit. GRAFTS is the ref log's, unless the old
    index names a newer table (one the log never recorded).
    """
    history: dict[bytes, list[bytes]] = {}
    for item in reflog.iter_moves():
        if isinstance(item, LogDamage):
            problems.append(f"ref log at byte {item.position}: {item.detail}")
        else:
            history.setdefault(item.name, []).append(item.new)
    places = parents.places
    logged_head = _newest_present(HEAD, history.get(HEAD, []), places, problems)
    head = logged_head
    old_head = old_refs.get(HEAD)
    if old_head is not None and old_head != logged_head and parents.descends(old_head, logged_head):
        problems.append(
            f"HEAD {old_head.hex()[:12]} is the old index's, which descends from the ref log's "
            f"{logged_head.hex()[:12] if logged_head else 'none'} (the log's last moves were lost)"
        )
        head = old_head
    elif old_head is None and logged_head is not None and reflog.has_damaged_end():
        tip = parents.newest_descendant(logged_head)
        if tip != logged_head:
            problems.append(
                f"the ref log's last record is damaged: HEAD is {tip.hex()[:12]}, the newest commit in the packs "
                f"that descends from the log's last intact HEAD {logged_head.hex()[:12]}"
            )
            head = tip
    if head is None:
        problems.append("no HEAD the ref log records is in the packs: HEAD is not set")
    else:
        txn.put(HEAD, index.ref_value(HEAD, head), db=index.refs)
    grafts = _newest_present(GRAFTS, history.get(GRAFTS, []), places, problems)
    old_grafts = old_refs.get(GRAFTS)
    if old_grafts is not None and old_grafts in places and old_grafts not in history.get(GRAFTS, []):
        grafts = old_grafts  # newer than anything logged: the log missed its move
    if grafts is not None:
        txn.put(GRAFTS, index.ref_value(GRAFTS, grafts), db=index.refs)
    return head


def _newest_present(
    name: bytes, values: list[bytes], places: dict[ObjectId, tuple[int, ScannedBlob, bytes]], problems: list[str]
) -> ObjectId | None:
    """The newest value the log gives ``name`` whose object the packs hold (reporting any skipped)."""
    for position, value in enumerate(reversed(values)):
        if value in places:
            if position:
                problems.append(
                    f"the ref log's last {position} value(s) of {name.decode()} name objects no pack holds; "
                    f"{name.decode()} is set to {value.hex()[:12]}, the newest that is there"
                )
            return value
    return None


class _Parents:
    """First parents of the commits the packs hold, decoded on demand."""

    def __init__(self, places: dict[ObjectId, tuple[int, ScannedBlob, bytes]], id_function: IdFunction) -> None:
        self.places = places
        self.id_function = id_function
        self._first: dict[ObjectId, ObjectId | None] = {}

    def first(self, commit_id: ObjectId) -> ObjectId | None:
        if commit_id not in self._first:
            self._first[commit_id] = self._decode(commit_id)
        return self._first[commit_id]

    def _decode(self, commit_id: ObjectId) -> ObjectId | None:
        place = self.places.get(commit_id)
        if place is None or place[1].header.kind is not Kind.COMMIT:
            return None
        try:
            node = decode(Kind.COMMIT, decode_record(commit_id, place[1].record, self.id_function), commit_id.hex())
        except CorruptionError:
            return None
        return node.parent_ids[0] if isinstance(node, Commit) and node.parent_ids else None

    def descends(self, commit_id: ObjectId, ancestor: ObjectId | None) -> bool:
        """True if ``ancestor`` is on ``commit_id``'s first-parent chain (None: any commit descends from it)."""
        if commit_id not in self.places:
            return False
        if ancestor is None:
            return True
        current: ObjectId | None = commit_id
        for _ in range(100_000):
            current = self.first(current) if current is not None else None
            if current is None:
                return False
            if current == ancestor:
                return True
        return False

    def newest_descendant(self, start: ObjectId) -> ObjectId:
        """The end of the longest first-parent chain of commits in the packs that starts at ``start``."""
        children: dict[ObjectId, list[ObjectId]] = {}
        for object_id, (_, blob, _) in self.places.items():
            if blob.header.kind is Kind.COMMIT:
                parent = self.first(object_id)
                if parent is not None:
                    children.setdefault(parent, []).append(object_id)
        best, best_depth = start, 0
        stack = [(start, 0)]
        while stack:
            commit_id, depth = stack.pop()
            if depth > best_depth:
                best, best_depth = commit_id, depth
            stack.extend((child, depth + 1) for child in children.get(commit_id, []))
        return best


def leftover_paths(root: str) -> list[str]:
    """Files an interrupted upgrade or compaction left in ``root``."""
    return [os.path.join(root, name) for name in LEFTOVER_FILES if os.path.lexists(os.path.join(root, name))]


def pack_count(root: str) -> int:
    """Pack files on disk (for reports)."""
    return sum(1 for _ in PackFiles(root).list())


assert INDEX_FILE == "index.mdb"
