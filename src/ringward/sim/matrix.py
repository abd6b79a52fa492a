"""The seed matrix: one seed names one world (ring size, fault mix, whether
security is on; for Byzantine worlds, which members misbehave and how).
Shared by the test suite (tests/sim/test_sim_matrix.py, tests/sim/test_byzantine.py)
and the soak (benchmarks/soak.py), so a failing seed reproduces anywhere;
also the long-fault matrix (tests/sim/test_long_loss.py)."""

from __future__ import annotations

import random
from collections.abc import Sequence

from ringward.byzantine import TARGETED
from ringward.sim.byzantine import NEEDS_FAULTS
from ringward.sim.faults import FaultSpec
from ringward.sim.runner import Scenario

__all__ = [
    "LONG_FAULT_LOSS_PERCENT",
    "LONG_FAULT_PAIRS",
    "LONG_FAULT_SIZES",
    "MIXES",
    "SEEDED_BEHAVIOURS",
    "SIZES",
    "byzantine_world",
    "long_fault_world",
    "scenario_for",
]

MIXES = (
    "none",
    "loss=0.05",
    "dup=0.05,reorder=0.1",
    "delay=0.5..5,reorder=0.2",
    "partition",
    "crash",
    "pause",
    "slow",
    "loss=0.02,dup=0.02,reorder=0.05,partition,crash,pause,slow",
)
SIZES = range(1, 10)
BYZANTINE_SIZES = (4, 7, 10)
# What byzantine_world draws from by default: the behaviours before issue 14,
# in their order, so that every seed names the world it always named (the
# regression seeds of tests/sim/test_byzantine.py and the soak's history).
SEEDED_BEHAVIOURS = (
    "break-link",
    "drop-token",
    "equivocate",
    "flood-junk",
    "flood-signed",
    "frame",
    "join-churn",
    "join-phantom",
    "lie-aru",
    "replay",
    "slow-token",
    "starve-successor",
    "withhold",
)


def scenario_for(seed: int, *, duration: float, rate: float) -> Scenario:
    """Every 81 consecutive seeds cover every (size, mix) pair once; every
    third world signs and encrypts for real."""
    size = SIZES[seed % len(SIZES)]
    mix = MIXES[(seed // len(SIZES)) % len(MIXES)]
    return Scenario(
        nodes=size,
        seed=seed,
        duration=duration,
        rate=rate,
        faults=FaultSpec.parse(mix),
        security=(seed + seed // 9) % 3 == 0,
    )


def byzantine_world(
    seed: int, *, duration: float, behaviours: Sequence[str] = SEEDED_BEHAVIOURS
) -> tuple[Scenario, str]:
    """A secured ring of 4, 7 or 10 with f members misbehaving, each with a
    behaviour drawn from the seed among ``behaviours`` (``frame`` targets a
    correct member; ``overload`` is left to its own tests: it needs a long
    world)."""
    rng = random.Random(f"byzantine:{seed}")  # noqa: S311 - reproducible, not secret
    n = BYZANTINE_SIZES[seed % len(BYZANTINE_SIZES)]
    f = (n - 1) // 3
    bad = sorted(rng.sample(range(1, n + 1), f))
    correct = [m for m in range(1, n + 1) if m not in bad]
    names = [b for b in behaviours if b != "overload"]
    parts, faults = [], "none"
    for node in bad:
        name = rng.choice(names)
        faults = NEEDS_FAULTS.get(name, faults)
        parts.append(
            f"{node}:{name}:{rng.choice(correct)}" if name in TARGETED else f"{node}:{name}"
        )
    scenario = Scenario(
        nodes=n,
        seed=seed,
        duration=duration,
        rate=50.0,
        faults=FaultSpec.parse(faults),
        security=True,
    )
    return scenario, ",".join(parts)


# The long-fault matrix (issue 16): no attacker, a lossy network for long.
LONG_FAULT_SIZES = (2, 3, 4, 7, 10)
LONG_FAULT_LOSS_PERCENT = (1, 5, 10, 20, 30)
LONG_FAULT_PAIRS = len(LONG_FAULT_SIZES) * len(LONG_FAULT_LOSS_PERCENT)


def long_fault_world(seed: int, duration: float = 30.0) -> Scenario:
    """World ``seed`` of the long-fault matrix: its ring size and loss level
    are drawn from the seed (every pair once per ``LONG_FAULT_PAIRS``
    consecutive seeds), with 2% duplication and 5% reordering, security on,
    100 messages a second."""
    pair = seed % LONG_FAULT_PAIRS
    nodes = LONG_FAULT_SIZES[pair % len(LONG_FAULT_SIZES)]
    loss = LONG_FAULT_LOSS_PERCENT[pair // len(LONG_FAULT_SIZES)]
    spec = f"loss={loss / 100},dup=0.02,reorder=0.05"
    return Scenario(
        nodes=nodes,
        seed=seed,
        duration=duration,
        rate=100.0,
        faults=FaultSpec.parse(spec),
        security=True,
    )
