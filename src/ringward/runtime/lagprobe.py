"""How far behind the event loop runs: the receive pressure a runtime node
reports, signed, in its tokens (``Engine.note_receive_queue``).

A loop timer fires every PROBE_S; its lateness is how long the loop could
not run (a blocked or CPU-starved process, a pause). Behind means late at
two probes in a row, and the smaller lateness of the two is what counts:

* a loop that stays behind (slow per datagram, starved of CPU) is late at
  every probe, since the next probe again waits behind the work that
  made the last one late: reported from the second late probe on;
* a loop that was stopped once (a long GC pause, SIGSTOP) and caught up is
  on time at the next probe: never reported. Were it reported until the
  next probe, an idle ring, which visits a node many times in PROBE_S,
  would carry it in enough signed reports to convict the node of overload
  (docs/fault-detector.md, "Overload").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

__all__ = ["PROBE_S", "LagProbe"]

# How often the event loop's lateness is sampled.
PROBE_S: Final = 0.1


@dataclass(slots=True)
class LagProbe:
    """The probe's schedule and its last sample (loop time, seconds)."""

    due_s: float = 0.0
    last_lag_s: float = 0.0

    def start(self, now_s: float) -> float:
        """The first probe's due time."""
        self.due_s, self.last_lag_s = now_s + PROBE_S, 0.0
        return self.due_s

    def sample(self, now_s: float) -> float:
        """The probe due at ``due_s`` fired at ``now_s``: how far behind the
        loop runs (the smaller lateness of this probe and the previous one).
        The next probe is due PROBE_S from now (``due_s``)."""
        lag_s = max(0.0, now_s - self.due_s)
        behind_s = min(lag_s, self.last_lag_s)
        self.last_lag_s = lag_s
        self.due_s = now_s + PROBE_S
        return behind_s
