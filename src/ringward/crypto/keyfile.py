"""Private key files: the versioned on-disk format, passphrase protection,
and the file-system rules every secret obeys.

Theory of operation (docs/keys.md, "Private key files"):

* A private key file is written once, with ``O_CREAT | O_EXCL`` and mode
  0600: an existing key is never overwritten, and the secret is never
  readable by anyone else, not even for the instant between create and chmod.
* A private key file that is group- or world-accessible is refused on load
  (like ssh refuses such a key): the secret may already have leaked, and the
  operator must look at it.
* The public half is stored in clear in the header, so ``ringward keys
  verify`` can check a key file against the roster without the passphrase;
  after decryption the secret must reproduce that public half, which binds
  header and secret together (a spliced file fails as ``key_mismatch``).
* Passphrase protection: Argon2id (libsodium's ``crypto_pwhash``) derives a
  32-byte key from the passphrase and a fresh 16-byte salt; XSalsa20-Poly1305
  (``SecretBox``) encrypts the secret. The cost parameters are stored in the
  file, and bounded on load so that a crafted file cannot make a node
  allocate gigabytes.

Layout (all integers big-endian)::

    0   4  magic b"RWKF"
    4   1  format version (1)
    5   1  kind: 1 = node identity, 2 = admin key
    6   1  protection: 0 = none, 1 = argon2id + secretbox
    7   P  public part (node: Ed25519 32 || X25519 32; admin: Ed25519 32)
    protection 0:
    7+P S  secret part (node: Ed25519 seed 32 || X25519 secret 32; admin: seed 32)
    protection 1:
    7+P 4  opslimit
    +4  4  memlimit (bytes)
    +8  16 salt
    +24 24+16+S  secretbox: nonce || MAC || ciphertext of the secret part
"""

from __future__ import annotations

import base64
import contextlib
import enum
import hashlib
import os
import stat
import struct
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import nacl.exceptions
import nacl.secret
import nacl.utils
from nacl.pwhash import argon2id

from ringward.errors import KeyFileError

__all__ = [
    "KDF_INTERACTIVE",
    "KDF_MODERATE",
    "KDF_SENSITIVE",
    "KdfCost",
    "KeyKind",
    "KeyRecord",
    "Passphrase",
    "atomic_write",
    "decode_key_file",
    "encode_key_file",
    "fingerprint",
    "read_bounded",
    "read_private",
    "write_private",
]

MAGIC: Final = b"RWKF"
FORMAT_VERSION: Final = 1
PROTECTION_NONE: Final = 0
PROTECTION_ARGON2ID_SECRETBOX: Final = 1

_HEAD = struct.Struct(">4sBBB")
_KDF = struct.Struct(">II16s")

# The largest key file of any kind and protection is 7 + 64 + 24 + 40 + 64
# bytes; anything much larger is not a key file, and reading it whole would
# let a wrong path (a log, a disk image) eat memory.
KEY_FILE_BYTES_MAX: Final = 1024

# Bounds on the stored Argon2id cost. The maximum is libsodium's SENSITIVE
# level (1 GiB): a file asking for more is refused rather than obeyed, so a
# crafted key file cannot exhaust a node's memory or CPU.
KDF_OPSLIMIT_MAX: Final = argon2id.OPSLIMIT_SENSITIVE
KDF_MEMLIMIT_MAX: Final = argon2id.MEMLIMIT_SENSITIVE

Passphrase = bytes | str


class KeyKind(enum.IntEnum):
    """What a private key file holds."""

    NODE = 1
    ADMIN = 2


# (public part, secret part) sizes in bytes per kind.
_SIZES: Final = {KeyKind.NODE: (64, 64), KeyKind.ADMIN: (32, 32)}


@dataclass(frozen=True, slots=True)
class KdfCost:
    """Argon2id cost: ``opslimit`` passes over ``memlimit`` bytes."""

    opslimit: int
    memlimit: int

    def __post_init__(self) -> None:
        if not argon2id.OPSLIMIT_MIN <= self.opslimit <= KDF_OPSLIMIT_MAX:
            raise KeyFileError("bad_kdf_params", f"opslimit {self.opslimit} out of range")
        # libsodium counts memory in KiB: a memlimit that is not a multiple
        # of 1024 would give several encodings of one cost (and let a flipped
        # low bit in a key file go unnoticed).
        if not argon2id.MEMLIMIT_MIN <= self.memlimit <= KDF_MEMLIMIT_MAX or self.memlimit % 1024:
            raise KeyFileError("bad_kdf_params", f"memlimit {self.memlimit} out of range")


