"""Frame security of one node: Ed25519 per node, AES-256-GCM per ring.

Implements the engine's ``FrameSecurity`` seam (ringward/engine/security.py)
with real keys, so the engine itself never touches one:

* ``sign`` / ``verify``: Ed25519 (pynacl/libsodium) with this node's identity,
  against the signing keys the admin-signed roster lists. Frame signatures
  cover bytes that begin with the wire magic ``RW``; roster signatures cover
  bytes that begin with their own context string, so neither can stand in
  for the other.
* ``seal`` / ``open``: AES-256-GCM (cryptography) under the data key of the
  frame's ring and epoch (HKDF from the ring's group key, crypto/groupkey.py),
  nonce ``sender u32 || counter u64`` (never repeats under one key: counters
  restart only with a new ring, and every ring has a new key), associated
  data = the frame's header and DATA prefix.
* ring keys: the representative makes a fresh group key per ring, seals it
  to every member's X25519 key and publishes a commitment bound to the ring
  id; a member keeps its copy only if it opens and matches the commitment.
  A node that is not a member of a ring never receives its key, so it reads
  nothing sent there (docs/protocol.md, "Cryptographic construction").
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Collection, Mapping, Sequence

import nacl.exceptions
import nacl.signing
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ringward.crypto.groupkey import GroupKey
from ringward.crypto.identity import Identity
from ringward.crypto.roster import Roster
from ringward.errors import ConfigError, CryptoError
from ringward.wire import RingId, SealedKey, limits
from ringward.wire.frame import data_nonce

__all__ = ["RingSecurity", "commitment_context"]

# Derived AES-GCM contexts kept per node: a few epochs of the current and
# the previous ring. Bounds the work a frame with a fresh epoch can cause.
CIPHERS_MAX = 8


def commitment_context(ring: RingId) -> bytes:
    """What a ring key's commitment is bound to: the ring id."""
    return b"ringward ring key v1\x00" + ring.rep.to_bytes(2, "big") + ring.seq.to_bytes(8, "big")


class RingSecurity:
    """Frame security for ``node_id`` holding ``identity`` (see module docstring)."""

    def __init__(
        self,
        identity: Identity,
        node_id: int,
        signing_keys: Mapping[int, bytes],
        encryption_keys: Mapping[int, bytes],
    ) -> None:
        if signing_keys.get(node_id) != identity.signing_key:
            raise ConfigError("identity_not_in_roster", f"node {node_id} has another key")
        self._identity = identity
        self.node_id = node_id
        self._verifiers = {n: nacl.signing.VerifyKey(k) for n, k in signing_keys.items()}
        self._encryption_keys = dict(encryption_keys)
        self._ring_keys: dict[RingId, GroupKey] = {}
        self._ciphers: OrderedDict[tuple[RingId, int], AESGCM] = OrderedDict()

    @classmethod
    def from_roster(cls, roster: Roster, identity: Identity) -> RingSecurity:
        """The security of the roster node whose signing key is ``identity``'s."""
        nodes = roster.manifest.nodes
        mine = [n.id for n in nodes if n.signing_key == identity.signing_key]
        if not mine:
            raise ConfigError("identity_not_in_roster", "this identity is not in the roster")
        return cls(
            identity,
            mine[0],
            {n.id: n.signing_key for n in nodes},
            {n.id: n.encryption_key for n in nodes},
        )

    # -- signatures ---------------------------------------------------------

    def sign(self, data: bytes) -> bytes:
        return self._identity.sign(data)

    def verify(self, sender: int, data: bytes, signature: bytes) -> bool:
        verifier = self._verifiers.get(sender)
        if verifier is None or len(signature) != limits.SIGNATURE_BYTES:
            return False
        try:
            verifier.verify(data, signature)
        except (nacl.exceptions.BadSignatureError, nacl.exceptions.ValueError):
            return False
        return True

    # -- payload encryption -------------------------------------------------

    def _cipher(self, ring: RingId, epoch: int) -> AESGCM | None:
        key = (ring, epoch)
        cipher = self._ciphers.get(key)
        if cipher is not None:
            self._ciphers.move_to_end(key)
            return cipher
        group = self._ring_keys.get(ring)
        if group is None:
            return None
        cipher = AESGCM(group.data_key(epoch))
        self._ciphers[key] = cipher
        while len(self._ciphers) > CIPHERS_MAX:
            self._ciphers.popitem(last=False)
        return cipher

    def seal(
        self, ring: RingId, epoch: int, sender: int, counter: int, ad: bytes, plaintext: bytes
    ) -> bytes:
        cipher = self._cipher(ring, epoch)
        if cipher is None:
            raise CryptoError("no_ring_key", f"no key for ring {ring.rep}.{ring.seq}")
        return cipher.encrypt(data_nonce(sender, counter), plaintext, ad)

    def open(
        self, ring: RingId, epoch: int, sender: int, counter: int, ad: bytes, ciphertext: bytes
    ) -> bytes | None:
        cipher = self._cipher(ring, epoch)
        if cipher is None:
            return None
        try:
            return cipher.decrypt(data_nonce(sender, counter), ciphertext, ad)
        except InvalidTag:
            return None

    # -- ring keys ----------------------------------------------------------

    def new_ring_key(
        self, ring: RingId, members: Sequence[int]
    ) -> tuple[tuple[SealedKey, ...], bytes]:
        group = GroupKey.generate()
        self._ring_keys[ring] = group
        sealed = tuple(
            SealedKey(m, group.seal_to(self._encryption_keys[m])) for m in sorted(members)
        )
        return sealed, group.commitment(commitment_context(ring))

    def accept_ring_key(self, ring: RingId, sealed: bytes | None, commitment: bytes) -> bool:
        if sealed is None:
            return False
        try:
            group = GroupKey.open_sealed(self._identity, sealed)
            group.check_commitment(commitment_context(ring), commitment)
        except CryptoError:
            return False
        self._ring_keys[ring] = group
        return True

    def retire(self, keep: Collection[RingId]) -> None:
        for ring in [r for r in self._ring_keys if r not in keep]:
            # Python cannot wipe the bytes; dropping every reference is what
            # is possible (derived ciphers included).
            del self._ring_keys[ring]
        for key in [k for k in self._ciphers if k[0] not in keep]:
            del self._ciphers[key]

    def __repr__(self) -> str:
        return f"RingSecurity(node={self.node_id}, rings={len(self._ring_keys)})"
