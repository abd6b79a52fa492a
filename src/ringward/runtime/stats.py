"""Figures for ``Node.status()``: the token rotation rate and the fault
detector's scores."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import cast

from ringward.engine import Engine
from ringward.runtime.events import ViewChanged

__all__ = ["RotationMeter", "scores"]


class RotationMeter:
    """Token rotations per second since the previous reading (or since the
    regular view was installed: a new ring restarts the hop count)."""

    def __init__(self) -> None:
        self._at_s = 0.0
        self._hops = 0

    def restart(self, now_s: float, hops: int) -> None:
        self._at_s, self._hops = now_s, hops

    def rate(self, now_s: float, engine: Engine | None, view: ViewChanged | None) -> float:
        if engine is None or view is None or now_s <= 0.0:
            return 0.0
        hops = engine.token_hops
        then_s, hops_then = self._at_s, self._hops
        self.restart(now_s, hops)
        if hops < hops_then or now_s <= then_s:
            return 0.0  # a new ring restarted the hop count
        return (hops - hops_then) / len(view.members) / (now_s - then_s)


def scores(engine: Engine | None) -> Mapping[int, Mapping[str, float]]:
    """The detector's scores from ``Engine.status()``, read-only."""
    if engine is None:
        return MappingProxyType({})
    raw = cast("dict[int, dict[str, float]]", engine.status()["scores"])
    return MappingProxyType({peer: MappingProxyType(dict(s)) for peer, s in raw.items()})
