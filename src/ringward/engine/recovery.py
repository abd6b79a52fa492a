"""Commit and recovery: from consensus to an installed new ring.

The commit token (docs/protocol.md, "Commit"): the representative — the
lowest candidate — sends it around the new ring twice. Hop ``k`` is held by
``members[k % n]``; in the first rotation (hops 0..n-1) each member appends
its old-ring state and moves to COMMIT; in the second (hops n..2n-1) each
member sees everyone's state and moves to RECOVERY; hop 2n brings it back to
the representative, which starts the new ring's token. Each forward is
re-sent until the next holder shows progress.

Recovery (Totem's encapsulated retransmission): each member re-broadcasts,
as new-ring frames flagged *recovered*, the frames of its old ring that some
member of its transitional configuration may lack (those above the lowest
aru). They ride the ordinary token machinery, so loss is repaired by the
ordinary retransmission requests. When a quiet rotation shows every member
holds every recovery frame, each member delivers the rest of its old ring —
in the old regular view up to the highest point any survivor already
delivered there (and further while only agreed frames follow), the rest in
the transitional view — and installs the new regular view.

Monotonic rings: a node enters a ring (its first rotation) at most once, and
never one whose seq is not above every ring it entered before
(``Engine.ring_entered``, from the persisted ring seq after a restart).
Entering a ring again would re-open its group key and restart the DATA
counter at 0, so frames would be sealed again under (key, nonce) pairs
already used, and the tokens of our turns signed again with other content
(equivocation, evicting a correct node): all a network replay of the ring's
commit tokens to a node that timed out of its recovery could cause. The
refusal never refuses a legitimate new ring: the certificate holds our
join, and the representative takes a seq above every certified join's
(validity rule ``commit_ring_seq``); our joins carry ``ring_seq_max``,
which is at least every ring we entered, so a ring built on a join we sent
since entering ring E has a seq above E's. It is keyed on the rings we
entered, not on ``ring_seq_max``: that also counts joins we heard and the
representative may not have, and refusing those rings would fail rounds for
nothing. A refused ring is one whose certificate holds a join of ours older
than our last entry (a replay, or a representative that missed our later
joins); its round fails and the next one, built on the joins we keep
sending, has a higher seq.
"""

from __future__ import annotations

import dataclasses
import functools
import hmac
from typing import TYPE_CHECKING, NamedTuple

from ringward.engine import accusations, token, transition, versions
from ringward.engine.config import EngineConfig
from ringward.engine.detector import CommitWatch, LossBlame
from ringward.engine.membership import State, plan_recovery
from ringward.engine.reasons import Drop, Note
from ringward.engine.ringstore import RingMembers, RingStore
from ringward.engine.sendqueue import SendQueue
from ringward.errors import WireError
from ringward.wire import (
    CommitMember,
    CommitToken,
    Frame,
    FrameRef,
    Join,
    LoadReport,
    RingId,
    Token,
    limits,
    signing_bytes,
)

if TYPE_CHECKING:
    from ringward.engine.engine import Engine

__all__ = [
    "ForwardedCommit",
    "commit_entry",
    "observe_commit",
    "on_commit",
    "recovery_allowance",
    "relay_commit",
    "retransmit_commit",
    "start_commit",
]


class ForwardedCommit(NamedTuple):
    """The commit token we forwarded last (re-sent to every member): its
    bytes, its hop."""

    raw: bytes
    hop: int


# Ring sequence numbers advance by 4 per new ring, as in Totem.
RING_SEQ_STEP = 4


def start_commit(engine: Engine) -> None:
    """Consensus reached and we are the representative: form the ring."""
    g = engine.gather
    assert g is not None
    members = tuple(g.candidates())
    seq = max(g.ring_seq_max, engine.ring_seq_max) + RING_SEQ_STEP
    ring = RingId(engine.node_id, seq)
    engine.ring_seq_max = seq
    cert = tuple(g.joins[n][2] for n in members)
    keys, key_commit = engine.security.new_ring_key(ring, members)
    ct = CommitToken(hop=0, members=(), keys=keys, key_commit=key_commit, cert=cert)
    _process(engine, ring, members, ct)


