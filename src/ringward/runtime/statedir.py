"""A node's state directory: ``ring.seq``, the control socket, a lock.

Keys are configuration (an exported bundle may live read-only under /etc);
what a node writes while it runs lives apart, in its *state directory*:

* ``ring.seq`` — the ring sequence kept across restarts (runtime/ringseq.py);
* ``control.sock`` — the control channel (runtime/control.py);
* ``node.lock`` — held (``flock``) while the node runs, so that two
  processes never share one ``ring.seq``: a ring sequence written by another
  node could be lower than one this node has seen, and ring ids would repeat.

Where it is, first match wins (docs/operations.md):

1. ``--state-dir DIR``;
2. ``$STATE_DIRECTORY`` (set by systemd for ``StateDirectory=``; its first
   entry when it lists several);
3. ``$XDG_STATE_HOME/ringward/NAME``;
4. ``/var/lib/ringward/NAME`` for root;
5. ``~/.local/state/ringward/NAME``.

The directory is created 0700 (parents as needed); an existing one that other
users can write to, or that belongs to another user, is refused: whoever can
write there can replace the socket or ``ring.seq``. So is one below a
directory that another user owns or may write to (no sticky bit): that user
could swap the state directory for a symlink. An existing directory keeps its
mode unless it holds only a node's files (``--state-dir /var/lib`` must not
chmod /var/lib).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from ringward.errors import ConfigError

__all__ = [
    "CONTROL_SOCKET",
    "LOCK_FILE",
    "RING_SEQ_FILE",
    "UNIX_PATH_BYTES_MAX",
    "StateDir",
    "default_state_dir",
]

RING_SEQ_FILE: Final = "ring.seq"
CONTROL_SOCKET: Final = "control.sock"
LOCK_FILE: Final = "node.lock"
# sun_path is 108 bytes on Linux, including the terminating NUL.
UNIX_PATH_BYTES_MAX: Final = 107
_DIR_MODE: Final = 0o700


def default_state_dir(name: str, environ: Mapping[str, str] | None = None) -> Path:
    """Where node ``name`` keeps its state when no ``--state-dir`` is given
    (rules 2-5 of the module docstring)."""
    env = os.environ if environ is None else environ
    systemd = env.get("STATE_DIRECTORY", "").split(":")[0]
    if systemd and os.path.isabs(systemd):  # systemd sets absolute paths only
        return Path(systemd)
    xdg = env.get("XDG_STATE_HOME", "")
    if xdg and os.path.isabs(xdg):  # the XDG spec: relative values are ignored
        return Path(xdg) / "ringward" / name
    if os.geteuid() == 0:
        return Path("/var/lib/ringward") / name
    return Path.home() / ".local" / "state" / "ringward" / name


def _check_parents(p: Path) -> None:
    """Refuse a state directory below a directory that another user owns,
    or may write to without the sticky bit (as on /tmp): that user could
    rename the state directory (or a directory above it) away and put a
    symlink in its place between the checks and the use, and the node
    (root, often) would create its lock, socket and ring.seq wherever the
    link points."""
    me = os.geteuid()
    for parent in Path(os.path.abspath(p)).parents:
        try:
            st = parent.stat()
        except OSError as exc:
            raise ConfigError("bad_state_dir", f"{parent}: {exc.strerror or exc}") from None
        if st.st_uid not in (0, me):
            raise ConfigError(
                "bad_state_dir",
                f"{p}: {parent} belongs to uid {st.st_uid}, who could replace what is in it",
            )
        if st.st_mode & 0o022 and not st.st_mode & stat.S_ISVTX:
            raise ConfigError(
                "bad_state_dir",
                f"{p}: {parent} is writable by others, who could replace what is in it "
                f"(chmod go-w {parent})",
            )


def _only_ours(p: Path) -> bool:
    """``p`` holds nothing but what a node writes there."""
    ours = {RING_SEQ_FILE, CONTROL_SOCKET, LOCK_FILE}
    try:
        # ring.seq's temporary files start with a dot.
        return all(n in ours or n.startswith(".") for n in os.listdir(p))
    except OSError:
        return False


@dataclass(frozen=True, slots=True)
class StateDir:
    """The paths inside one state directory."""

    path: Path

    @property
    def ring_seq(self) -> Path:
        return self.path / RING_SEQ_FILE

    @property
    def control_socket(self) -> Path:
        return self.path / CONTROL_SOCKET

    @property
    def lock_file(self) -> Path:
        return self.path / LOCK_FILE

    def prepare(self) -> None:
        """Create the directory (0700) or check an existing one.
        ConfigError ``bad_state_dir`` when it cannot be used safely."""
        p = self.path
        try:
            p.mkdir(mode=_DIR_MODE, parents=True, exist_ok=True)
            st = p.lstat()
        except OSError as exc:
            raise ConfigError("bad_state_dir", f"{p}: {exc.strerror or exc}") from None
        if not stat.S_ISDIR(st.st_mode):
            raise ConfigError("bad_state_dir", f"{p}: not a directory (or a symlink)")
        if st.st_uid != os.geteuid():
            raise ConfigError("bad_state_dir", f"{p}: belongs to uid {st.st_uid}, not to us")
        if st.st_mode & 0o022:
            raise ConfigError(
                "bad_state_dir", f"{p}: writable by others (chmod 700 {p}, or remove it)"
            )
        _check_parents(p)
        if st.st_mode & 0o077 and _only_ours(p):
            # Ours, not writable by others, readable, and holding nothing
            # but a node's files: tighten quietly. A directory that holds
            # other programs' files (`--state-dir /var/lib`) keeps its mode:
            # the socket is 0600 by itself, ring.seq is no secret.
            with contextlib.suppress(OSError):
                os.chmod(p, _DIR_MODE)

    def lock(self) -> int:
        """Take the directory's lock for this process's lifetime and return
        its descriptor (released when it is closed or the process dies).
        ConfigError ``state_dir_in_use`` when another process holds it."""
        flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | os.O_CLOEXEC
        try:
            fd = os.open(self.lock_file, flags, 0o600)
        except OSError as exc:
            raise ConfigError("bad_state_dir", f"{self.lock_file}: {exc.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise ConfigError(
                "state_dir_in_use",
                f"{self.path} is in use by another running node (give each node its own "
                "--state-dir)",
            ) from None
        return fd

    def check_socket_path(self) -> None:
        """ConfigError ``socket_path_too_long`` when the control socket's
        path does not fit a Unix socket address."""
        if len(os.fsencode(self.control_socket)) > UNIX_PATH_BYTES_MAX:
            raise ConfigError(
                "socket_path_too_long",
                f"{self.control_socket}: longer than {UNIX_PATH_BYTES_MAX} bytes, too long "
                "for a Unix socket (choose a shorter --state-dir)",
            )
