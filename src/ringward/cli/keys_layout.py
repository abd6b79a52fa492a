"""The cluster directory ``ringward keys init`` writes: the admin part apart
from what nodes run from.

::

    keys/
      admin/          the admin directory (admin.key, admin.pub, roster.bin,
                      roster.state, nodes/NAME.key): stays on the admin machine
      node1/          node1's bundle (identity.key, admin.pub, roster.bin,
      node2/          roster.state): copied to node1's machine, or run from
      ...             here for a cluster on one host

Every admin verb takes the cluster directory (and finds ``admin/`` in it)
or an admin directory itself. In a cluster directory each change also
brings the bundles next to it up to date: an added node gets its bundle, a
rotated node a new ``identity.key``, a revoked node's bundle is deleted, and
every other bundle present accepts the new roster (exactly as ``ringward
keys accept`` would on the node). A bundle the admin removed after copying
it to its node is not written again; bundles elsewhere need the new
``roster.bin`` (docs/keys.md).
"""

from __future__ import annotations

import contextlib
from collections.abc import Collection
from pathlib import Path
from typing import Final

from ringward.crypto import keyfile
from ringward.crypto.identity import Identity
from ringward.crypto.keydir import (
    ADMIN_KEY,
    ADMIN_PUB,
    IDENTITY_KEY,
    ROSTER_FILE,
    STATE_FILE,
    KeyDir,
    read_admin_pub,
)
from ringward.crypto.roster import Roster
from ringward.errors import ConfigError, RingwardError

__all__ = [
    "ADMIN_SUBDIR",
    "admin_dir",
    "bundle_dirs",
    "check_bundle_name",
    "is_cluster_dir",
    "node_dir",
    "sync_bundles",
]

ADMIN_SUBDIR: Final = "admin"
# What a bundle holds (and ring.seq, which a node run from it writes): the
# only files deleted with a revoked node's bundle.
_BUNDLE_FILES: Final = (IDENTITY_KEY, ADMIN_PUB, ROSTER_FILE, STATE_FILE, "ring.seq")


def is_cluster_dir(path: Path | str) -> bool:
    """``path`` holds an ``admin/`` directory with keys (``keys init``'s layout)."""
    admin = Path(path) / ADMIN_SUBDIR
    return (admin / ADMIN_KEY).exists() or (admin / ROSTER_FILE).exists()


def admin_dir(path: Path | str) -> KeyDir:
    """The admin directory of ``path``: ``path/admin`` in a cluster
    directory, else ``path`` itself (an admin directory, or a bundle for
    the verbs that read one)."""
    if is_cluster_dir(path):
        return KeyDir(Path(path) / ADMIN_SUBDIR)
    return KeyDir(path)


def node_dir(path: Path | str, name: str | None) -> Path:
    """Where ``ringward node --keys PATH [--name NAME]`` finds its keys:
    the bundle ``PATH/NAME`` in a cluster directory, else ``PATH``."""
    if not is_cluster_dir(path):
        return Path(path)
    if name is None:
        raise ConfigError(
            "name_required",
            f"{path} is a cluster directory: run a node from its bundle "
            f"(--keys {Path(path) / 'NODE'}) or pass --name NODE",
        )
    return Path(path) / name


def check_bundle_name(name: str) -> None:
    """A node of a cluster directory cannot be called ``admin``: its
    bundle would be the admin directory."""
    if name.lower() == ADMIN_SUBDIR:
        raise ConfigError(
            "reserved_name", f"{name!r} is reserved in a cluster directory (keys/admin/)"
        )


def bundle_dirs(path: Path | str) -> list[Path]:
    """The node bundles directly inside the cluster directory ``path``."""
    return sorted(
        p
        for p in Path(path).iterdir()
        if p.name != ADMIN_SUBDIR and p.is_dir() and KeyDir(p).is_bundle
    )


def sync_bundles(cluster: Path | str, roster: Roster, new_nodes: Collection[str] = ()) -> list[str]:
    """Bring the bundles of the cluster directory ``cluster`` up to date
    with ``roster`` (just published in ``cluster/admin``): write a bundle
    for each of ``new_nodes``, update the bundles present, delete those of
    revoked nodes. A bundle the admin removed (copied to its node) is not
    written again. One line per bundle changed."""
    cluster = Path(cluster)
    admin = KeyDir(cluster / ADMIN_SUBDIR)
    done: list[str] = []
    names = {n.name for n in roster.nodes}
    for stale in bundle_dirs(cluster):
        if stale.name not in names and _ours(stale, roster):
            _remove_bundle(stale)
            done.append(f"deleted the bundle {stale}/ (revoked)")
    for entry in roster.nodes:
        bundle = KeyDir(cluster / entry.name)
        if entry.name in new_nodes:
            admin.export_node(entry.name, bundle.path)
            done.append(f"wrote the bundle {bundle.path}/")
            continue
        if not bundle.is_bundle or not _ours(bundle.path, roster):
            continue
        if Identity.load_public(bundle.file(IDENTITY_KEY)) != entry.public:
            # Rotated: the new key, in place (ring.seq and the rest stay).
            data = keyfile.read_private(admin.node_key(entry.name))
            keyfile.atomic_write(bundle.file(IDENTITY_KEY), data, mode=0o600)
            done.append(f"replaced {bundle.file(IDENTITY_KEY)} (rotated)")
        before = bundle.load_roster().version
        if bundle.accept(admin.file(ROSTER_FILE)).version != before:
            done.append(f"{bundle.path}/ accepted roster version {roster.version}")
    return done


def _ours(bundle: Path, roster: Roster) -> bool:
    """The bundle pins this cluster's admin key (another cluster's bundle,
    copied in by hand, is left alone)."""
    try:
        return read_admin_pub(bundle / ADMIN_PUB) == roster.admin_key
    except RingwardError:
        return False


def _remove_bundle(bundle: Path) -> None:
    """Delete a bundle's files, then the directory if nothing else is in it."""
    for name in _BUNDLE_FILES:
        (bundle / name).unlink(missing_ok=True)
    with contextlib.suppress(OSError):  # the operator's own files stay, with the directory
        bundle.rmdir()
