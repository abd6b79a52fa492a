"""An accusation resting on what only its accuser can see (a key sealed to
it alone, ``bad_commit``) is not held against that accuser when nobody follows
it; any other lone accusation still is (real engines, real keys)."""

from __future__ import annotations

import pytest

from ring_harness import Cluster
from ringward.engine import EngineConfig
from ringward.engine.accusations import PRIVATE_SIGNALS
from ringward.wire import Accusation

pytestmark = pytest.mark.heavy  # seconds: real engines under a traced work budget

ACCUSER, TARGET = 2, 3


def _false_accusation_scores(signal: str) -> list[float]:
    c = Cluster(4, config=EngineConfig())
    c.run(0.6)
    assert all(c.regular_members(i) == c.roster for i in c.roster)
    ring = c.engines[ACCUSER].ring
    assert ring is not None
    c.broadcast(ACCUSER, c.sign(ACCUSER, ring, Accusation(TARGET, 1, signal, 100_000)))
    c.run(12.0)  # past the review of an accusation (8 token timeouts)
    return [
        c.engines[i].detector.scores(c.now).get(ACCUSER, {}).get("false_accusation", 0.0)
        for i in c.roster
        if i not in (ACCUSER, TARGET)
    ]


def test_a_lone_accusation_on_a_private_signal_costs_its_accuser_nothing() -> None:
    assert {"bad_commit"} == PRIVATE_SIGNALS
    assert _false_accusation_scores("bad_commit") == [0.0, 0.0]


def test_a_lone_accusation_on_a_shared_signal_is_held_against_its_accuser() -> None:
    assert all(score > 0 for score in _false_accusation_scores("token_loss"))
