"""The event loop ringward runs on: uvloop on Linux when it is installed.

The default loop's UDP receive path measured ~48k datagrams/s on the
reference machine against ~360k with uvloop (DESIGN.md §4), so the CLI and
the blocking facade use uvloop when they can. An application that runs its
own loop keeps it: ``Node`` works on any asyncio loop.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Coroutine
from typing import Any, TypeVar

__all__ = ["new_event_loop", "run"]

T = TypeVar("T")


def new_event_loop(*, prefer_uvloop: bool = True) -> asyncio.AbstractEventLoop:
    """A new event loop: uvloop's when preferred, on Linux, and importable;
    otherwise the default asyncio loop."""
    if prefer_uvloop and sys.platform == "linux":
        try:
            import uvloop
        except ImportError:
            pass
        else:
            return uvloop.new_event_loop()
    return asyncio.new_event_loop()


def run(main: Coroutine[Any, Any, T], *, prefer_uvloop: bool = True) -> T:
    """``asyncio.run(main)`` on :func:`new_event_loop`'s loop."""
    with asyncio.Runner(loop_factory=lambda: new_event_loop(prefer_uvloop=prefer_uvloop)) as r:
        return r.run(main)
