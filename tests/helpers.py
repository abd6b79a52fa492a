"""Helpers shared by the tests: plain functions, one copy each.

``from helpers import sign_frame`` works in any test: loading
tests/conftest.py puts tests/ on ``sys.path``, also for tests in
subdirectories.
"""

from __future__ import annotations

import dataclasses

from ringward.sim.keys import SimKeys
from ringward.sim.runner import Scenario, run_scenario
from ringward.sim.world import SimulationError, WorldLimits
from ringward.wire import Body, Frame, RingId, signing_bytes

# The cluster id of hand-made frames (the engines' default).
CLUSTER_ID = bytes(8)


def sign_frame(
    keys: SimKeys, sender: int, ring: RingId, body: Body, cluster: bytes = CLUSTER_ID
) -> Frame:
    """``body`` said by ``sender`` in ``ring``, signed with ``sender``'s
    simulator key: what a correct member would send, or what a Byzantine
    one can sign."""
    unsigned = Frame(cluster, sender, ring, body)
    signature = keys.security(sender).sign(signing_bytes(unsigned))
    return dataclasses.replace(unsigned, signature=signature)


def signature_ok(keys: SimKeys, frame: Frame, verifier: int = 1) -> bool:
    """Whether ``frame`` carries its sender's signature, as member
    ``verifier`` checks it."""
    return keys.security(verifier).verify(frame.sender, signing_bytes(frame), frame.signature)


def sim_verdict(scenario: Scenario, limits: WorldLimits) -> str | None:
    """None when a simulation of ``scenario`` holds every guarantee; else
    what to print (the violations, or the bound it hit, and the command that
    reproduces it)."""
    try:
        result = run_scenario(scenario, limits=limits)
    except SimulationError as exc:
        return f"{exc}\nreproduce: {scenario.command()}"
    return None if result.ok else result.failure_text()
