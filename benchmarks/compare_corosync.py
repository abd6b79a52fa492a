"""ringward vs pysyncobj vs Corosync CPG, side by side in one run.

    # prerequisites (Debian bookworm, as root); the script says so and skips without them
    apt-get install corosync libcpg-dev libcorosync-common-dev libqb-dev
    .venv/bin/pip install pysyncobj                  # optional: its column is skipped without it
    sudo .venv/bin/python benchmarks/compare_corosync.py [--duration 5] [--runs 3]

Three nodes of each system, every node sending fixed-size messages, totally
ordered delivery at every node, measured in one sitting at each size
(100 B and 1 KB by default), each measurement ``--runs`` times, medians:

* Corosync (3.1, Debian's build) in three network namespaces joined by a
  bridge, knet transport with crypto on (``crypto_cipher: aes256``,
  ``crypto_hash: sha256``), normal scheduling priority (``sched_rr: no``),
  default timers. Each node runs ``cpgbench`` (``benchmarks/cpgbench.c``,
  compiled here with ``cc``): a CPG client multicasting with agreed order.
  Throughput is the lowest per-node count of deliveries in the window over
  its length; CPU is corosync's plus the client's.
* ringward: ``ringward bench`` (ringward.cli.bench_run), security on
  (Ed25519-signed tokens, AES-256-GCM), 3 processes on 127.0.0.1.
* pysyncobj: ``benchmarks/compare_pysyncobj.py``'s Raft cluster over TCP on
  127.0.0.1, password encryption on, ``--pysyncobj-inflight`` operations
  outstanding per node.

Light load: ``--light-rate`` messages/s offered across the ring (split over
the nodes, staggered), self-delivery latency p50/p99, for ringward and
Corosync (pysyncobj's ``sync=True`` latency is in compare_pysyncobj.py).

Everything the script creates (namespaces ``rwcoro<pid>-*``, a bridge and
veth pairs inside them, addresses 10.79.0.0/24 inside those namespaces only,
a temporary directory, the corosync and client processes) is removed on
exit, also on failure or Ctrl-C. Figures go to docs/performance.md; they are
measurements, never test assertions.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import queue
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Final

NODES: Final = 3
GROUP: Final = "rwbench"
SUBNET: Final = "10.79.0"  # inside the script's own namespaces only
PREREQS: Final = "apt-get install corosync libcpg-dev libcorosync-common-dev libqb-dev"
CPG_HEADER: Final = Path("/usr/include/corosync/cpg.h")
# Bounds on every wait (seconds).
FORM_TIMEOUT_S: Final = 90.0
RESULT_SLACK_S: Final = 60.0
EXIT_TIMEOUT_S: Final = 10.0
HERE: Final = Path(__file__).resolve().parent


# ------------------------------------------------------------ prerequisites


def missing_prerequisites() -> list[str]:
    """What this machine lacks to run the Corosync side (empty: nothing)."""
    missing = [tool for tool in ("corosync", "cc", "ip", "mount") if shutil.which(tool) is None]
    if not CPG_HEADER.exists():
        missing.append(f"{CPG_HEADER} (libcpg-dev)")
    if os.geteuid() != 0:
        missing.append("root (network namespaces and corosync need it)")
    return missing


def _run(*cmd: str) -> None:
    subprocess.run(cmd, check=True, capture_output=True, timeout=30)


# --------------------------------------------------------------- the cluster


class CorosyncCluster:
    """Three corosync daemons in their own network namespaces, and a
    ``cpgbench`` binary. Use as a context manager: leaving it (normally or
    on an exception) kills every process and deletes every namespace."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.prefix = f"rwcoro{os.getpid()}"
        self.hub = f"{self.prefix}-br"
        self.spaces = [f"{self.prefix}-n{i}" for i in range(1, NODES + 1)]
        self.daemons: list[subprocess.Popen[bytes]] = []
        self.client = tmp / "cpgbench"
        self._made: list[str] = []

    def __enter__(self) -> CorosyncCluster:
        try:
            self._compile()
            self._network()
            self._start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _compile(self) -> None:
        subprocess.run(
            ["cc", "-O2", "-Wall", "-o", str(self.client), str(HERE / "cpgbench.c"), "-lcpg"],
            check=True,
            timeout=120,
        )

    def _netns(self, name: str) -> None:
        _run("ip", "netns", "add", name)
        self._made.append(name)
        _run("ip", "-n", name, "link", "set", "lo", "up")

    def _network(self) -> None:
        self._netns(self.hub)
        _run("ip", "-n", self.hub, "link", "add", "br0", "type", "bridge")
        _run("ip", "-n", self.hub, "link", "set", "br0", "up")
        for i, ns in enumerate(self.spaces, start=1):
            self._netns(ns)
            # The veth pair is born inside the namespaces: nothing appears on the host.
            _run("ip", "-n", ns, "link", "add", "eth0", "type", "veth", "peer", "name",
                 f"v{i}", "netns", self.hub)  # fmt: skip
            _run("ip", "-n", self.hub, "link", "set", f"v{i}", "master", "br0", "up")
            _run("ip", "-n", ns, "addr", "add", f"{SUBNET}.{i}/24", "dev", "eth0")
            _run("ip", "-n", ns, "link", "set", "eth0", "up")

    def _config(self, i: int) -> Path:
        home = self.tmp / f"n{i}"
        (home / "run").mkdir(parents=True)
        nodes = "\n".join(
            f"  node {{\n    ring0_addr: {SUBNET}.{j}\n    nodeid: {j}\n    name: n{j}\n  }}"
            for j in range(1, NODES + 1)
        )
        conf = home / "corosync.conf"
        conf.write_text(
            "totem {\n  version: 2\n  cluster_name: rwbench\n  transport: knet\n"
            "  crypto_cipher: aes256\n  crypto_hash: sha256\n"
            f"  keyfile: {self.tmp / 'authkey'}\n}}\n"
            f"nodelist {{\n{nodes}\n}}\n"
            "logging {\n  to_stderr: no\n  to_syslog: no\n  to_logfile: yes\n"
            f"  logfile: {home / 'corosync.log'}\n  timestamp: on\n}}\n"
            # Normal priority, as the ringward and pysyncobj processes run.
            "system {\n  sched_rr: no\n  priority: 0\n  move_to_root_cgroup: no\n"
            f"  state_dir: {home}\n}}\n"
        )
        return conf

    def _start(self) -> None:
        key = self.tmp / "authkey"
        key.write_bytes(os.urandom(256))
        key.chmod(0o400)
        for i, ns in enumerate(self.spaces, start=1):
            conf = self._config(i)
            # `ip netns exec` gives the command a private mount namespace; a
            # private /run there keeps the three daemons' pid files apart.
            run = self.tmp / f"n{i}" / "run"
            script = f'mount --bind "{run}" /run && exec corosync -f -c "{conf}"'
            self.daemons.append(
                subprocess.Popen(
                    ["ip", "netns", "exec", ns, "sh", "-c", script],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=(self.tmp / f"n{i}" / "stderr").open("wb"),
                    start_new_session=True,
                )
            )
        time.sleep(1.0)  # the daemons open their IPC before a client connects
        for i, d in enumerate(self.daemons, start=1):
            if d.poll() is not None:
                err = (self.tmp / f"n{i}" / "stderr").read_text(errors="replace")
                raise RuntimeError(f"corosync n{i} exited {d.returncode}: {err[-800:]}")

    def cpu_s(self) -> float:
        """User + system CPU seconds of the three daemons so far."""
        tick = os.sysconf("SC_CLK_TCK")
        total = 0.0
        for d in self.daemons:
            with contextlib.suppress(OSError):
                stat = Path(f"/proc/{d.pid}/stat").read_text()
                fields = stat[stat.rindex(")") + 2 :].split()
                total += (int(fields[11]) + int(fields[12])) / tick
        return total

    def close(self) -> None:
        for d in self.daemons:
            if d.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(d.pid, signal.SIGTERM)
        for d in self.daemons:
            try:
                d.wait(EXIT_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(d.pid, signal.SIGKILL)
                d.wait(EXIT_TIMEOUT_S)
        self.daemons.clear()
        for ns in reversed(self._made):
            with contextlib.suppress(subprocess.SubprocessError):
                _run("ip", "netns", "del", ns)
        self._made.clear()

    def measure(self, size: int, duration: float, rate: float | None) -> dict[str, Any]:
        """One measurement: a cpgbench client per node, every node sending."""
        per_node = "0" if rate is None else repr(rate / NODES)
        clients: list[subprocess.Popen[bytes]] = []
        lines: list[queue.Queue[Any]] = []
        try:
            for ns in self.spaces:
                cmd = ["ip", "netns", "exec", ns, str(self.client), GROUP, str(size)]
                cmd += [repr(duration), per_node, str(NODES)]
                p = subprocess.Popen(
                    cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, start_new_session=True
                )
                clients.append(p)
                lines.append(_reader(p))
            for q in lines:
                _expect(q, "ready", FORM_TIMEOUT_S)
            cpu0 = self.cpu_s()
            for p in clients:
                _say(p, "go")
            t0 = time.perf_counter()
            results = [_expect(q, "result", duration + RESULT_SLACK_S) for q in lines]
            daemon_cpu = self.cpu_s() - cpu0
            elapsed = time.perf_counter() - t0  # window plus the clients' drain
            for p in clients:
                _say(p, "exit")
        finally:
            _stop(clients)
        lat = sorted(us for r in results for us in r["latencies_us"])
        everywhere = min(r["delivered_in_window"] for r in results)
        client_cpu = sum(r["cpu_s"] for r in results)
        return {
            "msgs_per_s": everywhere / duration,
            "p50_ms": _pct(lat, 0.5),
            "p99_ms": _pct(lat, 0.99),
            # The daemons' CPU is read over window + drain: a slight overestimate.
            "cpu_pct_per_node": 100 * (daemon_cpu / elapsed + client_cpu / duration) / NODES,
        }


# ------------------------------------------------------------- child plumbing


def _reader(p: subprocess.Popen[bytes]) -> queue.Queue[Any]:
    q: queue.Queue[Any] = queue.Queue()

    def read() -> None:
        assert p.stdout is not None
        for raw in p.stdout:
            with contextlib.suppress(ValueError):
                q.put(json.loads(raw))
        q.put(None)

    threading.Thread(target=read, daemon=True).start()
    return q


def _expect(q: queue.Queue[Any], key: str, timeout: float) -> Any:
    try:
        obj = q.get(timeout=timeout)
    except queue.Empty:
        raise RuntimeError(f"cpgbench: no {key!r} in {timeout:.0f} s") from None
    if not isinstance(obj, dict) or key not in obj:
        raise RuntimeError(f"cpgbench: expected {key!r}, got {obj!r}")
    return obj[key]


def _say(p: subprocess.Popen[bytes], word: str) -> None:
    assert p.stdin is not None
    with contextlib.suppress(OSError):
        p.stdin.write(word.encode() + b"\n")
        p.stdin.flush()


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        try:
            p.wait(EXIT_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGKILL)
            p.wait(EXIT_TIMEOUT_S)


def _pct(sorted_us: list[int], p: float) -> float:
    if not sorted_us:
        return float("nan")
    return sorted_us[min(len(sorted_us) - 1, int(len(sorted_us) * p))] / 1000


# ------------------------------------------------------------------ the peers


def _ringward(size: int, duration: float, rate: float | None) -> dict[str, Any]:
    from ringward.cli.bench_run import run_bench

    r = run_bench(NODES, size, duration, rate=rate)
    return {
        "msgs_per_s": r.delivered_msgs_per_s,
        "p50_ms": r.latency_ms_p50,
        "p99_ms": r.latency_ms_p99,
        "cpu_pct_per_node": r.cpu_pct_per_node,
    }


def _pysyncobj(size: int, duration: float, inflight: int) -> dict[str, Any] | None:
    try:
        import pysyncobj  # noqa: F401
    except ImportError:
        return None
    sys.path.insert(0, str(HERE))
    from compare_pysyncobj import run_pysyncobj

    opts = argparse.Namespace(inflight=inflight, light_rate=300.0)
    r = run_pysyncobj(size, duration, "flood", opts)
    return {"msgs_per_s": r["ops_per_s"], "cpu_s_per_1000": r["cpu_s_per_1000"]}


def _median(runs: list[dict[str, Any]], key: str) -> float:
    vals = [r[key] for r in runs if r is not None and r[key] == r[key]]  # NaN != NaN
    return statistics.median(vals) if vals else float("nan")


@contextlib.contextmanager
def _terminate_on_signals() -> Iterator[None]:
    """SIGTERM and SIGHUP unwind like Ctrl-C, so the clean-up runs."""

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    old = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


# ---------------------------------------------------------------------- main


def _table(rows: list[dict[str, Any]], light_rate: float) -> str:
    def f(x: float, spec: str = ",.0f") -> str:
        return "-" if x != x else format(x, spec)

    def ratio(a: float, b: float) -> str:
        return "-" if a != a or b != b or b == 0 else f"{a / b:.2f}x"

    out = [
        "| payload | ringward msgs/s | pysyncobj ops/s | Corosync CPG msgs/s | "
        "ringward/pysyncobj | ringward/Corosync | CPU % per node, flood: rw / ps / cs | "
        f"light load ({light_rate:g}/s) p50 / p99 ms: ringward | Corosync |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        rw, ps, cs = r["ringward"], r["pysyncobj"], r["corosync"]
        out.append(
            f"| {r['size']} B | {f(rw)} | {f(ps)} | {f(cs)} | {ratio(rw, ps)} | {ratio(rw, cs)} "
            f"| {f(r['rw_cpu'], '.0f')} / {f(r['ps_cpu'], '.0f')} / {f(r['cs_cpu'], '.0f')} "
            f"| {f(r['rw_p50'], '.2f')} / {f(r['rw_p99'], '.2f')} "
            f"| {f(r['cs_p50'], '.2f')} / {f(r['cs_p99'], '.2f')} |"
        )
    return "\n".join(out)


def _measure_size(
    cluster: CorosyncCluster, size: int, args: argparse.Namespace, log: Callable[[str], None]
) -> dict[str, Any]:
    rw: list[dict[str, Any]] = []
    cs: list[dict[str, Any]] = []
    ps: list[dict[str, Any] | None] = []
    for run in range(1, args.runs + 1):
        # Interleaved, so that a burst of other work on the machine hits all three alike.
        cs.append(cluster.measure(size, args.duration, None))
        rw.append(_ringward(size, args.duration, None))
        ps.append(_pysyncobj(size, args.duration, args.pysyncobj_inflight))
        pss = f"{ps[-1]['msgs_per_s']:,.0f}" if ps[-1] else "skipped"
        log(
            f"  {size} B run {run}: ringward {rw[-1]['msgs_per_s']:,.0f}  pysyncobj {pss}  "
            f"corosync {cs[-1]['msgs_per_s']:,.0f} msgs/s"
        )
    cs_light = cluster.measure(size, args.duration, args.light_rate)
    rw_light = _ringward(size, args.duration, args.light_rate)
    log(
        f"  {size} B light load: ringward p50 {rw_light['p50_ms']:.2f} ms, "
        f"corosync p50 {cs_light['p50_ms']:.2f} ms"
    )
    ps_ok = [p for p in ps if p is not None]
    return {
        "size": size,
        "ringward": _median(rw, "msgs_per_s"),
        "pysyncobj": _median(ps_ok, "msgs_per_s"),
        "corosync": _median(cs, "msgs_per_s"),
        "rw_cpu": _median(rw, "cpu_pct_per_node"),
        "cs_cpu": _median(cs, "cpu_pct_per_node"),
        # pysyncobj reports CPU per 1,000 ops; as % of a core per node:
        "ps_cpu": _median(
            [{"c": p["cpu_s_per_1000"] * p["msgs_per_s"] / 1000 / NODES * 100} for p in ps_ok], "c"
        ),
        "rw_p50": rw_light["p50_ms"],
        "rw_p99": rw_light["p99_ms"],
        "cs_p50": cs_light["p50_ms"],
        "cs_p99": cs_light["p99_ms"],
        "runs": {"ringward": rw, "pysyncobj": ps, "corosync": cs},
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--duration", type=float, default=5.0, help="seconds per measurement")
    ap.add_argument("--runs", type=int, default=3, help="runs per measurement (median)")
    ap.add_argument("--sizes", default="100,1024", help="payload sizes, comma-separated")
    ap.add_argument("--light-rate", type=float, default=1000.0, help="msgs/s across the ring")
    ap.add_argument("--pysyncobj-inflight", type=int, default=2000, help="outstanding per node")
    ap.add_argument("--json", metavar="FILE", help="also write every run's figures to FILE")
    args = ap.parse_args()
    if not 0 < args.duration <= 600 or not 1 <= args.runs <= 20:
        ap.error("--duration must be in (0, 600] and --runs in 1..20")
    missing = missing_prerequisites()
    if missing:
        print(f"SKIP compare_corosync: missing {', '.join(missing)}.")
        print(f"Install (Debian bookworm, as root): {PREREQS}; then run this script as root.")
        return 0

    def log(line: str) -> None:
        print(line, flush=True)

    log(
        f"{NODES} nodes each, every node sending, {args.duration:g} s per measurement, "
        f"median of {args.runs}; {os.cpu_count()} CPUs, Python {sys.version.split()[0]}"
    )
    log("ringward: security on, UDP on 127.0.0.1; pysyncobj: encryption on, TCP on 127.0.0.1;")
    log("Corosync CPG: knet aes256/sha256, 3 network namespaces on a bridge, agreed order")
    rows = []
    with (
        _terminate_on_signals(),
        tempfile.TemporaryDirectory(prefix="compare-corosync-") as tmp,
        CorosyncCluster(Path(tmp)) as cluster,
    ):
        for size in (int(s) for s in args.sizes.split(",")):
            rows.append(_measure_size(cluster, size, args, log))
    print()
    print(_table(rows, args.light_rate))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
