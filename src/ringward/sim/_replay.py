"""One pass over the log: per-node replay plus the checks that need no hindsight.

Theory of operation
-------------------
The checker first indexes every send (so a delivery may precede its send in
file order: lines of different nodes interleave arbitrarily), then replays
each node's events in file order, which is that node's own order. The replay
cuts each node's history into *lives* (incarnations: a restart begins a new
one) and each life into *visits* (the span between installing one view and
installing the next, with the deliveries made there). Everything the later,
whole-log checks need (total order, virtual synchrony, safe delivery,
liveness) is read from visits; nothing else of the log is kept.

Checked here, on the fly, because one event and a little state suffice:
structure (0), duplication and creation (2), the sent/delivered ``safe``
flag (5), configuration agreement (6) and sender FIFO (7). Events of nodes
marked Byzantine are not judged at all (docs/guarantees.md, "Byzantine").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

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
)
from ringward.sim.report import Collector

__all__ = ["Life", "Replay", "SentMessage", "Visit", "replay"]


@dataclass(frozen=True, slots=True)
class SentMessage:
    """A send, with the sender's incarnation, its rank among that
    incarnation's sends (for FIFO) and its index in the log (for "delivered
    before it was sent" at the sender itself)."""

    event: SendEvent
    incarnation: int
    rank: int
    position: int


@dataclass(eq=False, slots=True)
class Visit:
    """One node incarnation's stay in one configuration."""

    view: ViewEvent
    # The regular configuration whose messages are delivered here: the view
    # itself if regular; for a transitional one, the regular configuration
    # the node was in just before (None when there was none).
    home: ViewEvent | None
    delivered: list[DeliverEvent] = field(default_factory=list)
    # The view this incarnation installed next (None: crashed or log ended).
    next_view: Visit | None = None
    crashed: bool = False  # the incarnation crashed during this visit

    @property
    def open_at_end(self) -> bool:
        """Still in this view when the log ended (neither left nor crashed)."""
        return self.next_view is None and not self.crashed


@dataclass(eq=False, slots=True)
class Life:
    """One incarnation of one node: its visits in order."""

    node: int
    incarnation: int
    visits: list[Visit] = field(default_factory=list)
    crashed: bool = False
    # Sender FIFO state: (sender, sender incarnation) -> last rank delivered.
    fifo: dict[tuple[int, int], int] = field(default_factory=dict)


@dataclass(eq=False, slots=True)
class _NodeState:
    life: Life
    visit: Visit | None = None
    last_regular: ViewEvent | None = None
    last_t: float = 0.0
    rejected: bool = False
    installed: set[str] = field(default_factory=set)
    # message id -> incarnation that delivered it (no duplication is judged
    # across incarnations too: see docs/guarantees.md, guarantee 2).
    delivered: dict[str, int] = field(default_factory=dict)


@dataclass(slots=True)
class Replay:
    """Everything the whole-log checks read."""

    byzantine: frozenset[int]
    sends: dict[str, SentMessage]
    lives: dict[int, list[Life]]
    views: dict[str, ViewEvent]  # first installation of each view id
    visit_of: dict[tuple[int, str], Visit]  # (node, view id) -> visit
    rejected: frozenset[int]  # correct nodes evicted and not back at the end
    evictions: list[EvictEvent]

    def delivered_by(self, node: int) -> dict[str, int]:
        """Message id -> incarnation, for every delivery by ``node``."""
        out: dict[str, int] = {}
        for life in self.lives.get(node, ()):
            for visit in life.visits:
                for d in visit.delivered:
                    out.setdefault(d.id, life.incarnation)
        return out


def _index_sends(
    events: Sequence[Event], out: Collector
) -> tuple[frozenset[int], dict[str, SentMessage]]:
    byzantine = frozenset(e.node for e in events if isinstance(e, ByzantineEvent))
    incarnation: dict[int, int] = {}
    ranks: dict[int, int] = {}
    sends: dict[str, SentMessage] = {}
    for position, e in enumerate(events):
        if isinstance(e, RestartEvent):
            incarnation[e.node] = incarnation.get(e.node, 0) + 1
        elif isinstance(e, SendEvent):
            rank = ranks.get(e.node, 0)
            ranks[e.node] = rank + 1
            first = sends.get(e.id)
            if first is None or (first.event.node in byzantine and e.node not in byzantine):
                # A Byzantine node reusing a correct node's id must not hide
                # the correct send.
                sends[e.id] = SentMessage(e, incarnation.get(e.node, 0), rank, position)
            elif e.node not in byzantine:
                out.add(0, "duplicate_send", f"message {e.id} sent twice", (first.event, e))
    return byzantine, sends


