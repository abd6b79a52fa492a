"""The network model, measured directly on a Network with fixed seeds."""

from __future__ import annotations

import random

import pytest

from ringward.errors import ConfigError
from ringward.sim.network import LinkModel, Network

NODES = (1, 2, 3, 4)


def net(model: LinkModel | None = None, seed: int = 7) -> Network:
    return Network(NODES, random.Random(seed), model)


def test_default_is_a_quiet_lan() -> None:
    n = net()
    arrivals = [n.transmit(10.0, 1, 2) for _ in range(2000)]
    assert all(len(a) == 1 for a in arrivals)
    assert all(10.0002 <= a[0] <= 10.001 for a in arrivals)
    assert not n.drops


def test_loss_one_drops_everything() -> None:
    n = net(LinkModel(loss=1.0))
    assert all(n.transmit(0.0, 1, dest) == [] for dest in (2, 3, 4) for _ in range(500))
    assert n.drops == {"loss": 1500}


def test_loss_fraction_is_about_right() -> None:
    n = net(LinkModel(loss=0.3))
    lost = sum(not n.transmit(0.0, 1, 2) for _ in range(5000))
    assert 1200 < lost < 1800
    assert n.drops["loss"] == lost


def test_partition_drops_across_groups_only() -> None:
    n = net()
    n.partition([(1, 2), (3, 4)])
    assert n.partitioned
    assert n.groups() == ((1, 2), (3, 4))
    for src in NODES:
        for dest in NODES:
            if src == dest:
                continue
            same = (src <= 2) == (dest <= 2)
            assert bool(n.transmit(0.0, src, dest)) == same, (src, dest)
    assert n.drops == {"partition": 8}
    n.heal()
    assert n.groups() == (NODES,)
    assert all(n.transmit(0.0, 1, dest) for dest in (2, 3, 4))


def test_partition_isolates_unlisted_nodes() -> None:
    n = net()
    n.partition([(1, 2, 3)])
    assert n.groups() == ((1, 2, 3), (4,))
    assert not n.transmit(0.0, 4, 1)
    assert not n.transmit(0.0, 1, 4)
    assert n.transmit(0.0, 3, 1)


def test_partition_refuses_a_node_in_two_groups() -> None:
    with pytest.raises(ConfigError) as info:
        net().partition([(1, 2), (2, 3)])
    assert info.value.reason == "sim.bad_partition"


def test_partition_beats_any_link_model() -> None:
    n = net()
    n.set_link(1, 3, LinkModel(dup=1.0))
    n.partition([(1, 2), (3, 4)])
    assert n.transmit(0.0, 1, 3) == []


def test_dup_produces_duplicates() -> None:
    n = net(LinkModel(dup=0.5))
    copies = [len(n.transmit(0.0, 1, 2)) for _ in range(4000)]
    assert set(copies) == {1, 2}
    assert 1700 < copies.count(2) < 2300
    assert n.duplicated == copies.count(2)
    always = net(LinkModel(dup=1.0))
    assert all(len(always.transmit(0.0, 2, 1)) == 2 for _ in range(100))


def send_train(n: Network, count: int, gap_s: float) -> list[int]:
    """Send ``count`` datagrams 1 -> 2, ``gap_s`` apart; return their arrival order."""
    arrivals: list[tuple[float, int]] = []
    for i in range(count):
        arrivals += [(at, i) for at in n.transmit(i * gap_s, 1, 2)]
    return [i for _, i in sorted(arrivals)]


def test_reorder_changes_order() -> None:
    fixed = LinkModel(delay_min_s=0.001, delay_max_s=0.001)
    assert send_train(net(fixed), 500, 0.0005) == list(range(500))
    order = send_train(
        net(LinkModel(delay_min_s=0.001, delay_max_s=0.001, reorder=0.2)), 500, 0.0005
    )
    assert sorted(order) == list(range(500))
    assert order != list(range(500))


def test_delay_bounds_respected() -> None:
    model = LinkModel(delay_min_s=0.005, delay_max_s=0.020, reorder=0.5, reorder_delay_max_s=0.01)
    n = net(model)
    times = [at - 3.0 for _ in range(3000) for at in n.transmit(3.0, 2, 3)]
    assert min(times) >= 0.005
    assert max(times) <= 0.030
    # Reordered ones exceed the plain maximum; the others do not.
    assert any(t > 0.020 for t in times)
    plain = net(LinkModel(delay_min_s=0.005, delay_max_s=0.020))
    times = [at - 3.0 for _ in range(3000) for at in plain.transmit(3.0, 2, 3)]
    assert 0.005 <= min(times) < 0.006 and 0.019 < max(times) <= 0.020


def test_per_link_override() -> None:
    n = net()
    n.set_link(1, 2, LinkModel(loss=1.0))
    assert n.transmit(0.0, 1, 2) == []
    assert n.transmit(0.0, 2, 1)  # directed: the reverse link is fine
    n.set_link(1, 2, None)
    assert n.transmit(0.0, 1, 2)


def test_same_seed_same_arrivals_different_seed_different() -> None:
    model = LinkModel(loss=0.1, dup=0.1, reorder=0.1)

    def trace(seed: int) -> list[list[float]]:
        n = net(model, seed)
        return [n.transmit(i * 0.001, 1 + i % 4, 1 + (i + 1) % 4) for i in range(1000)]

    assert trace(1) == trace(1)
    assert trace(1) != trace(2)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"loss": 1.5},
        {"dup": -0.1},
        {"reorder": float("nan")},
        {"delay_min_s": 0.01, "delay_max_s": 0.001},
        {"delay_min_s": -1.0},
        {"delay_max_s": 1e9},
        {"reorder_delay_max_s": -1.0},
    ],
)
def test_bad_link_models_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ConfigError):
        LinkModel(**kwargs)
