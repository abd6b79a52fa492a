"""Live roster reload: which roster a running node may switch to, and the
cheap watch on its key directory that notices ``ringward keys accept``.

A running node accepts a new roster only from the admin who signed the one
it runs (same admin key, same cluster id) and only forward (a higher
version): the rules a node applies to roster files on disk
(:mod:`ringward.crypto.state`), applied to the roster in memory, so a roster
handed over through the API cannot roll a node back either.
The switch itself is :meth:`ringward.runtime.Node.reload_roster`
(docs/keys.md, "Changing the roster of a running cluster").
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import os
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from ringward.crypto.roster import NodeEntry, Roster
from ringward.engine import Engine, quorum_size
from ringward.errors import RingwardError, RosterError
from ringward.runtime.bundle import KeySource

__all__ = [
    "RETRY_MAX_S",
    "WATCH_EVERY_S",
    "FileStamp",
    "Reloader",
    "check_successor",
    "own_entry",
    "read_roster",
    "split_quorum",
]

logger = logging.getLogger("ringward.runtime")

# How often a node loaded from a directory looks at its roster file: one
# stat() per second costs nothing, and a revoked node is out a second after
# `ringward keys accept` plus one membership round.
WATCH_EVERY_S: Final = 1.0
# A roster that failed for a reason that may pass by itself (an added
# node's host name not yet in DNS) is tried again after 2, 4, ... seconds,
# at most this far apart: without it the node would stay on the old roster
# until a file changed again or someone sent SIGHUP.
RETRY_MAX_S: Final = 60.0
_TRANSIENT: Final = frozenset({"unresolvable_address"})


def check_successor(current: Roster, new: Roster) -> bool:
    """Whether ``new`` is a roster to switch to from ``current``: True for
    a newer version of the same cluster signed by the same admin key, False
    for ``current`` itself (nothing to do). RosterError otherwise:
    ``wrong_admin``, ``wrong_cluster``, ``rollback`` (an older version),
    ``conflicting_roster`` (another roster with the same version: the admin
    key signed two, which is how a stolen admin key shows)."""
    if not hmac.compare_digest(new.admin_key, current.admin_key):
        raise RosterError(
            "wrong_admin", "the new roster is signed by another admin key than the one in use"
        )
    if not hmac.compare_digest(new.cluster_id, current.cluster_id):
        raise RosterError(
            "wrong_cluster",
            f"the new roster is of cluster {new.cluster!r}, not {current.cluster!r}",
        )
    if new.version < current.version:
        raise RosterError(
            "rollback", f"roster version {new.version} is older than {current.version} in use"
        )
    if new.version == current.version:
        if hmac.compare_digest(new.digest, current.digest):
            return False
        raise RosterError(
            "conflicting_roster",
            f"another roster with version {new.version} is in use (the admin key signed two)",
        )
    return True


def split_quorum(current: Roster, new: Roster) -> bool:
    """Whether, while a switch from ``current`` to ``new`` rolls out, a
    quorate ring of the old version and a quorate ring of the new one can
    exist at once (a split brain for applications that act on
    ``quorate``). The two rings share no node (a node runs one version),
    so it is possible exactly when the nodes only ``current`` lists plus
    some of those both list make a quorum of ``current`` while the nodes
    only ``new`` lists plus the others make a quorum of ``new``. A rotated
    node counts on both sides: its old key (perhaps stolen) is a node only
    ``current`` lists, its new key one only ``new`` lists. Removing fewer
    than half the nodes, or adding fewer nodes than the roster has, is
    safe alone; a version that does both (a node replaced, a rotation in a
    3-node cluster, or two changes rolled out as one) may not be."""
    old_keys = {(n.id, n.public) for n in current.nodes}
    new_keys = {(n.id, n.public) for n in new.nodes}
    kept = len(old_keys & new_keys)
    gone, added = len(old_keys) - kept, len(new_keys) - kept
    need_old, need_new = quorum_size(len(old_keys)), quorum_size(len(new_keys))
    # The old side takes every node that left and k of the kept ones.
    return any(gone + k >= need_old and added + kept - k >= need_new for k in range(kept + 1))


def read_roster(source: KeySource, current: Roster, node_id: int, name: str) -> Roster:
    """The roster in ``source``'s directory. When that cannot be read and
    the directory was a bundle of a cluster directory, the cluster's admin
    roster instead, but only if it revokes this node and is a successor of
    ``current`` (same admin key and cluster, newer): the admin verbs delete
    a revoked node's bundle, and a node running from it must still learn
    that it was revoked rather than run on alone. Otherwise the error of
    the bundle's own roster."""
    try:
        return source.load_roster()
    except RingwardError:
        try:
            revoking = source.cluster_roster()
            found = revoking is not None and own_entry(revoking, node_id, name) is None
            if found and revoking is not None and check_successor(current, revoking):
                return revoking
        except RingwardError:
            pass  # the bundle's own error says more
        raise


