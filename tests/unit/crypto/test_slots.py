"""crypto/slots.py: key slots under argon2id, their format, wrong passwords, removal, and the key cache."""

from __future__ import annotations

import pytest
from argon2.low_level import Type, hash_secret_raw
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import given
from hypothesis import strategies as st

from zerofs.crypto import slots
from zerofs.crypto.keys import new_master_key
from zerofs.crypto.slots import (
    CACHE_BYTES,
    DEFAULT_KDF,
    MAX_MEMORY_KIB,
    SLOT_BYTES,
    KdfParams,
    KeySlot,
    KeySlotError,
    Unlocked,
    make_slot,
    open_any,
    open_key_cache,
    open_slot,
    seal_key_cache,
    without_slot,
    wrapping_key,
)
from zerofs.errors import ConflictError, CorruptionError, NotFoundError, UsageError, WrongPasswordError, ZerofsError

MASTER = bytes(range(32))
PASSWORD = b"correct horse"
CHEAP = KdfParams(time_cost=1, memory_kib=8, parallelism=1)
"""argon2id's smallest parameters: the tests exercise the format, not the cost."""
SALT = bytes(range(16))
NONCE = bytes(range(50, 62))

KNOWN_SLOT = bytes.fromhex(
    "5a464b5301001122334455667701010000000800000001000000000102030405060708090a0b0c0d0e0f32333435363738393a3b3c3d"
    "da58a1cdff800ff00c5f6413c7bf46ba37fe648dc61ac4eee233e474e7ec82c3ef56f213cf39379d626c4eaa5e8a6890"
)
"""MASTER wrapped under PASSWORD with CHEAP, slot id 0011223344556677, SALT and NONCE: written down from one run."""
KNOWN_WRAPPING_KEY = "3bfa796a86260b73457e1290b51695931a17e266f601d0fb45563e282fb6865b"


def known_slot() -> KeySlot:
    return slots._make_slot(MASTER, PASSWORD, CHEAP, slot_id="0011223344556677", salt=SALT, nonce=NONCE)


def test_known_answer() -> None:
    assert known_slot().encode() == KNOWN_SLOT
    assert wrapping_key(PASSWORD, CHEAP, SALT).hex() == KNOWN_WRAPPING_KEY
    assert open_slot(KeySlot.decode(KNOWN_SLOT), PASSWORD) == MASTER


def test_known_answer_matches_the_library_primitives() -> None:
    """The layout and the wrapping, computed independently with argon2id and AES-256-GCM."""
    key = hash_secret_raw(PASSWORD, SALT, time_cost=1, memory_cost=8, parallelism=1, hash_len=32, type=Type.ID)
    assert key.hex() == KNOWN_WRAPPING_KEY
    header = (
        b"ZFKS\x01"
        + bytes.fromhex("0011223344556677")
        + b"\x01"
        + (1).to_bytes(4, "little")
        + (8).to_bytes(4, "little")
        + (1).to_bytes(4, "little")
        + SALT
    )
    assert header + NONCE + AESGCM(key).encrypt(NONCE, MASTER, header) == KNOWN_SLOT
    assert len(KNOWN_SLOT) == SLOT_BYTES == 102


slot_values = st.builds(
    KeySlot,
    slot_id=st.binary(min_size=8, max_size=8).map(bytes.hex),
    params=st.builds(
        KdfParams,
        time_cost=st.integers(1, 64),
        memory_kib=st.integers(512, MAX_MEMORY_KIB),
        parallelism=st.integers(1, 64),
    ),
    salt=st.binary(min_size=16, max_size=16),
    nonce=st.binary(min_size=12, max_size=12),
    wrapped=st.binary(min_size=48, max_size=48),
)


@given(slot=slot_values)
def test_encode_decode_round_trip(slot: KeySlot) -> None:
    encoded = slot.encode()
    assert len(encoded) == SLOT_BYTES
    assert KeySlot.decode(encoded) == slot


@given(master=st.binary(min_size=32, max_size=32), password=st.binary(min_size=1, max_size=64))
def test_make_open_round_trip(master: bytes, password: bytes) -> None:
    slot = make_slot(master, password, CHEAP)
    assert open_slot(KeySlot.decode(slot.encode()), password) == master


