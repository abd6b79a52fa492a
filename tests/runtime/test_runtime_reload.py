"""Live roster reload in one process, on loopback: revoke, add, rotate,
refusals, and the watch on a key directory's roster file.

Every wait is bounded by a functional timeout (STEP_S); nothing asserts on
timing.
"""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

import pytest
from test_runtime_node import STEP_S, Collector, _free_ports, make_cluster, run

from ringward.crypto import AdminKey, Identity, KeyDir, Roster, Secrets
from ringward.errors import ConfigError, RosterError, StateError
from ringward.eventlog import CrashEvent, read_log
from ringward.runtime import Delivered, Node, ViewChanged
from ringward.runtime.engines import wire_cluster_id
from ringward.runtime.reload import check_successor, own_entry
from ringward.sim.checker import check

# Clusters on loopback with wall-clock timers: one at a time (tests/conftest.py).
pytestmark = pytest.mark.xdist_group("loopback")


async def _start(nodes: list[Node]) -> list[Collector]:
    for n in nodes:
        await n.start()
    cols = [Collector(n) for n in nodes]
    for c in cols:
        await c.until_view_of(len(nodes))
    return cols


async def _members(col: Collector, names: set[str]) -> None:
    def now() -> bool:
        view = col.node.view
        return view is not None and set(view.member_names) == names

    await col.until(now)


def _refused(node: Node) -> int:
    """Datagrams dropped on the header as another roster's (or an unknown
    sender's): no signature checked, nothing decrypted."""
    drops = node.status().drops
    return drops.get("foreign_cluster", 0) + drops.get("unknown_sender", 0)


def _delivered(col: Collector, payload: bytes) -> bool:
    return any(isinstance(e, Delivered) and e.payload == payload for e in col.events)


def test_revoke_takes_a_node_out_and_it_reads_nothing_after(tmp_path: Path) -> None:
    roster, ids = make_cluster(tmp_path / "keys")
    kd = KeyDir(tmp_path / "keys")

    async def main() -> None:
        nodes = [Node(roster, i) for i in ids]
        cols = await _start(nodes)
        first = nodes[0].view
        assert first is not None and first.roster_version == 1
        assert first.member_names == ("node1", "node2", "node3")
        new = kd.revoke("node3", Secrets())
        for n in nodes[:2]:
            assert await n.reload_roster(new) is True
            assert await n.reload_roster(new) is False  # already in use
        for c in cols[:2]:
            await _members(c, {"node1", "node2"})
        view = nodes[0].view
        assert view is not None and view.roster_version == 2 and view.members == (1, 2)
        assert nodes[0].status().roster_version == 2
        await nodes[0].broadcast(b"after-revoke")
        await cols[1].until(lambda: _delivered(cols[1], b"after-revoke"))
        # node3 still runs on roster 1 and still sends: refused on the header.
        await cols[0].until(lambda: _refused(nodes[0]) > 0)
        assert not _delivered(cols[2], b"after-revoke")
        for n in nodes:
            await n.close()
        for c in cols:
            await c.stop()
        assert not _delivered(cols[2], b"after-revoke")

    run(main())


def test_rolling_change_one_node_at_a_time(tmp_path: Path) -> None:
    """Nodes on the old roster and nodes on the new one never form a ring
    together, and do not disturb each other: each side settles in its own
    view, and the updated side takes over once it holds a quorum."""
    roster, ids = make_cluster(tmp_path / "keys")
    kd = KeyDir(tmp_path / "keys")

    async def main() -> None:
        nodes = [Node(roster, i) for i in ids]
        cols = await _start(nodes)
        new = kd.revoke("node3", Secrets())
        assert await nodes[0].reload_roster(new)
        await _members(cols[0], {"node1"})
        for c in cols[1:]:
            await _members(c, {"node2", "node3"})
        view1, view2 = nodes[0].view, nodes[1].view
        assert view1 is not None and not view1.quorate  # 1 of 2: no quorum
        assert view2 is not None and view2.quorate and view2.roster_version == 1
        assert await nodes[1].reload_roster(new)
        for c in cols[:2]:
            await _members(c, {"node1", "node2"})
        await cols[2].until(lambda: nodes[2].view is not None and nodes[2].view.members == (3,))
        view = nodes[0].view
        assert view is not None and view.quorate
        await nodes[1].broadcast(b"v2")
        await cols[0].until(lambda: _delivered(cols[0], b"v2"))
        for n in nodes:
            await n.close()
        for c in cols:
            await c.stop()
        assert not _delivered(cols[2], b"v2")

    run(main())


