"""Deterministic keys and rosters for tests, fuzz seeds and docs.

Everything here derives from fixed labels, so the same bytes come out on
every machine (Ed25519 signing is deterministic). These keys are public
knowledge: never use them for a real cluster.
"""

from __future__ import annotations

import hashlib

from ringward.crypto.identity import AdminKey, Identity, clamp_x25519
from ringward.crypto.roster import ProtocolParams, Roster, RosterManifest

__all__ = ["example_admin", "example_identity", "example_roster"]


def _seed(label: str, size: int) -> bytes:
    return hashlib.blake2b(
        label.encode("ascii"), digest_size=size, person=b"rw-test-vector"
    ).digest()


def example_admin(label: str = "admin") -> AdminKey:
    """A fixed admin key (public knowledge: tests only)."""
    return AdminKey.from_private_bytes(_seed(f"admin:{label}", 32))


def example_identity(index: int) -> Identity:
    """The fixed identity of test node ``index``."""
    seed = _seed(f"node:{index}", 64)
    return Identity.from_private_bytes(seed[:32] + clamp_x25519(seed[32:]))


def example_roster(
    nodes: int = 3,
    *,
    cluster: str = "example",
    version: int = 1,
    admin: AdminKey | None = None,
    params: ProtocolParams | None = None,
) -> Roster:
    """A signed roster of ``nodes`` test nodes on 127.0.0.1:7401..."""
    admin = admin or example_admin()
    manifest = RosterManifest.initial(
        cluster,
        admin.public_key,
        [
            (f"node{i}", f"127.0.0.1:{7400 + i}", example_identity(i).public)
            for i in range(1, nodes + 1)
        ],
        params,
    )
    if version != 1:
        import dataclasses

        manifest = dataclasses.replace(manifest, version=version)
    return Roster.sign(manifest, admin)
