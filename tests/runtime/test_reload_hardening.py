"""Regression tests from an adversarial review of live roster reload
(issue #18), on loopback in one process. Waits are bounded by STEP_S."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from test_runtime_node import STEP_S, Collector, make_cluster, run

from ringward.cli import main as main_cli
from ringward.crypto import Identity, KeyDir, Roster, Secrets, keyfile
from ringward.errors import ConfigError, RingwardError
from ringward.eventlog import read_log
from ringward.runtime import Delivered, Node, ViewChanged, bundle, reload
from ringward.runtime import node as node_module
from ringward.runtime.reload import read_roster, split_quorum
from ringward.runtime.udp import resolve_peers
from ringward.sim.checker import check

pytestmark = pytest.mark.xdist_group("loopback")


def test_a_rotated_key_is_opened_off_the_event_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Opening an encrypted key runs Argon2id (~0.4 s, ~2 s at cost
    "sensitive"); on the node's loop that would hold the token and churn
    the ring the node is leaving."""
    make_cluster(tmp_path / "keys", count=2)
    kd = KeyDir(tmp_path / "keys")
    threads: list[int] = []
    load_identity = bundle.KeySource.load_identity

    def recording(self: bundle.KeySource, roster: Roster) -> Identity:
        threads.append(threading.get_ident())
        return load_identity(self, roster)

    monkeypatch.setattr(bundle.KeySource, "load_identity", recording)

    async def main() -> None:
        nodes = [Node.from_dir(kd.path, name=f"node{i}") for i in (1, 2)]
        for n in nodes:
            await n.start()
        cols = [Collector(n) for n in nodes]
        for c in cols:
            await c.until_view_of(2)
        threads.clear()  # from_dir's own loads, before the loop ran
        new = kd.rotate("node2", Secrets())
        assert await nodes[1].reload_roster() is True
        assert nodes[1]._identity.public == new.node_by_name("node2").public
        for n in nodes:
            await n.close()
        for c in cols:
            await c.stop()

    loop_thread = threading.get_ident()
    run(main())
    assert threads and loop_thread not in threads


def _delivered(col: Collector, payload: bytes) -> bool:
    return any(isinstance(e, Delivered) and e.payload == payload for e in col.events)


def _all_delivered(col: Collector, payloads: list[bytes]) -> bool:
    return all(_delivered(col, p) for p in payloads)


def test_event_logs_stay_checkable_across_a_reload(tmp_path: Path) -> None:
    """The guarantee checker reads a node's log after a roster reload: the
    engine the node starts again is a new incarnation, and the log must say
    so, as it does after a restart (docs/guarantees.md)."""
    roster, ids = make_cluster(tmp_path / "keys")
    kd = KeyDir(tmp_path / "keys")
    logs = [tmp_path / f"n{i}.jsonl" for i in (1, 2, 3)]

    async def main() -> None:
        nodes = [Node(roster, i, event_log=log) for i, log in zip(ids, logs, strict=True)]
        for n in nodes:
            await n.start()
        cols = [Collector(n) for n in nodes]
        for c in cols:
            await c.until_view_of(3)
        for i, n in enumerate(nodes):
            await n.broadcast(b"before-%d" % i)
        for c in cols:
            await c.until(partial(_all_delivered, c, [b"before-%d" % i for i in range(3)]))
        new = kd.revoke("node3", Secrets())
        # Queued while the reload happens: in flight across it.
        await nodes[0].broadcast(b"in-flight")
        for n in nodes[:2]:
            assert await n.reload_roster(new) is True
        for c in cols[:2]:
            await c.until_view_of(2)
        for n in nodes[:2]:
            await n.broadcast(b"after-" + n.name.encode())
        for c in cols[:2]:
            await c.until(partial(_all_delivered, c, [b"after-node1", b"after-node2"]))
        # What broadcast() promised is delivered somewhere or counted.
        unsent = nodes[0].status().drops.get("runtime.reload_unsent", 0)
        assert unsent == 1 or any(_delivered(c, b"in-flight") for c in cols)
        for n in nodes:
            await n.close()
        for c in cols:
            await c.stop()

    run(main())
    events = [e for log in logs for e in read_log(log)]
    report = check(events, converge=False)
    assert report.ok, report.format()


def _cluster(path: Path, count: int) -> tuple[KeyDir, Roster]:
    kd = KeyDir(path)
    return kd, kd.init("q", [(f"n{i}", f"127.0.0.1:{7000 + i}") for i in range(1, count + 1)])


