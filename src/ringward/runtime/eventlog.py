"""Writing the JSON Lines event log from a running node.

The format is :mod:`ringward.eventlog` (docs/guarantees.md), the
simulator's too: the same typed events, translated from the engine's by the
same :mod:`ringward.eventlog.translate` and written by the same ``to_json``,
so the guarantee checker reads runtime logs and simulator logs alike.

A path is **appended to**, never truncated: the eviction records of earlier
runs are what an operator looks for after a restart. Each line carries two
clocks:

* ``t``, the checker's clock: seconds on the monotonic clock, starting at
  0 in a new file and, in an appended file, continuing from the last ``t``
  there, so it never decreases per node even across restarts and wall-clock
  steps (the format requires that);
* ``wall``, the wall-clock time (Unix seconds), for people and for joining
  the log with other logs.

When a run appends to a log that already holds this node's events, it first
writes a ``crash`` and a ``restart`` event: the new process is a new
incarnation with none of the old one's state, which is exactly what the
checker's restart means (docs/guarantees.md). A last line cut short by a
killed process (no newline) is removed first, so the file stays parseable.
"""

from __future__ import annotations

import logging
import os
import time
from os import PathLike
from pathlib import Path
from typing import Final, TextIO

from ringward.engine.api import EngineEvent, MessageId
from ringward.errors import ConfigError, EventLogError
from ringward.eventlog import LINE_BYTES_MAX, CrashEvent, Event, RestartEvent, parse_line, to_json
from ringward.eventlog.translate import from_engine, sent

__all__ = ["EventLogWriter"]

logger = logging.getLogger("ringward.runtime")

# The tail read to find the last event: one line at most, and its newline.
_TAIL_BYTES_MAX: Final = LINE_BYTES_MAX + 2
# Mode of a log this writer creates (an existing one keeps its own).
_NEW_FILE_MODE: Final = 0o600


def _not_ours(path: Path, why: str) -> ConfigError:
    return ConfigError(
        "bad_event_log",
        f"{path}: {why}; move the file away or give another --event-log",
    )


def _last_event(path: Path) -> Event | None:
    """The last whole event of the log at ``path`` (None if empty or new),
    after cutting off a torn last line. ConfigError ``bad_event_log`` when
    the file is not an event log (the file is not ours to append to).

    Nothing is cut before the file is known to be a log: a wrong path must
    not lose its last line. A torn line is at most one line long and starts
    like a log line; the whole line before it must be an event."""
    try:
        with open(path, "rb+") as handle:
            size = handle.seek(0, os.SEEK_END)
            if size == 0:
                return None
            start = max(0, size - _TAIL_BYTES_MAX)
            handle.seek(start)
            tail = handle.read()
            cut = tail.rfind(b"\n") + 1  # 0: no newline in the tail
            whole, torn = tail[:cut], tail[cut:]
            if torn and cut == 0 and start > 0:
                raise _not_ours(path, f"its last line is longer than {LINE_BYTES_MAX} bytes")
            if torn and not (torn.startswith(b"{") and torn.isascii()):
                raise _not_ours(path, "it does not end like an event log")
            last = _parse_last(path, whole)
            if torn:
                logger.warning("event log %s: removing a torn last line", path)
                handle.truncate(start + cut)
            return last
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ConfigError("bad_event_log", f"{path}: {exc.strerror or exc}") from None


def _parse_last(path: Path, whole: bytes) -> Event | None:
    lines = whole.splitlines()
    if not lines:
        return None
    try:
        return parse_line(lines[-1], 0)
    except EventLogError as exc:
        raise _not_ours(path, f"its last line is not an event log line ({exc.message})") from None


class EventLogWriter:
    """Appends one node's events to a path or to an open text stream
    (shared by several nodes, left open; ``t`` then starts at 0)."""

    __slots__ = ("_dirty", "_file", "_node", "_owned", "_t0", "_t_base")

    def __init__(self, target: str | PathLike[str] | TextIO, node: int) -> None:
        self._node = node
        self._t_base = 0.0
        self._dirty = False
        last: Event | None = None
        if isinstance(target, str | PathLike):
            last = _last_event(Path(target))
            # A new log is private: its payload digests are unkeyed, so a
            # short payload ("yes", a small number) can be found by trying.
            flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC
            try:
                fd = os.open(target, flags, _NEW_FILE_MODE)
            except OSError as exc:
                raise ConfigError("bad_event_log", f"{target}: {exc.strerror or exc}") from None
            self._file: TextIO = open(fd, "a", encoding="ascii")  # noqa: SIM115
            self._owned = True
        else:
            self._file = target
            self._owned = False
        self._t0 = time.monotonic()
        if last is not None:
            self._t_base = last.t
            if last.node == node:
                self._write(CrashEvent(t=last.t, node=node))
                self._write(RestartEvent(t=last.t, node=node, wall=time.time()))
                self.flush()

    def new_incarnation(self) -> None:
        """The node restarted its engine in this process (a roster reload):
        to the checker a new incarnation, as after a restart."""
        t = self._t()
        self._write(CrashEvent(t=t, node=self._node))
        self._write(RestartEvent(t=t, node=self._node, wall=time.time()))
        self.flush()

    def _t(self) -> float:
        return self._t_base + (time.monotonic() - self._t0)

    def _write(self, event: Event) -> None:
        self._file.write(to_json(event) + "\n")
        self._dirty = True

    def send(self, msg_id: MessageId, payload: bytes, safe: bool) -> None:
        self._write(sent(msg_id, payload, safe, t=self._t(), node=self._node, wall=time.time()))

    def engine_event(self, event: EngineEvent) -> None:
        self._write(from_engine(event, t=self._t(), node=self._node, wall=time.time()))

    def flush(self) -> None:
        """Flush what was written since the last flush (after each engine
        verb, so a killed process loses at most the lines of one verb)."""
        if self._dirty:
            self._file.flush()
            self._dirty = False

    def close(self) -> None:
        self.flush()
        if self._owned:
            self._file.close()
