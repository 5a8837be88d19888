"""crypto/keys.py: subkeys by HKDF-SHA256 with one label per purpose, and keyed BLAKE3 object ids."""

from __future__ import annotations

import blake3
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from hypothesis import given
from hypothesis import strategies as st

from zerofs.crypto.keys import LABELS, MASTER_KEY_BYTES, Keys, derive_subkey, new_master_key
from zerofs.crypto.sealing import AeadKey
from zerofs.objects import Kind, object_id

MASTER = bytes(range(32))

KNOWN = {
    "id": "96aa35fa0f20a367deb5c4cc5596ae7fbb79f1e1860f04d8f3cb28b0ff508756",
    "chunker": "261fdb6842c452fa789706507348d8de9078f43198e6ff5e1fb8b93cad94452f",
    "data": "c3c76a011999cac9e95a355ae238a9c496ac801a60807e5b20477c8c793d21c3",
    "meta": "50ac344ddb1235545108fcb78fe8c13e1b60dc522d551af02f9481b50d458ed9",
}
"""The subkeys of MASTER, written down from one run."""
KNOWN_CHUNK_ID = "94bff59590117c4f9afdb9d651b46cebce536a5e9de874863e73006832108fec"
"""``Keys.derive(MASTER).object_id(Kind.CHUNK, b"hello")``, written down from one run."""


def test_known_answers() -> None:
    keys = Keys.derive(MASTER)
    found = {
        "id": keys.id_key,
        "chunker": keys.chunker_seed,
        "data": keys.data.key_bytes,
        "meta": keys.meta.key_bytes,
    }
    assert {purpose: key.hex() for purpose, key in found.items()} == KNOWN
    assert keys.object_id(Kind.CHUNK, b"hello").hex() == KNOWN_CHUNK_ID


@pytest.mark.parametrize("purpose", sorted(LABELS))
def test_subkeys_match_the_library_hkdf(purpose: str) -> None:
    info = b"zerofs/v1/key:" + purpose.encode()
    expected = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(MASTER)
    assert derive_subkey(MASTER, purpose) == expected
    assert expected.hex() == KNOWN[purpose]


def test_keyed_id_matches_keyed_blake3_over_kind_and_body() -> None:
    keys = Keys.derive(MASTER)
    expected = blake3.blake3(bytes((Kind.CHUNK,)) + b"hello", key=keys.id_key).digest()
    assert keys.object_id(Kind.CHUNK, b"hello") == expected


@given(kind=st.sampled_from(list(Kind)), body=st.binary(max_size=2000))
def test_keyed_ids_keep_the_domain_separation_and_hide_the_plain_id(kind: Kind, body: bytes) -> None:
    keys = Keys.derive(MASTER)
    keyed = keys.object_id(kind, body)
    assert keyed == keys.object_id(kind, memoryview(body))  # equal content, equal id: dedup still works
    assert keyed != object_id(kind, body)
    other_kind = Kind.FILE if kind != Kind.FILE else Kind.DIR
    assert keyed != keys.object_id(other_kind, body)
    assert keyed != Keys.derive(bytes(reversed(MASTER))).object_id(kind, body)


def test_every_purpose_has_its_own_key() -> None:
    keys = Keys.derive(new_master_key())
    subkeys = {keys.id_key, keys.chunker_seed, keys.data.key_bytes, keys.meta.key_bytes}
    assert len(subkeys) == 4
    assert all(len(key) == 32 for key in subkeys)


def test_master_keys_are_random() -> None:
    keys = {new_master_key() for _ in range(100)}
    assert len(keys) == 100
    assert all(len(key) == MASTER_KEY_BYTES for key in keys)


def test_keys_derive_the_same_value_twice() -> None:
    first, second = Keys.derive(MASTER), Keys.derive(MASTER)
    assert (first.id_key, first.chunker_seed) == (second.id_key, second.chunker_seed)
    assert first.data.key_bytes == second.data.key_bytes == AeadKey(bytes.fromhex(KNOWN["data"])).key_bytes
    assert first.meta.key_bytes == second.meta.key_bytes


def test_keys_never_show_in_a_repr() -> None:
    text = repr(Keys.derive(MASTER)) + str(Keys.derive(MASTER))
    assert text == "Keys(<secret>)" * 2
    assert all(value not in text for value in KNOWN.values())


def test_a_master_key_of_another_length_is_a_bug() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        Keys.derive(b"short")
