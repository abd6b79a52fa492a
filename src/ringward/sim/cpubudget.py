"""The simulator's CPU budget for engine calls (see sim/world.py).

Virtual time cannot see how long an engine computes, so each call into an
engine is timed in this thread's CPU time, less the garbage collector's
(:func:`engine_clock`), and a watchdog (ITIMER_PROF, main thread, POSIX)
interrupts a call still running at CPU_ABORT_FACTOR budgets: a hang is a
finding, not a stuck run.
"""

from __future__ import annotations

import gc
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any, Final, TypeVar

from ringward.sim.interface import CPU_ABORT_FACTOR

__all__ = ["CpuAbort", "CpuMeter", "engine_clock"]

# The watchdog's timer; absent on some platforms (no watchdog there).
_HAVE_ITIMER: Final = hasattr(signal, "setitimer") and hasattr(signal, "SIGPROF")

_T = TypeVar("_T")


class _GcTime:
    """CPU time spent in the garbage collector so far (a gc callback,
    installed once per process): the simulator's heap, not an engine's work."""

    def __init__(self) -> None:
        self.spent = 0.0
        self._start = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._start = time.thread_time()
        else:
            self.spent += time.thread_time() - self._start


_GC_TIME: Final = _GcTime()


def engine_clock() -> float:
    """This thread's CPU time (the engines run in it; a thread of pytest or
    of the caller does not count), less the garbage collector's."""
    return time.thread_time() - _GC_TIME.spent


class CpuAbort(BaseException):
    """The watchdog interrupted an engine call (``cpu_s`` spent). A
    BaseException, so an engine's ``except Exception`` cannot swallow it."""

    def __init__(self, cpu_s: float = 0.0) -> None:
        super().__init__(cpu_s)
        self.cpu_s = cpu_s


class CpuMeter:
    """Times engine calls against ``budget_s`` (0: off) and, inside
    :meth:`watchdog`, interrupts one past CPU_ABORT_FACTOR budgets."""

    def __init__(self, budget_s: float) -> None:
        self.budget_s = max(0.0, budget_s)
        self._call_t0: float | None = None  # engine_clock() the current call began
        self._watching = False
        if _GC_TIME not in gc.callbacks:
            gc.callbacks.append(_GC_TIME)

    def run(self, fn: Callable[..., _T], *args: Any) -> tuple[_T, float]:
        """``fn(*args)`` and the CPU seconds it took, or, when the call's
        wall time was within the budget, that wall time (an upper bound: a
        thread cannot use more CPU than time passed; reading the thread's
        CPU clock is a system call, so the common case skips the second
        read). With the budget off nothing is measured (0.0). CpuAbort
        (with the CPU spent) when the watchdog cut it short. Other
        exceptions pass."""
        if self.budget_s <= 0.0:
            return fn(*args), 0.0
        wall0 = time.perf_counter()
        t0 = self._call_t0 = engine_clock()
        try:
            try:
                out = fn(*args)
            finally:
                # Cleared before anything else: the watchdog raises only
                # while a call runs (a late signal lands in this block,
                # still inside the outer try).
                self._call_t0 = None
        except CpuAbort:
            raise CpuAbort(engine_clock() - t0) from None
        wall_s = time.perf_counter() - wall0
        if wall_s <= self.budget_s:
            return out, wall_s
        return out, engine_clock() - t0

    def over(self, cpu_s: float) -> bool:
        return cpu_s > self.budget_s > 0.0

    @contextmanager
    def watchdog(self) -> Iterator[None]:
        """Interrupt engine calls that run past CPU_ABORT_FACTOR budgets,
        for the duration of the ``with`` block."""
        budget = self.budget_s
        if (
            budget <= 0.0
            or self._watching
            or not _HAVE_ITIMER
            or threading.current_thread() is not threading.main_thread()
            or signal.getsignal(signal.SIGPROF) not in (signal.SIG_DFL, None)
            or signal.getitimer(signal.ITIMER_PROF) != (0.0, 0.0)
        ):
            yield  # off, nested, or SIGPROF belongs to someone else (a profiler)
            return
        previous = signal.signal(signal.SIGPROF, self._on_sigprof)
        self._watching = True
        signal.setitimer(signal.ITIMER_PROF, budget, budget)
        try:
            yield
        finally:
            signal.setitimer(signal.ITIMER_PROF, 0.0)
            signal.signal(signal.SIGPROF, previous)
            self._watching = False

    def _on_sigprof(self, signum: int, frame: FrameType | None) -> None:
        t0 = self._call_t0
        if t0 is not None and engine_clock() - t0 > CPU_ABORT_FACTOR * self.budget_s:
            # Again at the next signal if this one is swallowed (raised in a
            # gc callback, say), until run() clears _call_t0.
            raise CpuAbort
