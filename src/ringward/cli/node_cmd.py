"""``ringward node``: run one cluster member, lines in, JSON Lines out.

Each line read on stdin is broadcast (``!safe TEXT`` sends TEXT as safe;
empty lines are skipped). stdout carries one JSON object per line for each
delivery, view change and eviction (and, with ``--status-every``, a
periodic status line with the fault detector's suspicion scores); logs go
to stderr. At the end of stdin the node keeps running (so it can sit at the
end of a pipeline) until SIGINT or SIGTERM (a graceful leave), unless
``--exit-on-eof`` is given. Either way it exits 0. SIGHUP re-reads the
roster. Service plumbing (state directory, control socket, metrics,
systemd notification) is in :mod:`ringward.cli.node_service`.

stdin is read by a daemon thread with ``os.read`` (not the buffered
``sys.stdin``, whose lock a daemon thread would hold at interpreter exit),
which works for pipes, terminals and regular files alike; the thread waits
for each broadcast to be queued, so a fast producer is backpressured by the
ring instead of filling memory.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any, Final

from ringward.byzantine import BEHAVIOURS, TARGETED
from ringward.cli import node_service
from ringward.cli.keys_layout import node_dir
from ringward.cli.keys_secrets import NODE_PASSPHRASE_ENV
from ringward.cli.keys_secrets import read_passphrase as _read_passphrase
from ringward.crypto.identity import Identity
from ringward.crypto.keydir import KeyDir
from ringward.crypto.roster import Roster
from ringward.errors import ConfigError, RingwardError, StateError
from ringward.runtime import (
    Delivered,
    Evicted,
    MessageId,
    Node,
    NodeStatus,
    Rejected,
    ViewChanged,
    run,
)
from ringward.runtime.bundle import KeySource
from ringward.runtime.statedir import StateDir

SAFE_PREFIX: Final = b"!safe "
# stdin is read in chunks of this size; a line longer than the roster's
# payload_bytes_max is skipped whole (with a warning) rather than buffered.
_READ_CHUNK_BYTES: Final = 65536
# --exit-on-eof: how long to wait for this node's last message to come back
# delivered before exiting anyway, in token timeouts (covers forming a ring).
_DRAIN_TOKEN_TIMEOUTS: Final = 20
# --status-every bounds: often enough to watch scores move, rarely enough
# that the lines stay a small share of stdout.
STATUS_EVERY_MIN_S: Final = 0.1
STATUS_EVERY_MAX_S: Final = 3600.0

logger = logging.getLogger("ringward.runtime")

_EPILOG: Final = """\
examples:
  ringward keys init keys/ --cluster demo --nodes 3 --no-passphrase
  ringward node --keys keys/node1                  # a bundle: the node is its identity
  ringward node --keys keys/ --name node2          # the cluster dir: its bundle node2/
  printf 'hello\\n!safe important\\n' | ringward node --keys keys/node1 --exit-on-eof

stdout, one JSON object per line:
  {"event":"deliver","view":"R1.4","seq":3,"sender":"node1","safe":false,"data":"hello"}
  {"event":"view","view":"R1.4","kind":"regular","members":["node1","node2"],"quorate":true}
  {"event":"evict","target":"node3","reason":"equivocation","proof":true}
  {"event":"rejected","reason":"overload","cooldown_s":3.0}     (this node was evicted)
with --status-every SECONDS, also (scores: suspicion of each peer by signal,
decayed; a peer is accused at 100, see docs/fault-detector.md):
  {"event":"status","state":"operational","view":"R1.4","scores":{"node3":{"slow_hold":35.0}}}

