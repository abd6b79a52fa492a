"""The world's event loop and node faults, driven with the toy sequencer engine."""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterable

import pytest

from ringward.eventlog import ByzantineEvent, CrashEvent, RestartEvent, SendEvent, to_json
from ringward.sim.network import LinkModel, Network
from ringward.sim.world import (
    Datagram,
    EngineFactory,
    Interceptor,
    SimulationError,
    World,
    WorldLimits,
)
from sim_fake import (
    RaisingEngine,
    SequencerEngine,
    SpinningEngine,
    sequencer_factory,
)

FIXED = LinkModel(delay_min_s=0.001, delay_max_s=0.001)


def make_world(
    n: int = 3,
    factory: EngineFactory = sequencer_factory,
    *,
    limits: WorldLimits | None = None,
    interceptor: Interceptor | None = None,
) -> World:
    roster = list(range(1, n + 1))
    world = World(
        roster,
        factory,
        Network(roster, random.Random(0), FIXED),
        limits=limits,
        interceptor=interceptor,
    )
    world.start()
    return world


def fake(world: World, node: int) -> SequencerEngine:
    engine = world.engine(node)
    assert isinstance(engine, SequencerEngine)
    return engine


def data_frames(engine: SequencerEngine) -> list[bytes]:
    return [d for _, d in engine.received if d[:1] == b"D"]


def test_messages_flow_and_timers_fire() -> None:
    world = make_world()
    world.run_until(0.05)
    world.submit(2, b"hello")
    world.run_until(1.0)
    for node in (1, 2, 3):
        assert [e for e in world.events if getattr(e, "id", None) == "2:0" and e.node == node]
        ticks = fake(world, node).ticks
        assert len(ticks) == 10  # every 0.1 s from 0.1 to 1.0
    sends = [e for e in world.events if isinstance(e, SendEvent)]
    assert len(sends) == 1 and sends[0].t == 0.05 and sends[0].line == 4  # after 3 views


def test_crashed_node_receives_nothing_until_restart() -> None:
    world = make_world()
    world.run_until(0.5)
    old = fake(world, 3)
    world.crash(3)
    assert not world.is_up(3) and world.engine(3) is None
    received, ticks = len(old.received), len(old.ticks)
    for i in range(5):
        world.submit(1, b"m%d" % i)
    world.run_until(2.0)
    assert (len(old.received), len(old.ticks)) == (received, ticks)  # dead object untouched
    assert world.counters.drops["crashed"] > 0
    world.restart(3)
    new = fake(world, 3)
    assert new is not old
    assert new.incarnation == world.incarnation(3) == 1
    world.submit(1, b"after")
    world.run_until(2.5)
    assert data_frames(new) and new.ticks
    assert [type(e) for e in world.events if e.node == 3 and not hasattr(e, "view")] == [
        CrashEvent,
        RestartEvent,
    ]
    assert world.counters.crashes == world.counters.restarts == 1


def test_crash_and_restart_are_idempotent() -> None:
    world = make_world()
    world.restart(2)  # up: no-op
    world.crash(2)
    world.crash(2)  # down: no-op
    assert world.counters.crashes == 1
    with pytest.raises(Exception, match="cannot take a submit"):
        world.submit(2, b"x")
    world.restart(2)
    world.restart(2)
    assert world.incarnation(2) == 1


def test_pause_queues_and_delivers_at_resume() -> None:
    world = make_world()
    world.run_until(0.05)
    world.pause(2)
    assert world.is_up(2) and not world.is_live(2)
    engine = fake(world, 2)
    before_rx, before_ticks = len(engine.received), len(engine.ticks)
    for i in range(20):
        world.submit(1, b"p%02d" % i)
    world.run_until(1.0)
    assert (len(engine.received), len(engine.ticks)) == (before_rx, before_ticks)
    assert world.inbox_len(2) >= 20
    world.resume(2)
    assert world.inbox_len(2) == 0
    frames = data_frames(engine)
    assert [f[-3:] for f in frames] == [b"p%02d" % i for i in range(20)]
    assert all(t == 1.0 for t, _ in engine.received[before_rx:])
    assert engine.ticks[-1] == 1.0  # the overdue timer fires late, at resume
    world.run_until(1.05)
    assert engine.ticks[-1] == 1.0
    world.run_until(1.1)
    assert engine.ticks[-1] == pytest.approx(1.1)


def test_pause_overflow_is_counted() -> None:
    world = make_world(limits=WorldLimits(inbox_max=5))
    world.pause(2)
    for i in range(30):
        world.submit(1, b"o%d" % i)
    world.run_until(0.05)
    assert world.inbox_len(2) == 5
    assert world.counters.drops["inbox_overflow"] == 25
    world.resume(2)
    assert len(data_frames(fake(world, 2))) == 5


