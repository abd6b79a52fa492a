"""Identities, admin keys and the private key file format."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crypto_helpers import FAST_KDF, flip_each_byte
from ringward.crypto import AdminKey, Identity, KdfCost, PublicIdentity, keyfile, verify_signature
from ringward.crypto.keyfile import KeyKind
from ringward.errors import CryptoError, KeyFileError


def test_sign_and_verify() -> None:
    me = Identity.generate()
    sig = me.sign(b"hello")
    assert len(sig) == 64
    me.verify(b"hello", sig)
    me.public.verify(b"hello", sig)
    verify_signature(me.signing_key, b"hello", sig)
    with pytest.raises(CryptoError) as info:
        me.verify(b"hellO", sig)
    assert info.value.reason == "bad_signature"
    with pytest.raises(CryptoError):
        Identity.generate().public.verify(b"hello", sig)
    with pytest.raises(CryptoError):
        verify_signature(me.signing_key, b"hello", sig[:63])
    with pytest.raises(CryptoError):
        verify_signature(b"\x00" * 31, b"hello", sig)


def test_every_signature_bit_matters() -> None:
    me = Identity.generate()
    sig = me.sign(b"data")
    for bad in flip_each_byte(sig):
        with pytest.raises(CryptoError):
            me.verify(b"data", bad)


def test_keys_are_independent_and_sized() -> None:
    me = Identity.generate()
    assert len(me.signing_key) == 32
    assert len(me.encryption_key) == 32
    assert me.signing_key != me.encryption_key
    assert me.public == PublicIdentity(me.signing_key, me.encryption_key)
    assert Identity.from_private_bytes(me.private_bytes()).public == me.public


def test_repr_never_shows_secrets() -> None:
    me = Identity.generate()
    admin = AdminKey.generate()
    for obj, secret in ((me, me.private_bytes()), (admin, admin.private_bytes())):
        text = repr(obj) + str(obj)
        assert secret.hex() not in text
        assert secret.hex()[:16] not in text


@pytest.mark.parametrize("passphrase", [None, "correct horse", b"\xffbytes"])
def test_identity_file_round_trip(tmp_path: Path, passphrase: str | bytes | None) -> None:
    me = Identity.generate()
    path = tmp_path / "node.key"
    me.save(path, passphrase, FAST_KDF)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = Identity.load(path, passphrase)
    assert again.private_bytes() == me.private_bytes()
    assert Identity.load_public(path) == me.public
    data = path.read_bytes()
    assert data[:4] == b"RWKF"
    if passphrase is not None:
        # The secret is not in the file in clear.
        assert me.private_bytes()[:32] not in data
        assert me.private_bytes()[32:] not in data


def test_admin_file_round_trip(tmp_path: Path) -> None:
    admin = AdminKey.generate()
    path = tmp_path / "admin.key"
    admin.save(path, "pw", FAST_KDF)
    assert AdminKey.load(path, "pw").public_key == admin.public_key
    assert AdminKey.load_public(path) == admin.public_key
    sig = admin.sign(b"x")
    verify_signature(admin.public_key, b"x", sig)


def test_never_overwrites(tmp_path: Path) -> None:
    path = tmp_path / "node.key"
    first = Identity.generate()
    first.save(path)
    with pytest.raises(KeyFileError) as info:
        Identity.generate().save(path)
    assert info.value.reason == "exists"
    assert Identity.load(path).public == first.public


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644, 0o660, 0o606, 0o700, 0o610])
def test_refuses_open_permissions(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "node.key"
    Identity.generate().save(path)
    os.chmod(path, mode)
    if mode & 0o077 == 0:
        Identity.load(path)
        return
    for load in (Identity.load, Identity.load_public):
        with pytest.raises(KeyFileError) as info:
            load(path)
        assert info.value.reason == "permissions_too_open"
        assert str(path) in info.value.message
        assert f"chmod 600 {path}" in info.value.message


def test_missing_and_wrong_files(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError) as info:
        Identity.load(tmp_path / "absent.key")
    assert info.value.reason == "missing_file"
    AdminKey.generate().save(tmp_path / "admin.key")
    with pytest.raises(KeyFileError) as info:
        Identity.load(tmp_path / "admin.key")
    assert info.value.reason == "wrong_key_kind"
    Identity.generate().save(tmp_path / "node.key")
    with pytest.raises(KeyFileError) as info:
        AdminKey.load(tmp_path / "node.key")
    assert info.value.reason == "wrong_key_kind"
    with pytest.raises(KeyFileError) as info:
        Identity.load(tmp_path)
    assert info.value.reason == "not_a_file"


def test_passphrase_errors(tmp_path: Path) -> None:
    path = tmp_path / "node.key"
    Identity.generate().save(path, "right", FAST_KDF)
    with pytest.raises(KeyFileError) as info:
        Identity.load(path, "wrong")
    assert info.value.reason == "bad_passphrase"
    with pytest.raises(KeyFileError) as info:
        Identity.load(path)
    assert info.value.reason == "passphrase_required"
    with pytest.raises(KeyFileError) as info:
        Identity.load(path, "")
    assert info.value.reason == "empty_passphrase"


def _write(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


@pytest.mark.parametrize("passphrase", [None, "pw"])
def test_every_tampered_byte_is_refused(tmp_path: Path, passphrase: str | None) -> None:
    path = tmp_path / "node.key"
    Identity.generate().save(path, passphrase, FAST_KDF)
    good = path.read_bytes()
    # XOR 0x01 keeps a tampered Argon2id memlimit small, so the test is fast.
    for bad in flip_each_byte(good):
        _write(path, bad)
        with pytest.raises(KeyFileError):
            Identity.load(path, passphrase)


def test_truncated_and_extended_files_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "node.key"
    Identity.generate().save(path)
    good = path.read_bytes()
    for bad in [good[:n] for n in range(len(good))] + [good + b"\x00"]:
        _write(path, bad)
        with pytest.raises(KeyFileError):
            Identity.load(path)


def test_kdf_bounds_are_enforced() -> None:
    with pytest.raises(KeyFileError):
        KdfCost(opslimit=0, memlimit=8192)
    with pytest.raises(KeyFileError):
        KdfCost(opslimit=1, memlimit=keyfile.KDF_MEMLIMIT_MAX + 1)
    # A crafted file asking for 4 GiB of memory is refused before deriving.
    data = keyfile.encode_key_file(KeyKind.ADMIN, b"\x01" * 32, b"\x02" * 32, "pw", FAST_KDF)
    mem_at = 7 + 32 + 4
    crafted = data[:mem_at] + b"\xff\xff\xff\xff" + data[mem_at + 4 :]
    with pytest.raises(KeyFileError) as info:
        keyfile.decode_key_file(crafted, "crafted", "pw")
    assert info.value.reason == "bad_kdf_params"


@settings(max_examples=300)
@given(st.binary(max_size=200))
def test_key_file_parser_is_total(data: bytes) -> None:
    try:
        record = keyfile.decode_key_file(data, "fuzz", None, need_secret=False)
    except KeyFileError:
        return
    assert record.kind in (KeyKind.NODE, KeyKind.ADMIN)
    assert "secret" not in repr(record) or record.secret is None
