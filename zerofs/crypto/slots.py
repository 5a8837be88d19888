"""Key slots: the master key wrapped under a password, and a host-local cache of the unwrapped key.

A key slot holds the master key sealed with AES-256-GCM under a key derived
from a password with argon2id (RFC 9106). A repository has one slot per
password; any slot opens it, and removing a slot makes its password useless
for opening the repository from then on (it cannot take back a master key
someone already unwrapped: only re-keying could, see issue #15).

Slot format, version 1: 102 bytes, fixed layout, little-endian::

    magic "ZFKS" | version u8 = 1 | slot id (8 bytes) | kdf u8 = 1 (argon2id v1.3)
    | time cost u32 | memory KiB u32 | parallelism u32 | salt (16)
    | nonce (12) | wrapped master key (32) + GCM tag (16)

Everything before the nonce is the associated data of the wrapping, so a
changed parameter, salt or id fails to open exactly like a wrong password
(an AEAD cannot tell the two apart), and ``decode`` rejects a slot of any
other length, magic, version or KDF, and parameters outside the bounds
below (so a tampered slot cannot make the KDF run for hours or allocate
terabytes).

The KDF is the expensive step of opening a repository (``DEFAULT_KDF``,
chosen by ``benchmarks/crypto_bench.py``). A process runs it at most once;
across processes, a *key cache* entry (``seal_key_cache``/``open_key_cache``)
lets the caller keep the unwrapped master key on the trusted host, bound to
the slot it came from and to the password that opened it. It is meant for a
private, memory-backed place such as ``$XDG_RUNTIME_DIR``, never for the
repository: ``zerofs.keycache`` keeps the files.

``argon2`` is imported only when a KDF runs, so a process that opens the
repository from the key cache does not pay for importing it. This module
stores nothing and never puts a password or key in a message or a repr.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterable
from typing import Final, NamedTuple

import blake3
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from zerofs.crypto.keys import MASTER_KEY_BYTES
from zerofs.crypto.sealing import KEY_BYTES, NONCE_BYTES, TAG_BYTES
from zerofs.errors import ConflictError, CorruptionError, NotFoundError, UsageError, WrongPasswordError

SLOT_MAGIC: Final = b"ZFKS"
SLOT_VERSION: Final = 1
KDF_ARGON2ID: Final = 1
SLOT_ID_BYTES: Final = 8
KDF_SALT_BYTES: Final = 16
WRAPPED_BYTES: Final = MASTER_KEY_BYTES + TAG_BYTES
_SLOT_HEAD: Final = struct.Struct(f"<4sB{SLOT_ID_BYTES}sBIII{KDF_SALT_BYTES}s")
SLOT_BYTES: Final = _SLOT_HEAD.size + NONCE_BYTES + WRAPPED_BYTES
"""Length of every version-1 slot: 102 bytes."""

MAX_TIME_COST: Final = 64
MAX_MEMORY_KIB: Final = 4 * 1024 * 1024
"""4 GiB: more than any slot zerofs writes needs, few enough that a tampered slot cannot exhaust a host."""
MAX_PARALLELISM: Final = 64

CACHE_MAGIC: Final = b"ZFKC"
CACHE_VERSION: Final = 1
_CACHE_HEAD: Final = struct.Struct(f"<4sB{SLOT_ID_BYTES}s32s{KDF_SALT_BYTES}s")
CACHE_BYTES: Final = _CACHE_HEAD.size + NONCE_BYTES + WRAPPED_BYTES
_CACHE_INFO: Final = b"zerofs/v1/key-cache"


class KeySlotError(CorruptionError):
    """A key slot that cannot be decoded: cut short, another format, or parameters out of bounds."""


class KdfParams(NamedTuple):
    """argon2id's cost parameters, recorded in each slot: passes, memory (KiB) and lanes."""

    time_cost: int
    memory_kib: int
    parallelism: int

    def problem(self) -> str | None:
        """Say what is wrong with these parameters (outside argon2id's limits or the bounds above), or None."""
        if not 1 <= self.time_cost <= MAX_TIME_COST:
            return f"KDF time cost {self.time_cost} is outside 1..{MAX_TIME_COST}"
        if not 1 <= self.parallelism <= MAX_PARALLELISM:
            return f"KDF parallelism {self.parallelism} is outside 1..{MAX_PARALLELISM}"
        if not 8 * self.parallelism <= self.memory_kib <= MAX_MEMORY_KIB:
            return f"KDF memory {self.memory_kib} KiB is outside {8 * self.parallelism}..{MAX_MEMORY_KIB}"
        return None