def test_each_slot_has_its_own_id_salt_and_nonce() -> None:
    made = [make_slot(MASTER, PASSWORD, CHEAP) for _ in range(20)]
    assert len({slot.slot_id for slot in made}) == len({slot.salt for slot in made}) == 20
    assert all(len(slot.slot_id) == 16 and int(slot.slot_id, 16) >= 0 for slot in made)


@given(data=st.data())
def test_a_flipped_bit_anywhere_in_a_slot_is_refused(data: st.DataObject) -> None:
    original = known_slot()
    encoded = bytearray(original.encode())
    bit = data.draw(st.integers(0, len(encoded) * 8 - 1), label="bit")
    encoded[bit // 8] ^= 1 << (bit % 8)
    try:
        tampered = KeySlot.decode(bytes(encoded))
    except KeySlotError:
        return
    assert tampered != original
    if tampered.params.memory_kib <= 16 * 1024:
        with pytest.raises(WrongPasswordError):
            open_slot(tampered, PASSWORD)
    else:
        # The flip asks the KDF for up to 4 GiB: check the binding that refuses it without running the KDF,
        # with the very key the password derives from the untampered parameters.
        with pytest.raises(InvalidTag):
            AESGCM(wrapping_key(PASSWORD, CHEAP, SALT)).decrypt(tampered.nonce, tampered.wrapped, tampered.header())


@pytest.mark.parametrize("length", [0, 1, 4, 41, 54, 101])
def test_a_cut_slot_fails_with_a_clear_error(length: int) -> None:
    with pytest.raises(
        KeySlotError, match=f"key slot is {length} bytes, a version-1 slot is 102: cut short or damaged"
    ):
        KeySlot.decode(KNOWN_SLOT[:length])


@given(length=st.integers(0, SLOT_BYTES - 1))
def test_every_cut_of_a_slot_is_refused(length: int) -> None:
    with pytest.raises(KeySlotError):
        KeySlot.decode(KNOWN_SLOT[:length])


def test_a_longer_slot_is_refused() -> None:
    with pytest.raises(KeySlotError, match="103 bytes"):
        KeySlot.decode(KNOWN_SLOT + b"\0")


@pytest.mark.parametrize(
    ("offset", "value", "message"),
    [
        (0, b"X", "bad magic"),
        (4, b"\x02", "unsupported version 2"),
        (13, b"\x02", "unknown KDF 2"),
        (14, (0).to_bytes(4, "little"), "time cost 0"),
        (14, (65).to_bytes(4, "little"), "time cost 65"),
        (18, (7).to_bytes(4, "little"), "memory 7 KiB"),
        (18, (MAX_MEMORY_KIB + 1).to_bytes(4, "little"), "memory 4194305 KiB"),
        (22, (0).to_bytes(4, "little"), "parallelism 0"),
        (22, (2).to_bytes(4, "little"), "memory 8 KiB is outside 16"),
    ],
)
def test_a_slot_outside_the_format_is_refused(offset: int, value: bytes, message: str) -> None:
    damaged = KNOWN_SLOT[:offset] + value + KNOWN_SLOT[offset + len(value) :]
    with pytest.raises(KeySlotError, match=message):
        KeySlot.decode(damaged)


def test_a_wrong_password_raises_and_changes_nothing() -> None:
    slot = make_slot(MASTER, PASSWORD, CHEAP)
    before = slot.encode()
    with pytest.raises(WrongPasswordError, match=f"wrong password for key slot {slot.slot_id}") as raised:
        open_slot(slot, b"correct horse!")
    assert PASSWORD.decode() not in str(raised.value)
    assert MASTER.hex() not in str(raised.value)
    assert slot.encode() == before
    assert open_slot(slot, PASSWORD) == MASTER


def test_wrong_password_error_has_its_own_exit_code() -> None:
    assert issubclass(WrongPasswordError, ZerofsError)
    assert not issubclass(WrongPasswordError, CorruptionError)
    assert WrongPasswordError.exit_code == 12
    assert issubclass(KeySlotError, CorruptionError)


def test_open_any_finds_the_slot_of_each_password() -> None:
    master = new_master_key()
    first, second = make_slot(master, b"first", CHEAP), make_slot(master, b"second", CHEAP)
    assert open_any([first, second], b"first") == Unlocked(master, first.slot_id)
    assert open_any([first, second], b"second") == Unlocked(master, second.slot_id)
    with pytest.raises(WrongPasswordError, match="none of the 2 key slots opens with it"):
        open_any([first, second], b"third")


def test_open_any_without_slots_is_an_error() -> None:
    with pytest.raises(KeySlotError, match="no key slots"):
        open_any([], PASSWORD)


def test_a_removed_slot_makes_its_password_useless() -> None:
    master = new_master_key()
    kept, removed = make_slot(master, b"kept", CHEAP), make_slot(master, b"removed", CHEAP)
    stored = [slot.encode() for slot in without_slot([kept, removed], removed.slot_id)]
    remaining = [KeySlot.decode(raw) for raw in stored]
    with pytest.raises(WrongPasswordError):
        open_any(remaining, b"removed")
    assert open_any(remaining, b"kept").master_key == master


def test_removing_an_unknown_or_the_last_slot_is_refused() -> None:
    only = make_slot(MASTER, PASSWORD, CHEAP)
    with pytest.raises(NotFoundError, match="no key slot 0000000000000000"):
        without_slot([only], "0000000000000000")
    with pytest.raises(ConflictError, match="is the last one"):
        without_slot(iter([only]), only.slot_id)


def test_an_empty_password_is_refused() -> None:
    with pytest.raises(UsageError, match="the password is empty"):
        make_slot(MASTER, b"", CHEAP)


def test_parameters_out_of_bounds_are_refused_when_making_a_slot() -> None:
    with pytest.raises(UsageError, match=r"KDF time cost 0 is outside 1\.\.64"):
        make_slot(MASTER, PASSWORD, KdfParams(0, 8, 1))
    with pytest.raises(UsageError, match=r"KDF memory 8 KiB is outside 32\.\.4194304"):
        make_slot(MASTER, PASSWORD, KdfParams(1, 8, 4))


def test_the_default_parameters_are_rfc_9106s_second_option() -> None:
    assert KdfParams(time_cost=3, memory_kib=65536, parallelism=4) == DEFAULT_KDF
    assert DEFAULT_KDF.problem() is None


def test_secrets_never_show_in_a_repr() -> None:
    text = repr(Unlocked(MASTER, "0011223344556677"))
    assert MASTER.hex() not in text
    assert repr(MASTER) not in text
    assert "0011223344556677" in text


# --------------------------------------------------------------------------
# The key cache


def test_the_key_cache_opens_with_the_same_password_and_slot() -> None:
    slot = make_slot(MASTER, PASSWORD, CHEAP)
    entry = seal_key_cache(MASTER, slot, PASSWORD)
    assert len(entry) == CACHE_BYTES
    assert MASTER not in entry
    assert open_key_cache(entry, [slot], PASSWORD) == Unlocked(MASTER, slot.slot_id)


def test_the_key_cache_refuses_another_password() -> None:
    slot = make_slot(MASTER, PASSWORD, CHEAP)
    assert open_key_cache(seal_key_cache(MASTER, slot, PASSWORD), [slot], b"other") is None


def test_the_key_cache_is_useless_once_its_slot_is_removed() -> None:
    slot, other = make_slot(MASTER, PASSWORD, CHEAP), make_slot(MASTER, b"other", CHEAP)
    entry = seal_key_cache(MASTER, slot, PASSWORD)
    assert open_key_cache(entry, without_slot([slot, other], slot.slot_id), PASSWORD) is None


def test_the_key_cache_is_useless_once_its_slot_changes() -> None:
    """``key passwd`` rewrapping under the same id (new salt) must not leave the old password's cache usable."""
    slot = make_slot(MASTER, PASSWORD, CHEAP)
    entry = seal_key_cache(MASTER, slot, PASSWORD)
    rewrapped = slots._make_slot(MASTER, b"new", CHEAP, slot_id=slot.slot_id, salt=bytes(16), nonce=bytes(12))
    assert open_key_cache(entry, [rewrapped], PASSWORD) is None


@given(data=st.data())
def test_a_damaged_key_cache_is_ignored(data: st.DataObject) -> None:
    slot = known_slot()
    entry = bytearray(seal_key_cache(MASTER, slot, PASSWORD))
    bit = data.draw(st.integers(0, len(entry) * 8 - 1), label="bit")
    entry[bit // 8] ^= 1 << (bit % 8)
    assert open_key_cache(bytes(entry), [slot], PASSWORD) is None
    end = data.draw(st.integers(0, CACHE_BYTES - 1), label="end")
    assert open_key_cache(bytes(entry[:end]), [slot], PASSWORD) is None
