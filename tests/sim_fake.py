"""A toy sequencer engine for testing the simulator without the real engine.

NOT a protocol: the lowest roster id assigns sequence numbers and broadcasts;
everyone delivers in sequence order. It keeps the engine's sans-IO interface
(receive / tick / submit / ready) so the world can drive it, and is correct
only on a network that loses nothing (duplicates and reordering are fine).
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

from ringward.engine.api import Delivered, MessageId, Outgoing, Ready, ViewInstalled
from ringward.errors import StateError

# kind(1) sender(2) msg_no(8) seq(8) safe(1), then the payload.
_HEAD = struct.Struct(">cHQQ?")
HEARTBEAT_S = 0.1


class SequencerEngine:
    """Lowest id sequences; everyone delivers in seq order; heartbeats on tick."""

    def __init__(
        self,
        node_id: int,
        members: Sequence[int],
        *,
        incarnation: int = 0,
        now: float = 0.0,
        send_queue_max: int = 1_000_000,
    ) -> None:
        self.node_id = node_id
        self.members = tuple(members)
        self.incarnation = incarnation
        self.sequencer = min(self.members)
        self.view = "v0"
        self.drops: dict[str, int] = {}
        self.received: list[tuple[float, bytes]] = []
        self.ticks: list[float] = []
        self._next_msg = incarnation << 32
        self._next_seq = 1  # sequencer: next seq to assign
        self._deliver_next = 1  # everyone: next seq to deliver
        self._pending: dict[int, tuple[int, int, bool, bytes]] = {}
        # Sequencer: per sender, the next msg_no to sequence and those early.
        self._expect: dict[int, int] = {}
        self._early: dict[tuple[int, int], tuple[bool, bytes]] = {}
        self._send_queue_max = send_queue_max
        self._out = Ready(deadline=now + HEARTBEAT_S)
        self._out.events.append(ViewInstalled(self.view, "regular", self.members, True))

    def submit(self, now: float, payload: bytes, safe: bool = False) -> MessageId:
        if len(self._pending) >= self._send_queue_max:
            raise StateError("backpressure", "send queue full")
        msg_no = self._next_msg
        self._next_msg += 1
        if self.node_id == self.sequencer:
            self._sequence(self.node_id, msg_no, safe, payload)
        else:
            frame = _HEAD.pack(b"S", self.node_id, msg_no, 0, safe) + payload
            self._out.datagrams.append(Outgoing(self.sequencer, frame))
        return MessageId(self.node_id, msg_no)

    def receive(self, now: float, datagram: bytes, source: object = None) -> None:
        self.received.append((now, datagram))
        if len(datagram) < _HEAD.size:
            self.drops["short"] = self.drops.get("short", 0) + 1
            return
        kind, sender, msg_no, seq, safe = _HEAD.unpack_from(datagram)
        payload = datagram[_HEAD.size :]
        if kind == b"S" and self.node_id == self.sequencer:
            self._submitted(sender, msg_no, safe, payload)
        elif kind == b"D" and seq >= self._deliver_next:
            self._pending[seq] = (sender, msg_no, safe, payload)
            self._deliver_ready()
        elif kind == b"D":
            self.drops["duplicate"] = self.drops.get("duplicate", 0) + 1
        elif kind != b"H":
            self.drops["unexpected"] = self.drops.get("unexpected", 0) + 1

    def tick(self, now: float) -> None:
        self.ticks.append(now)
        self._out.datagrams.append(Outgoing(None, _HEAD.pack(b"H", self.node_id, 0, 0, False)))
        self._out.deadline = now + HEARTBEAT_S

    def ready(self) -> Ready:
        out = self._out
        self._out = Ready(deadline=out.deadline)
        return out

    def _submitted(self, sender: int, msg_no: int, safe: bool, payload: bytes) -> None:
        # Duplicates dropped, reordered submissions put back in sender order.
        expect = self._expect.setdefault(sender, msg_no >> 32 << 32)
        if msg_no < expect:
            return
        self._early[(sender, msg_no)] = (safe, payload)
        while (sender, expect) in self._early:
            safe, payload = self._early.pop((sender, expect))
            self._sequence(sender, expect, safe, payload)
            expect += 1
        self._expect[sender] = expect

    def _sequence(self, sender: int, msg_no: int, safe: bool, payload: bytes) -> None:
        seq = self._next_seq
        self._next_seq += 1
        frame = _HEAD.pack(b"D", sender, msg_no, seq, safe) + payload
        self._out.datagrams.append(Outgoing(None, frame))
        self._pending[seq] = (sender, msg_no, safe, payload)
        self._deliver_ready()

    def _deliver_ready(self) -> None:
        while self._deliver_next in self._pending:
            seq = self._deliver_next
            sender, msg_no, safe, payload = self._pending.pop(seq)
            self._deliver_next += 1
            msg_id = MessageId(sender, msg_no)
            self._out.events.append(Delivered(self.view, seq, msg_id, payload, safe))


def sequencer_factory(
    node: int, roster: tuple[int, ...], incarnation: int, now: float, ring_seq: int = 0
) -> SequencerEngine:
    """An EngineFactory building :class:`SequencerEngine`."""
    return SequencerEngine(node, roster, incarnation=incarnation, now=now)


class SpinningEngine(SequencerEngine):
    """Always asks for a tick right now: the world must not spin on it."""

    def ready(self) -> Ready:
        out = super().ready()
        out.deadline = self.ticks[-1] if self.ticks else 0.0
        return out


class RaisingEngine(SequencerEngine):
    """Raises on its third datagram: an engine bug the world must report."""

    def receive(self, now: float, datagram: bytes, source: object = None) -> None:
        super().receive(now, datagram, source)
        if len(self.received) >= 3:
            raise IndexError("engine bug")


class DuplicatingEngine(SequencerEngine):
    """Node 2 delivers every message twice: breaks guarantee 2."""

    def _deliver_ready(self) -> None:
        before = len(self._out.events)
        super()._deliver_ready()
        if self.node_id == 2:
            self._out.events.extend(self._out.events[before:])
