"""Our own proofs: sign, convict, broadcast.

A proof is signed statements whose content alone convicts their signer
(engine/evidence.py checks it): the verdict needs no one else's word. Like
every verdict (a received proof, or f+1 accusations), it is handed to the
engine, which alone acts on it (``Engine.act``, engine/transition.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ringward.engine.reasons import Drop, Note
from ringward.errors import WireError
from ringward.wire import Frame, Proof, RingId
from ringward.wire import signing_bytes as _signing_bytes

if TYPE_CHECKING:
    from ringward.engine.engine import Engine

__all__ = ["convict", "members_of", "prove", "verify"]


def verify(engine: Engine, frame: Frame) -> bool:
    return engine.security.verify(frame.sender, _signing_bytes(frame), frame.signature)


def members_of(engine: Engine, ring: RingId) -> tuple[int, ...] | None:
    return engine.known_rings.get(ring)


def prove(engine: Engine, target: int, kind: str, statements: tuple[Frame, ...]) -> None:
    """Signed statements that convict ``target`` (engine/validate.py)."""
    if engine.config.fault_detector and target != engine.node_id:
        convict(engine, target, kind, statements)


def convict(engine: Engine, target: int, kind: str, statements: tuple[Frame, ...]) -> None:
    """We hold a proof: sign it, convict, broadcast it to every node."""
    ring = engine.ring or RingId(engine.node_id, 0)
    try:
        frame, raw = engine.sign_frame(ring, Proof(target, kind, statements))
    except WireError:
        # Cannot happen with tokens bounded by rule:size; never raise anyway.
        engine.drops[Drop.PROOF_TOO_LARGE] += 1
        return
    v = engine.detector.convict(engine.now, target, kind, True, (frame,))
    if v is None:
        return
    engine.detector.spent(target)
    engine.notes[f"{Note.PROOF}:{kind}"] += 1
    engine.send(None, raw)
    engine.act(v)
