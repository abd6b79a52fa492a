"""Run a loopback benchmark: N worker processes, one result.

:func:`run_bench` provisions a throw-away cluster, starts one
:mod:`ringward.cli.bench_worker` process per node, starts them sending
together, and folds their reports into one :class:`BenchResult`. It is the
engine of ``ringward bench`` and of ``benchmarks/compare_pysyncobj.py``.

Definitions (docs/performance.md):

* ``delivered_msgs_per_s``: the *lowest* per-node count of deliveries
  inside the sending window divided by its length: the rate at which the
  whole ring agrees on messages;
* latency: from the ``broadcast()`` call to the sender's own delivery, every
  message of every node (under a flood this is mostly time in the send
  queue; with ``rate`` it is the ring's own latency);
* ``cpu_s_per_1000_msgs``: CPU seconds of all node processes together over
  the window, per 1,000 messages delivered everywhere.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any, Final

from ringward.cli.demo_cluster import provision
from ringward.errors import ConfigError, RingwardError

__all__ = ["SECURITY_OFF", "SECURITY_ON", "BenchResult", "NodeResult", "percentile_ms", "run_bench"]

# Waiting for workers (seconds): start-up and ring formation on a loaded
# machine; results come after the window plus the drain.
READY_TIMEOUT_S: Final = 90.0
RESULT_SLACK_S: Final = 120.0
EXIT_TIMEOUT_S: Final = 15.0


SECURITY_ON: Final = "on (RingSecurity: Ed25519-signed tokens, AES-256-GCM payloads)"
SECURITY_OFF: Final = "off (NullSecurity: no signatures, no encryption; reference only)"


@dataclass(frozen=True, slots=True)
class NodeResult:
    """One worker's report."""

    node: int
    sent: int
    delivered_in_window: int
    delivered_per_s: float
    cpu_s: float
    rotations_per_s: float
    undelivered_own: int


@dataclass(frozen=True, slots=True)
class BenchResult:
    """The whole run (field names are the ``--json`` keys)."""

    nodes: int
    size: int
    duration_s: float
    safe: bool
    mode: str  # "flood" or "rate"
    offered_msgs_per_s: float | None
    delivered_msgs_per_s: float
    delivered_msgs_per_s_sum: float
    mb_per_s: float
    latency_ms_p50: float
    latency_ms_p99: float
    cpu_s_per_1000_msgs: float
    loop: str
    security: str
    per_node: tuple[NodeResult, ...]

    def to_json(self) -> dict[str, Any]:
        """A plain dict for ``json.dumps``."""
        out = asdict(self)
        out["per_node"] = [asdict(n) for n in self.per_node]
        return out


def percentile_ms(sorted_us: list[int], p: float) -> float:
    """The ``p`` quantile (0..1, nearest rank) of sorted microseconds, in ms."""
    if not sorted_us:
        return float("nan")
    return sorted_us[min(len(sorted_us) - 1, int(len(sorted_us) * p))] / 1000.0


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
) -> BenchResult:
    """Run one benchmark; ``rate`` is messages/s offered across the ring
    (split evenly over the nodes), None to flood. ``security``: the
    runtime's frame security (Ed25519-signed tokens, AES-GCM payloads);
    False runs NullSecurity for reference. ConfigError when a worker
    fails or times out (with the tail of its stderr)."""
    if not 2 <= nodes <= 32:
        raise ConfigError("bad_nodes", "--nodes must be 2..32")
    if not 1 <= size <= 65536:
        raise ConfigError("bad_size", "--size must be 1..65536 bytes")
    if not 0 < duration <= 3600:
        raise ConfigError("bad_duration", "--duration must be in (0, 3600] seconds")
    if rate is not None and rate <= 0:
        raise ConfigError("bad_rate", "--rate must be positive")
    with tempfile.TemporaryDirectory(prefix="ringward-bench-") as tmp:
        keys = Path(tmp) / "keys"
        roster = provision(keys, nodes, cluster="bench")
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
                ]
                if rate is not None:
                    cmd += ["--rate", repr(rate / nodes)]
                if safe:
                    cmd.append("--safe")
                if not uvloop:
                    cmd.append("--no-uvloop")
                if not security:
                    cmd += ["--security", "off"]
                errs.append(Path(tmp) / f"{entry.name}.err")
                with errs[-1].open("wb") as err:
                    workers.append(_Worker(cmd, err))
            raw = _collect(workers, duration)
        except RingwardError as exc:
            tails = [p.read_text(errors="replace")[-2000:] for p in errs if p.exists()]
            detail = "\n".join(t for t in tails if t.strip())
            raise ConfigError(exc.reason, f"{exc.message}\n{detail}".rstrip()) from exc
        finally:
            for w in workers:
                w.kill()
    return _fold(raw, nodes, size, duration, safe, rate, uvloop, security)


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


def _fold(
    raw: list[dict[str, Any]],
    nodes: int,
    size: int,
    duration: float,
    safe: bool,
    rate: float | None,
    uvloop: bool,
    security: bool,
) -> BenchResult:
    per_node = tuple(
        NodeResult(
            node=int(r["node"]),
            sent=int(r["sent"]),
            delivered_in_window=int(r["delivered_in_window"]),
            delivered_per_s=r["delivered_in_window"] / duration,
            cpu_s=float(r["cpu_s"]),
            rotations_per_s=float(r["rotations_per_s"]),
            undelivered_own=int(r["undelivered_own"]),
        )
        for r in sorted(raw, key=lambda r: int(r["node"]))
    )
    latencies = sorted(us for r in raw for us in r["latencies_us"])
    ring_rate = min(n.delivered_per_s for n in per_node)
    everywhere = min(n.delivered_in_window for n in per_node)
    cpu = sum(n.cpu_s for n in per_node)
    return BenchResult(
        nodes=nodes,
        size=size,
        duration_s=duration,
        safe=safe,
        mode="flood" if rate is None else "rate",
        offered_msgs_per_s=rate,
        delivered_msgs_per_s=ring_rate,
        delivered_msgs_per_s_sum=sum(n.delivered_per_s for n in per_node),
        mb_per_s=ring_rate * size / 1e6,
        latency_ms_p50=percentile_ms(latencies, 0.50),
        latency_ms_p99=percentile_ms(latencies, 0.99),
        cpu_s_per_1000_msgs=cpu / everywhere * 1000 if everywhere else float("nan"),
        loop="uvloop" if uvloop and sys.platform == "linux" else "asyncio",
        security=SECURITY_ON if security else SECURITY_OFF,
        per_node=per_node,
    )
