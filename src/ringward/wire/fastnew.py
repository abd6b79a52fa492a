"""Building frozen slots dataclasses on the per-message path.

A frozen dataclass's generated ``__init__`` sets each field through
``object.__setattr__`` (a global lookup and a call per field): 0.5 µs for a
five-field event, made once per message at every node, several times over
(batch entry, engine event, application event). Setting the slots through
their descriptors makes the same object in about half the time
(docs/performance.md, "Where a node's CPU goes"). The instances are the
classes' own, still frozen; tests compare each fast constructor with the
class's ``__init__``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

__all__ = ["slot_setters"]

Setter = Callable[[Any, Any], None]


def slot_setters(cls: type) -> tuple[Setter, ...]:
    """The setters of a slots dataclass's fields, in field order."""
    return tuple(getattr(cls, f.name).__set__ for f in dataclasses.fields(cls))
