"""Live roster changes reach running `ringward node` processes.

As on a real cluster, each node runs from its own copy of its bundle (the
"host" directories); the admin changes the roster in the cluster directory
and `ringward keys accept` installs the new roster into each running node's
bundle. A node notices the new roster file on its next look (once a second)
and switches to it: the revoked node is out of the ring at once, reads
nothing sent after, and its datagrams are dropped on the header; an added
node joins. A roster file rolled back behind the node's back is refused, and
the node runs on.

Bounded waits only (STEP_S per step); nothing asserts on timing.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from test_runtime_cli import STEP_S, Proc, _free_ports, until

pytestmark = [pytest.mark.heavy, pytest.mark.xdist_group("loopback")]

RINGWARD = [sys.executable, "-m", "ringward"]
# Short timers, as in test_runtime_cli: a change settles in about a second.
TIMERS = ["--token-timeout-ms", "500", "--consensus-timeout-ms", "1000", "--join-timeout-ms", "50"]


def _ringward(*args: str) -> str:
    done = subprocess.run(
        [*RINGWARD, *args], capture_output=True, text=True, timeout=STEP_S, check=False
    )
    assert done.returncode == 0, f"ringward {' '.join(args)}: {done.stderr}"
    return done.stdout


def _members(names: list[str]) -> Callable[[Proc], bool]:
    def holds(p: Proc) -> bool:
        views = p.views()
        return bool(views) and views[-1]["members"] == names

    return holds


def test_revoke_and_add_reach_running_nodes(tmp_path: Path) -> None:
    ports = _free_ports(4)
    keys = tmp_path / "keys"
    addresses = [a for p in ports[:3] for a in ("--address", f"127.0.0.1:{p}")]
    _ringward("keys", "init", str(keys), "--cluster", "rl", *addresses, "--no-passphrase", *TIMERS)
    old_roster = tmp_path / "roster-v1.bin"
    shutil.copy(keys / "admin" / "roster.bin", old_roster)

    def host(name: str) -> Path:
        return tmp_path / f"host-{name}"

    def start(name: str) -> Proc:
        shutil.copytree(keys / name, host(name))  # as scp would
        state = ["--state-dir", str(tmp_path / "state" / name)]
        return Proc(tmp_path, name, "--keys", str(host(name)), *state)

    def accept(*names: str) -> None:
        """`ringward keys accept` on each node's host, at the same time."""
        roster = str(keys / "admin" / "roster.bin")
        argv = [[*RINGWARD, "keys", "accept", str(host(n)), roster] for n in names]
        pipe, null = subprocess.PIPE, subprocess.DEVNULL
        runs = [subprocess.Popen(a, stdout=null, stderr=pipe) for a in argv]
        for run in runs:
            _, err = run.communicate(timeout=STEP_S)
            assert run.returncode == 0, err.decode(errors="replace")

    procs = [start(f"node{i}") for i in (1, 2, 3)]
    fourth: Proc | None = None
    try:
        until(procs, _members(["node1", "node2", "node3"]), "a ring of three")
        _ringward("keys", "revoke", str(keys), "node3", "--yes")
        accept("node1", "node2")
        pair = procs[:2]
        until(pair, _members(["node1", "node2"]), "node3 out after revoke")
        procs[0].send("after-revoke")
        until(pair, lambda p: p.data("after-revoke") != [], "delivery without node3")
        # node3 runs on (its host never got the new roster) and still sends:
        # dropped on the header.
        status = _status_until(tmp_path / "state" / "node1", lambda st: _refused(st) > 0)
        assert status["roster_version"] == 2
        procs[2].pump(0.5)
        assert procs[2].data("after-revoke") == []

        _ringward(
            "keys",
            "add",
            str(keys),
            "--name",
            "node4",
            "--address",
            f"127.0.0.1:{ports[3]}",
            "--no-passphrase",
        )
        accept("node1", "node2")
        fourth = start("node4")
        trio = [*pair, fourth]
        until(trio, _members(["node1", "node2", "node4"]), "node4 joined")
        fourth.send("from-node4")
        until(trio, lambda p: p.data("from-node4") != [], "node4's message delivered")

        # A roster rolled back behind the node's back: refused, the node runs on.
        os.replace(old_roster, host("node1") / "roster.bin")
        until([procs[0]], lambda p: "rollback" in p.stderr(), "the rollback refused")
        procs[1].send("still-running")
        until(trio, lambda p: p.data("still-running") != [], "the ring still delivers")
        assert procs[2].data("still-running") == []
    finally:
        for p in [*procs, *([fourth] if fourth else [])]:
            p.close()


def _status_until(state: Path, cond: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    """`ringward status --json` of the node in ``state``, asked again
    (bounded) until ``cond`` holds."""
    deadline = time.monotonic() + STEP_S
    while True:
        status: dict[str, Any] = json.loads(
            _ringward("status", "--state-dir", str(state), "--json")
        )
        if cond(status):
            return status
        if time.monotonic() > deadline:
            pytest.fail(f"status never satisfied the condition: {status}")
        time.sleep(0.2)


def _refused(status: dict[str, Any]) -> int:
    drops = status["drops"]
    return int(drops.get("foreign_cluster", 0)) + int(drops.get("unknown_sender", 0))