def on_commit(engine: Engine, frame: Frame, raw: bytes) -> None:
    """A commit token from the network: check its certificate, then process."""
    ct = frame.body
    assert isinstance(ct, CommitToken)
    sets = {(j.body.proc, j.body.fail) for j in ct.cert if isinstance(j.body, Join)}
    if len(sets) != 1 or len(ct.cert) == 0:
        engine.drops[Drop.COMMIT_BAD_CERT] += 1
        return
    proc, fail = sets.pop()
    members = tuple(sorted(set(proc) - set(fail)))
    if engine.node_id in members and ct.hop % len(members) != members.index(engine.node_id):
        observe_commit(engine, frame, ct, members, raw)
        return
    if engine.state is State.GATHER:
        # The evidence behind the new ring's fail set, as its members saw it.
        for j in ct.cert:
            if isinstance(j.body, Join):
                accusations.absorb(engine, j.body.proofs, j.body.accusations)
    if engine.state not in (State.GATHER, State.COMMIT, State.RECOVERY, State.OPERATIONAL):
        return  # the evidence convicted us
    if (
        frame.ring.rep != members[0]
        or frame.sender != members[(ct.hop - 1) % len(members)]
        or engine.node_id not in members
    ):
        engine.drops[Drop.COMMIT_BAD_CERT] += 1
        return
    if not _cert_holds(engine, ct, members):
        engine.drops[Drop.COMMIT_BAD_CERT] += 1
        if ct.hop == 1:
            # The representative's own commit (signed by it): unusable.
            _refuse_representative(engine, frame.ring, members)
        return
    _process(engine, frame.ring, members, ct)


def _cert_holds(engine: Engine, ct: CommitToken, members: tuple[int, ...]) -> bool:
    """The certificate's joins are the members', one each, and verify."""
    return tuple(j.sender for j in ct.cert) == members and all(
        engine.security.verify(j.sender, signing_bytes(j), j.signature) for j in ct.cert
    )


def _process(engine: Engine, ring: RingId, members: tuple[int, ...], ct: CommitToken) -> None:
    n = len(members)
    me = engine.node_id
    if ct.hop % n != members.index(me):
        engine.drops[Drop.COMMIT_NOT_MINE] += 1
        return
    if engine.ring is not None and ring.seq <= engine.ring.seq:
        engine.drops[Drop.COMMIT_STALE] += 1
        return
    same = engine.pending == RingMembers(ring, members)
    if not same and ring.seq <= engine.ring_entered:
        # Monotonic rings (module docstring): a ring no newer than one we
        # entered is one we left, or a ring we could only be in through a
        # join we sent before entering that one. Never entered (again).
        engine.drops[Drop.COMMIT_REENTRY] += 1
        return
    if same and ct.hop <= engine.commit_seen:
        engine.drops[Drop.COMMIT_DUPLICATE] += 1
        return
    if ct.hop < n:
        _first_rotation(engine, ring, members, ct)
    elif ct.hop < 2 * n:
        _second_rotation(engine, ring, members, ct, same)
    elif same and engine.state is State.RECOVERY and ct.hop == 2 * n:
        engine.commit_seen = ct.hop
        engine.cancel_timer("commit_rtx")
        token.start_ring(engine)
    else:
        engine.drops[Drop.COMMIT_UNEXPECTED] += 1


def _first_rotation(
    engine: Engine, ring: RingId, members: tuple[int, ...], ct: CommitToken
) -> None:
    g = engine.gather
    cert_sets = {
        (frozenset(j.body.proc), frozenset(j.body.fail))
        for j in ct.cert
        if isinstance(j.body, Join)
    }
    if (
        engine.state is not State.GATHER
        or g is None
        or cert_sets != {(frozenset(g.proc), frozenset(g.fail))}
        or tuple(e.node for e in ct.members) != members[: ct.hop]
    ):
        engine.drops[Drop.COMMIT_MISMATCH] += 1
        return
    if not _key_opens(engine, ring, ct):
        # No key for us, or not the key the commitment names: a
        # representative handing out different keys is refused.
        engine.drops[Drop.COMMIT_BAD_KEY] += 1
        if ct.hop == 1:
            # Signed by the representative itself (on_commit): its key.
            _refuse_representative(engine, ring, members)
        return
    engine.commit_fixed = _fixed(engine, ct)
    transition.to(engine, State.COMMIT)
    engine.pending = RingMembers(ring, members)
    transition.remember_ring(engine, ring, members)
    accusations.accuse_in_round(engine)
    engine.ring_seq_max = max(engine.ring_seq_max, ring.seq)
    # Persisted with ring_seq_max by the ready() after this call, before our
    # forward is sent; DATA of the ring is sealed from the second rotation
    # on, in a later call (a ring of one: nothing of it is ever sent).
    engine.ring_entered = max(engine.ring_entered, ring.seq)
    engine.commit_seen = ct.hop
    engine.cancel_timer("join", "consensus")
    engine.set_timer("token_loss", engine.timing.token_timeout_s)
    engine.my_entry = commit_entry(engine)
    entries = (*ct.members, engine.my_entry)
    _forward(engine, ring, members, dataclasses.replace(ct, hop=ct.hop + 1, members=entries))