def test_add_lets_a_new_node_join(tmp_path: Path) -> None:
    roster, ids = make_cluster(tmp_path / "keys", count=2)
    kd = KeyDir(tmp_path / "keys")
    (port,) = _free_ports("127.0.0.1", 1)

    async def main() -> None:
        nodes = [Node(roster, i) for i in ids]
        cols = await _start(nodes)
        new = kd.add("node3", f"127.0.0.1:{port}", Secrets())
        third = Node(new, Identity.load(kd.node_key("node3")))
        await third.start()
        cols.append(Collector(third))
        for n in nodes:
            assert await n.reload_roster(new)
        for c in cols:
            await _members(c, {"node1", "node2", "node3"})
        await third.broadcast(b"from-the-new-one")
        for c in cols:
            await c.until(lambda c=c: _delivered(c, b"from-the-new-one"))  # type: ignore[misc]
        got = next(d for d in cols[0].delivered if d.payload == b"from-the-new-one")
        assert got.sender_name == "node3"
        for n in [*nodes, third]:
            await n.close()
        for c in cols:
            await c.stop()

    run(main())


def test_refused_rosters_leave_the_node_running(tmp_path: Path) -> None:
    roster, ids = make_cluster(tmp_path / "keys", count=1)
    kd = KeyDir(tmp_path / "keys")
    other_roster, _ = make_cluster(tmp_path / "other", count=1)
    # The same cluster name, nodes and a higher version, signed by another admin key.
    thief = AdminKey.generate()
    manifest = dataclasses.replace(roster.manifest, version=9, admin_key=thief.public_key)
    forged = Roster.sign(manifest, thief)

    async def main() -> None:
        node = Node(roster, ids[0])
        await node.start()
        await node.ready(timeout_s=STEP_S)
        v2 = kd.rotate("node1", Secrets())  # newer; rotates this node's keys
        for bad, reason in ((forged, "wrong_admin"), (other_roster, "wrong_admin")):
            with pytest.raises(RosterError) as err:
                await node.reload_roster(bad)
            assert err.value.reason == reason
        with pytest.raises(ConfigError) as err2:
            await node.reload_roster(v2)  # its new key was not given
        assert err2.value.reason == "key_mismatch"
        assert await node.reload_roster(v2, identity=Identity.load(kd.node_key("node1")))
        with pytest.raises(RosterError) as err:
            await node.reload_roster(roster)
        assert err.value.reason == "rollback"
        with pytest.raises(StateError) as err3:
            await node.reload_roster()
        assert err3.value.reason == "no_roster_source"
        view = await node.ready(timeout_s=STEP_S)
        assert view.members == (1,)
        async with asyncio.timeout(STEP_S):
            while (v := node.view) is None or v.roster_version != 2:
                await asyncio.sleep(0.05)
        assert node.status().state != "closed"
        await node.close()

    run(main())


def test_a_node_from_a_directory_follows_its_roster_file(tmp_path: Path) -> None:
    """The watch: `keys revoke` in the admin directory the nodes run from
    reaches every node without an API call; the revoked node closes."""
    make_cluster(tmp_path / "keys")
    kd = KeyDir(tmp_path / "keys")

    async def main() -> None:
        nodes = [Node.from_dir(kd.path, name=f"node{i}") for i in (1, 2, 3)]
        cols = await _start(nodes)
        kd.revoke("node3", Secrets())
        for c in cols[:2]:
            await _members(c, {"node1", "node2"})
        await cols[2].until(lambda: nodes[2].status().state == "closed")
        for n in nodes[:2]:
            await n.close()
        for c in cols:
            await c.stop()
        views = [e for e in cols[0].events if isinstance(e, ViewChanged)]
        assert views[-1].roster_version == 2

    run(main())


