"""The roster: the signed manifest that defines a cluster.

Theory of operation (docs/keys.md, "Roster file"):

* A roster file is ``MAGIC || format version || manifest || signature``.
  The manifest is one canonical msgpack map (``ringward.wire.codec``), so
  there is exactly one encoding of each roster and the signature over it is
  well defined. The signature is the admin's Ed25519 signature of
  ``ROSTER_SIGNING_CONTEXT || MAGIC || format version || manifest``; the
  context prefix keeps it from ever being mistaken for a frame signature
  (frames start with ``b"RW"`` and a header, never with this prefix).
* Invariant: every :class:`Roster` object is well formed *and* carries a
  valid signature by the admin key it names; construction checks both.
  Parsing is total: any bytes give a Roster or raise :class:`RosterError`,
  whose ``reason`` is the codec's reason for malformed msgpack.
* What a node additionally checks against its own state lives in
  :meth:`Roster.verify`: the pinned admin key and the lowest acceptable
  version (rollback protection, persisted by :mod:`ringward.crypto.state`).
* The roster is parsed before its signature is checked because the key that
  checks it is inside; that is safe only because the parser is total, bounded
  and fuzzed (fuzz/fuzz_roster.py).
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from ringward.crypto import keyfile
from ringward.crypto.address import ADDRESS_CHARS_MAX, canonical_address
from ringward.crypto.identity import AdminKey, PublicIdentity, verify_signature
from ringward.errors import ConfigError, CryptoError, KeyFileError, RosterError, WireError
from ringward.wire import limits
from ringward.wire.codec import Bytes, List, Record, Text, UInt, pack_record, unpack_record

__all__ = [
    "CLUSTER_NAME_PATTERN",
    "NODE_NAME_PATTERN",
    "PARAM_BOUNDS",
    "ROSTER_BYTES_MAX",
    "ROSTER_FORMAT_VERSION",
    "ROSTER_MAGIC",
    "ROSTER_SIGNING_CONTEXT",
    "NodeEntry",
    "ProtocolParams",
    "Roster",
    "RosterManifest",
    "cluster_id",
]

ROSTER_MAGIC: Final = b"RWRS"
ROSTER_FORMAT_VERSION: Final = 1
ROSTER_SIGNING_CONTEXT: Final = b"ringward roster signature v1\x00"
_PREFIX: Final = ROSTER_MAGIC + bytes([ROSTER_FORMAT_VERSION])

# 256 nodes of at most ~340 encoded bytes each, plus the header fields: a
# roster never legitimately approaches 128 KiB, and a bound keeps a wrong
# file (or a hostile one) from being read whole.
ROSTER_BYTES_MAX: Final = 128 * 1024

# Node names double as file names (nodes/NAME.key): a leading letter rules
# out "." and "..", and no separator can appear.
NODE_NAME_PATTERN: Final = r"[A-Za-z][A-Za-z0-9_-]{0,31}"
CLUSTER_NAME_PATTERN: Final = r"[A-Za-z][A-Za-z0-9_.-]{0,47}"

# Node ids are 1..65535 on the wire (0 = "no node"); next_node_id may
# therefore reach 65536 once id 65535 is used.
_NODE_ID_END: Final = 1 << 16

_CLUSTER_ID_PERSON: Final = b"rw-cluster-id-v1"


def cluster_id(cluster: str, admin_key: bytes) -> bytes:
    """The 8-byte wire-header cluster id: BLAKE2b-64 of the cluster name
    and the admin public key (length-prefixed, personalized)."""
    name = cluster.encode("ascii")
    h = hashlib.blake2b(
        bytes([len(name)]) + name + admin_key,
        digest_size=limits.CLUSTER_ID_BYTES,
        person=_CLUSTER_ID_PERSON,
    )
    return h.digest()


@dataclass(frozen=True, slots=True)
class NodeEntry:
    """One node of the roster. ``address`` is canonical ``host:port``."""

    id: int
    name: str
    address: str
    signing_key: bytes
    encryption_key: bytes

    def __post_init__(self) -> None:
        try:
            canonical = canonical_address(self.address)
        except ConfigError as exc:
            raise RosterError("bad_address", f"node {self.name}: {exc.message}") from None
        if canonical != self.address:
            raise RosterError(
                "noncanonical_address", f"node {self.name}: address must be written {canonical}"
            )

    @property
    def public(self) -> PublicIdentity:
        """The node's public keys."""
        return PublicIdentity(self.signing_key, self.encryption_key)

    def verify(self, data: bytes, signature: bytes) -> None:
        """Raise CryptoError unless ``signature`` is this node's."""
        verify_signature(self.signing_key, data, signature)


