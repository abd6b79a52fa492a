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

Every signed frame leaves through :meth:`Engine.emit_signed`; every received
frame passes :meth:`Engine.receive`'s gate before its body is used (the module
map is in docs/protocol.md, "Engine map")."""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable, Sequence

from ringward.engine import dispatch, gather, token, transition, validate, verdicts
from ringward.engine.api import (
    EngineEvent,
    MessageId,
    Outgoing,
    Ready,
    ViewInstalled,
    quorum_size,
)
from ringward.engine.config import EngineConfig, Timing
from ringward.engine.detector import Detector, Verdict
from ringward.engine.membership import GatherState, RecoveryPlan, State, regular_view_id
from ringward.engine.reasons import Drop, Note
from ringward.engine.recovery import ForwardedCommit
from ringward.engine.ringstore import ActiveRing, Assembler, RingMembers, RingStore
from ringward.engine.security import FrameSecurity, NullSecurity
from ringward.engine.sendqueue import SendQueue
from ringward.engine.tokenstate import TokenState
from ringward.engine.transition import TIMERS
from ringward.errors import ConfigError, RingwardError
from ringward.wire import (
    CommitMember,
    Frame,
    Join,
    RingId,
    decode,
    limits,
)
from ringward.wire.frame import Header, peek, signing_bytes

__all__ = ["Engine"]


class Engine:
    """One node's protocol state machine (see module docstring and api.py).

    ``decoder`` replaces ``wire.decode`` for received datagrams (a simulator
    shares one memo of it among its nodes); the other arguments are the
    node's identity, roster, parameters, persisted state and keys."""

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
        decoder: Callable[[bytes], Frame] | None = None,
    ) -> None:
        # A simulator shares one memo of wire.decode among its nodes.
        self._decode = decoder or decode
        self.roster = tuple(sorted(set(members)))
        if node_id not in self.roster or not 1 <= node_id <= 0xFFFF:
            raise ConfigError("bad_config", f"node {node_id} is not in the roster {self.roster}")
        if len(cluster_id) != limits.CLUSTER_ID_BYTES or not 0 <= incarnation < 1 << 31:
            raise ConfigError("bad_config", "bad cluster id or incarnation")
        self.node_id = node_id
        self.config = config or EngineConfig()
        self.cluster_id = cluster_id
        self.security: FrameSecurity = security or NullSecurity()
        # What was discarded, and what else happened (engine/reasons.py).
        self.drops: Counter[str] = Counter()
        self.notes: Counter[str] = Counter()
        self.quorum = quorum_size(len(self.roster))
        self.now = now
        self._ready = Ready()
        self._timers: dict[str, float] = {}
        self._msg_no = incarnation << 32
        cfg = self.config
        self.sendq = SendQueue.for_sending(cfg)
        self.assembler = Assembler(cfg.payload_bytes_max)
        # Old-ring frames arrive as fragments during recovery.
        self.rec_assembler = Assembler(limits.DATAGRAM_BYTES_MAX)
        self.data_counter = 0
        # Installed regular configuration (None until the first ring).
        self.ring: RingId | None = None
        self.members: tuple[int, ...] = ()
        self.store: RingStore | None = None
        # ring_entered: the highest ring seq entered (never again: recovery.py).
        self.ring_seq_max = self.ring_entered = ring_seq
        self._persisted = ring_seq
        # Membership in progress.
        self.gather: GatherState | None = None
        self.pending: RingMembers | None = None
        self.new_store: RingStore | None = None
        self.plan: RecoveryPlan | None = None
        self.recq: SendQueue | None = None
        self.commit_seen = -1
        self.commit_fixed = b""  # what the commit's forwards keep (recovery._fixed)
        self.my_entry: CommitMember | None = None  # ours, in the commit being formed
        self.timing = Timing.of(self.config)  # the _ms fields, in seconds
        self.merge_backoff = gather.MergeBackoff(self.timing.merge_timeout_s)
        self.last_commit: ForwardedCommit | None = None
        self.tokens = TokenState()  # hops, links, our visits (engine/tokenstate.py)
        # The fault detector (all its state), recent rings' members.
        self.detector = Detector(node_id, self.roster, self.config, restarted_at=ring_seq)
        self.known_rings: dict[RingId, tuple[int, ...]] = {}
        # Roster node -> the highest ring seq it signed in any frame we
        # verified (_stale_join). Bounded by the roster.
        self.seq_heard: dict[int, int] = {}
        self.installed_at = now
        self.state = State.GATHER  # the first state; transition.to from here on
        self.enter_gather(now, reason="start")

    # ------------------------------------------------------------------ verbs

    def receive(self, now: float, datagram: bytes, source: object = None) -> None:
        """One datagram from the network. Never raises for bad input."""
        self.now = now
        if self.state not in dispatch.RECEIVING:
            self.drops[Drop.REJECTED] += 1
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
            frame = self._decode(data)
        except RingwardError as exc:
            self.drops[exc.reason] += 1
            return
        if frame.signed:
            invalid = validate.check(self, frame)
            if invalid is not None:
                # A claim its signer could not legitimately make: never acted
                # on; a proof when its statements alone convict the signer.
                self.drops[f"{Drop.INVALID}:{invalid.rule}"] += 1
                if invalid.proof is not None:
                    verdicts.prove(self, frame.sender, *invalid.proof)
                return
        if self.state not in dispatch.ACCEPTS[frame.kind]:
            self.drops[Drop.NOT_ACCEPTED_IN_STATE] += 1
            return
        dispatch.FRAME_HANDLERS[frame.kind](self, frame, data)
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

    def _refuse(self, head: Header, data: bytes) -> Drop | None:
        """Why a datagram is dropped on its header and signature alone
        (no body byte decoded yet). A signed frame's signature covers
        everything before it, and decoding accepts only the canonical
        encoding, so these bytes are exactly ``signing_bytes`` of the frame."""
        if head.cluster_id != self.cluster_id:
            return Drop.FOREIGN_CLUSTER
        if head.sender not in self.roster:
            return Drop.UNKNOWN_SENDER
        if head.sender == self.node_id:
            # Our own frame, re-sent by a member serving a retransmission.
            return Drop.OWN_FRAME
        if self.banned(head.sender) and not self.detector.takes_late_proof(self.now, head):
            return Drop.BANNED_SENDER
        sig = limits.SIGNATURE_BYTES
        if head.signed and not self.security.verify(head.sender, data[:-sig], data[-sig:]):
            return Drop.BAD_SIGNATURE
        self.detector.took_late_proof(head.sender)  # a banned sender's, verified
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
                dispatch.TIMER_HANDLERS[name](self)

    def submit(self, now: float, payload: bytes, safe: bool = False) -> MessageId:
        """Queue ``payload`` for total-order broadcast; its id is returned at
        once. Raises StateError('backpressure') when the send queue is full."""
        self.now = now
        self._msg_no += 1
        self.sendq.push(self._msg_no, bytes(payload), safe=safe)
        token.on_submit(self)
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
        self.notes[Note.LEFT] += 1
        transition.to(self, State.REJECTED)  # nothing more in or out
        self.cancel_timer(*TIMERS)

    def note_receive_queue(self, datagrams: int, waited_s: float = 0.0) -> None:
        """The driver's receive backlog (datagrams waiting for ``receive``)
        and how long the datagram it passes next waited in it: part of the
        load this node reports, signed, in its tokens (an overloaded node is
        evicted on its own reports, and rejoins once healthy). Optional; a
        driver that never calls it reports no receive pressure."""
        self.detector.load.note(datagrams, waited_s)

    def ready(self) -> Ready:
        """Drain what the engine produced (see api.py for the duties)."""
        out = self._ready
        out.deadline = min(self._timers.values()) if self._timers else None
        if self.ring_seq_max > self._persisted:
            out.persist_ring_seq = self._persisted = self.ring_seq_max
        self._ready = Ready()
        return out

    # --------------------------------------------------------- introspection

    def active(self) -> ActiveRing | None:
        """The ring whose token this node follows now, if any."""
        if self.state is State.OPERATIONAL and self.ring and self.store:
            return ActiveRing(self.ring, self.members, self.store)
        if self.state is State.RECOVERY and self.pending and self.new_store:
            return ActiveRing(self.pending.ring, self.pending.members, self.new_store)
        return None

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
        return self.sendq.has_room()

    @property
    def token_hops(self) -> int:
        """Token visits seen in the current ring (rotations times members)."""
        return max(self.tokens.hops.seen, 0)

    def status(self) -> dict[str, object]:
        """A snapshot for operators: state, view, backlog, drop counters and
        other counters (engine/reasons.py), each peer's suspicion scores by
        signal, and current verdicts."""
        return {
            "node": self.node_id,
            "state": self.state.value,
            "view": self.view,
            "members": list(self.members),
            "backlog": self.backlog,
            "token_hops": self.token_hops,
            "drops": {str(k): v for k, v in self.drops.items()},
            "notes": {str(k): v for k, v in self.notes.items()},
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

    def set_timer(self, name: str, delay_s: float) -> None:
        self._timers[name] = self.now + delay_s

    def timer_due(self, name: str) -> float | None:
        """When timer ``name`` fires, or None if it is not armed."""
        return self._timers.get(name)

    def cancel_timer(self, *names: str) -> None:
        for name in names:
            self._timers.pop(name, None)

    # ------------------------------------------------------------- gather

    def enter_gather(
        self, now: float, *, reason: str, add: Sequence[int] = (), rejoin: bool = False
    ) -> None:
        """Start (or widen) a membership round (engine/gather.py)."""
        gather.enter(self, now, reason=reason, add=add, rejoin=rejoin)

    def act(self, verdict: Verdict) -> None:
        """Carry out a new verdict of the fault detector (engine/transition.py)."""
        transition.act(self, verdict)

    def reject(self, verdict: Verdict) -> None:
        """We were evicted (engine/transition.py)."""
        transition.reject(self, verdict)

    def install(self, ring: RingId, members: tuple[int, ...], store: RingStore) -> None:
        """Install a regular configuration (engine/transition.py)."""
        transition.install(self, ring, members, store)

    def send_join(self) -> None:
        gather.send_join(self)

    def foreign(self, frame: Frame) -> None:
        """A signed token of a ring that is not ours (engine/gather.py)."""
        gather.foreign(self, frame)

    def banned(self, node: int) -> bool:
        """Whether ``node`` is evicted and its cool-down not over (a verdict
        whose cool-down ended is forgiven here: it may join again)."""
        if node not in self.detector.verdicts or node == self.node_id:
            return False
        if self.detector.banned(self.now, node):
            return True
        self.detector.forgive(self.now, node, self.ring_seq_max)
        return False

    def digest(self, raw: bytes) -> bytes:
        return hashlib.blake2b(raw, digest_size=limits.DIGEST_BYTES).digest()