def test_crash_while_paused_loses_the_queue() -> None:
    world = make_world()
    world.pause(3)
    world.submit(1, b"q")
    world.run_until(0.05)
    assert world.inbox_len(3) == 1
    world.crash(3)
    assert world.inbox_len(3) == 0 and world.counters.drops["crash_inbox"] == 1
    world.resume(3)  # not paused any more: no-op
    world.restart(3)
    assert world.is_live(3)


def test_slow_node_processes_one_datagram_per_slot() -> None:
    world = make_world()
    world.set_slow(2, 0.01)
    for i in range(10):
        world.submit(1, b"s%d" % i)
    world.run_until(0.5)
    times = [t for t, d in fake(world, 2).received if d[:1] == b"D"]
    assert len(times) == 10
    assert all(b - a >= 0.01 - 1e-9 for a, b in itertools.pairwise(times))
    assert all(t == 0.001 for t, d in fake(world, 3).received if d[:1] == b"D")


def test_spinning_engine_is_nudged_not_looped() -> None:
    def factory(
        node: int, roster: tuple[int, ...], inc: int, now: float, _rs: int = 0
    ) -> SpinningEngine:
        return SpinningEngine(node, roster, now=now)

    world = make_world(2, factory)
    world.run_until(0.1)
    engine = fake(world, 1)
    # A tick at an instant happens once, plus once more per datagram received
    # then (a receive is progress): never an endless loop at one instant.
    for instant in set(engine.ticks):
        arrivals = sum(t == instant for t, _ in engine.received)
        assert engine.ticks.count(instant) <= 1 + arrivals
    assert 100 <= len(engine.ticks) <= 200
    assert world.counters.timer_nudges >= 100


def test_event_storm_fails_loudly() -> None:
    def factory(
        node: int, roster: tuple[int, ...], inc: int, now: float, _rs: int = 0
    ) -> SpinningEngine:
        return SpinningEngine(node, roster, now=now)

    world = make_world(2, factory, limits=WorldLimits(events_per_s_max=500))
    with pytest.raises(SimulationError) as info:
        world.run_until(5.0)
    assert info.value.reason == "sim.event_storm"


def test_engine_exception_is_reported_with_node_and_time() -> None:
    def factory(
        node: int, roster: tuple[int, ...], inc: int, now: float, _rs: int = 0
    ) -> RaisingEngine:
        return RaisingEngine(node, roster, now=now)

    world = make_world(2, factory)
    with pytest.raises(SimulationError) as info:
        world.run_until(1.0)
    assert info.value.reason == "sim.engine_raised"
    assert "IndexError" in info.value.message and "node " in info.value.message
    assert isinstance(info.value.__cause__, IndexError)


def test_backpressure_is_counted_not_logged() -> None:
    def factory(
        node: int, roster: tuple[int, ...], inc: int, now: float, _rs: int = 0
    ) -> SequencerEngine:
        return SequencerEngine(node, roster, now=now, send_queue_max=0)

    world = make_world(2, factory)
    assert world.submit(1, b"x") is None
    assert world.counters.refused == {"backpressure": 1}
    assert not any(isinstance(e, SendEvent) for e in world.events)


def test_interceptor_sees_every_datagram_and_can_drop_alter_inject() -> None:
    seen: list[Datagram] = []

    def adversary(now: float, d: Datagram) -> Iterable[Datagram]:
        seen.append(d)
        if d.dest == 3:
            return []  # drop everything to node 3
        if d.data[:1] == b"D" and d.dest == 2:
            return [d, Datagram(d.src, d.dest, d.data[:-1] + b"!")]  # inject an altered copy
        return [d]

    world = make_world(interceptor=adversary)
    world.submit(1, b"abc")
    world.run_until(0.35)
    assert {(d.src, d.dest) for d in seen if d.data[:1] == b"D"} == {(1, 2), (1, 3)}
    assert len(seen) == 1 * 2 + 3 * 3 * 2  # one broadcast + 3 heartbeat rounds of 3 nodes
    assert not fake(world, 3).received
    assert [d[-3:] for d in data_frames(fake(world, 2))] == [b"abc", b"ab!"]


def test_byzantine_marking_is_logged() -> None:
    world = make_world()
    world.run_until(1.5)
    world.mark_byzantine(2, "equivocate")
    assert world.is_byzantine(2)
    event = world.events[-1]
    assert event == ByzantineEvent(t=1.5, node=2, behaviour="equivocate")
    assert '"ev":"byzantine"' in to_json(event)


def test_converged_needs_everyone_in_one_full_regular_view() -> None:
    world = make_world()
    assert world.converged()
    world.pause(1)
    assert not world.converged()
    world.resume(1)
    world.crash(2)
    assert not world.converged()
    world.restart(2)
    assert world.converged()  # the toy engine installs its static view at once
