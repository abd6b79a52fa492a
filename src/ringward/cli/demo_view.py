"""What ``ringward demo`` shows: a rich Live table, or plain lines.

On a terminal, :class:`LiveView` redraws a node table (role, Totem state,
view, deliveries, and the suspicion the others hold against each node) and
the event timeline about four times a second, sized for an 80-column
terminal. Elsewhere (pipes, tests, CI), :class:`PlainView` prints one line
per timeline event and a status line every few seconds, which is what a log
file wants. Both end with the same summary table, computed from the event
logs, and the same check lines.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, Final, Protocol

from ringward.cli.demo_verify import Verdict
from ringward.errors import ConfigError

if TYPE_CHECKING:
    from rich.console import RenderableType

__all__ = ["LiveView", "PlainView", "Snapshot", "View", "state_text", "suspicion_text"]

Snapshot = Callable[[], tuple[float, list[dict[str, Any]]]]
"""Returns (seconds since the processes started, one dict per node with
``name``, ``role`` (correct, byzantine, overloaded), ``status`` (up,
joining, rejected, down), ``state`` (the engine's, from its last status
line), ``lag_s`` (how far apart its status lines run, when they are late;
else None),
``view``, ``members``, ``sent``, ``delivered`` and ``suspicion``)."""

# Timeline lines kept on screen (older ones scroll away).
TIMELINE_LINES: Final = 14
# PlainView: seconds between status lines.
STATUS_EVERY_S: Final = 2.0
# The timeline panel's borders, and one spare line so that rich never has
# to cut the display.
_PANEL_LINES: Final = 3


class View(Protocol):
    """What the demo calls; each method is cheap and never blocks."""

    def intro(self, lines: list[str]) -> None: ...
    def live(self, snapshot: Snapshot) -> contextlib.AbstractContextManager[None]: ...
    def phase(self, text: str) -> None: ...
    def event(self, t: float, text: str) -> None: ...
    def refresh(self) -> None: ...
    def summary(self, names: list[str], verdict: Verdict) -> None: ...
    def final(self, text: str) -> None: ...


def state_text(row: dict[str, Any]) -> str:
    """The node's condition in a word or two: DOWN, rejected, the Totem
    state, or ``lag 1.3 s`` when its status lines run late (a blocked
    process)."""
    if row["status"] == "down":
        return "DOWN"
    if row["status"] == "rejected":
        return "rejected"
    if row["lag_s"] is not None:
        return f"lag {row['lag_s']:.1f} s"
    return str(row["state"] or row["status"])


def suspicion_text(score: tuple[float, str, dict[str, float]] | None) -> str:
    """``(total, observer, signals)`` as ``churn 27 by node2``, or
    ``62 = slow_hold 35 + churn 27 by node2``."""
    if score is None:
        return "-"
    total, observer, signals = score
    ranked = sorted(signals.items(), key=lambda kv: -kv[1])
    parts = " + ".join(f"{k} {v:.0f}" for k, v in ranked)
    return f"{parts} by {observer}" if len(ranked) == 1 else f"{total:.0f} = {parts} by {observer}"


_SUMMARY_HEADER: Final = ("node", "role", "sent", "delivered", "views", "evicted", "back")


def _summary_rows(names: list[str], verdict: Verdict) -> list[tuple[str, ...]]:
    faults = {f.node: f for f in verdict.faults}
    rows: list[tuple[str, ...]] = []
    for i, name in enumerate(names, 1):
        fault = faults.get(i)
        if fault is None:
            role, evicted, back = "correct", "-", "-"
        else:
            role = "byzantine" if fault.kind.byzantine else "overloaded"
            evicted, back = fault.evicted_text(), fault.back_text()
        s = verdict.summaries.get(i)
        counts = ("-", "-", "-") if s is None else (str(s.sent), str(s.delivered), str(s.views))
        rows.append((name, role, *counts, evicted, back))
    return rows


def _check_lines(names: list[str], verdict: Verdict) -> list[str]:
    head = f"checker: {verdict.events} events, {verdict.views_compared} views: "
    report = verdict.report
    byzantine = [f.name for f in verdict.faults if f.kind.byzantine]
    scope = (
        f" ({', '.join(byzantine)} Byzantine: not judged; no correct node evicted but for overload)"
        if byzantine
        else ""
    )
    if report.ok:
        lines = [head + "ok, no violations" + scope]
    else:
        lines = [head + f"{len(report.violations)} violations" + scope]
        lines += [f"  {line}" for line in report.format().splitlines()[:20]]
    if verdict.sequence_problems:
        lines.append("same sequence per view: FAILED")
        lines += [f"  {p}" for p in verdict.sequence_problems[:10]]
    elif verdict.sequences_checked:
        lines.append("same sequence per view: ok (at every correct node that stayed in it)")
    else:
        lines.append("same sequence per view: not checked (the run did not settle)")
    ids = dict(enumerate(names, 1))
    for fault in verdict.faults:
        if not verdict.sequences_checked:
            word = "not judged (the run was interrupted)"
        else:
            word = "ok" if fault.ok else "FAILED"
        lines.append(f"{fault.expected}: {word} ({fault.describe(ids)})")
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
        parts = []
        for r in rows:
            # Only what is out of the ordinary: DOWN, REJECTED, a lag.
            normal = r["status"] in ("up", "joining") and r["lag_s"] is None
            note = "" if normal else " " + state_text(r).replace("rejected", "REJECTED")
            parts.append(f"{r['name']} {r['delivered']}{note}")
        line = f"t={elapsed:6.1f}s  delivered: " + ", ".join(parts)
        suspected = [
            f"{r['name']} {suspicion_text(r['suspicion'])}" for r in rows if r["suspicion"]
        ]
        if suspected:
            line += "; suspected: " + "; ".join(suspected)
        self._print(line)

    def summary(self, names: list[str], verdict: Verdict) -> None:
        rows = [_SUMMARY_HEADER, *_summary_rows(names, verdict)]
        w = [max(len(r[i]) for r in rows) for i in range(len(_SUMMARY_HEADER))]
        for r in rows:
            self._print(
                f"{r[0]:<{w[0]}}  {r[1]:<{w[1]}}  {r[2]:>{w[2]}}  {r[3]:>{w[3]}}  "
                f"{r[4]:>{w[4]}}  {r[5]:<{w[5]}}  {r[6]}"
            )
        for line in _check_lines(names, verdict):
            self._print(line)

    def final(self, text: str) -> None:
        self._print(text)


class LiveView:
    """A rich Live display, redrawn about four times a second."""

    def __init__(self, nodes: int) -> None:
        # rich is the demo extra's: the library and `ringward node` run without it.
        try:
            from rich.console import Console
        except ImportError:
            raise ConfigError(
                "missing_extra",
                "the live demo view needs rich: pip install 'ringward[demo]' "
                "(or pipe the output, e.g. `ringward demo | cat`, for plain lines)",
            ) from None

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
        from rich import box
        from rich.console import Group
        from rich.panel import Panel
        from rich.table import Table
        from rich.text import Text

        assert self._snapshot is not None
        elapsed, rows = self._snapshot()
        table = Table(
            title=f"ringward demo - t={elapsed:5.1f}s",
            title_justify="left",
            box=box.SIMPLE_HEAD,
            pad_edge=False,
            collapse_padding=True,
        )
        for col in ("node", "role", "state", "view", "sent", "delivered"):
            # Only the last column wraps: on 80 columns it gets what is left.
            table.add_column(
                col, justify="right" if col in ("sent", "delivered") else "left", no_wrap=True
            )
        table.add_column("suspected")
        styles = {"up": "green", "joining": "yellow", "rejected": "bold red", "down": "bold red"}
        for r in rows:
            lagging = r["lag_s"] is not None and r["status"] == "up"
            style = "bold yellow" if lagging else styles.get(r["status"], "")
            table.add_row(
                r["name"],
                Text(r["role"], style="" if r["role"] == "correct" else "magenta"),
                Text(state_text(r), style=style),
                f"{r['view']} {r['members']}/{self._nodes}" if r["view"] else "-",
                str(r["sent"]),
                str(r["delivered"]),
                Text(suspicion_text(r["suspicion"]), style="yellow" if r["suspicion"] else ""),
            )
        # As many timeline lines (one each, cut at the width) as fit under
        # the table: rich would cut a display taller than the terminal.
        height = len(self.console.render_lines(table, self.console.options, pad=False))
        room = max(3, self.console.height - height - _PANEL_LINES)
        with self._lock:
            lines = self._timeline[-room:]
        timeline = Text("\n".join(lines), no_wrap=True, overflow="ellipsis")
        return Group(table, Panel(timeline, title="timeline", title_align="left"))

    def summary(self, names: list[str], verdict: Verdict) -> None:
        from rich import box
        from rich.table import Table

        table = Table(
            title="summary (from the event logs)",
            title_justify="left",
            box=box.SIMPLE_HEAD,
            pad_edge=False,
            collapse_padding=True,
        )
        for col in _SUMMARY_HEADER:
            right = col in ("sent", "delivered", "views")
            table.add_column(col, justify="right" if right else "left")
        for row in _summary_rows(names, verdict):
            table.add_row(*row)
        self.console.print(table)
        for line in _check_lines(names, verdict):
            self.console.print(line, highlight=False)

    def final(self, text: str) -> None:
        style = "bold green" if text == "all checks passed" else "bold red"
        self.console.print(text, style=style)
