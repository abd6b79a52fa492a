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

__all__ = [
    "ARU_LIES",
    "BEHAVIOURS",
    "COMMIT_LIES",
    "EXPECT",
    "FLOW_LIES",
    "TARGETED",
    "VALUE_LIES",
    "Expectation",
]

Expectation = Literal["proof", "accused", "overload", "harmless"]

# Behaviour -> what must happen to the node.
EXPECT: Final[dict[str, Expectation]] = {
    "equivocate": "proof",
    "fail-live": "accused",
    "lie-aru": "proof",
    "break-link": "accused",
    "drop-token": "accused",
    "starve-successor": "harmless",
    "slow-token": "accused",
    # Indistinguishable from copies lost on the way (no signal may blame a
    # loss); any holder serves a request left standing RTR_FALLBACK_VISITS
    # rotations (engine/token.py), so it delays a lost frame, never stalls.
    "withhold": "harmless",
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
    # Flow-control lies (issue 16, finding 2): past what one visit may add,
    # a transition rule; within it, a holder believes of the others' fcc
    # only what the signed chain shows plus one visit's retransmissions, and
    # weighs a member's backlog as one visit's demand at most, so the ring
    # keeps delivering (engine/flow.py).
    "lie-fcc": "proof",
    "lie-backlog": "proof",
    "creep-flow": "harmless",
    # aru hold-down (issue 16, finding 3): every member sees the aru held by
    # the same setter and suspects it (aru_stuck); naming another member as
    # the one who lowered it is a transition rule.
    "hold-aru": "accused",
    "frame-aru": "proof",
    # Commit sabotage (issue 16, finding 1).
    "drop-commit": "accused",
    # Its commit forwards reach everyone but the next holder: relayed by
    # the members that saw them (recovery.relay_commit); nobody blamed.
    "starve-commit": "harmless",
    # Finding 7: the successor, the only one holding the version the chain
    # continues from, answers link asks from what its tokens linked to.
    "equivocate-successor": "proof",
    # Re-broadcasts an old frame in every visit of every recovery, so that
    # recovery never has its two quiet rotations.
    "flood-recovery": "accused",
    # The same with one genuine old token, repeated (recovery_junk).
    "flood-recovery-repeat": "accused",
    # Finding 5, recovery half: a second version of its own old token in
    # the stream; every member holding the first proves the fork.
    "recover-fork": "proof",
    # Its re-signed relays are tokens out of turn (proof), unless its own
    # tokens, which no successor can link to its engine's record, die at it
    # first and every member blames it.
    "resign-aru": "accused",
    # Finding 1's other half: its forwards name another key commitment; the
    # next holder refuses them and observers keep the round's blame on it.
    "alter-commit": "accused",
    # A forward sealing the next holder a bad key: observers hold every
    # forward to the representative's keys, so the round dies at its maker.
    "alter-key-next": "accused",
    # A forward whose certificate no longer verifies: held to the same.
    "alter-cert": "accused",
    # The same as the representative, to the next member only: nobody else
    # can tell, so it is failed from each round it leads, never evicted;
    # the member it lied to is not blamed.
    "bad-key-next": "harmless",
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
# The flow-control liars of issue 16.
FLOW_LIES: Final = ("creep-flow", "lie-backlog", "lie-fcc")
# The aru hold-down and the commit sabotage of issue 16.
ARU_LIES: Final = ("frame-aru", "hold-aru")
COMMIT_LIES: Final = ("drop-commit", "equivocate-successor", "starve-commit")

# Behaviours that take a target node (``NAME:TARGET``): a correct member.
TARGETED: Final = frozenset({"frame", "fail-live"})
