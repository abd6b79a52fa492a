"""Deterministic identities for simulated clusters.

A simulated node's Ed25519 and X25519 keys are derived from the scenario
seed and node id, so a security-on run is reproducible from its command line
(group keys and sealed boxes still use fresh randomness, but nothing the log
records depends on their bytes). Never use these keys outside the simulator.

Every node of a world verifies the same broadcast bytes against the same
roster keys, so the world keeps one bounded memo of signature checks that
all its nodes share (:class:`VerifyMemo`): Ed25519 verification is a pure
function of (key, bytes, signature), so the memo changes no outcome (the
golden logs are byte-identical with and without it) and a secured world
runs about a third faster. Real nodes verify every datagram themselves.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from typing import Any, Final, NamedTuple

import nacl.public
import nacl.signing

from ringward.crypto.identity import Identity
from ringward.crypto.ringsec import RingSecurity

__all__ = ["SimKeys", "VerifyMemo"]

# Signature checks remembered per world: a few rotations of every node's
# tokens and frames (each entry about 130 bytes).
VERIFY_MEMO_ENTRIES_MAX: Final = 8192


def _seed(seed: int, node: int, purpose: bytes) -> bytes:
    return hashlib.blake2b(
        f"{seed}:{node}".encode(), key=b"ringward sim keys", person=purpose, digest_size=32
    ).digest()


class _Check(NamedTuple):
    sender: int
    # BLAKE2b-256 of the signed bytes: the memo's size does not grow with
    # the datagrams' (a signed join with proofs can be 64 KiB).
    data_digest: bytes
    signature: bytes


def _check(sender: int, data: bytes, signature: bytes) -> _Check:
    return _Check(sender, hashlib.blake2b(data, digest_size=32).digest(), signature)


class VerifyMemo:
    """Outcomes of signature checks, shared by the nodes of one world
    (least recently used first out)."""

    def __init__(self, entries_max: int = VERIFY_MEMO_ENTRIES_MAX) -> None:
        self._entries_max = entries_max
        self._seen: OrderedDict[_Check, bool] = OrderedDict()
        self.hits = 0

    def lookup(self, sender: int, data: bytes, signature: bytes) -> bool | None:
        verdict = self._seen.get(_check(sender, data, signature))
        if verdict is not None:
            self.hits += 1
        return verdict

    def store(self, sender: int, data: bytes, signature: bytes, verdict: bool) -> None:
        self._seen[_check(sender, data, signature)] = verdict
        if len(self._seen) > self._entries_max:
            self._seen.popitem(last=False)


class _SimSecurity(RingSecurity):
    """RingSecurity whose signature checks go through the world's memo."""

    def __init__(self, memo: VerifyMemo, *args: Any) -> None:
        super().__init__(*args)
        self._memo = memo

    def verify(self, sender: int, data: bytes, signature: bytes) -> bool:
        verdict = self._memo.lookup(sender, data, signature)
        if verdict is None:
            verdict = super().verify(sender, data, signature)
            self._memo.store(sender, data, signature, verdict)
        return verdict


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
        self.verify_memo = VerifyMemo()

    def security(self, node: int) -> RingSecurity:
        """A fresh RingSecurity for ``node`` (a restart loses its ring keys)."""
        return _SimSecurity(
            self.verify_memo,
            self.identities[node],
            node,
            self.signing_keys,
            self.encryption_keys,
        )
