"""The signed roster: encoding, signature, checks a node makes, rollback."""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crypto_helpers import flip_each_byte
from ringward.crypto import (
    AdminKey,
    Identity,
    NodeEntry,
    ProtocolParams,
    PublicIdentity,
    Roster,
    RosterManifest,
    accept_roster,
    check_roster,
    cluster_id,
    vectors,
)
from ringward.crypto.roster import ROSTER_SIGNING_CONTEXT
from ringward.crypto.state import read_state
from ringward.errors import RosterError
from ringward.wire import limits

ADMIN = vectors.example_admin()


def _manifest(**changes: object) -> RosterManifest:
    return dataclasses.replace(vectors.example_roster(3).manifest, **changes)  # type: ignore[arg-type]


def test_round_trip() -> None:
    roster = vectors.example_roster(5)
    data = roster.to_bytes()
    assert data[:5] == b"RWRS\x01"
    again = Roster.from_bytes(data)
    assert again == roster
    assert again.to_bytes() == data
    assert [n.id for n in again.nodes] == [1, 2, 3, 4, 5]
    assert again.cluster == "example"
    assert again.version == 1
    assert again.params == ProtocolParams()


def test_golden_vector() -> None:
    # Any change of the roster encoding or of its signature input changes
    # this digest: that is a format change and needs a new format version.
    data = vectors.example_roster(3).to_bytes()
    assert len(data) == 638
    assert hashlib.sha256(data).hexdigest() == GOLDEN_SHA256


GOLDEN_SHA256 = "02183a4318f5f15bfb136bda4202298cecd5acf5410e9db536963ceaa97684fa"


def test_every_tampered_byte_is_refused() -> None:
    data = vectors.example_roster(3).to_bytes()
    for mask in (0x01, 0x80, 0xFF):
        for bad in flip_each_byte(data, mask):
            with pytest.raises(RosterError):
                Roster.from_bytes(bad)


def test_truncation_and_extension_are_refused() -> None:
    data = vectors.example_roster(2).to_bytes()
    for n in range(len(data)):
        with pytest.raises(RosterError):
            Roster.from_bytes(data[:n])
    for extra in (b"\x00", b"\xc0", data[-64:]):
        with pytest.raises(RosterError):
            Roster.from_bytes(data + extra)


def test_signature_reasons() -> None:
    data = vectors.example_roster(2).to_bytes()
    with pytest.raises(RosterError) as info:
        Roster.from_bytes(data[:-64] + bytes(64))
    assert info.value.reason == "unsigned"
    with pytest.raises(RosterError) as info:
        Roster.from_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    assert info.value.reason == "bad_signature"
    # Re-signed by another admin than the one the manifest names.
    other = vectors.example_admin("other")
    roster = vectors.example_roster(2)
    forged = roster.to_bytes()[:-64] + other.sign(roster.signing_bytes())
    with pytest.raises(RosterError) as info:
        Roster.from_bytes(forged)
    assert info.value.reason == "bad_signature"
    with pytest.raises(RosterError) as info:
        Roster.sign(roster.manifest, other)
    assert info.value.reason == "wrong_admin"


def test_signature_is_domain_separated() -> None:
    roster = vectors.example_roster(2)
    signed = roster.signing_bytes()
    assert signed.startswith(ROSTER_SIGNING_CONTEXT)
    # A signature of the bare file bytes (no context) is not a roster signature.
    bare = ADMIN.sign(roster.to_bytes()[:-64])
    with pytest.raises(RosterError):
        Roster(roster.manifest, bare)


def test_verify_pins_admin_and_refuses_rollback() -> None:
    roster = vectors.example_roster(3, version=5)
    assert roster.verify(ADMIN.public_key) is roster
    assert roster.verify(ADMIN.public_key, min_version=5) is roster
    with pytest.raises(RosterError) as info:
        roster.verify(ADMIN.public_key, min_version=6)
    assert info.value.reason == "rollback"
    with pytest.raises(RosterError) as info:
        roster.verify(vectors.example_admin("other").public_key)
    assert info.value.reason == "wrong_admin"


def test_cluster_id() -> None:
    roster = vectors.example_roster(2)
    assert len(roster.cluster_id) == limits.CLUSTER_ID_BYTES
    assert roster.cluster_id == cluster_id("example", ADMIN.public_key)
    assert roster.cluster_id == vectors.example_roster(4, version=9).cluster_id
    assert cluster_id("example2", ADMIN.public_key) != roster.cluster_id
    assert cluster_id("example", vectors.example_admin("x").public_key) != roster.cluster_id


