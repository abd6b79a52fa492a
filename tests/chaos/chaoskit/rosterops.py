"""Roster changes while the ring runs, the way an operator makes them:
``ringward keys revoke`` / ``keys add`` on the admin side, then ``ringward
keys accept`` of the new ``roster.bin`` into every running node's bundle
(a node run from a bundle watches its roster file and switches to a newer
version by itself; docs/keys.md).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Final

__all__ = ["add_node", "distribute", "reload_missing", "revoke_node"]

# keys commands are quick; a hung one is a failure.
_KEYS_TIMEOUT_S: Final = 120.0


def reload_missing() -> str | None:
    """None when nodes reload a changed roster while they run, else why a
    roster-change scenario cannot run."""
    try:
        from ringward.runtime import Node
    except ImportError as exc:  # pragma: no cover - the package is installed
        return f"ringward.runtime: {exc}"
    if not hasattr(Node, "reload_roster"):
        return "live roster reload (Node.reload_roster) is not there yet"
    return None


def _keys(args: Sequence[str]) -> str:
    env = {k: v for k, v in os.environ.items() if "PASSPHRASE" not in k}
    res = subprocess.run(
        [sys.executable, "-m", "ringward", "keys", *args],
        capture_output=True,
        text=True,
        timeout=_KEYS_TIMEOUT_S,
        env=env,
        check=False,
    )
    if res.returncode != 0:
        raise RuntimeError(f"ringward keys {' '.join(args)}: {res.stderr.strip()}")
    return res.stdout


def revoke_node(keydir: Path, name: str) -> None:
    """A new roster version without ``name`` (admin side)."""
    _keys(["revoke", str(keydir), name, "--yes"])


def add_node(keydir: Path, name: str, address: str) -> Path:
    """A new roster version with ``name`` at ``address``; its bundle."""
    _keys(["add", str(keydir), "--name", name, "--address", address, "--no-passphrase"])
    bundle = keydir / name
    if not (bundle / "roster.bin").exists():
        _keys(["export-node", str(keydir), name, str(bundle)])
    return bundle


def distribute(keydir: Path, bundles: Iterable[Path]) -> None:
    """``keys accept`` the admin's current roster into each bundle."""
    roster = keydir / "admin" / "roster.bin"
    for bundle in bundles:
        _keys(["accept", str(bundle), str(roster)])
