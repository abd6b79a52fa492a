"""What ``ringward demo`` shows: a rich Live table, or plain lines.

On a terminal, :class:`LiveView` redraws a node table and the event
timeline about four times a second. Elsewhere (pipes, tests, CI),
:class:`PlainView` prints one line per timeline event and a status line
every few seconds, which is what a log file wants.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, Final, Protocol

from ringward.cli.demo_verify import Verdict

if TYPE_CHECKING:
    from rich.console import RenderableType

__all__ = ["LiveView", "PlainView", "Snapshot", "View"]

Snapshot = Callable[[], tuple[float, list[dict[str, Any]]]]
"""Returns (seconds since streaming began, one dict per node)."""

# Timeline lines kept on screen (older ones scroll away).
TIMELINE_LINES: Final = 14
# PlainView: seconds between status lines.
STATUS_EVERY_S: Final = 2.0


class View(Protocol):
    """What the demo calls; each method is cheap and never blocks."""

    def intro(self, lines: list[str]) -> None: ...
    def live(self, snapshot: Snapshot) -> contextlib.AbstractContextManager[None]: ...
    def phase(self, text: str) -> None: ...
    def event(self, t: float, text: str) -> None: ...
    def refresh(self) -> None: ...
    def summary(self, names: list[str], verdict: Verdict) -> None: ...
    def final(self, text: str) -> None: ...


def _summary_rows(names: list[str], verdict: Verdict) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    for i, name in enumerate(names, 1):
        s = verdict.summaries.get(i)
        if s is None:
            rows.append((name, "-", "-", "-", "-"))
        else:
            rows.append((name, str(s.incarnations), str(s.sent), str(s.delivered), str(s.views)))
    return rows


_SUMMARY_HEADER: Final = ("node", "processes", "sent", "delivered", "views")


def _check_lines(verdict: Verdict) -> list[str]:
    head = f"checker: {verdict.events} events, {verdict.views_compared} views: "
    report = verdict.report
    if report.ok:
        lines = [head + "ok, no violations"]
    else:
        lines = [head + f"{len(report.violations)} violations"]
        lines += [f"  {line}" for line in report.format().splitlines()[:20]]
    if verdict.sequence_problems:
        lines.append("same sequence per view: FAILED")
        lines += [f"  {p}" for p in verdict.sequence_problems[:10]]
    elif verdict.sequences_checked:
        lines.append("same sequence per view: ok (every node that stayed up in a view)")
    else:
        lines.append("same sequence per view: not checked (the run did not settle)")
    return lines


class PlainView:
    """Progress lines for pipes and logs."""

    def __init__(self) -> None:
        self._snapshot: Snapshot | None = None
        self._last_status = 0.0

    def _print(self, text: str) -> None:
        print(text, flush=True)

    def intro(self, lines: list[str]) -> None:
        for line in lines:
            self._print(line)

    @contextlib.contextmanager
    def live(self, snapshot: Snapshot) -> Iterator[None]:
        self._snapshot = snapshot
        self._last_status = time.monotonic()
        yield

    def phase(self, text: str) -> None:
        self._print(f"== {text}")

    def event(self, t: float, text: str) -> None:
        self._print(f"t={t:6.1f}s  {text}")

    def refresh(self) -> None:
        now = time.monotonic()
        if self._snapshot is None or now - self._last_status < STATUS_EVERY_S:
            return
        self._last_status = now
        elapsed, rows = self._snapshot()
        parts = [f"{r['name']} {r['delivered']}" if r["up"] else f"{r['name']} DOWN" for r in rows]
        self._print(f"t={elapsed:6.1f}s  delivered: " + ", ".join(parts))

    def summary(self, names: list[str], verdict: Verdict) -> None:
        rows = [_SUMMARY_HEADER, *_summary_rows(names, verdict)]
        for row in rows:
            self._print(f"{row[0]:<8} {row[1]:>9} {row[2]:>7} {row[3]:>10} {row[4]:>6}")
        for line in _check_lines(verdict):
            self._print(line)

    def final(self, text: str) -> None:
        self._print(text)


class LiveView:
    """A rich Live display, redrawn about four times a second."""

    def __init__(self, nodes: int) -> None:
        from rich.console import Console

        self.console = Console()
        self._nodes = nodes
        self._snapshot: Snapshot | None = None
        self._phase = ""
        self._timeline: list[str] = []
        self._lock = threading.Lock()

    def intro(self, lines: list[str]) -> None:
        for line in lines:
            self.console.print(line, highlight=False)

    @contextlib.contextmanager
    def live(self, snapshot: Snapshot) -> Iterator[None]:
        from rich.live import Live

        self._snapshot = snapshot
        with Live(console=self.console, refresh_per_second=4, get_renderable=self._render):
            yield

    def phase(self, text: str) -> None:
        with self._lock:
            self._phase = text
        self.event(None, text)

    def event(self, t: float | None, text: str) -> None:
        with self._lock:
            stamp = "       " if t is None else f"{t:6.1f}s"
            self._timeline.append(f"{stamp}  {text}")
            del self._timeline[:-TIMELINE_LINES]

    def refresh(self) -> None:
        """Live redraws on its own thread; nothing to do here."""

    def _render(self) -> RenderableType:
        from rich.console import Group
        from rich.panel import Panel
        from rich.table import Table
        from rich.text import Text

        assert self._snapshot is not None
        elapsed, rows = self._snapshot()
        table = Table(title=f"ringward demo - t={elapsed:5.1f}s", title_justify="left")
        for col in ("node", "status", "view", "members", "sent", "delivered", "last seq"):
            table.add_column(col, justify="left" if col in ("node", "status", "view") else "right")
        for r in rows:
            status = Text("up", style="green") if r["up"] else Text("DOWN", style="bold red")
            if r["up"] and r["view"] is None:
                status = Text("joining", style="yellow")
            table.add_row(
                r["name"] + (f" (#{r['incarnation']})" if r["incarnation"] > 1 else ""),
                status,
                r["view"] or "-",
                f"{r['members']}/{self._nodes}" if r["view"] else "-",
                str(r["sent"]),
                str(r["delivered"]),
                "-" if r["last_seq"] is None else str(r["last_seq"]),
            )
        with self._lock:
            timeline = "\n".join(self._timeline)
        return Group(table, Panel(Text(timeline), title="timeline", title_align="left"))

    def summary(self, names: list[str], verdict: Verdict) -> None:
        from rich.table import Table

        table = Table(title="summary (from the event logs)", title_justify="left")
        for col in _SUMMARY_HEADER:
            table.add_column(col, justify="left" if col == "node" else "right")
        for row in _summary_rows(names, verdict):
            table.add_row(*row)
        self.console.print(table)
        for line in _check_lines(verdict):
            self.console.print(line, highlight=False)

    def final(self, text: str) -> None:
        style = "bold green" if text == "all checks passed" else "bold red"
        self.console.print(text, style=style)
