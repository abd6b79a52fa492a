"""The one piece of state a node keeps across restarts: its ring sequence.

The engine reports the highest ring sequence it has seen
(``Ready.persist_ring_seq``) and must get it back as ``ring_seq`` when the
node starts again, so that ring ids never repeat even when every node
restarts at once (engine/api.py). The driver stores it *before* sending
anything that depends on it, hence a synchronous write with fsync and an
atomic rename: a crash leaves the old value or the new one, whole. It changes
once per configuration, so the cost does not matter.

File format: the decimal number and a newline (ASCII, at most 21 bytes).
"""

from __future__ import annotations

import os
from os import PathLike
from pathlib import Path
from typing import Final

from ringward.errors import ConfigError

__all__ = ["RING_SEQ_MAX", "load_ring_seq", "store_ring_seq"]

# Ring sequence numbers are 64-bit on the wire.
RING_SEQ_MAX: Final = (1 << 64) - 1
_FILE_BYTES_MAX: Final = 32


def load_ring_seq(path: str | PathLike[str]) -> int:
    """The stored ring sequence; 0 when the file does not exist yet.
    ConfigError ``bad_ring_seq_file`` when it exists but is not one."""
    p = Path(path)
    try:
        with p.open("rb") as f:
            data = f.read(_FILE_BYTES_MAX + 1)
    except FileNotFoundError:
        return 0
    except OSError as exc:
        raise ConfigError("bad_ring_seq_file", f"{p}: {exc.strerror or exc}") from None
    text = data.decode("ascii", errors="replace").strip()
    if len(data) > _FILE_BYTES_MAX or not text.isdigit() or int(text) > RING_SEQ_MAX:
        raise ConfigError(
            "bad_ring_seq_file", f"{p}: not a ring sequence number (delete it only if no node runs)"
        )
    return int(text)


def store_ring_seq(path: str | PathLike[str], value: int) -> None:
    """Store ``value`` durably and atomically (ConfigError on failure)."""
    p = Path(path)
    tmp = p.with_name(p.name + ".tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, f"{value}\n".encode("ascii"))
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, p)
    except OSError as exc:
        raise ConfigError("bad_ring_seq_file", f"{p}: {exc.strerror or exc}") from None
