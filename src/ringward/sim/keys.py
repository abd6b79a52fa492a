"""Deterministic identities for simulated clusters.

A simulated node's Ed25519 and X25519 keys are derived from the scenario
seed and node id, so a security-on run is reproducible from its command line
(group keys and sealed boxes still use fresh randomness, but nothing the log
records depends on their bytes). Never use these keys outside the simulator.
"""

from __future__ import annotations

import hashlib

import nacl.public
import nacl.signing

from ringward.crypto.identity import Identity
from ringward.crypto.ringsec import RingSecurity

__all__ = ["SimKeys"]


def _seed(seed: int, node: int, purpose: bytes) -> bytes:
    return hashlib.blake2b(
        f"{seed}:{node}".encode(), key=b"ringward sim keys", person=purpose, digest_size=32
    ).digest()


class SimKeys:
    """Identities of nodes ``roster`` in the world of ``seed``."""

    def __init__(self, seed: int, roster: tuple[int, ...]) -> None:
        self.identities = {
            n: Identity(
                nacl.signing.SigningKey(_seed(seed, n, b"sign")),
                nacl.public.PrivateKey(_seed(seed, n, b"box")),
            )
            for n in roster
        }
        self.signing_keys = {n: i.signing_key for n, i in self.identities.items()}
        self.encryption_keys = {n: i.encryption_key for n, i in self.identities.items()}

    def security(self, node: int) -> RingSecurity:
        """A fresh RingSecurity for ``node`` (a restart loses its ring keys)."""
        return RingSecurity(self.identities[node], node, self.signing_keys, self.encryption_keys)
