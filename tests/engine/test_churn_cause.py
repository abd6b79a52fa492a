"""``churn`` blames the member that restarted the ring, not the first one
heard (issue 16, finding 10; real engines, real keys).

A member's join restarts an operational ring; the others answer with
joins of their own. When an answer reaches an observer before the
restarter's own join (the network reorders them), the observer blamed the
answering member. Each join now names what started its sender's round
(``Join.cause``), and the observer follows those names to the member that
started its round itself.
"""

from __future__ import annotations

import dataclasses

import pytest

from ring_harness import Cluster
from ringward.engine.config import EngineConfig
from ringward.engine.membership import State
from ringward.engine.validate import STATIC_RULES, static_rule
from ringward.engine.watch import ChurnWatch
from ringward.wire import Frame, Join, RingId, decode
from ringward.wire.frame import peek
from ringward.wire.messages import Kind

pytestmark = pytest.mark.heavy  # seconds each: real engines under a traced work budget

FORMED_S = 0.6
RESTARTER, OBSERVER = 4, 1


def churn(c: Cluster, node: int) -> float:
    return c.engines[OBSERVER].detector.scores(c.now).get(node, {}).get("churn", 0.0)


def test_an_answer_heard_before_the_restart_does_not_blame_its_sender() -> None:
    held: list[bytes] = []

    def lose(c: Cluster, src: int, dest: int, data: bytes) -> bool:
        # The restarter's joins reach the observer only after the others':
        # those sent while the observer is still in its ring are lost.
        if (
            src == RESTARTER
            and dest == OBSERVER
            and peek(data).kind is Kind.JOIN
            and c.engines[OBSERVER].state is State.OPERATIONAL
        ):
            held.append(data)
            return True
        return False

    c = Cluster(4, lose=lose)
    c.run(FORMED_S)
    assert all(e.state is State.OPERATIONAL for e in c.engines.values())
    before = len(c.sent)
    c.call(RESTARTER, lambda: c.engines[RESTARTER].enter_gather(c.now, reason="test"))
    c.run(0.01)
    # The observer left its ring on an answer, not on the restarter's join.
    assert held and c.engines[OBSERVER].state is not State.OPERATIONAL
    answers = [
        decode(d)
        for s, d in c.sent[before:]
        if s not in (RESTARTER, OBSERVER) and peek(d).kind is Kind.JOIN
    ]
    assert answers and all(isinstance(f.body, Join) and f.body.cause == RESTARTER for f in answers)
    c.run(2.0)
    assert all(c.regular_members(i) == c.roster for i in c.roster)
    assert churn(c, RESTARTER) > 0
    assert churn(c, 2) == 0 and churn(c, 3) == 0


def test_a_chain_of_causes_that_loops_blames_the_first_join_heard() -> None:
    w = ChurnWatch()
    assert w.open(2, 3, frozenset({1, 2, 3, 4})) is None
    w.heard(3, 2)
    assert w.take() == 2  # 2 and 3 name each other: one lies, nothing proven


def test_a_chain_of_causes_ends_at_the_member_that_started_its_round() -> None:
    w = ChurnWatch()
    w.open(2, 3, frozenset({1, 2, 3, 4}))
    w.heard(3, 4)
    w.heard(4, 0)
    w.heard(2, 0)  # a later join changes nothing: the first statement counts
    assert w.take() == 4
    assert w.take() is None


def test_a_cause_outside_the_ring_never_heard_blames_the_first_join_heard() -> None:
    w = ChurnWatch()
    w.open(2, 9, frozenset({1, 2, 3, 4}))
    assert w.open(3, 0, frozenset({1, 2, 3, 4})) == 2
    assert w.take() == 3


def test_a_round_an_outsider_s_join_started_is_no_churn() -> None:
    """Merging an outsider back is what members must do: a liar failing a
    live node made that node restart the ring from outside, round after
    round, and every member whose join passed it on was blamed."""
    w = ChurnWatch()
    w.open(2, 9, frozenset({1, 2, 3, 4}))
    w.heard(9, 0)  # its join, heard in the round
    assert w.take() is None


def test_a_restarter_proposing_an_outsider_merged() -> None:
    w = ChurnWatch()
    w.open(3, 2, frozenset({1, 2, 3, 4}))
    w.heard(2, 0, merging=True)  # its join proposed a node outside the ring
    assert w.take() is None


def test_a_join_naming_its_own_sender_as_cause_breaks_a_rule() -> None:
    """A node that started its round itself says 0: naming itself is a
    statement no correct node signs (a proof, ``rule:join_cause``)."""
    join = Join(4, (1, 2, 3), (), (), (), cause=2)
    frame = Frame(bytes(8), 2, RingId(1, 4), join, bytes(64))
    assert static_rule(frame, EngineConfig()) == "join_cause"
    assert static_rule(dataclasses.replace(frame, sender=3), EngineConfig()) is None
    assert "join_cause" in STATIC_RULES
