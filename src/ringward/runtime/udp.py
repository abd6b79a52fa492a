"""Addresses and the node's one UDP socket.

Every roster address is resolved once, when the node starts; a name that
later changes its address needs a restart (a ring has few, long-lived
members, and re-resolving on every send would put DNS on the token path).

The socket's family follows the bind address. An IPv6 socket also reaches
IPv4 peers through v4-mapped addresses when the kernel allows dual-stack
sockets (``IPV6_V6ONLY`` off, as Linux sets by default).

The socket is used raw (non-blocking, ``loop.add_reader``) rather than
through an asyncio datagram transport, for two reasons: uvloop's UDP
transport cannot pause reading, which the runtime needs for backpressure;
and a transport buffers sends without bound when the kernel's buffer is
full, whereas a dropped datagram is something the protocol already
tolerates (it retransmits).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from dataclasses import dataclass
from typing import Final

from ringward.crypto.address import split_address
from ringward.crypto.roster import Roster
from ringward.errors import ConfigError

__all__ = [
    "RECEIVE_BUFFER_BYTES",
    "SEND_BUFFER_BYTES",
    "Peers",
    "open_socket",
    "resolve_peers",
    "split_bind",
]

# Kernel socket buffers we ask for (the kernel caps them at net.core.rmem_max
# / wmem_max). One token visit bursts up to max_messages frames from the
# holder plus a token; a loop iteration busy with the application must not
# make the kernel drop them, so ask for far more than one visit's worth.
RECEIVE_BUFFER_BYTES: Final = 4 << 20
SEND_BUFFER_BYTES: Final = 1 << 20

SockAddr = tuple[str, int] | tuple[str, int, int, int]


@dataclass(frozen=True, slots=True)
class Peers:
    """The resolved addresses of every other roster node."""

    family: socket.AddressFamily
    by_id: dict[int, SockAddr]

    @property
    def all(self) -> tuple[SockAddr, ...]:
        return tuple(self.by_id.values())


def split_bind(bind: str | tuple[str, int]) -> tuple[str, int]:
    """``"host:port"`` / ``"[v6]:port"`` or ``(host, port)`` → (host, port),
    the host without brackets. Port 0 asks the kernel for a free port."""
    if isinstance(bind, tuple):
        host, port = bind
        if not isinstance(port, int) or not 0 <= port <= 65535:
            raise ConfigError("bad_bind", f"bind port {port!r} is not 0..65535")
        return host.strip("[]"), port
    if bind.endswith(":0"):
        # split_address refuses port 0, which is fine for a roster but a
        # legitimate request for an ephemeral port here.
        host, _ = split_address(bind[:-2] + ":1")
        return host, 0
    return split_address(bind)


async def _resolve(
    loop: asyncio.AbstractEventLoop, host: str, port: int, family: int, what: str
) -> tuple[socket.AddressFamily, SockAddr]:
    flags = socket.AI_V4MAPPED if family == socket.AF_INET6 else 0
    try:
        infos = await loop.getaddrinfo(
            host, port, family=family, type=socket.SOCK_DGRAM, flags=flags
        )
    except OSError as exc:
        raise ConfigError("unresolvable_address", f"{what} {host}:{port}: {exc}") from None
    if not infos:
        raise ConfigError("unresolvable_address", f"{what} {host}:{port}: no address")
    fam, _, _, _, addr = infos[0]
    return fam, addr  # type: ignore[return-value]


async def resolve_peers(
    loop: asyncio.AbstractEventLoop, roster: Roster, node_id: int, bind: tuple[str, int]
) -> tuple[SockAddr, Peers]:
    """Resolve the bind address, then every other roster node's address in
    the bind address's family."""
    family, local = await _resolve(loop, bind[0], bind[1], socket.AF_UNSPEC, "bind address")
    by_id: dict[int, SockAddr] = {}
    for entry in roster.nodes:
        if entry.id == node_id:
            continue
        host, port = split_address(entry.address)
        _, addr = await _resolve(loop, host, port, family, f"node {entry.name}")
        by_id[entry.id] = addr
    return local, Peers(family, by_id)


def open_socket(family: socket.AddressFamily, local: SockAddr) -> socket.socket:
    """A bound, non-blocking UDP socket (ConfigError ``bind_failed``)."""
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        sock.setblocking(False)
        for option, size in (
            (socket.SO_RCVBUF, RECEIVE_BUFFER_BYTES),
            (socket.SO_SNDBUF, SEND_BUFFER_BYTES),
        ):
            # Best effort: an unprivileged process gets the kernel's cap.
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, option, size)
        if family == socket.AF_INET6:
            with contextlib.suppress(OSError, AttributeError):
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind(local)
    except OSError as exc:
        sock.close()
        raise ConfigError("bind_failed", f"cannot bind UDP {local[0]}:{local[1]}: {exc}") from None
    return sock