DEFAULT_KDF: Final = KdfParams(time_cost=3, memory_kib=64 * 1024, parallelism=4)
"""RFC 9106's second recommended option; 0.13-0.18 s here (``benchmarks/crypto_bench.py``).

Affordable because a process runs it at most once and the key cache spares
later processes on the same host; a command that cannot use the cache
(``cat`` without it) pays it once."""


class KeySlot(NamedTuple):
    """One password's wrapping of the master key; ``slot_id`` (16 hex digits) names it for ``key list/remove``."""

    slot_id: str
    params: KdfParams
    salt: bytes
    nonce: bytes
    wrapped: bytes

    def header(self) -> bytes:
        """The bytes before the nonce: the wrapping's associated data."""
        return _SLOT_HEAD.pack(
            SLOT_MAGIC, SLOT_VERSION, bytes.fromhex(self.slot_id), KDF_ARGON2ID, *self.params, self.salt
        )

    def encode(self) -> bytes:
        """Return the slot's canonical 102-byte encoding."""
        return self.header() + self.nonce + self.wrapped

    @classmethod
    def decode(cls, data: bytes) -> KeySlot:
        """Parse a slot ``encode`` wrote.

        Raises:
            KeySlotError: not exactly one version-1 argon2id slot with parameters in bounds.
        """
        if len(data) != SLOT_BYTES:
            raise KeySlotError(f"key slot is {len(data)} bytes, a version-1 slot is {SLOT_BYTES}: cut short or damaged")
        magic, version, raw_id, kdf, time_cost, memory_kib, parallelism, salt = _SLOT_HEAD.unpack_from(data)
        if magic != SLOT_MAGIC:
            raise KeySlotError("not a zerofs key slot (bad magic)")
        if version != SLOT_VERSION:
            raise KeySlotError(f"key slot has unsupported version {version}")
        if kdf != KDF_ARGON2ID:
            raise KeySlotError(f"key slot names unknown KDF {kdf}")
        params = KdfParams(time_cost, memory_kib, parallelism)
        problem = params.problem()
        if problem:
            raise KeySlotError(f"key slot {problem}")
        nonce = data[_SLOT_HEAD.size : _SLOT_HEAD.size + NONCE_BYTES]
        wrapped = data[_SLOT_HEAD.size + NONCE_BYTES :]
        return cls(raw_id.hex(), params, salt, nonce, wrapped)


class Unlocked(NamedTuple):
    """A master key and the id of the slot that gave it up."""

    master_key: bytes
    slot_id: str

    def __repr__(self) -> str:
        return f"Unlocked(<secret>, slot_id={self.slot_id!r})"


def wrapping_key(password: bytes, params: KdfParams, salt: bytes) -> bytes:
    """Derive the 32-byte key that wraps the master key: argon2id over the password (the slow step)."""
    # Imported here: argon2 costs about 12 ms of start-up, which a process opening from the key cache never pays.
    from argon2.low_level import Type, hash_secret_raw

    return hash_secret_raw(
        secret=password,
        salt=salt,
        time_cost=params.time_cost,
        memory_cost=params.memory_kib,
        parallelism=params.parallelism,
        hash_len=KEY_BYTES,
        type=Type.ID,
        version=0x13,  # argon2 v1.3, what KDF_ARGON2ID names: pinned, not the library's default of the day
    )


def make_slot(master_key: bytes, password: bytes, params: KdfParams = DEFAULT_KDF) -> KeySlot:
    """Wrap ``master_key`` under ``password`` in a new slot with a random id, salt and nonce.

    Raises:
        UsageError: the password is empty, or ``params`` are out of bounds.
    """
    if not password:
        raise UsageError("the password is empty")
    problem = params.problem()
    if problem:
        raise UsageError(problem)
    if len(master_key) != MASTER_KEY_BYTES:
        raise ValueError(f"a master key is {MASTER_KEY_BYTES} bytes, not {len(master_key)}")
    return _make_slot(
        master_key,
        password,
        params,
        slot_id=os.urandom(SLOT_ID_BYTES).hex(),
        salt=os.urandom(KDF_SALT_BYTES),
        nonce=os.urandom(NONCE_BYTES),
    )


def _make_slot(
    master_key: bytes, password: bytes, params: KdfParams, *, slot_id: str, salt: bytes, nonce: bytes
) -> KeySlot:
    """Wrap with a given id, salt and nonce: only ``make_slot`` (and known-answer tests) may choose them."""
    unsealed = KeySlot(slot_id, params, salt, nonce, b"")
    key = wrapping_key(password, params, salt)
    return unsealed._replace(wrapped=AESGCM(key).encrypt(nonce, master_key, unsealed.header()))


