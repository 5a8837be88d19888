"""Key material: the random master key and the subkeys derived from it, one per purpose.

Each purpose gets its own 32-byte subkey, derived from the master key with
HKDF-SHA256 (RFC 5869, no salt: the master key is already uniformly random)
and an ``info`` label naming the purpose, so no key is ever used for two
jobs:

| label | ``Keys`` field | used for |
|---|---|---|
| ``zerofs/v1/key:id`` | ``id_key`` | keyed BLAKE3 of chunk and node ids |
| ``zerofs/v1/key:chunker`` | ``chunker_seed`` | the seed of a keyed chunker |
| ``zerofs/v1/key:data`` | ``data`` | sealing chunk payloads |
| ``zerofs/v1/key:meta`` | ``meta`` | sealing nodes, commits, refs, index objects, pack trailers |

The master key itself encrypts nothing: it is only wrapped in key slots
(``zerofs.crypto.slots``) and derived from. This module stores nothing.
"""

from __future__ import annotations

import os
from typing import Final, NamedTuple

import blake3
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from zerofs.crypto.sealing import KEY_BYTES, AeadKey

MASTER_KEY_BYTES: Final = 32

LABELS: Final = {
    "id": b"zerofs/v1/key:id",
    "chunker": b"zerofs/v1/key:chunker",
    "data": b"zerofs/v1/key:data",
    "meta": b"zerofs/v1/key:meta",
}
"""The HKDF ``info`` label of each purpose; changing one changes every id and blob."""


def new_master_key() -> bytes:
    """Return a fresh random master key (32 bytes from the operating system's CSPRNG)."""
    return os.urandom(MASTER_KEY_BYTES)


def derive_subkey(master_key: bytes, purpose: str) -> bytes:
    """Return the 32-byte subkey of ``purpose`` (a key of ``LABELS``): HKDF-SHA256 of the master key."""
    if len(master_key) != MASTER_KEY_BYTES:
        raise ValueError(f"a master key is {MASTER_KEY_BYTES} bytes, not {len(master_key)}")
    hkdf = HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None, info=LABELS[purpose])
    return hkdf.derive(master_key)


class Keys(NamedTuple):
    """Every subkey of one repository, derived from its master key: build it with ``Keys.derive``.

    Immutable (the AEAD keys' writer sessions are a cache, not part of the
    value); the repr never shows a key.
    """

    id_key: bytes
    chunker_seed: bytes
    data: AeadKey
    meta: AeadKey

    @classmethod
    def derive(cls, master_key: bytes) -> Keys:
        """Derive every subkey from ``master_key``."""
        return cls(
            id_key=derive_subkey(master_key, "id"),
            chunker_seed=derive_subkey(master_key, "chunker"),
            data=AeadKey(derive_subkey(master_key, "data")),
            meta=AeadKey(derive_subkey(master_key, "meta")),
        )

    def __repr__(self) -> str:
        return "Keys(<secret>)"

    def object_id(self, kind: int, body: bytes | bytearray | memoryview) -> bytes:
        """Return an object's id in an encrypted repository: keyed BLAKE3 over its kind byte and body.

        The same domain separation as ``zerofs.objects.object_id`` (the kind
        byte, then the body), with the id key as BLAKE3's key, so ids reveal
        nothing about content to anyone without the key, and equal content
        still has equal ids within the repository.
        """
        hasher = blake3.blake3(bytes((kind,)), key=self.id_key)
        hasher.update(body)
        digest: bytes = hasher.digest()
        return digest
