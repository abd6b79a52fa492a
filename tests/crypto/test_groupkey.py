"""Group keys: HKDF data keys per epoch, key commitments, sealing."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ringward.crypto import GroupKey, Identity
from ringward.crypto.groupkey import COMMITMENT_PERSON, DATA_KEY_INFO, DATA_KEY_SALT
from ringward.errors import ConfigError, CryptoError

KEY = GroupKey(bytes(range(32)))


def _naive_hkdf_sha256(ikm: bytes, salt: bytes, info: bytes, length: int) -> bytes:
    """RFC 5869 written out, to check cryptography's HKDF use differentially."""
    prk = hmac.new(salt, ikm, hashlib.sha256).digest()
    out, block = b"", b""
    for counter in range(1, -(-length // 32) + 1):
        block = hmac.new(prk, block + info + bytes([counter]), hashlib.sha256).digest()
        out += block
    return out[:length]


@given(st.binary(min_size=32, max_size=32), st.integers(0, (1 << 64) - 1))
def test_data_key_matches_rfc5869(raw: bytes, epoch: int) -> None:
    expected = _naive_hkdf_sha256(raw, DATA_KEY_SALT, DATA_KEY_INFO + epoch.to_bytes(8, "big"), 32)
    assert GroupKey(raw).data_key(epoch) == expected


def test_data_keys_differ_per_epoch_and_key() -> None:
    keys = {KEY.data_key(e) for e in range(100)}
    assert len(keys) == 100
    assert GroupKey(b"\x01" * 32).data_key(0) != KEY.data_key(0)
    assert len(KEY.data_key(0)) == 32
    assert KEY.data_key(7) == GroupKey(bytes(range(32))).data_key(7)


@pytest.mark.parametrize("epoch", [-1, 1 << 64, True, 1.0])
def test_bad_epoch(epoch: object) -> None:
    with pytest.raises(ConfigError):
        KEY.data_key(epoch)  # type: ignore[arg-type]


def test_commitment() -> None:
    c = KEY.commitment(b"ring 1/7")
    assert len(c) == 32
    assert (
        c
        == hashlib.blake2b(
            b"ring 1/7", key=bytes(range(32)), digest_size=32, person=COMMITMENT_PERSON
        ).digest()
    )
    assert c != KEY.commitment(b"ring 1/8")
    assert c != GroupKey(b"\x00" * 32).commitment(b"ring 1/7")
    KEY.check_commitment(b"ring 1/7", c)
    with pytest.raises(CryptoError) as info:
        GroupKey(b"\x00" * 32).check_commitment(b"ring 1/7", c)
    assert info.value.reason == "bad_commitment"
    with pytest.raises(CryptoError):
        KEY.check_commitment(b"ring 1/8", c)


def test_generate_seal_open() -> None:
    key = GroupKey.generate()
    assert key != GroupKey.generate()
    member = Identity.generate()
    sealed = key.seal_to(member.encryption_key)
    assert len(sealed) == 80
    assert GroupKey.open_sealed(member, sealed) == key
    with pytest.raises(CryptoError):
        GroupKey.open_sealed(Identity.generate(), sealed)


def test_secret_never_shown_and_not_hashable() -> None:
    raw = bytes(range(32))
    assert raw.hex() not in repr(KEY) + str(KEY)
    assert "<secret>" in repr(KEY)
    with pytest.raises(TypeError):
        hash(KEY)
    assert GroupKey(raw) == KEY
    assert GroupKey(b"\x00" * 32) != KEY
    assert raw != KEY


@pytest.mark.parametrize("raw", [b"", b"\x00" * 31, b"\x00" * 33, bytearray(32)])
def test_bad_key_bytes(raw: bytes) -> None:
    with pytest.raises(CryptoError):
        GroupKey(raw)
