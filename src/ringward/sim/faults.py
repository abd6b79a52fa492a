"""Fault specifications and the fault schedule drawn from a seed.

Theory of operation
-------------------
A :class:`FaultSpec` is what the user asks for (``--faults loss=0.1,crash``):
*link faults* that hold for the whole fault phase (loss, duplication,
reordering, delay) and *episodic faults* (partition, crash, pause, slow) that
come and go. :func:`plan_faults` turns the episodic part into a fixed list of
:class:`Episode` values before the run starts, so the schedule is a pure
function of (spec, nodes, duration, seed) and can be printed or tested alone.

Each episodic kind has its own random stream (``Random(f"{seed}:faults:{kind}")``):
enabling ``pause`` does not move the crashes of ``crash``, so a failing seed
keeps its shape when a fault kind is added or removed while bisecting.
Episodes of one kind never overlap (the next starts after the previous ends,
after an exponential gap); episodes of different kinds may. Every episode
ends by the end of the fault phase: the world heals, restarts and resumes
everything then, before the quiet period.

Adding a fault kind: add a field to :class:`FaultSpec` and its word to
``_FLAGS`` (or a ``key=value`` parser), a drawing function in ``_DRAW``, and
its start/end actions in :mod:`ringward.sim.runner` (docs/simulator.md).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from itertools import pairwise
from typing import Final, Literal

from ringward.errors import ConfigError
from ringward.sim.network import DELAY_S_MAX, LinkModel

__all__ = [
    "EPISODE_GAP_MEAN_S",
    "EPISODE_S_MAX",
    "EPISODE_S_MIN",
    "Episode",
    "EpisodeKind",
    "FaultSpec",
    "plan_faults",
]

# An episode lasts 0.5-5 s: longer than a token timeout (so the membership
# protocol reacts) and short enough that a 30 s run sees several.
EPISODE_S_MIN: Final = 0.5
EPISODE_S_MAX: Final = 5.0
# Mean quiet gap between two episodes of one kind (a Poisson process).
EPISODE_GAP_MEAN_S: Final = 2.0
# A slow node spends this much extra time per datagram: from a busy process
# (1 ms) to one that is badly overloaded (20 ms, tens of datagrams a second).
SLOW_S_MIN: Final = 0.001
SLOW_S_MAX: Final = 0.020
# Hard cap on episodes of one kind in one run, whatever the duration.
EPISODES_PER_KIND_MAX: Final = 10_000
# Longest spec string accepted (it is echoed in reproduction commands).
SPEC_CHARS_MAX: Final = 256

EpisodeKind = Literal["partition", "crash", "pause", "slow"]
_KINDS: Final[tuple[EpisodeKind, ...]] = ("partition", "crash", "pause", "slow")
_FLAGS: Final = frozenset(_KINDS)
_PROBABILITIES: Final = ("loss", "dup", "reorder")


@dataclass(frozen=True, slots=True)
class FaultSpec:
    """The faults of one run: link faults plus the episodic kinds enabled.

    ``delay_ms`` (min, max) replaces the default LAN latency when given.
    ``str(spec)`` is the canonical spec text; ``FaultSpec.parse(str(s)) == s``.
    """

    loss: float = 0.0
    dup: float = 0.0
    reorder: float = 0.0
    delay_ms: tuple[float, float] | None = None
    partition: bool = False
    crash: bool = False
    pause: bool = False
    slow: bool = False

    def __post_init__(self) -> None:
        # Reuse LinkModel's checks so the two can never disagree.
        self.link_model(LinkModel())

    @classmethod
    def parse(cls, text: str) -> FaultSpec:
        """Parse ``loss=P,dup=P,reorder=P,delay=MIN..MAX,partition,crash,pause,slow``
        or ``none``. Raises ConfigError (reason ``sim.bad_faults``) on anything else:
        unknown words, repeated words, values out of range, empty items."""
        if len(text) > SPEC_CHARS_MAX:
            raise ConfigError("sim.bad_faults", f"fault spec longer than {SPEC_CHARS_MAX} chars")
        items = [item.strip() for item in text.split(",")]
        if items == ["none"]:
            return cls()
        values: dict[str, object] = {}
        for item in items:
            key, sep, value = item.partition("=")
            if key in values:
                raise ConfigError("sim.bad_faults", f"{key!r} given twice in {text!r}")
            if not sep and key in _FLAGS:
                values[key] = True
            elif sep and key in _PROBABILITIES:
                values[key] = _number(key, value)
            elif sep and key == "delay":
                values["delay_ms"] = _delay(value)
            else:
                raise ConfigError(
                    "sim.bad_faults",
                    f"unknown fault {item!r}: expected none, loss=P, dup=P, reorder=P, "
                    "delay=MIN..MAX (ms), partition, crash, pause, slow",
                )
        try:
            return cls(**values)  # type: ignore[arg-type]  # keys checked above
        except ConfigError as exc:
            raise ConfigError("sim.bad_faults", exc.message) from exc

    def __str__(self) -> str:
        parts = [
            f"{name}={getattr(self, name)!r}" for name in _PROBABILITIES if getattr(self, name)
        ]
        if self.delay_ms is not None:
            parts.append(f"delay={self.delay_ms[0]!r}..{self.delay_ms[1]!r}")
        parts += [kind for kind in _KINDS if getattr(self, kind)]
        return ",".join(parts) or "none"

    @property
    def episodic(self) -> tuple[EpisodeKind, ...]:
        """The episodic fault kinds enabled, in canonical order."""
        return tuple(kind for kind in _KINDS if getattr(self, kind))

    def link_model(self, base: LinkModel) -> LinkModel:
        """``base`` with this spec's link faults (and delay, if given) applied."""
        model = replace(base, loss=self.loss, dup=self.dup, reorder=self.reorder)
        if self.delay_ms is not None:
            lo, hi = self.delay_ms
            model = replace(model, delay_min_s=lo / 1000.0, delay_max_s=hi / 1000.0)
        return model

    def without_link_faults(self) -> FaultSpec:
        """This spec minus loss, duplication and reordering (delay is kept:
        it is the network's latency, which does not stop when faults do)."""
        return replace(self, loss=0.0, dup=0.0, reorder=0.0)


