"""Simulation: the seeded world, its fault models and the guarantee checker.

``checker`` verifies an event log (:mod:`ringward.eventlog`, the format the
simulator and the runtime write) against the guarantees of
docs/guarantees.md (also as ``python -m ringward.sim.checker LOG.jsonl``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ringward.sim.report import Report, Violation

if TYPE_CHECKING:
    from ringward.sim.checker import check

__all__ = ["Report", "Violation", "check"]


def __getattr__(name: str) -> Any:
    # Imported lazily so that `python -m ringward.sim.checker` does not find
    # the module already imported by its own package (runpy warns about that).
    if name == "check":
        from ringward.sim.checker import check

        return check
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
