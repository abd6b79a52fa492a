"""Graceful leave: a stopping node announces it, and the others reconfigure
at once instead of waiting for the token timeout (virtual time)."""

from __future__ import annotations

import pytest

from ringward.engine import EngineConfig, gather
from ringward.eventlog import ViewEvent
from ringward.sim.checker import check
from ringward.sim.runner import Scenario, run_scenario
from ringward.sim.world import World

LEAVE_AT = 1.0


def _views_after(security: bool) -> list[ViewEvent]:
    def setup(world: World) -> None:
        world.schedule(LEAVE_AT, world.leave, 4)

    cfg = EngineConfig(token_timeout_ms=2000, consensus_timeout_ms=2400)
    result = run_scenario(
        Scenario(nodes=4, seed=5, duration=3.0, rate=50.0, security=security, config=cfg),
        setup=setup,
    )
    report = check(result.events)  # node 4 is down at the end: not expected up
    assert report.ok, report
    return [
        e
        for e in result.events
        if isinstance(e, ViewEvent) and e.kind == "regular" and e.t >= LEAVE_AT
    ]


@pytest.mark.heavy
def test_others_reconfigure_before_any_timeout() -> None:
    for security in (False, True):
        views = _views_after(security)
        first = {e.node: e for e in reversed(views) if e.node != 4}
        assert set(first) == {1, 2, 3}
        for e in first.values():
            assert e.members == (1, 2, 3)
            # A token loss could not be noticed before 2 s.
            assert e.t - LEAVE_AT < 0.5, e


def test_a_replayed_leave_of_an_earlier_ring_is_stale() -> None:
    from ringward.engine import Engine
    from ringward.wire import Join, RingId

    engine = Engine(1, (1, 2, 3))
    engine.ring, engine.members = RingId(1, 8), (1, 2, 3)
    engine.state = engine.state.OPERATIONAL
    old = Join(4, (1, 2), (), (), ())
    gather.on_leave(engine, 3, old)  # ring_seq 4 < 8: an old ring's leave
    assert engine.drops["stale_leave"] == 1
    assert engine.state is engine.state.OPERATIONAL
