"""The host-file cache: which host files an import already stored, so unchanged ones are not read again.

It describes this host's files (device and inode numbers, change times),
not the repository, so it lives with the user's caches, one LMDB
environment per repository (``CACHE_DIR/REPO_ID/files.mdb``), as borg's and
restic's do: a repository moved to another host, or shared by several,
carries no cache that would be wrong there. Losing it costs one full read
of the next import, nothing else.

One record per host directory, keyed by a hash of its path: the
zstd-compressed list of its files with (device, inode, size, mtime, ctime)
and the id of the file stored for them, and its hard-link group id if it
had one (so that a re-import of an unchanged linked tree keeps its ids). An import reads a directory's
record once when it enters it, and writes the records of the directories
it imported after its commit; per file it costs about 50 bytes.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from contextlib import suppress
from typing import Final

import blake3
import lmdb
import zstandard

from zerofs.objects import ID_BYTES
from zerofs.store.base import CachedFile

CACHE_FILE: Final = "files.mdb"
_MAP_BYTES: Final = 1 << 40
_ENTRY_V1: Final = struct.Struct("<HQQQqq32s")  # name length, device, inode, size, mtime ns, ctime ns, file id
_ENTRY: Final = struct.Struct("<HQQQqq32sB")  # the same, then the link id's length (the id follows the name)
_VERSION_1: Final = b"\x01"
_VERSION: Final = b"\x02"


def _key(directory: bytes) -> bytes:
    return blake3.blake3(directory).digest(16)


def encode_directory(files: dict[bytes, CachedFile]) -> bytes:
    """The stored form of one directory's record."""
    parts = [_VERSION]
    for name, cached in sorted(files.items()):
        parts.append(_ENTRY.pack(len(name), *cached[:-1], len(cached.link_id)))
        parts.append(name)
        parts.append(cached.link_id)
    return zstandard.ZstdCompressor(level=3).compress(b"".join(parts))


def decode_directory(raw: bytes) -> dict[bytes, CachedFile]:
    """A directory's record, or nothing if it cannot be read (a cache is only a hint)."""
    try:
        data = zstandard.ZstdDecompressor().decompress(raw)
    except zstandard.ZstdError:
        return {}
    if not data.startswith((_VERSION, _VERSION_1)):
        return {}
    files: dict[bytes, CachedFile] = {}
    offset = len(_VERSION)
    try:
        if data.startswith(_VERSION_1):
            while offset < len(data):
                name_bytes, *fields = _ENTRY_V1.unpack_from(data, offset)
                offset += _ENTRY_V1.size
                name = data[offset : offset + name_bytes]
                offset += name_bytes
                if len(fields[-1]) == ID_BYTES:
                    files[name] = CachedFile(*fields)
            return files
        unpack, entry_size = _ENTRY.unpack_from, _ENTRY.size
        while offset < len(data):
            name_bytes, device, inode, size, mtime_ns, ctime_ns, file_id, link_bytes = unpack(data, offset)
            offset += entry_size
            name = data[offset : offset + name_bytes]
            offset += name_bytes
            link_id = data[offset : offset + link_bytes]
            offset += link_bytes
            if len(link_id) != link_bytes:
                return {}
            if len(file_id) == ID_BYTES:
                files[name] = CachedFile(device, inode, size, mtime_ns, ctime_ns, file_id, link_id)
    except struct.error:
        return {}
    return files


class FileCache:
    """The cache of one repository on this host. Every failure degrades to 'not cached'."""

    def __init__(self, directory: str) -> None:
        """Use (creating it if needed) the cache in ``directory``."""
        self.directory = directory
        self._env: lmdb.Environment | None = None
        self._is_broken = False

    def _open(self) -> lmdb.Environment | None:
        if self._env is None and not self._is_broken:
            try:
                os.makedirs(self.directory, mode=0o700, exist_ok=True)
                self._env = lmdb.open(
                    os.path.join(self.directory, CACHE_FILE),
                    subdir=False,
                    map_size=_MAP_BYTES,
                    max_readers=256,
                    readahead=False,
                    meminit=False,
                )
            except (OSError, lmdb.Error):
                self._is_broken = True
        return self._env

    def directory_files(self, host_directory: bytes) -> dict[bytes, CachedFile]:
        """What the last import recorded of the files of a host directory (empty if nothing)."""
        env = self._open()
        if env is None:
            return {}
        try:
            with env.begin() as txn:
                raw = txn.get(_key(host_directory))
        except lmdb.Error:
            return {}
        return {} if raw is None else decode_directory(raw)

    def remember(self, records: dict[bytes, dict[bytes, CachedFile]]) -> None:
        """Record the files of the directories an import stored (a failure is ignored: it is a hint)."""
        env = self._open()
        if env is None or not records:
            return
        with suppress(lmdb.Error), env.begin(write=True) as txn:
            for host_directory, files in records.items():
                txn.put(_key(host_directory), encode_directory(files))

    def close(self) -> None:
        """Close the environment."""
        if self._env is not None:
            self._env.close()
            self._env = None


def iter_records(cache: FileCache) -> Iterator[bytes]:
    """Every record's key (for tests)."""
    env = cache._open()
    if env is None:
        return
    with env.begin() as txn:
        yield from (key for key, _ in txn.cursor())
