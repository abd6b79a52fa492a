"""Key directories: the admin's provisioning directory and a node's bundle.

This is the library behind ``ringward keys``; a provisioning service can
call it directly. Two layouts (docs/keys.md, "Directory layout"):

Admin directory (``ringward keys init``)::

    admin.key        admin Ed25519 key (private, 0600, optionally encrypted)
    admin.pub        the admin public key, for pinning (plain text)
    roster.bin       the signed roster
    roster.state     the newest roster version this directory signed
    nodes/NAME.key   one node identity per roster node (private, 0600)

Node bundle (``ringward keys export-node``, mode 0700): ``identity.key``, ``admin.pub``,
``roster.bin`` and ``roster.state`` — never the admin key, never another
node's key.

Every change builds and signs the new roster *before* writing anything
(so a bad name or a duplicate address leaves the directory untouched), then
writes new private keys (O_EXCL; rotate stages ``NAME.key.new``), then the
roster (atomic rename), then the state. A crash in between leaves at most a
stray key file, which ``verify`` reports; never a roster naming a key that
was not written.
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from ringward.crypto import keyfile
from ringward.crypto.identity import AdminKey, Identity
from ringward.crypto.keyfile import KDF_MODERATE, KdfCost, KeyKind, Passphrase
from ringward.crypto.roster import ProtocolParams, Roster, RosterManifest
from ringward.crypto.state import check_roster, read_state, write_state
from ringward.errors import KeyFileError, RingwardError, RosterError

__all__ = [
    "ADMIN_KEY",
    "ADMIN_PUB",
    "IDENTITY_KEY",
    "NODES_DIR",
    "ROSTER_FILE",
    "STATE_FILE",
    "KeyDir",
    "Secrets",
    "change_passphrase",
    "read_admin_pub",
    "write_admin_pub",
]

ADMIN_KEY: Final = "admin.key"
ADMIN_PUB: Final = "admin.pub"
ROSTER_FILE: Final = "roster.bin"
STATE_FILE: Final = "roster.state"
NODES_DIR: Final = "nodes"
IDENTITY_KEY: Final = "identity.key"

_ADMIN_PUB_LINE: Final = re.compile(r"ringward-admin-key 1 ([0-9a-f]{64})\n")


def write_admin_pub(path: Path, key: bytes) -> None:
    """Write the pinned admin public key (one ASCII line)."""
    keyfile.atomic_write(path, f"ringward-admin-key 1 {key.hex()}\n".encode("ascii"))


def read_admin_pub(path: Path) -> bytes:
    """Read a pinned admin public key (KeyFileError when missing or bad)."""
    data = keyfile.read_bounded(path, 256)
    match = _ADMIN_PUB_LINE.fullmatch(data.decode("ascii", errors="replace"))
    if match is None:
        raise KeyFileError("bad_admin_pub", f"{path}: not a ringward admin public key file")
    return bytes.fromhex(match[1])


def change_passphrase(
    path: Path | str,
    old: Passphrase | None,
    new: Passphrase | None,
    kdf: KdfCost = KDF_MODERATE,
) -> KeyKind:
    """Add, change or remove (``new`` None) the passphrase of the private
    key file ``path`` in place; returns what kind of key it holds.

    The key is opened fully first (``old`` is needed when it is encrypted),
    so a wrong passphrase or a damaged file changes nothing. The new file
    replaces the old one atomically, mode 0600: a crash leaves the old or
    the new file, whole. Removing the passphrase of an unencrypted key is
    refused (KeyFileError ``not_encrypted``): nothing would change.
    """
    path = Path(path)
    head = keyfile.decode_key_file(keyfile.read_private(path), str(path), need_secret=False)
    if new is None and not head.encrypted:
        raise KeyFileError("not_encrypted", f"{path} has no passphrase to remove")
    if head.kind is KeyKind.ADMIN:
        admin = AdminKey.load(path, old)
        public, secret = admin.public_key, admin.private_bytes()
    else:
        identity = Identity.load(path, old)
        public = identity.signing_key + identity.encryption_key
        secret = identity.private_bytes()
    data = keyfile.encode_key_file(head.kind, public, secret, new, kdf)
    keyfile.atomic_write(path, data, mode=0o600)
    return head.kind


@dataclass(frozen=True, slots=True)
class Secrets:
    """Passphrases and Argon2id cost for one operation (None: no encryption
    for new keys, and encrypted keys cannot be opened)."""

    admin: Passphrase | None = None
    node: Passphrase | None = None
    kdf: KdfCost = KDF_MODERATE


class KeyDir:
    """An admin directory or a node bundle at ``path``."""

    __slots__ = ("path",)

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)

    def file(self, name: str) -> Path:
        return self.path / name

    def node_key(self, name: str) -> Path:
        return self.path / NODES_DIR / f"{name}.key"

    @property
    def is_bundle(self) -> bool:
        """A node bundle (holds identity.key, no admin key)."""
        return self.file(IDENTITY_KEY).exists() and not self.file(ADMIN_KEY).exists()

    # -- reading -------------------------------------------------------

    def load_roster(self) -> Roster:
        """The roster, checked against the pinned admin key and the state
        file (RosterError / KeyFileError otherwise)."""
        if not self.path.is_dir():
            raise KeyFileError(
                "missing_dir", f"{self.path}: no such directory (run `ringward keys init` first)"
            )
        if not any(self.file(n).exists() for n in (ROSTER_FILE, ADMIN_KEY, IDENTITY_KEY)):
            raise KeyFileError(
                "not_a_key_dir",
                f"{self.path}: no ringward keys here (create them with "
                f"`ringward keys init {self.path} --cluster NAME --nodes N`)",
            )
        roster = Roster.load(self.file(ROSTER_FILE))
        pinned = read_admin_pub(self.file(ADMIN_PUB))
        return check_roster(roster, pinned, self.file(STATE_FILE))

    def load_admin(self, passphrase: Passphrase | None) -> AdminKey:
        """The admin key, which must be the roster's."""
        admin = AdminKey.load(self.file(ADMIN_KEY), passphrase)
        if admin.public_key != read_admin_pub(self.file(ADMIN_PUB)):
            raise KeyFileError("key_mismatch", f"{self.file(ADMIN_KEY)} does not match admin.pub")
        return admin

    # -- the admin's operations ----------------------------------------

    def init(
        self,
        cluster: str,
        nodes: list[tuple[str, str]],
        secrets: Secrets | None = None,
        params: ProtocolParams | None = None,
    ) -> Roster:
        """Create a cluster: admin key, one identity per (name, address),
        the signed version-1 roster. Refuses a directory that already holds
        ringward keys; other files (a README) may be present."""
        for name in (ADMIN_KEY, ADMIN_PUB, ROSTER_FILE, STATE_FILE, NODES_DIR, IDENTITY_KEY):
            if self.file(name).exists():
                raise KeyFileError(
                    "exists", f"{self.file(name)} exists: {self.path} already holds keys"
                )
        admin = AdminKey.generate()
        identities = [Identity.generate() for _ in nodes]
        manifest = RosterManifest.initial(
            cluster,
            admin.public_key,
            [(n, a, i.public) for (n, a), i in zip(nodes, identities, strict=True)],
            params,
        )
        roster = Roster.sign(manifest, admin)
        secrets = secrets or Secrets()
        _mkdir(self.path, exist_ok=True)
        _mkdir(self.path / NODES_DIR, exist_ok=False)
        admin.save(self.file(ADMIN_KEY), secrets.admin, secrets.kdf)
        for (name, _), identity in zip(nodes, identities, strict=True):
            identity.save(self.node_key(name), secrets.node, secrets.kdf)
        write_admin_pub(self.file(ADMIN_PUB), admin.public_key)
        self._publish(roster)
        return roster

    def add(self, name: str, address: str, secrets: Secrets) -> Roster:
        """A new node with a fresh identity; the next roster version."""
        roster = self.load_roster()
        admin = self.load_admin(secrets.admin)
        identity = Identity.generate()
        manifest = roster.manifest.with_node(name, address, identity.public)
        new = Roster.sign(manifest, admin)
        identity.save(self.node_key(name), secrets.node, secrets.kdf)
        self._publish(new)
        return new

    def revoke(self, name: str, secrets: Secrets) -> Roster:
        """Remove node ``name`` from the roster and delete its key file."""
        roster = self.load_roster()
        admin = self.load_admin(secrets.admin)
        new = Roster.sign(roster.manifest.without_node(name), admin)
        self._publish(new)
        _unlink(self.node_key(name))
        return new

    def rotate(self, name: str, secrets: Secrets) -> Roster:
        """Give node ``name`` a fresh identity (same id, name, address)."""
        roster = self.load_roster()
        admin = self.load_admin(secrets.admin)
        identity = Identity.generate()
        new = Roster.sign(roster.manifest.with_keys(name, identity.public), admin)
        staged = self.node_key(name).with_name(f"{name}.key.new")
        identity.save(staged, secrets.node, secrets.kdf)
        self._publish(new)
        try:
            os.replace(staged, self.node_key(name))
        except OSError as exc:
            raise KeyFileError("unwritable", f"{self.node_key(name)}: {exc.strerror}") from None
        return new

    def set_params(self, params: ProtocolParams, secrets: Secrets) -> Roster:
        """The next roster version with protocol parameters ``params`` (the
        nodes and their keys stay); RosterError ``unchanged`` when they are
        the current ones."""
        roster = self.load_roster()
        admin = self.load_admin(secrets.admin)
        new = Roster.sign(roster.manifest.with_params(params), admin)
        self._publish(new)
        return new

    def export_node(self, name: str, out: Path | str) -> Path:
        """Write node ``name``'s bundle to ``out`` (a new or empty directory).

        The bundle holds a private key, so its directory ends up mode 0700:
        a new one is created so, and an existing empty one is chmodded to
        0700 before anything is written into it. An existing directory that
        belongs to another user is refused (KeyFileError ``not_owner``)
        instead: its owner could open it again, or swap its files, at any
        time, so no chmod of ours would make it private.
        """
        roster = self.load_roster()
        entry = roster.node_by_name(name)
        source = self.node_key(name)
        public = Identity.load_public(source)
        if public != entry.public:
            raise KeyFileError(
                "key_mismatch", f"{source} does not match the roster entry of {name}"
            )
        data = keyfile.read_private(source)
        bundle = KeyDir(out)
        if bundle.path.exists() and (not bundle.path.is_dir() or any(bundle.path.iterdir())):
            raise KeyFileError("exists", f"{bundle.path} is not empty; export into a new directory")
        _mkdir(bundle.path, exist_ok=True)
        _make_private_dir(bundle.path)
        keyfile.write_private(bundle.file(IDENTITY_KEY), data)
        write_admin_pub(bundle.file(ADMIN_PUB), roster.admin_key)
        bundle._publish(roster)
        return bundle.path

    # -- a node's operation ----------------------------------------------

    def accept(self, roster_path: Path | str) -> Roster:
        """Install a newer roster into a node bundle after checking it
        against the pinned admin key and the state (rollback refused)."""
        if not self.is_bundle:
            raise KeyFileError("not_a_bundle", f"{self.path} is not a node bundle")
        roster = Roster.load(roster_path)
        check_roster(roster, read_admin_pub(self.file(ADMIN_PUB)), self.file(STATE_FILE))
        state = read_state(self.file(STATE_FILE))
        if state is None or roster.version > state.version:
            self._publish(roster)
        return roster

    def _publish(self, roster: Roster) -> None:
        roster.save(self.file(ROSTER_FILE))
        write_state(self.file(STATE_FILE), roster)

    # -- checking ------------------------------------------------------

    def verify(self, secrets: Secrets | None = None) -> tuple[Roster | None, list[str]]:
        """Every problem of the directory, one line each (empty: all
        consistent). Encrypted private keys are opened when the passphrase
        is given; otherwise only their public half is checked."""
        secrets = secrets or Secrets()
        if not self.path.is_dir():
            return None, [f"{self.path}: no such directory [missing_dir]"]
        problems: list[str] = []
        try:
            roster = self.load_roster()
        except RingwardError as exc:
            return None, [f"{exc.message} [{exc.reason}]"]
        if self.is_bundle:
            problems += _check_bundle(self, roster, secrets)
        else:
            problems += _check_admin_dir(self, roster, secrets)
        return roster, problems


