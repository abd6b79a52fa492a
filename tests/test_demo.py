"""`ringward demo` end to end: real processes, a crash, a rejoin, the checker.

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

from ringward.cli.demo_timeline import FaultKind, default_timeline
from ringward.cli.demo_verify import same_sequences
from ringward.sim.eventlog import CrashEvent, DeliverEvent, RestartEvent, ViewEvent

RINGWARD = str(Path(sys.executable).with_name("ringward"))
# Generous: a loaded 2-CPU machine starting several Python processes.
TIMEOUT_S = 120


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


def test_demo_crash_and_rejoin_passes_checks() -> None:
    code, out = _demo("--nodes", "3", "--duration", "15")
    assert code == 0, out
    assert "all checks passed" in out
    assert "node2 crashed (kill -9)" in out
    assert "node2 restarted" in out
    assert "node2 rejoined" in out
    assert "not yet available" in out  # Byzantine / overload: said, not faked


def test_demo_without_faults() -> None:
    code, out = _demo("--nodes", "3", "--duration", "3", "--no-faults")
    assert code == 0, out
    assert "all checks passed" in out
    assert "crashed" not in out


def test_demo_refuses_bad_node_count() -> None:
    code, out = _demo("--nodes", "2")
    assert code == 2
    assert "--nodes must be 3..9" in out


def test_timeline_hooks() -> None:
    steps = default_timeline(["node1", "node2", "node3"], faults=True)
    assert [s.kind for s in steps] == [FaultKind.CRASH, FaultKind.RESTART]
    assert all(s.node == "node2" for s in steps)
    assert default_timeline(["node1", "node2", "node3"], faults=False) == []


def _deliver(node: int, view: str, seq: int, mid: str) -> DeliverEvent:
    return DeliverEvent(
        t=1.0, node=node, view=view, seq=seq, id=mid, sender=1, digest="0" * 32, safe=False
    )


def _view(node: int, view: str) -> ViewEvent:
    return ViewEvent(t=0.0, node=node, view=view, kind="regular", members=(1, 2), quorate=True)


def test_same_sequences_ignores_a_crashed_visit_but_not_a_live_one() -> None:
    events = [
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
