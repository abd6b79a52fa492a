"""Every AEAD seal of a test's engines, by (key, nonce): no pair may repeat.

AES-GCM under one key must never see one nonce twice (two ciphertexts under
one (key, nonce) give away the XOR of their plaintexts and the GHASH key,
hence forgeries). :class:`RecordingSecurity` is the real
:class:`~ringward.crypto.ringsec.RingSecurity` of one node that logs, before
each seal, the data key it seals under and the nonce into a shared
:class:`SealLog`; a test builds its engines with it and asserts
``log.repeats() == []``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ringward.crypto.ringsec import RingSecurity
from ringward.sim.keys import SimKeys
from ringward.wire import RingId
from ringward.wire.frame import data_nonce


@dataclass(frozen=True, slots=True)
class Seal:
    """Who sealed what: node, incarnation, ring, epoch, counter."""

    node: int
    incarnation: int
    ring: RingId
    epoch: int
    counter: int


@dataclass(slots=True)
class SealLog:
    """(data key, nonce) -> every seal made with it."""

    seals: dict[tuple[bytes, bytes], list[Seal]] = field(default_factory=dict)

    def repeats(self) -> list[list[Seal]]:
        """Every (key, nonce) pair used more than once: its seals."""
        return [s for s in self.seals.values() if len(s) > 1]

    def __len__(self) -> int:
        return sum(len(s) for s in self.seals.values())


class RecordingSecurity(RingSecurity):
    """``node``'s real frame security, logging every seal into ``log``."""

    def __init__(self, keys: SimKeys, node: int, log: SealLog, incarnation: int = 0) -> None:
        super().__init__(keys.identities[node], node, keys.signing_keys, keys.encryption_keys)
        self.log = log
        self.incarnation = incarnation

    def seal(
        self, ring: RingId, epoch: int, sender: int, counter: int, ad: bytes, plaintext: bytes
    ) -> bytes:
        group = self._ring_keys.get(ring)
        if group is not None:
            pair = (group.data_key(epoch), data_nonce(sender, counter))
            seal = Seal(self.node_id, self.incarnation, ring, epoch, counter)
            self.log.seals.setdefault(pair, []).append(seal)
        return super().seal(ring, epoch, sender, counter, ad, plaintext)
