"""Eviction announcements at install (engine/faults.py ``on_install``)."""

from __future__ import annotations

from ringward.engine import Engine, EngineConfig, faults
from ringward.engine.api import Evicted
from ringward.engine.detector import Verdict
from ringward.sim.keys import SimKeys

KEYS = SimKeys(5, (1, 2, 3, 4))


def test_a_verdict_forgiven_and_renewed_before_an_install_is_announced_once() -> None:
    """Byzantine soak seed 1010 raised TypeError here: a verdict forgiven
    before any view without its target (kept to be announced) and a new
    verdict for the same target were sorted together as (target, Verdict)
    pairs, and two Verdicts do not compare."""
    e = Engine(1, (1, 2, 3, 4), config=EngineConfig(), security=KEYS.security(1))
    det = e.detector
    det.unannounced[3] = Verdict(3, "accused", False, (), 1.0)
    det.verdicts[3] = Verdict(3, "accused", False, (), 5.0)
    faults.on_install(e, (1, 2, 4), "R1.8")
    evicted = [ev for ev in e.ready().events if isinstance(ev, Evicted)]
    assert [ev.target for ev in evicted] == [3]
    assert det.unannounced == {}
