"""Engine configuration: Totem's constants, with ringward's defaults.

Corosync's defaults are tuned for LANs with seconds of tolerance
(token 3000 ms); ringward's are shorter so a loopback or LAN ring notices a
dead node within about a second, and every value is configurable. Each is
described in docs/protocol.md, "Timers and constants".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from ringward.errors import ConfigError
from ringward.wire import limits

__all__ = ["IDLE_HOLD_RETRANSMITS", "MERGE_BACKOFF_MAX_S", "MS_PER_S", "EngineConfig", "Timing"]

# An outsider's traffic starts a membership round at most once per back-off
# per sender: merge_timeout_ms, doubling up to this (engine.Engine._may_merge).
MERGE_BACKOFF_MAX_S = 10.0
MS_PER_S: Final = 1000.0
# The longest idle hold, in token retransmission periods: the relay
# (engine/token.py, RELAY_RETRANSMITS) and the retransmission of a quiet
# token wait as much longer (engine/idle.py), and the slow-hold and
# token-loss times are several times longer. A longer token_hold_idle_ms is
# cut to this (Timing.of).
IDLE_HOLD_RETRANSMITS: Final = 0.5


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
    # Quiet visits in a row (nothing sent, asked for or unsafe, nothing
    # queued) after which a holder holds the token (engine/idle.py).
    seqno_unchanged_const: int = 3
    # Idle ring: hold the token this long before passing it on (saves CPU);
    # at most IDLE_HOLD_RETRANSMITS token retransmission periods.
    token_hold_idle_ms: int = 100
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
    # Messages submitted but not yet broadcast; submit() refuses beyond,
    # and beyond this many payload bytes queued (large payloads).
    send_queue_max: int = 10_000
    send_queue_bytes_max: int = 16 << 20
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
    # Fault detector (docs/fault-detector.md). Off: only Totem's failure
    # detection runs (a crashed or silent node still leaves the ring).
    fault_detector: bool = True
    # A peer's decaying suspicion score at which this node accuses it.
    suspicion_threshold: int = 100
    # Scores halve this often.
    suspicion_half_life_ms: int = 10_000
    # A visit observed to last longer than this share of token_timeout_ms
    # (per mille) counts as a slow hold. Above three token retransmission
    # periods (3/4.2 of the timeout), so a token lost twice on its way to the
    # holder does not count against it; far above token_hold_idle_ms.
    slow_hold_permille: int = 750
    # Overloaded self-reports (LoadReport), among the node's last
    # 2 * overload_reports - 1, that convict it of overload (faults.check_load),
    # and what "overloaded" means: a receive queue this long,
    # a token held this long (its wait in the receive queue included), or
    # this much of the frame buffer budget in use.
    overload_reports: int = 3
    overload_rx_queue: int = 2000
    overload_hold_ms: int = 500
    overload_memory_permille: int = 900
    # A rejected node waits this long before rejoining, doubled for each
    # further eviction within evict_window_ms, up to evict_cooldown_max_ms.
    evict_cooldown_ms: int = 3000
    # The same for an eviction by f+1 accusers (a node that drops or delays
    # the token, or withholds): longer, because every return costs the ring
    # a merge and the rounds it takes to convict it again (Byzantine soak
    # worlds with two such members never settled at 3 s).
    evict_cooldown_accused_ms: int = 30_000
    evict_cooldown_max_ms: int = 300_000
    evict_window_ms: int = 600_000

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
            ("send_queue_bytes_max", self.send_queue_bytes_max >= 1),
            ("epoch_frames", 1 <= self.epoch_frames <= 1 << 32),
            (
                "rekey_interval_ms",
                self.rekey_interval_ms == 0 or self.rekey_interval_ms >= 10 * self.token_timeout_ms,
            ),
            (
                "receive_window_frames_max",
                self.window_size * 4 <= self.receive_window_frames_max,
            ),
            ("suspicion_threshold", 1 <= self.suspicion_threshold <= 1_000_000),
            ("suspicion_half_life_ms", 1 <= self.suspicion_half_life_ms <= 3_600_000),
            (
                "slow_hold_permille",
                self.token_hold_idle_ms < self.slow_hold_ms < self.token_timeout_ms,
            ),
            ("overload_reports", 1 <= self.overload_reports <= limits.PROOF_STATEMENTS_MAX),
            ("overload_rx_queue", self.overload_rx_queue >= 1),
            ("overload_hold_ms", 1 <= self.overload_hold_ms <= 600_000),
            ("overload_memory_permille", 1 <= self.overload_memory_permille <= 1000),
            ("evict_cooldown_ms", 1 <= self.evict_cooldown_ms <= self.evict_cooldown_max_ms),
            (
                "evict_cooldown_accused_ms",
                1 <= self.evict_cooldown_accused_ms <= self.evict_cooldown_max_ms,
            ),
            ("evict_cooldown_max_ms", self.evict_cooldown_max_ms <= 86_400_000),
            ("evict_window_ms", self.evict_window_ms >= 0),
        ]
        for name, ok in checks:
            if not ok:
                raise ConfigError("bad_config", f"{name}={getattr(self, name)} is out of range")

    @property
    def slow_hold_ms(self) -> float:
        """A visit longer than this is a slow hold (fault detector)."""
        return self.token_timeout_ms * self.slow_hold_permille / 1000

    @property
    def token_retransmit_ms(self) -> float:
        """Corosync: token / (retransmits_before_loss + 0.2)."""
        return self.token_timeout_ms / (self.token_retransmits_before_loss + 0.2)


@dataclass(frozen=True, slots=True)
class Timing:
    """The configuration's durations in seconds (the engine's clock), each
    converted once from its ``_ms`` field: :meth:`of`."""

    token_timeout_s: float
    token_retransmit_s: float
    join_timeout_s: float
    consensus_timeout_s: float
    merge_timeout_s: float
    token_hold_idle_s: float
    slow_hold_s: float
    rekey_interval_s: float
    overload_hold_s: float
    suspicion_half_life_s: float
    evict_cooldown_s: float
    evict_cooldown_accused_s: float
    evict_cooldown_max_s: float
    evict_window_s: float

    @classmethod
    def of(cls, cfg: EngineConfig) -> Timing:
        return cls(
            token_timeout_s=cfg.token_timeout_ms / MS_PER_S,
            token_retransmit_s=cfg.token_retransmit_ms / MS_PER_S,
            join_timeout_s=cfg.join_timeout_ms / MS_PER_S,
            consensus_timeout_s=cfg.consensus_timeout_ms / MS_PER_S,
            merge_timeout_s=cfg.merge_timeout_ms / MS_PER_S,
            token_hold_idle_s=min(
                cfg.token_hold_idle_ms, IDLE_HOLD_RETRANSMITS * cfg.token_retransmit_ms
            )
            / MS_PER_S,
            slow_hold_s=cfg.slow_hold_ms / MS_PER_S,
            rekey_interval_s=cfg.rekey_interval_ms / MS_PER_S,
            overload_hold_s=cfg.overload_hold_ms / MS_PER_S,
            suspicion_half_life_s=cfg.suspicion_half_life_ms / MS_PER_S,
            evict_cooldown_s=cfg.evict_cooldown_ms / MS_PER_S,
            evict_cooldown_accused_s=cfg.evict_cooldown_accused_ms / MS_PER_S,
            evict_cooldown_max_s=cfg.evict_cooldown_max_ms / MS_PER_S,
            evict_window_s=cfg.evict_window_ms / MS_PER_S,
        )
