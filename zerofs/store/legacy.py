"""Format 1 (every object a value in one LMDB environment, ``data.mdb``), read only to convert it.

``upgrade`` copies a format-1 repository into the pack format in the same
directory, in this order, so that a kill at any instant leaves the old or
the new repository, never neither:

1. leftovers of an earlier, interrupted attempt are removed (packs, index,
   ref log: nothing of format 1 lives there);
2. every object is read, verified against its id and appended to packs;
   HEAD and the graft table are set; the packs and the new index are made
   durable (format 1's host-file cache is left behind: the next import of
   each tree reads it once);
3. the new ``config`` file is written by a rename: this is the moment the
   directory becomes a format-2 repository (``is_local_repository``);
4. the format-1 files are deleted.

Until step 3 the directory opens as format 1 (the new files are ignored);
after it, as format 2 (an old ``data.mdb`` left by a kill during step 4 is
ignored, and reported by fsck as a leftover).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Final

import lmdb
import zstandard

from zerofs.errors import CorruptionError, RepositoryError
from zerofs.objects import Kind, ObjectId
from zerofs.objects import object_id as object_id_of
from zerofs.store.codec import CODEC_RAW, CODEC_ZSTD, Record, decode_record, encode_record, zstd_payload
from zerofs.store.index import INDEX_FILE, store_error
from zerofs.store.local import CONFIG_FILE, REFLOG_FILE, PackStore, encode_config_file, write_file_durably
from zerofs.store.packs import disk_error, fsync_directory

DATA_FILE: Final = "data.mdb"
LEGACY_FILES: Final = ("data.mdb", "lock.mdb", "grow.lock", "compact.tmp")
_GRAFTS_KEY: Final = b"grafts"
_CONFIG_KEY: Final = b"config"


@dataclass(frozen=True, slots=True)
class UpgradeResult:
    """What the conversion carried over."""

    n_objects: int
    n_damaged: int
    """Objects that failed their check in the old repository and were left out (fsck names their paths)."""
    stored_bytes: int
    is_current: bool = False
    """The repository was already of the current format: nothing was converted."""
    removed_leftovers: bool = False
    """Files of format 1 that an interrupted conversion left were removed."""


def is_format1(root: str) -> bool:
    """True if ``root`` holds a format-1 repository (and not yet a converted one)."""
    return os.path.exists(os.path.join(root, DATA_FILE)) and not os.path.exists(os.path.join(root, CONFIG_FILE))


def read_config(root: str) -> bytes:
    """The format-1 config (JSON).

    Raises:
        RepositoryError: it cannot be read.
    """
    env = _open(root)
    try:
        with env.begin() as txn:
            raw = txn.get(_CONFIG_KEY, db=env.open_db(b"meta", txn=txn, create=False))
    finally:
        env.close()
    if raw is None:
        raise RepositoryError(f"{root} is not a zerofs repository (no configuration)")
    return bytes(raw)


def _open(root: str) -> lmdb.Environment:
    try:
        return lmdb.open(root, readonly=True, lock=False, max_dbs=8, subdir=True, create=False)
    except lmdb.Error as exc:
        text = str(exc).removeprefix(f"{root}: ")
        raise RepositoryError(f"cannot read the format-1 repository at {root}: {text}") from exc


def _legacy_record(record: bytes) -> Record | None:
    """A format-1 record (``[codec][kind][payload]``) as a Record, or None if its header is unreadable."""
    if len(record) < 2 or record[0] not in (CODEC_RAW, CODEC_ZSTD):
        return None
    try:
        kind = Kind(record[1])
    except ValueError:
        return None
    payload = memoryview(record)[2:]
    if record[0] == CODEC_RAW:
        return Record(kind, CODEC_RAW, len(payload), payload)
    size = zstandard.frame_content_size(payload)
    return None if size < 0 else Record(kind, CODEC_ZSTD, size, zstd_payload(payload))


def _iter_records(env: lmdb.Environment) -> Iterator[tuple[ObjectId, Record | None]]:
    with env.begin() as txn:
        for key, value in txn.cursor(db=env.open_db(b"objects", txn=txn, create=False)):
            yield bytes(key), _legacy_record(bytes(value))


def upgrade(root: str, new_config: bytes, on_progress: Callable[[int], None] | None = None) -> UpgradeResult:
    """Convert the format-1 repository at ``root`` in place (the caller has it to itself).

    Raises:
        DiskFullError: no room for the new copy (the old repository is untouched, the copy removed).
        RepositoryError: the old repository cannot be read.
    """
    remove_new_files(root)
    env = _open(root)
    try:
        result = _copy(root, env, new_config, on_progress)
    except BaseException:
        env.close()
        remove_new_files(root)
        raise
    env.close()
    write_file_durably(os.path.join(root, CONFIG_FILE), encode_config_file(new_config))
    remove_legacy_files(root)
    return result


def _copy(root: str, env: lmdb.Environment, config: bytes, on_progress: Callable[[int], None] | None) -> UpgradeResult:
    store = PackStore.create(root, config, write_config=False)
    n_objects = n_damaged = stored = 0
    try:
        with env.begin() as txn:
            refs = env.open_db(b"refs", txn=txn, create=False)
            meta = env.open_db(b"meta", txn=txn, create=False)
            head = txn.get(b"HEAD", db=refs)
            grafts = txn.get(_GRAFTS_KEY, db=meta)
        with store.batch() as batch:
            for object_id, record in _iter_records(env):
                if record is None or not _verifies(object_id, record):
                    n_damaged += 1
                    continue
                batch.put(object_id, record)
                n_objects += 1
                stored += len(record.payload)
                if on_progress is not None and n_objects % 1000 == 0:
                    on_progress(n_objects)
            if grafts:
                table = json.dumps(json.loads(grafts), sort_keys=True, separators=(",", ":")).encode()
                grafts_id = object_id_of(Kind.GRAFTS, table)
                batch.put(grafts_id, encode_record(Kind.GRAFTS, table, 3))
                batch.cas_ref(b"GRAFTS", None, grafts_id)
            if head is not None:
                batch.cas_ref(b"HEAD", None, bytes(head))
    except lmdb.Error as exc:
        raise store_error(f"cannot read the format-1 repository at {root}", exc) from exc
    except OSError as exc:
        raise disk_error(f"cannot convert the repository at {root}", exc) from exc
    finally:
        store.close()
    return UpgradeResult(n_objects, n_damaged, stored)


def _verifies(object_id: ObjectId, record: Record) -> bool:
    try:
        decode_record(object_id, record)
    except CorruptionError:
        return False
    return True


def remove_new_files(root: str) -> None:
    """Remove what an interrupted conversion wrote (never anything of format 1)."""
    for name in (INDEX_FILE, INDEX_FILE + "-lock", REFLOG_FILE, REFLOG_FILE + ".lock", CONFIG_FILE + ".tmp"):
        path = os.path.join(root, name)
        if os.path.lexists(path):
            os.unlink(path)
    shutil.rmtree(os.path.join(root, "packs"), ignore_errors=True)
    fsync_directory(root)


def remove_legacy_files(root: str) -> bool:
    """Remove the format-1 files of a converted repository; True if there were any."""
    found = False
    for name in LEGACY_FILES:
        path = os.path.join(root, name)
        if os.path.isdir(path):
            shutil.rmtree(path, ignore_errors=True)
            found = True
        elif os.path.lexists(path):
            os.unlink(path)
            found = True
    if found:
        fsync_directory(root)
    return found
