"""``ringward node`` processes in their namespaces, and what is done to them.

Each node runs as ``ip netns exec NS python -m ringward node ...`` (``ip``
execs, so the pid is the node's), in its own session so that ``killpg``
reaches it and nothing it spawned survives it, with ``--exit-on-eof`` so
that a node whose harness died (stdin closed) stops by itself. Every
incarnation writes a fresh event log; the parent notes on its monotonic
clock when each started and was killed (the merge needs both, see
:mod:`chaoskit.judge`). stdout is read in a thread: view lines are stamped
with the parent's clock, from which reconfiguration times are measured.

Faults on processes: kill -9 (:meth:`NodeProc.kill`), SIGSTOP/SIGCONT
(:meth:`NodeProc.pause`), CPU starvation by a cgroup quota
(:class:`CpuThrottle`, cgroup v2 ``cpu.max`` or v1 ``cpu.cfs_quota_us``).
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Final

from chaoskit import cleanup

__all__ = ["CpuThrottle", "Incarnation", "NodeProc", "ViewSeen", "cgroup_cpu_missing", "cli_has"]

# How long a node may take to exit after SIGTERM before it is killed.
STOP_GRACE_S: Final = 10.0
# cgroup period for the CPU quota (the kernel's default).
CPU_PERIOD_US: Final = 100_000
CGROUP_V2: Final = Path("/sys/fs/cgroup")
CGROUP_V1_CPU: Final = Path("/sys/fs/cgroup/cpu")


@functools.cache
def _help(command: tuple[str, ...]) -> str:
    res = subprocess.run(
        [sys.executable, "-m", "ringward", *command, "--help"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    return res.stdout


def cli_has(command: tuple[str, ...], option: str) -> bool:
    """Whether ``ringward COMMAND`` offers ``option`` (the CLI still grows)."""
    return option in _help(command)


@dataclass(slots=True)
class Incarnation:
    """One process of one node."""

    number: int
    log: Path
    started: float  # parent monotonic
    killed: float | None = None


@dataclass(frozen=True, slots=True)
class ViewSeen:
    """A view line of a node's stdout, stamped with the parent's clock."""

    t: float
    node: int
    view: str
    kind: str
    members: frozenset[int]


@dataclass(slots=True)
class _Counters:
    written: int = 0
    evictions: list[dict[str, Any]] = field(default_factory=list)
    rejections: int = 0


class NodeProc:
    """One node slot; :meth:`start` again after :meth:`kill` makes a new
    incarnation."""

    def __init__(
        self,
        *,
        name: str,
        node_id: int,
        ns: str,
        bind: str,
        keydir: Path,
        rundir: Path,
        ids: dict[str, int],
        views: list[ViewSeen],
        lock: threading.Lock,
    ) -> None:
        self.name = name
        self.node_id = node_id
        self.ns = ns
        self.bind = bind
        self.keydir = keydir  # a bundle, or an admin directory (older layout)
        self._rundir = rundir
        self._ids = ids
        self._views = views
        self._lock = lock
        self.incarnations: list[Incarnation] = []
        self.proc: subprocess.Popen[bytes] | None = None
        self._err: IO[bytes] | None = None
        self.extra_args: tuple[str, ...] = ()
        self.counters = _Counters()
        self.ring_seq_file = rundir / f"{name}.ring.seq"
        self.state_dir = rundir / f"{name}.state"
        self._undo: cleanup.Undo | None = None

    @property
    def up(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def command(self, log: Path) -> list[str]:
        cmd = [
            "ip",
            "netns",
            "exec",
            self.ns,
            sys.executable,
            "-m",
            "ringward",
            "node",
            "--keys",
            str(self.keydir),
            "--name",
            self.name,
            "--bind",
            self.bind,
            "--event-log",
            str(log),
            "--ring-seq-file",
            str(self.ring_seq_file),
            # A harness that dies closes stdin: the node then stops by itself.
            "--exit-on-eof",
            # The harness stops the whole ring at once (see Cluster.stop_all).
            "--no-leave",
        ]
        if cli_has(("node",), "--state-dir"):
            cmd += ["--state-dir", str(self.state_dir)]
        return [*cmd, *self.extra_args]

    def start(self) -> None:
        number = len(self.incarnations) + 1
        log = self._rundir / f"{self.name}.{number}.jsonl"
        self._err = (self._rundir / f"{self.name}.{number}.err").open("wb")
        started = time.monotonic()
        self.proc = subprocess.Popen(
            self.command(log),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._err,
            start_new_session=True,
        )
        if self._undo is None:
            self._undo = cleanup.register(f"kill node {self.name}", self.cleanup)
        self.incarnations.append(Incarnation(number, log, started))
        threading.Thread(
            target=self._read, args=(self.proc,), name=f"chaos-{self.name}", daemon=True
        ).start()

    def _read(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        for raw in proc.stdout:
            try:
                line = json.loads(raw)
            except ValueError:
                continue
            if isinstance(line, dict):
                self._line(line)

    def _line(self, line: dict[str, Any]) -> None:
        event = line.get("event")
        if event == "view":
            seen = ViewSeen(
                time.monotonic(),
                self.node_id,
                str(line.get("view")),
                str(line.get("kind")),
                frozenset(self._ids.get(str(m), -1) for m in line.get("members", ())),
            )
            with self._lock:
                self._views.append(seen)
        elif event == "evict":
            with self._lock:
                self.counters.evictions.append(line)
        elif event == "rejected":
            with self._lock:
                self.counters.rejections += 1

    def write(self, text: str) -> bool:
        """One line for the node to broadcast; False if it is not running."""
        proc = self.proc
        if proc is None or proc.stdin is None or proc.poll() is not None:
            return False
        try:
            proc.stdin.write(text.encode("ascii") + b"\n")
            proc.stdin.flush()
        except (BrokenPipeError, OSError, ValueError):
            return False
        self.counters.written += 1
        return True

    def signal(self, sig: int) -> None:
        proc = self.proc
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, sig)

    def kill(self) -> None:
        """kill -9."""
        proc = self.proc
        if proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(STOP_GRACE_S)
        self.incarnations[-1].killed = time.monotonic()
        self._close()

    def pause(self, paused: bool) -> None:
        """SIGSTOP (True) or SIGCONT (False)."""
        self.signal(signal.SIGSTOP if paused else signal.SIGCONT)

    def wait_exit(self, timeout_s: float) -> bool:
        proc = self.proc
        if proc is None:
            return True
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            return False
        return True

    def _close(self) -> None:
        proc = self.proc
        if proc is not None and proc.stdin is not None:
            with contextlib.suppress(OSError):
                proc.stdin.close()
        if self._err is not None:
            self._err.close()
            self._err = None

    def cleanup(self) -> None:
        """Kill whatever is left (idempotent)."""
        proc = self.proc
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(STOP_GRACE_S)
        self._close()


def _cgroup_v2_cpu() -> bool:
    controllers = CGROUP_V2 / "cgroup.controllers"
    return controllers.exists() and "cpu" in controllers.read_text().split()


def cgroup_cpu_missing() -> str | None:
    """None if a CPU quota can be set here, else why not."""
    if _cgroup_v2_cpu() or (CGROUP_V1_CPU / "cpu.cfs_quota_us").exists():
        return None
    return "no cgroup cpu controller (v2 cpu.max or v1 cpu.cfs_quota_us)"


class CpuThrottle:
    """A cgroup holding one process at ``percent`` of one CPU; removed (the
    process put back where it was) by :meth:`release`."""

    def __init__(self, pid: int, percent: float, tag: str) -> None:
        self.pid = pid
        v2 = _cgroup_v2_cpu()
        root = CGROUP_V2 if v2 else CGROUP_V1_CPU
        self.root = root
        self.path = root / f"{tag}-cpu"
        self._home = self._current_group(v2)
        self.path.mkdir()
        quota_us = max(1000, int(CPU_PERIOD_US * percent / 100))
        if v2:
            (self.path / "cpu.max").write_text(f"{quota_us} {CPU_PERIOD_US}\n")
        else:
            (self.path / "cpu.cfs_period_us").write_text(f"{CPU_PERIOD_US}\n")
            (self.path / "cpu.cfs_quota_us").write_text(f"{quota_us}\n")
        self._undo = cleanup.register(f"remove cgroup {self.path}", self._remove)
        (self.path / "cgroup.procs").write_text(f"{pid}\n")

    def _current_group(self, v2: bool) -> Path:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{self.pid}/cgroup").read_text().splitlines():
                _, controllers, path = line.split(":", 2)
                if (v2 and controllers == "") or (not v2 and "cpu" in controllers.split(",")):
                    return self.root / path.lstrip("/")
        return self.root

    def release(self) -> None:
        self._undo.run()

    def _remove(self) -> None:
        procs = (self.path / "cgroup.procs").read_text().split()
        for pid in procs:
            with contextlib.suppress(OSError):
                (self._home / "cgroup.procs").write_text(f"{pid}\n")
        # rmdir, not rmtree: a cgroup directory is removed as a whole.
        for _ in range(50):
            try:
                self.path.rmdir()
                return
            except OSError:
                time.sleep(0.1)
        self.path.rmdir()
