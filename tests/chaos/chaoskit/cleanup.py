"""Undo everything the harness sets up, whatever way the run ends.

Namespaces, cgroups and processes outlive the Python object that made them:
a run killed half-way would leave them behind for the next one. So every
resource registers its own undo here as it is created, and the undos run,
newest first, each at most once:

* when the ``with`` block that made them ends, normally or by an exception
  (also KeyboardInterrupt: Ctrl-C);
* at interpreter exit (atexit), for anything a crashed caller forgot;
* on SIGTERM and SIGHUP, which are turned into ``SystemExit`` so that the
  ``with`` blocks unwind as for Ctrl-C.

A run killed with SIGKILL cannot clean up; its namespaces carry its pid in
their name and :func:`sweep_stale_namespaces` removes them on the next run.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import subprocess
import threading
from collections.abc import Callable
from types import FrameType
from typing import Final

__all__ = ["NS_PREFIX", "Undo", "register", "sweep_stale_namespaces"]

# Every namespace of the suite is named rwc<pid>-...: nothing else on the
# machine is touched by the sweep.
NS_PREFIX: Final = "rwc"

_lock = threading.Lock()
_pending: dict[int, tuple[str, Callable[[], None]]] = {}
# Keys for _pending, and whether the handlers are installed (in a dict, not
# module globals rebound by functions).
_state = {"next_key": 0, "installed": 0}


class Undo:
    """A registered undo: call :meth:`run` (idempotent) when done."""

    __slots__ = ("_key",)

    def __init__(self, key: int) -> None:
        self._key = key

    def run(self) -> None:
        with _lock:
            entry = _pending.pop(self._key, None)
        if entry is not None:
            _call(*entry)


def _call(what: str, fn: Callable[[], None]) -> None:
    try:
        fn()
    except Exception as exc:
        print(f"chaos cleanup: {what} failed: {exc}", flush=True)


def register(what: str, fn: Callable[[], None]) -> Undo:
    """Remember ``fn`` (named ``what`` in messages) until it is run."""
    _install_handlers()
    with _lock:
        _state["next_key"] += 1
        key = _state["next_key"]
        _pending[key] = (what, fn)
        return Undo(key)


def run_all() -> None:
    """Run every pending undo, newest first (atexit does this too)."""
    with _lock:
        entries = sorted(_pending.items(), reverse=True)
        _pending.clear()
    for _, (what, fn) in entries:
        _call(what, fn)


def _on_signal(signum: int, frame: FrameType | None) -> None:
    # Unwind like Ctrl-C: the with blocks (and then atexit) clean up.
    raise SystemExit(128 + signum)


def _install_handlers() -> None:
    if _state["installed"]:
        return
    _state["installed"] = 1
    atexit.register(run_all)
    if threading.current_thread() is not threading.main_thread():
        return
    for sig in (signal.SIGTERM, signal.SIGHUP):
        # Only where nobody else (a test runner) handles it already.
        if signal.getsignal(sig) in (signal.SIG_DFL, None):
            signal.signal(sig, _on_signal)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_stale_namespaces() -> list[str]:
    """Delete namespaces named ``rwc<pid>-...`` whose pid is gone (a run
    killed with SIGKILL); return their names."""
    try:
        out = subprocess.run(
            ["ip", "netns", "list"], capture_output=True, text=True, check=False, timeout=10
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return []
    removed = []
    for line in out.splitlines():
        name = line.split()[0] if line.split() else ""
        if not name.startswith(NS_PREFIX):
            continue
        pid_text = name[len(NS_PREFIX) :].split("-", 1)[0]
        if not pid_text.isdigit() or _pid_alive(int(pid_text)):
            continue
        with contextlib.suppress(OSError, subprocess.TimeoutExpired):
            subprocess.run(["ip", "netns", "del", name], check=False, timeout=10)
            removed.append(name)
    return removed
