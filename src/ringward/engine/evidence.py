"""Proofs: a member's own signed statements that convict it.

Pure functions over decoded frames; no engine state. A proof is checked by
anyone alone, given the signature check and (for the rules that need it) the
membership of the ring the statements belong to. The proof kinds
(docs/fault-detector.md):

* ``equivocation`` - two different tokens signed by the target for one
  position (ring, hop) of the chain;
* ``rule:<name>`` - a token signed by the target whose transition from its
  predecessor (signed by the predecessor's maker, hash-linked by the
  target's ``prev``) breaks a Totem rule; or, for ``rule:turn`` and
  ``rule:succ``, one token the target was not entitled to make;
* ``rule:<static rule>`` (validate.STATIC_RULES) - one statement signed by
  the target that no correct node makes (a ring seq, hop or seq past its
  limit, an impossible commit entry, ...);
* ``overload`` - ``overload_reports`` tokens or joins (distinct positions:
  a token's ring and hop, a join's ring and ``ring_seq``, so the joins a
  node re-sends in one membership round count once; possibly of several
  rings: an overloaded node makes tokens get lost, but rings no more than
  ``OVERLOAD_RING_SPAN`` apart: a sustained overload, not reports collected
  over hours) in which the target reported, signed, a load past the
  configured limits.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final, NamedTuple

from ringward.engine import validate
from ringward.engine.config import EngineConfig
from ringward.engine.sendqueue import frames_pending_max
from ringward.wire import Frame, Join, Kind, LoadReport, Proof, RingId, Token, encode, limits

__all__ = [
    "OVERLOAD_RING_SPAN",
    "TRANSITION_RULES",
    "backlog_step_max",
    "check_proof",
    "embeds",
    "overload_statements",
    "overloaded",
    "oversized",
    "producer",
    "report_position",
    "successor",
    "transition_rule",
]

# How far apart (in ring seq) the reports of one overload proof may be: 16
# ring changes, far more than the token losses of one overload cause (its
# reports are at most 2 * overload_reports - 1 visits apart). Reports kept
# from rings long gone are no sustained overload; proofs of rings that far
# behind what a node knows are not acted on (accusations.on_proof), which
# holds across a restart because the ring seq is persisted.
OVERLOAD_RING_SPAN: Final = 16 * validate.RING_SEQ_STEP

# (frame) -> whether its signature is its sender's.
Verify = Callable[[Frame], bool]
# (ring) -> that ring's members in order, when this node knows them.
MembersOf = Callable[[RingId], Sequence[int] | None]


def digest(raw: bytes) -> bytes:
    return hashlib.blake2b(raw, digest_size=limits.DIGEST_BYTES).digest()


def producer(members: Sequence[int], hop: int) -> int:
    """The member that makes the token at ``hop`` (hop 1 is the
    representative's first visit)."""
    return members[(hop - 1) % len(members)]


def successor(members: Sequence[int], node: int) -> int:
    return members[(members.index(node) + 1) % len(members)]


def overloaded(load: LoadReport, cfg: EngineConfig) -> bool:
    """Whether a signed load report is past the configured limits."""
    return (
        load.rx_queue >= cfg.overload_rx_queue
        or load.hold_ms >= cfg.overload_hold_ms
        or load.memory_permille >= cfg.overload_memory_permille
    )


def oversized(tk: Token, cfg: EngineConfig) -> bool:
    """More retransmission requests or new frames than one visit may carry
    (the wire format allows more; a correct holder never exceeds the
    cluster's configuration). Bounds every token, so every proof."""
    return len(tk.rtr) > cfg.rtr_entries_max or len(tk.frames) > cfg.max_messages


# Transition rules, by the proof kind (``rule:<name>``) a violation makes.
TRANSITION_RULES: Final = ("seq", "frames", "aru", "aru_id", "fcc", "backlog")


def backlog_step_max(cfg: EngineConfig) -> int:
    """The most a correct holder adds to the backlog: everything its send
    queue (or, recovering, its recovery queue) can hold."""
    return max(
        frames_pending_max(cfg.datagram_bytes_max, cfg.send_queue_max, cfg.payload_bytes_max),
        frames_pending_max(
            cfg.datagram_bytes_max, cfg.receive_window_frames_max, limits.DATAGRAM_BYTES_MAX
        ),
    )


def transition_rule(prev: Token, tk: Token, maker: int, cfg: EngineConfig) -> str | None:
    """The Totem rule ``maker`` broke turning the token ``prev`` into ``tk``
    at its visit (``tk`` links to ``prev``), or None. Every rule is one the
    holder's visit (token.visit) obeys by construction:

    * ``seq`` - the seq never goes back;
    * ``frames`` - the holder lists exactly the frames it originated, which
      take the seqs right after the previous token's;
    * ``aru`` - the aru never exceeds the seq, and only rises when the holder
      itself set it last (or everyone had everything, aru_id 0);
    * ``aru_id`` - names the previous setter, the holder, or nobody (0, only
      when the aru covers the seq); the holder when it lowered the aru;
    * ``fcc`` - the holder adds at most one visit's frames (``max_messages``,
      new and retransmitted) and counts at least the new frames it lists;
    * ``backlog`` - the holder adds at most what its queue can hold
      (``backlog_step_max``).
    """
    return _order_rule(prev, tk, maker) or _flow_rule(prev, tk, cfg)


def _order_rule(prev: Token, tk: Token, maker: int) -> str | None:
    if tk.hop != prev.hop + 1 or tk.seq < prev.seq:
        return "seq"
    # Compared without building the claimed range: its length is a claim.
    if len(tk.frames) != tk.seq - prev.seq or any(
        ref.seq != prev.seq + 1 + i for i, ref in enumerate(tk.frames)
    ):
        return "frames"
    if tk.aru > tk.seq or (tk.aru > prev.aru and prev.aru_id not in (0, maker)):
        return "aru"
    if tk.aru_id not in (0, maker, prev.aru_id) or (tk.aru_id == 0 and tk.aru < tk.seq):
        return "aru_id"
    if tk.aru < prev.aru and tk.aru_id != maker:
        return "aru_id"  # who lowers the aru holds it: it cannot name another
    return None


def _flow_rule(prev: Token, tk: Token, cfg: EngineConfig) -> str | None:
    if tk.fcc < len(tk.frames) or tk.fcc > prev.fcc + cfg.max_messages:
        return "fcc"
    if tk.backlog > prev.backlog + backlog_step_max(cfg):
        return "backlog"
    return None


def _static(proof: Proof, ctx: _Ctx) -> bool:
    """``rule:<name>`` of validate.STATIC_RULES: one statement of the target
    that is impossible on its own."""
    (st,) = proof.statements
    return st.sender == proof.target and f"rule:{validate.static_rule(st, ctx.cfg)}" == proof.kind


def _tokens(statements: Sequence[Frame]) -> list[Token] | None:
    out = [s.body for s in statements if s.kind is Kind.TOKEN and isinstance(s.body, Token)]
    return out if len(out) == len(statements) else None


def _equivocation(proof: Proof, tokens: list[Token], ctx: _Ctx) -> bool:
    a, b = proof.statements
    return (
        a.sender == b.sender == proof.target
        and tokens[0].hop == tokens[1].hop
        and encode(a) != encode(b)
    )


class ReportPosition(NamedTuple):
    """Where a load report stands: one per token visit, one per membership
    round for joins (``kind`` "hop" or "join", ``at`` the hop or the join's
    ``ring_seq``)."""

    ring: RingId
    kind: str
    at: int


def report_position(frame: Frame) -> ReportPosition:
    body = frame.body
    if isinstance(body, Token):
        return ReportPosition(frame.ring, "hop", body.hop)
    assert isinstance(body, Join)
    return ReportPosition(frame.ring, "join", body.ring_seq)


def embeds(frame: Frame) -> bool:
    """Whether a statement carries frames of its own (a join's evidence):
    a join carries only proofs whose statements embed nothing."""
    body = frame.body
    return isinstance(body, Join) and bool(body.proofs or body.accusations)


def _load_of(frame: Frame) -> LoadReport | None:
    body = frame.body
    return body.load if isinstance(body, (Token, Join)) else None


def overload_statements(over: Sequence[Frame], cfg: EngineConfig) -> tuple[Frame, ...] | None:
    """From a member's reports over the limits that we saw (oldest first),
    ``overload_reports`` that prove its overload, if they do: one of them
    must say the member itself counted that many of its last 2k - 1
    reports over (``recent_over``), so that reports far apart (a pause now
    and then) convict nobody."""
    k = cfg.overload_reports
    said = [load.recent_over if (load := _load_of(f)) is not None else -1 for f in over]
    if len(over) < k or max(said) < k:
        return None
    best = said.index(max(said))
    rest = [f for i, f in enumerate(over) if i != best]
    return (over[best], *rest[len(rest) - (k - 1) :])


def _overload(proof: Proof, ctx: _Ctx) -> bool:
    st = proof.statements
    loads = [load for s in st if (load := _load_of(s)) is not None]
    seqs = [s.ring.seq for s in st]
    return (
        len(st) == ctx.cfg.overload_reports
        and len(loads) == len(st)
        and max(seqs) - min(seqs) <= OVERLOAD_RING_SPAN
        and all(s.sender == proof.target for s in st)
        and len({report_position(s) for s in st}) == len(st)
        and all(overloaded(load, ctx.cfg) for load in loads)
        and max(load.recent_over for load in loads) >= ctx.cfg.overload_reports
    )


def _turn_or_succ(proof: Proof, tokens: list[Token], ctx: _Ctx) -> bool:
    (st,), target = proof.statements, proof.target
    members = ctx.members_of(st.ring)
    if st.sender != target or not members or target not in members:
        return False
    if proof.kind == "rule:turn":
        # Hop 0 is nobody's turn (the ring's first token is hop 1): the
        # same rule as the maker of the proof applies (faults._broken_rule).
        return tokens[0].hop < 1 or producer(members, tokens[0].hop) != target
    return tokens[0].succ != successor(members, target)


def _size(proof: Proof, tokens: list[Token], ctx: _Ctx) -> bool:
    (st,) = proof.statements
    return st.sender == proof.target and oversized(tokens[0], ctx.cfg)


def _transition(proof: Proof, tokens: list[Token], ctx: _Ctx) -> bool:
    before, after = proof.statements
    if after.sender != proof.target or digest(encode(before)) != tokens[1].prev:
        return False
    rule = transition_rule(tokens[0], tokens[1], proof.target, ctx.cfg)
    return rule is not None and f"rule:{rule}" == proof.kind


@dataclass(frozen=True, slots=True)
class _Ctx:
    members_of: MembersOf
    cfg: EngineConfig


# kind -> (statements it takes, check); overload is checked apart.
_CHECKS: dict[str, tuple[int, Callable[[Proof, list[Token], _Ctx], bool]]] = {
    "equivocation": (2, _equivocation),
    "rule:turn": (1, _turn_or_succ),
    "rule:succ": (1, _turn_or_succ),
    "rule:size": (1, _size),
    **{f"rule:{name}": (2, _transition) for name in TRANSITION_RULES},
}


def check_proof(
    proof: Proof, verify: Verify, members_of: MembersOf, cfg: EngineConfig
) -> str | None:
    """The reason ``proof`` convicts ``proof.target`` of, or None when it
    proves nothing (unknown kind, wrong shape, a bad signature, statements
    of several rings, no rule broken)."""
    st = proof.statements
    if proof.kind.startswith("rule:") and proof.kind[5:] in validate.STATIC_RULES:
        if len(st) != 1 or not verify(st[0]):
            return None
        return proof.kind if _static(proof, _Ctx(members_of, cfg)) else None
    if proof.kind == "overload":
        # Of several rings (the token losses an overload causes), tokens
        # or joins.
        ctx = _Ctx(members_of, cfg)
        return proof.kind if _overload(proof, ctx) and all(verify(s) for s in st) else None
    entry = _CHECKS.get(proof.kind)
    tokens = _tokens(st)
    if (
        entry is None
        or tokens is None
        or len(st) != entry[0]
        or any(s.ring != st[0].ring for s in st)
        or not all(verify(s) for s in st)
    ):
        return None
    return proof.kind if entry[1](proof, tokens, _Ctx(members_of, cfg)) else None