def test_split_quorum_during_a_roll_out(tmp_path: Path) -> None:
    """Which roster changes let a quorate old-version ring and a quorate
    new-version ring exist at once (docs/keys.md, Rolling procedure)."""
    kd, v1 = _cluster(tmp_path / "three", 3)
    # Rotating a (stolen) key of a 3-node cluster: the thief with the old
    # key and one node not yet switched make 2 of 3 on version 1, the
    # rotated node and the third 2 of 3 on version 2.
    assert split_quorum(v1, kd.rotate("n3", Secrets()))
    # One node revoked, or one added: never.
    kd, v1 = _cluster(tmp_path / "four", 4)
    assert not split_quorum(v1, kd.revoke("n4", Secrets()))
    kd, v1 = _cluster(tmp_path / "four-add", 4)
    assert not split_quorum(v1, kd.add("n5", "127.0.0.1:7005", Secrets()))
    # A replaced node (revoke + add rolled out as one version) in 3 nodes.
    kd, v1 = _cluster(tmp_path / "replace", 3)
    kd.revoke("n3", Secrets())
    assert split_quorum(v1, kd.add("n4", "127.0.0.1:7004", Secrets()))
    # The example of docs/keys.md: revoking 6 of 10 at once.
    kd, v1 = _cluster(tmp_path / "ten", 10)
    for i in range(5, 11):
        v = kd.revoke(f"n{i}", Secrets())
    assert split_quorum(v1, v)
    assert not split_quorum(v1, v1)


async def _closed(node: Node) -> None:
    while node.status().state != "closed":
        await asyncio.sleep(0.05)


