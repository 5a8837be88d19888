"""Sealed records and pack trailers of an encrypted repository (issue #15): the store's one door to ``zerofs.crypto``.

A ``Sealer`` is the small typed value the store is given instead of keys:
the data and metadata AEAD keys, the keyed id function and a key check id,
all derived from one repository's ``Keys``. ``None`` in its place means a
plain repository, and the store then never imports this module (nor
``cryptography``): the modules that take a sealer import its type only for
the type checker and call its methods.

A sealed record (what a pack stores for one object) is::

    seal(key, kind u8 | codec u8 | raw_bytes u32 LE | payload_bytes u32 LE | payload | zeros, ad=AD)

with the ``data`` key and ``AD = chunk_ad(id)`` for a chunk, and the ``meta``
key and ``AD = node_ad(kind, id)`` for every other kind. The blob header in
the pack keeps only the id and the sealed length (``packfile``), so whoever
reads the pack learns neither the kind nor the exact size of a blob.

Padding (issue #15). The zeros pad the plaintext to ``padded_length`` of
its unpadded length: Padmé (Nikitin et al., "Reducing Metadata Leakage
from Encrypted Files and Communication with PURBs", PETS 2019). A length
whose highest bit is bit ``E`` is rounded up to a multiple of ``2 ** (E -
bit_length(E))``: it keeps only ``bit_length(E)`` significant bits, so a
sealed length leaks O(log log L) bits instead of O(log L), and costs
less than ``2 ** -bit_length(E)`` of the length: under 12% for records of a
few hundred bytes, under 6.25% from 256 bytes, under 3.2% from 64 KiB. A
64-128 KiB chunk is rounded to 2 KiB (about 1.3% on average for the ~80 KB
chunks of the default parameters), a 4-8 KiB file to 256 bytes. The
true payload length is inside the seal, so it is authenticated; a record
whose length field or padding is not what ``seal_record`` writes is
refused. Nodes are padded too, by the same rule: their sizes tell a
directory's number of entries and name lengths, a file node's number of
chunks (so the file's size), a symlink's target length; they are a small
share of a repository, so padding them costs little.

Which associated data to use before the kind is known. A reader through
the index knows the kind (the index entry has it) and opens with one try;
one that reads packs alone (an index rebuild, a pack without a trailer)
tries the chunk first, then each other kind under the metadata key. A
blob opens only under the exact key and AD it was sealed with, so at most
one try succeeds, and the kind inside must be the one tried. The extra
tries cost a failed GCM check each (about a microsecond for a node, which
is where they happen; chunks open at the first try); only a damaged blob
pays all eight. The kind stays bound three times over: by the key, by the
AD and by the keyed id the body must hash to.

A pack trailer is sealed under the ``meta`` key with ``pack_trailer_ad(pack
name)``, so a trailer (or a whole pack) copied under another name fails to
open. The key check id written in an encrypted pack's header is 8 bytes of
keyed BLAKE3 (under the id key) of a fixed label: equal in every pack of
one repository, unrelated to any id, and a clear way to refuse a pack of
another repository or key before any blob is tried.

The local index and ref log are sealed under the ``meta`` key too: a
``blobs`` value (location, lengths, kind) whole with ``location_ad(id)``, a
``refs`` value with ``index_ref_ad(name)``, and a ref log record's time, old
and new value with ``ref_ad(name, sequence)`` (``index.py``, ``reflog.py``).

An S3 repository's objects besides its packs (``s3store.py``) are sealed
whole under the ``meta`` key: an index object or a gc plan with
``index_ad(object key)``, so one copied or replayed under another key fails
to open; a ref record with ``ref_ad(ref name, move number)`` (``seal_move``, as the local ref log), so an older
move does not open as a newer one (the move number is written in the clear
before the sealed record, and the record inside must carry the same).

Every failure to open is ``AuthenticationError``, a ``DamagedObjectError``:
damage, another key, or another place look the same and are reported alike.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Final

import blake3

from zerofs.crypto.keys import Keys
from zerofs.crypto.sealing import (
    OVERHEAD_BYTES,
    AeadKey,
    AuthenticationError,
    chunk_ad,
    index_ad,
    index_ref_ad,
    location_ad,
    node_ad,
    open_sealed,
    pack_trailer_ad,
    ref_ad,
    seal,
)
from zerofs.errors import DamagedObjectError
from zerofs.objects import Kind, ObjectId
from zerofs.store.codec import CODECS, Record

KEY_CHECK_BYTES: Final = 8
_KEY_CHECK_LABEL: Final = b"zerofs/v1/pack-key-check"
_RECORD_HEAD: Final = struct.Struct("<BBII")
"""The plaintext's head: kind, codec, raw length, payload length (the rest is padding)."""
TRY_ORDER: Final = (
    Kind.CHUNK,
    Kind.FILE,
    Kind.DIR,
    Kind.CHUNKLIST,
    Kind.SYMLINK,
    Kind.COMMIT,
    Kind.SPECIAL,
    Kind.GRAFTS,
)
"""The kinds a reader that does not know a blob's kind tries, most common first."""

