"""runtime/lagprobe.py: how far behind the event loop runs, as the runtime
reports it in its signed load reports. Probe times are given, not measured."""

from __future__ import annotations

import pytest

from ringward.runtime.lagprobe import PROBE_S, LagProbe


def _behind(lags_s: list[float]) -> list[float]:
    """What a probe reports when each probe fires ``lag`` after it is due."""
    probe = LagProbe()
    now_s = 100.0
    due_s = probe.start(now_s)
    out = []
    for lag_s in lags_s:
        now_s = due_s + lag_s
        out.append(probe.sample(now_s))
        due_s = probe.due_s
        assert due_s == pytest.approx(now_s + PROBE_S)
    return out


def test_one_late_probe_is_a_pause_caught_up_and_never_reported() -> None:
    """A SIGSTOP or GC pause of 0.75 s: late once, on time at the next probe."""
    assert _behind([0.0, 0.0, 0.75, 0.0, 0.0, 0.75, 0.0]) == [0.0] * 7


def test_a_loop_that_stays_behind_is_reported_from_its_second_late_probe() -> None:
    """``--misbehave overload`` as measured on real processes: a batch of 64
    datagrams at 20 ms each blocks the loop about 1.2-1.3 s at every probe."""
    assert _behind([0.0, 1.28, 1.31, 1.22, 1.24]) == pytest.approx([0.0, 0.0, 1.28, 1.22, 1.22])


def test_the_smaller_lateness_of_two_probes_counts() -> None:
    assert _behind([0.9, 0.6, 0.0, 0.6, 0.9]) == pytest.approx([0.0, 0.6, 0.0, 0.0, 0.6])


def test_start_forgets_the_previous_lateness() -> None:
    probe = LagProbe()
    probe.start(0.0)
    probe.sample(5.0)  # very late
    due_s = probe.start(10.0)
    assert probe.sample(due_s + 0.9) == 0.0
