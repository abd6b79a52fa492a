"""Engine configuration: Totem's constants, with ringward's defaults.

Corosync's defaults are tuned for LANs with seconds of tolerance
(token 3000 ms); ringward's are shorter so a loopback or LAN ring notices a
dead node within about a second, and every value is configurable. Each is
described in docs/protocol.md, "Timers and constants".
"""

from __future__ import annotations

from dataclasses import dataclass

from ringward.errors import ConfigError
from ringward.wire import limits

__all__ = ["EngineConfig"]


@dataclass(frozen=True, slots=True)
class EngineConfig:
    """Totem timers (milliseconds) and limits of one engine."""

    # Token loss: no token (or commit token) seen for this long -> Gather.
    token_timeout_ms: int = 1000
    # Re-send the token this many times before it is considered lost.
    token_retransmits_before_loss: int = 4
    # Re-send joins this often while gathering.
    join_timeout_ms: int = 50
    # Give up waiting for matching joins: fail the silent nodes.
    consensus_timeout_ms: int = 1200
    # Probe for a foreign ring (partition healed) this often.
    merge_timeout_ms: int = 200
    # Operational again this long after a failed membership attempt.
    downcheck_timeout_ms: int = 1000
    # Rotations with a member's aru stuck while others progress -> fail it.
    fail_recv_const: int = 2500
    # Rotations with no new message before the token slows down.
    seqno_unchanged_const: int = 30
    # Idle ring: hold the token this long before passing it on (saves CPU).
    token_hold_idle_ms: int = 20
    # Frames broadcast per rotation, by all members together.
    window_size: int = 50
    # Frames one holder may broadcast per visit.
    max_messages: int = 17
    # Retransmission requests carried by one token.
    rtr_entries_max: int = 30
    # Largest datagram the engine emits (UDP over Ethernet without
    # fragmentation: 1500 - IP - UDP headers, minus a margin for IPv6).
    datagram_bytes_max: int = 1400
    # Largest application payload (fragmented across frames).
    payload_bytes_max: int = 1 << 20
    # Messages submitted but not yet broadcast; submit() refuses beyond.
    send_queue_max: int = 10_000
    # Frames kept for retransmission / not yet delivered, per ring.
    receive_window_frames_max: int = 4096
    # Frames a sender sends under one epoch's data key before moving to the
    # next (HKDF from the ring key): keeps the data under one AES-GCM key
    # far below its bounds (2^24 frames of 64 KiB = 2^40 bytes).
    epoch_frames: int = 1 << 24
    # The representative starts a new ring (same members, fresh group key)
    # this often: the key of a long-lived view does not live forever, and a
    # key that leaks exposes at most one interval. 0 disables.
    rekey_interval_ms: int = 3_600_000

    def __post_init__(self) -> None:
        checks = [
            ("token_timeout_ms", 10 <= self.token_timeout_ms <= 600_000),
            ("token_retransmits_before_loss", 1 <= self.token_retransmits_before_loss <= 100),
            ("join_timeout_ms", 1 <= self.join_timeout_ms < self.consensus_timeout_ms),
            ("consensus_timeout_ms", self.consensus_timeout_ms <= 600_000),
            ("merge_timeout_ms", 1 <= self.merge_timeout_ms <= 600_000),
            ("downcheck_timeout_ms", 1 <= self.downcheck_timeout_ms <= 600_000),
            ("fail_recv_const", self.fail_recv_const >= 1),
            ("seqno_unchanged_const", self.seqno_unchanged_const >= 1),
            ("token_hold_idle_ms", 0 <= self.token_hold_idle_ms < self.token_timeout_ms // 2),
            ("window_size", 1 <= self.window_size <= 10_000),
            ("max_messages", 1 <= self.max_messages <= min(self.window_size, 256)),
            ("rtr_entries_max", 1 <= self.rtr_entries_max <= limits.RTR_ENTRIES_MAX),
            ("datagram_bytes_max", 512 <= self.datagram_bytes_max <= limits.DATAGRAM_BYTES_MAX),
            ("payload_bytes_max", 1 <= self.payload_bytes_max <= 64 << 20),
            ("send_queue_max", self.send_queue_max >= 1),
            ("epoch_frames", 1 <= self.epoch_frames <= 1 << 32),
            (
                "rekey_interval_ms",
                self.rekey_interval_ms == 0 or self.rekey_interval_ms >= 10 * self.token_timeout_ms,
            ),
            (
                "receive_window_frames_max",
                self.window_size * 4 <= self.receive_window_frames_max,
            ),
        ]
        for name, ok in checks:
            if not ok:
                raise ConfigError("bad_config", f"{name}={getattr(self, name)} is out of range")

    @property
    def token_retransmit_ms(self) -> float:
        """Corosync: token / (retransmits_before_loss + 0.2)."""
        return self.token_timeout_ms / (self.token_retransmits_before_loss + 0.2)
