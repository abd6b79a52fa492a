"""The one place where the engine signs, verifies, seals and opens.

Every outgoing signed frame passes :meth:`FrameSecurity.sign`, every incoming
one :meth:`FrameSecurity.verify` (before its body is interpreted); every DATA
payload passes :meth:`seal` / :meth:`open` under the key of its ring. Each new
ring gets a fresh group key: the representative asks :meth:`new_ring_key`
for the sealed copies and the commitment that go into the commit token,
every member hands its copy to :meth:`accept_ring_key`, and
:meth:`retire` forgets the keys of rings left behind. The engine never
touches a key (and never draws randomness: making keys is this object's job).

:class:`NullSecurity` is the crash-fault model: no secrets, but the same
code path — a fixed all-zero "signature" and an unkeyed BLAKE2b-128 tag that
still catches corruption. The Ed25519 + AEAD implementation plugs in here.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Collection, Sequence
from typing import Protocol

from ringward.wire import RingId, SealedKey, limits
from ringward.wire.frame import data_nonce

__all__ = ["FrameSecurity", "NullSecurity"]


class FrameSecurity(Protocol):
    """Signing and sealing for one node (see module docstring)."""

    def sign(self, data: bytes) -> bytes:
        """Signature (64 bytes) of this node over ``data``."""
        ...

    def verify(self, sender: int, data: bytes, signature: bytes) -> bool:
        """Whether ``signature`` is ``sender``'s over ``data``."""
        ...

    def seal(
        self, ring: RingId, epoch: int, sender: int, counter: int, ad: bytes, plaintext: bytes
    ) -> bytes:
        """AEAD-encrypt a DATA batch under ``ring``'s key of ``epoch``."""
        ...

    def open(
        self, ring: RingId, epoch: int, sender: int, counter: int, ad: bytes, ciphertext: bytes
    ) -> bytes | None:
        """Decrypt and authenticate; None when it does not open (or when
        this node holds no key for ``ring``)."""
        ...

    def new_ring_key(
        self, ring: RingId, members: Sequence[int]
    ) -> tuple[tuple[SealedKey, ...], bytes]:
        """Make ``ring``'s group key (kept), sealed to each member, and its
        commitment."""
        ...

    def accept_ring_key(self, ring: RingId, sealed: bytes | None, commitment: bytes) -> bool:
        """Open our sealed copy of ``ring``'s key and keep it if it matches
        ``commitment``; False (nothing kept) otherwise."""
        ...

    def retire(self, keep: Collection[RingId]) -> None:
        """Forget every ring key but those of ``keep``."""
        ...


class NullSecurity:
    """No cryptography (crash-fault model and the 'security off' benchmark)."""

    _SIGNATURE = bytes(limits.SIGNATURE_BYTES)

    def sign(self, data: bytes) -> bytes:
        return self._SIGNATURE

    def verify(self, sender: int, data: bytes, signature: bytes) -> bool:
        return hmac.compare_digest(signature, self._SIGNATURE)

    def seal(
        self, ring: RingId, epoch: int, sender: int, counter: int, ad: bytes, plaintext: bytes
    ) -> bytes:
        return plaintext + self._tag(epoch, sender, counter, ad, plaintext)

    def open(
        self, ring: RingId, epoch: int, sender: int, counter: int, ad: bytes, ciphertext: bytes
    ) -> bytes | None:
        body, tag = ciphertext[: -limits.AEAD_TAG_BYTES], ciphertext[-limits.AEAD_TAG_BYTES :]
        good = self._tag(epoch, sender, counter, ad, body)
        return body if hmac.compare_digest(tag, good) else None

    def new_ring_key(
        self, ring: RingId, members: Sequence[int]
    ) -> tuple[tuple[SealedKey, ...], bytes]:
        return (), bytes(limits.DIGEST_BYTES)

    def accept_ring_key(self, ring: RingId, sealed: bytes | None, commitment: bytes) -> bool:
        return sealed is None and hmac.compare_digest(commitment, bytes(limits.DIGEST_BYTES))

    def retire(self, keep: Collection[RingId]) -> None:
        return None

    @staticmethod
    def _tag(epoch: int, sender: int, counter: int, ad: bytes, body: bytes) -> bytes:
        h = hashlib.blake2b(digest_size=limits.AEAD_TAG_BYTES)
        h.update(epoch.to_bytes(4, "big") + data_nonce(sender, counter) + ad)
        h.update(body)
        return h.digest()
