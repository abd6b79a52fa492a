"""The control channel: a Unix socket answering one JSON request each.

Protocol (docs/operations.md): a client connects to ``control.sock`` in the
node's state directory, writes one JSON object and a newline (or closes its
side), and reads one JSON object and a newline back; then the server closes
the connection. Requests are ``{"cmd": "status"}``, ``{"cmd": "reload"}``
(re-read the roster, :meth:`Node.reload_roster`), ``{"cmd": "leave"}``
(leave the ring gracefully and stop) and ``{"cmd": "ping"}``. Answers carry
``"ok": true`` and the command's result, or ``"ok": false`` with an
``error`` reason and a ``message``.

Access: the socket is created 0600 (under a umask) inside the 0700 state
directory, so only the node's user (and root) can connect; that is the
whole authentication, as for corosync's IPC or Docker's socket.

A client can neither block nor kill the node: the server runs on the node's
own loop, a request is bounded (``REQUEST_BYTES_MAX``) and must arrive
within ``REQUEST_TIMEOUT_S``, at most ``CLIENTS_MAX`` connections are served
at once (the others get ``busy``), and any bad request gets an error answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import stat
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from ringward.errors import ConfigError, RingwardError
from ringward.runtime.metrics import ClientSlots
from ringward.runtime.snapshot import snapshot

if TYPE_CHECKING:
    from ringward.runtime.node import Node

__all__ = [
    "CLIENTS_MAX",
    "REQUEST_BYTES_MAX",
    "REQUEST_TIMEOUT_S",
    "RESPONSE_BYTES_MAX",
    "ControlServer",
    "request",
]

logger = logging.getLogger("ringward.runtime")

# A request is a command name and a few options: 4 KiB is plenty, and the
# node never buffers more for a client.
REQUEST_BYTES_MAX: Final = 4096
# An answer is a status document: a few hundred bytes per roster node.
RESPONSE_BYTES_MAX: Final = 1 << 20
# Monitoring polls a few times a second at most; more clients wait outside.
CLIENTS_MAX: Final = 8
# A client that connected must send its request promptly.
REQUEST_TIMEOUT_S: Final = 5.0

Handler = Callable[[], Awaitable[dict[str, Any]]]


def _command(raw: bytes) -> str | dict[str, Any] | None:
    """The request's ``cmd`` (None when it names none), or an error answer."""
    try:
        req = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return _error("bad_request", 'a request is one JSON object, e.g. {"cmd":"status"}')
    cmd = req.get("cmd") if isinstance(req, dict) else None
    return cmd if isinstance(cmd, str) else None


def _error(reason: str, message: str) -> dict[str, Any]:
    return {"ok": False, "error": reason, "message": message}


