"""One world's memo of decoded datagrams.

Every node of a simulated world decodes the same broadcast datagram; frames
are immutable, so the nodes share one decoding of each (least recently used
first out). Only successful decodings are kept: a datagram that does not
decode raises again at every node, as it would without the memo.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Final

from ringward.wire import Frame, decode

__all__ = ["DECODE_MEMO_DATAGRAM_BYTES_MAX", "DECODE_MEMO_ENTRIES_MAX", "DecodeMemo"]

# Datagrams in flight across a world at once are far fewer.
DECODE_MEMO_ENTRIES_MAX: Final = 4096
# Larger datagrams (rare: fragments of big payloads, attack floods) are
# decoded by each node: the memo holds at most entries x this many bytes.
DECODE_MEMO_DATAGRAM_BYTES_MAX: Final = 2048


class DecodeMemo:
    """``wire.decode`` for the engines of one world (Engine's ``decoder``)."""

    def __init__(
        self,
        entries_max: int = DECODE_MEMO_ENTRIES_MAX,
        datagram_bytes_max: int = DECODE_MEMO_DATAGRAM_BYTES_MAX,
    ) -> None:
        self._entries_max = entries_max
        self._datagram_bytes_max = datagram_bytes_max
        self._frames: OrderedDict[bytes, Frame] = OrderedDict()
        self.hits = 0

    def __call__(self, data: bytes) -> Frame:
        frame = self._frames.get(data)
        if frame is not None:
            self.hits += 1
            return frame
        frame = decode(data)
        if len(data) > self._datagram_bytes_max:
            return frame
        self._frames[data] = frame
        if len(self._frames) > self._entries_max:
            self._frames.popitem(last=False)
        return frame
