"""What makes ``ringward node`` a service: state directory, control socket,
metrics, systemd notification and signals (docs/operations.md).

:func:`prepare_state` picks and locks the state directory before the node
starts; :class:`Service` runs beside the node on its loop: the control
socket (runtime/control.py), the optional metrics endpoint
(runtime/metrics.py), ``READY=1`` once the first view is installed,
``WATCHDOG=1`` at half the unit's watchdog timeout, ``STOPPING=1`` when
it stops, and the signals: SIGTERM and SIGINT leave gracefully (the caller's
``stop`` event), SIGHUP re-reads the roster.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from pathlib import Path
from types import TracebackType
from typing import Any, Final

from ringward.crypto.keydir import IDENTITY_KEY, KeyDir
from ringward.crypto.keyfile import KEY_FILE_BYTES_MAX, decode_key_file, read_bounded
from ringward.errors import ConfigError, RingwardError
from ringward.runtime import Node, ViewChanged
from ringward.runtime.control import ControlServer
from ringward.runtime.metrics import MetricsServer
from ringward.runtime.ringseq import load_ring_seq, store_ring_seq
from ringward.runtime.sdnotify import Notifier
from ringward.runtime.statedir import StateDir, default_state_dir
from ringward.runtime.udp import split_bind

__all__ = [
    "METRICS_DEFAULT_HOST",
    "Service",
    "bundle_name",
    "parse_metrics",
    "prepare_state",
    "state_dir",
]

logger = logging.getLogger("ringward.runtime")

# Metrics are for the local Prometheus (or an SSH tunnel): loopback unless
# the operator names another address.
METRICS_DEFAULT_HOST: Final = "127.0.0.1"
# How often to look whether the first view is installed, for READY=1, when
# the node has no ready() to await.
_READY_POLL_S: Final = 0.05
# How often the STATUS= line for systemd is brought up to date.
_STATUS_EVERY_S: Final = 1.0


def bundle_name(keys: Path, name: str | None) -> str | None:
    """``name``, or the name of the bundle at ``keys`` read from the public
    half of its key (no passphrase needed); None when it cannot be told
    (loading the keys then says why)."""
    if name is not None:
        return name
    kd = KeyDir(keys)
    try:
        if not kd.is_bundle:
            return None
        key_path = kd.file(IDENTITY_KEY)
        record = decode_key_file(
            read_bounded(key_path, KEY_FILE_BYTES_MAX), str(key_path), need_secret=False
        )
        entry = kd.load_roster().node_by_signing_key(record.public[:32])
    except (RingwardError, OSError):
        return None
    return entry.name if entry is not None else None


def state_dir(given: str | None, name: str) -> StateDir:
    """``--state-dir`` if given, else node ``name``'s default."""
    return StateDir(Path(given) if given else default_state_dir(name))


def prepare_state(state: StateDir, legacy_ring_seq: Path | None) -> int:
    """Create or check the state directory, take its lock (returns the
    descriptor, to keep open while the node runs) and carry over the ring
    sequence an older version kept next to the keys (``legacy_ring_seq``)
    when it is higher than the state directory's: ring ids must never
    repeat, so the highest value known wins (a state directory wiped by
    ``systemctl clean``, or new, must not start lower)."""
    state.prepare()
    state.check_socket_path()
    fd = state.lock()
    try:
        if legacy_ring_seq is not None:
            current = load_ring_seq(state.ring_seq)
            try:
                value = load_ring_seq(legacy_ring_seq)
            except ConfigError as exc:
                if not state.ring_seq.exists():
                    raise
                logger.warning("ignoring the old ring sequence file: %s", exc.message)
                value = 0
            if value > current:
                store_ring_seq(state.ring_seq, value)
                logger.warning(
                    "ring sequence %d moved from %s to %s (the keys' directory is no "
                    "longer written to; the old file may be deleted)",
                    value,
                    legacy_ring_seq,
                    state.ring_seq,
                )
    except BaseException:
        os.close(fd)
        raise
    return fd