def _number(key: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ConfigError("sim.bad_faults", f"{key}={text!r} is not a number") from None
    if not math.isfinite(value) or not 0.0 <= value <= 1.0:
        raise ConfigError("sim.bad_faults", f"{key}={text} is not a probability in [0, 1]")
    return value


def _delay(text: str) -> tuple[float, float]:
    lo_text, sep, hi_text = text.partition("..")
    bounds = []
    for part in (lo_text, hi_text if sep else lo_text):
        try:
            value = float(part)
        except ValueError:
            raise ConfigError(
                "sim.bad_faults", f"delay={text!r}: expected MIN..MAX in ms"
            ) from None
        if not math.isfinite(value) or not 0.0 <= value <= DELAY_S_MAX * 1000.0:
            raise ConfigError(
                "sim.bad_faults", f"delay={text}: out of [0, {DELAY_S_MAX * 1000}] ms"
            )
        bounds.append(value)
    lo, hi = bounds
    if lo > hi:
        raise ConfigError("sim.bad_faults", f"delay={text}: MIN is larger than MAX")
    return (lo, hi)


@dataclass(frozen=True, slots=True)
class Episode:
    """One episodic fault from ``start_s`` to ``end_s`` (virtual seconds).

    ``nodes``: the nodes crashed, paused or slowed; ``groups``: the partition's
    groups; ``slow_s``: extra processing time per datagram of a slow node.
    """

    kind: EpisodeKind
    start_s: float
    end_s: float
    nodes: tuple[int, ...] = ()
    groups: tuple[tuple[int, ...], ...] = ()
    slow_s: float = 0.0


def _some_nodes(rng: random.Random, nodes: Sequence[int]) -> tuple[int, ...]:
    # Any number, even all of them: the guarantees must hold regardless, and
    # the world restarts and resumes everything before the quiet period.
    count = rng.randint(1, len(nodes))
    return tuple(sorted(rng.sample(list(nodes), count)))


def _draw_partition(rng: random.Random, nodes: Sequence[int], start: float, end: float) -> Episode:
    shuffled = list(nodes)
    rng.shuffle(shuffled)
    group_count = rng.randint(2, min(3, len(nodes)))
    cuts = sorted(rng.sample(range(1, len(nodes)), group_count - 1))
    bounds = [0, *cuts, len(nodes)]
    groups = tuple(sorted(tuple(sorted(shuffled[a:b])) for a, b in pairwise(bounds)))
    return Episode("partition", start, end, groups=groups)


def _draw_nodes(kind: EpisodeKind) -> _Draw:
    def draw(rng: random.Random, nodes: Sequence[int], start: float, end: float) -> Episode:
        chosen = _some_nodes(rng, nodes)
        slow_s = rng.uniform(SLOW_S_MIN, SLOW_S_MAX) if kind == "slow" else 0.0
        return Episode(kind, start, end, nodes=chosen, slow_s=slow_s)

    return draw


_Draw = Callable[[random.Random, Sequence[int], float, float], Episode]
_DRAW: Final[dict[EpisodeKind, _Draw]] = {
    "partition": _draw_partition,
    "crash": _draw_nodes("crash"),
    "pause": _draw_nodes("pause"),
    "slow": _draw_nodes("slow"),
}


def plan_faults(
    spec: FaultSpec, nodes: Sequence[int], duration_s: float, seed: int
) -> tuple[Episode, ...]:
    """Draw the episodes of every enabled kind for a fault phase of
    ``duration_s`` seconds; sorted by start time, then kind. Deterministic."""
    roster = sorted(set(nodes))
    episodes: list[Episode] = []
    for kind in spec.episodic:
        if kind == "partition" and len(roster) < 2:
            continue  # one node cannot be split
        # Not for secrets: a reproducible stream is the point (S311).
        rng = random.Random(f"{seed}:faults:{kind}")  # noqa: S311
        t = rng.expovariate(1.0 / EPISODE_GAP_MEAN_S)
        for _ in range(EPISODES_PER_KIND_MAX):
            if t >= duration_s:
                break
            end = min(t + rng.uniform(EPISODE_S_MIN, EPISODE_S_MAX), duration_s)
            episodes.append(_DRAW[kind](rng, roster, t, end))
            t = end + rng.expovariate(1.0 / EPISODE_GAP_MEAN_S)
    episodes.sort(key=lambda e: (e.start_s, _KINDS.index(e.kind)))
    return tuple(episodes)