def _check_key(path: Path, passphrase: Passphrase | None, admin: bool) -> str | None:
    """Open a private key fully when possible (checks secret vs public)."""
    try:
        if admin:
            AdminKey.load(path, passphrase)
        else:
            Identity.load(path, passphrase)
    except KeyFileError as exc:
        if exc.reason != "passphrase_required":
            return f"{exc.message} [{exc.reason}]"
    return None


def _check_admin_dir(kd: KeyDir, roster: Roster, secrets: Secrets) -> list[str]:
    problems: list[str] = []
    admin_path = kd.file(ADMIN_KEY)
    try:
        if AdminKey.load_public(admin_path) != roster.admin_key:
            problems.append(f"{admin_path}: not the roster's admin key [key_mismatch]")
        elif (why := _check_key(admin_path, secrets.admin, admin=True)) is not None:
            problems.append(why)
    except KeyFileError as exc:
        problems.append(f"{exc.message} [{exc.reason}]")
    names = set()
    for entry in roster.nodes:
        names.add(f"{entry.name}.key")
        path = kd.node_key(entry.name)
        try:
            if Identity.load_public(path) != entry.public:
                problems.append(f"{path}: keys differ from the roster entry [key_mismatch]")
            elif (why := _check_key(path, secrets.node, admin=False)) is not None:
                problems.append(why)
        except KeyFileError as exc:
            problems.append(f"{exc.message} [{exc.reason}]")
    nodes_dir = kd.path / NODES_DIR
    if nodes_dir.is_dir():
        for extra in sorted(p.name for p in nodes_dir.iterdir() if p.name not in names):
            problems.append(f"{nodes_dir / extra}: not a node of the roster [stray_file]")
    return problems


