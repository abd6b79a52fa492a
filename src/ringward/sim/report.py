"""What the guarantee checker returns: violations, grouped in one report.

Each :class:`Violation` names the guarantee it breaks by number (the numbering
of docs/guarantees.md) and by a short machine-readable ``name``. A broken log
can break one rule millions of times; the collector keeps the first few of each
name and counts the rest, so a report stays small and fast to print.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final

from ringward.eventlog import Event

__all__ = ["GUARANTEES", "VIOLATIONS_PER_NAME_MAX", "Report", "Violation"]

# Numbers used in Violation.guarantee; see docs/guarantees.md.
GUARANTEES: Final[dict[int, str]] = {
    0: "structure",
    1: "total order",
    2: "no duplication, no creation",
    3: "self delivery and liveness",
    4: "virtual synchrony",
    5: "safe delivery",
    6: "configuration agreement",
    7: "sender FIFO",
}

# Violations kept per (guarantee, name); the rest are only counted. Enough to
# see a pattern, few enough that a broken million-line log reports at once.
VIOLATIONS_PER_NAME_MAX: Final = 10

# Offending events quoted in one violation.
EVENTS_PER_VIOLATION_MAX: Final = 4


@dataclass(frozen=True, slots=True)
class Violation:
    """One broken guarantee.

    ``guarantee`` is 1-7 (docs/guarantees.md) or 0 for a structural rule of
    the log; ``name`` is a stable machine-readable tag (e.g.
    ``"prefix_mismatch"``); ``message`` says which nodes, messages and views;
    ``events`` are the first few offending events (with their line numbers).
    """

    guarantee: int
    name: str
    message: str
    events: tuple[Event, ...] = ()

    def __str__(self) -> str:
        lines = ",".join(str(e.line) for e in self.events if e.line)
        where = f" [lines {lines}]" if lines else ""
        return (
            f"G{self.guarantee} {GUARANTEES[self.guarantee]} / {self.name}: {self.message}{where}"
        )


@dataclass(frozen=True, slots=True)
class Report:
    """The outcome of :func:`ringward.sim.checker.check`.

    ``violations`` holds at most ``VIOLATIONS_PER_NAME_MAX`` per name;
    ``suppressed`` counts, per name, the ones left out.
    """

    violations: tuple[Violation, ...]
    suppressed: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when no guarantee is violated."""
        return not self.violations

    @property
    def guarantees(self) -> frozenset[int]:
        """The numbers of the guarantees violated (empty when ok)."""
        return frozenset(v.guarantee for v in self.violations)

    def format(self) -> str:
        """Human-readable text: one line per violation, then what was cut."""
        if self.ok:
            return "ok: no violations"
        out = [str(v) for v in self.violations]
        out += [f"... and {n} more {name}" for name, n in sorted(self.suppressed.items())]
        return "\n".join(out)


class Collector:
    """Accumulates violations with a per-name cap (internal to the checker)."""

    __slots__ = ("_counts", "_kept")

    def __init__(self) -> None:
        self._kept: list[Violation] = []
        self._counts: Counter[str] = Counter()

    def add(self, guarantee: int, name: str, message: str, events: Iterable[Event] = ()) -> None:
        """Record one violation (kept only while under the cap for ``name``)."""
        self._counts[name] += 1
        if self._counts[name] <= VIOLATIONS_PER_NAME_MAX:
            quoted = tuple(events)[:EVENTS_PER_VIOLATION_MAX]
            self._kept.append(Violation(guarantee, name, message, quoted))

    def report(self) -> Report:
        """Freeze what was collected."""
        cut = {
            name: n - VIOLATIONS_PER_NAME_MAX
            for name, n in self._counts.items()
            if n > VIOLATIONS_PER_NAME_MAX
        }
        return Report(tuple(self._kept), cut)
