"""The key slots of a local encrypted repository, as files ``keys/<slot id>`` in its directory (issue #15).

Each file holds one slot's 102 bytes (``crypto.slots.KeySlot``), written
whole by a rename and made durable with its directory entry, like the
config file. A slot is written before anything relies on it (at ``init``,
before the config file that makes the directory a repository; on a change
of password, before the old slot goes), so a crash leaves every password
that opened the repository still opening it, and possibly one more.

Changes to the set of slots hold an exclusive ``flock`` on the ``keys``
directory, so two processes each removing one of the last two slots
cannot leave none. This module knows files and slots; the repository
decides what they unlock.

An S3 repository keeps the same 102 bytes as objects ``keys/<slot id>``
under its prefix, created with ``If-None-Match`` (``create_bucket_slot``)
and removed by a delete. A bucket has no lock that hosts share, so removing
a slot is a list, a delete and a list again (``Repository.remove_key``):
see there for what two hosts racing can do.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Final

from zerofs.crypto.slots import SLOT_BYTES, KeySlot, KeySlotError
from zerofs.errors import RepositoryError
from zerofs.store.local import write_file_durably
from zerofs.store.packs import fsync_directory

if TYPE_CHECKING:
    from zerofs.store.objects_s3 import ObjectStore

KEYS_DIR: Final = "keys"
_SLOT_NAME_CHARS: Final = frozenset("0123456789abcdef")


def keys_directory(root: str) -> str:
    """The directory that holds a repository's key slots."""
    return os.path.join(root, KEYS_DIR)


def read_slots(root: str) -> tuple[list[KeySlot], list[str]]:
    """The slots that decode, in name order, and the names of those that do not (damaged or cut short).

    Raises:
        RepositoryError: the directory cannot be read.
    """
    directory = keys_directory(root)
    try:
        names = sorted(name for name in os.listdir(directory) if _is_slot_name(name))
    except FileNotFoundError:
        return [], []
    except OSError as exc:
        raise RepositoryError(f"cannot read the key slots in {directory}: {exc.strerror}") from exc
    slots: list[KeySlot] = []
    damaged: list[str] = []
    for name in names:
        slot = _read_slot(os.path.join(directory, name))
        if slot is None or slot.slot_id != name:  # a slot copied under another name is not that slot
            damaged.append(name)
        else:
            slots.append(slot)
    return slots, damaged


def _is_slot_name(name: str) -> bool:
    return len(name) == 16 and set(name) <= _SLOT_NAME_CHARS


def _read_slot(path: str) -> KeySlot | None:
    try:
        with open(path, "rb") as handle:
            data = handle.read(SLOT_BYTES + 1)
    except OSError:
        return None
    try:
        return KeySlot.decode(data)
    except KeySlotError:
        return None


def write_slot(root: str, slot: KeySlot) -> None:
    """Write ``slot`` as ``keys/<slot id>`` durably (creating ``keys`` if needed, durably too)."""
    directory = keys_directory(root)
    if not os.path.isdir(directory):
        os.mkdir(directory, 0o755)
        fsync_directory(root)
    write_file_durably(os.path.join(directory, slot.slot_id), slot.encode())


def delete_slot(root: str, slot_id: str) -> None:
    """Remove ``keys/<slot id>`` durably (the caller has checked that another slot remains)."""
    directory = keys_directory(root)
    os.unlink(os.path.join(directory, slot_id))
    fsync_directory(directory)


@contextlib.contextmanager
def slots_locked(root: str) -> Iterator[None]:
    """Hold the exclusive lock on a repository's set of key slots for a ``with`` block (waits for it).

    Raises:
        RepositoryError: the ``keys`` directory cannot be opened.
    """
    directory = keys_directory(root)
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        raise RepositoryError(f"cannot open the key slots in {directory}: {exc.strerror}") from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def read_bucket_slots(objects: ObjectStore) -> tuple[list[KeySlot], list[str]]:
    """An S3 repository's slots that decode, in name order, and the names of those that do not."""
    names = sorted(
        name for name in (info.key.rpartition("/")[2] for info in objects.list(KEYS_DIR)) if _is_slot_name(name)
    )
    slots: list[KeySlot] = []
    damaged: list[str] = []
    for name in names:
        found = objects.get(f"{KEYS_DIR}/{name}")
        if found is None:  # removed since the listing (another host's key remove)
            continue
        try:
            slot = KeySlot.decode(found.data)
        except KeySlotError:
            slot = None
        if slot is None or slot.slot_id != name:
            damaged.append(name)
        else:
            slots.append(slot)
    return slots, damaged


def create_bucket_slot(objects: ObjectStore, slot: KeySlot) -> bool:
    """Create ``keys/<slot id>`` with ``If-None-Match``; False if that key holds other bytes already."""
    return objects.create(f"{KEYS_DIR}/{slot.slot_id}", slot.encode()) is not None


def delete_bucket_slot(objects: ObjectStore, slot_id: str) -> None:
    """Delete ``keys/<slot id>`` (nothing happens if it is gone already)."""
    objects.delete(f"{KEYS_DIR}/{slot_id}")
