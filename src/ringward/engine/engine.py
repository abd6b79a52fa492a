"""The ring engine: Totem single-ring ordering and membership, sans-IO.

Theory of operation (docs/protocol.md):

* OPERATIONAL — a token circulates the ring in node-id order and is
  broadcast to every node, so every member sees every transition of the
  token chain. Its holder re-sends requested frames, broadcasts new DATA
  frames (global seq = token seq + 1, …), lowers the token's aru if it lacks
  something, and passes the token on. Frames are delivered in seq order with
  no gap (agreed); a frame holding a safe payload waits until every member
  has it (token aru one rotation apart).
* Token loss, a join, or traffic from a node outside the ring → GATHER:
  joins (proc and fail sets) are exchanged until every candidate sent the
  same sets (consensus), or the silent are failed after the consensus timer.
* COMMIT — the lowest candidate sends a commit token around the new ring
  twice: the first rotation collects every member's old-ring state, the
  second tells everyone the full picture.
* RECOVERY — members re-broadcast, as new-ring frames, the old-ring frames
  others may lack, until everyone has all of them; then each member delivers
  the old ring's remaining messages (regular view, then transitional view),
  installs the new regular view and returns to OPERATIONAL.

Every signed frame leaves through :meth:`Engine._emit_signed` and every
received frame is checked in :meth:`Engine.receive` before its body is used:
the two places where the security layer (``FrameSecurity``) plugs in.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Sequence

from ringward.engine import chain, delivery, faults, recovery, token, validate
from ringward.engine.api import (
    EngineEvent,
    MessageId,
    Outgoing,
    Ready,
    Rejected,
    ViewInstalled,
    quorum_size,
)
from ringward.engine.config import MERGE_BACKOFF_MAX_S, EngineConfig
from ringward.engine.detector import Detector, Verdict
from ringward.engine.membership import GatherState, RecoveryPlan, State, regular_view_id
from ringward.engine.ringstore import Assembler, RingStore
from ringward.engine.security import FrameSecurity, NullSecurity
from ringward.engine.sendqueue import SendQueue
from ringward.errors import ConfigError, RingwardError, WireError
from ringward.wire import (
    CommitMember,
    CommitToken,
    Frame,
    Join,
    Kind,
    RingId,
    Token,
    decode,
    limits,
)
from ringward.wire.frame import Header, peek, signing_bytes

__all__ = ["Engine"]

# Timer names, in the order they fire when due together.
TIMERS = (
    "token_rtx",
    "commit_rtx",
    "token_hold",
    "link",
    "relay",
    "token_loss",
    "join",
    "consensus",
    "rekey",
    "rejoin",
)
# Rings whose membership is remembered (to check proofs about them).
RINGS_KEPT = 4


class Engine:
    """One node's protocol state machine (see module docstring and api.py)."""

    def __init__(
        self,
        node_id: int,
        members: Sequence[int],
        *,
        config: EngineConfig | None = None,
        cluster_id: bytes = bytes(limits.CLUSTER_ID_BYTES),
        incarnation: int = 0,
        ring_seq: int = 0,
        now: float = 0.0,
        security: FrameSecurity | None = None,
    ) -> None:
        self.roster = tuple(sorted(set(members)))
        if node_id not in self.roster or not 1 <= node_id <= 0xFFFF:
            raise ConfigError("bad_config", f"node {node_id} is not in the roster {self.roster}")
        if len(cluster_id) != limits.CLUSTER_ID_BYTES or not 0 <= incarnation < 1 << 31:
            raise ConfigError("bad_config", "bad cluster id or incarnation")
        self.node_id = node_id
        self.config = config or EngineConfig()
        self.cluster_id = cluster_id
        self.security: FrameSecurity = security or NullSecurity()
        self.drops: Counter[str] = Counter()
        self.quorum = quorum_size(len(self.roster))
        self.now = now
        self._ready = Ready()
        self._timers: dict[str, float] = {}
        self._msg_no = incarnation << 32
        cfg = self.config
        self.sendq = SendQueue(cfg.datagram_bytes_max, cfg.send_queue_max, cfg.payload_bytes_max)
        self.assembler = Assembler(cfg.payload_bytes_max)
        # Old-ring frames arrive as fragments during recovery.
        self.rec_assembler = Assembler(limits.DATAGRAM_BYTES_MAX)
        self.data_counter = 0
        # Installed regular configuration (None until the first ring).
        self.ring: RingId | None = None
        self.members: tuple[int, ...] = ()
        self.store: RingStore | None = None
        self.ring_seq_max = ring_seq
        self._persisted = ring_seq
        # Membership in progress.
        self.gather: GatherState | None = None
        self.pending: tuple[RingId, tuple[int, ...]] | None = None
        self.new_store: RingStore | None = None
        self.plan: RecoveryPlan | None = None
        self.recq: SendQueue | None = None
        self.commit_seen = -1
        self.key_commit = b""
        # The entry we appended to the commit token being formed.
        self.my_entry: CommitMember | None = None
        # Per foreign sender: (time before which its tokens start no merge,
        # the next back-off). Replayed old tokens of a node that is gone can
        # then cost at most one failed round per back-off period, while a
        # live foreign ring is still merged with, later if not sooner.
        self._merge_backoff: dict[int, tuple[float, float]] = {}
        self._last_commit: tuple[int, bytes, int] | None = None
        self.tokens = token.TokenState()
        # Fault detector (engine/faults.py): whose visit the token died at, the members of
        # recent rings, the driver-reported receive queue, and whether we are
        # coming back from a rejection.
        self.detector = Detector(node_id, self.roster, self.config)
        self.loss_blame: tuple[int, float] | None = None
        self.known_rings: dict[RingId, tuple[int, ...]] = {}
        # Roster node -> the highest ring seq it signed in any frame we
        # verified (_stale_join). Bounded by the roster.
        self.seq_heard: dict[int, int] = {}
        self.rx_queue = 0
        self.rx_wait_s = 0.0
        self.rx_wait_peak_s = 0.0  # since our last token: what we report
        # Each member's latest signed tokens and whether each reported
        # overload (kept across rings: the token losses an overload causes
        # end rings); faults._check_load.
        self.overload_run: dict[int, list[tuple[Frame, bool]]] = {}
        self.rejoining = False
        self.installed_at = now
        self.state = State.GATHER
        self.enter_gather(now, reason="start")

    # ------------------------------------------------------------------ verbs

    def receive(self, now: float, datagram: bytes, source: object = None) -> None:
        """One datagram from the network. Never raises for bad input."""
        self.now = now
        if self.state is State.REJECTED:
            self.drops["rejected"] += 1
            return
        # Authenticate before interpreting: the fixed header and one
        # signature check decide, at a cost independent of the body, whether
        # any body byte is decoded (an outsider's crafted nesting costs
        # nothing more than junk).
        data = bytes(datagram)
        try:
            head = peek(data, max_datagram_bytes=limits.DATAGRAM_BYTES_MAX)
        except RingwardError as exc:
            self.drops[exc.reason] += 1
            return
        refused = self._refuse(head, data)
        if refused is not None:
            self.drops[refused] += 1
            return
        try:
            frame = decode(data, max_datagram_bytes=limits.DATAGRAM_BYTES_MAX)
        except RingwardError as exc:
            self.drops[exc.reason] += 1
            return
        if frame.signed:
            invalid = validate.check(self, frame)
            if invalid is not None:
                # A claim its signer could not legitimately make: never acted
                # on; a proof when its statements alone convict the signer.
                self.drops[f"invalid:{invalid.rule}"] += 1
                if invalid.proof is not None:
                    faults.prove(self, frame.sender, *invalid.proof)
                return
        handler = _HANDLERS.get(frame.kind)
        if handler is None:
            self.drops["unhandled_kind"] += 1
            return
        handler(self, frame, data)
        self._heard_seq(frame)

    def _heard_seq(self, frame: Frame) -> None:
        """Remember the highest ring seq ``frame``'s sender has put in
        anything it signed (after its handler: the join being judged stale
        must not be compared with itself)."""
        if not frame.signed:
            return  # anyone can make it: it says nothing about the sender
        seq = frame.ring.seq
        if isinstance(frame.body, Join):
            seq = max(seq, frame.body.ring_seq)
        if seq > self.seq_heard.get(frame.sender, -1):
            self.seq_heard[frame.sender] = seq

    def _refuse(self, head: Header, data: bytes) -> str | None:
        """Why a datagram is dropped on its header and signature alone
        (no body byte decoded yet). A signed frame's signature covers
        everything before it, and decoding accepts only the canonical
        encoding, so these bytes are exactly ``signing_bytes`` of the frame."""
        if head.cluster_id != self.cluster_id:
            return "foreign_cluster"
        if head.sender not in self.roster:
            return "unknown_sender"
        if head.sender == self.node_id:
            # Our own frame, re-sent by a member serving a retransmission.
            return "own_frame"
        if self.banned(head.sender):
            return "banned_sender"
        sig = limits.SIGNATURE_BYTES
        if head.signed and not self.security.verify(head.sender, data[:-sig], data[-sig:]):
            return "bad_signature"
        return None

    def tick(self, now: float) -> None:
        """Time passed: fire every timer that is due."""
        self.now = now
        for name in TIMERS:
            if self.state is State.REJECTED and name != "rejoin":
                self._timers.pop(name, None)  # set by the visit that convicted us
                continue
            at = self._timers.get(name)
            if at is not None and at <= now:
                del self._timers[name]
                getattr(self, f"_on_{name}")()

    def submit(self, now: float, payload: bytes, safe: bool = False) -> MessageId:
        """Queue ``payload`` for total-order broadcast; its id is returned at
        once. Raises StateError('backpressure') when the send queue is full."""
        self.now = now
        self._msg_no += 1
        self.sendq.push(self._msg_no, bytes(payload), safe=safe)
        if self.state is State.OPERATIONAL and self.tokens.held is not None:
            token.release_held(self)
        return MessageId(self.node_id, self._msg_no)

    def leave(self, now: float) -> None:
        """Announce a graceful leave: a signed join of the current ring that
        leaves this node out of its own proc set, so the other members
        reconfigure at once instead of after a token timeout. Call it just
        before stopping the node (it sends nothing more after this)."""
        self.now = now
        others = tuple(m for m in (self.members or ()) if m != self.node_id)
        if self.ring is not None and others and self.state is not State.REJECTED:
            self.emit_signed(self.ring, Join(self.ring_seq_max, others, (), (), ()))
        self.drops["left"] += 1
        self.state = State.REJECTED  # nothing more in or out
        for name in TIMERS:
            self.cancel_timer(name)

    def note_receive_queue(self, datagrams: int, waited_s: float = 0.0) -> None:
        """The driver's receive backlog (datagrams waiting for ``receive``)
        and how long the datagram it passes next waited in it: part of the
        load this node reports, signed, in its tokens (an overloaded node is
        evicted on its own reports, and rejoins once healthy). Optional; a
        driver that never calls it reports no receive pressure."""
        self.rx_queue = max(0, datagrams)
        self.rx_wait_s = max(0.0, waited_s)
        self.rx_wait_peak_s = max(self.rx_wait_peak_s, self.rx_wait_s)

    def ready(self) -> Ready:
        """Drain what the engine produced (see api.py for the duties)."""
        out = self._ready
        out.deadline = min(self._timers.values()) if self._timers else None
        if self.ring_seq_max > self._persisted:
            out.persist_ring_seq = self._persisted = self.ring_seq_max
        self._ready = Ready()
        return out

    # --------------------------------------------------------- introspection

    @property
    def view(self) -> str | None:
        """Id of the installed regular configuration."""
        return regular_view_id(self.ring) if self.ring else None

    @property
    def backlog(self) -> int:
        """Messages submitted and not yet broadcast."""
        return len(self.sendq)

    @property
    def send_room(self) -> bool:
        """Whether ``submit`` would accept a message now."""
        return len(self.sendq) < self.config.send_queue_max

    @property
    def token_hops(self) -> int:
        """Token visits seen in the current ring (rotations times members)."""
        return max(self.tokens.hop_seen, 0)

    def status(self) -> dict[str, object]:
        """A snapshot for operators: state, view, backlog, drop counters,
        each peer's suspicion scores by signal, and current verdicts."""
        return {
            "node": self.node_id,
            "state": self.state.value,
            "view": self.view,
            "members": list(self.members),
            "backlog": self.backlog,
            "token_hops": self.token_hops,
            "drops": dict(self.drops),
            "scores": self.detector.scores(self.now),
            "verdicts": {t: v.reason for t, v in sorted(self.detector.verdicts.items())},
        }

    # ------------------------------------------------------ output helpers

    def next_msg_no(self) -> int:
        self._msg_no += 1
        return self._msg_no

    def send(self, dest: int | None, data: bytes) -> None:
        self._ready.datagrams.append(Outgoing(dest, data))

    def emit(self, event: EngineEvent) -> None:
        self._ready.events.append(event)

    def emit_view(self, view: str, kind: str, members: Sequence[int]) -> None:
        assert kind in ("transitional", "regular")
        self.emit(
            ViewInstalled(
                view,
                "regular" if kind == "regular" else "transitional",
                tuple(sorted(members)),
                len(members) >= self.quorum,
            )
        )

    def sign_frame(self, ring: RingId, body: object) -> tuple[Frame, bytes]:
        """Sign and encode a frame without sending it."""
        unsigned = Frame(self.cluster_id, self.node_id, ring, body)  # type: ignore[arg-type]
        signed_part = signing_bytes(unsigned)
        signature = self.security.sign(signed_part)
        frame = Frame(self.cluster_id, self.node_id, ring, body, signature)  # type: ignore[arg-type]
        return frame, signed_part + signature

    def emit_signed(self, ring: RingId, body: object, dest: int | None = None) -> bytes:
        """Sign, encode and send a frame; returns its bytes."""
        _, raw = self.sign_frame(ring, body)
        self.send(dest, raw)
        return raw

    def set_timer(self, name: str, delay_ms: float) -> None:
        self._timers[name] = self.now + delay_ms / 1000.0

    def timer_due(self, name: str) -> float | None:
        """When timer ``name`` fires, or None if it is not armed."""
        return self._timers.get(name)

    def cancel_timer(self, *names: str) -> None:
        for name in names:
            self._timers.pop(name, None)

    # ------------------------------------------------------------- gather

    def enter_gather(self, now: float, *, reason: str, add: Sequence[int] = ()) -> None:
        """Start (or widen) a membership round."""
        self.now = now
        if self.state is State.REJECTED:
            return  # only the rejoin timer ends a rejection
        if self.state is State.GATHER and self.gather is not None:
            if self.gather.merge(add, ()):
                self.send_join()
            return
        self.drops[f"gather:{reason}"] += 1  # counted, not an error: a reason to reconfigure
        self.state = State.GATHER
        # Back from a failed COMMIT or RECOVERY, the previous round's sets
        # stand (Totem clears the fail set only on entering OPERATIONAL):
        # forgetting them would re-admit the nodes just failed and loop.
        kept = self.gather
        self.gather = GatherState(
            proc={self.node_id, *self.members, *add, *(kept.proc if kept else ())},
            fail=set(kept.fail) if kept else set(),
            ring_seq_max=self.ring_seq_max,
        )
        self.gather.fail.discard(self.node_id)
        self.gather.fail |= {n for n in self.gather.proc if self.banned(n)}
        self.pending = None
        self.new_store = None
        self.plan = None
        self.recq = None
        self._last_commit = None
        self.security.retire({self.ring} if self.ring else ())
        self.tokens.reset()
        self.sendq.rewind()
        self.cancel_timer("token_rtx", "commit_rtx", "token_hold", "link", "relay", "token_loss")
        self.send_join()
        self.set_timer("consensus", self.config.consensus_timeout_ms)

    def send_join(self) -> None:
        g = self.gather
        assert g is not None
        proofs, accusations = faults.join_evidence(self)
        body = Join(
            self.ring_seq_max, tuple(sorted(g.proc)), tuple(sorted(g.fail)), proofs, accusations
        )
        ring = self.ring or RingId(self.node_id, 0)
        try:
            raw = self.emit_signed(ring, body)
        except WireError:
            # Evidence past the budget's estimate: the sets matter more.
            self.drops["join_evidence_dropped"] += 1
            body = Join(body.ring_seq, body.proc, body.fail, (), ())
            raw = self.emit_signed(ring, body)
        frame = Frame(self.cluster_id, self.node_id, ring, body, raw[-limits.SIGNATURE_BYTES :])
        g.joins[self.node_id] = (frozenset(g.proc), frozenset(g.fail), frame)
        self.set_timer("join", self.config.join_timeout_ms)

    def _on_join_frame(self, frame: Frame, raw: bytes) -> None:
        j = frame.body
        assert isinstance(j, Join)
        sender = frame.sender
        if self.banned(sender) or sender not in j.proc:
            if sender not in j.proc:
                self._on_leave(sender, j)
            else:
                # Evicted, its cool-down not over: its joins start nothing.
                self.drops["join_banned"] += 1
            return
        if self._stale_join(sender, j):
            # Sent before something we know it did since: a delayed or
            # replayed join. Taken, it would bring back the sets of an
            # earlier round (an evicted node in proc: a round that waits a
            # consensus timeout for it) and hide the sender's latest join.
            self.drops["stale_join"] += 1
            return
        faults.on_join(self, frame)
        if self.state is State.REJECTED or sender in self.detector.verdicts:
            return  # its evidence convicted us, or it convicted itself
        self.ring_seq_max = max(self.ring_seq_max, j.ring_seq)
        if self.state is not State.GATHER:
            members = self.pending[1] if self.pending else self.members
            failed = self.gather.fail if self.gather is not None else set()
            if self.node_id in j.fail or self.node_id not in j.proc or sender in failed:
                # It is not trying to join us (it failed us, or does not know
                # us yet): restarting our membership would only start a loop
                # of rings that it leaves again. Our ring traffic will reach
                # it as foreign traffic, and the merge starts from there.
                self.drops["join_not_for_us"] += 1
                return
            if sender not in members and not self._may_merge(sender):
                # An outsider's join (perhaps a replayed one of a node that
                # is gone) restarts membership once per back-off period.
                self.drops["join_backoff"] += 1
                return
            faults.on_restart_by_join(self, frame)
            self.enter_gather(self.now, reason="join", add=(sender,))
        g = self.gather
        assert g is not None
        if sender in g.fail:
            self.drops["join_from_failed"] += 1
            return
        changed = False
        if self.node_id in j.fail:
            # It considers us failed: part ways; the merge comes later.
            g.fail.add(sender)
            changed = True
        else:
            g.joins[sender] = (frozenset(j.proc), frozenset(j.fail), frame)
            # Fail sets are unioned on trust, as in Totem: refusing claims
            # about nodes we still hear was tried and split partitioned
            # rings into singletons that never re-merged (SECURITY.md: a
            # Byzantine member can keep a live node out of one ring).
            changed = g.merge(j.proc, j.fail) | self._fail_banned(j.proc)
        g.ring_seq_max = max(g.ring_seq_max, j.ring_seq)
        if changed:
            # New sets: everyone gets a full consensus period to agree to
            # them (Totem re-enters gather), or the first timer to fire
            # would fail nodes whose matching joins are still in flight.
            self.set_timer("consensus", self.config.consensus_timeout_ms)
            self.send_join()
        # Consensus is only ever reached on hearing from others or on the
        # consensus timer: a node that just started must not form a ring of
        # one before anyone could answer.
        self._check_consensus()

    def _fail_banned(self, proposed: Iterable[int]) -> bool:
        """A node we evicted, proposed by a member that has not learnt of it
        yet: fail it, or the round waits for its join until the consensus
        timer fails it anyway. True if our fail set grew."""
        g = self.gather
        assert g is not None
        banned = {n for n in proposed if n not in g.fail and self.banned(n)}
        g.fail |= banned
        return bool(banned)

    def _stale_join(self, sender: int, j: Join) -> bool:
        """Whether ``j`` is older than what ``sender`` already told us.

        A member of a ring carries at least that ring's seq in every join it
        sends after installing it (or after committing to it); within one
        round a node's sets only grow. So a join of a member of our ring (or
        of the ring we committed to) with a lower seq, or one that is behind
        the sender's latest join of this round (lower seq, or strictly
        smaller sets), was sent earlier: the network delayed it or someone
        replayed it (a replay proves nothing, but must change nothing).

        The same holds for any node, member or not: a node's ring seq is
        persisted before anything carrying it is sent (api.py) and never
        falls, so a join below the highest ring seq the node ever signed
        (its joins, or the ring id of any signed frame of it) is older than
        that frame. This is what catches a replayed join of an outsider."""
        ring, members = self.pending or (self.ring, self.members)
        if ring is not None and sender in members and j.ring_seq < ring.seq:
            return True
        if j.ring_seq < self.seq_heard.get(sender, 0):
            return True
        g = self.gather
        got = g.joins.get(sender) if g is not None else None
        if got is None:
            return False
        old = got[2].body
        assert isinstance(old, Join)
        if j.ring_seq != old.ring_seq:
            return j.ring_seq < old.ring_seq
        proc, fail = frozenset(j.proc), frozenset(j.fail)
        return proc <= got[0] and fail <= got[1] and (proc, fail) != (got[0], got[1])

    def _on_leave(self, sender: int, j: Join) -> None:
        """A member announced it leaves (a join without itself in proc,
        signed by it, for our current ring): fail it now. A replayed leave
        of an earlier ring is stale."""
        ring = self.ring
        if ring is None or sender not in self.members or j.ring_seq < ring.seq:
            self.drops["stale_leave"] += 1
            return
        if self.state is State.GATHER and self.gather is not None:
            if sender not in self.gather.fail:
                self.gather.fail.add(sender)
                self.set_timer("consensus", self.config.consensus_timeout_ms)
                self.send_join()
                self._check_consensus()
            return
        self.enter_gather(self.now, reason="leave")
        if self.gather is not None:
            self.gather.fail.add(sender)
            self.send_join()

    def _check_consensus(self) -> None:
        g = self.gather
        if g is None or self.state is not State.GATHER or not g.consensus():
            return
        if g.candidates()[0] == self.node_id:
            recovery.start_commit(self)

    def _on_join(self) -> None:
        if self.state is State.GATHER:
            self.send_join()

    def _on_consensus(self) -> None:
        if self.state is not State.GATHER or self.gather is None:
            return
        silent = self.gather.silent() - {self.node_id}
        self.gather.fail |= silent
        self.set_timer("consensus", self.config.consensus_timeout_ms)
        self.send_join()
        self._check_consensus()

    # ------------------------------------------------------------ timers

    def _on_token_loss(self) -> None:
        faults.on_token_loss(self)
        self.enter_gather(self.now, reason="token_loss")

    def _on_token_rtx(self) -> None:
        token.retransmit(self)

    def _on_token_hold(self) -> None:
        token.release_held(self)

    def _on_relay(self) -> None:
        token.relay(self)

    def _on_link(self) -> None:
        cur = token.active(self)
        if cur is not None:
            chain.poll(self, cur[1], cur[2])

    def _on_rekey(self) -> None:
        """Time for a fresh group key: the representative starts a new ring
        with the same members (a membership round that changes nothing but
        the ring id and the key)."""
        if self.state is State.OPERATIONAL and self.members and self.members[0] == self.node_id:
            self.enter_gather(self.now, reason="rekey")

    def _on_rejoin(self) -> None:
        """The cool-down of our eviction is over: rejoin through a normal
        join, once our own load is back under the limits."""
        if self.state is not State.REJECTED:
            return
        # Healthy for the whole cool-down, not just now: the worst receive
        # wait since we were rejected (the peak is not reset while rejected).
        worst = max(self.rx_wait_s, self.rx_wait_peak_s)
        self.rx_wait_peak_s = 0.0
        if (
            self.rx_queue >= self.config.overload_rx_queue
            or worst * 1000 >= self.config.overload_hold_ms
        ):
            self.set_timer("rejoin", self.config.evict_cooldown_ms)
            return
        self.detector.forgive(self.now, self.node_id, self.ring_seq_max)
        self.rejoining = True
        self.state = State.OPERATIONAL  # enter_gather below starts a fresh round
        self.gather = None
        self.enter_gather(self.now, reason="rejoin")

    def reject(self, verdict: Verdict) -> None:
        """We were evicted: stand down for the cool-down (the same one every
        member computes from the same evidence), keeping what the
        application queued; then rejoin by ourselves."""
        if self.state is State.REJECTED:
            return
        cooldown = self.detector.cooldown_s(self.node_id)
        self.drops[f"rejected:{verdict.reason}"] += 1
        self.state = State.REJECTED
        self.rx_wait_peak_s = 0.0  # from now on: was it healthy all along?
        self.overload_run.pop(self.node_id, None)
        self.gather = None
        self.pending = None
        self.new_store = None
        self.plan = None
        self.recq = None
        self._last_commit = None
        self.tokens.reset()
        self.sendq.rewind()
        for name in TIMERS:
            self.cancel_timer(name)
        self.set_timer("rejoin", cooldown * 1000)
        self.emit(Rejected(verdict.reason, cooldown))

    def _on_commit_rtx(self) -> None:
        if self._last_commit is not None and self.state in (State.COMMIT, State.RECOVERY):
            dest, raw, _ = self._last_commit
            self.send(dest, raw)
            self.set_timer("commit_rtx", self.config.token_retransmit_ms)

    # ---------------------------------------------------- installed views

    def install(self, ring: RingId, members: tuple[int, ...], store: RingStore) -> None:
        """Install a regular configuration (after recovery)."""
        self.ring, self.members, self.store = ring, members, store
        self.ring_seq_max = max(self.ring_seq_max, ring.seq)
        self.remember_ring(ring, members)
        self.installed_at = self.now
        # The old ring's frames are delivered: its key goes, so nothing sent
        # in the old ring is readable here any more either.
        self.security.retire({ring})
        for member in members:
            self._merge_backoff.pop(member, None)
        self.assembler.reset()
        self.emit_view(regular_view_id(ring), "regular", members)
        self.state = State.OPERATIONAL
        self.gather = None
        self.pending = None
        self.new_store = None
        self.plan = None
        self.recq = None
        self.cancel_timer("join", "consensus", "commit_rtx", "rekey")
        if members[0] == self.node_id and self.config.rekey_interval_ms:
            self.set_timer("rekey", self.config.rekey_interval_ms)
        faults.on_install(self, members, regular_view_id(ring))
        delivery.deliver_ready(self)

    def remember_ring(self, ring: RingId, members: tuple[int, ...]) -> None:
        """Keep a ring's members (to check proofs about it): the latest
        RINGS_KEPT rings committed to or installed."""
        self.known_rings[ring] = members
        while len(self.known_rings) > RINGS_KEPT:
            del self.known_rings[min(self.known_rings, key=lambda r: r.seq)]

    def foreign(self, frame: Frame) -> None:
        """A signed token of a ring that is not ours: a node outside our ring
        is alive (partition healed, restart): merge with it — at most once
        per back-off period per sender, doubling up to MERGE_BACKOFF_MAX_S,
        so replayed old tokens cannot keep the ring reconfiguring."""
        sender = frame.sender
        if self.banned(sender):
            self.drops["foreign_banned"] += 1
            return
        g = self.gather
        if (
            self.state is State.GATHER
            and g is not None
            and sender not in g.proc | g.fail
            and self._may_merge(sender)
        ):
            # Gathering (a node that just started, say) and a ring is out
            # there: propose to include its members rather than wait for the
            # consensus timer, form a ring alone, and merge afterwards.
            g.merge((sender,), ())
            self.set_timer("consensus", self.config.consensus_timeout_ms)
            self.send_join()
            return
        if (
            self.state is not State.OPERATIONAL
            or sender in self.members
            or not self._may_merge(sender)
        ):
            self.drops["foreign_ring"] += 1
            return
        self.enter_gather(self.now, reason="foreign", add=(sender,))

    def banned(self, node: int) -> bool:
        """Whether ``node`` is evicted and its cool-down not over (a verdict
        whose cool-down ended is forgiven here: it may join again)."""
        if node not in self.detector.verdicts or node == self.node_id:
            return False
        if self.detector.banned(self.now, node):
            return True
        self.detector.forgive(self.now, node, self.ring_seq_max)
        return False

    def _may_merge(self, sender: int) -> bool:
        """Whether an outsider may start a membership round now; if so, the
        next time it may is one back-off later (doubling, capped)."""
        until, delay = self._merge_backoff.get(sender, (0.0, self.config.merge_timeout_ms / 1000.0))
        if self.now < until:
            return False
        self._merge_backoff[sender] = (self.now + delay, min(2 * delay, MERGE_BACKOFF_MAX_S))
        return True

    def commit_entry(self) -> CommitMember:
        """This node's old-ring state for the commit token."""
        st = self.store
        old = self.ring or RingId(self.node_id, 0)
        if st is None:
            return CommitMember(self.node_id, old, 0, 0, 0, True)
        return CommitMember(
            self.node_id, old, st.aru, st.high_seq, st.delivered, st.aru == st.high_seq
        )

    def set_last_commit(self, dest: int, raw: bytes, hop: int) -> None:
        """Remember a forwarded commit token; re-send it until progress shows."""
        self._last_commit = (dest, raw, hop)
        self.set_timer("commit_rtx", self.config.token_retransmit_ms)

    def digest(self, raw: bytes) -> bytes:
        return hashlib.blake2b(raw, digest_size=limits.DIGEST_BYTES).digest()


def _on_data(engine: Engine, frame: Frame, raw: bytes) -> None:
    delivery.on_data(engine, frame, raw)


def _on_token(engine: Engine, frame: Frame, raw: bytes) -> None:
    assert isinstance(frame.body, Token)
    token.on_token(engine, frame, raw)


def _on_token_request(engine: Engine, frame: Frame, raw: bytes) -> None:
    token.on_token_request(engine, frame)


def _on_accusation(engine: Engine, frame: Frame, raw: bytes) -> None:
    faults.on_accusation(engine, frame)


def _on_proof(engine: Engine, frame: Frame, raw: bytes) -> None:
    faults.on_proof(engine, frame)


def _on_commit(engine: Engine, frame: Frame, raw: bytes) -> None:
    assert isinstance(frame.body, CommitToken)
    recovery.on_commit(engine, frame, raw)


_HANDLERS = {
    Kind.DATA: _on_data,
    Kind.TOKEN: _on_token,
    Kind.JOIN: Engine._on_join_frame,
    Kind.COMMIT: _on_commit,
    Kind.TOKEN_REQUEST: _on_token_request,
    Kind.ACCUSATION: _on_accusation,
    Kind.PROOF: _on_proof,
}
