"""Shared by the targets that read private key files (fuzz_keyfile,
fuzz_bundle): a cheap stand-in for Argon2id, deterministic randomness for
their seeds, and a scratch directory for the files they load.

Why a stand-in: a key file stores its own Argon2id cost, which the loader
bounds (at most libsodium's SENSITIVE level: 1 GiB, ~2 s) before deriving
anything. A fuzz execution must not pay that, so inside :func:`cheap_kdf`
the derivation is BLAKE2b of the same inputs, and every call first checks
the cost it was handed against the loader's bounds: that is the invariant
"the cost is bounded before any KDF call". Everything around the KDF (the
header, the length checks, the cost bounds, SecretBox, the public-half
match) runs unchanged. The stand-in is installed for one execution at a
time and always removed, so importing a target (pytest replays every
corpus) never weakens the real KDF.
"""

import atexit
import contextlib
import hashlib
import os
import re
import shutil
import struct
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nacl.secret
import nacl.utils
from nacl.pwhash import argon2id

from ringward.crypto import keyfile

# Passphrase of every encrypted seed (public knowledge: fuzzing only).
SEED_PASSPHRASE = b"fuzz passphrase"
# What a RingwardError's reason must look like (ringward/errors.py).
REASON = re.compile(r"[a-z0-9_:.-]+")
_COST = struct.Struct(">II")


class CheapArgon2id:
    """Stands in for ``nacl.pwhash.argon2id`` inside ringward.crypto.keyfile:
    its constants are libsodium's, its ``kdf`` is BLAKE2b and counts calls."""

    def __init__(self) -> None:
        self.calls = 0

    def __getattr__(self, name: str) -> Any:
        # SALTBYTES, OPSLIMIT_MIN, ...: the real module's constants.
        return getattr(argon2id, name)

    def kdf(
        self, size: int, password: bytes, salt: bytes, *, opslimit: int, memlimit: int
    ) -> bytes:
        assert argon2id.OPSLIMIT_MIN <= opslimit <= keyfile.KDF_OPSLIMIT_MAX, (
            f"KDF called with opslimit {opslimit} beyond the load bound"
        )
        assert argon2id.MEMLIMIT_MIN <= memlimit <= keyfile.KDF_MEMLIMIT_MAX, (
            f"KDF called with memlimit {memlimit} beyond the load bound"
        )
        assert len(salt) == argon2id.SALTBYTES, "KDF called with a salt of the wrong size"
        self.calls += 1
        return hashlib.blake2b(
            password, digest_size=size, salt=salt, person=_COST.pack(opslimit, memlimit)
        ).digest()


@contextlib.contextmanager
def cheap_kdf() -> Iterator[CheapArgon2id]:
    """Run the key-file code with :class:`CheapArgon2id` as its KDF."""
    stand_in = CheapArgon2id()
    # Through the module's namespace: the name is keyfile's private import.
    names = vars(keyfile)
    real = names["argon2id"]
    names["argon2id"] = stand_in
    try:
        yield stand_in
    finally:
        names["argon2id"] = real


@contextlib.contextmanager
def fixed_random(label: bytes) -> Iterator[None]:
    """Deterministic salts and nonces (seed generation only), so the seed
    corpus of encrypted files is the same on every machine."""
    counter = iter(range(1 << 30))

    def random(size: int = 32) -> bytes:
        block = hashlib.blake2b(label + next(counter).to_bytes(4, "big"), digest_size=64)
        return block.digest()[:size]

    # nacl.secret holds its own reference to nacl.utils.random (for nonces).
    namespaces = [vars(nacl.utils), vars(nacl.secret)]
    originals = [names["random"] for names in namespaces]
    for names in namespaces:
        names["random"] = random
    try:
        yield
    finally:
        for names, original in zip(namespaces, originals, strict=True):
            names["random"] = original


_scratch: list[Path] = []
_SCRATCH_PREFIX = "ringward-fuzz-"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


def _sweep(base: Path) -> None:
    """Remove the scratch directories of processes that are gone: libFuzzer
    ends a run with exit(), past Python's atexit handlers."""
    for old in base.glob(f"{_SCRATCH_PREFIX}*"):
        pid = old.name.removeprefix(_SCRATCH_PREFIX).split("-", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(old, ignore_errors=True)


def scratch_dir() -> Path:
    """A private directory for this process's files (tmpfs when there is
    one: every execution writes files), removed at exit or, after a
    libFuzzer exit, by the next fuzz process."""
    if not _scratch:
        base = Path("/dev/shm" if os.path.isdir("/dev/shm") else tempfile.gettempdir())
        _sweep(base)
        path = Path(tempfile.mkdtemp(prefix=f"{_SCRATCH_PREFIX}{os.getpid()}-", dir=base))
        atexit.register(shutil.rmtree, path, ignore_errors=True)
        _scratch.append(path)
    return _scratch[0]


def write_file(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data``, mode 0600 (what a key file needs)."""
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