def parse_metrics(text: str) -> tuple[str, int]:
    """``--metrics``: ``HOST:PORT``, ``[V6]:PORT``, ``:PORT`` or ``PORT``
    (host: loopback). ConfigError ``bad_metrics`` otherwise."""
    if text.isdigit():
        text = f":{text}"
    if text.startswith(":"):
        text = METRICS_DEFAULT_HOST + text
    try:
        return split_bind(text)
    except ConfigError as exc:
        raise ConfigError("bad_metrics", f"--metrics {text}: {exc.message}") from None


def _describe(view: ViewChanged) -> str:
    quorum = "" if view.quorate else ", NOT quorate"
    return f"ring {view.view_id}, {len(view.members)} members{quorum}"


class Service:
    """The service side of one running node; ``async with`` around the
    node's run, inside ``async with node``."""

    def __init__(
        self,
        node: Node,
        stop: asyncio.Event,
        *,
        state: StateDir | None,
        metrics: tuple[str, int] | None,
        notifier: Notifier | None = None,
    ) -> None:
        self._node = node
        self._stop = stop
        self._notifier = notifier or Notifier.from_env()
        self._metrics = MetricsServer(node, *metrics) if metrics else None
        self._control = (
            ControlServer(node, state.control_socket, on_leave=stop.set, extra=self._status_extra)
            if state is not None
            else None
        )
        self._tasks: list[asyncio.Task[Any]] = []

    def _status_extra(self) -> dict[str, Any]:
        if self._metrics is None:
            return {"metrics": None}
        host, port = self._metrics.address
        return {"metrics": f"http://{f'[{host}]' if ':' in host else host}:{port}/metrics"}

    async def __aenter__(self) -> Service:
        try:
            if self._control is not None:
                await self._control.start()
            if self._metrics is not None:
                await self._metrics.start()
        except BaseException:
            await self._close_servers()
            raise
        loop = asyncio.get_running_loop()
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signal.SIGHUP, self.reload)
        self._tasks.append(asyncio.create_task(self._notify_ready()))
        interval = self._notifier.watchdog_interval_s
        if interval is not None:
            self._tasks.append(asyncio.create_task(self._watchdog(interval)))
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._notifier.stopping(f"node {self._node.name} leaving")
        with contextlib.suppress(NotImplementedError, RuntimeError):
            asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._close_servers()

    async def _close_servers(self) -> None:
        if self._control is not None:
            await self._control.close()
        if self._metrics is not None:
            await self._metrics.close()

    @property
    def metrics_address(self) -> tuple[str, int] | None:
        return self._metrics.address if self._metrics is not None else None

    def reload(self) -> None:
        """SIGHUP: re-read the roster, in a task (a signal handler must not block)."""
        self._tasks = [t for t in self._tasks if not t.done()]
        self._tasks.append(asyncio.create_task(self._reload()))

    async def _reload(self) -> None:
        reload_roster = getattr(self._node, "reload_roster", None)
        if reload_roster is None:
            logger.warning("node %s: this version cannot reload its roster", self._node.name)
            return
        try:
            changed = await reload_roster()
        except RingwardError as exc:
            if exc.reason == "revoked":
                self._stop.set()
            logger.warning("node %s: roster not reloaded: %s", self._node.name, exc)
            return
        version = self._node.roster.version
        if changed:
            logger.warning("node %s: now on roster version %d", self._node.name, version)
        else:
            logger.info("node %s: roster version %d is already in use", self._node.name, version)

    async def _notify_ready(self) -> None:
        node = self._node
        ready = getattr(node, "ready", None)
        if ready is not None:
            try:
                view = await ready()
            except RingwardError:
                return  # closed before any view: nothing is ready
        else:
            while (view := node.view) is None:
                await asyncio.sleep(_READY_POLL_S)
        self._notifier.ready(_describe(view))
        logger.info("node %s: ready (first view %s)", node.name, view.view_id)
        if not self._notifier.enabled:
            return
        # Keep `systemctl status` current: the ring this node is in now.
        while True:
            await asyncio.sleep(_STATUS_EVERY_S)
            if node.view is not None and node.view != view:
                view = node.view
                self._notifier.status(_describe(view))

    async def _watchdog(self, interval_s: float) -> None:
        # Sent from the node's own loop: a loop that stops running stops
        # the pings, and systemd restarts the node.
        while True:
            self._notifier.watchdog()
            await asyncio.sleep(interval_s)
