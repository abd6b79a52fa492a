"""A blocking facade over :class:`ringward.runtime.Node` for threaded code.

The node runs on its own event loop (uvloop when available) in a background
daemon thread; every method hands work to that loop and waits for the
result, so the engine is only ever touched from the loop's thread. Methods
may be called from any thread except the node's own (that would deadlock,
and raises StateError instead).

Waiting for an event never loses one: the wait (which a timeout may cancel)
and the pop (which cannot be interrupted) are two separate steps.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Coroutine, Iterator
from os import PathLike
from types import TracebackType
from typing import Any, Final, TypeVar, Unpack

from ringward.crypto.identity import Identity
from ringward.crypto.keyfile import Passphrase
from ringward.crypto.roster import Roster
from ringward.engine import MessageId
from ringward.errors import StateError
from ringward.runtime.events import Event, NodeStatus, ViewChanged
from ringward.runtime.loop import new_event_loop
from ringward.runtime.node import Node as AsyncNode
from ringward.runtime.options import NodeOptions

__all__ = ["Node"]

T = TypeVar("T")

# How long start() and close() wait for the loop thread (resolving names may
# take a while; anything longer means the thread is stuck).
LIFECYCLE_TIMEOUT_S: Final = 30.0


class Node:
    """A ringward node for threaded code::

        with ringward.sync.Node(roster, identity) as node:
            node.broadcast(b"hello")
            for event in node.events():
                ...

    ``roster``, ``identity`` and every keyword option
    (:class:`~ringward.runtime.options.NodeOptions`) go to the asyncio
    :class:`ringward.runtime.Node`'s constructor unchanged: same meanings,
    same defaults, same checks. ``prefer_uvloop`` picks the loop the
    background thread runs.
    """

    def __init__(
        self,
        roster: Roster,
        identity: Identity,
        *,
        prefer_uvloop: bool = True,
        **options: Unpack[NodeOptions],
    ) -> None:
        self._wrap(AsyncNode(roster, identity, **options), prefer_uvloop)

    def _wrap(self, node: AsyncNode, prefer_uvloop: bool) -> None:
        self._node = node
        self._prefer_uvloop = prefer_uvloop
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @classmethod
    def from_dir(
        cls,
        path: str | PathLike[str],
        *,
        name: str | None = None,
        passphrase: Passphrase | None = None,
        passphrase_file: str | PathLike[str] | None = None,
        prefer_uvloop: bool = True,
        **options: Unpack[NodeOptions],
    ) -> Node:
        """A node loaded from a key directory in one call (see the asyncio
        :meth:`ringward.runtime.Node.from_dir`)."""
        node = cls.__new__(cls)
        node._wrap(
            AsyncNode.from_dir(
                path, name=name, passphrase=passphrase, passphrase_file=passphrase_file, **options
            ),
            prefer_uvloop,
        )
        return node

    @property
    def node_id(self) -> int:
        return self._node.node_id

    @property
    def name(self) -> str:
        return self._node.name

    # ------------------------------------------------------------ lifecycle

    def __enter__(self) -> Node:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def start(self) -> None:
        """Start the loop thread and the node (ConfigError as the asyncio
        Node's start)."""
        if self._thread is not None:
            raise StateError("already_started", f"node {self.name} was started before")
        loop = new_event_loop(prefer_uvloop=self._prefer_uvloop)
        self._loop = loop
        self._thread = threading.Thread(
            target=self._run_loop, args=(loop,), name=f"ringward-{self.name}", daemon=True
        )
        self._thread.start()
        try:
            self._call(self._node.start(), LIFECYCLE_TIMEOUT_S)
        except BaseException:
            self._stop_loop()
            raise

    def close(self) -> None:
        """Close the node and stop its thread. Idempotent. Events still
        queued stay readable through :meth:`next_event`."""
        if self._loop is None or self._loop.is_closed():
            return
        if self._thread is not None and self._thread.is_alive():
            self._call(self._node.close(), LIFECYCLE_TIMEOUT_S)
        self._stop_loop()

    @staticmethod
    def _run_loop(loop: asyncio.AbstractEventLoop) -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_forever()
        finally:
            # The node itself owns no task; cancel whatever a caller's
            # coroutine left behind (a broadcast waiting at close).
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()
            if pending:
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    def _stop_loop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(loop.stop)
        if thread is not None and thread is not threading.current_thread():
            thread.join(LIFECYCLE_TIMEOUT_S)

    def _call(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        loop = self._loop
        if loop is None or loop.is_closed():
            coro.close()
            raise StateError("node_not_running", f"node {self.name} is not running")
        if threading.current_thread() is self._thread:
            coro.close()
            raise StateError("wrong_thread", "blocking call from the node's own loop thread")
        future = asyncio.run_coroutine_threadsafe(coro, loop)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise TimeoutError(f"node {self.name}: no result within {timeout} s") from None

    @property
    def _stopped(self) -> bool:
        return self._thread is not None and not self._thread.is_alive()

    # ---------------------------------------------------------- public API

    def broadcast(
        self,
        data: bytes | bytearray | memoryview,
        *,
        safe: bool = False,
        timeout: float | None = None,
    ) -> MessageId:
        """Queue ``data`` for total-order delivery; blocks while the send
        queue is full. On TimeoutError the message may or may not have been
        queued."""
        return self._call(self._node.broadcast(data, safe=safe), timeout)

    def ready(self, timeout_s: float | None = None) -> ViewChanged:
        """Block until the first regular view is installed and return it
        (see the asyncio :meth:`ringward.runtime.Node.ready`)."""
        return self._call(self._node.ready(timeout_s))

    def reload_roster(
        self, roster: Roster | None = None, *, identity: Identity | None = None
    ) -> bool:
        """Switch to a newer roster (see the asyncio
        :meth:`ringward.runtime.Node.reload_roster`)."""
        return self._call(self._node.reload_roster(roster, identity=identity))

    def next_event(self, timeout: float | None = None) -> Event | None:
        """The next event; None once the node is closed and every event has
        been read; TimeoutError when none arrives within ``timeout`` s."""
        while True:
            if self._stopped:
                # The loop thread is gone: nothing else touches the node.
                return self._node._pop_event()
            if not self._call(self._node._wait_event(), timeout):
                return None
            event = self._call(_pop(self._node))
            if event is not None:
                return event
            # Another thread took it; wait again.

    def events(self) -> Iterator[Event]:
        """Every event until the node is closed (blocks between events)."""
        while (event := self.next_event()) is not None:
            yield event

    @property
    def view(self) -> ViewChanged | None:
        """The regular configuration installed last (see the asyncio Node)."""
        return self._node.view

    def status(self) -> NodeStatus:
        """A snapshot of the node, taken on its loop thread."""
        if self._stopped:
            return self._node.status()
        return self._call(_status(self._node), LIFECYCLE_TIMEOUT_S)


async def _pop(node: AsyncNode) -> Event | None:
    return node._pop_event()


async def _status(node: AsyncNode) -> NodeStatus:
    return node.status()
