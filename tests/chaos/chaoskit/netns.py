"""A switched LAN of network namespaces, made and always removed.

Layout (``n`` nodes, run ``tag`` = ``rwc<pid>-<k>``)::

    <tag>-br : bridge br0, veth v1..vn (one per node); the relay's
               addresses 10.77.1.101.. and fd77::101.. sit on br0
    <tag>-n1 : eth0 10.77.1.1/24, fd77::1/64  (veth peer of v1)
    ...

Everything is created inside the suite's own namespaces (each veth pair is
made in the bridge namespace with its peer put straight into the node's),
so nothing is configured in the root namespace, and the addresses exist only
there. Removing a namespace removes its veths; node processes are killed
first by their owner (:mod:`chaoskit.procs`), since a namespace lives on
while a process runs in it.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import count
from typing import Final

from chaoskit import cleanup

__all__ = [
    "NODE_PORT",
    "NetnsError",
    "Topology",
    "can_make_namespaces",
    "run_in",
]

# Every node listens on this port of its own address (namespaces do not
# share ports, so one fixed port is enough).
NODE_PORT: Final = 7400
IPV4_NET: Final = "10.77.1"
IPV6_NET: Final = "fd77"
# Relay addresses: node i's is .(RELAY_BASE + i).
RELAY_BASE: Final = 100
# ip commands are quick; a hung one means a broken machine.
_IP_TIMEOUT_S: Final = 20.0

_runs = count(1)


class NetnsError(Exception):
    """Namespaces cannot be made here (not root, no iproute2, ...)."""


def _run(cmd: Sequence[str], *, stdin: str | None = None) -> str:
    try:
        res = subprocess.run(
            list(cmd),
            input=stdin,
            capture_output=True,
            text=True,
            check=False,
            timeout=_IP_TIMEOUT_S,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise NetnsError(f"{' '.join(cmd)}: {exc}") from None
    if res.returncode != 0:
        raise NetnsError(f"{' '.join(cmd)}: {res.stderr.strip() or res.returncode}")
    return res.stdout


def run_in(ns: str, cmd: Sequence[str], *, stdin: str | None = None) -> str:
    """Run ``cmd`` inside namespace ``ns``; NetnsError if it fails."""
    return _run(["ip", "netns", "exec", ns, *cmd], stdin=stdin)


def can_make_namespaces() -> str | None:
    """None if this process can make namespaces, else why not (for a skip)."""
    if os.geteuid() != 0:
        return "the chaos suite needs root (network namespaces, nftables, cgroups)"
    name = f"{cleanup.NS_PREFIX}{os.getpid()}-probe"
    try:
        _run(["ip", "netns", "add", name])
    except NetnsError as exc:
        return f"cannot create a network namespace: {exc}"
    try:
        _run(["ip", "netns", "del", name])
    except NetnsError as exc:
        return f"cannot delete a network namespace: {exc}"
    return None


@dataclass(frozen=True, slots=True)
class NodeNet:
    """One node's namespace and addresses."""

    index: int  # 1-based
    ns: str
    ipv4: str
    ipv6: str
    relay_ipv4: str
    relay_ipv6: str

    def address(self, *, ipv6: bool, relayed: bool = False) -> str:
        """``HOST:PORT`` for the roster (the relay's when ``relayed``)."""
        if ipv6:
            host = self.relay_ipv6 if relayed else self.ipv6
            return f"[{host}]:{NODE_PORT}"
        return f"{self.relay_ipv4 if relayed else self.ipv4}:{NODE_PORT}"


class Topology:
    """``with Topology(n) as topo``: the namespaces exist inside the block."""

    def __init__(self, nodes: int) -> None:
        self.tag = f"{cleanup.NS_PREFIX}{os.getpid()}-{next(_runs)}"
        self.bridge_ns = f"{self.tag}-br"
        self.nodes = [
            NodeNet(
                index=i,
                ns=f"{self.tag}-n{i}",
                ipv4=f"{IPV4_NET}.{i}",
                ipv6=f"{IPV6_NET}::{i}",
                relay_ipv4=f"{IPV4_NET}.{RELAY_BASE + i}",
                relay_ipv6=f"{IPV6_NET}::{RELAY_BASE + i}",
            )
            for i in range(1, nodes + 1)
        ]
        self._made: list[str] = []
        self._undo: cleanup.Undo | None = None

    def __enter__(self) -> Topology:
        cleanup.sweep_stale_namespaces()
        self._undo = cleanup.register(f"remove namespaces {self.tag}-*", self._remove)
        try:
            self._build()
        except BaseException:
            self._undo.run()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        if self._undo is not None:
            self._undo.run()

    def _add_ns(self, name: str) -> None:
        _run(["ip", "netns", "add", name])
        self._made.append(name)
        run_in(name, ["ip", "link", "set", "lo", "up"])

    def _build(self) -> None:
        br = self.bridge_ns
        self._add_ns(br)
        run_in(br, ["ip", "link", "add", "br0", "type", "bridge"])
        run_in(br, ["ip", "link", "set", "br0", "up"])
        for node in self.nodes:
            # The relay's addresses: on the bridge, where the relay runs.
            run_in(br, ["ip", "addr", "add", f"{node.relay_ipv4}/24", "dev", "br0"])
            run_in(br, ["ip", "addr", "add", f"{node.relay_ipv6}/64", "dev", "br0", "nodad"])
        for node in self.nodes:
            self._add_ns(node.ns)
            veth = f"v{node.index}"
            run_in(
                br, ["ip", "link", "add", veth, "type", "veth", "peer", "eth0", "netns", node.ns]
            )
            run_in(br, ["ip", "link", "set", veth, "master", "br0", "up"])
            run_in(node.ns, ["ip", "addr", "add", f"{node.ipv4}/24", "dev", "eth0"])
            # nodad: usable at once instead of after duplicate detection.
            run_in(node.ns, ["ip", "addr", "add", f"{node.ipv6}/64", "dev", "eth0", "nodad"])
            run_in(node.ns, ["ip", "link", "set", "eth0", "up"])

    def _remove(self) -> None:
        errors = []
        for name in reversed(self._made):
            try:
                _run(["ip", "netns", "del", name])
            except NetnsError as exc:
                errors.append(str(exc))
        self._made.clear()
        if errors:
            raise NetnsError("; ".join(errors))

    def node(self, index: int) -> NodeNet:
        """Node ``index`` (1-based)."""
        return self.nodes[index - 1]

    def link(self, index: int, *, up: bool) -> None:
        """Take node ``index``'s cable out (or put it back)."""
        run_in(self.node(index).ns, ["ip", "link", "set", "eth0", "up" if up else "down"])
