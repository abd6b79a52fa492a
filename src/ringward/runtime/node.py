"""One ringward node on asyncio: the public API (``Node``) over the loop
glue of runtime/driver.py, whose docstring holds the theory of operation
(callbacks only, api.py's duties, the clock, backpressure both ways).

Lifecycle: ``start`` binds the socket and builds the engine from the roster
(runtime/engines.py); ``reload_roster`` replaces the engine in place for a
newer roster (runtime/reload.py); ``close`` announces a graceful leave and
releases everything. A node owns no task, except the short one that a roster
file change starts (it reloads, then ends).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from os import PathLike
from pathlib import Path
from types import MappingProxyType, TracebackType
from typing import Any, Final, TextIO

from ringward.crypto.identity import Identity
from ringward.crypto.keyfile import Passphrase
from ringward.crypto.roster import Roster
from ringward.engine import Engine, EngineConfig, MessageId
from ringward.errors import ConfigError, RingwardError, StateError
from ringward.runtime import bundle, engines, reload, stats
from ringward.runtime import misbehave as misbehaving
from ringward.runtime.config import engine_config
from ringward.runtime.driver import RECV_BATCH_MAX, Driver
from ringward.runtime.eventlog import EventLogWriter
from ringward.runtime.events import Event, NodeStatus, ViewChanged
from ringward.runtime.options import EVENT_QUEUE_MAX, SecurityFactory
from ringward.runtime.ringseq import load_ring_seq
from ringward.runtime.udp import Peers, open_socket, resolve_peers, split_bind

__all__ = ["RECV_BATCH_MAX", "Node"]

logger = logging.getLogger("ringward.runtime")


# A roster reload first waits this many token timeouts at most for the old
# ring to deliver this node's own messages (broadcast holds new ones).
RELOAD_DRAIN_TOKEN_TIMEOUTS: Final = 2
RELOAD_DRAIN_POLL_S: Final = 0.01


class Node(Driver):
    """One member of a ringward cluster, on asyncio and UDP.

    ::

        async with Node(roster, identity) as node:  # or Node.from_dir("node1/")
            await node.ready()
            await node.broadcast(b"hello")
            async for event in node.events():
                ...

    ``roster`` defines the cluster (its addresses and protocol parameters);
    ``identity`` must be one of its nodes. ``bind`` ("host:port", "[v6]:port"
    or a tuple; port 0 for any) defaults to this node's roster address.
    ``config`` overrides the EngineConfig derived from the roster's params
    (see :func:`ringward.runtime.engine_config`). ``event_log`` is a path
    (appended to; runtime/eventlog.py) or an open text stream for the JSON
    Lines event log.
    ``security`` builds the engine's FrameSecurity; None (the default) is
    :class:`ringward.crypto.RingSecurity`: every signed frame Ed25519-signed
    by its maker, every payload AES-GCM-encrypted under the view's group key.
    ``lambda roster, identity, node: NullSecurity()`` switches both off
    (crash-fault model; for benchmarks only). ``event_queue_max`` bounds the
    events waiting for the application (backpressure: runtime/driver.py).
    ``ring_seq_file`` keeps the highest ring sequence across restarts
    (:mod:`ringward.runtime.ringseq`); without it the node starts from 0
    each time, which is only safe while some member of the cluster stays up.
    ``misbehave`` (with ``misbehave_after_s``) turns this node into an
    attacker of its own cluster (a simulator behaviour, or ``overload``): for
    demonstrations and tests only, loudly logged. ``leave_on_close`` False
    stops without announcing a graceful leave.
    """

    def __init__(
        self,
        roster: Roster,
        identity: Identity,
        *,
        bind: str | tuple[str, int] | None = None,
        config: EngineConfig | None = None,
        event_log: str | PathLike[str] | TextIO | None = None,
        security: SecurityFactory | None = None,
        event_queue_max: int = EVENT_QUEUE_MAX,
        ring_seq_file: str | PathLike[str] | None = None,
        misbehave: str | None = None,
        misbehave_after_s: float = 0.0,
        leave_on_close: bool = True,
    ) -> None:
        entry = roster.node_by_signing_key(identity.signing_key)
        if entry is None:
            raise ConfigError("not_in_roster", "this identity is not a node of the roster")
        if entry.encryption_key != identity.encryption_key:
            raise ConfigError("key_mismatch", f"identity of {entry.name} differs from the roster")
        super().__init__(event_queue_max, ring_seq_file)
        self.roster = roster
        self.node_id = entry.id
        self.name = entry.name
        self._identity = identity
        self._bind = split_bind(bind if bind is not None else entry.address)
        self.config = config or engine_config(roster)
        self._reloader = reload.Reloader(roster, config_given=config is not None)
        self._log_target = event_log
        self._security = security
        self._misbehave = misbehaving.parse(misbehave, [n.id for n in roster.nodes])
        self._misbehave_after_s = max(0.0, misbehave_after_s)
        self._leave_on_close = leave_on_close
        # Running totals for metrics and the control channel (runtime/stats.py).
        self.telemetry = stats.Telemetry()
        self._broadcasts = 0
        self._last_sent: MessageId | None = None
        self._switching = asyncio.Event()  # clear while a reload switches engines
        self._switching.set()

    @classmethod
    def from_dir(
        cls,
        path: str | PathLike[str],
        *,
        name: str | None = None,
        passphrase: Passphrase | None = None,
        passphrase_file: str | PathLike[str] | None = None,
        **options: Any,
    ) -> Node:
        """A node loaded from a key directory in one call: a node bundle, or
        a cluster directory (``ringward keys init``) or an admin directory
        with the node's ``name``.
        The node key's passphrase is ``passphrase``, else the first line of
        ``passphrase_file``, else ``$RINGWARD_NODE_PASSPHRASE``, else none.
        ``options`` are the keyword arguments of :class:`Node`. Such a node
        knows where its roster lives: ``reload_roster()`` re-reads it, and
        while running the node looks at the roster file every second and
        switches to a newer one accepted there (``ringward keys accept``);
        the passphrase is kept to read a rotated key then.
        ConfigError / KeyFileError / RosterError when the keys do not load."""
        if passphrase is None:
            passphrase = bundle.read_passphrase(passphrase_file)
        source = bundle.KeySource(bundle.node_dir(Path(path), name), name, passphrase)
        roster, identity = source.load()
        node = cls(roster, identity, **options)
        node._reloader.source = source
        return node

    # ------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> Node:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def start(self) -> None:
        """Resolve the roster's addresses, bind the socket, start the engine.
        ConfigError when an address does not resolve or the bind fails."""
        if self._phase != "new":
            raise StateError("already_started", f"node {self.name} was started before")
        self._phase = "starting"
        loop = asyncio.get_running_loop()
        try:
            local, self._peers = await resolve_peers(loop, self.roster, self.node_id, self._bind)
            self._sock = open_socket(self._peers.family, local)
            self._loop = loop
            if self._log_target is not None:
                self._log = EventLogWriter(self._log_target, self.node_id)
            self._engine = self._make_engine(
                load_ring_seq(self._ring_seq_file) if self._ring_seq_file else 0
            )
        except BaseException:
            self._phase = "closed"
            self._release()
            raise
        self._phase = "running"
        self._resume_reading()
        self._probe = loop.call_at(self._lag.start(loop.time()), self._on_probe)
        self._reloader.watch(loop, self.reload_roster, self.name)
        logger.info(
            "node %s (id %d) listening on %s, %d peers",
            self.name,
            self.node_id,
            self.address,
            len(self._peers.by_id),
        )
        self._after_verb()  # the engine's first joins and timers

    async def close(self) -> None:
        """Stop: no more reading, sending or timers; the socket and the event
        log are closed. Events already queued can still be read from
        ``events()``, which then ends. Idempotent. A running node first
        announces its leave, so the others reconfigure at once rather than
        after a token timeout."""
        if self._phase == "running" and self._engine is not None and self._leave_on_close:
            try:
                self._engine.leave(self._now())
            except Exception as exc:
                self._engine_failed(exc, "leave")
            else:
                self._after_verb()
        self._shutdown()

    # ---------------------------------------------------------- public API

    @property
    def address(self) -> tuple[str, int]:
        """The bound (host, port); useful with port 0."""
        if self._sock is None or self._sock.fileno() < 0:
            raise StateError("not_running", f"node {self.name} has no socket")
        name = self._sock.getsockname()
        return name[0], name[1]

    @property
    def view(self) -> ViewChanged | None:
        """The regular configuration the engine installed last (None before
        the first). It may be ahead of the events the application consumed."""
        return self._view

    async def ready(self, timeout_s: float | None = None) -> ViewChanged:
        """Wait until the node has installed its first regular view and
        return it (at once if it has one). Consumes no event: ``events()``
        still yields that view. StateError ``ready_timeout`` after
        ``timeout_s`` seconds (None: no limit), ``node_closed`` (or
        ``engine_failed``) when the node stops first, ``node_new`` before
        ``start()``."""
        if self._phase == "new":
            raise StateError("node_new", f"node {self.name} is not started")
        try:
            async with asyncio.timeout(timeout_s):
                while self._view is None and self._phase != "closed":
                    # Cleared before each wait: set by every regular view and by close.
                    self._has_view.clear()
                    await self._has_view.wait()
        except TimeoutError:
            raise StateError(
                "ready_timeout", f"node {self.name}: no view installed within {timeout_s:g} s"
            ) from None
        self._running()  # closed first: raises why
        assert self._view is not None
        return self._view

    async def broadcast(
        self, data: bytes | bytearray | memoryview, *, safe: bool = False
    ) -> MessageId:
        """Queue ``data`` for total-order delivery to every member (this node
        included) and return its id once queued — not once delivered. Awaits
        while the engine's send queue is full. ``safe`` asks for safe
        delivery (delivered only once every member holds it). ConfigError
        ``not_bytes`` for anything but bytes, bytearray or memoryview (encode
        text first), ``payload_too_large`` beyond the roster's
        ``payload_bytes_max``; StateError when the node is not running."""
        if not isinstance(data, bytes | bytearray | memoryview):
            raise ConfigError(
                "not_bytes",
                f"broadcast takes bytes, bytearray or memoryview, not {type(data).__name__}"
                + (" (encode text first, e.g. text.encode())" if isinstance(data, str) else ""),
            )
        payload = bytes(data)
        if not self._switching.is_set():
            await self._switching.wait()  # a roster reload drains the old ring first
        while True:
            engine = self._running()
            if engine.send_room:
                try:
                    msg_id = engine.submit(self._now(), payload, safe)
                except StateError as exc:
                    if exc.reason != "backpressure":
                        raise
                except RingwardError:
                    raise
                except Exception as exc:
                    self._engine_failed(exc, "submit")
                    raise StateError("engine_failed", "the engine failed") from exc
                else:
                    self._broadcasts += 1
                    self._last_sent = msg_id
                    self.telemetry.sent(msg_id, len(payload), self._last_now)
                    if self._log is not None:
                        self._log.send(msg_id, payload, safe)
                    self._after_verb_soon()
                    return msg_id
            self._send_room.clear()
            await self._send_room.wait()

    async def events(self) -> AsyncIterator[Event]:
        """Every event, in the order the engine produced them, from the start
        of the node; ends after ``close()`` once the queued events are read.
        Concurrent iterators share (split) one stream."""
        while self._events or await self._wait_event():  # no await while events queue
            event = self._pop_event()
            if event is not None:
                yield event

    def status(self) -> NodeStatus:
        """A snapshot of the node (see :class:`NodeStatus`)."""
        engine = self._engine
        drops, notes = self._reloader.counts(engine)
        drops.update((f"runtime.{k}", v) for k, v in self._drops.items())
        view = self._view
        return NodeStatus(
            node_id=self.node_id,
            name=self.name,
            state=engine.state.value if engine and self._phase == "running" else self._phase,
            view=view.view_id if view else None,
            members=view.members if view else (),
            quorate=view.quorate if view else False,
            token_rotations_per_s=self._rotations.rate(self._now_or_zero(), engine, self._view),
            backlog=engine.backlog if engine else 0,
            event_backlog=len(self._events),
            reading_paused=self._phase == "running" and not self._reading,
            pressure=self._pressure,
            broadcasts=self._broadcasts,
            deliveries=self._deliveries,
            datagrams_received=self._received,
            datagrams_sent=self._sent,
            drops=MappingProxyType(drops),
            notes=MappingProxyType(notes),
            scores=stats.scores(engine),
            roster_version=self.roster.version,
            member_names=view.member_names if view else (),
        )

    async def reload_roster(
        self, roster: Roster | None = None, *, identity: Identity | None = None
    ) -> bool:
        """Switch the running node to a newer roster; True if it switched,
        False if ``roster`` is the one in use. None re-reads the directory
        the node was loaded from (:meth:`from_dir`; StateError
        ``no_roster_source`` otherwise). The roster must be signed by the
        same admin key, for the same cluster, with a higher version
        (RosterError ``wrong_admin``, ``wrong_cluster``, ``rollback``,
        ``conflicting_roster``); when refused the node runs on unchanged.

        The node leaves its ring (gracefully) and starts again on the new
        roster, keeping its socket and its ring sequence, with the new
        roster's parameters (unless ``config`` was given): the nodes that
        run this roster version form a new ring, whose group key only its
        members receive; datagrams of other versions and of nodes it no
        longer lists are dropped on their header (docs/keys.md, "Changing
        the roster of a running cluster"). Before it leaves, the old ring gets
        up to two token timeouts to deliver what this node broadcast (new
        broadcasts wait meanwhile); what is still queued then is lost
        (counted as ``runtime.reload_unsent``). To the guarantees a switch is
        a new incarnation of the node (the event log says so). A roster
        given here is not written to the node's directory: a restart reads
        the directory again (``ringward keys accept`` it there to keep it).
        When the new roster rotated this node's keys, ``identity`` is the
        new one (a node from a directory reads it there, off the event
        loop). When it no longer lists this node, the node closes and
        StateError ``revoked`` is raised."""
        self._running()
        source = self._reloader.source
        async with self._reloader.lock:
            if roster is None:
                if source is None:
                    raise StateError(
                        "no_roster_source",
                        f"node {self.name} was not loaded from a directory: pass the roster",
                    )
                roster = reload.read_roster(source, self.roster, self.node_id, self.name)
            if not reload.check_successor(self.roster, roster):
                return False
            entry = reload.own_entry(roster, self.node_id, self.name)
            if entry is None:
                await self.close()
                raise StateError("revoked", f"roster version {roster.version} revoked {self.name}")
            assert self._loop is not None
            if identity is None and entry.public != self._identity.public and source:
                # Argon2id of an encrypted key takes ~0.4 s (more at cost
                # "sensitive"): off the loop, so the ring keeps its token.
                identity = await self._loop.run_in_executor(None, source.load_identity, roster)
                self._running()  # closed meanwhile: raises
            identity = identity or self._identity
            if identity.public != entry.public:
                raise ConfigError("key_mismatch", f"{self.name}: roster lists other keys")
            _, peers = await resolve_peers(self._loop, roster, self.node_id, self._bind)
            self._switching.clear()  # broadcast waits for the new engine
            try:
                await self._drain()
                self._restart_engine(roster, identity, peers)
            finally:
                self._switching.set()
            return True

    async def _drain(self) -> None:
        """Before a switch: let the old ring deliver what this node already
        broadcast (bounded by RELOAD_DRAIN_TOKEN_TIMEOUTS), so that a reload
        loses no message that was queued or in flight in a ring that works."""
        last = self._last_sent
        limit_s = self._now() + RELOAD_DRAIN_TOKEN_TIMEOUTS * self.config.token_timeout_ms / 1000
        while last is not None and self.telemetry.awaiting(last) and self._now() < limit_s:
            await asyncio.sleep(RELOAD_DRAIN_POLL_S)
            self._running()  # closed meanwhile: raises

    def _restart_engine(self, roster: Roster, identity: Identity, peers: Peers) -> None:
        old = self._running()
        old.leave(self._now())
        self._after_verb()  # the leave goes to the old roster's peers
        self._reloader.retire(old, roster)
        self._drops["reload_unsent"] += old.backlog
        if reload.split_quorum(self.roster, roster):
            logger.warning(
                "node %s: while roster version %d rolls out, the nodes still on version %d "
                "(revoked or rotated keys included) can form a quorate ring apart from the "
                "new one: switch every node promptly (docs/keys.md, Rolling procedure)",
                self.name,
                roster.version,
                self.roster.version,
            )
        logger.warning(
            "node %s: roster version %d -> %d, %d nodes; %d queued messages not sent "
            "(runtime.reload_unsent)",
            self.name,
            self.roster.version,
            roster.version,
            len(roster.nodes),
            old.backlog,
        )
        self.roster, self._identity, self._peers = roster, identity, peers
        if not self._reloader.config_given:
            self.config = engine_config(roster)
        self._engine = self._make_engine(old.ring_seq_max)
        # Whom the old engine kept out stays out (a reload is no amnesty).
        self._engine.detector.adopt(old.detector.carry())
        if self._log is not None:
            self._log.new_incarnation()
        self._after_verb()

    def exclusions(self) -> tuple[stats.Exclusion, ...]:
        """The nodes this node's fault detector keeps out (and this node
        while rejected), with reason and remaining cool-down."""
        return stats.exclusions(self._engine, self._now_or_zero(), self.telemetry.last_rejected)

    # -------------------------------------------------- driving the engine

    def _make_engine(self, ring_seq: int) -> Engine:
        spec = engines.EngineSpec(
            self.node_id,
            self.name,
            self._identity,
            self.config,
            self._security,
            self._misbehave,
            self._misbehave_after_s,
        )
        engine, self._overload_window = engines.make_engine(
            self.roster, spec, ring_seq, self._now()
        )
        return engine