def _second_rotation(
    engine: Engine, ring: RingId, members: tuple[int, ...], ct: CommitToken, same: bool
) -> None:
    if not same or engine.state is not State.COMMIT:
        engine.drops[Drop.COMMIT_UNEXPECTED] += 1
        return
    if tuple(e.node for e in ct.members) != members or not hmac.compare_digest(
        _fixed(engine, ct), engine.commit_fixed
    ):
        engine.drops[Drop.COMMIT_MISMATCH] += 1
        return
    if ct.members[members.index(engine.node_id)] != engine.my_entry:
        # Our own statement, altered on the way round: recovery planned on
        # it would not be ours (a transitional view without us).
        engine.drops[Drop.COMMIT_ENTRY_ALTERED] += 1
        return
    engine.commit_seen = ct.hop
    _enter_recovery(engine, {e.node: e for e in ct.members})
    _forward(engine, ring, members, dataclasses.replace(ct, hop=ct.hop + 1))


def _forward(engine: Engine, ring: RingId, members: tuple[int, ...], ct: CommitToken) -> None:
    dest = members[ct.hop % len(members)]
    if dest == engine.node_id:
        _process(engine, ring, members, ct)  # a ring of one: straight back to us
        return
    try:
        # To everyone: every member sees how far the round got
        # (observe_commit), retransmissions too.
        raw = engine.emit_signed(ring, ct)
    except WireError as exc:
        # Joins whose evidence does not fit one commit datagram: the round
        # fails and the consensus timer starts another (never raise).
        engine.drops[f"{Drop.COMMIT_UNENCODABLE}:{exc.reason}"] += 1
        return
    # Re-sent until the next holder shows progress (retransmit_commit).
    engine.last_commit = ForwardedCommit(raw, ct.hop)
    _watch(engine, CommitWatch(ring, members, ct.hop, _fixed(engine, ct), ct.members, engine.now))
    engine.set_timer("commit_rtx", engine.timing.token_retransmit_s)


def observe_commit(
    engine: Engine, frame: Frame, ct: CommitToken, members: tuple[int, ...], raw: bytes
) -> None:
    """A commit token on its way to another member of a ring we are to be
    in: remember the furthest hop, so that a round that dies is blamed on
    the member that did not forward it (accusations.loss_blame). A hop
    counts only from the member whose turn made it, and only if it keeps
    what the hop before it held (key commitment, sealed keys, certificate,
    entries so far): an altered forward leaves the blame on its maker."""
    n = len(members)
    if not 1 <= ct.hop <= 2 * n or frame.sender != members[(ct.hop - 1) % n]:
        return
    if (
        ct.hop == 1
        and frame.ring.rep == frame.sender
        and _may_refuse(engine, frame.ring, members)
        and not (_key_opens(engine, frame.ring, ct) and _cert_holds(engine, ct, members))
    ):
        # The representative's own forward (broadcast) seals us a key that
        # does not open or is not the one it commits to, or carries a
        # certificate that does not verify: the round can only die at
        # whichever member it reaches first, which is not to be blamed.
        # Checked once, at hop 1: later forwards keep what it held.
        _refuse_representative(engine, frame.ring, members)
        return
    w = engine.detector.commit_watch
    if _stale_round(engine, frame.ring, w):
        # A replayed or late commit of a ring we are past would move the
        # watch off the round that is stalling (and its blame onto others).
        engine.drops[Drop.COMMIT_STALE] += 1
        return
    if w is not None and w.ring == frame.ring and ct.hop <= w.hop:
        return
    fixed = _fixed(engine, ct)
    if w is not None and w.ring == frame.ring:
        kept = min(len(w.entries), len(ct.members))
        if not hmac.compare_digest(fixed, w.fixed) or ct.members[:kept] != w.entries[:kept]:
            return
    _watch(engine, CommitWatch(frame.ring, members, ct.hop, fixed, ct.members, engine.now, raw))
    if engine.pending == RingMembers(frame.ring, members):
        # A round gives up a token timeout after its last progress, as the
        # members still waiting in GATHER measure a stall (_watch): timed
        # from our own forward, a round slowed upstream was given up
        # before its stalled holder had held it a token timeout, and only
        # the few members ahead of it could blame it (soak seed 80417).
        # Only under our round's members (the certificate is not checked
        # here): each of them re-arms it at most twice, at its own hops.
        engine.set_timer("token_loss", engine.timing.token_timeout_s)
    # As for tokens (token.relay): a forward sent to everyone but its next
    # holder would get the holder blamed for the round; relayed once if late.
    engine.set_timer("commit_relay", token.RELAY_RETRANSMITS * engine.timing.token_retransmit_s)