IdFunction = Callable[[Kind, bytes | bytearray | memoryview], ObjectId]


def padded_length(length: int) -> int:
    """Padmé: ``length`` rounded up so that only its top ``bit_length(E)`` bits (``E``: its highest bit) are set."""
    exponent = length.bit_length() - 1
    if exponent < 1:
        return length
    mask = (1 << (exponent - exponent.bit_length())) - 1
    return (length + mask) & ~mask


def sealed_record_bytes(payload_bytes: int) -> int:
    """The stored (sealed) length of a record whose payload is ``payload_bytes`` long."""
    return padded_length(_RECORD_HEAD.size + payload_bytes) + OVERHEAD_BYTES


class Sealer:
    """One repository's keys as the store uses them; build it with ``Sealer(keys)``. The repr shows no key."""

    __slots__ = ("data", "id_function", "key_check", "meta")

    def __init__(self, keys: Keys) -> None:
        self.data: AeadKey = keys.data
        self.meta: AeadKey = keys.meta
        self.id_function: IdFunction = keys.object_id
        """The keyed id every body read is hashed with and compared to its id."""
        self.key_check: bytes = blake3.blake3(_KEY_CHECK_LABEL, key=keys.id_key).digest(KEY_CHECK_BYTES)

    def __repr__(self) -> str:
        return "Sealer(<secret>)"

    def _key_and_ad(self, kind: Kind, object_id: ObjectId) -> tuple[AeadKey, bytes]:
        if kind is Kind.CHUNK:
            return self.data, chunk_ad(object_id)
        return self.meta, node_ad(kind, object_id)

    def seal_record(self, object_id: ObjectId, record: Record) -> bytes:
        """The sealed payload that stores ``record`` under ``object_id``."""
        key, ad = self._key_and_ad(record.kind, object_id)
        payload_bytes = len(record.payload)
        head = _RECORD_HEAD.pack(record.kind, record.codec, record.raw_bytes, payload_bytes)
        used = _RECORD_HEAD.size + payload_bytes
        return seal(key, b"".join((head, record.payload, bytes(padded_length(used) - used))), ad=ad)

    def open_record(self, object_id: ObjectId, sealed: bytes | memoryview, kind: Kind | None = None) -> Record:
        """The record a sealed payload holds; ``kind`` is the one the index gives (None: try each).

        Raises:
            AuthenticationError: it does not open (as ``kind``, or as any kind).
            DamagedObjectError: it opens but does not hold a record (a bug of its writer).
        """
        if kind is not None:
            return self._open_as(kind, object_id, sealed)
        for candidate in TRY_ORDER:
            try:
                return self._open_as(candidate, object_id, sealed)
            except AuthenticationError:
                continue
        raise AuthenticationError(
            f"object {object_id.hex()[:16]} fails authentication: changed, moved, or sealed with another key"
        )

    def _open_as(self, kind: Kind, object_id: ObjectId, sealed: bytes | memoryview) -> Record:
        key, ad = self._key_and_ad(kind, object_id)
        try:
            plain = open_sealed(key, sealed, ad=ad)
        except AuthenticationError as exc:
            raise AuthenticationError(
                f"object {object_id.hex()[:16]} fails authentication as a {kind.name.lower()}: "
                "changed, moved, or sealed with another key"
            ) from exc
        if len(plain) < _RECORD_HEAD.size:
            raise DamagedObjectError(f"object {object_id.hex()[:16]} opens to {len(plain)} bytes, not a record")
        inner_kind, codec, raw_bytes, payload_bytes = _RECORD_HEAD.unpack_from(plain)
        if inner_kind != kind or codec not in CODECS:
            raise DamagedObjectError(f"object {object_id.hex()[:16]} opens to a record of another kind or codec")
        end = _RECORD_HEAD.size + payload_bytes
        if padded_length(end) != len(plain) or plain.count(0, end) != len(plain) - end:
            raise DamagedObjectError(f"object {object_id.hex()[:16]} opens to a record padded otherwise than sealed")
        return Record(kind, codec, raw_bytes, memoryview(plain)[_RECORD_HEAD.size : end])

    def seal_trailer(self, pack_name: bytes, body: bytes) -> bytes:
        """A pack trailer's body, sealed to the pack's name."""
        return seal(self.meta, body, ad=pack_trailer_ad(pack_name))

    def open_trailer(self, pack_name: bytes, sealed: bytes | memoryview) -> bytes:
        """The body of a sealed pack trailer.

        Raises:
            AuthenticationError: damaged, sealed with another key, or the trailer of another pack.
        """
        return open_sealed(self.meta, sealed, ad=pack_trailer_ad(pack_name))

    def seal_location(self, object_id: ObjectId, value: bytes) -> bytes:
        """An index entry's value (location, lengths, kind), sealed to the blob's id."""
        return seal(self.meta, value, ad=location_ad(object_id))

    def open_location(self, object_id: ObjectId, sealed: bytes) -> bytes:
        """The plain value of a sealed index entry.

        Raises:
            AuthenticationError: damaged, or the entry of another id.
        """
        return open_sealed(self.meta, sealed, ad=location_ad(object_id))

    def seal_ref(self, name: bytes, value: bytes) -> bytes:
        """A ref's value as the index stores it, sealed to the ref's name."""
        return seal(self.meta, value, ad=index_ref_ad(name))

    def open_ref(self, name: bytes, sealed: bytes) -> bytes:
        """The plain value of a ref the index stores.

        Raises:
            AuthenticationError: damaged, or the value of another ref.
        """
        return open_sealed(self.meta, sealed, ad=index_ref_ad(name))

    def seal_move(self, name: bytes, sequence: int, body: bytes) -> bytes:
        """A ref log record's sealed part (time, old and new value), bound to the ref and the move number.

        The name is read as Latin-1 for ``ref_ad``: the same text as UTF-8 for
        HEAD and GRAFTS, and one string per byte string for any other name.
        """
        return seal(self.meta, body, ad=ref_ad(name.decode("latin-1"), sequence))

    def open_move(self, name: bytes, sequence: int, sealed: bytes | memoryview) -> bytes:
        """The plain body of a ref log record's sealed part.

        Raises:
            AuthenticationError: damaged, or the record of another ref or move number.
        """
        return open_sealed(self.meta, sealed, ad=ref_ad(name.decode("latin-1"), sequence))

    def seal_object(self, key: str, body: bytes) -> bytes:
        """An object of the bucket (an index object, a gc plan), sealed to its key."""
        return seal(self.meta, body, ad=index_ad(key))

    def open_object(self, key: str, sealed: bytes | memoryview) -> bytes:
        """The body of an object ``seal_object`` sealed to ``key``.

        Raises:
            AuthenticationError: damaged, sealed with another key, or an object of another key.
        """
        return open_sealed(self.meta, sealed, ad=index_ad(key))
