"""The asyncio runtime and its blocking facade, in one process, on loopback.

Every wait is bounded (asyncio.wait_for with generous functional timeouts);
nothing asserts on timing. Rosters use short timers so that membership
settles in well under a second.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import socket
import threading
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import pytest

from ringward.crypto import KDF_INTERACTIVE, Identity, KeyDir, ProtocolParams, Roster, Secrets
from ringward.errors import ConfigError, KeyFileError, RingwardError, StateError
from ringward.eventlog import DeliverEvent, SendEvent, ViewEvent, parse_lines, payload_digest
from ringward.runtime import (
    Delivered,
    Event,
    MessageId,
    Node,
    ViewChanged,
    engine_config,
    new_event_loop,
)
from ringward.runtime.ringseq import load_ring_seq, store_ring_seq
from ringward.sync import Node as SyncNode

T = TypeVar("T")

# Functional timeout for one scenario step: far above what it needs on an
# idle machine, so a loaded CI machine does not fail it.
STEP_S = 30.0

FAST = ProtocolParams(token_timeout_ms=400, consensus_timeout_ms=800, join_timeout_ms=40)
# Clusters on loopback with wall-clock timers: one at a time (tests/conftest.py).
pytestmark = pytest.mark.xdist_group("loopback")


def _free_ports(host: str, count: int) -> list[int]:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    socks = [socket.socket(family, socket.SOCK_DGRAM) for _ in range(count)]
    try:
        for s in socks:
            s.bind((host, 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _ipv6_available() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
            s.bind(("::1", 0))
    except OSError:
        return False
    return True


def make_cluster(
    path: Path, host: str = "127.0.0.1", count: int = 3, params: ProtocolParams = FAST
) -> tuple[Roster, list[Identity]]:
    """A fresh cluster (library KeyDir, as `ringward keys init` makes it)."""
    shown = f"[{host}]" if ":" in host else host
    ports = _free_ports(host, count)
    kd = KeyDir(path)
    roster = kd.init(
        "rt", [(f"node{i}", f"{shown}:{p}") for i, p in enumerate(ports, 1)], params=params
    )
    return roster, [Identity.load(kd.node_key(f"node{i}")) for i in range(1, count + 1)]


def run(coro: Coroutine[Any, Any, T], *, uvloop: bool = True) -> T:
    with asyncio.Runner(loop_factory=lambda: new_event_loop(prefer_uvloop=uvloop)) as r:
        return r.run(coro)


class Collector:
    """Consumes one node's events into a list, until told to stop."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self.events: list[Event] = []
        self.changed = asyncio.Event()
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        async for ev in self.node.events():
            self.events.append(ev)
            self.changed.set()

    @property
    def delivered(self) -> list[Delivered]:
        return [e for e in self.events if isinstance(e, Delivered)]

    async def until(self, pred: Callable[[], bool], timeout: float = STEP_S) -> None:
        async def loop() -> None:
            while not pred():
                self.changed.clear()
                await self.changed.wait()

        await asyncio.wait_for(loop(), timeout)

    async def until_delivered(self, count: int) -> None:
        await self.until(lambda: len(self.delivered) >= count)

    async def until_view_of(self, size: int) -> None:
        await self.until(lambda: self.node.view is not None and len(self.node.view.members) == size)

    async def stop(self) -> None:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task


async def _start_all(nodes: list[Node]) -> list[Collector]:
    for n in nodes:
        await n.start()
    cols = [Collector(n) for n in nodes]
    full = len(nodes)
    for c in cols:
        await c.until_view_of(full)
    return cols


async def _all_broadcast(nodes: list[Node], cols: list[Collector], per_node: int) -> None:
    async def send(n: Node) -> list[MessageId]:
        return [
            await n.broadcast(f"{n.name}-{i}".encode(), safe=i % 7 == 0) for i in range(per_node)
        ]

    sent = await asyncio.wait_for(asyncio.gather(*(send(n) for n in nodes)), STEP_S)
    total = per_node * len(nodes)
    for c in cols:
        await c.until_delivered(total)
    orders = [[d.msg_id for d in c.delivered] for c in cols]
    assert all(o == orders[0] for o in orders), "members delivered different sequences"
    assert len(set(orders[0])) == total
    for ids in sent:
        # Sender FIFO: each node's messages appear in the order it sent them.
        mine = [m for m in orders[0] if m.sender == ids[0].sender]
        assert mine == ids
    for d in cols[0].delivered:
        assert d.payload.decode().startswith(f"node{d.sender}-")
        assert d.safe == (int(d.payload.decode().rsplit("-", 1)[1]) % 7 == 0)