# libsodium's named levels (times measured on the 2-vCPU reference machine).
# MODERATE (256 MiB, ~0.4 s) is the default of the library and the CLI;
# INTERACTIVE (64 MiB, ~0.05 s) suits node keys a service unlocks at every
# start on small machines; SENSITIVE (1 GiB, ~2 s) suits an offline admin key.
KDF_INTERACTIVE: Final = KdfCost(argon2id.OPSLIMIT_INTERACTIVE, argon2id.MEMLIMIT_INTERACTIVE)
KDF_MODERATE: Final = KdfCost(argon2id.OPSLIMIT_MODERATE, argon2id.MEMLIMIT_MODERATE)
KDF_SENSITIVE: Final = KdfCost(argon2id.OPSLIMIT_SENSITIVE, argon2id.MEMLIMIT_SENSITIVE)


@dataclass(frozen=True, slots=True, repr=False)
class KeyRecord:
    """The decoded content of a key file. ``secret`` is ``None`` when the
    file is encrypted and no passphrase was given (public part only)."""

    kind: KeyKind
    public: bytes
    secret: bytes | None
    encrypted: bool

    def __repr__(self) -> str:
        # Never show key bytes, not even in a traceback.
        return f"KeyRecord(kind={self.kind.name}, encrypted={self.encrypted})"


def fingerprint(public: bytes) -> str:
    """The fingerprint of a public key (node: Ed25519 || X25519, admin:
    Ed25519, as a key file stores them): ``SHA256:`` and the unpadded
    base64 of its SHA-256, the form ssh users compare by eye."""
    digest = hashlib.sha256(public).digest()
    return "SHA256:" + base64.b64encode(digest).decode("ascii").rstrip("=")


def _passphrase_bytes(passphrase: Passphrase) -> bytes:
    if isinstance(passphrase, str):
        # surrogateescape: a passphrase taken from os.environ that is not
        # valid UTF-8 arrives with its bytes escaped as lone surrogates;
        # this gives back the bytes the operator set (the same passphrase
        # as those bytes in a passphrase file). Other lone surrogates
        # cannot be encoded at all.
        try:
            data = passphrase.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:
            raise KeyFileError(
                "bad_passphrase_encoding", "the passphrase is not valid text (lone surrogates)"
            ) from None
    else:
        data = passphrase
    if not data:
        raise KeyFileError("empty_passphrase", "the passphrase is empty")
    return data


def _derive(passphrase: Passphrase, salt: bytes, cost: KdfCost) -> bytes:
    return argon2id.kdf(
        nacl.secret.SecretBox.KEY_SIZE,
        _passphrase_bytes(passphrase),
        salt,
        opslimit=cost.opslimit,
        memlimit=cost.memlimit,
    )


def encode_key_file(
    kind: KeyKind,
    public: bytes,
    secret: bytes,
    passphrase: Passphrase | None = None,
    kdf: KdfCost = KDF_MODERATE,
) -> bytes:
    """The bytes of a key file holding ``secret`` (encrypted when a
    passphrase is given)."""
    public_size, secret_size = _SIZES[kind]
    if len(public) != public_size or len(secret) != secret_size:
        raise KeyFileError("bad_key", f"{kind.name} key parts have the wrong size")
    if passphrase is None:
        return _HEAD.pack(MAGIC, FORMAT_VERSION, kind, PROTECTION_NONE) + public + secret
    salt = nacl.utils.random(argon2id.SALTBYTES)
    box = nacl.secret.SecretBox(_derive(passphrase, salt, kdf))
    sealed = bytes(box.encrypt(secret))
    head = _HEAD.pack(MAGIC, FORMAT_VERSION, kind, PROTECTION_ARGON2ID_SECRETBOX)
    return head + public + _KDF.pack(kdf.opslimit, kdf.memlimit, salt) + sealed