def test_a_rotated_node_loads_its_new_key_from_its_directory(tmp_path: Path) -> None:
    """`keys rotate` rewrites the roster and the node's key file: the nodes
    running from the directory switch, the rotated one with its new key."""
    make_cluster(tmp_path / "keys", count=2)
    kd = KeyDir(tmp_path / "keys")

    async def main() -> None:
        nodes = [Node.from_dir(kd.path, name=f"node{i}") for i in (1, 2)]
        cols = await _start(nodes)
        new = kd.rotate("node2", Secrets())

        def switched() -> bool:
            view = nodes[0].view
            return view is not None and view.roster_version == 2 and len(view.members) == 2

        await cols[0].until(switched)
        assert nodes[1].status().roster_version == 2
        assert nodes[1]._identity.public == new.node_by_name("node2").public
        await nodes[1].broadcast(b"new-key")
        await cols[0].until(lambda: _delivered(cols[0], b"new-key"))
        for n in nodes:
            await n.close()
        for c in cols:
            await c.stop()

    run(main())


def test_check_successor_rules(tmp_path: Path) -> None:
    roster, _ = make_cluster(tmp_path / "keys", count=2)
    kd = KeyDir(tmp_path / "keys")
    newer = kd.revoke("node2", Secrets())
    assert check_successor(roster, newer) is True
    assert check_successor(newer, newer) is False
    with pytest.raises(RosterError) as err:
        check_successor(newer, roster)
    assert err.value.reason == "rollback"
    sibling = Roster.sign(dataclasses.replace(newer.manifest, cluster="other"), kd.load_admin(None))
    with pytest.raises(RosterError) as err:
        check_successor(roster, sibling)
    assert err.value.reason == "wrong_cluster"
    twin = Roster.sign(roster.manifest.without_node("node1"), kd.load_admin(None))
    assert twin.version == newer.version
    with pytest.raises(RosterError) as err:
        check_successor(newer, twin)
    assert err.value.reason == "conflicting_roster"
    assert own_entry(newer, 1, "node1") is not None
    assert own_entry(newer, 2, "node2") is None
    assert own_entry(newer, 1, "renamed") is None


def test_wire_cluster_id_is_bound_to_the_roster_version(tmp_path: Path) -> None:
    roster, _ = make_cluster(tmp_path / "keys", count=2)
    newer = KeyDir(tmp_path / "keys").revoke("node2", Secrets())
    assert wire_cluster_id(roster) == wire_cluster_id(roster)
    assert wire_cluster_id(roster) != wire_cluster_id(newer)
    assert wire_cluster_id(roster) != roster.cluster_id
    assert len(wire_cluster_id(roster)) == len(roster.cluster_id)


def test_a_reload_under_load_keeps_the_guarantees(tmp_path: Path) -> None:
    """Found by the chaos suite (roster-change-5): nodes broadcasting while
    they switched rosters lost their queued messages (never delivered to
    their sender) and, switching at different moments, entered the new ring
    having delivered different sets in the old one. Now a switch lets the
    old ring deliver what the node broadcast first, and the event log shows
    the switch as a new incarnation: the checker accepts every log."""
    roster, ids = make_cluster(tmp_path / "keys")
    kd = KeyDir(tmp_path / "keys")
    logs = [tmp_path / f"node{k + 1}.jsonl" for k in range(len(ids))]

    async def main() -> None:
        nodes = [Node(roster, i, event_log=log) for i, log in zip(ids, logs, strict=True)]
        cols = await _start(nodes)
        stop = asyncio.Event()

        async def load(node: Node) -> None:
            for k in range(400):  # bounded: at most 400 messages a node
                if stop.is_set():
                    return
                await node.broadcast(f"{node.name}-{k}".encode())
                await asyncio.sleep(0.002)

        tasks = [asyncio.create_task(load(n)) for n in nodes]
        await asyncio.sleep(0.1)
        new = kd.revoke("node3", Secrets())
        assert await nodes[0].reload_roster(new)
        await asyncio.sleep(0.05)
        assert await nodes[1].reload_roster(new)
        for c in cols[:2]:
            await _members(c, {"node1", "node2"})
        await asyncio.sleep(0.1)
        stop.set()
        await asyncio.gather(*tasks)
        for n, c in zip(nodes, cols, strict=True):
            await c.until(lambda n=n: n.telemetry.awaiting() == 0)  # type: ignore[misc]
        for n in nodes:
            await n.close()
        for c in cols:
            await c.stop()

    run(main())
    events = [e for log in logs for e in read_log(log)]
    assert sum(isinstance(e, CrashEvent) for e in events) == 2  # the two switches
    report = check(events, converge=False)
    assert report.ok, report.format()