# (minimum, maximum) of every protocol parameter, with the reason (also
# what `ringward keys params` shows in its help).
PARAM_BOUNDS: Final[dict[str, tuple[int, int]]] = {
    # Token loss timeout: below 10 ms the OS scheduler alone causes false
    # alarms; above 10 minutes a dead ring is indistinguishable from a hung one.
    "token_timeout_ms": (10, 600_000),
    # Totem's token_retransmits_before_loss_const (default 4).
    "token_retransmits_before_loss": (1, 32),
    # Join re-send interval while gathering (Corosync: 50 ms).
    "join_timeout_ms": (1, 60_000),
    # Give up waiting for matching joins (Corosync: 1.2 x token).
    "consensus_timeout_ms": (10, 1_200_000),
    # Probe for a foreign ring after a partition heals (Corosync: 200 ms).
    "merge_timeout_ms": (10, 600_000),
    # Rotations with a stuck aru before the lagging node fails (Corosync: 2500).
    "fail_recv_const": (1, 1_000_000),
    # Messages per rotation / per visit; a visit cannot exceed what one token
    # can list (TOKEN_FRAMES_MAX).
    "window_size": (1, 65_535),
    "max_messages": (1, limits.TOKEN_FRAMES_MAX),
    # Retransmit requests per token (Totem: 30) within the format's bound.
    "rtr_entries_max": (1, limits.RTR_ENTRIES_MAX),
    # Largest application message; the engine fragments it over datagrams.
    "payload_bytes_max": (1, 16 * 1024 * 1024),
}


@dataclass(frozen=True, slots=True)
class ProtocolParams:
    """Protocol parameters every node must agree on, fixed cluster-wide by
    the roster (defaults: Corosync's, with a 1 s token for LANs)."""

    token_timeout_ms: int = 1000
    token_retransmits_before_loss: int = 4
    join_timeout_ms: int = 50
    consensus_timeout_ms: int = 1200
    merge_timeout_ms: int = 200
    fail_recv_const: int = 2500
    window_size: int = 50
    max_messages: int = 17
    rtr_entries_max: int = 30
    payload_bytes_max: int = 65536

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            low, high = PARAM_BOUNDS[field.name]
            if type(value) is not int or not low <= value <= high:
                raise RosterError("bad_params", f"{field.name}={value!r} not in {low}..{high}")
        if self.max_messages > self.window_size:
            raise RosterError("bad_params", "max_messages must not exceed window_size")
        if self.join_timeout_ms >= self.consensus_timeout_ms:
            raise RosterError("bad_params", "join_timeout_ms must be below consensus_timeout_ms")


def _check_unique(nodes: tuple[NodeEntry, ...], admin_key: bytes) -> None:
    seen: dict[str, set[object]] = {"name": set(), "address": set(), "key": {admin_key}}
    for node in nodes:
        if node.name.lower() in seen["name"]:
            # Case-insensitive: names become file names on case-folding disks.
            raise RosterError("duplicate_name", f"name {node.name!r} appears twice")
        if node.address in seen["address"]:
            raise RosterError("duplicate_address", f"address {node.address} appears twice")
        for key in (node.signing_key, node.encryption_key):
            if key in seen["key"]:
                raise RosterError("duplicate_key", f"node {node.name}: key already in use")
            seen["key"].add(key)
        seen["name"].add(node.name.lower())
        seen["address"].add(node.address)