def _fixed(engine: Engine, ct: CommitToken) -> bytes:
    """What no forward may change after the representative's: the key
    commitment, every member's sealed key and the certificate. A forwarder
    that replaced the next holder's key, or spoiled a join of the
    certificate, got that holder refusing the round and blamed for it, and
    stalled every round, never evicted."""
    keys = b"".join(
        k.node.to_bytes(2, "big") + len(k.sealed).to_bytes(2, "big") + k.sealed for k in ct.keys
    )
    cert = b"".join(signing_bytes(j) + j.signature for j in ct.cert)
    return ct.key_commit + engine.digest(keys) + engine.digest(cert)


def _key_opens(engine: Engine, ring: RingId, ct: CommitToken) -> bool:
    """The commit seals us at most one key, and the security in use accepts
    it as the one its commitment names (none, without encryption)."""
    mine = [k.sealed for k in ct.keys if k.node == engine.node_id]
    return len(mine) <= 1 and engine.security.accept_ring_key(
        ring, mine[0] if mine else None, ct.key_commit
    )


def _may_refuse(engine: Engine, ring: RingId, members: tuple[int, ...]) -> bool:
    """``ring`` is the round we are gathering for, led by the lowest of its
    members, and newer than any ring we entered or installed (a replay of
    an older ring's commit blames nobody)."""
    g = engine.gather
    return (
        engine.state is State.GATHER
        and g is not None
        and ring.rep == members[0]
        and tuple(g.candidates()) == members
        and ring.seq > engine.ring_entered
        and (engine.ring is None or ring.seq > engine.ring.seq)
    )


def _refuse_representative(engine: Engine, ring: RingId, members: tuple[int, ...]) -> None:
    """The representative of ``ring``, a round we are gathering for, made a
    commit we cannot use (our key does not open or is not the committed
    one, or its certificate does not verify): a correct representative's
    commit is usable by every member it names. Failed at once, so that the
    next round forms under the next representative (the others follow our
    fail set), and blamed (``bad_commit``: what only we may see, our key, so
    a lone accusation is not held against us; every member it lied to
    accuses it too)."""
    g = engine.gather
    if not _may_refuse(engine, ring, members) or g is None:
        return
    accusations.suspect(engine, ring.rep, "bad_commit")
    g.fail.add(ring.rep)
    g.agreed = None
    engine.notes[Note.COMMIT_KEY_REFUSED] += 1
    engine.set_timer("consensus", engine.timing.consensus_timeout_s)
    engine.send_join()


def _stale_round(engine: Engine, ring: RingId, w: CommitWatch | None) -> bool:
    """A commit of a ring older than the installed one, the one we are
    forming, or the round already watched."""
    newest = max(
        engine.ring.seq if engine.ring is not None else -1,
        engine.pending.ring.seq if engine.pending is not None else -1,
        w.ring.seq if w is not None else -1,
    )
    return ring.seq < newest or (engine.ring is not None and ring.seq <= engine.ring.seq)