@pytest.mark.parametrize(
    ("host", "uvloop"),
    [("127.0.0.1", True), ("127.0.0.1", False), ("::1", True)],
    ids=["ipv4-uvloop", "ipv4-asyncio", "ipv6"],
)
def test_three_nodes_deliver_one_sequence(tmp_path: Path, host: str, uvloop: bool) -> None:
    if host == "::1" and not _ipv6_available():
        pytest.skip("IPv6 loopback is not available")
    roster, ids = make_cluster(tmp_path / "keys", host)

    async def main() -> None:
        nodes = [Node(roster, i) for i in ids]
        try:
            cols = await _start_all(nodes)
            await _all_broadcast(nodes, cols, per_node=200)
            st = nodes[0].status()
            assert st.state == "operational"
            assert st.members == (1, 2, 3) and st.quorate
            assert st.broadcasts == 200 and st.deliveries == 600
            assert st.backlog == 0
            for c in cols:
                await c.stop()
        finally:
            for n in nodes:
                await n.close()

    run(main(), uvloop=uvloop)


def test_send_backpressure_is_bounded(tmp_path: Path) -> None:
    """A burst far larger than the engine's send queue completes; the queue
    never holds more than its bound (the runtime buffers nothing itself)."""
    roster, ids = make_cluster(tmp_path / "keys")
    queue_max = 16
    config = engine_config(roster, send_queue_max=queue_max)
    burst = 3000

    async def main() -> None:
        nodes = [Node(roster, i, config=config) for i in ids]
        try:
            cols = await _start_all(nodes)
            peak = 0
            waited = 0

            async def sender() -> None:
                nonlocal peak, waited
                for i in range(burst):
                    before = asyncio.get_running_loop().time()
                    await nodes[0].broadcast(i.to_bytes(4, "big") * 64)
                    waited += asyncio.get_running_loop().time() > before
                    peak = max(peak, nodes[0].status().backlog)

            await asyncio.wait_for(sender(), STEP_S)
            assert peak <= queue_max
            for c in cols:
                await c.until_delivered(burst)
            payloads = [d.payload for d in cols[2].delivered]
            assert payloads == [i.to_bytes(4, "big") * 64 for i in range(burst)]
            for c in cols:
                await c.stop()
        finally:
            for n in nodes:
                await n.close()

    run(main())


def test_a_burst_of_broadcasts_is_drained_once(tmp_path: Path) -> None:
    """broadcast() defers the engine's drain to the loop's next turn: a burst
    that never yields costs one drain, and every message is still delivered
    (with its latency in the node's telemetry)."""
    roster, ids = make_cluster(tmp_path / "keys")
    burst = 50

    async def main() -> None:
        nodes = [Node(roster, i) for i in ids]
        try:
            cols = await _start_all(nodes)
            drains = 0
            plain = nodes[0]._after_verb

            def counting() -> None:
                nonlocal drains
                drains += 1
                plain()

            nodes[0]._after_verb = counting  # type: ignore[method-assign]
            sent = [await nodes[0].broadcast(bytes([i])) for i in range(burst)]
            assert drains == 0  # nothing ran in between: the drain is still due
            for c in cols:
                await c.until_delivered(burst)
            assert [d.msg_id for d in cols[1].delivered] == sent
            assert nodes[0].telemetry.deliveries == burst
            assert sum(nodes[0].telemetry.latency_counts) == burst
            for c in cols:
                await c.stop()
        finally:
            for n in nodes:
                await n.close()

    run(main())


def test_slow_application_pauses_reading(tmp_path: Path) -> None:
    """An application that stops consuming: the node stops reading at its
    event bound (pressure), the backlog stays bounded, and once the
    application catches up the node is back in a full ring."""
    roster, ids = make_cluster(tmp_path / "keys")
    bound = 20

    async def main() -> None:
        nodes = [Node(roster, i, event_queue_max=bound if i is ids[2] else 10_000) for i in ids]
        try:
            cols = await _start_all(nodes)
            await cols[2].stop()  # node3's application stalls
            for i in range(300):
                await nodes[0].broadcast(b"m%d" % i)
            await cols[0].until(lambda: len(cols[0].delivered) >= 300)
            st = nodes[2].status()
            assert st.pressure >= 1
            # Bounded by the limit plus what one engine verb produced.
            assert st.event_backlog <= bound + 300
            # Stalled for a few token timeouts, node3 may lose the ring (the
            # protocol's business); either way, once the application catches
            # up it reads again and is (back) in a full ring.
            await asyncio.sleep(3 * FAST.token_timeout_ms / 1000)
            slow = Collector(nodes[2])

            def recovered() -> bool:
                view = nodes[2].view
                return (
                    view is not None
                    and len(view.members) == 3
                    and not nodes[2].status().reading_paused
                )

            await slow.until(recovered)
            marker = await nodes[1].broadcast(b"after")
            await slow.until(lambda: any(d.msg_id == marker for d in slow.delivered))
            for c in [*cols[:2], slow]:
                await c.stop()
        finally:
            for n in nodes:
                await n.close()

    run(main())