def test_a_node_whose_bundle_is_deleted_as_revoked_stops(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`ringward keys revoke keys/ node3` in a cluster directory deletes
    node3's bundle, roster.bin included: node3, running from it, must still
    learn that it was revoked (from keys/admin/) and stop, not run on
    alone with the old roster."""
    keys = tmp_path / "keys"
    make_cluster(keys / "admin")
    admin = KeyDir(keys / "admin")
    for i in (1, 2, 3):
        admin.export_node(f"node{i}", keys / f"node{i}")

    async def main() -> None:
        nodes = [Node.from_dir(keys / f"node{i}") for i in (1, 2, 3)]
        for n in nodes:
            await n.start()
        cols = [Collector(n) for n in nodes]
        for c in cols:
            await c.until_view_of(3)
        assert main_cli(["keys", "revoke", str(keys), "node3", "--yes"]) == 0
        assert not (keys / "node3" / "roster.bin").exists()
        await asyncio.wait_for(_closed(nodes[2]), STEP_S)
        for c in cols[:2]:
            await c.until_view_of(2)
        for n in nodes:
            await n.close()
        for c in cols:
            await c.stop()

    run(main())
    capsys.readouterr()


def test_a_deleted_bundle_follows_no_other_roster(tmp_path: Path) -> None:
    """The cluster's admin roster stands in for a deleted bundle's only to
    say that the node was revoked: never one that keeps it, never an
    older one, never another admin's."""
    keys = tmp_path / "keys"
    make_cluster(keys / "admin")
    admin = KeyDir(keys / "admin")
    admin.export_node("node3", keys / "node3")
    source = bundle.KeySource(keys / "node3")
    v1 = source.load_roster()
    v2 = admin.rotate("node1", Secrets())  # still lists node3
    for name in ("identity.key", "roster.bin", "roster.state", "admin.pub"):
        (keys / "node3" / name).unlink()
    with pytest.raises(RingwardError):
        read_roster(source, v1, 3, "node3")
    v3 = admin.revoke("node3", Secrets())
    assert read_roster(source, v1, 3, "node3") == v3
    with pytest.raises(RingwardError):  # older than the roster in use
        read_roster(source, v3.__class__.load(keys / "admin" / "roster.bin"), 3, "node3")
    other = tmp_path / "other"
    _, foreign = _cluster(other, 3)
    with pytest.raises(RingwardError):
        read_roster(source, foreign, 3, "n3")
    assert v2.version == 2


def test_a_roster_that_failed_for_a_transient_reason_is_tried_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An added node whose host name is not in DNS yet makes the switch
    fail on every node; once it resolves, the watch must try again by
    itself (no file changes again, nobody sends SIGHUP)."""
    make_cluster(tmp_path / "keys", count=2)
    kd = KeyDir(tmp_path / "keys")
    monkeypatch.setattr(reload, "WATCH_EVERY_S", 0.05)
    failures = [ConfigError("unresolvable_address", "peer node3: not in DNS yet")]

    async def flaky(*args: Any) -> Any:
        if failures:
            raise failures.pop()
        return await resolve_peers(*args)

    async def main() -> None:
        node = Node.from_dir(kd.path, name="node1")
        await node.start()
        col = Collector(node)
        await col.until_view_of(1)
        monkeypatch.setattr(node_module, "resolve_peers", flaky)
        kd.revoke("node2", Secrets())
        await asyncio.wait_for(_version(node, 2), STEP_S)
        assert not failures  # it did fail once
        await node.close()
        await col.stop()

    run(main())


async def _version(node: Node, version: int) -> None:
    while node.status().roster_version != version:
        await asyncio.sleep(0.02)


def test_a_half_written_roster_file_is_read_again_once_complete(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`cp roster.bin BUNDLE/` (not `keys accept`) truncates then writes:
    the watch may read the file half written. It must refuse that, keep
    running, and switch once the file is whole."""
    make_cluster(tmp_path / "keys", count=2)
    kd = KeyDir(tmp_path / "keys")
    export = tmp_path / "node1"
    kd.export_node("node1", export)
    monkeypatch.setattr(reload, "WATCH_EVERY_S", 0.05)

    async def main() -> None:
        node = Node.from_dir(export)
        await node.start()
        col = Collector(node)
        await col.until_view_of(1)
        data = kd.revoke("node2", Secrets()).to_bytes()
        seen: list[int] = []
        load = bundle.KeySource.load_roster

        def counting(self: bundle.KeySource) -> Roster:
            seen.append(1)
            return load(self)

        monkeypatch.setattr(bundle.KeySource, "load_roster", counting)
        (export / "roster.bin").write_bytes(data[: len(data) // 2])
        while not seen:  # the watch read the torn file
            await asyncio.sleep(0.02)
        assert node.status().roster_version == 1 and node.status().state != "closed"
        (export / "roster.bin").write_bytes(data)
        await asyncio.wait_for(_version(node, 2), STEP_S)
        await node.close()
        await col.stop()

    run(main())


def test_a_rotation_whose_roster_arrives_before_the_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`keys accept` of a roster that rotated this node, before its new
    identity.key is copied: refused (key_mismatch), the node runs on; once
    the key arrives the watch switches without anything else."""
    make_cluster(tmp_path / "keys", count=2)
    kd = KeyDir(tmp_path / "keys")
    bundles = [tmp_path / f"node{i}" for i in (1, 2)]
    for i, b in enumerate(bundles, 1):
        kd.export_node(f"node{i}", b)
    monkeypatch.setattr(reload, "WATCH_EVERY_S", 0.05)
    seen: list[tuple[Path, int]] = []
    load = bundle.KeySource.load_roster

    def counting(self: bundle.KeySource) -> Roster:
        roster = load(self)
        seen.append((self.path, roster.version))
        return roster

    monkeypatch.setattr(bundle.KeySource, "load_roster", counting)

    async def main() -> None:
        nodes = [Node.from_dir(b) for b in bundles]
        for n in nodes:
            await n.start()
        cols = [Collector(n) for n in nodes]
        for c in cols:
            await c.until_view_of(2)
        new = kd.rotate("node2", Secrets())
        for b in bundles:
            KeyDir(b).accept(kd.path / "roster.bin")
        while (bundles[1], 2) not in seen:  # node2 read it (and refused it)
            await asyncio.sleep(0.02)
        await asyncio.wait_for(_version(nodes[0], 2), STEP_S)
        assert nodes[1].status().roster_version == 1
        assert nodes[1].status().state != "closed"
        key = (kd.path / "nodes" / "node2.key").read_bytes()
        keyfile.atomic_write(bundles[1] / "identity.key", key, mode=0o600)
        await asyncio.wait_for(_version(nodes[1], 2), STEP_S)
        assert nodes[1]._identity.public == new.node_by_name("node2").public
        await cols[0].until_view_of(2)
        for n in nodes:
            await n.close()
        for c in cols:
            await c.stop()

    run(main())


@pytest.mark.heavy
def test_an_evicted_node_stays_out_across_a_roster_change(tmp_path: Path) -> None:
    """node4 equivocates and is evicted with proof (cool-down 300 s). A
    routine roster change (a parameter) follows; every node switches, node4
    too (it is still in the roster, and an attacker switches on purpose).
    node4 must not be a member of the new version's ring: membership would
    hand it the new group key."""
    roster, ids = make_cluster(tmp_path / "keys", count=4)
    kd = KeyDir(tmp_path / "keys")

    async def main() -> list[tuple[int, ...]]:
        nodes = [
            Node(roster, i, misbehave="equivocate" if n == 3 else None, misbehave_after_s=0.5)
            for n, i in enumerate(ids)
        ]
        for n in nodes:
            await n.start()
        cols = [Collector(n) for n in nodes]

        async def evicted() -> None:
            while not any(e.node_id == 4 and e.proof for e in nodes[0].exclusions()):
                await asyncio.sleep(0.05)

        await asyncio.wait_for(evicted(), STEP_S)
        params = dataclasses.replace(roster.params, window_size=roster.params.window_size + 1)
        new = kd.set_params(params, Secrets())
        for n in nodes:
            assert await n.reload_roster(new) is True
        await asyncio.wait_for(_version(nodes[0], 2), STEP_S)
        # Long enough for node4's join to be answered (a few token timeouts).
        await asyncio.sleep(8 * roster.params.token_timeout_ms / 1000)
        views = [
            e.members
            for e in cols[0].events
            if isinstance(e, ViewChanged) and e.roster_version == 2
        ]
        for n in nodes:
            await n.close()
        for c in cols:
            await c.stop()
        return views

    views = run(main())
    assert views and all(4 not in members for members in views), views
