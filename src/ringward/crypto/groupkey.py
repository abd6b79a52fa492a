"""The group key of one configuration, and what is derived from it.

A new configuration gets a fresh 32-byte group key; the representative seals
it to every member (:mod:`ringward.crypto.sealing`). Nothing uses the group
key directly: HKDF-SHA256 derives one AES-256-GCM data key per epoch, so a
nonce budget exhausted in one epoch never reuses a (key, nonce) pair in the
next. The commit token carries a *commitment* to the group key, so members
who were handed different keys by a lying representative notice.

Derivation labels (docs/keys.md, "Group keys"); changing one is a wire
format change:

* data key:   HKDF-SHA256(ikm=K, salt=DATA_KEY_SALT, info=DATA_KEY_INFO || epoch u64be)
* commitment: BLAKE2b-256(context, key=K, person=COMMITMENT_PERSON)

BLAKE2b keyed with K is collision resistant in K, which is what a commitment
needs: a representative cannot find two keys with one commitment.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Final

import nacl.utils
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from ringward.crypto.identity import Identity
from ringward.crypto.sealing import open_sealed, seal_to
from ringward.errors import ConfigError, CryptoError

__all__ = [
    "COMMITMENT_BYTES",
    "COMMITMENT_PERSON",
    "DATA_KEY_INFO",
    "DATA_KEY_SALT",
    "GROUP_KEY_BYTES",
    "GroupKey",
]

GROUP_KEY_BYTES: Final = 32
COMMITMENT_BYTES: Final = 32
DATA_KEY_SALT: Final = b"ringward group key v1"
DATA_KEY_INFO: Final = b"ringward data key v1\x00"
COMMITMENT_PERSON: Final = b"rw-key-commit-v1"  # BLAKE2b personalization: 16 bytes max

_EPOCH_MAX: Final = (1 << 64) - 1


class GroupKey:
    """A 32-byte symmetric group key. Equality is constant-time; the key
    bytes never appear in ``repr``; instances are not hashable (a key in a
    set or dict key would leak timing through hashing)."""

    __slots__ = ("_key",)

    __hash__ = None  # type: ignore[assignment]

    def __init__(self, key: bytes) -> None:
        if type(key) is not bytes or len(key) != GROUP_KEY_BYTES:
            raise CryptoError("bad_key", f"a group key is {GROUP_KEY_BYTES} bytes")
        self._key = key

    @classmethod
    def generate(cls) -> GroupKey:
        """A fresh key from libsodium's CSPRNG (the only randomness here)."""
        return cls(nacl.utils.random(GROUP_KEY_BYTES))

    def secret_bytes(self) -> bytes:
        """The raw key, to seal it to a member. Never log it."""
        return self._key

    def data_key(self, epoch: int) -> bytes:
        """The AES-256-GCM key (32 bytes) of ``epoch`` (0..2**64-1)."""
        if type(epoch) is not int or not 0 <= epoch <= _EPOCH_MAX:
            raise ConfigError("bad_epoch", f"epoch {epoch!r} is not a uint64")
        hkdf = HKDF(
            algorithm=hashes.SHA256(),
            length=32,
            salt=DATA_KEY_SALT,
            info=DATA_KEY_INFO + epoch.to_bytes(8, "big"),
        )
        return hkdf.derive(self._key)

    def commitment(self, context: bytes) -> bytes:
        """A 32-byte commitment to this key, bound to ``context`` (e.g. the
        encoded ring id), to publish in the commit token."""
        h = hashlib.blake2b(
            context, key=self._key, digest_size=COMMITMENT_BYTES, person=COMMITMENT_PERSON
        )
        return h.digest()

    def check_commitment(self, context: bytes, commitment: bytes) -> None:
        """Raise CryptoError (``bad_commitment``) unless ``commitment`` is
        this key's commitment for ``context`` (constant-time compare)."""
        if not hmac.compare_digest(self.commitment(context), commitment):
            raise CryptoError("bad_commitment", "group key does not match its commitment")

    def seal_to(self, member_public_key: bytes) -> bytes:
        """This key sealed to one member's X25519 public key (80 bytes)."""
        return seal_to(member_public_key, self._key)

    @classmethod
    def open_sealed(cls, recipient: Identity, sealed: bytes) -> GroupKey:
        """Open a group key sealed to ``recipient``'s X25519 key."""
        secret = open_sealed(recipient, sealed)
        if len(secret) != GROUP_KEY_BYTES:
            raise CryptoError("bad_key", "sealed secret is not a group key")
        return cls(secret)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, GroupKey):
            return NotImplemented
        return hmac.compare_digest(self._key, other._key)

    def __repr__(self) -> str:
        return "GroupKey(<secret>)"