@dataclass(frozen=True, slots=True)
class RosterManifest:
    """The signed content of a roster.

    ``version`` grows by one with every change; ``next_node_id`` is above
    every id ever assigned, so a revoked node's id is never reused (its old
    signed statements can never be attributed to a newcomer).
    """

    cluster: str
    version: int
    admin_key: bytes
    next_node_id: int
    params: ProtocolParams
    nodes: tuple[NodeEntry, ...]

    def __post_init__(self) -> None:
        if not self.nodes:
            raise RosterError("bad_count", "a roster needs at least one node")
        ids = [n.id for n in self.nodes]
        if ids != sorted(set(ids)):
            raise RosterError("duplicate_id", "node ids must be unique and ascending")
        if not ids[-1] < self.next_node_id <= _NODE_ID_END:
            raise RosterError("bad_next_id", f"next_node_id {self.next_node_id} out of range")
        _check_unique(self.nodes, self.admin_key)

    @classmethod
    def initial(
        cls,
        cluster: str,
        admin_key: bytes,
        nodes: list[tuple[str, str, PublicIdentity]],
        params: ProtocolParams | None = None,
    ) -> RosterManifest:
        """Version 1 of a cluster: ``nodes`` are (name, address, public
        keys), given ids 1, 2, ... in order."""
        entries = tuple(
            _entry(i, name, address, pub) for i, (name, address, pub) in enumerate(nodes, 1)
        )
        return _validated(
            cls(cluster, 1, admin_key, len(entries) + 1, params or ProtocolParams(), entries)
        )

    def node_by_name(self, name: str) -> NodeEntry:
        """The entry called ``name`` (RosterError ``unknown_node``)."""
        for node in self.nodes:
            if node.name == name:
                return node
        known = ", ".join(n.name for n in self.nodes[:8]) + (", ..." if len(self.nodes) > 8 else "")
        raise RosterError("unknown_node", f"no node named {name!r} in the roster (known: {known})")

    def with_node(self, name: str, address: str, public: PublicIdentity) -> RosterManifest:
        """The next version, with a new node under a fresh id."""
        if self.next_node_id >= _NODE_ID_END:
            raise RosterError("ids_exhausted", "every node id 1..65535 has been used")
        entry = _entry(self.next_node_id, name, address, public)
        return _validated(
            dataclasses.replace(
                self,
                version=self.version + 1,
                next_node_id=self.next_node_id + 1,
                nodes=(*self.nodes, entry),
            )
        )

    def without_node(self, name: str) -> RosterManifest:
        """The next version, with node ``name`` removed (revoked)."""
        gone = self.node_by_name(name)
        if len(self.nodes) == 1:
            raise RosterError("last_node", f"{name} is the last node; a roster needs one")
        nodes = tuple(n for n in self.nodes if n is not gone)
        return _validated(dataclasses.replace(self, version=self.version + 1, nodes=nodes))

    def with_params(self, params: ProtocolParams) -> RosterManifest:
        """The next version, with the protocol parameters replaced (the
        nodes stay). Unchanged parameters are refused (RosterError
        ``unchanged``): a new version that changes nothing would only make
        every node accept a roster for no reason."""
        if params == self.params:
            raise RosterError("unchanged", "the roster already has these parameters")
        return _validated(dataclasses.replace(self, version=self.version + 1, params=params))

    def with_keys(self, name: str, public: PublicIdentity) -> RosterManifest:
        """The next version, with node ``name``'s keys replaced (rotation;
        id, name and address stay)."""
        old = self.node_by_name(name)
        new = dataclasses.replace(
            old, signing_key=public.signing_key, encryption_key=public.encryption_key
        )
        nodes = tuple(new if n is old else n for n in self.nodes)
        return _validated(dataclasses.replace(self, version=self.version + 1, nodes=nodes))