def _pub(i: int) -> PublicIdentity:
    return vectors.example_identity(i).public


@pytest.mark.parametrize(
    ("nodes", "reason"),
    [
        ([("a", "h:1", _pub(1)), ("b", "h:1", _pub(2))], "duplicate_address"),
        ([("a", "h:1", _pub(1)), ("A", "h:2", _pub(2))], "duplicate_name"),
        ([("a", "h:1", _pub(1)), ("b", "h:2", _pub(1))], "duplicate_key"),
        (
            [
                ("a", "h:1", _pub(1)),
                ("b", "h:2", PublicIdentity(_pub(2).signing_key, _pub(1).encryption_key)),
            ],
            "duplicate_key",
        ),
        ([("a", "h:1", PublicIdentity(ADMIN.public_key, _pub(1).encryption_key))], "duplicate_key"),
        ([("a", "bad", _pub(1))], "bad_address"),
        ([("1a", "h:1", _pub(1))], "bad_text"),
        ([("a/b", "h:1", _pub(1))], "bad_text"),
        ([], "bad_count"),
    ],
)
def test_inconsistent_manifests_are_refused(
    nodes: list[tuple[str, str, PublicIdentity]], reason: str
) -> None:
    with pytest.raises(RosterError) as info:
        RosterManifest.initial("c", ADMIN.public_key, nodes)
    assert info.value.reason == reason


def test_duplicate_ids_and_noncanonical_address_are_refused() -> None:
    base = vectors.example_roster(3).manifest
    with pytest.raises(RosterError) as info:
        dataclasses.replace(base, nodes=(base.nodes[0], base.nodes[0]))
    assert info.value.reason in ("duplicate_id",)
    with pytest.raises(RosterError) as info:
        dataclasses.replace(base, nodes=(base.nodes[1], base.nodes[0]))
    assert info.value.reason == "duplicate_id"
    with pytest.raises(RosterError) as info:
        dataclasses.replace(base.nodes[0], address="[0::1]:7400")
    assert info.value.reason == "noncanonical_address"
    with pytest.raises(RosterError) as info:
        dataclasses.replace(base, next_node_id=3)
    assert info.value.reason == "bad_next_id"


@pytest.mark.parametrize(
    "changes",
    [
        {"token_timeout_ms": 0},
        {"max_messages": 51},
        {"join_timeout_ms": 1200},
        {"rtr_entries_max": limits.RTR_ENTRIES_MAX + 1},
        {"window_size": True},
    ],
)
def test_bad_params_are_refused(changes: dict[str, object]) -> None:
    with pytest.raises(RosterError) as info:
        ProtocolParams(**changes)  # type: ignore[arg-type]
    assert info.value.reason == "bad_params"


def test_changes_make_new_versions_and_never_reuse_ids() -> None:
    m1 = vectors.example_roster(3).manifest
    m2 = m1.without_node("node3")
    assert m2.version == 2
    assert [n.id for n in m2.nodes] == [1, 2]
    m3 = m2.with_node("node4", "127.0.0.1:7500", _pub(4))
    assert m3.version == 3
    assert m3.node_by_name("node4").id == 4  # not 3: node3's id stays retired
    m4 = m3.with_keys("node1", _pub(9))
    assert m4.version == 4
    n1 = m4.node_by_name("node1")
    assert (n1.id, n1.address, n1.signing_key) == (1, "127.0.0.1:7401", _pub(9).signing_key)
    with pytest.raises(RosterError) as info:
        m4.node_by_name("node3")
    assert info.value.reason == "unknown_node"
    with pytest.raises(RosterError) as info:
        m4.with_node("node5", "127.0.0.1:7402", _pub(5))
    assert info.value.reason == "duplicate_address"
    with pytest.raises(RosterError) as info:
        vectors.example_roster(1).manifest.without_node("node1")
    assert info.value.reason == "last_node"
    for m in (m2, m3, m4):
        roster = Roster.sign(m, ADMIN)
        assert Roster.from_bytes(roster.to_bytes()) == roster


