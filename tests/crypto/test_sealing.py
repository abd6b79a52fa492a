"""Sealing a secret to one member's X25519 key."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crypto_helpers import flip_each_byte
from ringward.crypto import Identity, open_sealed, seal_to
from ringward.errors import CryptoError
from ringward.wire import limits


def test_round_trip_and_size() -> None:
    member = Identity.generate()
    secret = bytes(range(32))
    sealed = seal_to(member.encryption_key, secret)
    assert len(sealed) == 80
    assert limits.SEALED_KEY_BYTES_MIN <= len(sealed) <= limits.SEALED_KEY_BYTES_MAX
    assert secret not in sealed
    assert open_sealed(member, sealed) == secret
    assert member.open_sealed(sealed) == secret
    # Fresh ephemeral key per seal: two seals of one secret differ.
    assert seal_to(member.encryption_key, secret) != sealed


def test_other_member_cannot_open() -> None:
    sealed = seal_to(Identity.generate().encryption_key, b"k" * 32)
    with pytest.raises(CryptoError) as info:
        open_sealed(Identity.generate(), sealed)
    assert info.value.reason == "bad_sealed_box"


def test_every_tampered_byte_is_refused() -> None:
    member = Identity.generate()
    sealed = seal_to(member.encryption_key, b"k" * 32)
    for bad in flip_each_byte(sealed):
        with pytest.raises(CryptoError):
            open_sealed(member, bad)


def test_length_bounds() -> None:
    member = Identity.generate()
    assert len(seal_to(member.encryption_key, b"")) == limits.SEALED_KEY_BYTES_MIN
    with pytest.raises(CryptoError):
        seal_to(member.encryption_key, b"x" * (limits.SEALED_KEY_BYTES_MAX - 47))
    with pytest.raises(CryptoError):
        seal_to(b"short", b"x" * 32)
    for size in (0, limits.SEALED_KEY_BYTES_MIN - 1, limits.SEALED_KEY_BYTES_MAX + 1):
        with pytest.raises(CryptoError) as info:
            open_sealed(member, b"\x00" * size)
        assert info.value.reason == "bad_length"


@given(st.binary(max_size=200))
def test_open_is_total(data: bytes) -> None:
    member = _MEMBER
    try:
        open_sealed(member, data)
    except CryptoError:
        return
    raise AssertionError("random bytes opened as a sealed box")


_MEMBER = Identity.generate()
