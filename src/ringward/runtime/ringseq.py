"""The one piece of state a node keeps across restarts: its ring sequence.

The engine reports the highest ring sequence it has seen
(``Ready.persist_ring_seq``) and must get it back as ``ring_seq`` when the
node starts again, so that ring ids never repeat even when every node
restarts at once (engine/api.py). The driver stores it *before* sending
anything that depends on it, hence a synchronous write with fsync and an
atomic rename: a crash leaves the old value or the new one, whole. It changes
once per configuration, so the cost does not matter.

File format: the decimal number and a newline (ASCII, at most 21 bytes).

File-system rules (the directory may be shared with other local users):

* A store writes a fresh, uniquely named temporary file in the same
  directory, created with ``O_CREAT | O_EXCL | O_NOFOLLOW`` and mode 0600, so
  nothing planted in the directory (a symlink, a hard link, a stale temp
  file) can make it write anywhere but into a file it just created. It then
  fsyncs the file, renames it over the target and fsyncs the directory; on
  failure the temporary file is removed.
* A load reads at most a few dozen bytes, refuses a symlink (a store would
  replace the link, not its target, so the two would disagree) and anything
  but a regular file (a FIFO would block the node's start forever).
* Only values in 0..2**64-1 are stored or loaded: the engine is never handed
  a ring sequence outside u64.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from os import PathLike
from pathlib import Path
from typing import Final

from ringward.errors import ConfigError

__all__ = ["RING_SEQ_MAX", "load_ring_seq", "store_ring_seq"]

# Ring sequence numbers are 64-bit on the wire.
RING_SEQ_MAX: Final = (1 << 64) - 1
_FILE_BYTES_MAX: Final = 32
_O_NOFOLLOW: Final = getattr(os, "O_NOFOLLOW", 0)
_O_NONBLOCK: Final = getattr(os, "O_NONBLOCK", 0)
_O_CLOEXEC: Final = getattr(os, "O_CLOEXEC", 0)
_TEMP_ATTEMPTS: Final = 16


def _bad(p: Path, why: str) -> ConfigError:
    return ConfigError("bad_ring_seq_file", f"{p}: {why}")


def load_ring_seq(path: str | PathLike[str]) -> int:
    """The stored ring sequence; 0 when the file does not exist yet.
    ConfigError ``bad_ring_seq_file`` when it exists but is not one (also a
    symlink, a non-regular file, or a value outside 0..2**64-1)."""
    p = Path(path)
    try:
        fd = os.open(p, os.O_RDONLY | _O_NOFOLLOW | _O_NONBLOCK | _O_CLOEXEC)
    except FileNotFoundError:
        return 0
    except OSError as exc:
        if p.is_symlink():
            raise _bad(p, "is a symlink; give the path of the file itself") from None
        raise _bad(p, exc.strerror or str(exc)) from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise _bad(p, "not a regular file")
        data = os.read(fd, _FILE_BYTES_MAX + 1)
    except OSError as exc:
        raise _bad(p, exc.strerror or str(exc)) from None
    finally:
        os.close(fd)
    # bytes.strip() removes ASCII whitespace only (str.strip() also took the
    # control characters \x1c-\x1f), and bytes.isdigit() accepts ASCII
    # digits only: the file holds the decimal number, nothing else.
    text = data.strip()
    if len(data) > _FILE_BYTES_MAX or not text.isdigit():
        raise _bad(p, "not a ring sequence number (delete it only if no node runs)")
    value = int(text)
    if value > RING_SEQ_MAX:
        raise _bad(p, f"{value} is beyond 2**64-1 (delete it only if no node runs)")
    return value


def _create_temp(p: Path) -> tuple[int, Path]:
    """A new file next to ``p``, created by us alone (never an existing one)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_NOFOLLOW | _O_CLOEXEC
    for _ in range(_TEMP_ATTEMPTS):
        tmp = p.with_name(f".{p.name}.{secrets.token_hex(8)}.tmp")
        try:
            return os.open(tmp, flags, 0o600), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name next to {p}")


def store_ring_seq(path: str | PathLike[str], value: int) -> None:
    """Store ``value`` durably and atomically (ConfigError on failure)."""
    p = Path(path)
    if not 0 <= value <= RING_SEQ_MAX:
        raise _bad(p, f"{value} is not a ring sequence number (0..2**64-1)")
    tmp: Path | None = None
    try:
        fd, tmp = _create_temp(p)
        try:
            data = f"{value}\n".encode("ascii")
            if os.write(fd, data) != len(data):
                raise OSError(f"short write to {tmp}")
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, p)
        tmp = None
        dir_fd = os.open(p.parent, os.O_RDONLY | _O_CLOEXEC)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError as exc:
        raise _bad(p, exc.strerror or str(exc)) from None
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)
