"""From the engine's events to the application's (runtime/events.py), and
the log line each one is worth."""

from __future__ import annotations

import logging

from ringward.engine.api import Delivered as EngineDelivered
from ringward.engine.api import EngineEvent, Rejoined, ViewInstalled
from ringward.engine.api import Evicted as EngineEvicted
from ringward.engine.api import Rejected as EngineRejected
from ringward.runtime.events import Delivered, Event, Evicted, Rejected, ViewChanged

__all__ = ["log_event", "to_app"]

logger = logging.getLogger("ringward.runtime")


def to_app(event: EngineEvent, members_before: tuple[int, ...]) -> Event | None:
    """The application's event for ``event`` (None: nothing to hand over).
    ``members_before``: the members of the previous view, for joined/left."""
    if isinstance(event, EngineEvicted):
        return Evicted(event.target, event.reason, event.proof)
    if isinstance(event, EngineRejected):
        return Rejected(event.reason, event.cooldown_s)
    if isinstance(event, Rejoined):
        return None
    if isinstance(event, EngineDelivered):
        return Delivered(
            event.msg_id.sender, event.payload, event.seq, event.safe, event.view, event.msg_id
        )
    return _view_change(event, members_before)


def _view_change(event: ViewInstalled, members_before: tuple[int, ...]) -> ViewChanged:
    before, after = set(members_before), set(event.members)
    return ViewChanged(
        event.view,
        event.kind,
        event.members,
        tuple(sorted(after - before)),
        tuple(sorted(before - after)),
        event.quorate,
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
