"""``ringward node``: run one cluster member, lines in, JSON Lines out.

Each line read on stdin is broadcast (``!safe TEXT`` sends TEXT as safe;
empty lines are skipped). stdout carries one JSON object per line for each
delivery, view change and eviction (and, with ``--status-every``, a
periodic status line with the fault detector's suspicion scores); logs go
to stderr. At the end of stdin the node keeps running (so it can sit at the
end of a pipeline) until SIGINT or SIGTERM, unless ``--exit-on-eof`` is
given. Either way it exits 0.

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

from ringward.byzantine import BEHAVIOURS
from ringward.cli.keys_cmd import NODE_PASSPHRASE_ENV, _read_passphrase
from ringward.crypto.identity import Identity
from ringward.crypto.keydir import IDENTITY_KEY, KeyDir
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
  ringward keys init keys/ --cluster demo --nodes 3
  ringward keys export-node keys/ node1 node1/
  ringward node --keys node1/                      # a bundle: the node is its identity
  ringward node --keys keys/ --name node2          # an admin dir: pick the node by name
  printf 'hello\\n!safe important\\n' | ringward node --keys node1/ --exit-on-eof

stdout, one JSON object per line:
  {"event":"deliver","view":"R1.4","seq":3,"sender":"node1","safe":false,"data":"hello"}
  {"event":"view","view":"R1.4","kind":"regular","members":["node1","node2"],"quorate":true}
  {"event":"evict","target":"node3","reason":"equivocation","proof":true}
  {"event":"rejected","reason":"overload","cooldown_s":3.0}     (this node was evicted)
with --status-every SECONDS, also (scores: suspicion of each peer by signal,
decayed; a peer is accused at 100, see docs/fault-detector.md):
  {"event":"status","state":"operational","view":"R1.4","scores":{"node3":{"slow_hold":35.0}}}
"""

# The --misbehave names (overload is the process's own, described apart).
_BEHAVIOURS: Final = ", ".join(
    "frame:TARGET_ID" if b == "frame" else b for b in BEHAVIOURS if b != "overload"
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
    p.add_argument("--event-log", metavar="PATH", help="write the JSON Lines event log here")
    p.add_argument(
        "--ring-seq-file",
        metavar="PATH",
        help="where the node keeps its ring sequence across restarts "
        "(default: ring.seq in a bundle, NAME.ring.seq in an admin directory)",
    )
    p.add_argument(
        "--passphrase-file",
        metavar="FILE",
        help=f"first line: the node key passphrase (or set {NODE_PASSPHRASE_ENV})",
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
    kd = KeyDir(path)
    roster = kd.load_roster()
    passphrase = _read_passphrase(passphrase_file, NODE_PASSPHRASE_ENV)
    if kd.is_bundle:
        key_path = kd.file(IDENTITY_KEY)
        identity = Identity.load(key_path, passphrase)
        entry = roster.node_by_signing_key(identity.signing_key)
        if entry is None:
            raise ConfigError("not_in_roster", f"{path}: this identity is not in the roster")
        if name is not None and name != entry.name:
            raise ConfigError("wrong_name", f"{path} is the bundle of {entry.name}, not {name}")
    else:
        if name is None:
            raise ConfigError("name_required", f"{path} is an admin directory: pass --name NODE")
        entry = roster.node_by_name(name)  # a clear error for an unknown name
        key_path = kd.node_key(name)
        identity = Identity.load(key_path, passphrase)
    if identity.public != entry.public:
        raise ConfigError(
            "key_mismatch",
            f"{key_path}: keys differ from the roster entry of {entry.name} "
            "(run `ringward keys verify`)",
        )
    return roster, identity


def default_ring_seq_file(path: str, roster: Roster, identity: Identity) -> Path:
    """Next to the keys: ``ring.seq`` in a bundle (the directory is this
    node's alone), ``NAME.ring.seq`` in an admin directory (not under
    ``nodes/``, which ``keys verify`` keeps free of stray files)."""
    kd = KeyDir(path)
    if kd.is_bundle:
        return kd.file("ring.seq")
    entry = roster.node_by_signing_key(identity.signing_key)
    if entry is None:
        raise ConfigError("not_in_roster", f"{path}: this identity is not in the roster")
    return kd.file(f"{entry.name}.ring.seq")


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
    roster, identity = load_node_keys(args.keys, args.name, args.passphrase_file)
    node = Node(
        roster,
        identity,
        bind=args.bind,
        event_log=args.event_log,
        ring_seq_file=args.ring_seq_file or default_ring_seq_file(args.keys, roster, identity),
        misbehave=args.misbehave,
        misbehave_after_s=args.misbehave_after,
        leave_on_close=not args.no_leave,
    )
    try:
        return run(_main(node, roster, exit_on_eof=args.exit_on_eof, status_every=status_every))
    except KeyboardInterrupt:
        # A second Ctrl-C during shutdown: still no traceback.
        return 0


async def _main(
    node: Node, roster: Roster, *, exit_on_eof: bool, status_every: float | None
) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    names = {n.id: n.name for n in roster.nodes}
    printer = _Printer(names)
    async with node:
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
                "sender": self.names.get(event.sender, event.sender),
                "safe": event.safe,
                "data": event.payload.decode("utf-8", errors="replace"),
            }
        if isinstance(event, ViewChanged):
            return {
                "event": "view",
                "view": event.view_id,
                "kind": event.kind,
                "members": [self.names.get(m, m) for m in event.members],
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
