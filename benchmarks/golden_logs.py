"""Golden event logs: the simulator's logs of ~200 fixed worlds, recorded
before a refactor of the engine and compared after it.

    python benchmarks/golden_logs.py record golden.json [--keep-logs DIR] [--workers 2]
    python benchmarks/golden_logs.py compare golden.json [--keep-logs DIR] [--new-logs DIR]
    ... [--only PATTERN] [--limit N] [--timeout S]

``record`` runs a fixed list of worlds and writes, for each, its parameters,
the ``ringward sim`` command that reproduces it, the SHA-256 and line count
of its JSON Lines event log and its verdict (pass/fail and why). The worlds:

* ``faults-*``: ring sizes 2-10 x every fault mix of sim/matrix.py
  (``MIXES``: none, loss, dup+reorder, delay+reorder, partition, crash,
  pause, slow, all of them), security on for half of the pairs (alternating,
  so each size and each mix runs with and without it); the all-faults mix
  also with the other security setting at every size.
* ``attack-*``: every attack of sim/attacks.py (``ATTACKS``) on 4 nodes, a
  few seeds each.
* ``byzantine-*``: every behaviour of ringward/byzantine (``BEHAVIOURS``, so
  new ones are included) on secured rings of 4 and 7 with f = (n-1)//3
  members misbehaving alike (``frame`` accuses a correct member), a few seeds
  each, with the faults the behaviour needs (``NEEDS_FAULTS``), 3 s of
  faults and 6 s of quiet (8 for ``frame``). Some expectations do not hold
  in worlds this short (``overload`` needs a long one; value liars the
  engine does not convict yet): the verdict is recorded, the log is still
  the reference.

Worlds are short (a few virtual seconds of faults) so that the whole record
takes minutes (~750 s of worker CPU: ~10 min of wall time with 2 workers on
a 2-core machine that runs other work too). The digest is of the log bytes
exactly as ``ringward sim --log`` writes them: the stored command line
reproduces each log. The CPU budget of the simulator (process time per
engine call) is off (``cpu_budget_ms=0``): it depends on the machine, so a world
could end at a different point from one run to the next.

``compare`` re-runs the worlds stored in the file (their stored parameters,
not today's list), says which ringward subpackages changed since the record
(a digest of each is stored: sources edited while a record runs make it
unreliable; ``PYTHONPATH=COPY/src`` runs both against a snapshot), and
prints, for each world whose log digest or verdict changed, its command,
both digests and verdicts, and the first differing line of the two logs
(when ``record --keep-logs DIR`` kept the old logs and ``compare
--keep-logs DIR`` points at them); exit status 1 if any world differs.
``--new-logs DIR`` keeps the new logs of the differing worlds.

``--only PATTERN`` keeps the worlds whose name matches the glob PATTERN (or
contains it, when it has no glob characters); ``--limit N`` the first N of
those. A world that raises (an engine exception, a simulation bound) is
recorded with the log it had written so far; one that runs past
``--timeout`` wall seconds is recorded as a timeout (no digest: compare
reports it as differing; record exits 1).
"""

from __future__ import annotations

import argparse
import dataclasses
import fnmatch
import gzip
import hashlib
import json
import multiprocessing
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any, Final

import ringward
from ringward.byzantine import BEHAVIOURS, parse_spec
from ringward.eventlog import Event, to_json
from ringward.sim import runner
from ringward.sim.attacks import ATTACKS, run_attack
from ringward.sim.byzantine import NEEDS_FAULTS, run_byzantine
from ringward.sim.faults import FaultSpec
from ringward.sim.matrix import MIXES
from ringward.sim.runner import Scenario, run_scenario
from ringward.sim.world import SimulationError, World

FORMAT: Final = "ringward-golden-logs/1"

