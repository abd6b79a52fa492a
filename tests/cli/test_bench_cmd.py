"""`ringward bench --json`: one object with the documented keys.

Real processes on loopback; no assertion on timing beyond "positive".
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

RINGWARD = str(Path(sys.executable).with_name("ringward"))
REQUIRED = (
    "nodes",
    "size",
    "duration_s",
    "delivered_msgs_per_s",
    "latency_ms_p50",
    "latency_ms_p99",
    "cpu_s_per_1000_msgs",
    "cpu_pct_per_node",
    "rss_peak_mib_max",
    "rotations_per_s",
)
# Clusters on loopback with wall-clock timers: one at a time (tests/conftest.py).
pytestmark = [pytest.mark.heavy, pytest.mark.xdist_group("loopback")]


def test_bench_json() -> None:
    proc = subprocess.run(
        [RINGWARD, "bench", "--nodes", "3", "--size", "100", "--duration", "3", "--json"],
        capture_output=True,
        timeout=180,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    lines = proc.stdout.decode().strip().splitlines()
    assert len(lines) == 1
    result = json.loads(lines[0])
    for key in REQUIRED:
        assert isinstance(result[key], int | float), key
        assert result[key] > 0, key
    assert result["nodes"] == 3
    assert result["size"] == 100
    assert len(result["per_node"]) == 3
    assert result["security"].startswith("on")


def test_bench_idle_json() -> None:
    """--idle: an idle phase, then a trickle whose messages reach every node."""
    proc = subprocess.run(
        [RINGWARD, "bench", "--nodes", "3", "--duration", "2", "--idle", "--json"],
        capture_output=True,
        timeout=180,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    result = json.loads(proc.stdout)
    assert result["mode"] == "idle"
    assert result["idle_s"] == 2.0
    for key in ("idle_cpu_pct_per_node", "idle_rotations_per_s", "latency_all_ms_p50"):
        assert result[key] > 0, key
    assert result["latency_all_ms_p50"] >= result["latency_ms_p50"]
    assert all(n["idle_cpu_pct"] > 0 for n in result["per_node"])


def _refused(*args: str) -> bytes:
    """``ringward bench ARGS`` exits 2 at once; its stderr."""
    proc = subprocess.run(
        [RINGWARD, "bench", *args, "--duration", "1"],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2
    return proc.stderr


def test_bench_refuses_bad_size() -> None:
    assert b"--size" in _refused("--size", "0")


BENCH_SHORT = (RINGWARD, "bench", "--duration", "1", "--json")


def test_bench_takes_protocol_parameters() -> None:
    """The roster's signed parameters (``keys init``'s options) for the
    bench cluster; an out-of-range one is refused before anything starts."""
    assert b"max_messages" in _refused("--max-messages", "0")
    proc = subprocess.run(
        [*BENCH_SHORT, "--window-size", "100", "--max-messages", "30"],
        capture_output=True,
        timeout=180,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    assert json.loads(proc.stdout)["params"] == {"window_size": 100, "max_messages": 30}
