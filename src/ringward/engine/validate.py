"""Validity rules: what the signer of a statement could legitimately have said.

A signature proves who said something, never that it is true. Every signed
frame passes :func:`check` after its signature and before any handler acts
on it (engine.receive), so no handler trusts an integer it reads. The rules
are listed, with their reasons, in docs/protocol.md ("Validity rules").

Two kinds of rule:

* **Static** (:func:`static_rule`): the statement alone, plus the cluster's
  configuration (the same at every node: it is in the signed roster), shows
  it is impossible. A correct node never signs one — each bound below is one
  its own code cannot exceed — so a violation convicts its signer: the
  statement is a proof (``rule:<name>``) that anyone checks alone
  (evidence.check_proof).
* **Dynamic**: the bound depends on what this node knows (the ring seqs it
  heard, the token hops of its ring). Another node, knowing other things,
  may judge differently, so a violation proves nothing: the frame is dropped
  and counted (``invalid:<name>``). Where a second signed statement does
  convict (a token whose ``prev`` names a token of another position), the
  pair is the proof.

Bounds are chosen so that arithmetic on a valid value never leaves its wire
width anywhere (a ring seq + RING_SEQ_STEP, a hop + 1, a crypto context's
8-byte seq): every limit is far below the width and far above what a
correct node reaches (2^62 rings at one per millisecond is 146 million
years).
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from ringward.engine.config import EngineConfig
from ringward.wire import (
    Accusation,
    CommitMember,
    CommitToken,
    Frame,
    Join,
    LoadReport,
    RingId,
    Token,
    TokenRequest,
    limits,
)

if TYPE_CHECKING:
    from ringward.engine.engine import Engine

__all__ = [
    "HOP_LIMIT",
    "MEMORY_PERMILLE_MAX",
    "RING_SEQ_JUMP_MAX",
    "RING_SEQ_LIMIT",
    "RING_SEQ_STEP",
    "RING_START_PREV",
    "SEQ_LIMIT",
    "STATIC_RULES",
    "Invalid",
    "check",
    "static_rule",
]

# Ring sequence numbers advance by 4 per new ring, as in Totem.
RING_SEQ_STEP: Final = 4
# Highest ring seq any statement may carry (u64 on the wire).
RING_SEQ_LIMIT: Final = 1 << 62
# Highest frame seq of one ring, and highest token hop (u64 on the wire).
SEQ_LIMIT: Final = 1 << 62
HOP_LIMIT: Final = 1 << 62
# What the first token of a ring names as its predecessor: the digest of
# nothing (engine/chain.py).
RING_START_PREV: Final = hashlib.blake2b(b"", digest_size=limits.DIGEST_BYTES).digest()
# How far past the highest ring seq we know of (ours, or the sender's last
# signed one) a statement may name: 2^32 / RING_SEQ_STEP rings formed out of
# our sight. Further is not adopted, so one liar cannot walk the cluster to
# the end of the space (it needs 2^30 rounds per 2^32).
RING_SEQ_JUMP_MAX: Final = 1 << 32
# memory_permille = frames held * 1000 // receive window, and a store holds
# at most a window of frames (ringstore.RingStore.add).
MEMORY_PERMILLE_MAX: Final = 1000

# Static rules, by the proof kind (``rule:<name>``) that a violation makes.
STATIC_RULES: Final = (
    "ring_seq",
    "hop",
    "token_seq",
    "load",
    "commit_shape",
    "commit_ring_seq",
    "commit_entry",
    "join_cause",
)


@dataclass(frozen=True, slots=True)
class Invalid:
    """Why a signed frame is not acted on. ``proof`` is set when signed
    statements convict the sender: the proof kind and its statements."""

    rule: str
    proof: tuple[str, tuple[Frame, ...]] | None = None


def static_rule(frame: Frame, cfg: EngineConfig) -> str | None:
    """The static rule ``frame`` breaks (module docstring), or None."""
    if frame.ring.seq > RING_SEQ_LIMIT:
        return "ring_seq"
    body = frame.body
    if isinstance(body, Token):
        return _token_rule(body) or _load_rule(body.load, cfg)
    if isinstance(body, Join):
        return _join_rule(frame, body) or _load_rule(body.load, cfg)
    if isinstance(body, CommitToken):
        return _commit_rule(frame.ring, body, cfg)
    if isinstance(body, Accusation | TokenRequest) and body.hop > HOP_LIMIT:
        return "hop"
    return None


def _join_rule(frame: Frame, j: Join) -> str | None:
    # A join carries the sender's highest ring seq, which is at least its
    # current ring's (the header's); its round was started by another
    # node's join or by itself (0), never by itself named.
    if j.ring_seq > RING_SEQ_LIMIT or j.ring_seq < frame.ring.seq:
        return "ring_seq"
    return "join_cause" if j.cause == frame.sender else None


def _token_rule(tk: Token) -> str | None:
    # The first token of a ring (hop 1) links to the empty chain, and only
    # it does (engine/chain.py).
    if tk.hop > HOP_LIMIT or (tk.hop != 1 and hmac.compare_digest(tk.prev, RING_START_PREV)):
        return "hop"
    # The holder assigns seqs: the aru, the requests it carries and the
    # frames it lists are all at or below its seq.
    if (
        tk.seq > SEQ_LIMIT
        or tk.aru > tk.seq
        or (tk.rtr and tk.rtr[-1] > tk.seq)
        or any(ref.seq > tk.seq for ref in tk.frames)
    ):
        return "token_seq"
    return None


def _load_rule(load: LoadReport, cfg: EngineConfig) -> str | None:
    # A store holds at most a window of frames; a count of our own last
    # 2k - 1 reports is at most 2k - 1.
    if (
        load.memory_permille > MEMORY_PERMILLE_MAX
        or load.recent_over > 2 * cfg.overload_reports - 1
    ):
        return "load"
    return None


def _commit_rule(ring: RingId, ct: CommitToken, cfg: EngineConfig) -> str | None:
    """A commit token rotates twice around the ``len(cert)`` members: hop
    ``k`` holds ``min(k, n)`` entries (recovery.py); the representative took
    a ring seq above every certified join's; each entry is its member's own
    old-ring store, bounded as ``_entry_rule`` says."""
    n = len(ct.cert)
    if n == 0:
        return None  # no certificate: refused by recovery.on_commit
    if ct.hop > 2 * n or len(ct.members) != min(ct.hop, n):
        return "commit_shape"
    top = max((j.body.ring_seq for j in ct.cert if isinstance(j.body, Join)), default=0)
    if ring.seq < top + RING_SEQ_STEP:
        return "commit_ring_seq"
    if any(_entry_rule(e, ring, cfg) for e in ct.members):
        return "commit_entry"
    return None


def _entry_rule(e: CommitMember, ring: RingId, cfg: EngineConfig) -> bool:
    """Whether a member entry is impossible (Engine.commit_entry makes it
    from a RingStore): delivered frames are received (high_delivered <= aru),
    the aru is a received prefix (aru <= high_seq), a store accepts frames
    only up to a window past its aru (high_seq <= aru + window), the flag is
    ``aru == high_seq``, the old ring precedes the new one, and a node with
    no ring yet reports nothing."""
    if not e.high_delivered <= e.aru <= e.high_seq <= e.aru + cfg.receive_window_frames_max:
        return True
    if e.high_seq > SEQ_LIMIT or e.received_flg != (e.aru == e.high_seq):
        return True
    if e.old_ring.seq >= ring.seq:
        return True
    return e.old_ring.seq == 0 and (e.old_ring.rep != e.node or e.high_seq != 0)


def check(engine: Engine, frame: Frame) -> Invalid | None:
    """Whether ``engine`` may act on the signed, verified ``frame``."""
    rule = static_rule(frame, engine.config)
    if rule is not None:
        return Invalid(rule, (f"rule:{rule}", (frame,)) if _provable(frame) else None)
    known = max(engine.ring_seq_max, engine.seq_heard.get(frame.sender, 0))
    claimed = frame.body.ring_seq if isinstance(frame.body, Join) else frame.ring.seq
    if claimed > known + RING_SEQ_JUMP_MAX:
        return Invalid("ring_seq_jump")
    if isinstance(frame.body, Join) and not {
        *frame.body.proc,
        *frame.body.fail,
        *((frame.body.cause,) if frame.body.cause else ()),
    } <= set(engine.roster):
        # Only roster nodes can ever answer: a round would wait for the
        # others until its consensus timer failed them.
        return Invalid("join_unknown_node")
    if isinstance(frame.body, Token):
        return _token_hop(engine, frame, frame.body)
    return None


def _provable(frame: Frame) -> bool:
    # A proof's statements may be tokens, joins and commits (wire schema).
    return isinstance(frame.body, Token | Join | CommitToken)


def _token_hop(engine: Engine, frame: Frame, tk: Token) -> Invalid | None:
    """A newer token of the ring we follow is not behind our aru, and cannot
    pass our own next turn: hop
    ``h`` is made by ``members[(h-1) % n]`` and only after hop ``h-1``, so
    nobody makes a hop beyond ``n-1`` past the last token we made (or, before
    our first, beyond the hops of the members before us)."""
    cur = engine.active()
    if cur is None or frame.ring != cur.ring:
        return None
    members, store = cur.members, cur.store
    if engine.node_id not in members:
        return None
    if tk.hop > engine.tokens.hops.seen and tk.seq < store.aru:
        # Seqs never go back along the chain, and our aru is made of frames
        # that tokens of earlier hops listed: a newer token is at least there.
        return Invalid("seq_behind")
    return _hop_ahead(engine, frame, tk, members)


def _hop_ahead(engine: Engine, frame: Frame, tk: Token, members: tuple[int, ...]) -> Invalid | None:
    ts = engine.tokens.links
    n = len(members)
    done = engine.tokens.hops.done
    bound = done + n if done >= 0 else members.index(engine.node_id)
    if tk.hop <= bound:
        return None
    # It links to a token we hold of another position: that pair convicts
    # its maker (the transition rule ``seq``: a hop is its predecessor's + 1).
    if ts.link_frame is not None and ts.link_digest == tk.prev and ts.linked + 1 != tk.hop:
        return Invalid("hop_ahead", ("rule:seq", (ts.link_frame, frame)))
    for raw, held in engine.detector.tokens.raw_at.values():
        prev = held.body
        if isinstance(prev, Token) and prev.hop + 1 != tk.hop and engine.digest(raw) == tk.prev:
            return Invalid("hop_ahead", ("rule:seq", (held, frame)))
    return Invalid("hop_ahead")