def test_lookups() -> None:
    roster = vectors.example_roster(3)
    assert roster.node(2).name == "node2"
    assert roster.node_by_name("node3").id == 3
    assert roster.node_by_signing_key(_pub(1).signing_key) == roster.node(1)
    assert roster.node_by_signing_key(b"\x00" * 32) is None
    with pytest.raises(RosterError):
        roster.node(4)
    me = vectors.example_identity(2)
    roster.node(2).verify(b"m", me.sign(b"m"))


def test_largest_roster_fits() -> None:
    admin = AdminKey.generate()
    nodes = [
        (
            f"n{i:031d}",
            f"{'h' * 60}.{'h' * 60}.{'h' * 60}.{'h' * 60}.example:{i + 1}",
            Identity.generate().public,
        )
        for i in range(limits.NODES_MAX)
    ]
    roster = Roster.sign(RosterManifest.initial("c" * 48, admin.public_key, nodes), admin)
    assert Roster.from_bytes(roster.to_bytes()) == roster
    with pytest.raises(RosterError):
        RosterManifest.initial(
            "c", admin.public_key, [*nodes, ("extra", "h:1", Identity.generate().public)]
        )


# -- property tests -------------------------------------------------------

_names = st.from_regex(r"[A-Za-z][A-Za-z0-9_-]{0,31}", fullmatch=True)
_hosts = st.one_of(
    st.ip_addresses(v=4).map(str),
    st.ip_addresses(v=6).map(lambda a: f"[{a.compressed}]"),
    st.from_regex(r"[a-z]([a-z0-9-]{0,10}[a-z0-9])?(\.[a-z]{1,8}){0,2}", fullmatch=True),
)
_addresses = st.builds(lambda h, p: f"{h}:{p}", _hosts, st.integers(1, 65535))


@st.composite
def manifests(draw: st.DrawFn) -> RosterManifest:
    count = draw(st.integers(1, 8))
    names = draw(st.lists(_names, min_size=count, max_size=count, unique_by=str.lower))
    addresses = draw(st.lists(_addresses, min_size=count, max_size=count, unique=True))
    nodes = [
        (n, a, vectors.example_identity(i).public)
        for i, (n, a) in enumerate(zip(names, addresses, strict=True))
    ]
    cluster = draw(st.from_regex(r"[A-Za-z][A-Za-z0-9_.-]{0,47}", fullmatch=True))
    token = draw(st.integers(10, 600_000))
    window = draw(st.integers(1, 65_535))
    params = ProtocolParams(
        token_timeout_ms=token,
        consensus_timeout_ms=draw(st.integers(max(51, token), 1_200_000)),
        window_size=window,
        max_messages=draw(st.integers(1, min(window, limits.TOKEN_FRAMES_MAX))),
    )
    try:
        base = RosterManifest.initial(cluster, ADMIN.public_key, nodes, params)
    except RosterError as exc:
        # Two spellings of one address (e.g. an IPv4-mapped form) collide.
        assert exc.reason == "duplicate_address"
        base = RosterManifest.initial(cluster, ADMIN.public_key, nodes[:1], params)
    version = draw(st.integers(1, (1 << 64) - 1))
    return dataclasses.replace(base, version=version)


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(manifests())
def test_property_round_trip(manifest: RosterManifest) -> None:
    roster = Roster.sign(manifest, ADMIN)
    data = roster.to_bytes()
    again = Roster.from_bytes(data)
    assert again == roster
    assert again.to_bytes() == data
    assert again.verify(ADMIN.public_key, min_version=manifest.version) is again


@settings(max_examples=500)
@given(st.binary(max_size=1024))
def test_property_any_bytes_give_roster_or_roster_error(data: bytes) -> None:
    try:
        roster = Roster.from_bytes(data)
    except RosterError as exc:
        assert exc.reason
        return
    assert roster.to_bytes() == data


@settings(max_examples=300)
@given(st.data())
def test_property_any_mutation_of_a_real_roster(data: st.DataObject) -> None:
    good = vectors.example_roster(3).to_bytes()
    position = data.draw(st.integers(0, len(good) - 1))
    patch = data.draw(st.binary(min_size=1, max_size=8))
    bad = good[:position] + patch + good[position + len(patch) :]
    if bad == good:
        return
    with pytest.raises(RosterError):
        Roster.from_bytes(bad)


# -- rollback state --------------------------------------------------------