# faults-*: ring sizes x MIXES, 2 virtual s of faults at 50 msg/s (the CI
# matrix's shape), each world ending once the ring has settled.
FAULT_SIZES: Final = tuple(range(2, 11))
FAULT_DURATION_S: Final = 2.0
FAULT_RATE: Final = 50.0
FAULT_SEED_BASE: Final = 5000
# attack-*: as tests/sim/test_security_attacks.py (eavesdrop-evicted runs 6 s).
ATTACK_NODES: Final = 4
ATTACK_SEEDS: Final = (1, 2, 3)
ATTACK_DURATION_S: Final = 3.0
ATTACK_RATE: Final = 60.0
# byzantine-*: run_byzantine runs the whole quiet period; 6 s of it (instead
# of 15) keeps the cost down while leaving time for evictions by accusation
# (misbehaviour starts at 1 s; the slowest seen here took ~6 s to install).
BYZANTINE_SEEDS: Final = {4: (11, 12), 7: (21, 22)}
BYZANTINE_DURATION_S: Final = 3.0
BYZANTINE_QUIET_S: Final = 6.0
# Framers are evicted ~8 s after they start (t ~9 s): a longer quiet period.
BYZANTINE_QUIET_S_LONGER: Final = {"frame": 8.0}
BYZANTINE_RATE: Final = 50.0

VERDICT_CHARS_MAX: Final = 600
LINE_SHOWN_CHARS_MAX: Final = 400
TIMEOUT_S_DEFAULT: Final = 300.0


# -- the worlds ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WorldSpec:
    """Everything that determines one world (and its name)."""

    name: str
    kind: str  # "faults", "attack" or "byzantine"
    nodes: int
    seed: int
    duration: float
    rate: float
    faults: str
    security: bool
    quiet: float | None = None
    attack: str | None = None
    byzantine: str | None = None

    def scenario(self) -> Scenario:
        """The scenario, with the CPU budget off (not deterministic)."""
        return Scenario(
            nodes=self.nodes,
            seed=self.seed,
            duration=self.duration,
            rate=self.rate,
            faults=FaultSpec.parse(self.faults),
            quiet=self.quiet,
            security=self.security,
            cpu_budget_ms=0.0,
        )

    def command(self) -> str:
        """The ``ringward sim`` command line that writes the same log."""
        text = self.scenario().command()
        if self.attack is not None:
            text += f" --attack {self.attack}"
        if self.byzantine is not None:
            text += f" --byzantine {self.byzantine}"
        return text

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> WorldSpec:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in obj.items() if k in names})


def _slug(mix: str) -> str:
    return mix.replace("=", "").replace("..", "-").replace(",", "+")


def fault_worlds() -> list[WorldSpec]:
    """Sizes 2-10 x MIXES, security alternating; the last (all-faults) mix
    also with the other security setting."""
    out: list[WorldSpec] = []
    seed = FAULT_SEED_BASE
    for i, nodes in enumerate(FAULT_SIZES):
        for j, mix in enumerate(MIXES):
            variants = [(i + j) % 2 == 1]
            if j == len(MIXES) - 1:
                variants.append(not variants[0])
            for security in variants:
                seed += 1
                out.append(
                    WorldSpec(
                        name=f"faults-n{nodes:02d}-{_slug(mix)}-{'sec' if security else 'plain'}"
                        f"-s{seed}",
                        kind="faults",
                        nodes=nodes,
                        seed=seed,
                        duration=FAULT_DURATION_S,
                        rate=FAULT_RATE,
                        faults=mix,
                        security=security,
                    )
                )
    return out


def attack_worlds() -> list[WorldSpec]:
    """Every attack on 4 nodes, a few seeds each."""
    return [
        WorldSpec(
            name=f"attack-{name}-n{ATTACK_NODES}-s{seed}",
            kind="attack",
            nodes=ATTACK_NODES,
            seed=seed,
            duration=ATTACK_DURATION_S,
            rate=ATTACK_RATE,
            faults="none",
            security=True,
            attack=name,
        )
        for name in sorted(ATTACKS)
        for seed in ATTACK_SEEDS
    ]