def test_clean_shutdown(tmp_path: Path) -> None:
    roster, ids = make_cluster(tmp_path / "keys")

    async def main() -> None:
        nodes = [Node(roster, i) for i in ids]
        cols = await _start_all(nodes)
        await nodes[0].broadcast(b"last")
        await cols[1].until(lambda: len(cols[1].delivered) == 1)
        for c in cols:
            await c.stop()
        address = nodes[0].address
        for n in nodes:
            await n.close()
            await n.close()  # idempotent
        # The node owns no task: only this one is left.
        assert asyncio.all_tasks() == {asyncio.current_task()}
        # Queued events stay readable, then the iterator ends.
        leftovers = [e async for e in nodes[2].events()]
        assert all(isinstance(e, Delivered | ViewChanged) for e in leftovers)
        with pytest.raises(StateError):
            await nodes[0].broadcast(b"too late")
        with pytest.raises(StateError):
            await nodes[0].start()
        # The port is free again at once.
        again = Node(roster, ids[0])
        await again.start()
        assert again.address == address
        await again.close()

    run(main())


def test_close_wakes_a_blocked_broadcast(tmp_path: Path) -> None:
    roster, ids = make_cluster(tmp_path / "keys", count=3)
    config = engine_config(roster, send_queue_max=1)

    async def main() -> None:
        # Alone, node1 never forms a ring with the others, so its queue fills.
        node = Node(roster, ids[0], config=config)
        await node.start()
        await node.broadcast(b"first")
        blocked = asyncio.create_task(node.broadcast(b"second"))
        await asyncio.sleep(0.05)
        assert not blocked.done()
        await node.close()
        with pytest.raises(StateError):
            await asyncio.wait_for(blocked, STEP_S)

    run(main())


def test_event_log_matches_events(tmp_path: Path) -> None:
    roster, ids = make_cluster(tmp_path / "keys")
    shared = io.StringIO()

    async def main() -> list[list[Event]]:
        nodes = [Node(roster, ids[0], event_log=tmp_path / "n1.jsonl")]
        nodes += [Node(roster, i, event_log=shared) for i in ids[1:]]
        try:
            cols = await _start_all(nodes)
            for i in range(5):
                await nodes[0].broadcast(b"log %d" % i, safe=i == 4)
            for c in cols:
                await c.until_delivered(5)
                await c.stop()
            return [c.events for c in cols]
        finally:
            for n in nodes:
                await n.close()

    seen = run(main())
    own = parse_lines((tmp_path / "n1.jsonl").read_text().splitlines())
    sends = [e for e in own if isinstance(e, SendEvent)]
    delivers = [e for e in own if isinstance(e, DeliverEvent)]
    assert [s.digest for s in sends] == [payload_digest(b"log %d" % i) for i in range(5)]
    assert [s.safe for s in sends] == [False] * 4 + [True]
    assert [d.id for d in delivers] == [s.id for s in sends]
    assert [str(d.msg_id) for d in seen[0] if isinstance(d, Delivered)] == [s.id for s in sends]
    views = [e for e in own if isinstance(e, ViewEvent)]
    assert views and views[-1].members == (1, 2, 3)
    times = [e.t for e in own]
    assert times == sorted(times) and times[0] >= 0
    others = parse_lines(shared.getvalue().splitlines())
    assert {e.node for e in others} == {2, 3}
    assert sum(isinstance(e, DeliverEvent) for e in others) == 10


def test_engine_config_follows_the_roster(tmp_path: Path) -> None:
    params = ProtocolParams(
        token_timeout_ms=30, consensus_timeout_ms=90, join_timeout_ms=5, window_size=40
    )
    roster, _ = make_cluster(tmp_path / "keys", params=params)
    cfg = engine_config(roster)
    assert cfg.token_timeout_ms == 30 and cfg.consensus_timeout_ms == 90
    assert cfg.join_timeout_ms == 5 and cfg.window_size == 40
    assert cfg.payload_bytes_max == params.payload_bytes_max
    assert cfg.token_hold_idle_ms < cfg.token_timeout_ms // 2
    assert engine_config(roster, send_queue_max=7).send_queue_max == 7