def _entry(node_id: int, name: str, address: str, public: PublicIdentity) -> NodeEntry:
    try:
        canonical = canonical_address(address)
    except ConfigError as exc:
        raise RosterError("bad_address", f"node {name}: {exc.message}") from None
    return NodeEntry(node_id, name, canonical, public.signing_key, public.encryption_key)


_NODE_SCHEMA: Final = Record(
    NodeEntry,
    (
        ("id", UInt(16, minimum=1)),
        ("name", Text(NODE_NAME_PATTERN, 32)),
        ("address", Text(r"[\x21-\x7e]+", ADDRESS_CHARS_MAX)),
        ("signing_key", Bytes(32, 32)),
        ("encryption_key", Bytes(32, 32)),
    ),
    as_map=False,
)
_PARAMS_SCHEMA: Final = Record(
    ProtocolParams, tuple((f.name, UInt(32)) for f in dataclasses.fields(ProtocolParams))
)
MANIFEST_SCHEMA: Final = Record(
    RosterManifest,
    (
        ("cluster", Text(CLUSTER_NAME_PATTERN, limits.NAME_CHARS_MAX)),
        ("version", UInt(64, minimum=1)),
        ("admin_key", Bytes(32, 32)),
        ("next_node_id", UInt(17, minimum=2)),
        ("params", _PARAMS_SCHEMA),
        ("nodes", List(_NODE_SCHEMA, limits.NODES_MAX, count_min=1)),
    ),
)


def _validated(manifest: RosterManifest) -> RosterManifest:
    """Check ``manifest`` against the schema too (names, bounds, counts)."""
    _encode_manifest(manifest)
    return manifest


def _encode_manifest(manifest: RosterManifest) -> bytes:
    try:
        return pack_record(MANIFEST_SCHEMA, manifest)
    except WireError as exc:
        raise RosterError(exc.reason, exc.message) from None


