"""Flow control: how many new frames the token's holder may send.

Totem's window: ``fcc`` on the token counts the frames (new and
retransmitted) the members sent in the last rotation, and a holder sends at
most ``window_size`` minus what the others sent, ``max_messages`` per visit,
never more than half the receive window past what every member has; when the
members' queued frames (``backlog``) exceed the window, each gets its share.
Both fields are claims of other members: a holder believes of them only what
one visit could add (docs/protocol.md, "Validity rules"), so one liar moves
its window by ``max_messages`` at most.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ringward.engine.engine import Engine
    from ringward.engine.ringstore import RingStore
    from ringward.engine.sendqueue import SendQueue
    from ringward.engine.tokenstate import Holder
    from ringward.wire import Token

__all__ = ["budget", "others_backlog", "others_fcc"]


def budget(engine: Engine, tk: Token, store: RingStore, queue: SendQueue, sent: int, n: int) -> int:
    """New frames the holder of ``tk`` may send, having re-sent ``sent``."""
    cfg = engine.config
    me = engine.tokens.holder
    window_left = cfg.window_size - others_fcc(me, tk, cfg.max_messages, n) - sent
    pv = me.prev_visit
    if pv is not None and pv.seq == tk.seq:
        # A whole rotation sent nothing new: one frame cannot overload
        # anyone, and an fcc claim (retransmissions nobody can check) must
        # not hold a queue back for good (token._recovery_complete relies
        # on it).
        window_left = max(window_left, 1)
    # Never run further than half the receive window ahead of what every
    # member has: the bound that keeps every member's buffers finite.
    room = min(tk.aru, store.aru) + cfg.receive_window_frames_max // 2 - tk.seq
    out = min(cfg.max_messages - sent, window_left, room)
    # Totem's fairness: share the window by backlog, each member's demand
    # counted up to what one visit may send.
    mine = min(queue.frames_pending, cfg.max_messages)
    total = others_backlog(me, tk, cfg.max_messages, n) + mine
    if total > cfg.window_size and mine:
        out = min(out, max(1, cfg.window_size * mine // total))
    return max(0, out)


def others_fcc(ts: Holder, tk: Token, max_messages: int, n: int) -> int:
    """Frames the other members sent in the last rotation, as far as a liar
    cannot inflate it: their new frames are the seqs the signed chain
    assigned since our last visit; of the retransmissions they claim (no
    signed trace), at most ``max_messages`` are believed. One member's fcc
    lie then moves our window by at most that, as a member retransmitting
    at its limit would (docs/protocol.md, "Validity rules")."""
    claimed = max(0, tk.fcc - ts.my_fcc)
    pv = ts.prev_visit
    if pv is None or tk.seq < pv.seq:
        return min(claimed, (n - 1) * max_messages)  # our first visit of the ring
    return min(claimed, tk.seq - pv.seq + max_messages)


def others_backlog(ts: Holder, tk: Token, max_messages: int, n: int) -> int:
    """The other members' backlog, each one's demand counted up to one
    visit's frames: a liar claiming an endless queue weighs what a member
    with a full queue does."""
    return min(max(0, tk.backlog - ts.my_backlog), (n - 1) * max_messages)
