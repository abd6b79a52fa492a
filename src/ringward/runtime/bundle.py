"""Loading a node from a key directory: what ``Node.from_dir`` and a live
roster reload read.

A directory is a node bundle (``ringward keys export-node``: the node is
its ``identity.key``), an admin directory (the node is picked by name), or
the cluster directory ``ringward keys init`` writes (``admin/`` next to one
bundle per node: the node's name picks its bundle). The passphrase of an encrypted node key follows
the CLI's conventions: a file whose first line it is (private like a key
file), else the ``RINGWARD_NODE_PASSPHRASE`` environment variable, else
none (docs/keys.md).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from ringward.crypto import keyfile
from ringward.crypto.identity import Identity
from ringward.crypto.keydir import ADMIN_KEY, IDENTITY_KEY, ROSTER_FILE, KeyDir
from ringward.crypto.keyfile import Passphrase
from ringward.crypto.roster import NodeEntry, Roster
from ringward.errors import ConfigError, KeyFileError

__all__ = ["NODE_PASSPHRASE_ENV", "KeySource", "node_dir", "read_passphrase"]

NODE_PASSPHRASE_ENV: Final = "RINGWARD_NODE_PASSPHRASE"  # noqa: S105 (a variable's name)
# `ringward keys init`'s cluster directory keeps the admin part here.
_ADMIN_SUBDIR: Final = "admin"
# A passphrase file holds one line; anything bigger is not one.
_PASSPHRASE_FILE_BYTES_MAX: Final = 4096


def read_passphrase(
    file: str | os.PathLike[str] | None, env: str = NODE_PASSPHRASE_ENV
) -> Passphrase | None:
    """The passphrase from ``file`` (its first line; the file must be
    private like a key file: KeyFileError ``permissions_too_open``
    otherwise; at most 4096 bytes) or else from the environment variable
    ``env``; None when neither is given. An empty one is refused (ConfigError
    ``empty_passphrase``): a variable set but empty is a mistake."""
    if file is not None:
        path = Path(file)
        keyfile.check_private_mode(path)
        data = keyfile.read_bounded(path, _PASSPHRASE_FILE_BYTES_MAX)
        line = data.split(b"\n", 1)[0].removesuffix(b"\r")
        if not line:
            raise ConfigError("empty_passphrase", f"{path}: the first line is empty")
        return line
    value = os.environ.get(env)
    if value is None:
        return None
    if not value:
        raise ConfigError(
            "empty_passphrase",
            f"{env} is set but empty; give a passphrase, or unset it "
            "(and pass --no-passphrase to write keys unencrypted)",
        )
    return value


def node_dir(path: Path, name: str | None) -> Path:
    """``path/name`` when ``path`` is a cluster directory (it holds an
    ``admin/`` directory with keys) and ``name`` is given, else ``path``."""
    admin = path / _ADMIN_SUBDIR
    if name is not None and ((admin / ADMIN_KEY).exists() or (admin / ROSTER_FILE).exists()):
        return path / name
    return path


@dataclass(frozen=True, slots=True)
class KeySource:
    """Where a node's keys live: a bundle, or an admin directory and the
    node's ``name``. Kept by the node so that it can read the roster (and,
    after a rotation, its own new key) again while it runs."""

    path: Path
    name: str | None = None
    # A secret: kept out of repr (logs, tracebacks with locals, debuggers).
    passphrase: Passphrase | None = field(default=None, repr=False)

    @property
    def watched_files(self) -> tuple[Path, Path]:
        """The roster file and this node's key file: what a roster change
        rewrites (a rotation rewrites both, in either order)."""
        kd = KeyDir(self.path)
        key = kd.node_key(self.name) if self.name and not kd.is_bundle else kd.file(IDENTITY_KEY)
        return self.path / ROSTER_FILE, key

    def load_roster(self) -> Roster:
        """The directory's roster, checked against its pinned admin key and
        its roster state (RosterError / KeyFileError otherwise)."""
        return KeyDir(self.path).load_roster()

    def cluster_roster(self) -> Roster | None:
        """The roster of ``admin/`` next to this bundle when the bundle sits
        in a cluster directory (``ringward keys init``'s layout), else None.
        Read when the bundle's own files are gone: the admin verbs delete a
        revoked node's bundle. Not checked against a pinned key here (the
        bundle's is gone): the caller accepts it only from the admin of the
        roster in use (runtime/reload.py)."""
        admin = self.path.parent / _ADMIN_SUBDIR
        if self.path.parent == self.path or not (admin / ROSTER_FILE).exists():
            return None
        return Roster.load(admin / ROSTER_FILE)

    def load(self) -> tuple[Roster, Identity]:
        """The roster and this node's identity (ConfigError when the key
        is not the roster entry's, naming the file)."""
        roster = self.load_roster()
        return roster, self.load_identity(roster)

    def load_identity(self, roster: Roster) -> Identity:
        """This node's identity, which must be its entry in ``roster``."""
        kd = KeyDir(self.path)
        entry: NodeEntry | None
        if kd.is_bundle:
            key_path = kd.file(IDENTITY_KEY)
            identity = Identity.load(key_path, self.passphrase)
            entry = roster.node_by_signing_key(identity.signing_key)
            if entry is None:
                raise ConfigError(
                    "not_in_roster", f"{self.path}: this node is not in the roster (revoked?)"
                )
            if self.name is not None and self.name != entry.name:
                raise ConfigError(
                    "wrong_name", f"{self.path} is the bundle of {entry.name}, not {self.name}"
                )
        else:
            if self.name is None and not kd.file(ADMIN_KEY).exists():
                raise KeyFileError(
                    "missing_file",
                    f"{kd.file(IDENTITY_KEY)}: no such file; {self.path} is not a complete "
                    "node bundle (export it again: ringward keys export-node)",
                )
            if self.name is None:
                raise ConfigError(
                    "name_required", f"{self.path} is an admin directory: pass the node's name"
                )
            entry = roster.node_by_name(self.name)
            key_path = kd.node_key(self.name)
            identity = Identity.load(key_path, self.passphrase)
        if identity.public != entry.public:
            raise ConfigError(
                "key_mismatch",
                f"{key_path}: keys differ from the roster entry of {entry.name} "
                "(run `ringward keys verify`)",
            )
        return identity