def relay_commit(engine: Engine) -> None:
    """The commit_relay timer: the round has not moved since the hop we saw;
    pass our copy to its holder, once."""
    w = engine.detector.commit_watch
    # Hop 2n too: it brings the token back to the representative.
    if w is None or not w.raw or w.hop > 2 * len(w.members) or w.holder == engine.node_id:
        return
    if engine.state in (State.GATHER, State.COMMIT) or (
        engine.state is State.RECOVERY and engine.pending is not None
    ):
        engine.send(w.holder, w.raw)
        engine.notes[Note.COMMIT_RELAYED] += 1
        engine.detector.commit_watch = w._replace(raw=b"")  # once


def _watch(engine: Engine, new: CommitWatch) -> None:
    """Commit progress seen. A round we were waiting in (not yet our turn)
    that stalled at a holder for a token timeout and was replaced by a new
    one died there: blamed like a token loss, scored once that member
    answers (a fresh join). A join it sent since the stalled hop answered
    already: a holder that is in every round, giving each up with the
    representative, sends its joins before the next round starts and never
    after, and was never scored here (Byzantine soak seed 250067).
    Members that entered the round blame through their own timeout, once."""
    old = engine.detector.commit_watch
    det = engine.detector
    g = engine.gather
    if (
        old is not None
        and old.ring != new.ring
        and not old.done
        and old.holder != engine.node_id
        and (engine.pending is None or engine.pending.ring != old.ring)
        and engine.ring_entered < old.ring.seq
        and engine.now - old.at > engine.timing.token_timeout_s
        and det.loss_blame is None
    ):
        if g is not None and g.answered.get(old.holder, old.at) > old.at:
            accusations.suspect(engine, old.holder, "commit_loss")
        else:
            det.loss_blame = LossBlame(old.holder, engine.now, "commit_loss")
    det.commit_watch = new


