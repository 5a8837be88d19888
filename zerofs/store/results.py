"""What maintenance of a store returns: checks, scans, reclaimed space, usage.

Kept apart from ``base.py`` so that reading a file never imports them.
"""

from __future__ import annotations

import enum
from typing import NamedTuple

from zerofs.objects import ObjectId
from zerofs.store.codec import Record


class StorageProblemKind(enum.Enum):
    """Damage below the object level: the index, packs, refs and config."""

    INDEX_ENTRY = "index-entry"
    """An index entry points at bytes that are not the blob it names."""
    PACK_TRAILER = "pack-trailer"
    """A closed pack's trailer is missing, damaged or disagrees with its blobs."""
    PACK_HEADER = "pack-header"
    """A pack's first bytes are not a pack header."""
    PACK_MISSING = "pack-missing"
    """The index names a pack that is not there."""
    PACK_ACCOUNTING = "pack-accounting"
    """The index's count of a pack's live blobs disagrees with the index entries."""
    REF_LOG = "ref-log"
    """A ref log record fails its checksum, or the log and the index disagree."""
    CONFIG = "config"
    """The repository's config file is damaged or disagrees with the index's copy."""
    LEFTOVER = "leftover"
    """A file an interrupted operation left behind (harmless; the next gc or upgrade removes it)."""


class StorageProblem(NamedTuple):
    """One problem below the object level, found by ``check_storage``."""

    kind: StorageProblemKind
    detail: str
    is_error: bool = True


class ScannedRecord(NamedTuple):
    """A blob read in storage order by ``scan``: its record, or why it cannot be read."""

    object_id: ObjectId
    record: Record | None
    problem: str | None
    """Why the stored bytes are not a readable record (then ``record`` is None)."""


class ReclaimResult(NamedTuple):
    """What reclaiming space did (or, dry, would do)."""

    packs_deleted: int = 0
    packs_rewritten: int = 0
    bytes_before: int = 0
    """Bytes of the packs deleted or rewritten."""
    bytes_written: int = 0
    """Bytes of the new packs their live blobs went to."""

    @property
    def bytes_reclaimed(self) -> int:
        """Pack bytes given back."""
        return self.bytes_before - self.bytes_written


class StorageUsage(NamedTuple):
    """How much the backend occupies."""

    n_packs: int
    pack_bytes: int
    """Length of every pack file."""
    live_bytes: int
    """Bytes of the blobs the index places in packs (headers included)."""
    index_bytes: int
    """Bytes of the index in use."""
    disk_bytes: int | None
    """Blocks allocated to the repository's files and directories, where there is a disk."""
