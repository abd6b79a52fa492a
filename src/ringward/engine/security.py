"""The one place where the engine signs, verifies, seals and opens.

Every outgoing signed frame passes :meth:`FrameSecurity.sign`, every incoming
one :meth:`FrameSecurity.verify` (before its body is interpreted); every DATA
payload passes :meth:`seal` / :meth:`open`. The engine never touches a key.

:class:`NullSecurity` is the crash-fault model: no secrets, but the same
code path — a fixed all-zero "signature" and an unkeyed BLAKE2b-128 tag that
still catches corruption. The Ed25519 + AEAD implementation plugs in here.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Protocol

from ringward.wire import limits

__all__ = ["FrameSecurity", "NullSecurity", "nonce"]


def nonce(sender: int, counter: int) -> bytes:
    """The 12-byte AEAD nonce of a DATA frame: sender (u32) || counter (u64).
    Derived, never carried (docs/wire-format.md, DATA)."""
    return sender.to_bytes(4, "big") + counter.to_bytes(8, "big")


class FrameSecurity(Protocol):
    """Signing and sealing for one node (see module docstring)."""

    def sign(self, data: bytes) -> bytes:
        """Signature (64 bytes) of this node over ``data``."""
        ...

    def verify(self, sender: int, data: bytes, signature: bytes) -> bool:
        """Whether ``signature`` is ``sender``'s over ``data``."""
        ...

    def seal(self, epoch: int, sender: int, counter: int, ad: bytes, plaintext: bytes) -> bytes:
        """AEAD-encrypt a DATA batch under the key of ``epoch``."""
        ...

    def open(
        self, epoch: int, sender: int, counter: int, ad: bytes, ciphertext: bytes
    ) -> bytes | None:
        """Decrypt and authenticate; None when it does not open."""
        ...


class NullSecurity:
    """No cryptography (crash-fault model and the 'security off' benchmark)."""

    _SIGNATURE = bytes(limits.SIGNATURE_BYTES)

    def sign(self, data: bytes) -> bytes:
        return self._SIGNATURE

    def verify(self, sender: int, data: bytes, signature: bytes) -> bool:
        return hmac.compare_digest(signature, self._SIGNATURE)

    def seal(self, epoch: int, sender: int, counter: int, ad: bytes, plaintext: bytes) -> bytes:
        return plaintext + self._tag(epoch, sender, counter, ad, plaintext)

    def open(
        self, epoch: int, sender: int, counter: int, ad: bytes, ciphertext: bytes
    ) -> bytes | None:
        body, tag = ciphertext[: -limits.AEAD_TAG_BYTES], ciphertext[-limits.AEAD_TAG_BYTES :]
        good = self._tag(epoch, sender, counter, ad, body)
        return body if hmac.compare_digest(tag, good) else None

    @staticmethod
    def _tag(epoch: int, sender: int, counter: int, ad: bytes, body: bytes) -> bytes:
        h = hashlib.blake2b(digest_size=limits.AEAD_TAG_BYTES)
        h.update(epoch.to_bytes(4, "big") + nonce(sender, counter) + ad)
        h.update(body)
        return h.digest()
