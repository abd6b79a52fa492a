"""A deterministic work meter for engine calls, shared by the member fuzz
target and the extreme-value property (tests/engine/test_extreme_values.py).

``sys.settrace`` counts every call, line and return event of Python code
while one engine call runs; past the budget the call is aborted from the
trace function with :class:`BudgetError`, so a hang is a quick finding.
Line events make a loop visible even when its body calls nothing; loops
inside C (``list(range(n))``) stay invisible and are left to memory bounds.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from types import FrameType
from typing import Any

__all__ = ["BudgetError", "Meter", "ringward_site"]


class BudgetError(Exception):
    """An engine call ran past its budget of trace events; ``args[0]`` is
    the innermost ringward function then running."""

    def __init__(self, site: str, budget: int) -> None:
        super().__init__(site)
        self.site = site
        self.budget = budget

    def __str__(self) -> str:
        return f"more than {self.budget} trace events, in {self.site}()"


def ringward_site(frame: FrameType | None) -> str:
    """The innermost ringward function on ``frame``'s stack."""
    while frame is not None:
        if f"{os.sep}ringward{os.sep}" in frame.f_code.co_filename:
            return frame.f_code.co_name
        frame = frame.f_back
    return "?"


class Meter:
    """Counts trace events of one engine call at a time (``call``); ``peak``
    is the largest count seen, for measuring a budget."""

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.count = 0
        self.peak = 0

    def _trace(self, frame: FrameType, event: str, arg: object) -> Any:
        self.count += 1
        if self.count > self.budget:
            sys.settrace(None)
            raise BudgetError(ringward_site(frame), self.budget)
        return self._trace

    def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        self.count = 0
        outer = sys.gettrace()
        sys.settrace(self._trace)
        try:
            return fn(*args)
        finally:
            sys.settrace(outer)
            self.peak = max(self.peak, self.count)