def _check_bundle(kd: KeyDir, roster: Roster, secrets: Secrets) -> list[str]:
    path = kd.file(IDENTITY_KEY)
    try:
        public = Identity.load_public(path)
    except KeyFileError as exc:
        return [f"{exc.message} [{exc.reason}]"]
    entry = roster.node_by_signing_key(public.signing_key)
    if entry is None:
        return [f"{path}: this node is not in the roster (revoked?) [unknown_node]"]
    if entry.encryption_key != public.encryption_key:
        return [f"{path}: encryption key differs from the roster entry [key_mismatch]"]
    why = _check_key(path, secrets.node, admin=False)
    return [why] if why else []


def _mkdir(path: Path, *, exist_ok: bool) -> None:
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=exist_ok)
    except FileExistsError:
        raise KeyFileError("exists", f"{path} already exists") from None
    except OSError as exc:
        raise KeyFileError("unwritable", f"{path}: {exc.strerror}") from None


def _make_private_dir(path: Path) -> None:
    """Make the directory ``path`` mode 0700, or refuse it (KeyFileError
    ``not_owner``) when another user owns it. Works on an open descriptor,
    so the directory checked is the directory changed."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError as exc:
        raise KeyFileError("unwritable", f"{path}: {exc.strerror}") from None
    try:
        st = os.fstat(fd)
        if st.st_uid != os.geteuid():
            raise KeyFileError(
                "not_owner",
                f"{path} belongs to another user (uid {st.st_uid}); "
                "export into a directory of your own",
            )
        if stat.S_IMODE(st.st_mode) != 0o700:
            os.fchmod(fd, 0o700)
    except OSError as exc:
        raise KeyFileError("unwritable", f"{path}: {exc.strerror}") from None
    finally:
        os.close(fd)


def _unlink(path: Path) -> None:
    try:
        path.unlink(missing_ok=True)
    except OSError as exc:
        raise RosterError("unwritable", f"{path}: {exc.strerror}") from None
