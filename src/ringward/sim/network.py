"""The simulated network: latency, jitter, loss, duplication, reordering, partitions.

Theory of operation
-------------------
A :class:`Network` decides, for one datagram from ``src`` to ``dest`` sent at
virtual time ``now``, *when* it arrives (zero, one or two times). It holds no
queue itself: the world schedules one arrival per returned time. Every
decision draws from the single :class:`random.Random` handed in, in a fixed
order, so one seed gives one sequence of arrivals.

The model is a LAN of independent links. Each link ``(src, dest)`` follows a
:class:`LinkModel` (a per-link override, or the network's default):

* delay: uniform in ``[delay_min_s, delay_max_s]`` (latency plus jitter);
* loss: dropped with probability ``loss``;
* duplication: with probability ``dup`` a second copy arrives, with its own
  independently drawn delay;
* reordering: with probability ``reorder`` a copy gets an extra uniform delay
  in ``[0, reorder_delay_max_s]``, so later datagrams overtake it.

A partition splits the nodes into groups; a datagram whose ends lie in
different groups is dropped (reason ``partition``), whatever the link model.
``heal()`` joins everything again. Drops are counted by reason, never raised.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

from ringward.errors import ConfigError

__all__ = ["DELAY_S_MAX", "LinkModel", "Network"]

# Largest one-way delay a link model may ask for. A minute is far beyond any
# WAN; larger values are almost certainly a unit mistake (ms given as s).
DELAY_S_MAX: Final = 60.0


@dataclass(frozen=True, slots=True)
class LinkModel:
    """How one directed link behaves. Times in seconds, probabilities in [0, 1].

    The defaults model a quiet LAN: 0.2-1 ms per hop, nothing lost.
    """

    delay_min_s: float = 0.0002
    delay_max_s: float = 0.001
    loss: float = 0.0
    dup: float = 0.0
    reorder: float = 0.0
    # Extra delay of a reordered datagram: a few LAN hops, enough to be
    # overtaken by the datagrams sent right after it.
    reorder_delay_max_s: float = 0.005

    def __post_init__(self) -> None:
        for name in ("loss", "dup", "reorder"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ConfigError("sim.bad_probability", f"{name}={value} is not in [0, 1]")
        if not 0.0 <= self.delay_min_s <= self.delay_max_s <= DELAY_S_MAX:
            raise ConfigError(
                "sim.bad_delay",
                f"delay {self.delay_min_s}..{self.delay_max_s} s must satisfy "
                f"0 <= min <= max <= {DELAY_S_MAX}",
            )
        if not 0.0 <= self.reorder_delay_max_s <= DELAY_S_MAX:
            raise ConfigError(
                "sim.bad_delay", f"reorder_delay_max_s={self.reorder_delay_max_s} out of range"
            )


class Network:
    """Decides arrival times of datagrams between ``nodes``.

    ``drops`` counts lost datagrams by reason (``loss``, ``partition``);
    ``sent``, ``duplicated`` and ``reordered`` count what the model did.
    """

    def __init__(
        self, nodes: Sequence[int], rng: random.Random, model: LinkModel | None = None
    ) -> None:
        self.nodes: tuple[int, ...] = tuple(sorted(set(nodes)))
        self.model = model if model is not None else LinkModel()
        self._rng = rng
        self._links: dict[tuple[int, int], LinkModel] = {}
        # node -> index of its group; empty when the network is whole.
        self._group_of: dict[int, int] = {}
        self.drops: Counter[str] = Counter()
        self.sent = 0
        self.duplicated = 0
        self.reordered = 0

    # -- configuration -------------------------------------------------------

    def set_link(self, src: int, dest: int, model: LinkModel | None) -> None:
        """Override the model of the directed link ``src -> dest`` (None: default)."""
        if model is None:
            self._links.pop((src, dest), None)
        else:
            self._links[(src, dest)] = model

    def link(self, src: int, dest: int) -> LinkModel:
        """The model in force on ``src -> dest``."""
        return self._links.get((src, dest), self.model)

    def partition(self, groups: Iterable[Iterable[int]]) -> None:
        """Split the network into ``groups``; each node outside all groups is
        isolated on its own. A node listed twice is a ConfigError."""
        group_of: dict[int, int] = {}
        count = 0
        for group in groups:
            for node in group:
                if node in group_of:
                    raise ConfigError("sim.bad_partition", f"node {node} is in two groups")
                group_of[node] = count
            count += 1
        for position, node in enumerate(self.nodes):
            if node not in group_of:
                group_of[node] = count + position  # a group of its own: isolated
        self._group_of = group_of

    def heal(self) -> None:
        """End any partition: every node reaches every other again."""
        self._group_of = {}

    @property
    def partitioned(self) -> bool:
        """True while a partition is in force."""
        return bool(self._group_of)

    def groups(self) -> tuple[tuple[int, ...], ...]:
        """The current groups, each ascending, ordered by their lowest node."""
        if not self._group_of:
            return (self.nodes,)
        by_group: dict[int, list[int]] = {}
        for node in self.nodes:
            by_group.setdefault(self._group_of[node], []).append(node)
        return tuple(sorted(tuple(g) for g in by_group.values()))

    def connected(self, a: int, b: int) -> bool:
        """True when a datagram from ``a`` can reach ``b`` (no partition between)."""
        if not self._group_of:
            return True
        return self._group_of.get(a, -1 - a) == self._group_of.get(b, -1 - b)

    # -- the model -----------------------------------------------------------

    def transmit(self, now: float, src: int, dest: int) -> list[float]:
        """Arrival times (ascending) of one datagram ``src -> dest`` sent at ``now``.

        Empty when it is dropped. The random draws happen in a fixed order
        whatever the outcome, except that a dropped datagram draws no delay:
        determinism needs a fixed order, not a fixed count.
        """
        self.sent += 1
        if not self.connected(src, dest):
            self.drops["partition"] += 1
            return []
        link = self.link(src, dest)
        rng = self._rng
        if link.loss > 0.0 and rng.random() < link.loss:
            self.drops["loss"] += 1
            return []
        copies = 1
        if link.dup > 0.0 and rng.random() < link.dup:
            copies = 2
            self.duplicated += 1
        arrivals = []
        for _ in range(copies):
            delay = rng.uniform(link.delay_min_s, link.delay_max_s)
            if link.reorder > 0.0 and rng.random() < link.reorder:
                delay += rng.uniform(0.0, link.reorder_delay_max_s)
                self.reordered += 1
            arrivals.append(now + delay)
        arrivals.sort()
        return arrivals
