"""The one exception tree of ringward.

Every error a caller can see from bad input (network bytes, files on disk,
configuration) is a :class:`RingwardError`. Each carries a short,
machine-readable ``reason`` (lower-case, ``[a-z0-9_:.-]``) that metrics and
tests can match on, and a human message that says who is to blame.

Exceptions are for local misuse and for bad input handed to a parser
directly. The protocol engine itself never lets a peer's bad datagram escape
as an exception: it drops and counts it under the same ``reason``.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "CryptoError",
    "EventLogError",
    "KeyFileError",
    "RingwardError",
    "RosterError",
    "StateError",
    "WireError",
]


class RingwardError(Exception):
    """Root of every error ringward raises on purpose.

    ``reason`` is stable and machine-readable (for counters and tests);
    ``message`` is for humans and may change between versions.
    """

    reason: str
    message: str

    def __init__(self, reason: str, message: str = "") -> None:
        self.reason = reason
        self.message = message or reason
        super().__init__(f"{reason}: {self.message}" if message else reason)


class WireError(RingwardError):
    """Bytes that are not a well-formed ringward frame (blame: the sender)."""


class CryptoError(RingwardError):
    """A signature that does not verify, a ciphertext that does not open,
    or a key of the wrong shape (blame: the sender or the key file)."""


class RosterError(RingwardError):
    """A roster that is malformed, unsigned, wrongly signed, rolled back or
    inconsistent (blame: whoever produced or altered the roster file)."""


class KeyFileError(RingwardError):
    """A key file that is missing, unreadable, too widely readable, of an
    unknown format, or whose passphrase is wrong (blame: the operator)."""


class ConfigError(RingwardError):
    """A configuration value out of range or inconsistent (blame: the caller)."""


class StateError(RingwardError):
    """An API call that is not valid in the object's current state
    (blame: the caller)."""


class EventLogError(RingwardError):
    """An event log (JSON Lines) that is malformed or violates its schema
    (blame: whoever wrote the log file)."""