def byzantine_worlds() -> list[WorldSpec]:
    """Every behaviour on rings of 4 and 7, f members misbehaving alike."""
    out: list[WorldSpec] = []
    for behaviour in BEHAVIOURS:
        for nodes, seeds in BYZANTINE_SEEDS.items():
            f = (nodes - 1) // 3
            for seed in seeds:
                # Which members misbehave: drawn from the world's name.
                rng = random.Random(f"golden:{behaviour}:{nodes}:{seed}")
                bad = sorted(rng.sample(range(1, nodes + 1), f))
                target = min(m for m in range(1, nodes + 1) if m not in bad)
                arg = f":{target}" if behaviour == "frame" else ""
                out.append(
                    WorldSpec(
                        name=f"byzantine-{behaviour}-n{nodes}-s{seed}",
                        kind="byzantine",
                        nodes=nodes,
                        seed=seed,
                        duration=BYZANTINE_DURATION_S,
                        rate=BYZANTINE_RATE,
                        faults=NEEDS_FAULTS.get(behaviour, "none"),
                        security=True,
                        quiet=BYZANTINE_QUIET_S_LONGER.get(behaviour, BYZANTINE_QUIET_S),
                        byzantine=",".join(f"{n}:{behaviour}{arg}" for n in bad),
                    )
                )
    return out


def all_worlds() -> list[WorldSpec]:
    return fault_worlds() + attack_worlds() + byzantine_worlds()


def select(worlds: Sequence[WorldSpec], only: str | None, limit: int | None) -> list[WorldSpec]:
    """The worlds matching ``only`` (a glob, or a substring when it has no
    glob characters), at most ``limit`` of them."""
    out = list(worlds)
    if only:
        glob = any(c in only for c in "*?[")
        out = [w for w in out if (fnmatch.fnmatchcase(w.name, only) if glob else only in w.name)]
    if limit is not None:
        out = out[: max(0, limit)]
    return out


# -- running one world (in a worker process) -----------------------------------


@dataclass(frozen=True, slots=True)
class Run:
    """What one world produced."""

    sha256: str | None  # None: timed out (no complete log)
    lines: int
    ok: bool
    verdict: str


class _WorldTimeout(BaseException):
    """Raised by SIGALRM: a BaseException, so no ``except Exception`` of the
    engine or the world swallows it."""


# The world of the current run: run_attack and run_byzantine do not hand it
# out, and a run that raises returns no Result, but its log so far is the
# part worth comparing.
_CURRENT: list[World] = []


class _CapturingWorld(World):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _CURRENT[:] = [self]


def _init_worker() -> None:
    if vars(runner).get("World") is World:
        vars(runner)["World"] = _CapturingWorld
    signal.signal(signal.SIGALRM, _on_alarm)


def _on_alarm(signum: int, frame: FrameType | None) -> None:
    raise _WorldTimeout


def _lines(events: Iterable[Event]) -> list[str]:
    """The log lines exactly as Result.write_log writes them."""
    return [to_json(e) + "\n" for e in events]


def _clip(text: str, limit: int = VERDICT_CHARS_MAX) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _execute(spec: WorldSpec) -> tuple[list[str], bool, str]:
    """Run ``spec``: its log lines, whether it passed, and why."""
    scenario = spec.scenario()
    _CURRENT.clear()
    try:
        if spec.attack is not None:
            outcome = run_attack(spec.attack, scenario)
            held = outcome.held
            return (
                _lines(outcome.result.events),
                held,
                _clip(f"attack {'held' if held else 'BROKEN'}: {outcome.detail}"),
            )
        if spec.byzantine is not None:
            parsed = parse_spec(spec.byzantine, spec.nodes)
            byz = run_byzantine(scenario, parsed)
            return (
                _lines(byz.result.events),
                byz.held,
                _clip(f"byzantine {'held' if byz.held else 'BROKEN'}: {byz.detail}"),
            )
        result = run_scenario(scenario)
    except SimulationError as exc:
        partial = _lines(_CURRENT[0].events) if _CURRENT else []
        return partial, False, _clip(f"simulation error: {exc}")
    except Exception as exc:
        partial = _lines(_CURRENT[0].events) if _CURRENT else []
        return partial, False, _clip(f"exception: {type(exc).__name__}: {exc}")
    finally:
        _CURRENT.clear()
    if result.ok:
        return _lines(result.events), True, "ok: every guarantee holds"
    first = " | ".join(result.failure_text().splitlines()[:2])
    return _lines(result.events), False, _clip(f"failed: {first}")


