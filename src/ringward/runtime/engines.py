"""Building a node's engine from its roster: at start, and again at each
live roster reload (runtime/reload.py).

The cluster id a node writes into every datagram header, and expects in
every header it reads, is the roster's cluster id bound to the roster's
version (:func:`wire_cluster_id`). Nodes that run different versions of the
roster therefore drop each other's datagrams on the header, before any
signature check: during a rolling roster change the updated nodes form their
ring undisturbed by the others (which otherwise keep pulling them into
membership rounds that cannot agree, since the two sides disagree on who
the members are), and a node that missed the change shows up as
``foreign_cluster`` drops instead of churning the ring
(docs/keys.md, "Changing the roster of a running cluster").
"""

from __future__ import annotations

import hashlib
import os
from typing import Final, NamedTuple

from ringward.crypto.identity import Identity
from ringward.crypto.ringsec import RingSecurity
from ringward.crypto.roster import Roster
from ringward.engine import Engine, EngineConfig
from ringward.runtime import misbehave as misbehaving
from ringward.runtime.options import SecurityFactory
from ringward.wire import limits

__all__ = ["EngineSpec", "make_engine", "wire_cluster_id"]

_WIRE_ID_PERSON: Final = b"rw-wire-cluster1"


def wire_cluster_id(roster: Roster) -> bytes:
    """The 8-byte header cluster id of ``roster``'s nodes: BLAKE2b-64 of
    the roster's cluster id and version (personalized)."""
    data = roster.cluster_id + roster.version.to_bytes(8, "big")
    return hashlib.blake2b(
        data, digest_size=limits.CLUSTER_ID_BYTES, person=_WIRE_ID_PERSON
    ).digest()


class EngineSpec(NamedTuple):
    """What the engine of one node is built from, besides the roster."""

    node_id: int
    name: str
    identity: Identity
    config: EngineConfig
    security: SecurityFactory | None
    misbehave: misbehaving.Misbehaviour | None
    misbehave_after_s: float


def make_engine(
    roster: Roster, spec: EngineSpec, ring_seq: int, now: float
) -> tuple[Engine, misbehaving.OverloadWindow | None]:
    """A new engine for ``roster``, starting from ``ring_seq`` at ``now``,
    with a fresh incarnation; and the overload window of ``--misbehave
    overload``. ``spec.security`` None is :class:`RingSecurity`."""
    security = (
        spec.security(roster, spec.identity, spec.node_id)
        if spec.security is not None
        else RingSecurity.from_roster(roster, spec.identity)
    )
    ids = [n.id for n in roster.nodes]
    # A fresh 31-bit incarnation per engine keeps message ids unique across
    # restarts and roster reloads (engine/api.py, MessageId).
    incarnation = int.from_bytes(os.urandom(4), "big") & 0x7FFF_FFFF
    if spec.misbehave is None:
        engine = Engine(
            spec.node_id,
            ids,
            config=spec.config,
            cluster_id=wire_cluster_id(roster),
            incarnation=incarnation,
            ring_seq=ring_seq,
            now=now,
            security=security,
        )
        return engine, None
    return misbehaving.make_engine(
        spec.node_id,
        ids,
        spec.misbehave,
        now + spec.misbehave_after_s,
        name=spec.name,
        after_s=spec.misbehave_after_s,
        config=spec.config,
        cluster_id=wire_cluster_id(roster),
        incarnation=incarnation,
        ring_seq=ring_seq,
        now=now,
        security=security,
    )
