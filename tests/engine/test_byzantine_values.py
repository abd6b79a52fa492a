"""What the value liars of issue 14 sign and send (ringward/byzantine).

Independent of how the correct engines take it (until the engine convicts
them they crash or spin: tests/sim/test_byzantine.py marks those worlds xfail):
a secured 4-node world with node 4 lying from 1 s, every datagram node 4
sends captured, and each lie checked on the wire, signature included.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable

import pytest

from helpers import signature_ok
from ringward.byzantine import BEHAVIOURS, EXPECT, U64_MAX, VALUE_LIES, parse_spec
from ringward.errors import RingwardError
from ringward.sim.byzantine import run_byzantine
from ringward.sim.interface import Datagram, SimulationError
from ringward.sim.keys import SimKeys
from ringward.sim.runner import Scenario
from ringward.wire import CommitMember, CommitToken, Frame, Join, Token, decode

NODES = 4
LIAR = 4
SEED = 7
START_S = 1.0  # run_byzantine's default: misbehaviour starts here

pytestmark = pytest.mark.heavy  # a secured world per behaviour


def capture(behaviour: str) -> list[Frame]:
    """The distinct frames the liar signed and sent from START_S on (each
    signature checked with the liar's public key)."""
    sent: list[bytes] = []

    def spy(now: float, d: Datagram) -> Iterable[Datagram]:
        if d.src == LIAR and now >= START_S:
            sent.append(d.data)
        return (d,)

    scenario = Scenario(nodes=NODES, seed=SEED, duration=2.0, rate=20.0, quiet=1.0, security=True)
    # A correct engine may raise on the lie (engine fix pending): sent anyway.
    with contextlib.suppress(SimulationError):
        run_byzantine(scenario, parse_spec(f"{LIAR}:{behaviour}", NODES), interceptor=spy)
    keys = SimKeys(SEED, tuple(range(1, NODES + 1)))
    frames = []
    for raw in dict.fromkeys(sent):
        try:
            frame = decode(raw)
        except RingwardError:
            continue
        if frame.sender == LIAR and frame.signed:
            assert signature_ok(keys, frame)
            frames.append(frame)
    return frames


def joins(frames: list[Frame]) -> list[Join]:
    return [f.body for f in frames if isinstance(f.body, Join)]


def tokens(frames: list[Frame]) -> list[Token]:
    return [f.body for f in frames if isinstance(f.body, Token)]


def own_entries(frames: list[Frame]) -> list[CommitMember]:
    return [
        m
        for f in frames
        if isinstance(f.body, CommitToken)
        for m in f.body.members
        if m.node == LIAR
    ]


def test_poison_ring_seq_signs_joins_with_the_largest_ring_seq() -> None:
    got = joins(capture("poison-ring-seq"))
    assert got and all(j.ring_seq == U64_MAX for j in got)


def test_poison_ring_seq_jump_signs_joins_2_40_ahead() -> None:
    got = joins(capture("poison-ring-seq-jump"))
    assert got and all(1 << 40 <= j.ring_seq < (1 << 40) + 1000 for j in got)


@pytest.mark.parametrize(("behaviour", "jump"), [("far-hop", 1 << 62), ("far-hop-jump", 10**7)])
def test_far_hop_makes_its_own_turn_far_ahead_with_the_right_successor(
    behaviour: str, jump: int
) -> None:
    got = tokens(capture(behaviour))
    assert got
    for tk in got:
        # Rounded down to a multiple of the ring size: still its turn, hop
        # h made by members[(h - 1) mod n] (node 4 is index 3 of 1..4). (A
        # correct member that built on a far hop makes the next one farther.)
        assert tk.hop >= jump - NODES
        assert (tk.hop - 1) % NODES == LIAR - 1
        assert tk.succ == 1


def test_commit_lie_claims_the_largest_seqs_for_its_own_entry() -> None:
    got = own_entries(capture("commit-lie"))
    assert got
    for m in got:
        assert (m.aru, m.high_seq, m.high_delivered) == (U64_MAX, U64_MAX, U64_MAX)


def test_commit_lie_jump_claims_5_000_000_more_of_each() -> None:
    got = own_entries(capture("commit-lie-jump"))
    assert got
    for m in got:
        for value in (m.aru, m.high_seq, m.high_delivered):
            assert 5_000_000 <= value < 5_000_000 + 10_000


def test_the_value_lies_are_behaviours_with_their_expectations() -> None:
    """Impossible values are proofs; values that are possible but beyond
    what we know, or consistent but false, prove nothing (docs/protocol.md,
    Validity rules)."""
    assert set(VALUE_LIES) <= set(BEHAVIOURS)
    unprovable = {"poison-ring-seq-jump", "commit-lie-jump"}
    assert {b: EXPECT[b] for b in VALUE_LIES} == {
        b: "harmless" if b in unprovable else "proof" for b in VALUE_LIES
    }
    spec = ",".join(f"{n}:{b}" for n, b in enumerate(VALUE_LIES, start=1))
    assert parse_spec(spec, 10) == {n: (b, None) for n, b in enumerate(VALUE_LIES, start=1)}
