"""The sender side of ordering: queued payloads packed into frame batches.

Small payloads share a frame (batching); a payload larger than one frame is
cut into fixed-size fragments, one per frame, sharing its ``msg_no``. The
queue is FIFO and a fragmented payload occupies its head until its last
fragment is out, so a sender's messages — and a message's fragments — reach
the ring in submission order (sender FIFO).

A payload counts as *sent* once its last fragment has a sequence number. If
the ring changes while a payload is half-sent, :meth:`SendQueue.rewind`
restarts it from fragment 0 in the next ring; receivers drop incomplete
assemblies at every configuration change, so it is delivered once.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ringward.errors import ConfigError, StateError
from ringward.wire import limits
from ringward.wire.batch import COUNT, ENTRY_HEADER, BatchEntry, new_entry
from ringward.wire.frame import DATA_PREFIX, HEADER

if TYPE_CHECKING:
    from ringward.engine.config import EngineConfig

__all__ = ["SendQueue", "batch_capacity", "frames_pending_max"]


def batch_capacity(datagram_bytes_max: int) -> int:
    """Plaintext bytes a DATA frame of at most ``datagram_bytes_max`` can carry."""
    return datagram_bytes_max - HEADER.size - DATA_PREFIX.size - limits.AEAD_TAG_BYTES


def frames_pending_max(datagram_bytes_max: int, queue_max: int, payload_bytes_max: int) -> int:
    """The most frames a queue so configured can have pending (every
    payload at its maximum, fragmented)."""
    chunk = batch_capacity(datagram_bytes_max) - COUNT.size - ENTRY_HEADER.size
    return queue_max * max(1, -(-payload_bytes_max // max(1, chunk)))


@dataclass(slots=True)
class _Pending:
    msg_no: int
    payload: bytes
    safe: bool
    recovered: bool
    frag_count: int
    next_frag: int = 0


class SendQueue:
    """Payloads waiting for token visits (bounded: ``queue_max`` payloads,
    and ``bytes_max`` payload bytes give or take the last payload taken)."""

    def __init__(
        self,
        datagram_bytes_max: int,
        queue_max: int,
        payload_bytes_max: int,
        bytes_max: int | None = None,
    ) -> None:
        self.capacity = batch_capacity(datagram_bytes_max)
        # One fragment fills a frame on its own.
        self.chunk = self.capacity - COUNT.size - ENTRY_HEADER.size
        if self.chunk < 64:
            raise ConfigError("bad_config", "datagram_bytes_max leaves no room for payload")
        self.queue_max = queue_max
        self.payload_bytes_max = payload_bytes_max
        self.bytes_max = bytes_max
        self._queue: deque[_Pending] = deque()
        self._frames_pending = 0
        self._bytes = 0

    @classmethod
    def for_sending(cls, cfg: EngineConfig) -> SendQueue:
        """The application's send queue under ``cfg``'s bounds."""
        return cls(
            cfg.datagram_bytes_max,
            cfg.send_queue_max,
            cfg.payload_bytes_max,
            cfg.send_queue_bytes_max,
        )

    def __len__(self) -> int:
        return len(self._queue)

    def has_room(self) -> bool:
        """Whether :meth:`push` takes another payload (of any allowed size:
        the byte bound is checked before it, so one large payload always
        fits an emptier queue)."""
        return len(self._queue) < self.queue_max and (
            self.bytes_max is None or self._bytes < self.bytes_max
        )

    @property
    def frames_pending(self) -> int:
        """Frames still needed for everything queued (an upper bound); the
        backlog Totem's flow control shares the window by."""
        return self._frames_pending

    def push(self, msg_no: int, payload: bytes, *, safe: bool, recovered: bool = False) -> None:
        """Queue one payload (raises StateError when full, ConfigError when
        larger than the configured maximum)."""
        if len(payload) > self.payload_bytes_max and not recovered:
            raise ConfigError(
                "payload_too_large", f"{len(payload)} bytes > {self.payload_bytes_max}"
            )
        if not self.has_room():
            raise StateError(
                "backpressure",
                f"send queue full ({len(self._queue)} payloads, {self._bytes} bytes)",
            )
        whole = ENTRY_HEADER.size + len(payload) <= self.capacity - COUNT.size
        count = 1 if whole else -(-len(payload) // self.chunk)
        self._queue.append(_Pending(msg_no, payload, safe, recovered, count))
        self._frames_pending += count
        self._bytes += len(payload)

    def next_batch(self) -> list[BatchEntry]:
        """Entries for one frame (empty when nothing is queued)."""
        room = self.capacity - COUNT.size
        entries: list[BatchEntry] = []
        while self._queue:
            p = self._queue[0]
            if p.frag_count == 1:
                size = ENTRY_HEADER.size + len(p.payload)
                if size > room:
                    break
                entries.append(new_entry(p.msg_no, 0, 1, p.safe, p.payload, p.recovered))
                room -= size
                self._done()
                continue
            start = p.next_frag * self.chunk
            piece = p.payload[start : start + self.chunk]
            if ENTRY_HEADER.size + len(piece) > room:
                break
            entries.append(
                new_entry(p.msg_no, p.next_frag, p.frag_count, p.safe, piece, p.recovered)
            )
            room -= ENTRY_HEADER.size + len(piece)
            p.next_frag += 1
            self._frames_pending -= 1
            if p.next_frag < p.frag_count:
                break  # the next fragment needs a frame of its own
            self._bytes -= len(self._queue.popleft().payload)
        return entries

    def _done(self) -> None:
        self._bytes -= len(self._queue.popleft().payload)
        self._frames_pending -= 1

    def rewind(self) -> None:
        """The ring changed: a half-sent payload starts again from fragment 0."""
        if self._queue and self._queue[0].next_frag:
            head = self._queue[0]
            self._frames_pending += head.next_frag
            head.next_frag = 0
