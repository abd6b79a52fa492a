"""Which behaviours exist and what must happen to a node that has one.

``EXPECT`` is the contract a run is judged by (sim/byzantine.py judges it in
the simulator; ``ringward node --misbehave`` offers the same names):

* ``proof``: evicted on its own signed statements (evidence);
* ``accused``: evicted by f+1 accusers;
* ``overload``: evicted on its own load reports while overloaded, then back
  once healthy (the node is honest, only slow);
* ``harmless``: no eviction required (what it does is dropped and counted,
  or is possible and proves nothing).
"""

from __future__ import annotations

from typing import Final, Literal

__all__ = ["BEHAVIOURS", "EXPECT", "VALUE_LIES", "Expectation"]

Expectation = Literal["proof", "accused", "overload", "harmless"]

# Behaviour -> what must happen to the node.
EXPECT: Final[dict[str, Expectation]] = {
    "equivocate": "proof",
    "lie-aru": "proof",
    "break-link": "accused",
    "drop-token": "accused",
    "starve-successor": "harmless",
    "slow-token": "accused",
    "withhold": "accused",
    "join-churn": "accused",
    "join-phantom": "accused",
    "flood-signed": "proof",
    "frame": "accused",
    "flood-junk": "harmless",
    "replay": "harmless",
    "overload": "overload",
    "poison-ring-seq": "proof",
    # Possible (a node away for long may be far ahead), beyond what we know:
    # not adopted, proves nothing (docs/protocol.md, Validity rules).
    "poison-ring-seq-jump": "harmless",
    "far-hop": "proof",
    "far-hop-jump": "proof",
    "commit-lie": "proof",
    # Possible but false: no rule shows it alone (issue 16: recovery that
    # trusts no claim).
    "commit-lie-jump": "harmless",
}
# Every behaviour name, sorted.
BEHAVIOURS: Final = tuple(sorted(EXPECT))
# The value liars of issue 14 (sim/matrix.py draws them only when asked).
VALUE_LIES: Final = (
    "commit-lie",
    "commit-lie-jump",
    "far-hop",
    "far-hop-jump",
    "poison-ring-seq",
    "poison-ring-seq-jump",
)
