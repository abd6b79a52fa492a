"""The real-network chaos suite (issue 17, docs/chaos.md).

Real ``ringward node`` processes, each in its own network namespace, faults
injected by the kernel (nftables), a relay, signals and cgroups; every run's
merged event logs judged by the guarantee checker. Needs root: skipped with
the reason otherwise.

* ``test_chaos_smoke`` (heavy): one short scenario, in ``make test``, so CI
  exercises the real network path;
* ``test_chaos`` (chaos): every scenario, ``make chaos`` only
  (RINGWARD_CHAOS=1). The seed is RINGWARD_CHAOS_SEED (default 1); a failing
  run prints the seed and where its logs and timeline were kept.

``tests/chaos`` is on ``sys.path`` (pytest's prepend import mode puts a test
file's directory there), so the harness imports as ``chaoskit``.
"""

from __future__ import annotations

import os
from typing import Final

import pytest
from chaoskit.netns import can_make_namespaces
from chaoskit.nft import nft_missing
from chaoskit.procs import cgroup_cpu_missing
from chaoskit.runner import run_scenario
from chaoskit.scenarios import SCENARIOS, SMOKE
from chaoskit.schedule import FaultKind, Scenario

SEED_ENV: Final = "RINGWARD_CHAOS_SEED"
# Each scenario's one-line result is appended here when set (make chaos
# prints the file at the end: pytest captures the tests' output).
RESULTS_ENV: Final = "RINGWARD_CHAOS_RESULTS"

# Wall-clock timers: never next to another cluster on the 2 CPUs.
pytestmark = [pytest.mark.xdist_group("loopback")]


def _seed() -> int:
    return int(os.environ.get(SEED_ENV, "1"))


def _record(line: str) -> None:
    results = os.environ.get(RESULTS_ENV)
    if results:
        with open(results, "a", encoding="utf-8") as f:
            f.write(line + "\n")


def _why_not(scenario: Scenario) -> str | None:
    why = can_make_namespaces() or nft_missing()
    if why is None and any(f.kind is FaultKind.CPU_STARVE for f in scenario.faults):
        why = cgroup_cpu_missing()
    return why or scenario.skip


def _run(scenario: Scenario) -> None:
    why = _why_not(scenario)
    if why is not None:
        _record(f"{scenario.name:<22} SKIPPED: {why}")
        pytest.skip(why)
    seed = _seed()
    result = run_scenario(scenario, seed)
    _record(result.line())
    where = f"; logs and timeline kept in {result.logdir}" if result.logdir else ""
    assert result.ok, f"{result.line()}\nseed {seed}{where}\n{result.details()}"


@pytest.mark.heavy
@pytest.mark.timeout(180)
def test_chaos_smoke() -> None:
    _run(SMOKE)


def _param(scenario: Scenario) -> object:
    marks = (
        [pytest.mark.xfail(strict=True, reason=scenario.known_bug)] if scenario.known_bug else []
    )
    return pytest.param(scenario, id=scenario.name, marks=marks)


@pytest.mark.chaos
@pytest.mark.timeout(600)
@pytest.mark.parametrize("scenario", [_param(s) for s in SCENARIOS])
def test_chaos(scenario: Scenario) -> None:
    _run(scenario)
