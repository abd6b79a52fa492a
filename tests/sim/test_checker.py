"""The guarantee checker: one valid log, one mutation per guarantee, and a
tiny EVS reference model whose random runs must pass and whose single
mutations must be caught."""

from __future__ import annotations

import dataclasses
import hashlib
import random
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ringward.eventlog import (
    ByzantineEvent,
    CrashEvent,
    DeliverEvent,
    Event,
    EvictEvent,
    RejectedEvent,
    RejoinEvent,
    RestartEvent,
    SendEvent,
    ViewEvent,
    parse_line,
    to_json,
)
from ringward.sim import checker
from ringward.sim._whole import _find_cycle
from ringward.sim.checker import check

# --------------------------------------------------------------------------
# A tiny log builder


def digest(mid: str) -> str:
    return hashlib.blake2b(mid.encode(), digest_size=16).hexdigest()


class Log:
    """Appends events with increasing t; remembers each message's sender."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.senders: dict[str, tuple[int, bool]] = {}

    def _t(self) -> float:
        return float(len(self.events))

    def send(self, node: int, mid: str, *, safe: bool = False) -> None:
        self.senders[mid] = (node, safe)
        self.events.append(SendEvent(t=self._t(), node=node, id=mid, digest=digest(mid), safe=safe))

    def deliver(self, node: int, view: str, seq: int, mid: str) -> None:
        sender, safe = self.senders[mid]
        self.events.append(
            DeliverEvent(
                t=self._t(),
                node=node,
                view=view,
                seq=seq,
                id=mid,
                sender=sender,
                digest=digest(mid),
                safe=safe,
            )
        )

    def view(self, nodes: list[int], view: str, kind: str, members: list[int]) -> None:
        for node in nodes:
            self.events.append(
                ViewEvent(
                    t=self._t(),
                    node=node,
                    view=view,
                    kind="regular" if kind == "regular" else "transitional",
                    members=tuple(members),
                    quorate=2 * len(members) > 3,
                )
            )

    def add(self, event_type: Callable[..., Event], node: int, **kw: object) -> None:
        self.events.append(event_type(t=self._t(), node=node, **kw))


def base_log() -> list[Event]:
    """Three nodes; 3 crashes after r1 and rejoins in r3; b and f are safe."""
    log = Log()
    log.view([1, 2, 3], "r1", "regular", [1, 2, 3])
    log.send(1, "a")
    log.send(2, "b", safe=True)
    log.send(1, "c")
    for node in (1, 2, 3):
        for seq, mid in enumerate(["a", "b", "c"], 1):
            log.deliver(node, "r1", seq, mid)
    log.add(CrashEvent, 3)
    log.view([1, 2], "t1", "transitional", [1, 2])
    log.view([1, 2], "r2", "regular", [1, 2])
    log.send(2, "d")
    log.deliver(1, "r2", 1, "d")
    log.deliver(2, "r2", 1, "d")
    log.add(RestartEvent, 3)
    log.view([1, 2], "t2", "transitional", [1, 2])
    log.view([1, 2, 3], "r3", "regular", [1, 2, 3])
    log.send(3, "e")
    log.send(1, "f", safe=True)
    for node in (1, 2, 3):
        log.deliver(node, "r3", 1, "e")
        log.deliver(node, "r3", 2, "f")
    return log.events


def replaced(event: Event, **changes: Any) -> Event:
    """dataclasses.replace for any event (mypy cannot check kwargs over a union)."""
    return dataclasses.replace(cast(Any, event), **changes)  # type: ignore[no-any-return]


def find(events: list[Event], kind: type, **match: object) -> int:
    for i, e in enumerate(events):
        if isinstance(e, kind) and all(getattr(e, k) == v for k, v in match.items()):
            return i
    raise AssertionError(f"no {kind.__name__} {match}")


def guarantees(events: list[Event], **kw: Any) -> set[int]:
    return set(check(events, **kw).guarantees)


def test_base_log_is_valid() -> None:
    report = check(base_log())
    assert report.ok, report.format()


# --------------------------------------------------------------------------
# One mutation per guarantee


def test_swapped_deliveries_break_total_order() -> None:
    ev = base_log()
    i, j = find(ev, DeliverEvent, node=2, id="a"), find(ev, DeliverEvent, node=2, id="b")
    ev[i] = replaced(ev[i], id="b", sender=2, digest=digest("b"), safe=True)
    ev[j] = replaced(ev[j], id="a", sender=1, digest=digest("a"), safe=False)
    report = check(ev)
    assert report.guarantees == {1}, report.format()
    assert "prefix_mismatch" in {v.name for v in report.violations}


def test_delivery_out_of_seq_order_breaks_total_order() -> None:
    ev = base_log()
    i = find(ev, DeliverEvent, node=3, id="e")
    ev[i], ev[i + 1] = (
        replaced(ev[i + 1], t=ev[i].t),
        replaced(ev[i], t=ev[i + 1].t),
    )
    assert guarantees(ev) == {1}


def test_inconsistent_orders_across_configurations_form_a_cycle() -> None:
    log = Log()
    log.view([1], "r1", "regular", [1])
    log.view([2], "r2", "regular", [2])
    log.send(1, "x")
    log.send(1, "y")
    log.deliver(1, "r1", 1, "x")
    log.deliver(1, "r1", 2, "y")
    log.deliver(2, "r2", 1, "y")
    log.deliver(2, "r2", 2, "x")
    report = check(log.events, converge=False)
    assert "order_cycle" in {v.name for v in report.violations}


def test_find_cycle_is_exact() -> None:
    assert _find_cycle({"a": {"b"}, "b": {"c"}}) == []
    cycle = _find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set()})
    assert sorted(cycle) == ["a", "b", "c"]


def test_double_delivery_breaks_no_duplication() -> None:
    ev = base_log()
    i = find(ev, DeliverEvent, node=3, id="f")
    ev.append(replaced(ev[i], seq=3))
    report = check(ev)
    assert report.guarantees == {2}, report.format()
    assert [v.name for v in report.violations] == ["duplicate_delivery"]


def test_redelivery_after_restart_is_a_duplicate() -> None:
    log = Log()
    log.view([1, 2], "r1", "regular", [1, 2])
    log.send(1, "a")
    log.deliver(1, "r1", 1, "a")
    log.deliver(2, "r1", 1, "a")
    log.add(CrashEvent, 2)
    log.add(RestartEvent, 2)
    log.view([1], "t1", "transitional", [1])
    log.view([1, 2], "r2", "regular", [1, 2])
    log.deliver(2, "r2", 1, "a")
    report = check(log.events)
    assert "duplicate_delivery" in {v.name for v in report.violations}


def test_unsent_message_breaks_no_creation() -> None:
    ev = base_log()
    ev.append(
        DeliverEvent(
            t=99, node=3, view="r3", seq=3, id="zz", sender=2, digest=digest("zz"), safe=False
        )
    )
    report = check(ev)
    assert report.guarantees == {2}, report.format()
    assert [v.name for v in report.violations] == ["never_sent"]


def test_changed_bytes_break_no_creation() -> None:
    ev = base_log()
    i = find(ev, DeliverEvent, node=2, id="a")
    ev[i] = replaced(ev[i], digest="0" * 32)
    assert guarantees(ev) == {2}
    ev = base_log()
    ev[i] = replaced(ev[i], sender=2)
    assert guarantees(ev) == {2}


def test_missing_own_message_breaks_self_delivery() -> None:
    ev = base_log()
    ev.append(SendEvent(t=99, node=3, id="g", digest=digest("g"), safe=False))
    report = check(ev)
    assert report.guarantees == {3}, report.format()
    # A log cut mid-run is not judged for liveness.
    assert check(ev, converge=False).ok


def test_split_final_configuration_breaks_convergence() -> None:
    ev = base_log()
    ev.append(ViewEvent(t=99, node=3, view="r9", kind="regular", members=(3,), quorate=False))
    report = check(ev)
    assert report.guarantees == {3}, report.format()
    assert check(ev, expect_up={1, 2}).guarantees == {3}  # 3 is still in its own view...
    assert check(ev, expect_up={3}).guarantees == set()  # ...which is all that was expected


def test_message_after_settling_must_reach_everyone() -> None:
    ev = base_log()
    i = find(ev, DeliverEvent, node=3, id="f")
    del ev[i]
    ev = [e for e in ev if not (isinstance(e, SendEvent) and e.id == "f")]
    at = find(ev, DeliverEvent, node=1, id="f")
    ev.insert(at, SendEvent(t=ev[at].t, node=1, id="f", digest=digest("f"), safe=False))
    ev = [replaced(e, safe=False) if isinstance(e, DeliverEvent) and e.id == "f" else e for e in ev]
    assert check(ev).ok
    report = check(ev, settled_after=ev[at].t)
    assert [v.name for v in report.violations] == ["not_delivered_after_settling"]


def test_unequal_sets_break_virtual_synchrony() -> None:
    ev = base_log()
    del ev[find(ev, DeliverEvent, node=2, id="c")]
    report = check(ev)
    assert report.guarantees == {4}, report.format()


def test_message_in_two_configurations_breaks_virtual_synchrony() -> None:
    ev = base_log()
    del ev[find(ev, DeliverEvent, node=2, id="c")]
    i = find(ev, DeliverEvent, node=2, id="d")
    ev.insert(
        i + 1,
        replaced(ev[find(ev, DeliverEvent, node=1, id="c")], node=2, view="r2", seq=2),
    )
    names = {v.name for v in check(ev).violations}
    assert "delivered_in_two_configurations" in names


def test_transitional_delivery_keeps_virtual_synchrony() -> None:
    """c reaches 1 and 2 only in the transitional configuration: valid EVS."""
    ev = base_log()
    moved = [
        i for i, e in enumerate(ev) if isinstance(e, DeliverEvent) and e.id == "c" and e.node != 3
    ]
    for i in reversed(moved):
        del ev[i]
    at = find(ev, ViewEvent, node=2, view="t1")
    for k, node in enumerate((1, 2), 1):
        ev.insert(
            at + k,
            DeliverEvent(
                t=ev[at].t,
                node=node,
                view="t1",
                seq=3,
                id="c",
                sender=1,
                digest=digest("c"),
                safe=False,
            ),
        )
    report = check(ev)
    assert report.ok, report.format()


def test_safe_message_missing_at_live_member_breaks_safe_delivery() -> None:
    ev = base_log()
    del ev[find(ev, DeliverEvent, node=3, id="f")]
    report = check(ev)
    assert report.guarantees == {5}, report.format()
    assert check(ev, converge=False).ok  # 3 may still deliver it


def test_crash_excuses_safe_delivery() -> None:
    ev = base_log()
    del ev[find(ev, DeliverEvent, node=3, id="f")]
    ev.append(CrashEvent(t=99, node=3))
    assert not check(ev).ok  # 1 and 2 have not yet left 3 behind: not settled
    log = Log()
    log.events = ev
    log.view([1, 2], "t4", "transitional", [1, 2])
    log.view([1, 2], "r4", "regular", [1, 2])
    assert check(ev).ok


def test_safe_flag_must_match_the_send() -> None:
    ev = base_log()
    i = find(ev, DeliverEvent, node=1, id="a")
    ev[i] = replaced(ev[i], safe=True)
    assert guarantees(ev) == {5}


def test_safe_in_regular_may_arrive_in_transitional() -> None:
    """Safe b delivered in r1 by 1 and 2; 3 gets it only in its transitional."""
    log = Log()
    log.view([1, 2, 3], "r1", "regular", [1, 2, 3])
    log.send(2, "b", safe=True)
    log.deliver(1, "r1", 1, "b")
    log.deliver(2, "r1", 1, "b")
    log.view([3], "t3", "transitional", [3])
    log.deliver(3, "t3", 1, "b")
    log.view([3], "r3", "regular", [3])
    assert check(log.events, converge=False).ok
    del log.events[find(log.events, DeliverEvent, node=3)]
    assert guarantees(log.events, converge=False) == {5}


def test_safe_in_transitional_reaches_a_member_that_failed_recovery() -> None:
    """Regression (soak seed 100013): 1 and 2 complete recovery into r2 and
    deliver safe b in t12 = {1, 2, 3}; 3 fails to complete it (paused), never
    installs t12, and delivers b in its own transitional t3. 3 received b
    (recovery ends only when every member holds every frame): no violation.
    Had 3 never delivered b, it would be one."""
    log = Log()
    log.view([1, 2, 3], "r1", "regular", [1, 2, 3])
    log.send(2, "b", safe=True)
    log.view([1, 2], "t12", "transitional", [1, 2, 3])
    log.deliver(1, "t12", 1, "b")
    log.deliver(2, "t12", 1, "b")
    log.view([1, 2], "r2", "regular", [1, 2, 3])
    log.view([3], "t3", "transitional", [3])
    log.deliver(3, "t3", 1, "b")
    log.view([3], "r3", "regular", [3])
    assert 5 not in guarantees(log.events, converge=False)
    del log.events[find(log.events, DeliverEvent, node=3)]
    assert 5 in guarantees(log.events)


def test_same_view_different_members_breaks_agreement() -> None:
    ev = base_log()
    i = find(ev, ViewEvent, node=2, view="t1")
    ev[i] = replaced(ev[i], members=(2,))
    report = check(ev)
    assert report.guarantees == {6}, report.format()
    ev = base_log()
    i = find(ev, ViewEvent, node=3, view="r3")
    ev[i] = replaced(ev[i], quorate=False)
    assert guarantees(ev) == {6}


def test_view_without_self_breaks_agreement() -> None:
    ev = base_log()
    i = find(ev, ViewEvent, node=2, view="r2")
    ev[i] = replaced(ev[i], members=(1,))
    assert 6 in guarantees(ev)


def test_reordered_sender_messages_break_fifo() -> None:
    ev = base_log()
    swap = {"a": "c", "c": "a"}
    ev = [
        replaced(e, id=swap[e.id], digest=digest(swap[e.id]))
        if isinstance(e, DeliverEvent) and e.id in swap
        else e
        for e in ev
    ]
    report = check(ev)
    assert report.guarantees == {7}, report.format()


# --------------------------------------------------------------------------
# Structure, Byzantine nodes, evictions


def test_structural_rules() -> None:
    ev = base_log()
    ev.insert(
        find(ev, CrashEvent) + 1, SendEvent(t=30, node=3, id="q", digest=digest("q"), safe=False)
    )
    names = {v.name for v in check(ev).violations}
    assert "event_while_crashed" in names
    ev = base_log()
    i = find(ev, DeliverEvent, node=1, id="d")
    ev[i] = replaced(ev[i], view="r1")
    assert "wrong_view" in {v.name for v in check(ev).violations}
    ev = base_log()
    ev.insert(find(ev, ViewEvent, node=1, view="r3"), RestartEvent(t=1, node=1))
    names = {v.name for v in check(ev).violations}
    assert {"restart_without_crash", "time_decreases"} <= names


def test_byzantine_node_is_not_judged() -> None:
    ev = base_log()
    ev.insert(0, ByzantineEvent(t=0, node=3, behaviour="equivocate"))
    # 3's own misdeeds: a delivery of nothing, outside any view.
    ev.append(
        DeliverEvent(
            t=99, node=3, view="zz", seq=0, id="nope", sender=1, digest="1" * 32, safe=True
        )
    )
    # A message of 3 delivered by correct nodes without any send event.
    ev = [e for e in ev if not (isinstance(e, SendEvent) and e.id == "e")]
    report = check(ev)
    assert report.ok, report.format()
    # ...but correct nodes must still agree on its content.
    i = find(ev, DeliverEvent, node=2, id="e")
    ev[i] = replaced(ev[i], digest="2" * 32)
    assert guarantees(ev) == {2}


def test_correct_evictions_are_reported_only_on_request() -> None:
    log = Log()
    log.events = base_log()
    log.senders = {m: (n, m in "bf") for m, n in zip("abcdef", [1, 2, 1, 2, 3, 1], strict=True)}
    log.view([1, 2], "t4", "transitional", [1, 2])
    log.view([3], "t5", "transitional", [3])
    log.add(EvictEvent, 1, target=3, reason="accused", proof=False)
    log.add(EvictEvent, 2, target=3, reason="accused", proof=False)
    log.add(RejectedEvent, 3, reason="accused")
    log.view([1, 2], "r4", "regular", [1, 2])
    log.view([3], "r5", "regular", [3])
    assert check(log.events).ok  # 3 is rejected: not expected in the final view
    assert check(log.events, expect_up={1, 2, 3}).guarantees == {3}
    report = check(log.events, forbid_correct_evictions=True)
    assert [v.name for v in report.violations] == ["correct_node_evicted"] * 2
    # Overload is the node's own signed statement: allowed for a correct node.
    overloaded = [
        dataclasses.replace(e, reason="overload") if isinstance(e, EvictEvent) else e
        for e in log.events
    ]
    assert check(overloaded, forbid_correct_evictions=True).ok
    log.add(RejoinEvent, 3)
    log.view([1, 2], "t6", "transitional", [1, 2])
    log.view([3], "t7", "transitional", [3])
    log.view([1, 2, 3], "r6", "regular", [1, 2, 3])
    assert check(log.events).ok


def test_report_caps_repeats() -> None:
    ev = base_log()
    i = find(ev, DeliverEvent, node=3, id="f")
    for k in range(30):
        ev.append(replaced(ev[i], seq=10 + k))
    report = check(ev)
    assert len(report.violations) == 10
    assert report.suppressed == {"duplicate_delivery": 20}
    assert "20 more" in report.format()


def test_cli(tmp_path: Path) -> None:
    good = tmp_path / "good.jsonl"
    good.write_text("".join(to_json(e) + "\n" for e in base_log()))
    bad = tmp_path / "bad.jsonl"
    ev = base_log()
    del ev[find(ev, DeliverEvent, node=3, id="f")]
    bad.write_text("".join(to_json(e) + "\n" for e in ev))
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"t": 1}\n')
    assert checker.main([str(good)]) == 0
    assert checker.main([str(bad)]) == 1
    assert checker.main([str(broken)]) == 2
    assert checker.main([str(bad), "--no-converge"]) == 0
    assert checker.main([str(tmp_path / "missing.jsonl")]) == 2
    done = subprocess.run(
        [sys.executable, "-m", "ringward.sim.checker", str(bad)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1
    assert "safe_not_delivered" in done.stdout
    assert done.stderr == ""


# --------------------------------------------------------------------------
# A reference model of Totem/EVS: random runs must pass


@dataclasses.dataclass
class _Config:
    view: str
    members: list[int]
    msgs: list[str] = dataclasses.field(default_factory=list)  # in seq order
    received: dict[int, set[int]] = dataclasses.field(default_factory=dict)
    delivered: dict[int, int] = dataclasses.field(default_factory=dict)  # prefix length
    safe: dict[str, bool] = dataclasses.field(default_factory=dict)

    def stop(self) -> int:
        """First index of a safe message not received by every member:
        nothing from there on may be delivered in the regular configuration."""
        for i, mid in enumerate(self.msgs):
            if self.safe[mid] and not all(i in self.received[q] for q in self.members):
                return i
        return len(self.msgs)


class Model:
    """Random partitions, merges, crashes and restarts of a few nodes.

    Messages are ordered per configuration by seq; each member receives a
    random subset; a member delivers in the regular configuration the
    longest gap-free prefix (not past an unacknowledged safe message); at a
    configuration change the members moving together pool what they
    received, deliver the gap-free prefix in the old configuration and the
    rest in their transitional one -- Totem's recovery, in miniature.
    """

    def __init__(self, rng: random.Random, n_nodes: int, byzantine: bool) -> None:
        self.rng = rng
        self.log = Log()
        self.nodes = list(range(1, n_nodes + 1))
        self.byz = self.nodes[-1] if byzantine else None
        self.up = set(self.nodes)
        self.cfg: dict[int, _Config | None] = dict.fromkeys(self.nodes)
        self.views = 0
        self.msgs = 0
        if self.byz is not None:
            self.log.add(ByzantineEvent, self.byz, behaviour="random")

    def new_view(self, prefix: str) -> str:
        self.views += 1
        return f"{prefix}{self.views}"

    def deliver(self, q: int, view: str, cfg: _Config, index: int) -> None:
        self.log.deliver(q, view, index + 1, cfg.msgs[index])

    def transition(self, group: list[int]) -> None:
        olds: dict[str, list[int]] = {}
        for q in group:
            c = self.cfg[q]
            if c is not None:
                olds.setdefault(c.view, []).append(q)
        for together in olds.values():
            old = self.cfg[together[0]]
            assert old is not None
            pool = set().union(*(old.received[q] for q in together))
            ext = 0
            while ext < old.stop() and ext in pool:
                ext += 1
            for q in together:
                for i in range(old.delivered[q], ext):
                    self.deliver(q, old.view, old, i)
            trans = self.new_view("t")
            self.log.view(together, trans, "transitional", together)
            for q in together:
                for i in sorted(pool - set(range(ext))):
                    self.deliver(q, trans, old, i)

    def run_config(self, group: list[int], final: bool) -> _Config:
        c = _Config(self.new_view("r"), group)
        self.log.view(group, c.view, "regular", group)
        for q in group:
            self.cfg[q] = c
            c.received[q] = set()
        for i in range(self.rng.randint(0, 4)):
            self.msgs += 1
            mid, sender = f"m{self.msgs}", self.rng.choice(group)
            safe = self.rng.random() < 0.4
            c.safe[mid] = safe
            self.log.senders[mid] = (sender, safe)
            if sender != self.byz or self.rng.random() < 0.5:
                self.log.send(sender, mid, safe=safe)
            c.msgs.append(mid)
            for q in group:
                if final or q == sender or self.rng.random() < 0.7:
                    c.received[q].add(i)
        stop = c.stop()
        for q in group:
            gapless = 0
            while gapless < stop and gapless in c.received[q]:
                gapless += 1
            c.delivered[q] = gapless if final else self.rng.randint(0, gapless)
            for i in range(c.delivered[q]):
                self.deliver(q, c.view, c, i)
        return c

    def epoch(self, final: bool) -> None:
        for q in sorted(set(self.nodes) - self.up):
            if final or self.rng.random() < 0.5:
                self.log.add(RestartEvent, q)
                self.up.add(q)
                self.cfg[q] = None
        members = sorted(self.up)
        if not members:
            return
        self.rng.shuffle(members)
        cut = len(members) if final else self.rng.randint(1, len(members))
        for group in (sorted(members[:cut]), sorted(members[cut:])):
            if group:
                self.transition(group)
                self.run_config(group, final)
        if not final:
            for q in sorted(self.up):
                if self.rng.random() < 0.15:
                    self.log.add(CrashEvent, q)
                    self.up.discard(q)
                    self.cfg[q] = None

    def misbehave(self) -> None:
        """The Byzantine node logs nonsense: none of it may be judged."""
        assert self.byz is not None
        self.log.events.append(
            DeliverEvent(
                t=1e6,
                node=self.byz,
                view="bogus",
                seq=0,
                id="junk",
                sender=1,
                digest="0" * 32,
                safe=True,
            )
        )


def model_log(seed: int, n_nodes: int, epochs: int, byzantine: bool) -> list[Event]:
    model = Model(random.Random(seed), n_nodes, byzantine)
    for _ in range(epochs):
        model.epoch(final=False)
    model.epoch(final=True)
    if byzantine:
        model.misbehave()
    return model.log.events


_model_args = st.tuples(st.integers(0, 2**32), st.integers(2, 5), st.integers(0, 5), st.booleans())
_fast = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_fast
@given(_model_args)
def test_model_runs_pass(args: tuple[int, int, int, bool]) -> None:
    events = model_log(*args)
    report = check(events)
    assert report.ok, report.format()
    # The canonical writer round-trips every event.
    again = [parse_line(to_json(e), i) for i, e in enumerate(events, 1)]
    assert again == events
    assert check(again).ok


def _correct_deliveries(events: list[Event]) -> list[int]:
    byz = {e.node for e in events if isinstance(e, ByzantineEvent)}
    return [
        i
        for i, e in enumerate(events)
        if isinstance(e, DeliverEvent) and e.node not in byz and e.sender not in byz
    ]


def _mutate(events: list[Event], rng: random.Random, how: str) -> int | None:
    """Apply one mutation that provably breaks a guarantee; return its number."""
    targets = _correct_deliveries(events)
    if not targets:
        return None
    i = rng.choice(targets)
    d = events[i]
    assert isinstance(d, DeliverEvent)
    if how == "duplicate":
        events.insert(i + 1, d)
        return 2
    if how == "digest":
        events[i] = replaced(d, digest="f" * 32)
        return 2
    if how == "unsend":
        events.pop(find(events, SendEvent, id=d.id))
        return 2
    if how == "invent":
        events.insert(i + 1, replaced(d, id="invented", seq=d.seq + 10**6))
        return 2
    if how == "swap":
        mine = [j for j in targets if events[j].node == d.node and events[j].view == d.view]  # type: ignore[union-attr]
        k = mine.index(i)
        if k + 1 >= len(mine):
            return None
        j = mine[k + 1]
        events[i], events[j] = events[j], events[i]
        return 1
    raise AssertionError(how)


@_fast
@given(
    _model_args,
    st.integers(0, 2**32),
    st.sampled_from(["duplicate", "digest", "unsend", "invent", "swap"]),
)
def test_model_mutations_are_caught(args: tuple[int, int, int, bool], seed: int, how: str) -> None:
    events = model_log(*args)
    expected = _mutate(events, random.Random(seed), how)
    if expected is None:
        return
    report = check(events)
    assert expected in report.guarantees, (how, report.format())


@_fast
@given(_model_args, st.integers(0, 2**32))
def test_model_view_disagreement_is_caught(args: tuple[int, int, int, bool], seed: int) -> None:
    events = model_log(*args)
    byz = {e.node for e in events if isinstance(e, ByzantineEvent)}
    views = [i for i, e in enumerate(events) if isinstance(e, ViewEvent) and e.node not in byz]
    i = random.Random(seed).choice(views)
    v = events[i]
    assert isinstance(v, ViewEvent)
    events[i] = replaced(v, quorate=not v.quorate)
    twins = [
        e for e in events if isinstance(e, ViewEvent) and e.view == v.view and e.node not in byz
    ]
    if len(twins) >= 2:
        assert 6 in check(events).guarantees


@pytest.mark.parametrize("seed", range(5))
def test_model_runs_with_crashes_are_judged_cut(seed: int) -> None:
    """Any prefix of a valid run is valid when liveness is not demanded."""
    events = model_log(seed, 4, 4, False)
    for cut in range(0, len(events), max(1, len(events) // 7)):
        report = check(events[:cut], converge=False)
        assert report.ok, report.format()


@_fast
@given(_model_args, st.integers(0, 2**32))
def test_model_lost_delivery_after_settling_is_caught(
    args: tuple[int, int, int, bool], seed: int
) -> None:
    """In the final (healed) configuration every member delivers everything:
    losing any one delivery there breaks order, liveness or safe delivery."""
    events = model_log(*args)
    byz = {e.node for e in events if isinstance(e, ByzantineEvent)}
    final = [e for e in events if isinstance(e, ViewEvent) and e.node not in byz][-1]
    settled = min(e.t for e in events if isinstance(e, ViewEvent) and e.view == final.view)
    lost = [
        i
        for i, e in enumerate(events)
        if isinstance(e, DeliverEvent) and e.view == final.view and not {e.node, e.sender} & byz
    ]
    assert check(events, settled_after=settled).ok
    if lost:
        del events[random.Random(seed).choice(lost)]
        report = check(events, settled_after=settled)
        assert report.guarantees & {1, 3, 5}, report.format()


_small_node = st.integers(1, 3)
_small_id = st.sampled_from(["m1", "m2", "m3", "m4"])
_small_view = st.sampled_from(["r1", "r2", "t1", "t2"])
_any_event = st.one_of(
    st.builds(
        SendEvent,
        t=st.just(1.0),
        node=_small_node,
        id=_small_id,
        digest=_small_id.map(digest),
        safe=st.booleans(),
    ),
    st.builds(
        DeliverEvent,
        t=st.just(1.0),
        node=_small_node,
        view=_small_view,
        seq=st.integers(0, 4),
        id=_small_id,
        sender=_small_node,
        digest=_small_id.map(digest),
        safe=st.booleans(),
    ),
    st.builds(
        ViewEvent,
        t=st.just(1.0),
        node=_small_node,
        view=_small_view,
        kind=st.sampled_from(["regular", "transitional"]),
        members=st.sets(_small_node, min_size=1).map(lambda s: tuple(sorted(s))),
        quorate=st.booleans(),
    ),
    st.builds(CrashEvent, t=st.just(1.0), node=_small_node),
    st.builds(RestartEvent, t=st.just(1.0), node=_small_node),
    st.builds(
        EvictEvent,
        t=st.just(1.0),
        node=_small_node,
        target=_small_node,
        reason=st.just("x"),
        proof=st.booleans(),
    ),
    st.builds(RejectedEvent, t=st.just(1.0), node=_small_node, reason=st.just("x")),
    st.builds(RejoinEvent, t=st.just(1.0), node=_small_node),
    st.builds(ByzantineEvent, t=st.just(1.0), node=_small_node, behaviour=st.just("x")),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_any_event, max_size=40), st.booleans(), st.booleans())
def test_checker_is_total_on_arbitrary_events(
    events: list[Event], converge: bool, settle: bool
) -> None:
    report = check(
        events,
        converge=converge,
        settled_after=0.0 if settle else None,
        forbid_correct_evictions=True,
    )
    assert all(0 <= v.guarantee <= 7 for v in report.violations)
    report.format()


def test_a_stall_after_the_faults_is_a_late_delivery() -> None:
    """Issue 16, liveness: a run that stalls after its faults and then
    catches up used to end clean. Each event of base_log is one second after
    the previous: "e" is sent at t=29, after the faults (t=28); node 3
    delivers it at t=35, or at t=40 once stalled."""
    events = base_log()
    assert check(events, settled_after=28.0, liveness_bound_s=10.0).ok
    short = check(events, settled_after=28.0, liveness_bound_s=5.0)
    assert {v.name for v in short.violations} == {"late_delivery"}
    at = find(events, DeliverEvent, node=3, id="e")
    stalled = [
        *events[:at],
        *(replaced(e, t=40.0 + i) for i, e in enumerate(events[at:])),
    ]
    assert check(stalled, settled_after=28.0).ok  # no bound: it ends clean
    report = check(stalled, settled_after=28.0, liveness_bound_s=10.0)
    assert {v.name for v in report.violations} == {"late_delivery"}
    assert "node 3 delivers e 11.00 s after" in report.violations[0].message  # worst first