def test_ring_seq_survives_a_restart(tmp_path: Path) -> None:
    roster, ids = make_cluster(tmp_path / "keys")
    files = [tmp_path / f"n{i}.seq" for i in range(3)]

    async def cycle() -> list[int]:
        nodes = [Node(roster, i, ring_seq_file=f) for i, f in zip(ids, files, strict=True)]
        try:
            cols = await _start_all(nodes)
            for c in cols:
                await c.stop()
            assert all(n.view is not None for n in nodes)
            return [int(n.view.view_id.rsplit(".", 1)[1]) for n in nodes if n.view]
        finally:
            for n in nodes:
                await n.close()

    first = run(cycle())
    stored = [load_ring_seq(f) for f in files]
    assert stored == first and all(s > 0 for s in stored)
    # Every node restarts at once: the new ring's sequence is higher.
    second = run(cycle())
    assert min(second) > max(first)
    assert load_ring_seq(tmp_path / "missing.seq") == 0
    bad = tmp_path / "bad.seq"
    bad.write_text("twelve\n")
    with pytest.raises(ConfigError) as err:
        load_ring_seq(bad)
    assert err.value.reason == "bad_ring_seq_file"
    store_ring_seq(bad, 12)
    assert load_ring_seq(bad) == 12


def test_identity_outside_the_roster_is_refused(tmp_path: Path) -> None:
    roster, _ = make_cluster(tmp_path / "keys")
    with pytest.raises(ConfigError) as err:
        Node(roster, Identity.generate())
    assert err.value.reason == "not_in_roster"


def test_unresolvable_or_busy_address(tmp_path: Path) -> None:
    roster, ids = make_cluster(tmp_path / "keys")

    async def main() -> None:
        first = Node(roster, ids[0])
        await first.start()
        try:
            with pytest.raises(ConfigError) as err:
                await Node(roster, ids[0]).start()  # same port, already bound
            assert err.value.reason == "bind_failed"
            with pytest.raises(ConfigError):
                await Node(roster, ids[1], bind="no-such-host.invalid:1").start()
        finally:
            await first.close()
        assert asyncio.all_tasks() == {asyncio.current_task()}

    run(main())


def test_sync_facade(tmp_path: Path) -> None:
    roster, ids = make_cluster(tmp_path / "keys")
    nodes = [SyncNode(roster, i) for i in ids]
    for n in nodes:
        n.start()
    try:
        first = nodes[0].ready(timeout_s=STEP_S)
        assert first.kind == "regular" and first.roster_version == roster.version
        for n in nodes:
            deadline_views = 0
            while n.view is None or len(n.view.members) < 3:
                n.next_event(timeout=STEP_S)
                deadline_views += 1
                assert deadline_views < 100

        def sender(n: SyncNode) -> None:
            for i in range(50):
                n.broadcast(b"%s %d" % (n.name.encode(), i))

        threads = [threading.Thread(target=sender, args=(n,)) for n in nodes]
        for t in threads:
            t.start()
        for t in threads:
            t.join(STEP_S)
        orders = []
        for n in nodes:
            got: list[MessageId] = []
            while len(got) < 150:
                ev = n.next_event(timeout=STEP_S)
                if isinstance(ev, Delivered):
                    got.append(ev.msg_id)
            orders.append(got)
        assert orders[0] == orders[1] == orders[2]
        with pytest.raises(TimeoutError):
            nodes[0].next_event(timeout=0.05)
        assert nodes[0].status().deliveries == 150
    finally:
        for n in nodes:
            n.close()
    assert not any(t.name.startswith("ringward-node") for t in threading.enumerate())
    assert nodes[0].next_event(timeout=1) is None
    with pytest.raises(StateError):
        nodes[0].broadcast(b"closed")


