"""Node identities and the admin key.

A node identity is an Ed25519 signing key (every protocol statement the node
makes is signed with it) and an independent X25519 key (group keys are sealed
to it). The two are generated separately rather than converting one Ed25519
key to X25519: one key per purpose, so a flaw in one use cannot spill into
the other.

The admin key is an Ed25519 key whose only job is to sign rosters; it should
live offline. Signatures are made by pynacl (libsodium), never by
cryptography's OpenSSL binding, which verified about twice as slowly here.

Private key bytes never appear in ``repr``/``str`` and are only ever written
through :mod:`ringward.crypto.keyfile`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Final

import nacl.exceptions
import nacl.public
import nacl.signing
import nacl.utils

from ringward.crypto import keyfile
from ringward.crypto.keyfile import KDF_MODERATE, KdfCost, KeyKind, KeyRecord, Passphrase
from ringward.errors import CryptoError, KeyFileError
from ringward.wire import limits

__all__ = [
    "ENCRYPTION_KEY_BYTES",
    "SIGNING_KEY_BYTES",
    "AdminKey",
    "Identity",
    "PublicIdentity",
    "clamp_x25519",
    "verify_signature",
]

SIGNING_KEY_BYTES: Final = 32
ENCRYPTION_KEY_BYTES: Final = 32


def clamp_x25519(secret: bytes) -> bytes:
    """RFC 7748 clamping of an X25519 secret. X25519 ignores the clamped
    bits, so ringward stores secrets clamped: one encoding per key, and a
    flipped bit in a key file always changes the key (and is detected)."""
    if len(secret) != 32:
        raise CryptoError("bad_key", "an X25519 secret is 32 bytes")
    clamped = bytearray(secret)
    clamped[0] &= 248
    clamped[31] &= 127
    clamped[31] |= 64
    return bytes(clamped)


def verify_signature(public_key: bytes, data: bytes, signature: bytes) -> None:
    """Check an Ed25519 ``signature`` of ``data`` by ``public_key``; raise
    CryptoError (``bad_signature``) unless it verifies."""
    if len(public_key) != SIGNING_KEY_BYTES or len(signature) != limits.SIGNATURE_BYTES:
        raise CryptoError("bad_signature", "signature or key has the wrong length")
    try:
        nacl.signing.VerifyKey(public_key).verify(data, signature)
    except (nacl.exceptions.CryptoError, ValueError, TypeError):
        # BadSignatureError, and also a public key that is not a valid point.
        raise CryptoError("bad_signature", "signature does not verify") from None


@dataclass(frozen=True, slots=True)
class PublicIdentity:
    """The public half of a node identity, as the roster lists it."""

    signing_key: bytes
    encryption_key: bytes

    def verify(self, data: bytes, signature: bytes) -> None:
        """Raise CryptoError unless ``signature`` is this node's signature
        of ``data``."""
        verify_signature(self.signing_key, data, signature)


def _load_record(
    path: Path, kind: KeyKind, passphrase: Passphrase | None, *, need: bool
) -> KeyRecord:
    record = keyfile.decode_key_file(
        keyfile.read_private(path), str(path), passphrase, need_secret=need
    )
    if record.kind is not kind:
        raise KeyFileError(
            "wrong_key_kind",
            f"{path} holds a {record.kind.name.lower()} key, expected a {kind.name.lower()} key",
        )
    return record


class Identity:
    """A node's private identity: Ed25519 signing key + X25519 box key."""

    __slots__ = ("_box", "_signer")

    def __init__(self, signer: nacl.signing.SigningKey, box: nacl.public.PrivateKey) -> None:
        self._signer = signer
        self._box = box

    @classmethod
    def generate(cls) -> Identity:
        """A fresh identity from libsodium's CSPRNG."""
        return cls(
            nacl.signing.SigningKey.generate(),
            nacl.public.PrivateKey(clamp_x25519(nacl.utils.random(32))),
        )

    @classmethod
    def from_private_bytes(cls, data: bytes) -> Identity:
        """Rebuild from :meth:`private_bytes` (Ed25519 seed || X25519 secret,
        64 bytes); deterministic, for tests and test vectors. The X25519
        secret must be clamped (:func:`clamp_x25519`)."""
        if len(data) != 64:
            raise CryptoError("bad_key", f"identity secret must be 64 bytes, got {len(data)}")
        if clamp_x25519(data[32:]) != data[32:]:
            raise CryptoError("bad_key", "X25519 secret is not clamped")
        return cls(nacl.signing.SigningKey(data[:32]), nacl.public.PrivateKey(data[32:]))

    def private_bytes(self) -> bytes:
        """The 64 secret bytes. Handle with care: never log them."""
        return bytes(self._signer) + bytes(self._box)

    @property
    def signing_key(self) -> bytes:
        """Ed25519 public key (32 bytes)."""
        return bytes(self._signer.verify_key)

    @property
    def encryption_key(self) -> bytes:
        """X25519 public key (32 bytes) that group keys are sealed to."""
        return bytes(self._box.public_key)

    @property
    def public(self) -> PublicIdentity:
        """The public half, as listed in the roster."""
        return PublicIdentity(self.signing_key, self.encryption_key)

    def sign(self, data: bytes) -> bytes:
        """Ed25519 signature (64 bytes) of ``data``. Callers sign
        domain-separated bytes, e.g. ``ringward.wire.signing_bytes(frame)``."""
        return bytes(self._signer.sign(data).signature)

    def verify(self, data: bytes, signature: bytes) -> None:
        """Check a signature made by this identity (CryptoError otherwise)."""
        verify_signature(self.signing_key, data, signature)

    def open_sealed(self, sealed: bytes) -> bytes:
        """Open a sealed box addressed to this identity's X25519 key."""
        from ringward.crypto.sealing import open_sealed

        return open_sealed(self, sealed)

    def _box_private_key(self) -> nacl.public.PrivateKey:
        return self._box

    def save(
        self, path: Path | str, passphrase: Passphrase | None = None, kdf: KdfCost = KDF_MODERATE
    ) -> None:
        """Write a new private key file (mode 0600, never overwriting one),
        encrypted when ``passphrase`` is given."""
        data = keyfile.encode_key_file(
            KeyKind.NODE,
            self.signing_key + self.encryption_key,
            self.private_bytes(),
            passphrase,
            kdf,
        )
        keyfile.write_private(Path(path), data)

    @classmethod
    def load(cls, path: Path | str, passphrase: Passphrase | None = None) -> Identity:
        """Read a node key file; refuses files readable by group or others,
        a wrong passphrase, and a secret that does not match the stored
        public keys."""
        path = Path(path)
        record = _load_record(path, KeyKind.NODE, passphrase, need=True)
        assert record.secret is not None  # need=True guarantees it
        try:
            identity = cls.from_private_bytes(record.secret)
        except CryptoError:
            raise KeyFileError("key_mismatch", f"{path}: not a valid identity secret") from None
        if identity.signing_key + identity.encryption_key != record.public:
            raise KeyFileError("key_mismatch", f"{path}: secret does not match its public keys")
        return identity

    @staticmethod
    def load_public(path: Path | str) -> PublicIdentity:
        """The public keys stored in clear in a node key file (no
        passphrase needed; the permission check still applies)."""
        record = _load_record(Path(path), KeyKind.NODE, None, need=False)
        return PublicIdentity(record.public[:32], record.public[32:])

    def __repr__(self) -> str:
        return f"Identity(signing_key={self.signing_key.hex()[:16]}…)"