def decode_key_file(
    data: bytes, name: str, passphrase: Passphrase | None = None, *, need_secret: bool = True
) -> KeyRecord:
    """Parse a key file (total: any bytes give a record or KeyFileError).

    ``name`` is the file name used in messages. The caller checks that the
    secret reproduces the public part (it knows the key algebra).
    """
    if len(data) < _HEAD.size:
        raise KeyFileError("bad_key_file", f"{name}: too short to be a ringward key file")
    magic, version, kind_byte, protection = _HEAD.unpack_from(data)
    if magic != MAGIC:
        raise KeyFileError("bad_key_file", f"{name}: not a ringward private key file")
    if version != FORMAT_VERSION:
        raise KeyFileError("bad_key_version", f"{name}: unsupported key file version {version}")
    if kind_byte not in KeyKind._value2member_map_:
        raise KeyFileError("bad_key_file", f"{name}: unknown key kind {kind_byte}")
    kind = KeyKind(kind_byte)
    public_size, secret_size = _SIZES[kind]
    pos = _HEAD.size
    public = data[pos : pos + public_size]
    pos += public_size
    if protection == PROTECTION_NONE:
        if len(data) != pos + secret_size:
            raise KeyFileError("bad_key_file", f"{name}: wrong length for a {kind.name} key")
        return KeyRecord(kind, public, data[pos:], encrypted=False)
    if protection != PROTECTION_ARGON2ID_SECRETBOX:
        raise KeyFileError("bad_key_file", f"{name}: unknown protection {protection}")
    box_size = nacl.secret.SecretBox.NONCE_SIZE + nacl.secret.SecretBox.MACBYTES + secret_size
    if len(data) != pos + _KDF.size + box_size:
        raise KeyFileError("bad_key_file", f"{name}: wrong length for an encrypted key")
    opslimit, memlimit, salt = _KDF.unpack_from(data, pos)
    cost = KdfCost(opslimit, memlimit)
    if passphrase is None:
        if need_secret:
            hint = (
                "RINGWARD_PASSPHRASE or --passphrase-file"
                if kind is KeyKind.ADMIN
                else "RINGWARD_NODE_PASSPHRASE or --node-passphrase-file"
            )
            raise KeyFileError(
                "passphrase_required", f"{name} is encrypted: give its passphrase ({hint})"
            )
        return KeyRecord(kind, public, None, encrypted=True)
    box = nacl.secret.SecretBox(_derive(passphrase, salt, cost))
    try:
        secret = bytes(box.decrypt(data[pos + _KDF.size :]))
    except nacl.exceptions.CryptoError:
        raise KeyFileError(
            "bad_passphrase", f"{name}: wrong passphrase (or the file was altered)"
        ) from None
    return KeyRecord(kind, public, secret, encrypted=True)


def check_private_mode(path: Path) -> None:
    """Refuse a private key file that anyone but its owner can access."""
    try:
        st = path.stat()
    except FileNotFoundError:
        raise KeyFileError("missing_file", f"{path}: no such file") from None
    except OSError as exc:
        raise KeyFileError("unreadable", f"{path}: {exc.strerror}") from None
    if not stat.S_ISREG(st.st_mode):
        raise KeyFileError("not_a_file", f"{path}: not a regular file")
    if st.st_mode & 0o077:
        raise KeyFileError(
            "permissions_too_open",
            f"{path} is accessible by group or others (mode {stat.S_IMODE(st.st_mode):04o}); "
            f"run `chmod 600 {path}` and check who may have copied it",
        )


def read_bounded(path: Path, size_max: int) -> bytes:
    """Read a whole file of at most ``size_max`` bytes, or raise
    KeyFileError with a one-line reason."""
    try:
        with path.open("rb") as f:
            data = f.read(size_max + 1)
    except FileNotFoundError:
        raise KeyFileError("missing_file", f"{path}: no such file") from None
    except IsADirectoryError:
        raise KeyFileError("not_a_file", f"{path}: is a directory") from None
    except OSError as exc:
        raise KeyFileError("unreadable", f"{path}: {exc.strerror}") from None
    if len(data) > size_max:
        raise KeyFileError("file_too_large", f"{path}: larger than {size_max} bytes")
    return data


def read_private(path: Path) -> bytes:
    """The bytes of a private key file, after the permission check."""
    check_private_mode(path)
    return read_bounded(path, KEY_FILE_BYTES_MAX)


def write_private(path: Path, data: bytes) -> None:
    """Create ``path`` with mode 0600 and write ``data``; never replaces an
    existing file (KeyFileError ``exists``)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise KeyFileError(
            "exists", f"{path} already exists; refusing to overwrite a private key"
        ) from None
    except OSError as exc:
        raise KeyFileError("unwritable", f"{path}: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    except OSError as exc:
        raise KeyFileError("unwritable", f"{path}: {exc.strerror}") from None


def atomic_write(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Replace ``path`` with ``data`` so that a crash leaves either the old
    or the new content, never a torn file: write a temporary file in the
    same directory, fsync it, rename it over ``path``, fsync the directory.

    The new file keeps the owner and group of the regular file it replaces
    when this process may set them (root): ``sudo ringward keys accept``
    into the bundle of a node that runs as its own user must leave files
    that node can still read."""
    try:
        old: os.stat_result | None = os.lstat(path)
    except OSError:
        old = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise KeyFileError("unwritable", f"{path.parent}: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            if old is not None and stat.S_ISREG(old.st_mode):
                with contextlib.suppress(PermissionError):
                    os.fchown(f.fileno(), old.st_uid, old.st_gid)
            os.fchmod(f.fileno(), mode)
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise KeyFileError("unwritable", f"{path}: {exc.strerror}") from None