def _run(spec: WorldSpec, timeout_s: float) -> tuple[list[str] | None, Run]:
    signal.setitimer(signal.ITIMER_REAL, timeout_s)
    try:
        lines, ok, verdict = _execute(spec)
    except _WorldTimeout:
        return None, Run(None, 0, False, f"timeout: still running after {timeout_s:g} wall s")
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0.0)
    data = "".join(lines).encode("ascii")
    return lines, Run(hashlib.sha256(data).hexdigest(), len(lines), ok, verdict)


def _log_path(directory: str, spec: WorldSpec) -> Path:
    return Path(directory) / f"{spec.name}.jsonl.gz"


def _write_gz(path: Path, lines: Sequence[str]) -> None:
    """Byte-reproducible gzip: no name, mtime 0."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with (
        open(path, "wb") as raw,
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz,
    ):
        for line in lines:
            gz.write(line.encode("ascii"))


def _read_gz(path: Path) -> Iterator[str]:
    with gzip.open(path, "rt", encoding="ascii", newline="\n") as handle:
        yield from handle


@dataclass(frozen=True, slots=True)
class Job:
    index: int
    spec: WorldSpec
    timeout_s: float
    keep_dir: str | None = None  # record: write the log here
    old: dict[str, Any] | None = None  # compare: the stored entry
    old_dir: str | None = None  # compare: the kept old logs
    new_dir: str | None = None  # compare: keep the new log of a differing world


@dataclass(frozen=True, slots=True)
class Done:
    index: int
    run: Run
    wall_s: float
    cpu_s: float  # process time of the worker (not stored: machine-dependent)
    # compare: (line number, old line, new line), or why there is none.
    first_diff: tuple[int, str | None, str | None] | str | None = None


def _first_diff(old: Iterable[str], new: Sequence[str]) -> tuple[int, str | None, str | None] | str:
    it = iter(old)
    for number, line in enumerate(new, 1):
        before = next(it, None)
        if before != line:
            return number, before, line
    after = next(it, None)
    if after is None:
        return "the kept old log equals the new one: it does not match the stored digest"
    return len(new) + 1, after, None


def work(job: Job) -> Done:
    t0, c0 = time.perf_counter(), time.process_time()
    lines, run = _run(job.spec, job.timeout_s)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    if job.keep_dir is not None and lines is not None:
        _write_gz(_log_path(job.keep_dir, job.spec), lines)
    if job.old is None:
        return Done(job.index, run, wall, cpu)
    same_log = run.sha256 is not None and job.old.get("sha256") == run.sha256
    if same_log and job.old.get("verdict") == run.verdict:
        return Done(job.index, run, wall, cpu)
    if job.new_dir is not None and lines is not None:
        _write_gz(_log_path(job.new_dir, job.spec), lines)
    diff: tuple[int, str | None, str | None] | str
    if lines is None:
        diff = "no new log (timed out)"
    elif same_log:
        diff = "log identical, verdict changed"
    elif job.old_dir is None:
        diff = "old log not kept (record --keep-logs DIR, compare --keep-logs DIR)"
    elif not _log_path(job.old_dir, job.spec).exists():
        diff = f"old log missing: {_log_path(job.old_dir, job.spec)}"
    else:
        diff = _first_diff(_read_gz(_log_path(job.old_dir, job.spec)), lines)
    return Done(job.index, run, wall, cpu, diff)


def _pool_map(jobs: Sequence[Job], workers: int) -> Iterator[Done]:
    with multiprocessing.Pool(max(1, workers), initializer=_init_worker) as pool:
        yield from pool.imap_unordered(work, jobs, chunksize=1)


# -- the commands --------------------------------------------------------------


def _commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).resolve().parent,
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return out.stdout.strip() or None


def _sources() -> dict[str, str]:
    """A digest of the ringward sources per subpackage (engine, sim, ...),
    as found on disk now: compare says which changed since the record."""
    root = Path(ringward.__file__).resolve().parent
    parts: dict[str, list[bytes]] = {}
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root)
        part = rel.parts[0] if len(rel.parts) > 1 else "(top)"
        parts.setdefault(part, []).append(rel.as_posix().encode() + b"\0" + path.read_bytes())
    return {
        part: hashlib.sha256(b"\0".join(chunks)).hexdigest()[:16]
        for part, chunks in sorted(parts.items())
    }


def _counts(worlds: Iterable[WorldSpec]) -> str:
    kinds: dict[str, int] = {}
    for w in worlds:
        kinds[w.kind] = kinds.get(w.kind, 0) + 1
    return ", ".join(f"{kind} {n}" for kind, n in sorted(kinds.items()))


def record(args: argparse.Namespace) -> int:
    worlds = select(all_worlds(), args.only, args.limit)
    if not worlds:
        print("record: no world matches", file=sys.stderr)
        return 2
    print(f"record: {len(worlds)} worlds ({_counts(worlds)}), {args.workers} workers", flush=True)
    commit, sources = _commit(), _sources()  # before the run: others may commit meanwhile
    jobs = [Job(i, w, args.timeout, keep_dir=args.keep_logs) for i, w in enumerate(worlds)]
    t0 = time.perf_counter()
    done: dict[int, Done] = {}
    for finished in _pool_map(jobs, args.workers):
        done[finished.index] = finished
        spec, run = worlds[finished.index], finished.run
        if not run.ok:
            print(f"  {spec.name}: {run.verdict}", flush=True)
        if len(done) % 25 == 0:
            print(f"  {len(done)}/{len(worlds)} in {time.perf_counter() - t0:.0f} s", flush=True)
    wall = time.perf_counter() - t0
    entries = []
    for i, spec in enumerate(worlds):
        run = done[i].run
        entries.append(
            {
                "world": spec.to_json(),
                "command": spec.command(),
                "sha256": run.sha256,
                "lines": run.lines,
                "ok": run.ok,
                "verdict": run.verdict,
            }
        )
    doc = {"format": FORMAT, "commit": commit, "sources": sources, "worlds": entries}
    Path(args.out).write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    runs = [d.run for d in done.values()]
    timeouts = sum(r.sha256 is None for r in runs)
    errors = sum(r.verdict.startswith(("simulation error", "exception")) for r in runs)
    slowest = sorted(done.values(), key=lambda d: -d.cpu_s)[:3]
    print(
        f"record: {len(worlds)} worlds, {sum(r.ok for r in runs)} passed, "
        f"{sum(not r.ok for r in runs)} failed (of which {errors} raised, {timeouts} timed out); "
        f"{wall:.1f} s wall with {args.workers} workers -> {args.out}"
    )
    print(f"  {_cpu_text(worlds, done.values())}")
    print("  slowest: " + ", ".join(f"{worlds[d.index].name} {d.cpu_s:.1f}" for d in slowest))
    return 1 if timeouts else 0


def _cpu_text(worlds: Sequence[WorldSpec], done: Iterable[Done]) -> str:
    """Process time spent in the workers, per kind of world (wall time
    depends on what else the machine runs; this does much less)."""
    kinds: dict[str, float] = {}
    for d in done:
        kind = worlds[d.index].kind
        kinds[kind] = kinds.get(kind, 0.0) + d.cpu_s
    parts = ", ".join(f"{kind} {s:.0f}" for kind, s in sorted(kinds.items()))
    return f"worker CPU s: {sum(kinds.values()):.0f} ({parts})"


def _shown(line: str | None) -> str:
    return "(end of log)" if line is None else _clip(line.rstrip("\n"), LINE_SHOWN_CHARS_MAX)


def compare(args: argparse.Namespace) -> int:
    doc = json.loads(Path(args.out).read_text(encoding="utf-8"))
    if doc.get("format") != FORMAT:
        print(f"compare: {args.out} is not a {FORMAT} file", file=sys.stderr)
        return 2
    stored = {e["world"]["name"]: e for e in doc["worlds"]}
    worlds = select([WorldSpec.from_json(e["world"]) for e in doc["worlds"]], args.only, args.limit)
    if not worlds:
        print("compare: no world matches", file=sys.stderr)
        return 2
    old_sources: dict[str, str] = doc.get("sources") or {}
    now = _sources()
    changed = sorted(p for p in set(old_sources) | set(now) if old_sources.get(p) != now.get(p))
    print(
        f"compare: {len(worlds)} worlds ({_counts(worlds)}) recorded at commit "
        f"{doc.get('commit')}, {args.workers} workers; ringward sources changed since: "
        + (", ".join(changed) or "none"),
        flush=True,
    )
    jobs = [
        Job(
            i,
            w,
            args.timeout,
            old=stored[w.name],
            old_dir=args.keep_logs,
            new_dir=args.new_logs,
        )
        for i, w in enumerate(worlds)
    ]
    t0 = time.perf_counter()
    differing: list[Done] = []
    finished_all: list[Done] = []
    for finished in _pool_map(jobs, args.workers):
        finished_all.append(finished)
        if finished.first_diff is not None:
            differing.append(finished)
            _report(worlds[finished.index], stored[worlds[finished.index].name], finished)
    wall = time.perf_counter() - t0
    print(
        f"compare: {len(worlds)} worlds, {len(worlds) - len(differing)} identical, "
        f"{len(differing)} differing; {wall:.1f} s wall with {args.workers} workers"
    )
    print(f"  {_cpu_text(worlds, finished_all)}")
    if differing:
        names = sorted(worlds[d.index].name for d in differing)
        print("  differing: " + ", ".join(names))
    return 1 if differing else 0


def _report(spec: WorldSpec, old: dict[str, Any], done: Done) -> None:
    run = done.run
    out = [
        f"DIFFERS {spec.name}",
        f"  reproduce: {spec.command()}",
        f"  old: sha256 {old.get('sha256')}, {old.get('lines')} lines, {old.get('verdict')}",
        f"  new: sha256 {run.sha256}, {run.lines} lines, {run.verdict}",
    ]
    diff = done.first_diff
    if isinstance(diff, tuple):
        number, before, after = diff
        out += [
            f"  first differing line {number}:",
            f"    old: {_shown(before)}",
            f"    new: {_shown(after)}",
        ]
    elif diff is not None:
        out.append(f"  {diff}")
    print("\n".join(out), flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = ap.add_subparsers(dest="command", required=True)
    for name, func in (("record", record), ("compare", compare)):
        p = sub.add_parser(name)
        p.add_argument("out", metavar="OUT.json")
        p.add_argument(
            "--keep-logs",
            metavar="DIR",
            help="record: keep each log as DIR/NAME.jsonl.gz; compare: read the old logs there",
        )
        if name == "compare":
            p.add_argument(
                "--new-logs", metavar="DIR", help="keep the new log of each differing world here"
            )
        else:
            p.set_defaults(new_logs=None)
        p.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
        p.add_argument("--only", metavar="PATTERN", help="worlds whose name matches (glob/substr)")
        p.add_argument("--limit", type=int, metavar="N", help="at most N worlds")
        p.add_argument(
            "--timeout",
            type=float,
            default=TIMEOUT_S_DEFAULT,
            metavar="S",
            help=f"wall seconds one world may take (default {TIMEOUT_S_DEFAULT:g})",
        )
        p.set_defaults(func=func)
    args = ap.parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