def own_entry(roster: Roster, node_id: int, name: str) -> NodeEntry | None:
    """This node's entry in ``roster`` (same id and name), or None when the
    roster no longer lists it: it was revoked."""
    for entry in roster.nodes:
        if entry.id == node_id:
            return entry if entry.name == name else None
    return None


@dataclass(frozen=True, slots=True)
class FileStamp:
    """What changes when a file is replaced or rewritten: ``keys accept``
    renames a new roster into place (new inode), an editor may rewrite it
    (new size or mtime)."""

    device: int
    inode: int
    size_bytes: int
    mtime_ns: int

    @classmethod
    def of(cls, path: Path) -> FileStamp | None:
        """The file's stamp, or None when it cannot be read (missing: a
        rename in progress; the next look finds it)."""
        try:
            st = os.stat(path)
        except OSError:
            return None
        return cls(st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


class Reloader:
    """One node's reload state: the names of the roster in use, where its
    keys live (``source``, None for a node built from objects), whether its
    EngineConfig was given (else it follows each roster's params), the lock
    that serialises reloads, the counters of the engines it replaced, and
    the watch on the roster file."""

    def __init__(self, roster: Roster, config_given: bool) -> None:
        self.names: dict[int, str] = {entry.id: entry.name for entry in roster.nodes}
        self.source: KeySource | None = None
        self.config_given = config_given
        self.lock = asyncio.Lock()
        self.past_drops: Counter[str] = Counter()
        self.past_notes: Counter[str] = Counter()
        self._stamp: tuple[FileStamp | None, ...] = ()
        self._timer: asyncio.TimerHandle | None = None
        self._task: asyncio.Task[None] | None = None
        self._failures = 0  # transient ones in a row
        self._retry_at: float | None = None  # loop time

    def retire(self, engine: Engine, successor: Roster) -> None:
        """Keep the counters of an engine being replaced; name the nodes
        of the ``successor`` roster from now on."""
        self.past_drops.update({str(k): v for k, v in engine.drops.items()})
        self.past_notes.update({str(k): v for k, v in engine.notes.items()})
        self.names = {entry.id: entry.name for entry in successor.nodes}

    def counts(self, engine: Engine | None) -> tuple[dict[str, int], dict[str, int]]:
        """Drops and notes of every engine of this node, ``engine`` last."""
        drops, notes = Counter(self.past_drops), Counter(self.past_notes)
        if engine is not None:
            drops.update({str(k): v for k, v in engine.drops.items()})
            notes.update({str(k): v for k, v in engine.notes.items()})
        return dict(drops), dict(notes)

    def watch(
        self, loop: asyncio.AbstractEventLoop, reload: Callable[[], Awaitable[object]], name: str
    ) -> None:
        """Look at the source's roster and key files every WATCH_EVERY_S
        and call ``reload`` when they changed (no-op without a source). A
        refused roster is not tried again until a file changes again, unless
        it failed for a transient reason (then again after 2, 4, ... s, up
        to RETRY_MAX_S)."""
        if self.source is None:
            return
        paths = self.source.watched_files
        self._stamp = tuple(FileStamp.of(p) for p in paths)

        def look() -> None:
            self._timer = loop.call_later(WATCH_EVERY_S, look)
            stamp = tuple(FileStamp.of(p) for p in paths)
            due = self._retry_at is not None and loop.time() >= self._retry_at
            if (stamp == self._stamp and not due) or self._task is not None:
                return
            if stamp[0] is None and stamp[1] is not None:
                return  # no roster file but a key: a rename in progress
            # Both gone: a revoked node's bundle deleted (read_roster).
            self._stamp, self._retry_at = stamp, None
            self._task = loop.create_task(self._reload(loop, reload, name))

        self._timer = loop.call_later(WATCH_EVERY_S, look)

    async def _reload(
        self,
        loop: asyncio.AbstractEventLoop,
        reload: Callable[[], Awaitable[object]],
        name: str,
    ) -> None:
        try:
            await reload()
            self._failures = 0
        except RingwardError as exc:
            if exc.reason in _TRANSIENT:
                self._failures += 1
                delay_s = min(RETRY_MAX_S, WATCH_EVERY_S * 2.0 ** min(self._failures, 16))
                self._retry_at = loop.time() + delay_s
                logger.error(
                    "node %s: roster not reloaded: %s (trying again in %g s)", name, exc, delay_s
                )
            elif exc.reason == "revoked":
                logger.error("node %s: %s; the node stopped", name, exc.message)
            else:
                # A bad or old roster file must not stop a running node.
                logger.error("node %s: roster not reloaded: %s", name, exc)
        finally:
            self._task = None

    def stop(self) -> None:
        """Stop watching (and a reload the watch started)."""
        if self._timer is not None:
            self._timer.cancel()
        if self._task is not None and self._task is not asyncio.current_task():
            self._task.cancel()
        self._timer = self._task = None