as a service (docs/operations.md): SIGTERM and SIGINT leave the ring gracefully,
SIGHUP re-reads the roster; `ringward status NAME` asks the running node through
the control socket in its state directory; under systemd (Type=notify) it reports
READY=1 at its first view, WATCHDOG=1 and STOPPING=1.
"""

# The --misbehave names (overload is the process's own, described apart).
_BEHAVIOURS: Final = ", ".join(
    f"{b}:TARGET_ID" if b in TARGETED else b for b in BEHAVIOURS if b != "overload"
)


def register(sub: Any) -> None:
    p = sub.add_parser(
        "node",
        help="run one node: stdin lines are broadcast, deliveries printed as JSON",
        description=__doc__.split("\n\n")[1] if __doc__ else None,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--keys",
        required=True,
        metavar="DIR",
        help="a node bundle (ringward keys export-node) or an admin key directory with --name",
    )
    p.add_argument("--name", help="node to run (required with an admin directory)")
    p.add_argument("--bind", metavar="HOST:PORT", help="bind here instead of the roster address")
    p.add_argument(
        "--event-log",
        metavar="PATH",
        help="append the JSON Lines event log here (never truncated; a restart is "
        "recorded as a new incarnation; wall-clock and monotonic time on every line)",
    )
    p.add_argument(
        "--state-dir",
        metavar="DIR",
        help="where the node keeps ring.seq and its control socket (default: "
        "$STATE_DIRECTORY, else $XDG_STATE_HOME/ringward/NAME, else "
        "/var/lib/ringward/NAME for root, else ~/.local/state/ringward/NAME); "
        "see docs/operations.md",
    )
    p.add_argument(
        "--ring-seq-file",
        metavar="PATH",
        help="keep the ring sequence here instead of ring.seq in the state directory",
    )
    p.add_argument(
        "--metrics",
        metavar="[HOST:]PORT",
        help="serve Prometheus metrics at http://HOST:PORT/metrics (host default 127.0.0.1)",
    )
    p.add_argument(
        "--node-passphrase-file",
        "--passphrase-file",
        dest="passphrase_file",
        metavar="FILE",
        help=f"mode 0600, first line: the node key passphrase (or set {NODE_PASSPHRASE_ENV})",
    )
    p.add_argument(
        "--exit-on-eof",
        action="store_true",
        help="at the end of stdin, wait for the last message to be delivered, then exit",
    )
    p.add_argument(
        "--status-every",
        metavar="SECONDS",
        type=float,
        help="also print a status line this often: the engine state, the view and "
        "the fault detector's suspicion scores of each peer (see below)",
    )
    p.add_argument(
        "--misbehave",
        metavar="BEHAVIOUR",
        help="DEMOS AND TESTS ONLY: attack the cluster with one of the simulator's Byzantine "
        f"behaviours ({_BEHAVIOURS}) or block the process "
        "(overload, for 8 s); see docs/fault-detector.md",
    )
    p.add_argument(
        "--misbehave-after",
        metavar="SECONDS",
        type=float,
        default=0.0,
        help="start misbehaving this long after the start (default 0)",
    )
    p.add_argument(
        "--no-leave",
        action="store_true",
        help="stop without announcing a graceful leave (for harnesses that stop a whole "
        "cluster at once; the others then notice by the token timeout)",
    )
    p.add_argument("-v", "--verbose", action="count", default=0, help="more logs on stderr")
    p.set_defaults(func=run_node)


def load_node_keys(
    path: str, name: str | None, passphrase_file: str | None
) -> tuple[Roster, Identity]:
    """The roster and this node's identity from a bundle or an admin dir.

    The identity is always the roster entry's, both keys: a key file holding
    another node's identity (or an X25519 key the roster does not list) is
    refused here, naming the file, rather than run as that other node."""
    passphrase = _read_passphrase(passphrase_file, NODE_PASSPHRASE_ENV)
    return KeySource(node_dir(path, name), name, passphrase).load()


def run_node(args: argparse.Namespace) -> int:
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(
        level=level, stream=sys.stderr, format="%(asctime)s %(name)s %(levelname)s %(message)s"
    )
    status_every: float | None = args.status_every
    if status_every is not None and not STATUS_EVERY_MIN_S <= status_every <= STATUS_EVERY_MAX_S:
        raise ConfigError(
            "bad_status_every",
            f"--status-every must be {STATUS_EVERY_MIN_S:g}..{STATUS_EVERY_MAX_S:g} seconds",
        )
    keys_dir = node_dir(args.keys, args.name)
    name = node_service.bundle_name(keys_dir, args.name)
    if name is None:
        # Not told by the bundle's public key: loading the keys says why.
        roster, identity = load_node_keys(args.keys, args.name, args.passphrase_file)
        entry = roster.node_by_signing_key(identity.signing_key)
        assert entry is not None  # load_node_keys checked it
        name = entry.name
    state = node_service.state_dir(args.state_dir, name)
    metrics = node_service.parse_metrics(args.metrics) if args.metrics else None
    node = Node.from_dir(
        keys_dir,
        name=args.name,
        passphrase=_read_passphrase(args.passphrase_file, NODE_PASSPHRASE_ENV),
        bind=args.bind,
        event_log=args.event_log,
        ring_seq_file=args.ring_seq_file or state.ring_seq,
        misbehave=args.misbehave,
        misbehave_after_s=args.misbehave_after,
        leave_on_close=not args.no_leave,
    )
    legacy = None if args.ring_seq_file else _legacy_ring_seq(keys_dir, node.name)
    lock_fd = node_service.prepare_state(state, legacy)
    try:
        return run(
            _main(
                node,
                node.roster,
                exit_on_eof=args.exit_on_eof,
                status_every=status_every,
                state=state,
                metrics=metrics,
            )
        )
    except KeyboardInterrupt:
        # A second Ctrl-C during shutdown: still no traceback.
        return 0
    finally:
        os.close(lock_fd)


def default_ring_seq_file(path: str | Path, roster: Roster, identity: Identity) -> Path:
    """Where versions before the state directory kept the ring sequence,
    next to the keys: ``ring.seq`` in a bundle, ``NAME.ring.seq`` in an
    admin directory. Now only read, once, to carry the value over into the
    state directory (:func:`ringward.cli.node_service.prepare_state`)."""
    entry = roster.node_by_signing_key(identity.signing_key)
    if entry is None:
        raise ConfigError("not_in_roster", f"{path}: this identity is not in the roster")
    return _legacy_ring_seq(Path(path), entry.name)


def _legacy_ring_seq(keys_dir: Path, name: str) -> Path:
    kd = KeyDir(keys_dir)
    return kd.file("ring.seq") if kd.is_bundle else kd.file(f"{name}.ring.seq")


async def _main(
    node: Node,
    roster: Roster,
    *,
    exit_on_eof: bool,
    status_every: float | None,
    state: StateDir | None = None,
    metrics: tuple[str, int] | None = None,
) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    names = {n.id: n.name for n in roster.nodes}
    printer = _Printer(names)
    async with node, node_service.Service(node, stop, state=state, metrics=metrics):
        eof = asyncio.Event()
        reader = threading.Thread(
            target=_read_stdin,
            args=(node, loop, eof, roster.params.payload_bytes_max, printer),
            name="ringward-stdin",
            daemon=True,
        )
        reader.start()
        output = asyncio.create_task(_print_events(node, printer))
        waits: list[asyncio.Task[Any]] = [asyncio.create_task(stop.wait())]
        if exit_on_eof:
            timeout = node.config.token_timeout_ms / 1000 * _DRAIN_TOKEN_TIMEOUTS
            waits.append(asyncio.create_task(_drain_after_eof(eof, printer, timeout)))
        waits.append(output)  # ends early only if stdout is gone
        if status_every is not None:
            waits.append(asyncio.create_task(_print_status(node, printer, status_every)))
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        for task in waits:
            task.cancel()
        await asyncio.gather(*waits, return_exceptions=True)
    return 0


class _Printer:
    """Turns events into stdout lines; remembers the last own message."""

    def __init__(self, names: dict[int, str]) -> None:
        self.names = names
        self.last_sent: MessageId | None = None
        self.last_delivered = asyncio.Event()

    def line(self, event: object) -> dict[str, object] | None:
        if isinstance(event, Delivered):
            if event.msg_id == self.last_sent:
                self.last_delivered.set()
            return {
                "event": "deliver",
                "view": event.view,
                "seq": event.seq,
                "sender": event.sender_name,
                "safe": event.safe,
                "data": event.payload.decode("utf-8", errors="replace"),
            }
        if isinstance(event, ViewChanged):
            return {
                "event": "view",
                "view": event.view_id,
                "kind": event.kind,
                "members": list(event.member_names),
                "quorate": event.quorate,
            }
        if isinstance(event, Evicted):
            return {
                "event": "evict",
                "target": self.names.get(event.target, event.target),
                "reason": event.reason,
                "proof": event.proof,
            }
        if isinstance(event, Rejected):
            return {"event": "rejected", "reason": event.reason, "cooldown_s": event.cooldown_s}
        return None

    def status(self, status: NodeStatus) -> dict[str, object]:
        return {
            "event": "status",
            "state": status.state,
            "view": status.view,
            "scores": {
                self.names.get(peer, str(peer)): dict(signals)
                for peer, signals in status.scores.items()
                if signals
            },
        }


def _write_line(obj: dict[str, object]) -> None:
    """One JSON object on stdout. Called only from the event loop's thread,
    so lines from different tasks never interleave."""
    # ASCII escapes: valid JSON whatever the locale's encoding.
    sys.stdout.write(json.dumps(obj, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def _stdout_gone() -> None:
    # The reader of stdout went away: stop quietly, as `head` expects.
    with contextlib.suppress(OSError):
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


async def _print_events(node: Node, printer: _Printer) -> None:
    try:
        async for event in node.events():
            obj = printer.line(event)
            if obj is not None:
                _write_line(obj)
    except BrokenPipeError:
        _stdout_gone()


async def _print_status(node: Node, printer: _Printer, every: float) -> None:
    """A status line every ``every`` seconds while the node runs (the task
    is cancelled at shutdown)."""
    try:
        await asyncio.sleep(every)
        while (status := node.status()).state != "closed":
            _write_line(printer.status(status))
            await asyncio.sleep(every)
    except BrokenPipeError:
        _stdout_gone()


async def _drain_after_eof(eof: asyncio.Event, printer: _Printer, timeout: float) -> None:
    await eof.wait()
    if printer.last_sent is not None:
        try:
            await asyncio.wait_for(printer.last_delivered.wait(), timeout)
        except TimeoutError:
            logger.warning("exiting before the last message was delivered")


def _read_stdin(
    node: Node,
    loop: asyncio.AbstractEventLoop,
    eof: asyncio.Event,
    line_bytes_max: int,
    printer: _Printer,
) -> None:
    """Daemon thread: split stdin into lines and broadcast each one."""
    pending = b""
    skipping = False
    try:
        while chunk := os.read(0, _READ_CHUNK_BYTES):
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                if not skipping:
                    _broadcast_line(node, loop, line.removesuffix(b"\r"), line_bytes_max, printer)
                skipping = False
            if len(pending) > line_bytes_max + len(SAFE_PREFIX):
                logger.warning("skipping a line longer than %d bytes", line_bytes_max)
                pending, skipping = b"", True
        if pending and not skipping:
            _broadcast_line(node, loop, pending, line_bytes_max, printer)
    except (OSError, StateError, RuntimeError, asyncio.CancelledError):
        pass  # stdin closed under us, or the node / loop is shutting down
    with contextlib.suppress(RuntimeError):
        loop.call_soon_threadsafe(eof.set)


def _broadcast_line(
    node: Node,
    loop: asyncio.AbstractEventLoop,
    line: bytes,
    line_bytes_max: int,
    printer: _Printer,
) -> None:
    safe = line.startswith(SAFE_PREFIX)
    payload = line[len(SAFE_PREFIX) :] if safe else line
    if not payload:
        return
    if len(payload) > line_bytes_max:
        logger.warning("skipping a line longer than %d bytes", line_bytes_max)
        return

    async def send() -> None:
        # Noted on the loop, in the step that queues it: its delivery cannot
        # be printed before last_sent names it.
        printer.last_sent = await node.broadcast(payload, safe=safe)

    try:
        asyncio.run_coroutine_threadsafe(send(), loop).result()
    except RingwardError as exc:
        logger.warning("line not sent: %s", exc)
        if isinstance(exc, StateError):
            raise