def test_accept_remembers_and_refuses_rollback(tmp_path: Path) -> None:
    state = tmp_path / "roster.state"
    v1 = vectors.example_roster(3)
    v2 = Roster.sign(v1.manifest.without_node("node3"), ADMIN)
    accept_roster(v1, ADMIN.public_key, state)
    assert read_state(state).version == 1  # type: ignore[union-attr]
    accept_roster(v2, ADMIN.public_key, state)
    assert read_state(state).version == 2  # type: ignore[union-attr]
    with pytest.raises(RosterError) as info:
        accept_roster(v1, ADMIN.public_key, state)
    assert info.value.reason == "rollback"
    accept_roster(v2, ADMIN.public_key, state)  # the same roster again is fine
    # Another roster with the same version: the admin key signed two.
    fork = Roster.sign(v1.manifest.without_node("node2"), ADMIN)
    with pytest.raises(RosterError) as info:
        check_roster(fork, ADMIN.public_key, state)
    assert info.value.reason == "conflicting_roster"
    with pytest.raises(RosterError) as info:
        check_roster(v2, vectors.example_admin("x").public_key, state)
    assert info.value.reason == "wrong_admin"
    other = vectors.example_roster(2, cluster="other", version=3)
    with pytest.raises(RosterError) as info:
        check_roster(other, ADMIN.public_key, state)
    assert info.value.reason == "wrong_cluster"


@pytest.mark.parametrize("content", [b"", b"garbage\n", b"ringward-roster-state 1 00 1 00\n"])
def test_bad_state_file(tmp_path: Path, content: bytes) -> None:
    state = tmp_path / "roster.state"
    state.write_bytes(content)
    with pytest.raises(RosterError) as info:
        check_roster(vectors.example_roster(1), ADMIN.public_key, state)
    assert info.value.reason == "bad_state"


def test_load_and_save(tmp_path: Path) -> None:
    roster = vectors.example_roster(2)
    path = tmp_path / "roster.bin"
    roster.save(path)
    assert Roster.load(path) == roster
    with pytest.raises(RosterError) as info:
        Roster.load(tmp_path / "absent.bin")
    assert info.value.reason == "missing_file"
    path.write_bytes(b"RWRS\x01" + b"\x00" * 200)
    with pytest.raises(RosterError) as info:
        Roster.load(path)
    assert str(path) in info.value.message


# -- the fuzz target, replayed -------------------------------------------


def _fuzz_target() -> object:
    path = Path(__file__).resolve().parents[2] / "fuzz" / "fuzz_roster.py"
    sys.path.insert(0, str(path.parent))
    spec = importlib.util.spec_from_file_location("fuzz_roster", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_fuzz_target_seeds_are_real_and_deterministic() -> None:
    target = _fuzz_target()
    seeds = target.seeds()  # type: ignore[attr-defined]
    assert seeds == target.seeds()  # type: ignore[attr-defined]
    assert len(seeds) >= 3
    for seed in seeds:
        Roster.from_bytes(seed)
        target.TestOneInput(seed)  # type: ignore[attr-defined]
        for bad in flip_each_byte(seed)[::7]:
            target.TestOneInput(bad)  # type: ignore[attr-defined]


def test_node_entry_is_frozen() -> None:
    entry = vectors.example_roster(1).nodes[0]
    assert isinstance(entry, NodeEntry)
    with pytest.raises(dataclasses.FrozenInstanceError):
        entry.name = "x"  # type: ignore[misc]


def test_docs_vector_matches() -> None:
    text = (Path(__file__).resolve().parents[2] / "docs" / "keys.md").read_text()
    block = text.split("<!-- roster-vector -->", 1)[1].split("```", 2)[1]
    documented = bytes.fromhex("".join(block.split()))
    assert documented == vectors.example_roster(1).to_bytes()
    roster = Roster.from_bytes(documented)
    assert roster.admin_key.hex() in text
    assert roster.cluster_id.hex() in text


def test_ids_run_out_cleanly() -> None:
    base = vectors.example_roster(1).manifest
    last = dataclasses.replace(base.nodes[0], id=65535)
    full = dataclasses.replace(base, nodes=(last,), next_node_id=65536)
    roster = Roster.sign(full, ADMIN)
    assert Roster.from_bytes(roster.to_bytes()) == roster
    with pytest.raises(RosterError) as info:
        full.with_node("late", "h:1", _pub(7))
    assert info.value.reason == "ids_exhausted"
