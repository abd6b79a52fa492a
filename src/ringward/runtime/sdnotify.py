"""systemd's notify protocol (``Type=notify``), without a dependency.

The whole protocol is one datagram per message on the Unix socket named by
``$NOTIFY_SOCKET`` (a path, or ``@name`` for the abstract namespace), holding
newline-separated ``KEY=VALUE`` lines: ``READY=1`` once the service works,
``WATCHDOG=1`` at least every ``$WATCHDOG_USEC`` microseconds when the unit
sets ``WatchdogSec=``, ``STOPPING=1`` when it begins to stop, ``STATUS=``
free text for ``systemctl status`` (sd_notify(3)).

Sending never raises and never blocks: a service must not fail or stall
because its supervisor went away or stopped reading; a failed send is
logged once at debug level.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping
from typing import Final

__all__ = ["STATUS_CHARS_MAX", "Notifier"]

logger = logging.getLogger("ringward.runtime")

# STATUS= is for one short line in `systemctl status`.
STATUS_CHARS_MAX: Final = 200


class Notifier:
    """Messages to systemd; every method is a no-op outside a notify unit."""

    def __init__(self, address: str | None, watchdog_usec: int | None) -> None:
        self._address = address
        self._watchdog_usec = watchdog_usec
        self._failed = False

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Notifier:
        """From ``$NOTIFY_SOCKET``, ``$WATCHDOG_USEC`` and ``$WATCHDOG_PID``
        (the watchdog is ours only if ``WATCHDOG_PID`` is unset or our pid)."""
        env = os.environ if environ is None else environ
        raw = env.get("NOTIFY_SOCKET", "")
        address: str | None = None
        if raw.startswith("@"):
            address = "\0" + raw[1:]
        elif raw.startswith("/"):
            address = raw
        usec: int | None = None
        pid = env.get("WATCHDOG_PID", "")
        if address is not None and (not pid or pid == str(os.getpid())):
            try:
                value = int(env.get("WATCHDOG_USEC", ""))
            except ValueError:
                value = 0
            usec = value if value > 0 else None
        return cls(address, usec)

    @property
    def enabled(self) -> bool:
        return self._address is not None

    @property
    def watchdog_interval_s(self) -> float | None:
        """How often to send ``WATCHDOG=1``: half the unit's timeout, as
        sd_watchdog_enabled(3) advises; None without a watchdog."""
        if self._watchdog_usec is None:
            return None
        return self._watchdog_usec / 2 / 1_000_000

    def send(self, *lines: str) -> bool:
        """Send one message of ``lines``; True if it was sent."""
        if self._address is None:
            return False
        data = "\n".join(lines).encode("utf-8", "replace")
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                # Never block the node's loop: a supervisor that does not
                # read (a full socket buffer) loses the message instead.
                sock.setblocking(False)
                sock.sendto(data, self._address)
        except OSError as exc:
            if not self._failed:
                logger.debug("sd_notify to %r failed: %s", self._address, exc)
                self._failed = True
            return False
        return True

    def ready(self, status: str = "") -> bool:
        return self.send("READY=1", *self._status(status))

    def watchdog(self) -> bool:
        return self.send("WATCHDOG=1")

    def stopping(self, status: str = "") -> bool:
        return self.send("STOPPING=1", *self._status(status))

    def status(self, text: str) -> bool:
        return self.send(*self._status(text))

    @staticmethod
    def _status(text: str) -> tuple[str, ...]:
        # One line: a newline would start a new KEY=VALUE assignment.
        clean = " ".join(text.split())[:STATUS_CHARS_MAX]
        return (f"STATUS={clean}",) if clean else ()