class _Replayer:
    """Per-node replay; one handler per event type."""

    def __init__(self, events: Sequence[Event], out: Collector) -> None:
        self.events = events
        self.out = out
        self.byzantine, self.sends = _index_sends(events, out)
        self.nodes: dict[int, _NodeState] = {}
        self.lives: dict[int, list[Life]] = {}
        self.views: dict[str, ViewEvent] = {}
        self.visit_of: dict[tuple[int, str], Visit] = {}
        self.evictions: list[EvictEvent] = []
        # Correct deliveries of messages without a correct send event
        # (Byzantine senders): the first one fixes sender and digest.
        self.unsent: dict[str, DeliverEvent] = {}

    def state(self, node: int) -> _NodeState:
        st = self.nodes.get(node)
        if st is None:
            st = _NodeState(Life(node, 0))
            self.nodes[node] = st
            self.lives[node] = [st.life]
        return st

    def run(self) -> Replay:
        byzantine = self.byzantine
        for position, e in enumerate(self.events):
            if e.node in byzantine:
                continue
            st = self.state(e.node)
            if e.t < st.last_t:
                self.out.add(0, "time_decreases", f"node {e.node}: t goes back to {e.t}", (e,))
            st.last_t = e.t
            if st.life.crashed and not isinstance(e, RestartEvent):
                self.out.add(0, "event_while_crashed", f"node {e.node} acts while crashed", (e,))
                continue
            if isinstance(e, DeliverEvent):
                self.deliver(st, e, position)
            elif isinstance(e, ViewEvent):
                self.view(st, e)
            else:
                self.other(st, e)
        rejected = frozenset(n for n, st in self.nodes.items() if st.rejected)
        return Replay(
            byzantine, self.sends, self.lives, self.views, self.visit_of, rejected, self.evictions
        )

    def other(self, st: _NodeState, e: Event) -> None:
        if isinstance(e, CrashEvent):
            st.life.crashed = True
            if st.visit is not None:
                st.visit.crashed = True
            st.visit = None
            st.last_regular = None
        elif isinstance(e, RestartEvent):
            if not st.life.crashed:
                self.out.add(0, "restart_without_crash", f"node {e.node} restarts while up", (e,))
            st.life = Life(e.node, st.life.incarnation + 1)
            self.lives[e.node].append(st.life)
            st.visit = None
            st.last_regular = None
            st.rejected = False  # a new incarnation joins afresh
        elif isinstance(e, RejectedEvent):
            st.rejected = True
        elif isinstance(e, RejoinEvent):
            st.rejected = False
        elif isinstance(e, EvictEvent):
            self.evictions.append(e)
        # SendEvent was indexed up front; ByzantineEvent nodes are skipped.

    def view(self, st: _NodeState, e: ViewEvent) -> None:
        out = self.out
        first = self.views.setdefault(e.view, e)
        if first is not e and (first.kind, first.members, first.quorate) != (
            e.kind,
            e.members,
            e.quorate,
        ):
            out.add(
                6,
                "view_disagreement",
                f"view {e.view}: node {first.node} installed {first.kind} {list(first.members)}, "
                f"node {e.node} installed {e.kind} {list(e.members)}",
                (first, e),
            )
        if e.node not in e.members:
            out.add(6, "not_a_member", f"node {e.node} installs view {e.view} without itself", (e,))
        if e.view in st.installed:
            out.add(0, "view_reinstalled", f"node {e.node} installs view {e.view} again", (e,))
        st.installed.add(e.view)
        prev = st.visit
        if e.kind == "transitional":
            home = st.last_regular
            if home is not None and not set(e.members) <= set(home.members):
                out.add(
                    6,
                    "transitional_not_subset",
                    f"node {e.node}: transitional {e.view} has members outside {home.view}",
                    (home, e),
                )
        else:
            home = e
            st.last_regular = e
            if (
                prev is not None
                and prev.view.kind == "transitional"
                and not set(prev.view.members) <= set(e.members)
            ):
                out.add(
                    6,
                    "transitional_not_subset",
                    f"node {e.node}: transitional {prev.view.view} has members outside {e.view}",
                    (prev.view, e),
                )
        visit = Visit(e, home)
        if prev is not None:
            prev.next_view = visit
        st.visit = visit
        st.life.visits.append(visit)
        self.visit_of.setdefault((e.node, e.view), visit)

    def deliver(self, st: _NodeState, e: DeliverEvent, position: int) -> None:
        out = self.out
        visit = st.visit
        if visit is None:
            out.add(
                0, "deliver_without_view", f"node {e.node} delivers {e.id} outside any view", (e,)
            )
            return
        previous = st.delivered.get(e.id)
        if previous is not None:
            # Not appended nor matched again: a duplicate is reported once, as
            # itself, not also as the order or FIFO breach it implies.
            again = " after restart" if previous != st.life.incarnation else ""
            out.add(2, "duplicate_delivery", f"node {e.node} delivers {e.id} again{again}", (e,))
            return
        if e.view != visit.view.view:
            out.add(
                0,
                "wrong_view",
                f"node {e.node} delivers {e.id} in {e.view} but is in {visit.view.view}",
                (visit.view, e),
            )
        if visit.delivered and e.seq < visit.delivered[-1].seq:
            # seq is the ring's total order: out of order locally is guarantee 1.
            # Equal seqs are allowed: one DATA frame (one seq) carries a batch
            # of messages, delivered in the batch's order.
            out.add(
                1,
                "seq_not_increasing",
                f"node {e.node} in {visit.view.view}: seq {e.seq} after {visit.delivered[-1].seq}",
                (visit.delivered[-1], e),
            )
        home = visit.home
        if home is not None and e.sender not in home.members:
            out.add(
                0,
                "sender_not_member",
                f"node {e.node} delivers {e.id} from {e.sender}, not a member of {home.view}",
                (home, e),
            )
        st.delivered[e.id] = st.life.incarnation
        self.match_send(st, e, position)
        visit.delivered.append(e)

    def match_send(self, st: _NodeState, e: DeliverEvent, position: int) -> None:
        sent = self.sends.get(e.id)
        if sent is None or sent.event.node in self.byzantine:
            if e.sender not in self.byzantine:
                self.out.add(2, "never_sent", f"node {e.node} delivers {e.id}: no such send", (e,))
            else:
                first = self.unsent.setdefault(e.id, e)
                if (first.digest, first.sender) != (e.digest, e.sender):
                    self.out.add(
                        2, "content_mismatch", f"{e.id} delivered with two contents", (first, e)
                    )
            return
        s = sent.event
        if s.node != e.sender or s.digest != e.digest:
            self.out.add(
                2,
                "content_mismatch",
                f"node {e.node} delivers {e.id} as sender {e.sender} digest {e.digest}; "
                f"sent by {s.node} with {s.digest}",
                (s, e),
            )
            return
        if s.safe != e.safe:
            self.out.add(
                5, "safe_flag_mismatch", f"node {e.node} delivers {e.id} with safe={e.safe}", (s, e)
            )
        if s.node == e.node and sent.position > position:
            self.out.add(
                0, "delivered_before_sent", f"node {e.node} delivers its {e.id} early", (e,)
            )
        key = (s.node, sent.incarnation)
        last = st.life.fifo.get(key, -1)
        if sent.rank <= last:
            self.out.add(
                7,
                "fifo_broken",
                f"node {e.node} delivers {e.id} of {s.node} after a later message of it",
                (e,),
            )
        else:
            st.life.fifo[key] = sent.rank


def replay(events: Sequence[Event], out: Collector) -> Replay:
    """Replay ``events`` node by node, reporting on-the-fly violations to ``out``."""
    return _Replayer(events, out).run()
