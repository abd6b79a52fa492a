"""Run a loopback benchmark: N worker processes, one result.

:func:`run_bench` provisions a throw-away cluster, starts one
:mod:`ringward.cli.bench_worker` process per node, starts them sending
together, and folds their reports into one :class:`BenchResult`. It is the
engine of ``ringward bench`` and of ``benchmarks/compare_pysyncobj.py``.

With ``idle`` the workers first sit ``duration`` seconds on a ring
carrying no messages (its CPU and token rotations are the idle cost), then
send a trickle (``IDLE_RATE_MSGS_PER_S`` across the ring unless ``rate``
says otherwise) whose latencies are those of messages on an idle ring.
The figures are defined in :mod:`ringward.cli.bench_report`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import IO, Any, Final

from ringward.cli.bench_report import (
    SECURITY_OFF,
    SECURITY_ON,
    BenchResult,
    NodeResult,
    fold,
    percentile_ms,
)
from ringward.cli.demo_cluster import provision
from ringward.crypto.roster import PARAM_BOUNDS, ProtocolParams
from ringward.errors import ConfigError, RingwardError

__all__ = [
    "IDLE_RATE_MSGS_PER_S",
    "SECURITY_OFF",
    "SECURITY_ON",
    "BenchResult",
    "NodeResult",
    "percentile_ms",
    "run_bench",
]

# Waiting for workers (seconds): start-up and ring formation on a loaded
# machine; results come after the window plus the drain.
READY_TIMEOUT_S: Final = 90.0
RESULT_SLACK_S: Final = 120.0
EXIT_TIMEOUT_S: Final = 15.0

# The roster's largest payload limit (crypto/roster.py PARAM_BOUNDS).
SIZE_MAX_BYTES: Final = PARAM_BOUNDS["payload_bytes_max"][1]


# An idle ring's trickle: few enough messages that the ring is idle between
# them, enough for a latency percentile over a few seconds.
IDLE_RATE_MSGS_PER_S: Final = 10.0


class _Worker:
    def __init__(self, cmd: list[str], err: IO[bytes]) -> None:
        self.proc = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
            cmd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=err,
            start_new_session=True,
        )
        self.lines: queue.Queue[dict[str, Any] | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            with contextlib.suppress(ValueError):
                obj = json.loads(raw)
                if isinstance(obj, dict):
                    self.lines.put(obj)
        self.lines.put(None)

    def expect(self, key: str, timeout: float) -> Any:
        try:
            obj = self.lines.get(timeout=timeout)
        except queue.Empty:
            raise ConfigError(
                "bench_timeout", f"no {key!r} from a worker in {timeout:.0f} s"
            ) from None
        if obj is None or key not in obj:
            raise ConfigError("bench_worker_failed", f"a worker exited before {key!r}")
        return obj[key]

    def say(self, word: str) -> None:
        assert self.proc.stdin is not None
        with contextlib.suppress(OSError):
            self.proc.stdin.write(word.encode() + b"\n")
            self.proc.stdin.flush()

    def kill(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(EXIT_TIMEOUT_S)
        if self.proc.stdin is not None:
            with contextlib.suppress(OSError):
                self.proc.stdin.close()


def run_bench(
    nodes: int,
    size: int,
    duration: float,
    *,
    safe: bool = False,
    rate: float | None = None,
    uvloop: bool = True,
    security: bool = True,
    idle: bool = False,
    profile_dir: Path | None = None,
    params: ProtocolParams | None = None,
) -> BenchResult:
    """Run one benchmark; ``rate`` is messages/s offered across the ring
    (split evenly over the nodes), None to flood. ``security``: the
    runtime's frame security (Ed25519-signed tokens, AES-GCM payloads);
    False runs NullSecurity for reference. ``idle``: an idle phase of
    ``duration`` seconds first, then a trickle (module docstring).
    ``size`` above the roster's payload limit raises the limit to it.
    ``profile_dir``: every node writes the cProfile statistics of its
    window (``pstats`` format) to ``profile_dir/NAME.prof``. ``params``:
    the protocol parameters signed into the bench roster (None: defaults).
    ConfigError when a worker fails or times out (with the tail of its
    stderr)."""
    if not 2 <= nodes <= 32:
        raise ConfigError("bad_nodes", "--nodes must be 2..32")
    if not 1 <= size <= SIZE_MAX_BYTES:
        raise ConfigError("bad_size", f"--size must be 1..{SIZE_MAX_BYTES} bytes")
    if size > (params or ProtocolParams()).payload_bytes_max:
        # Larger payloads need a roster that allows them.
        params = dataclasses.replace(params or ProtocolParams(), payload_bytes_max=size)
    if not 0 < duration <= 3600:
        raise ConfigError("bad_duration", "--duration must be in (0, 3600] seconds")
    if rate is not None and rate <= 0:
        raise ConfigError("bad_rate", "--rate must be positive")
    if idle and rate is None:
        rate = IDLE_RATE_MSGS_PER_S
    idle_s = duration if idle else 0.0
    flags = _worker_flags(nodes, rate, idle_s, safe=safe, uvloop=uvloop, security=security)
    if profile_dir is not None:
        profile_dir.mkdir(parents=True, exist_ok=True)
        flags += ["--profile", str(profile_dir.resolve())]
    with tempfile.TemporaryDirectory(prefix="ringward-bench-") as tmp:
        keys = Path(tmp) / "keys"
        roster = provision(keys, nodes, cluster="bench", params=params)
        workers: list[_Worker] = []
        errs: list[Path] = []
        try:
            for entry in roster.nodes:
                cmd = [
                    sys.executable,
                    "-m",
                    "ringward.cli.bench_worker",
                    "--keys",
                    str(keys),
                    "--name",
                    entry.name,
                    "--size",
                    str(size),
                    "--duration",
                    str(duration),
                    *flags,
                ]
                errs.append(Path(tmp) / f"{entry.name}.err")
                with errs[-1].open("wb") as err:
                    workers.append(_Worker(cmd, err))
            raw = _collect(workers, idle_s + duration)
        except RingwardError as exc:
            tails = [p.read_text(errors="replace")[-2000:] for p in errs if p.exists()]
            detail = "\n".join(t for t in tails if t.strip())
            raise ConfigError(exc.reason, f"{exc.message}\n{detail}".rstrip()) from exc
        finally:
            for w in workers:
                w.kill()
    result = fold(
        raw,
        size=size,
        duration=duration,
        safe=safe,
        rate=rate,
        idle_s=idle_s,
        uvloop=uvloop,
        security=security,
    )
    if params is None:
        return result
    defaults = dataclasses.asdict(ProtocolParams())
    given = {k: v for k, v in dataclasses.asdict(params).items() if v != defaults[k]}
    return dataclasses.replace(result, params=given)


def _worker_flags(
    nodes: int, rate: float | None, idle_s: float, *, safe: bool, uvloop: bool, security: bool
) -> list[str]:
    flags: list[str] = []
    if rate is not None:
        # A fixed rate stamps deliveries for the all-delivered latency.
        flags += ["--rate", repr(rate / nodes), "--record"]
    if idle_s:
        flags += ["--idle", repr(idle_s)]
    if safe:
        flags.append("--safe")
    if not uvloop:
        flags.append("--no-uvloop")
    if not security:
        flags += ["--security", "off"]
    return flags


def _collect(workers: list[_Worker], duration: float) -> list[dict[str, Any]]:
    for w in workers:
        w.expect("ready", READY_TIMEOUT_S)
    for w in workers:
        w.say("go")
    results = [w.expect("result", duration + RESULT_SLACK_S) for w in workers]
    for w in workers:
        w.say("exit")
    for w in workers:
        with contextlib.suppress(subprocess.TimeoutExpired):
            w.proc.wait(EXIT_TIMEOUT_S)
    return results
