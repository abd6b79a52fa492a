"""Rollback protection: the roster version a node has already accepted.

An attacker who can replace a node's roster file (or replay an old roster
over the network) must not be able to bring back a revoked node's key. So a
node remembers the highest roster version it accepted, with the roster's
digest, in a small state file next to its identity, and refuses anything
older. Two *different* rosters with the same version mean the admin key
signed both: that is refused too (``conflicting_roster``) because it is how
a stolen admin key shows.

State file (one ASCII line, written atomically)::

    ringward-roster-state 1 <cluster id, 16 hex> <version, decimal> <digest, 64 hex>
"""

from __future__ import annotations

import hmac
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from ringward.crypto import keyfile
from ringward.crypto.roster import Roster
from ringward.errors import KeyFileError, RosterError

__all__ = ["AcceptedRoster", "accept_roster", "check_roster", "read_state", "write_state"]

_STATE_LINE: Final = re.compile(
    r"ringward-roster-state 1 ([0-9a-f]{16}) (0|[1-9][0-9]{0,19}) ([0-9a-f]{64})\n"
)
_STATE_BYTES_MAX: Final = 256


@dataclass(frozen=True, slots=True)
class AcceptedRoster:
    """What a node remembers of the newest roster it accepted."""

    cluster_id: bytes
    version: int
    digest: bytes


def read_state(path: Path | str) -> AcceptedRoster | None:
    """The remembered roster, or None when no state file exists yet."""
    path = Path(path)
    try:
        data = keyfile.read_bounded(path, _STATE_BYTES_MAX)
    except KeyFileError as exc:
        if exc.reason == "missing_file":
            return None
        raise RosterError("bad_state", exc.message) from None
    match = _STATE_LINE.fullmatch(data.decode("ascii", errors="replace"))
    if match is None:
        raise RosterError("bad_state", f"{path}: not a ringward roster state file")
    return AcceptedRoster(bytes.fromhex(match[1]), int(match[2]), bytes.fromhex(match[3]))


def write_state(path: Path | str, roster: Roster) -> None:
    """Remember ``roster`` as the newest accepted one (atomic replace)."""
    line = (
        f"ringward-roster-state 1 {roster.cluster_id.hex()} {roster.version} "
        f"{roster.digest.hex()}\n"
    )
    keyfile.atomic_write(Path(path), line.encode("ascii"), mode=0o600)


def check_roster(roster: Roster, pinned_admin_key: bytes, state_path: Path | str) -> Roster:
    """Verify ``roster`` against the pinned admin key and the state file
    (rollback, other cluster, conflicting roster) without changing state."""
    roster.verify(pinned_admin_key)  # the admin key first: the most telling reason
    state = read_state(state_path)
    if state is not None and not hmac.compare_digest(state.cluster_id, roster.cluster_id):
        raise RosterError("wrong_cluster", "roster belongs to another cluster than the state file")
    roster.verify(pinned_admin_key, min_version=state.version if state else 0)
    if (
        state is not None
        and roster.version == state.version
        and not hmac.compare_digest(state.digest, roster.digest)
    ):
        raise RosterError(
            "conflicting_roster",
            f"a different roster with version {roster.version} was already accepted; "
            "the admin key signed two rosters with one version (has it leaked?)",
        )
    return roster


def accept_roster(roster: Roster, pinned_admin_key: bytes, state_path: Path | str) -> Roster:
    """:func:`check_roster`, then remember ``roster`` if it is newer."""
    state = read_state(state_path)
    check_roster(roster, pinned_admin_key, state_path)
    if state is None or roster.version > state.version:
        write_state(state_path, roster)
    return roster
