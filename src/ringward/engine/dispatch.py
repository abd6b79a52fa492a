"""What the engine does with each kind of frame and each timer.

``FRAME_HANDLERS`` maps a frame kind to its handler; ``ACCEPTS`` the states
in which a kind is handled at all. Every kind is handled in every state but
REJECTED: in Totem a frame's path depends less on our state than on the ring
it names (ours, the one being formed, an older one of ours, or a foreign
one), and each handler picks that path (docs/protocol.md, "Engine map").
A frame reaches a handler only after its signature and the validator
(engine/validate.py): no handler re-checks a claim.

``TIMER_HANDLERS`` maps each timer (transition.TIMERS, in firing order) to
what it does.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Final

from ringward.engine import (
    accusations,
    chain,
    delivery,
    faults,
    gather,
    recovery,
    token,
    transition,
)
from ringward.engine.membership import State
from ringward.wire import CommitToken, Frame, Kind, Token

if TYPE_CHECKING:
    from ringward.engine.engine import Engine

__all__ = ["ACCEPTS", "FRAME_HANDLERS", "RECEIVING", "TIMER_HANDLERS"]

FrameHandler = Callable[["Engine", Frame, bytes], None]
TimerHandler = Callable[["Engine"], None]


def _on_data(engine: Engine, frame: Frame, raw: bytes) -> None:
    delivery.on_data(engine, frame, raw)


def _on_token(engine: Engine, frame: Frame, raw: bytes) -> None:
    assert isinstance(frame.body, Token)
    token.on_token(engine, frame, raw)


def _on_token_request(engine: Engine, frame: Frame, raw: bytes) -> None:
    token.on_token_request(engine, frame)


def _on_accusation(engine: Engine, frame: Frame, raw: bytes) -> None:
    accusations.on_accusation(engine, frame)


def _on_proof(engine: Engine, frame: Frame, raw: bytes) -> None:
    accusations.on_proof(engine, frame)


def _on_commit(engine: Engine, frame: Frame, raw: bytes) -> None:
    assert isinstance(frame.body, CommitToken)
    recovery.on_commit(engine, frame, raw)


FRAME_HANDLERS: Final[Mapping[Kind, FrameHandler]] = {
    Kind.DATA: _on_data,
    Kind.TOKEN: _on_token,
    Kind.JOIN: gather.on_join_frame,
    Kind.COMMIT: _on_commit,
    Kind.TOKEN_REQUEST: _on_token_request,
    Kind.ACCUSATION: _on_accusation,
    Kind.PROOF: _on_proof,
}

_LIVE: Final = frozenset(State) - {State.REJECTED}
ACCEPTS: Final[Mapping[Kind, frozenset[State]]] = {kind: _LIVE for kind in FRAME_HANDLERS}
# States that handle some kind: in any other, a datagram is dropped unread.
RECEIVING: Final = frozenset().union(*ACCEPTS.values())


def _token_loss(engine: Engine) -> None:
    faults.on_token_loss(engine)
    engine.enter_gather(engine.now, reason="token_loss")


def _link(engine: Engine) -> None:
    cur = engine.active()
    if cur is not None:
        chain.poll(engine, cur.members, cur.store)


def _rekey(engine: Engine) -> None:
    """Time for a fresh group key: the representative starts a new ring with
    the same members (a round that changes nothing but the ring id and key)."""
    members = engine.members
    if engine.state is State.OPERATIONAL and members and members[0] == engine.node_id:
        engine.enter_gather(engine.now, reason="rekey")


TIMER_HANDLERS: Final[Mapping[str, TimerHandler]] = {
    "token_rtx": token.retransmit,
    "commit_rtx": recovery.retransmit_commit,
    "token_hold": token.release_held,
    "link": _link,
    "relay": token.relay,
    "commit_relay": recovery.relay_commit,
    "token_loss": _token_loss,
    "join": gather.on_join_timer,
    "consensus": gather.on_consensus_timer,
    "rekey": _rekey,
    "rejoin": transition.rejoin,
}
assert tuple(TIMER_HANDLERS) == transition.TIMERS