class AdminKey:
    """The cluster administrator's Ed25519 key; it signs rosters only."""

    __slots__ = ("_signer",)

    def __init__(self, signer: nacl.signing.SigningKey) -> None:
        self._signer = signer

    @classmethod
    def generate(cls) -> AdminKey:
        """A fresh admin key from the operating system's CSPRNG."""
        return cls(nacl.signing.SigningKey.generate())

    @classmethod
    def from_private_bytes(cls, seed: bytes) -> AdminKey:
        """Rebuild from the 32-byte Ed25519 seed (tests, test vectors)."""
        if len(seed) != 32:
            raise CryptoError("bad_key", f"admin seed must be 32 bytes, got {len(seed)}")
        return cls(nacl.signing.SigningKey(seed))

    def private_bytes(self) -> bytes:
        """The 32-byte seed. Handle with care: never log it."""
        return bytes(self._signer)

    @property
    def public_key(self) -> bytes:
        """Ed25519 public key (32 bytes): what nodes pin."""
        return bytes(self._signer.verify_key)

    def sign(self, data: bytes) -> bytes:
        """Ed25519 signature (64 bytes). Rosters add their own context
        prefix before calling this (see ``Roster.signing_bytes``)."""
        return bytes(self._signer.sign(data).signature)

    def save(
        self, path: Path | str, passphrase: Passphrase | None = None, kdf: KdfCost = KDF_MODERATE
    ) -> None:
        """Write a new private key file (mode 0600, never overwriting one)."""
        data = keyfile.encode_key_file(
            KeyKind.ADMIN, self.public_key, self.private_bytes(), passphrase, kdf
        )
        keyfile.write_private(Path(path), data)

    @classmethod
    def load(cls, path: Path | str, passphrase: Passphrase | None = None) -> AdminKey:
        """Read an admin key file (same checks as :meth:`Identity.load`)."""
        path = Path(path)
        record = _load_record(path, KeyKind.ADMIN, passphrase, need=True)
        assert record.secret is not None
        admin = cls.from_private_bytes(record.secret)
        if admin.public_key != record.public:
            raise KeyFileError("key_mismatch", f"{path}: secret does not match its public key")
        return admin

    @staticmethod
    def load_public(path: Path | str) -> bytes:
        """The public key stored in clear in an admin key file."""
        return _load_record(Path(path), KeyKind.ADMIN, None, need=False).public

    def __repr__(self) -> str:
        return f"AdminKey(public_key={self.public_key.hex()[:16]}…)"
