"""`ringward demo` end to end: real processes, a Byzantine node and an
overloaded one, the checker.

The demo runs through the console script, as `make demo` does, with stdout
a pipe (so it prints plain progress lines). Every wait is bounded; on a
timeout the demo gets SIGTERM first, which it turns into a clean stop of
its children (they live in their own sessions), then SIGKILL.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Literal

import pytest

from ringward.cli.demo_timeline import FaultKind, Step, default_timeline, node_args
from ringward.cli.demo_verify import fault_outcomes, same_sequences
from ringward.eventlog import (
    ByzantineEvent,
    CrashEvent,
    DeliverEvent,
    Event,
    EvictEvent,
    RejectedEvent,
    RejoinEvent,
    RestartEvent,
    ViewEvent,
)

RINGWARD = str(Path(sys.executable).with_name("ringward"))
# Generous: a loaded 2-CPU machine starting several Python processes. Above
# the demo's own bounds (60 s to form, 60 s to settle, the streaming), so
# that a slow run fails with the demo's report rather than a bare timeout.
TIMEOUT_S = 240
NAMES = ["node1", "node2", "node3", "node4", "node5"]
# A cluster of real processes on loopback: one at a time (tests/conftest.py).
LOOPBACK = pytest.mark.xdist_group("loopback")


def _demo(*args: str) -> tuple[int, str]:
    proc = subprocess.Popen(
        [RINGWARD, "demo", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        out, _ = proc.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.communicate(timeout=20)
        raise
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return proc.returncode, out.decode("utf-8", errors="replace")


@pytest.mark.heavy
@LOOPBACK
def test_demo_evicts_byzantine_and_readmits_overloaded_node() -> None:
    # 5 nodes, as `make demo`; a shorter run: the faults start at their
    # floors (3 s and 7 s) and the demo waits, bounded, for the rejoin.
    code, out = _demo("--duration", "15")
    assert code == 0, out
    assert "node5 EVICTED for equivocation (proof)" in out
    assert "node3 EVICTED for overload (proof)" in out
    assert "node3 learns it was evicted (overload)" in out
    assert "node3 rejoined" in out
    assert "byzantine node5 evicted for equivocation: ok" in out
    assert "overloaded node3 evicted for overload and rejoined: ok" in out
    assert "checker: " in out and "ok, no violations" in out
    assert out.rstrip().endswith("all checks passed")


@pytest.mark.heavy
@LOOPBACK
def test_demo_without_faults() -> None:
    code, out = _demo("--nodes", "3", "--duration", "3", "--no-faults")
    assert code == 0, out
    assert "all checks passed" in out
    assert "timeline: no faults" in out
    assert "EVICTED" not in out and "byzantine" not in out


@pytest.mark.heavy
def test_demo_refuses_bad_node_count() -> None:
    code, out = _demo("--nodes", "2")
    assert code == 2
    assert "--nodes must be 3..9" in out
    code, out = _demo("--nodes", "3")  # faults need f >= 1
    assert code == 2
    assert "the faults need --nodes 4 or more" in out


def test_timeline() -> None:
    steps = default_timeline(NAMES, 30, faults=True)
    assert steps == [
        Step(4.5, FaultKind.EQUIVOCATE, "node5"),
        Step(9.0, FaultKind.OVERLOAD, "node3"),
    ]
    assert node_args(steps, "node5") == ["--misbehave", "equivocate", "--misbehave-after", "4.500"]
    assert node_args(steps, "node1") == []
    short = default_timeline(NAMES[:4], 5, faults=True)
    assert [(s.at, s.node) for s in short] == [(3.0, "node4"), (7.0, "node3")]
    assert default_timeline(NAMES, 30, faults=False) == []


def _deliver(node: int, view: str, seq: int, mid: str) -> DeliverEvent:
    return DeliverEvent(
        t=1.0, node=node, view=view, seq=seq, id=mid, sender=1, digest="0" * 32, safe=False
    )


def _view(node: int, view: str, members: tuple[int, ...] = (1, 2)) -> ViewEvent:
    kind: Literal["transitional", "regular"] = "transitional" if view.startswith("T") else "regular"
    return ViewEvent(t=0.0, node=node, view=view, kind=kind, members=members, quorate=True)


def test_same_sequences_ignores_a_crashed_visit_but_not_a_live_one() -> None:
    events: list[Event] = [
        _view(1, "R1"),
        _deliver(1, "R1", 1, "a"),
        _deliver(1, "R1", 2, "b"),
        _view(2, "R1"),
        _deliver(2, "R1", 1, "a"),
        CrashEvent(t=2.0, node=2),
        RestartEvent(t=3.0, node=2),
    ]
    assert same_sequences(events) == []
    events = events[:5]  # node 2 did not crash: its shorter sequence is a problem
    assert same_sequences(events)


def test_same_sequences_skips_rejected_and_byzantine_and_groups_by_next_view() -> None:
    base: list[Event] = [
        _view(1, "R1", (1, 2, 3)),
        _deliver(1, "R1", 1, "a"),
        _deliver(1, "R1", 2, "b"),
        _view(2, "R1", (1, 2, 3)),
        _deliver(2, "R1", 1, "a"),
    ]
    # Node 2 rejected in R1: stopped at a prefix, like a crash.
    assert same_sequences([*base, RejectedEvent(t=2.0, node=2, reason="overload")]) == []
    # Node 2 Byzantine: not judged at all.
    assert same_sequences([ByzantineEvent(t=0.0, node=2, behaviour="equivocate"), *base]) == []
    # Node 2 left R1 for another configuration than node 1 (a partition):
    # EVS asks agreement only of those that move on together.
    split = [*base, _view(2, "T2", (2,)), _view(1, "T3", (1,))]
    assert same_sequences(split) == []
    together = [*base, _view(2, "T3", (1, 2)), _view(1, "T3", (1, 2))]
    assert same_sequences(together)


def test_fault_outcomes() -> None:
    timeline = default_timeline(NAMES, 30, faults=True)
    ids = {name: i for i, name in enumerate(NAMES, 1)}
    everyone, correct = (1, 2, 3, 4, 5), (1, 2, 3, 4)

    def evict(node: int, target: int, reason: str) -> EvictEvent:
        return EvictEvent(t=1.0, node=node, target=target, reason=reason, proof=True)

    events: list[Event] = [_view(n, "R1", everyone) for n in everyone]
    events += [evict(n, 5, "equivocation") for n in correct]
    events += [_view(n, "R2", correct) for n in correct]
    events += [evict(n, 3, "overload") for n in (1, 2, 4)]
    events += [_view(n, "R3", (1, 2, 4)) for n in (1, 2, 4)]
    events += [RejectedEvent(t=2.0, node=3, reason="overload")]
    back = [_view(n, "R4", correct) for n in correct] + [RejoinEvent(t=5.0, node=3)]
    byzantine, overloaded = fault_outcomes([*events, *back], timeline, ids)
    assert byzantine.ok and byzantine.evicted_by == correct and byzantine.back_text() == "kept out"
    assert overloaded.ok and overloaded.evicted_by == (1, 2, 4)
    assert overloaded.back_text() == "after 3.0 s"
    # Without the rejoin, the overloaded node's outcome fails.
    _, overloaded = fault_outcomes(events, timeline, ids)
    assert not overloaded.ok and "NOT back" in overloaded.describe({3: "node3"})
    # An eviction for another reason than the expected one fails too.
    wrong = [evict(e.node, e.target, "accused") if isinstance(e, EvictEvent) else e for e in events]
    byzantine, _ = fault_outcomes([*wrong, *back], timeline, ids)
    assert not byzantine.ok
