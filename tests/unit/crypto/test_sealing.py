"""crypto/sealing.py: the blob format's known answer, nonces that never repeat, and every tampering refused."""

from __future__ import annotations

import os
import signal

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from hypothesis import given
from hypothesis import strategies as st

from zerofs.crypto import sealing
from zerofs.crypto.sealing import (
    HEADER_BYTES,
    NONCE_BYTES,
    OVERHEAD_BYTES,
    SALT_BYTES,
    SESSION_SEALS,
    AeadKey,
    AuthenticationError,
    chunk_ad,
    index_ad,
    location_ad,
    node_ad,
    open_sealed,
    pack_trailer_ad,
    ref_ad,
    seal,
)
from zerofs.errors import CorruptionError, DamagedObjectError

KEY = bytes(range(32))
SALT = bytes(range(100, 116))
ID = bytes(range(200, 232))
PLAINTEXT = b"zerofs sealed blob"

KNOWN_BLOB = bytes.fromhex(
    "016465666768696a6b6c6d6e6f707172730000000000000000000000054f3acc5e20360336e30b28c05154f7741f8707606c7cce9c0a783e4b39cfdce8db68"
)
"""``_seal_with`` of PLAINTEXT under KEY, session SALT, counter 5, ``chunk_ad(ID)``: written down from one run."""


@pytest.fixture
def key() -> AeadKey:
    return AeadKey(os.urandom(32))


def test_known_answer() -> None:
    key = AeadKey(KEY)
    blob = sealing._seal_with(key.opener(SALT), SALT, 5, PLAINTEXT, chunk_ad(ID))
    assert blob == KNOWN_BLOB
    assert open_sealed(key, KNOWN_BLOB, ad=chunk_ad(ID)) == PLAINTEXT


def test_known_answer_matches_the_library_primitives() -> None:
    """The format, computed independently: HKDF-SHA256 session key, AES-256-GCM, header + ad as associated data."""
    session = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"zerofs/v1/session:" + SALT).derive(KEY)
    nonce = (5).to_bytes(12, "big")
    header = b"\x01" + SALT + nonce
    ad = b"zerofs/v1/ad:chunk" + len(ID).to_bytes(4, "little") + ID
    assert chunk_ad(ID) == ad
    assert header + AESGCM(session).encrypt(nonce, PLAINTEXT, header + ad) == KNOWN_BLOB


def test_blob_layout_and_overhead(key: AeadKey) -> None:
    blob = seal(key, b"x" * 1000, ad=b"a")
    assert len(blob) == 1000 + OVERHEAD_BYTES == 1000 + 45
    assert blob[0] == 1
    assert HEADER_BYTES == 1 + SALT_BYTES + NONCE_BYTES


@given(plaintext=st.binary(max_size=5000), ad=st.binary(max_size=100))
def test_round_trip(plaintext: bytes, ad: bytes) -> None:
    key = AeadKey(KEY)
    assert open_sealed(key, seal(key, plaintext, ad=ad), ad=ad) == plaintext


def test_round_trip_of_buffers(key: AeadKey) -> None:
    data = bytearray(os.urandom(70_000))
    blob = seal(key, memoryview(data), ad=b"x")
    assert open_sealed(key, memoryview(bytearray(blob)), ad=b"x") == data


def test_another_key_of_the_same_bytes_opens_it() -> None:
    """A reader (another process) derives the writer's session key from the salt in the blob."""
    blob = seal(AeadKey(KEY), PLAINTEXT, ad=b"x")
    assert open_sealed(AeadKey(KEY), blob, ad=b"x") == PLAINTEXT