@dataclass(frozen=True, slots=True)
class Roster:
    """A manifest with the admin's signature. Construction verifies both
    (see the module's invariant); use :meth:`sign` or :meth:`from_bytes`."""

    manifest: RosterManifest
    signature: bytes

    def __post_init__(self) -> None:
        if type(self.signature) is not bytes or len(self.signature) != limits.SIGNATURE_BYTES:
            raise RosterError("unsigned", "roster carries no signature")
        if self.signature == bytes(limits.SIGNATURE_BYTES):
            raise RosterError("unsigned", "roster signature is blank")
        try:
            verify_signature(self.manifest.admin_key, self.signing_bytes(), self.signature)
        except CryptoError:
            raise RosterError(
                "bad_signature", "roster signature does not verify (tampered or wrong key)"
            ) from None

    @classmethod
    def sign(cls, manifest: RosterManifest, admin: AdminKey) -> Roster:
        """Sign ``manifest`` with ``admin`` (whose key it must name)."""
        if not hmac.compare_digest(admin.public_key, manifest.admin_key):
            raise RosterError("wrong_admin", "this admin key is not the roster's admin key")
        return cls(manifest, admin.sign(_signing_bytes(_encode_manifest(manifest))))

    def signing_bytes(self) -> bytes:
        """The exact bytes the admin signs (context prefix included)."""
        return _signing_bytes(_encode_manifest(self.manifest))

    def to_bytes(self) -> bytes:
        """The canonical file content."""
        return _PREFIX + _encode_manifest(self.manifest) + self.signature

    @classmethod
    def from_bytes(cls, data: bytes) -> Roster:
        """Parse and check a roster file: total, any bytes give a Roster
        (well formed, correctly self-signed) or raise RosterError."""
        data = bytes(data)
        if len(data) < len(_PREFIX) + 1 + limits.SIGNATURE_BYTES:
            raise RosterError("truncated", f"{len(data)} bytes is too short for a roster")
        if len(data) > ROSTER_BYTES_MAX:
            raise RosterError("too_large", f"larger than {ROSTER_BYTES_MAX} bytes")
        if data[:4] != ROSTER_MAGIC:
            raise RosterError("bad_magic", "not a ringward roster file")
        if data[4] != ROSTER_FORMAT_VERSION:
            raise RosterError("bad_version", f"unsupported roster format version {data[4]}")
        body = data[len(_PREFIX) : -limits.SIGNATURE_BYTES]
        try:
            manifest = unpack_record(MANIFEST_SCHEMA, body)
        except WireError as exc:
            # Keep the message one short line: a codec message may list fields.
            detail = exc.message if len(exc.message) <= 120 else exc.message[:117] + "..."
            raise RosterError(exc.reason, f"malformed roster: {detail}") from None
        return cls(manifest, data[-limits.SIGNATURE_BYTES :])

    @classmethod
    def load(cls, path: Path | str) -> Roster:
        """Read and parse a roster file (RosterError on any problem)."""
        path = Path(path)
        try:
            data = keyfile.read_bounded(path, ROSTER_BYTES_MAX)
        except KeyFileError as exc:
            raise RosterError(exc.reason, exc.message) from None
        try:
            return cls.from_bytes(data)
        except RosterError as exc:
            raise RosterError(exc.reason, f"{path}: {exc.message}") from None

    def save(self, path: Path | str) -> None:
        """Write the roster atomically (a crash leaves old or new, whole)."""
        keyfile.atomic_write(Path(path), self.to_bytes())

    def verify(self, pinned_admin_key: bytes, min_version: int = 0) -> Roster:
        """Check the roster against what a node pins: the admin key, and
        the highest version it already accepted (RosterError ``wrong_admin``
        or ``rollback``). Returns ``self``."""
        if not hmac.compare_digest(bytes(pinned_admin_key), self.manifest.admin_key):
            raise RosterError(
                "wrong_admin", "roster is signed by another admin key than the pinned one"
            )
        if self.manifest.version < min_version:
            raise RosterError(
                "rollback",
                f"roster version {self.manifest.version} is older than the accepted {min_version}",
            )
        return self

    @property
    def cluster(self) -> str:
        return self.manifest.cluster

    @property
    def version(self) -> int:
        return self.manifest.version

    @property
    def admin_key(self) -> bytes:
        return self.manifest.admin_key

    @property
    def nodes(self) -> tuple[NodeEntry, ...]:
        return self.manifest.nodes

    @property
    def params(self) -> ProtocolParams:
        return self.manifest.params

    @property
    def cluster_id(self) -> bytes:
        """The 8-byte cluster id of the wire header."""
        return cluster_id(self.manifest.cluster, self.manifest.admin_key)

    @property
    def digest(self) -> bytes:
        """BLAKE2b-256 of the file bytes: tells two rosters of one version apart."""
        return hashlib.blake2b(self.to_bytes(), digest_size=32).digest()

    def node(self, node_id: int) -> NodeEntry:
        """The entry with ``node_id`` (RosterError ``unknown_node``)."""
        for entry in self.manifest.nodes:
            if entry.id == node_id:
                return entry
        raise RosterError("unknown_node", f"no node with id {node_id} in the roster")

    def node_by_name(self, name: str) -> NodeEntry:
        """The entry called ``name`` (RosterError ``unknown_node``)."""
        return self.manifest.node_by_name(name)

    def node_by_signing_key(self, key: bytes) -> NodeEntry | None:
        """The entry whose Ed25519 key is ``key``, if any."""
        for entry in self.manifest.nodes:
            if hmac.compare_digest(entry.signing_key, key):
                return entry
        return None


def _signing_bytes(manifest_bytes: bytes) -> bytes:
    return ROSTER_SIGNING_CONTEXT + _PREFIX + manifest_bytes