def open_slot(slot: KeySlot, password: bytes) -> bytes:
    """Return the master key ``slot`` wraps, if ``password`` is its password.

    Raises:
        WrongPasswordError: the password does not open the slot, or the
            slot was changed (the two cannot be told apart).
    """
    key = wrapping_key(password, slot.params, slot.salt)
    try:
        return AESGCM(key).decrypt(slot.nonce, slot.wrapped, slot.header())
    except InvalidTag as exc:
        raise WrongPasswordError(f"wrong password for key slot {slot.slot_id}") from exc


def open_any(slots: Iterable[KeySlot], password: bytes) -> Unlocked:
    """Try each slot in turn (one KDF each) and return the first master key ``password`` unwraps.

    Raises:
        KeySlotError: there are no slots.
        WrongPasswordError: no slot opens with ``password``.
    """
    tried = 0
    for slot in slots:
        tried += 1
        try:
            return Unlocked(open_slot(slot, password), slot.slot_id)
        except WrongPasswordError:
            continue
    if not tried:
        raise KeySlotError("the repository has no key slots")
    raise WrongPasswordError(f"wrong password: none of the {tried} key slots opens with it")


def without_slot(slots: Iterable[KeySlot], slot_id: str) -> tuple[KeySlot, ...]:
    """Return ``slots`` less the one named ``slot_id``.

    Raises:
        NotFoundError: no slot has that id.
        ConflictError: it is the last slot (the repository would open with no password).
    """
    every = tuple(slots)
    kept = tuple(slot for slot in every if slot.slot_id != slot_id)
    if len(kept) == len(every):
        raise NotFoundError(f"no key slot {slot_id}")
    if not kept:
        raise ConflictError(f"key slot {slot_id} is the last one: add another before removing it")
    return kept


# --------------------------------------------------------------------------
# The host-local key cache


def _cache_key(password: bytes, salt: bytes) -> bytes:
    """The key of a cache entry: HKDF-SHA256 over the password (cheap: the entry never leaves the host)."""
    return HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=salt, info=_CACHE_INFO).derive(password)


def _slot_digest(slot: KeySlot) -> bytes:
    digest: bytes = blake3.blake3(slot.encode()).digest()
    return digest


def seal_key_cache(master_key: bytes, slot: KeySlot, password: bytes) -> bytes:
    """Return a key-cache entry: ``master_key``, bound to ``slot`` (id and bytes) and to ``password``.

    ``CACHE_BYTES`` long. The caller keeps it on the host only, readable by
    its owner alone, and drops it when it likes; ``open_key_cache`` refuses
    it once the slot is removed or changed, or for another password.
    """
    salt = os.urandom(KDF_SALT_BYTES)
    nonce = os.urandom(NONCE_BYTES)
    head = _CACHE_HEAD.pack(CACHE_MAGIC, CACHE_VERSION, bytes.fromhex(slot.slot_id), _slot_digest(slot), salt)
    return head + nonce + AESGCM(_cache_key(password, salt)).encrypt(nonce, master_key, head)


def open_key_cache(entry: bytes, slots: Iterable[KeySlot], password: bytes) -> Unlocked | None:
    """Return the master key a cache entry holds, or None if it cannot be used (then open a slot).

    None when the entry is damaged or of another format, when its slot is no
    longer among ``slots`` or has changed, or when ``password`` is not the
    one that sealed it: a cache only ever saves a KDF, it never decides
    that a password is wrong.
    """
    if len(entry) != CACHE_BYTES:
        return None
    magic, version, raw_id, digest, salt = _CACHE_HEAD.unpack_from(entry)
    if magic != CACHE_MAGIC or version != CACHE_VERSION:
        return None
    slot = next((slot for slot in slots if slot.slot_id == raw_id.hex()), None)
    if slot is None or _slot_digest(slot) != digest:  # public bytes: no need for a constant-time compare
        return None
    nonce = entry[_CACHE_HEAD.size : _CACHE_HEAD.size + NONCE_BYTES]
    try:
        master_key = AESGCM(_cache_key(password, salt)).decrypt(
            nonce, entry[_CACHE_HEAD.size + NONCE_BYTES :], entry[: _CACHE_HEAD.size]
        )
    except InvalidTag:
        return None
    return Unlocked(master_key, slot.slot_id)
