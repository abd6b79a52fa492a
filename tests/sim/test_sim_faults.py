"""Fault specs (parsing) and the fault schedule drawn from the seed."""

from __future__ import annotations

import pytest

from ringward.errors import ConfigError
from ringward.sim.faults import EPISODE_S_MAX, Episode, FaultSpec, plan_faults
from ringward.sim.network import LinkModel


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("none", FaultSpec()),
        ("loss=0.1", FaultSpec(loss=0.1)),
        ("loss=0.1,dup=0.02,partition", FaultSpec(loss=0.1, dup=0.02, partition=True)),
        (" reorder=0.5 , crash ", FaultSpec(reorder=0.5, crash=True)),
        ("delay=0.2..1", FaultSpec(delay_ms=(0.2, 1.0))),
        ("delay=5", FaultSpec(delay_ms=(5.0, 5.0))),
        (
            "pause,slow,crash,partition",
            FaultSpec(pause=True, slow=True, crash=True, partition=True),
        ),
        ("loss=0,dup=1", FaultSpec(dup=1.0)),
    ],
)
def test_good_specs(text: str, expected: FaultSpec) -> None:
    spec = FaultSpec.parse(text)
    assert spec == expected
    assert FaultSpec.parse(str(spec)) == spec


def test_canonical_text() -> None:
    spec = FaultSpec.parse("crash,delay=1..2,loss=0.25,partition")
    assert str(spec) == "loss=0.25,delay=1.0..2.0,partition,crash"
    assert str(FaultSpec()) == "none"
    assert spec.episodic == ("partition", "crash")


@pytest.mark.parametrize(
    "text",
    [
        "",
        "loss",
        "loss=",
        "loss=2",
        "loss=-0.1",
        "loss=nan",
        "loss=inf",
        "loss=abc",
        "dup=0.1,dup=0.2",
        "crash,crash",
        "none,crash",
        "loss=0.1,,crash",
        "partition=1",
        "frob",
        "delay=5..1",
        "delay=a..b",
        "delay=1..2..3",
        "delay=..",
        "delay=-1..2",
        "delay=1..1e12",
        "Loss=0.1",
        "x" * 300,
    ],
)
def test_bad_specs_raise_config_error(text: str) -> None:
    with pytest.raises(ConfigError) as info:
        FaultSpec.parse(text)
    assert info.value.reason == "sim.bad_faults"


def test_link_model_and_without_link_faults() -> None:
    spec = FaultSpec.parse("loss=0.1,dup=0.2,reorder=0.3,delay=2..4,crash")
    model = spec.link_model(LinkModel())
    assert (model.loss, model.dup, model.reorder) == (0.1, 0.2, 0.3)
    assert (model.delay_min_s, model.delay_max_s) == (0.002, 0.004)
    calm = spec.without_link_faults()
    assert calm == FaultSpec(delay_ms=(2.0, 4.0), crash=True)


ALL = FaultSpec.parse("partition,crash,pause,slow")


def test_plan_is_deterministic_and_seed_dependent() -> None:
    nodes = list(range(1, 8))
    assert plan_faults(ALL, nodes, 30.0, 5) == plan_faults(ALL, nodes, 30.0, 5)
    assert plan_faults(ALL, nodes, 30.0, 5) != plan_faults(ALL, nodes, 30.0, 6)


@pytest.mark.parametrize("seed", range(20))
def test_plan_respects_its_bounds(seed: int) -> None:
    nodes = [1, 2, 3, 4, 5]
    duration = 20.0
    episodes = plan_faults(ALL, nodes, duration, seed)
    assert list(episodes) == sorted(episodes, key=lambda e: e.start_s)
    last_end: dict[str, float] = {}
    for e in episodes:
        assert 0.0 <= e.start_s < e.end_s <= duration
        assert e.end_s - e.start_s <= EPISODE_S_MAX
        assert e.start_s >= last_end.get(e.kind, 0.0), "episodes of one kind overlap"
        last_end[e.kind] = e.end_s
        if e.kind == "partition":
            flat = sorted(n for g in e.groups for n in g)
            assert flat == nodes and 2 <= len(e.groups) <= 3
            assert all(g for g in e.groups)
        else:
            assert e.nodes and set(e.nodes) <= set(nodes)
            assert list(e.nodes) == sorted(set(e.nodes))
        assert (e.slow_s > 0) == (e.kind == "slow")


def test_plan_draws_every_kind_over_a_long_run() -> None:
    kinds = {e.kind for e in plan_faults(ALL, [1, 2, 3], 120.0, 1)}
    assert kinds == {"partition", "crash", "pause", "slow"}


def test_kinds_have_independent_streams() -> None:
    nodes = [1, 2, 3, 4]

    def crashes(spec: FaultSpec) -> list[Episode]:
        return [e for e in plan_faults(spec, nodes, 30.0, 3) if e.kind == "crash"]

    assert crashes(FaultSpec(crash=True)) == crashes(ALL)


def test_no_partition_of_one_node_and_nothing_without_faults() -> None:
    assert plan_faults(FaultSpec(partition=True), [1], 60.0, 1) == ()
    assert plan_faults(FaultSpec(loss=0.5), [1, 2], 60.0, 1) == ()
    assert plan_faults(ALL, [1, 2], 0.0, 1) == ()
