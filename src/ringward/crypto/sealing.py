"""Sealing a secret (a group key) to one member's X25519 key.

libsodium's sealed box: an ephemeral X25519 key pair per message, so the
sender needs no key of its own and the ciphertext reveals nothing about
who sealed it (who did is proven by the signed commit that carries it).
A 32-byte secret seals to 80 bytes (32 ephemeral public key + 16 MAC + 32),
inside the wire format's SEALED_KEY_BYTES_MIN..MAX bounds.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

import nacl.exceptions
import nacl.public

from ringward.errors import CryptoError
from ringward.wire import limits

if TYPE_CHECKING:
    from ringward.crypto.identity import Identity

__all__ = ["SEAL_OVERHEAD_BYTES", "open_sealed", "seal_to"]

# Ephemeral public key (32) + Poly1305 tag (16).
SEAL_OVERHEAD_BYTES: Final = 48


def seal_to(member_public_key: bytes, secret: bytes) -> bytes:
    """Seal ``secret`` so that only the holder of the X25519 private key
    for ``member_public_key`` can open it."""
    if len(member_public_key) != 32:
        raise CryptoError("bad_key", "an X25519 public key is 32 bytes")
    size = len(secret) + SEAL_OVERHEAD_BYTES
    if not limits.SEALED_KEY_BYTES_MIN <= size <= limits.SEALED_KEY_BYTES_MAX:
        raise CryptoError(
            "bad_length",
            f"sealed size {size} outside {limits.SEALED_KEY_BYTES_MIN}.."
            f"{limits.SEALED_KEY_BYTES_MAX} bytes",
        )
    box = nacl.public.SealedBox(nacl.public.PublicKey(member_public_key))
    return bytes(box.encrypt(secret))


def open_sealed(recipient: Identity, sealed: bytes) -> bytes:
    """Open a sealed box addressed to ``recipient``; CryptoError
    (``bad_sealed_box``) when it was sealed to another key or altered."""
    if not limits.SEALED_KEY_BYTES_MIN <= len(sealed) <= limits.SEALED_KEY_BYTES_MAX:
        raise CryptoError("bad_length", f"sealed box of {len(sealed)} bytes is out of bounds")
    box = nacl.public.SealedBox(recipient._box_private_key())
    try:
        return bytes(box.decrypt(sealed))
    except (nacl.exceptions.CryptoError, ValueError, TypeError):
        raise CryptoError("bad_sealed_box", "sealed box does not open with this key") from None
