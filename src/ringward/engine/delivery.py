"""DATA frames in and out, and delivery in agreed / safe order.

A received frame is checked cheaply (ring, member, window, duplicate), then
opened (AEAD) and its batch parsed, and only then stored: nothing that fails
to open ever occupies the receive window. Delivery walks the store in seq
order with no gap; a frame carrying a safe payload waits until every member
holds it. During recovery the same walk unpacks old-ring frames instead of
delivering (see recovery.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from ringward.engine import faults, versions
from ringward.engine.api import Delivered, MessageId
from ringward.engine.membership import State, transitional_view_id
from ringward.engine.reasons import Drop
from ringward.engine.ringstore import HeldToken, RingStore
from ringward.errors import WireError
from ringward.wire import (
    BatchEntry,
    DataFrame,
    Frame,
    RingId,
    Token,
    decode,
    decode_batch,
    encode_batch,
    limits,
    signing_bytes,
)
from ringward.wire.frame import DATA_PREFIX, HEADER, MAGIC, VERSION
from ringward.wire.messages import Kind

if TYPE_CHECKING:
    from ringward.engine.engine import Engine

__all__ = [
    "accept",
    "confirm",
    "deliver_entries",
    "deliver_ready",
    "finish",
    "make_data",
    "on_data",
    "open_frame",
    "unpack_ready",
]

AD_BYTES = HEADER.size + DATA_PREFIX.size

_TUPLE = tuple.__new__


def make_data(engine: Engine, ring: RingId, seq: int, entries: list[BatchEntry]) -> bytes:
    """Seal, store and broadcast one DATA frame; returns its bytes."""
    engine.data_counter += 1
    counter = engine.data_counter
    epoch = (counter - 1) // engine.config.epoch_frames
    raw = seal_data(engine, ring, seq, counter, entries)
    store = engine.new_store if engine.state is State.RECOVERY else engine.store
    assert store is not None
    frame = Frame(
        engine.cluster_id, engine.node_id, ring, DataFrame(seq, epoch, counter, raw[AD_BYTES:])
    )
    digest = engine.digest(raw)
    store.confirm(seq, digest)  # our own frame: our token will list this digest
    if store.add(seq, raw, frame, digest):
        store.frames[seq].entries = tuple(entries)
    else:
        engine.drops[Drop.OWN_FRAME_NOT_STORED] += 1  # a bug if the token was valid
    engine.send(None, raw)
    return raw


def seal_data(
    engine: Engine, ring: RingId, seq: int, counter: int, entries: Sequence[BatchEntry]
) -> bytes:
    """The bytes of this node's DATA frame at ``seq`` under ``ring``'s key
    (nothing stored or sent)."""
    epoch = (counter - 1) // engine.config.epoch_frames
    plaintext = encode_batch(list(entries))
    body_len = DATA_PREFIX.size + len(plaintext) + limits.AEAD_TAG_BYTES
    ad = HEADER.pack(
        MAGIC,
        VERSION,
        Kind.DATA,
        0,
        engine.cluster_id,
        engine.node_id,
        ring.rep,
        ring.seq,
        body_len,
    ) + DATA_PREFIX.pack(seq, epoch, counter)
    raw = ad + engine.security.seal(ring, epoch, engine.node_id, counter, ad, plaintext)
    assert len(raw) == AD_BYTES + body_len - DATA_PREFIX.size
    return raw


def open_frame(engine: Engine, frame: Frame, raw: bytes) -> tuple[BatchEntry, ...] | None:
    """Decrypt and parse a DATA frame; None (counted) when it does not open."""
    body = frame.body
    assert isinstance(body, DataFrame)
    if body.counter == 0 or body.epoch != (body.counter - 1) // engine.config.epoch_frames:
        # The epoch follows from the counter: a frame cannot make us derive
        # keys for arbitrary epochs.
        engine.drops[Drop.BAD_EPOCH] += 1
        return None
    plaintext = engine.security.open(
        frame.ring, body.epoch, frame.sender, body.counter, raw[:AD_BYTES], body.ciphertext
    )
    if plaintext is None:
        engine.drops[Drop.BAD_AEAD] += 1
        return None
    try:
        return decode_batch(plaintext)
    except WireError as exc:
        engine.drops[f"{Drop.BATCH}:{exc.reason}"] += 1
        return None


def _store_for(engine: Engine, ring: RingId) -> tuple[RingStore, tuple[int, ...]] | None:
    if engine.new_store is not None and engine.pending and ring == engine.new_store.ring:
        return engine.new_store, engine.pending.members
    if engine.store is not None and ring == engine.store.ring:
        return engine.store, engine.members
    return None


def on_data(engine: Engine, frame: Frame, raw: bytes) -> None:
    body = frame.body
    assert isinstance(body, DataFrame)
    found = _store_for(engine, frame.ring)
    if found is None:
        # Unsigned: anyone can forge its header, so it proves nothing about
        # a foreign ring (merges start from signed tokens and joins).
        engine.drops[Drop.FOREIGN_DATA] += 1
        return
    store, members = found
    if frame.sender not in members:
        engine.drops[Drop.DATA_NOT_MEMBER] += 1
        return
    if body.seq <= store.aru or body.seq in store.frames:
        engine.drops[Drop.DUPLICATE] += 1
        return
    if body.seq > store.aru + store.window:
        engine.drops[Drop.BEYOND_WINDOW] += 1
        return
    accept(engine, store, frame, raw)
    deliver_ready(engine)


def accept(engine: Engine, store: RingStore, frame: Frame, raw: bytes) -> bool:
    """Open and store a frame whose seq is within the window; False when it
    does not open."""
    entries = open_frame(engine, frame, raw)
    body = frame.body
    assert isinstance(body, DataFrame)
    if entries is None:
        return False
    if store.add(body.seq, raw, frame, engine.digest(raw)):
        store.frames[body.seq].entries = entries
    else:
        engine.drops[Drop.DIGEST_MISMATCH] += 1
    return True


def deliver_ready(engine: Engine) -> None:
    """Deliver (or, recovering, unpack) every frame that is now in order."""
    if engine.state is State.OPERATIONAL and engine.store is not None and engine.ring:
        store = engine.store
        view = engine.view
        assert view is not None
        while store.is_confirmed(store.delivered + 1):
            seq = store.delivered + 1
            item = store.frames[seq]
            entries = item.entries or ()
            if seq > store.safe_upto and any(e.safe and not e.recovered for e in entries):
                break
            deliver_entries(engine, view, seq, item.frame.sender, entries)
            store.delivered = seq
        store.collect()
    elif engine.state is State.RECOVERY and engine.new_store is not None:
        unpack_ready(engine)


def deliver_entries(
    engine: Engine, view: str, seq: int, sender: int, entries: tuple[BatchEntry, ...]
) -> None:
    add, emit = engine.assembler.add, engine.emit  # once per message: bound once
    for e in entries:
        if e.recovered:
            continue
        payload = add(sender, e)
        if payload is not None:
            # Delivered(view, seq, MessageId(sender, e.msg_no), payload, e.safe)
            # without the named tuples' Python-level __new__ (per message).
            msg_id = _TUPLE(MessageId, (sender, e.msg_no))
            emit(_TUPLE(Delivered, (view, seq, msg_id, payload, e.safe)))


def confirm(
    engine: Engine, store: RingStore, frame: Frame, raw: bytes, prev_seq: int | None = None
) -> None:
    """Record the digests a verified token lists for the frames its holder
    originated; a stored frame that contradicts them is discarded. Delivery
    is the caller's to trigger (this runs inside recovery's unpacking too).

    The holder's new frames take the seqs right after the previous token's
    (``prev_seq``, when this member saw that token): a listed seq outside
    ``prev_seq+1 .. tk.seq`` claims another member's frame — the first signed
    digest for a seq stands, so a lie would make that frame undeliverable —
    and is ignored and counted (a rule break the fault detector will turn
    into evidence). Without ``prev_seq`` only ``<= tk.seq`` is checked."""
    tk = frame.body
    assert isinstance(tk, Token)
    low = prev_seq if prev_seq is not None else -1
    refs = [ref for ref in tk.frames if low < ref.seq <= tk.seq]
    if len(refs) != len(tk.frames):
        engine.drops[Drop.TOKEN_RULE_FRAMES] += 1
    if not refs:
        return
    for ref in refs:
        if not store.confirm(ref.seq, ref.digest):
            engine.drops[Drop.DIGEST_MISMATCH] += 1
    low, top = min(ref.seq for ref in refs), max(ref.seq for ref in refs)
    if top > store.floor and len(store.tokens) < store.window:
        store.tokens[tk.hop] = HeldToken(raw, low, top, frame.sender)


def unpack_ready(engine: Engine) -> None:
    """Walk the new ring's frames in order, unpacking recovered old-ring
    frames; stop at the first frame with application payloads (those wait
    for the new view)."""
    store = engine.new_store
    assert store is not None
    while store.is_confirmed(store.delivered + 1):
        seq = store.delivered + 1
        item = store.frames[seq]
        entries = item.entries or ()
        if any(not e.recovered for e in entries):
            break
        for e in entries:
            old_raw = engine.rec_assembler.add(item.frame.sender, e)
            if old_raw is not None and not _absorb(engine, item.frame.sender, old_raw):
                faults.recovery_junk(engine, item.frame.sender)
        if engine.new_store is not store:
            return  # it proved an equivocation: membership restarted
        store.delivered = seq


def _absorb(engine: Engine, pusher: int, raw: bytes) -> bool:
    """An old-ring frame recovered through the new ring; False when it is
    junk: what no correct member re-broadcasts, so ``pusher``, whose signed
    frame carried it, is the one to blame."""
    old = engine.store
    if old is None or engine.plan is None:
        return True
    try:
        frame = decode(raw)
    except WireError as exc:
        engine.drops[f"{Drop.RECOVERED}:{exc.reason}"] += 1
        return False
    if not _owed(engine, pusher, frame, raw):
        return False
    if frame.ring != old.ring:
        return True  # another old ring's recovery: not ours to deliver
    body = frame.body
    if isinstance(body, Token):
        return _absorb_token(engine, old, frame, body, raw)
    return _absorb_data(engine, old, frame, raw)


def _owed(engine: Engine, pusher: int, frame: Frame, raw: bytes) -> bool:
    """Whether ``pusher`` could be correct re-broadcasting ``frame`` (False
    counted): a correct member re-broadcasts only tokens and frames of its
    own old ring (its commit entry's) that it verified and stored, each
    once, and of its frames only those in the plan's range that the plan
    gives it (recovery._enter_recovery). Items of another transitional
    set's ring are judged by that set."""
    watch, plan = engine.detector.tokens, engine.plan
    assert plan is not None
    entry = watch.recovery_entries.get(pusher)
    if entry is None or frame.ring != entry.old_ring:
        engine.drops[Drop.RECOVERED_FOREIGN] += 1
        return False
    if frame.ring != plan.old_ring:
        return True
    if watch.recovered_again(pusher, engine.digest(raw)):
        engine.drops[Drop.RECOVERED_REPEAT] += 1
        return False
    body = frame.body
    if isinstance(body, DataFrame) and not (
        plan.low_aru < body.seq <= plan.high_seq
        and plan.responsible(body.seq, pusher, watch.recovery_entries, engine.detector.f)
    ):
        engine.drops[Drop.RECOVERED_NOT_OWED] += 1
        return False
    return True


def _absorb_data(engine: Engine, old: RingStore, frame: Frame, raw: bytes) -> bool:
    body = frame.body
    if not isinstance(body, DataFrame) or body.seq <= old.aru:
        return True  # a frame we hold: another member sent it as well
    if body.seq in old.frames:
        versions.keep_spare(old, body.seq, engine.digest(raw), frame, raw)
        return True
    return accept(engine, old, frame, raw)


def _absorb_token(engine: Engine, old: RingStore, frame: Frame, tk: Token, raw: bytes) -> bool:
    if not (
        frame.sender in engine.members
        and engine.security.verify(frame.sender, signing_bytes(frame), frame.signature)
    ):
        engine.drops[Drop.RECOVERED_BAD_TOKEN] += 1
        return False
    old.vouch_recovered(frame.sender, tk.aru)
    for version, version_raw in versions.admit(engine, old, frame, raw, recovered=True):
        confirm(engine, old, version, version_raw)
    return True


def finish(engine: Engine) -> None:
    """Recovery complete: deliver the old ring per EVS, install the new one."""
    assert engine.pending is not None and engine.new_store is not None
    unpack_ready(engine)
    if engine.state is not State.RECOVERY:
        return  # a recovered old token proved an equivocation: a new round
    ring, members = engine.pending
    plan, old, view = engine.plan, engine.store, engine.view
    if plan is not None and old is not None and view is not None and engine.ring is not None:
        # Old tokens only the stream vouched for, alike at every member.
        agreed = versions.agreed_refs(old)  # before chosen() clears the versions
        for frame, raw in versions.chosen(old):
            confirm(engine, old, frame, raw)
        for ref in agreed:
            old.confirm(ref.seq, ref.digest)
        for frame, raw in versions.spare_frames(old):
            accept(engine, old, frame, raw)
        # Safe frames in the old regular view only up to what some member
        # delivered there (Totem) and every member signed it held: the
        # first is a claim, the second a proof, the same at every survivor.
        upto = min(plan.deliver_upto, old.vouched_cut(engine.members))
        while old.is_confirmed(old.delivered + 1):
            seq = old.delivered + 1
            item = old.frames[seq]
            entries = item.entries or ()
            if seq > upto and any(e.safe and not e.recovered for e in entries):
                break
            deliver_entries(engine, view, seq, item.frame.sender, entries)
            old.delivered = seq
        trans = transitional_view_id(ring, engine.ring)
        engine.emit_view(trans, "transitional", plan.trans)
        for seq in sorted(s for s in old.frames if s > old.delivered and old.is_confirmed(s)):
            item = old.frames[seq]
            deliver_entries(engine, trans, seq, item.frame.sender, item.entries or ())
    engine.install(ring, members, engine.new_store)