def test_ready_waits_for_the_first_view_without_consuming_it(tmp_path: Path) -> None:
    roster, ids = make_cluster(tmp_path / "keys", count=2)

    async def main() -> None:
        lonely = Node(roster, ids[0])
        with pytest.raises(StateError) as err:
            await lonely.ready()
        assert err.value.reason == "node_new"
        nodes = [lonely, Node(roster, ids[1])]
        for n in nodes:
            await n.start()
        views = await asyncio.gather(*(n.ready(timeout_s=STEP_S) for n in nodes))
        for view in views:
            assert view.kind == "regular"
            assert view.members == (1, 2)
            assert view.member_names == ("node1", "node2")
            assert view.roster_version == roster.version
        assert await nodes[0].ready() is views[0]  # at once, the same view
        # events() still yields that view first (ready() consumed nothing).
        first = await asyncio.wait_for(anext(aiter(nodes[0].events())), STEP_S)
        assert isinstance(first, ViewChanged) and first.view_id == views[0].view_id
        status = nodes[0].status()
        assert status.roster_version == roster.version
        assert status.member_names == ("node1", "node2")
        await nodes[0].broadcast(bytearray(b"ba"))
        await nodes[0].broadcast(memoryview(b"xmv")[1:])
        col = Collector(nodes[1])
        await col.until_delivered(2)
        assert [d.payload for d in col.delivered] == [b"ba", b"mv"]
        assert {d.sender_name for d in col.delivered} == {"node1"}
        await col.stop()
        for n in nodes:
            await n.close()
        with pytest.raises(StateError) as err:
            await nodes[0].ready()
        assert err.value.reason == "node_closed"

    run(main())


def test_ready_times_out_and_close_wakes_it(tmp_path: Path) -> None:
    roster, ids = make_cluster(tmp_path / "keys", count=3)

    async def main() -> None:
        node = Node(roster, ids[0])
        await node.start()
        assert node.view is None  # membership needs the loop to run first
        with pytest.raises(StateError) as err:
            await node.ready(timeout_s=0)
        assert err.value.reason == "ready_timeout"
        waiter = asyncio.create_task(node.ready())
        await asyncio.sleep(0)
        await node.close()
        with pytest.raises(StateError) as err:
            await asyncio.wait_for(waiter, STEP_S)
        assert err.value.reason == "node_closed"

    run(main())


@pytest.mark.parametrize(
    ("payload", "hint"), [(5, "int"), ("text", "encode"), ([1, 2], "list"), (None, "NoneType")]
)
def test_broadcast_takes_bytes_like_only(tmp_path: Path, payload: object, hint: str) -> None:
    roster, ids = make_cluster(tmp_path / "keys", count=1)

    async def main() -> None:
        async with Node(roster, ids[0]) as node:
            with pytest.raises(ConfigError) as err:
                await node.broadcast(payload)  # type: ignore[arg-type]
            assert err.value.reason == "not_bytes"
            assert hint in err.value.message
            assert node.status().broadcasts == 0

    run(main())


def test_from_dir_loads_a_bundle_or_an_admin_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    roster, _ = make_cluster(tmp_path / "keys", count=1)
    kd = KeyDir(tmp_path / "keys")
    bundle = kd.export_node("node1", tmp_path / "node1")
    node = Node.from_dir(bundle)
    assert (node.name, node.node_id, node.roster) == ("node1", 1, roster)
    node = Node.from_dir(kd.path, name="node1", event_queue_max=7)
    assert node.name == "node1"
    for path, name, reason in (
        (kd.path, None, "name_required"),
        (bundle, "node2", "wrong_name"),
    ):
        with pytest.raises(ConfigError) as err:
            Node.from_dir(path, name=name)
        assert err.value.reason == reason
    with pytest.raises(RingwardError):
        Node.from_dir(tmp_path / "nowhere")
    # An encrypted bundle: the passphrase by argument, file or environment.
    enc = KeyDir(tmp_path / "enc")
    enc.init("enc", [("a", "127.0.0.1:1")], Secrets(node="s3cret", kdf=KDF_INTERACTIVE))
    with pytest.raises(KeyFileError):
        Node.from_dir(enc.path, name="a")
    assert Node.from_dir(enc.path, name="a", passphrase="s3cret").name == "a"
    secret = tmp_path / "pass"
    secret.write_text("s3cret\n")
    secret.chmod(0o600)
    assert Node.from_dir(enc.path, name="a", passphrase_file=secret).name == "a"
    monkeypatch.setenv("RINGWARD_NODE_PASSPHRASE", "s3cret")
    assert Node.from_dir(enc.path, name="a").name == "a"
    assert SyncNode.from_dir(enc.path, name="a").name == "a"
    monkeypatch.setenv("RINGWARD_NODE_PASSPHRASE", "")
    with pytest.raises(ConfigError) as err:
        Node.from_dir(enc.path, name="a")
    assert err.value.reason == "empty_passphrase"
