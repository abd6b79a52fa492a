"""Loss and partitions with nftables, inside one node's namespace.

Each node namespace gets one table, ``inet chaos``, whose input chain drops
UDP datagrams: a share of all of them (random loss, per receiver, so a
link's loss is the receiver's rate) and every one from a blocked source
address (a partition; blocking only on one side makes it asymmetric: the
blocked side still hears the other). The kernel here has no netem qdisc,
but nftables' ``numgen random`` works in any namespace. The whole table is
replaced atomically on each change (one ``nft -f`` transaction), and goes
away with the namespace.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterable
from typing import Final

from chaoskit.netns import run_in

__all__ = ["LOSS_SCALE", "NodeFilter", "nft_missing"]

# Loss is given in parts per LOSS_SCALE (0.1 % steps).
LOSS_SCALE: Final = 1000


def nft_missing() -> str | None:
    """None if ``nft`` is installed, else why the suite cannot run."""
    if shutil.which("nft") is None:
        return "nft not found: install nftables (make chaos does, as root)"
    return None


class NodeFilter:
    """The ``inet chaos`` table of one node namespace."""

    def __init__(self, ns: str) -> None:
        self.ns = ns
        self.loss_permille = 0
        self.blocked: frozenset[str] = frozenset()

    def set(
        self, *, loss_permille: int | None = None, blocked: Iterable[str] | None = None
    ) -> None:
        """Change the loss rate and/or the blocked source addresses."""
        if loss_permille is not None:
            if not 0 <= loss_permille <= LOSS_SCALE:
                raise ValueError(f"loss {loss_permille} not in 0..{LOSS_SCALE} per mille")
            self.loss_permille = loss_permille
        if blocked is not None:
            self.blocked = frozenset(blocked)
        run_in(self.ns, ["nft", "-f", "-"], stdin=self.ruleset())

    def clear(self) -> None:
        """No loss, nobody blocked."""
        self.set(loss_permille=0, blocked=())

    def dropped(self) -> int:
        """Datagrams the current rules dropped so far (the counters start
        again at each :meth:`set`): proof that a fault was real."""
        listing = run_in(self.ns, ["nft", "list", "table", "inet", "chaos"])
        return sum(int(m) for m in re.findall(r"counter packets (\d+)", listing))

    def ruleset(self) -> str:
        """The nft script that installs the current rules (idempotent)."""
        rules = []
        v4 = sorted(a for a in self.blocked if ":" not in a)
        v6 = sorted(a for a in self.blocked if ":" in a)
        if v4:
            rules.append(f"ip saddr {{ {', '.join(v4)} }} counter drop")
        if v6:
            rules.append(f"ip6 saddr {{ {', '.join(v6)} }} counter drop")
        if self.loss_permille:
            share = f"numgen random mod {LOSS_SCALE} < {self.loss_permille}"
            rules.append(f"meta l4proto udp {share} counter drop")
        body = "\n".join(f"    {r}" for r in rules)
        # add + delete + define: replaces the table whether or not it exists.
        return (
            "add table inet chaos\n"
            "delete table inet chaos\n"
            "table inet chaos {\n"
            "  chain input {\n"
            "    type filter hook input priority 0; policy accept;\n"
            f"{body}\n"
            "  }\n"
            "}\n"
        )
