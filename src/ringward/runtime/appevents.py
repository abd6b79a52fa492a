"""From the engine's events to the application's (runtime/events.py), and
the log line each one is worth."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from ringward.crypto.roster import Roster
from ringward.engine.api import Delivered as EngineDelivered
from ringward.engine.api import EngineEvent, Rejoined, ViewInstalled
from ringward.engine.api import Evicted as EngineEvicted
from ringward.engine.api import Rejected as EngineRejected
from ringward.runtime.events import Delivered, Event, Evicted, Rejected, ViewChanged
from ringward.wire.fastnew import slot_setters

__all__ = ["delivered", "log_event", "names_of", "to_app"]

logger = logging.getLogger("ringward.runtime")


def names_of(roster: Roster) -> dict[int, str]:
    """Node id -> name in ``roster``."""
    return {entry.id: entry.name for entry in roster.nodes}


def _name(names: Mapping[int, str], node_id: int) -> str:
    # "#ID" for a node the roster does not list (revoked by a reload).
    return names.get(node_id) or f"#{node_id}"


def to_app(
    event: EngineEvent,
    members_before: tuple[int, ...],
    names: Mapping[int, str],
    roster_version: int,
) -> Event | None:
    """The application's event for ``event`` (None: nothing to hand over).
    ``members_before``: the members of the previous view, for joined/left;
    ``names`` (:func:`names_of`) and ``roster_version``: the roster in use."""
    if isinstance(event, EngineEvicted):
        return Evicted(event.target, event.reason, event.proof)
    if isinstance(event, EngineRejected):
        return Rejected(event.reason, event.cooldown_s)
    if isinstance(event, Rejoined):
        return None
    if isinstance(event, EngineDelivered):
        return delivered(event, names)
    return _view_change(event, members_before, names, roster_version)


def delivered(event: EngineDelivered, names: Mapping[int, str]) -> Delivered:
    """The application's ``Delivered`` (the common case, apart: it runs once
    per message at every node and is worth no log line)."""
    sender = event.msg_id.sender
    d = _NEW(Delivered)
    _SENDER(d, sender)
    _PAYLOAD(d, event.payload)
    _SEQ(d, event.seq)
    _SAFE(d, event.safe)
    _VIEW(d, event.view)
    _ID(d, event.msg_id)
    _NAME(d, _name(names, sender))
    return d


# Delivered(...) built faster: once per message at every node
# (ringward.wire.fastnew; tests/runtime compare it with the constructor).
_NEW = object.__new__
_SENDER, _PAYLOAD, _SEQ, _SAFE, _VIEW, _ID, _NAME = slot_setters(Delivered)


def _view_change(
    event: ViewInstalled,
    members_before: tuple[int, ...],
    names: Mapping[int, str],
    roster_version: int,
) -> ViewChanged:
    before, after = set(members_before), set(event.members)
    return ViewChanged(
        event.view,
        event.kind,
        event.members,
        tuple(sorted(after - before)),
        tuple(sorted(before - after)),
        event.quorate,
        tuple(_name(names, m) for m in event.members),
        roster_version,
    )


def log_event(name: str, event: EngineEvent, app: Event | None) -> None:
    """Log what an operator wants to see of ``event`` (node ``name``)."""
    if isinstance(event, EngineEvicted):
        how = "proof" if event.proof else "accusations"
        logger.warning("node %s: evicted node %s (%s, %s)", name, event.target, event.reason, how)
    elif isinstance(event, EngineRejected):
        logger.warning(
            "node %s: rejected (%s); rejoining in %.1f s", name, event.reason, event.cooldown_s
        )
    elif isinstance(event, Rejoined):
        logger.info("node %s: rejoined in view %s", name, event.view)
    elif isinstance(app, ViewChanged):
        logger.info(
            "node %s: %s view %s members %s joined %s left %s%s",
            name,
            app.kind,
            app.view_id,
            list(app.members),
            list(app.joined),
            list(app.left),
            "" if app.quorate else " (not quorate)",
        )
