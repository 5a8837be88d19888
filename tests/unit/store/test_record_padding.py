"""Padding of sealed records (issue #15): Padmé lengths, round trips, and a length or padding that was tampered with."""

from __future__ import annotations

import struct

import blake3
import pytest
from hypothesis import given
from hypothesis import strategies as st

from zerofs.crypto.keys import Keys
from zerofs.crypto.sealing import AuthenticationError, chunk_ad, node_ad, seal
from zerofs.errors import DamagedObjectError
from zerofs.objects import Kind
from zerofs.store.codec import CODEC_RAW, Record, decode_record, encode_record
from zerofs.store.sealer import Sealer, padded_length, sealed_record_bytes

KEYS = Keys.derive(bytes(range(32)))
HEAD = struct.Struct("<BBII")
"""kind, codec, raw length, payload length: the sealed plaintext's head."""


@pytest.mark.parametrize(
    ("length", "padded"),
    [
        (0, 0),
        (1, 1),
        (3, 3),
        (10, 10),
        (11, 12),
        (129, 144),  # bit 7 is the highest: keep 3 bits, a multiple of 16; the worst case, 11.6%
        (1000, 1024),
        (4097, 4352),  # 4-8 KiB: a multiple of 256
        (65537, 67584),  # 64-128 KiB: a multiple of 2 KiB
        (80000, 81920),
        (262144, 262144),
    ],
)
def test_padded_length_known_values(length: int, padded: int) -> None:
    assert padded_length(length) == padded


@given(st.integers(2, 1 << 33))
def test_padded_length_keeps_only_the_top_bits_and_costs_little(length: int) -> None:
    padded = padded_length(length)
    exponent = length.bit_length() - 1
    kept_bits = exponent.bit_length()
    assert padded >= length
    assert padded_length(padded) == padded
    assert padded % (1 << (exponent - kept_bits)) == 0  # only the top kept_bits bits can be set
    assert padded.bit_length() - (padded & -padded).bit_length() < kept_bits + 1
    assert (padded - length) / length < 2.0**-kept_bits
    assert padded - length < 0.117 * length


def test_chunk_sizes_leave_few_distinct_sealed_lengths() -> None:
    # Default chunks are 16 KiB to 256 KiB: 245,761 lengths before padding.
    assert len({sealed_record_bytes(n) for n in range(16 << 10, (256 << 10) + 1)}) == 97


@given(st.sampled_from(list(Kind)), st.binary(max_size=20_000), st.integers(0, 3))
def test_padded_records_round_trip(kind: Kind, body: bytes, level: int) -> None:
    one = Sealer(KEYS)
    object_id = KEYS.object_id(kind, body)
    record = encode_record(kind, body, level)
    sealed = one.seal_record(object_id, record)
    assert len(sealed) == sealed_record_bytes(len(record.payload))
    assert len(sealed) >= len(record.payload) + HEAD.size + 45
    opened = one.open_record(object_id, sealed, kind)
    assert (opened.kind, opened.codec, opened.raw_bytes, bytes(opened.payload)) == (
        kind,
        record.codec,
        record.raw_bytes,
        bytes(record.payload),
    )
    assert decode_record(object_id, one.open_record(object_id, sealed), KEYS.object_id) == body


def forged(kind: Kind, object_id: bytes, record: Record, payload_bytes: int, padding: bytes) -> bytes:
    """A record sealed with the right key and place by a writer that lies about its length or padding."""
    key, ad = (KEYS.data, chunk_ad(object_id)) if kind is Kind.CHUNK else (KEYS.meta, node_ad(kind, object_id))
    head = HEAD.pack(kind, record.codec, record.raw_bytes, payload_bytes)
    return seal(key, head + bytes(record.payload) + padding, ad=ad)


BODY = blake3.blake3(b"padding test body").digest(length=1028)
"""1,028 random bytes (zstd does not shrink them): stored raw, 1,038 bytes with the head, padded to 1,088."""


@pytest.mark.parametrize(
    ("payload_bytes", "padding"),
    [
        (len(BODY) + 1, bytes(50)),  # one byte of the padding claimed as payload: canonical, but the id fails
        (len(BODY) - 1, bytes(50)),  # the payload's last byte claimed as padding
        (len(BODY), bytes(49) + b"\x01"),  # padding that is not zeros
        (len(BODY), bytes(49)),  # padding one byte short
        (len(BODY), bytes(51)),  # padding one byte long
        (len(BODY) + 100, bytes(50)),  # a length past the end
    ],
)
def test_a_record_whose_length_or_padding_was_tampered_with_is_refused(payload_bytes: int, padding: bytes) -> None:
    object_id = KEYS.object_id(Kind.CHUNK, BODY)
    record = encode_record(Kind.CHUNK, BODY, 3)
    assert record.codec == CODEC_RAW
    assert len(Sealer(KEYS).seal_record(object_id, record)) == 1088 + 45
    sealed = forged(Kind.CHUNK, object_id, record, payload_bytes, padding)
    with pytest.raises(DamagedObjectError, match=r"padded otherwise|does not match its hash"):
        decode_record(object_id, Sealer(KEYS).open_record(object_id, sealed, Kind.CHUNK), KEYS.object_id)
    honest = forged(Kind.CHUNK, object_id, record, len(BODY), bytes(50))
    assert bytes(Sealer(KEYS).open_record(object_id, honest, Kind.CHUNK).payload) == BODY


@pytest.mark.parametrize("bit", range(32))
def test_a_flipped_bit_in_the_sealed_length_fails_authentication(bit: int) -> None:
    object_id = KEYS.object_id(Kind.DIR, BODY)
    sealed = bytearray(Sealer(KEYS).seal_record(object_id, encode_record(Kind.DIR, BODY, 3)))
    sealed[29 + 6 + bit // 8] ^= 1 << (bit % 8)  # the payload length, under the cipher (after version, salt, nonce)
    with pytest.raises(AuthenticationError):
        Sealer(KEYS).open_record(object_id, bytes(sealed), Kind.DIR)
