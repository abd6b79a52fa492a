"""No (key, nonce) pair is ever sealed twice, whatever is replayed.

Every engine of a secured simulated world seals through a RecordingSecurity
(tests/nonce_log.py) that logs the AES-GCM data key and nonce of each seal;
across the whole run, restarts included, no pair may repeat. Worlds: the
network's ``replay-commit`` attack (a member cut off in a ring's recovery
gets the ring's commits and tokens replayed: before issue 16's fix it
entered the ring again and sealed its recovery frames again under the same
key, its counter restarted), the plain ``replay`` attack under loss,
partitions and crashes (recovery timeouts, restarts), and a Byzantine
member replaying what it hears. Each world must also keep every guarantee
(and an attack its own expectation).
"""

from __future__ import annotations

import dataclasses

import pytest

from nonce_log import RecordingSecurity, SealLog
from ringward.byzantine import ByzantineEngine
from ringward.engine import Engine, EngineConfig
from ringward.sim.attacks import ATTACKS
from ringward.sim.faults import FaultSpec
from ringward.sim.interface import EngineLike
from ringward.sim.keys import SimKeys
from ringward.sim.runner import Scenario, run_scenario

pytestmark = pytest.mark.heavy

SOAK = pytest.mark.soak
FAULTS = "loss=0.05,partition,crash"


def check(
    scenario: Scenario,
    *,
    attack: str | None = None,
    byzantine: dict[int, str] | None = None,
) -> None:
    """Run ``scenario`` secured, every seal logged, and judge it."""
    sc = dataclasses.replace(scenario, security=True)
    cfg = sc.config or EngineConfig()
    keys = SimKeys(sc.seed, tuple(range(1, sc.nodes + 1)))
    log = SealLog()
    bad = byzantine or {}

    def make(node: int, roster: tuple[int, ...], inc: int, now: float, rs: int) -> EngineLike:
        security = RecordingSecurity(keys, node, log, inc)
        if node in bad:
            return ByzantineEngine(
                node,
                roster,
                behaviour=bad[node],
                arg=None,
                start_s=1.0,
                config=cfg,
                incarnation=inc,
                ring_seq=rs,
                now=now,
                security=security,
            )
        return Engine(
            node, roster, config=cfg, incarnation=inc, ring_seq=rs, now=now, security=security
        )

    setup = ATTACKS[attack][0](sc) if attack is not None else None
    result = run_scenario(
        sc,
        engine_factory=make,
        interceptor=setup.interceptor if setup is not None else None,
        byzantine=bad,
    )
    reproduce = sc.command() + (f" --attack {attack}" if attack else "")
    reproduce += "".join(f" --byzantine {n}:{b}" for n, b in bad.items())
    assert len(log) > 100, f"too few seals to judge: {len(log)}\n{reproduce}"
    repeats = log.repeats()
    assert not repeats, (
        f"{len(repeats)} (key, nonce) pairs sealed twice: {repeats[:3]}\n{reproduce}"
    )
    assert result.ok, result.failure_text()
    if setup is not None:
        held, detail = setup.judge(result)
        assert held, f"{attack}: {detail}\n{reproduce}"


@pytest.mark.parametrize(
    ("nodes", "seed", "duration"),
    [
        (4, 1, 10.0),
        (5, 2, 10.0),
        pytest.param(4, 3, 30.0, marks=SOAK),
        pytest.param(7, 4, 30.0, marks=SOAK),
    ],
)
def test_replayed_commits_never_reseal(nodes: int, seed: int, duration: float) -> None:
    check(Scenario(nodes=nodes, seed=seed, duration=duration, rate=60.0), attack="replay-commit")


@pytest.mark.parametrize(("seed", "duration"), [(5, 10.0), pytest.param(6, 30.0, marks=SOAK)])
def test_replays_under_faults_never_reseal(seed: int, duration: float) -> None:
    faults = FaultSpec.parse(FAULTS)
    check(
        Scenario(nodes=5, seed=seed, duration=duration, rate=60.0, faults=faults), attack="replay"
    )


@pytest.mark.parametrize(("seed", "duration"), [(7, 10.0), pytest.param(8, 30.0, marks=SOAK)])
def test_a_replaying_member_never_makes_others_reseal(seed: int, duration: float) -> None:
    faults = FaultSpec.parse("loss=0.05,partition")
    scenario = Scenario(nodes=4, seed=seed, duration=duration, rate=60.0, faults=faults)
    check(scenario, byzantine={4: "replay"})