class ControlServer:
    """Serves ``node``'s control socket at ``path`` on the running loop.

    ``on_leave`` is called (once per request) for ``leave``: the caller
    stops the node, so that leaving goes through its usual shutdown.
    ``extra`` adds keys to the status document (e.g. the metrics address).
    """

    def __init__(
        self,
        node: Node,
        path: Path,
        *,
        on_leave: Callable[[], None],
        extra: Callable[[], dict[str, Any]] | None = None,
    ) -> None:
        self._node = node
        self._path = path
        self._on_leave = on_leave
        self._extra = extra
        self._started_s = time.monotonic()
        self._server: asyncio.Server | None = None
        self._clients = ClientSlots(CLIENTS_MAX)
        self._commands: dict[str, Handler] = {
            "status": self._status,
            "reload": self._reload,
            "leave": self._leave,
            "ping": self._ping,
        }

    @property
    def path(self) -> Path:
        return self._path

    async def start(self) -> None:
        """Bind the socket (replacing a stale one). ConfigError
        ``bad_control_socket`` when the path holds something else or the
        bind fails."""
        p = self._path
        with contextlib.suppress(FileNotFoundError):
            st = p.lstat()
            if not stat.S_ISSOCK(st.st_mode):
                raise ConfigError("bad_control_socket", f"{p} exists and is not a socket")
            # Stale: the state directory's lock says no other node runs here.
            p.unlink()
        old_umask = os.umask(0o177)
        try:
            self._server = await asyncio.start_unix_server(
                self._serve, path=os.fspath(p), limit=REQUEST_BYTES_MAX
            )
        except OSError as exc:
            raise ConfigError("bad_control_socket", f"{p}: {exc.strerror or exc}") from None
        finally:
            os.umask(old_umask)
        os.chmod(p, 0o600)
        logger.info("node %s: control socket %s", self._node.name, p)

    async def close(self) -> None:
        """Stop listening and remove the socket (clients being served finish)."""
        if self._server is not None:
            self._server.close()
            self._server = None
            with contextlib.suppress(OSError):
                self._path.unlink()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            if not self._clients.enter(writer):
                answer = _error("busy", f"more than {CLIENTS_MAX} control clients at once")
            else:
                answer = await self._answer(reader, writer)
            try:
                data = json.dumps(answer, separators=(",", ":"), allow_nan=False).encode()
            except (TypeError, ValueError) as exc:  # NaN, or a value JSON lacks: a bug
                logger.error("node %s: control answer not JSON: %s", self._node.name, exc)
                data = json.dumps(_error("internal", "the answer is not JSON")).encode()
            if len(data) > RESPONSE_BYTES_MAX:
                data = json.dumps(_error("too_large", "the answer is too large")).encode()
            if writer.transport.is_closing():
                return  # pushed out (ClientSlots) or gone: nobody to answer
            writer.write(data + b"\n")
            await asyncio.wait_for(writer.drain(), REQUEST_TIMEOUT_S)
        except (OSError, TimeoutError, RuntimeError):
            # The client went away or stopped reading: its loss (uvloop
            # raises RuntimeError on a closed transport).
            pass
        finally:
            self._clients.leave(writer)
            writer.close()
            with contextlib.suppress(OSError, TimeoutError):
                await asyncio.wait_for(writer.wait_closed(), REQUEST_TIMEOUT_S)

    async def _answer(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> dict[str, Any]:
        raw = await _read_request(reader)
        if isinstance(raw, dict):
            return raw
        if not self._clients.working(writer):
            return _error("busy", "pushed out by newer clients")
        cmd = _command(raw)
        handler = self._commands.get(cmd) if isinstance(cmd, str) else None
        if handler is None:
            unknown = _error("unknown_command", f"cmd must be one of {sorted(self._commands)}")
            return cmd if isinstance(cmd, dict) else unknown
        try:
            return await handler()
        except RingwardError as exc:
            return _error(exc.reason, exc.message)
        except Exception as exc:
            # A bug in a handler must not take the node down with it.
            logger.exception("node %s: control command %s failed", self._node.name, cmd)
            return _error("internal", f"{type(exc).__name__}: {exc}")

    async def _status(self) -> dict[str, Any]:
        doc = snapshot(self._node, self._started_s)
        if self._extra is not None:
            doc.update(self._extra())
        return {"ok": True, "status": doc}

    async def _reload(self) -> dict[str, Any]:
        reload_roster = getattr(self._node, "reload_roster", None)
        if reload_roster is None:
            return _error("unsupported", "this node cannot reload its roster")
        changed = bool(await reload_roster())
        return {"ok": True, "reloaded": changed, "roster_version": self._node.roster.version}

    async def _leave(self) -> dict[str, Any]:
        self._on_leave()
        return {"ok": True, "leaving": True}

    async def _ping(self) -> dict[str, Any]:
        return {"ok": True, "name": self._node.name}


async def _read_request(reader: asyncio.StreamReader) -> bytes | dict[str, Any]:
    """The request's bytes, or the error answer when none arrives whole."""
    try:
        return await asyncio.wait_for(reader.readuntil(b"\n"), REQUEST_TIMEOUT_S)
    except asyncio.IncompleteReadError as exc:
        return exc.partial  # the client closed its side: that ends the request
    except asyncio.LimitOverrunError:
        return _error("too_large", f"a request is at most {REQUEST_BYTES_MAX} bytes")
    except TimeoutError:
        return _error("timeout", f"no request within {REQUEST_TIMEOUT_S:g} s")


def request(path: Path, cmd: str, timeout_s: float = REQUEST_TIMEOUT_S) -> dict[str, Any]:
    """Client side, blocking: send ``{"cmd": cmd}`` to the socket at ``path``
    and return the answer. ConfigError ``no_control_socket`` when no node
    listens there, ``bad_answer`` when the answer is not one JSON object."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    try:
        sock.settimeout(timeout_s)
        try:
            sock.connect(os.fspath(path))
        except (FileNotFoundError, ConnectionRefusedError) as exc:
            raise ConfigError(
                "no_control_socket", f"{path}: no node is running there ({exc.strerror})"
            ) from None
        except OSError as exc:
            raise ConfigError("no_control_socket", f"{path}: {exc.strerror or exc}") from None
        try:
            sock.sendall(json.dumps({"cmd": cmd}).encode() + b"\n")
            chunks: list[bytes] = []
            size = 0
            while size <= RESPONSE_BYTES_MAX and (chunk := sock.recv(65536)):
                chunks.append(chunk)
                size += len(chunk)
        except OSError as exc:
            raise ConfigError("bad_answer", f"{path}: {exc.strerror or exc}") from None
    finally:
        sock.close()
    try:
        answer = json.loads(b"".join(chunks).decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise ConfigError("bad_answer", f"{path}: the node's answer is not JSON") from None
    if not isinstance(answer, dict):
        raise ConfigError("bad_answer", f"{path}: the node's answer is not a JSON object")
    return answer