@given(data=st.data(), plaintext=st.binary(max_size=300))
def test_a_flipped_bit_anywhere_is_detected(data: st.DataObject, plaintext: bytes) -> None:
    key = AeadKey(KEY)
    blob = bytearray(seal(key, plaintext, ad=chunk_ad(ID)))
    bit = data.draw(st.integers(0, len(blob) * 8 - 1), label="bit")
    blob[bit // 8] ^= 1 << (bit % 8)
    with pytest.raises(AuthenticationError):
        open_sealed(key, bytes(blob), ad=chunk_ad(ID))


@given(data=st.data(), plaintext=st.binary(max_size=300))
def test_a_cut_blob_is_detected(data: st.DataObject, plaintext: bytes) -> None:
    key = AeadKey(KEY)
    blob = seal(key, plaintext, ad=b"x")
    end = data.draw(st.integers(0, len(blob) - 1), label="end")
    with pytest.raises(AuthenticationError):
        open_sealed(key, blob[:end], ad=b"x")
    with pytest.raises(AuthenticationError):
        open_sealed(key, blob[len(blob) - end :], ad=b"x")


def test_an_extended_blob_is_detected(key: AeadKey) -> None:
    blob = seal(key, PLAINTEXT, ad=b"x")
    with pytest.raises(AuthenticationError):
        open_sealed(key, blob + b"\0", ad=b"x")


def test_a_swapped_pair_of_blobs_is_detected(key: AeadKey) -> None:
    other = bytes(reversed(ID))
    blob_a = seal(key, b"chunk a", ad=chunk_ad(ID))
    blob_b = seal(key, b"chunk b", ad=chunk_ad(other))
    with pytest.raises(AuthenticationError):
        open_sealed(key, blob_b, ad=chunk_ad(ID))
    with pytest.raises(AuthenticationError):
        open_sealed(key, blob_a, ad=chunk_ad(other))


def test_a_pack_trailer_replayed_under_another_name_is_detected(key: AeadKey) -> None:
    trailer = seal(key, b"offsets", ad=pack_trailer_ad(b"a" * 16))
    with pytest.raises(AuthenticationError):
        open_sealed(key, trailer, ad=pack_trailer_ad(b"b" * 16))


def test_an_old_ref_value_replayed_is_detected(key: AeadKey) -> None:
    old = seal(key, b"commit 1", ad=ref_ad("HEAD", 4))
    assert open_sealed(key, old, ad=ref_ad("HEAD", 4)) == b"commit 1"
    with pytest.raises(AuthenticationError):
        open_sealed(key, old, ad=ref_ad("HEAD", 5))
    with pytest.raises(AuthenticationError):
        open_sealed(key, old, ad=ref_ad("GRAFTS", 4))


def test_a_node_under_another_kind_is_detected(key: AeadKey) -> None:
    blob = seal(key, b"node", ad=node_ad(4, ID))
    with pytest.raises(AuthenticationError):
        open_sealed(key, blob, ad=node_ad(2, ID))


def test_a_blob_of_another_key_is_detected(key: AeadKey) -> None:
    blob = seal(key, PLAINTEXT, ad=b"x")
    with pytest.raises(AuthenticationError):
        open_sealed(AeadKey(KEY), blob, ad=b"x")


def test_an_unknown_version_is_detected(key: AeadKey) -> None:
    blob = seal(key, PLAINTEXT, ad=b"x")
    with pytest.raises(AuthenticationError, match="unknown version 2"):
        open_sealed(key, b"\x02" + blob[1:], ad=b"x")


def test_authentication_error_is_damage() -> None:
    assert issubclass(AuthenticationError, DamagedObjectError)
    assert AuthenticationError.exit_code == CorruptionError.exit_code == 6


@given(
    places=st.lists(
        st.one_of(
            st.tuples(st.just("chunk"), st.binary(max_size=40)),
            st.tuples(st.just("node"), st.integers(0, 255), st.binary(max_size=40)),
            st.tuples(st.just("ref"), st.text(max_size=20), st.integers(0, 2**64 - 1)),
            st.tuples(st.just("index"), st.text(max_size=20)),
            st.tuples(st.just("trailer"), st.binary(max_size=40)),
        ),
        min_size=2,
        max_size=2,
        unique=True,
    )
)
def test_different_places_have_different_associated_data(places: list[tuple[object, ...]]) -> None:
    builders = {"chunk": chunk_ad, "node": node_ad, "ref": ref_ad, "index": index_ad, "trailer": pack_trailer_ad}
    first, second = (builders[str(place[0])](*place[1:]) for place in places)  # type: ignore[operator]
    assert first != second


def test_nonces_never_repeat_within_a_writer(key: AeadKey) -> None:
    headers = {seal(key, b"", ad=b"")[:HEADER_BYTES] for _ in range(5000)}
    assert len(headers) == 5000
    assert len({header[1 : 1 + SALT_BYTES] for header in headers}) == 1
    counters = sorted(int.from_bytes(header[1 + SALT_BYTES :], "big") for header in headers)
    assert counters == list(range(5000))


def test_each_writer_has_its_own_session() -> None:
    first = seal(AeadKey(KEY), b"", ad=b"")
    second = seal(AeadKey(KEY), b"", ad=b"")
    assert first[1 : 1 + SALT_BYTES] != second[1 : 1 + SALT_BYTES]


def test_a_forked_child_starts_its_own_session(key: AeadKey) -> None:
    parent_before = seal(key, b"", ad=b"")
    child = seal_in_child(key)
    parent_after = seal(key, b"", ad=b"")
    assert open_sealed(key, child, ad=b"") == b"child"
    assert child[1 : 1 + SALT_BYTES] != parent_before[1 : 1 + SALT_BYTES]
    assert parent_after[1 : 1 + SALT_BYTES] == parent_before[1 : 1 + SALT_BYTES]


def seal_in_child(key: AeadKey) -> bytes:
    """Fork; the child seals b"child" and sends the blob back (or is killed by an alarm after 5 s); return it."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: leave without running pytest's teardown
        try:
            signal.alarm(5)
            os.write(write_end, seal(key, b"child", ad=b""))
        finally:
            os._exit(0)
    os.close(write_end)
    blob = os.read(read_end, 1000)
    os.close(read_end)
    os.waitpid(pid, 0)
    return blob


def test_a_child_forked_while_a_thread_seals_can_seal(key: AeadKey) -> None:
    """The parent's lock may be held at the fork (another thread sealing): the child gets a lock of its own."""
    with key._lock:
        blob = seal_in_child(key)
    assert open_sealed(key, blob, ad=b"") == b"child"


def test_a_session_ends_before_its_counter_could_wrap(key: AeadKey) -> None:
    first = seal(key, b"", ad=b"")
    assert key._session is not None
    key._session.next_counter = SESSION_SEALS  # as if this writer had sealed 2**32 blobs
    rotated = seal(key, b"", ad=b"")
    assert rotated[1 : 1 + SALT_BYTES] != first[1 : 1 + SALT_BYTES]
    assert int.from_bytes(rotated[1 + SALT_BYTES : HEADER_BYTES], "big") == 0
    assert open_sealed(key, first, ad=b"") == open_sealed(key, rotated, ad=b"") == b""


def test_keys_never_show_in_a_repr() -> None:
    assert KEY.hex() not in repr(AeadKey(KEY))
    assert repr(AeadKey(KEY)) == "AeadKey(<secret>)"


def test_a_key_of_another_length_is_a_bug() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        AeadKey(b"short")


@given(st.binary(min_size=0, max_size=64))
def test_the_fast_ad_of_a_chunk_or_location_is_the_general_one(object_id: bytes) -> None:
    assert chunk_ad(object_id) == sealing._ad(b"chunk", object_id)
    assert location_ad(object_id) == sealing._ad(b"location", object_id)