@functools.lru_cache(maxsize=8)
def _item_frames_max(datagram_bytes_max: int, max_messages: int, rtr_entries_max: int) -> int:
    """New-ring frames one recovered item can take: an old-ring DATA frame
    is at most ``datagram_bytes_max``, an old token at most the encoding of
    a token with every field at its widest (measured, not estimated); one
    fragment per frame."""
    wide = (1 << 63) - 1
    widest = Token(
        hop=wide,
        succ=0xFFFF,
        seq=wide,
        aru=wide,
        aru_id=0xFFFF,
        rtr=tuple(wide - rtr_entries_max + i for i in range(rtr_entries_max)),
        fcc=token.U32_MAX,
        backlog=token.U32_MAX,
        frames=tuple(FrameRef(wide - max_messages + i, bytes(32)) for i in range(max_messages)),
        prev=bytes(limits.DIGEST_BYTES),
        load=LoadReport(token.U32_MAX, token.U32_MAX, token.U32_MAX, 0xFFFF, 0xFFFF),
    )
    frame = Frame(bytes(limits.CLUSTER_ID_BYTES), 0xFFFF, RingId(0xFFFF, wide), widest)
    token_bytes = len(signing_bytes(frame)) + limits.SIGNATURE_BYTES
    chunk = SendQueue(datagram_bytes_max, 1, limits.DATAGRAM_BYTES_MAX).chunk
    return -(-max(datagram_bytes_max, token_bytes) // chunk)


def recovery_allowance(
    entries: dict[int, CommitMember], roster_size: int, cfg: EngineConfig
) -> dict[int, int]:
    """How many frames each member may list in the tokens of the ring it
    recovers into (faults.recovery_share), from the commit everyone holds:
    what ``_enter_recovery`` can push, at most. A member re-broadcasts the
    old tokens above its transitional set's lowest aru (each lists a
    distinct frame above it), one signed aru per old member, the linked
    tokens that pinned its last pinned ones (engine/versions.py: at most
    ``max(1, f)``), and the frames in ``(low_aru, high_seq]``; its store
    holds at most the receive window of frames, whatever the entries
    claim. Old members are roster nodes."""
    per_item = _item_frames_max(cfg.datagram_bytes_max, cfg.max_messages, cfg.rtr_entries_max)
    allowed: dict[int, int] = {}
    for member, entry in entries.items():
        trans = [e for e in entries.values() if e.old_ring == entry.old_ring]
        span = max(e.high_seq for e in trans) - min(e.aru for e in trans)
        span = min(max(0, span), cfg.receive_window_frames_max)
        allowed[member] = per_item * (2 * span + roster_size + max(1, (roster_size - 1) // 3))
    return allowed


def _enter_recovery(engine: Engine, entries: dict[int, CommitMember]) -> None:
    assert engine.pending is not None
    ring, _ = engine.pending
    cfg = engine.config
    transition.to(engine, State.RECOVERY)
    engine.new_store = RingStore(ring, cfg.receive_window_frames_max)
    engine.recq = SendQueue(
        cfg.datagram_bytes_max, cfg.receive_window_frames_max, limits.DATAGRAM_BYTES_MAX
    )
    if engine.store is not None:
        # A new stream of old tokens: decided afresh (engine/versions.py).
        versions.enter_recovery(engine, engine.store)
    transition.reset_tokens(engine, start_t=engine.now)
    engine.detector.tokens.expect_recovery(
        recovery_allowance(entries, len(engine.roster), cfg), entries
    )
    engine.rec_assembler.reset()
    engine.data_counter = 0
    engine.set_timer("token_loss", engine.timing.token_timeout_s)
    if engine.ring is None or engine.store is None:
        engine.plan = None
        return
    plan = plan_recovery(engine.node_id, engine.ring, entries)
    engine.plan = plan
    # Every old token that vouches for those frames, from every member: then
    # all survivors hold the same confirmations and decide alike. Before our
    # frames: a member holding an unconfirmed forged copy of a frame learns
    # the true digest (and drops the forgery) before our clean copy reaches
    # it, which it would otherwise take for a duplicate. Only tokens listing
    # a frame in the range: one that lists only frames above every member's
    # high_seq vouches for frames none of them holds, and would take us past
    # what recovery_allowance grants us.
    pushed: set[bytes] = set()
    for _, held in sorted(engine.store.tokens.items()):
        if held.top > plan.low_aru and held.low <= plan.high_seq:
            engine.recq.push(engine.next_msg_no(), held.raw, safe=False, recovered=True)
            pushed.add(held.raw)
    # Then those held unpinned (engine/versions.py), each only if it lists a
    # frame in range that no token pushed so far vouches for here: one
    # token per such frame, within what recovery_allowance grants.
    covered = set(engine.store.confirmed)
    linked = versions.backing(engine.store) if plan.high_seq > plan.low_aru else set()
    for frame, raw in versions.tail(engine.store):
        tk = frame.body
        assert isinstance(tk, Token)
        listed = {ref.seq for ref in tk.frames if plan.low_aru < ref.seq <= plan.high_seq}
        if (listed - covered or raw in linked) and raw not in pushed:
            engine.recq.push(engine.next_msg_no(), raw, safe=False, recovered=True)
            pushed.add(raw)
            covered |= listed
    # And each member's highest signed aru: the cut of the regular-view
    # deliveries that finish() makes (delivery.finish).
    for _, vouch in sorted(engine.store.vouched.items()):
        if vouch.raw not in pushed:
            engine.recq.push(engine.next_msg_no(), vouch.raw, safe=False, recovered=True)
    # Over the frames held, never over the claimed range: its ends are
    # other members' claims.
    seqs = sorted(s for s in engine.store.frames if plan.low_aru < s <= plan.high_seq)
    for seq in seqs:
        item = engine.store.frames[seq]
        if plan.responsible(seq, engine.node_id, entries, engine.detector.f):
            engine.recq.push(engine.next_msg_no(), item.raw, safe=False, recovered=True)


def commit_entry(engine: Engine) -> CommitMember:
    """This node's old-ring state for the commit token."""
    st = engine.store
    old = engine.ring or RingId(engine.node_id, 0)
    if st is None:
        return CommitMember(engine.node_id, old, 0, 0, 0, True)
    return CommitMember(
        engine.node_id, old, st.aru, st.high_seq, st.delivered, st.aru == st.high_seq
    )


def retransmit_commit(engine: Engine) -> None:
    """The commit_rtx timer: re-send the commit token we forwarded last, to
    everyone as the first copy was: a member that lost that copy would
    otherwise blame the round's stall on us (observe_commit)."""
    fwd = engine.last_commit
    if fwd is not None and engine.state in (State.COMMIT, State.RECOVERY):
        engine.send(None, fwd.raw)
        engine.set_timer("commit_rtx", engine.timing.token_retransmit_s)
