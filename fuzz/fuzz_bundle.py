"""Invariant: for ANY node bundle directory (identity.key, admin.pub,
roster.bin, roster.state, ring.seq, a passphrase file and a stray admin.key,
each present or not, with any content), what `ringward node --keys DIR`
reads (load_node_keys, then the ring-seq file next to the keys) gives a
roster and an identity of that roster, or raises a RingwardError with a
well-formed reason, nothing else; `ringward keys verify DIR`
(KeyDir.verify) never raises, and finds no problem in a bundle the node
accepts.

Input format: records ``file:u8 | length:u32 | bytes[length]`` (file is an
index into FILES, modulo its length; a later record replaces an earlier
one; a length past the end takes what is left). The KDF is a cheap stand-in
during each execution (_keyfiles.py).
"""

import struct

if __name__ == "__main__":
    import _harness

    _harness.instrument(["ringward.crypto", "ringward.runtime.ringseq", "ringward.cli.node_cmd"])

from ringward.cli.keys_cmd import NODE_PASSPHRASE_ENV, _read_passphrase
from ringward.cli.node_cmd import default_ring_seq_file, load_node_keys
from ringward.crypto.keydir import (
    ADMIN_KEY,
    ADMIN_PUB,
    IDENTITY_KEY,
    ROSTER_FILE,
    STATE_FILE,
    KeyDir,
    Secrets,
)
from ringward.errors import RingwardError
from ringward.runtime.ringseq import RING_SEQ_MAX, load_ring_seq

import _harness
import _keyfiles

RECORD = struct.Struct(">BI")
PASSPHRASE_FILE = "passphrase"
RING_SEQ_FILE = "ring.seq"
FILES = (
    IDENTITY_KEY,
    ADMIN_PUB,
    ROSTER_FILE,
    STATE_FILE,
    RING_SEQ_FILE,
    PASSPHRASE_FILE,
    ADMIN_KEY,
)
# Executions in `make test`'s smoke run (each writes a bundle directory
# and verifies its roster twice).
SMOKE_RUNS = 20000


def unpack(data: bytes) -> dict[str, bytes]:
    """The bundle's files from one input (see the module docstring)."""
    files: dict[str, bytes] = {}
    offset = 0
    while offset + RECORD.size <= len(data):
        index, length = RECORD.unpack_from(data, offset)
        offset += RECORD.size
        files[FILES[index % len(FILES)]] = data[offset : offset + length]
        offset += length
    return files


def pack(files: dict[str, bytes]) -> bytes:
    """One input from a bundle's files (the inverse of :func:`unpack`)."""
    return b"".join(
        RECORD.pack(FILES.index(name), len(body)) + body for name, body in files.items()
    )


def _bundle_dir() -> str:
    path = _keyfiles.scratch_dir() / "bundle"
    path.mkdir(mode=0o700, exist_ok=True)
    for name in FILES:
        (path / name).unlink(missing_ok=True)
    return str(path)


def TestOneInput(data: bytes) -> None:
    bundle = _bundle_dir()
    files = unpack(data)
    for name, body in files.items():
        _keyfiles.write_file(KeyDir(bundle).file(name), body)
    passphrase_file = (
        str(KeyDir(bundle).file(PASSPHRASE_FILE)) if PASSPHRASE_FILE in files else None
    )
    with _keyfiles.cheap_kdf():
        try:
            roster, identity = load_node_keys(bundle, None, passphrase_file)
            ring_seq = load_ring_seq(default_ring_seq_file(bundle, roster, identity))
        except RingwardError as exc:
            assert _keyfiles.REASON.fullmatch(exc.reason), f"malformed reason {exc.reason!r}"
            accepted = False
        else:
            accepted = True
            entry = roster.node_by_signing_key(identity.signing_key)
            assert entry is not None, "accepted an identity that is not in the roster"
            assert 0 <= ring_seq <= RING_SEQ_MAX
        try:
            passphrase = _read_passphrase(passphrase_file, NODE_PASSPHRASE_ENV)
        except RingwardError:
            passphrase = None
        found, problems = KeyDir(bundle).verify(Secrets(node=passphrase))
    if accepted:
        assert found is not None, "keys verify cannot read a roster the node accepted"
        assert not problems, f"keys verify finds problems in an accepted bundle: {problems}"


def seeds() -> list[bytes]:
    """Bundles as `ringward keys export-node` writes them (the library's
    own writers, deterministic test keys): plain, with a ring-seq file,
    passphrase-encrypted with its passphrase file, from a later roster
    version, and an admin directory's files (not a bundle)."""
    from ringward.crypto import keyfile, vectors
    from ringward.crypto.keydir import write_admin_pub
    from ringward.crypto.state import write_state
    from ringward.runtime.ringseq import store_ring_seq

    scratch = _keyfiles.scratch_dir() / "seed"

    def written(write: object, *args: object) -> bytes:
        scratch.unlink(missing_ok=True)
        write(scratch, *args)  # type: ignore[operator]
        return scratch.read_bytes()

    out = []
    with _keyfiles.cheap_kdf(), _keyfiles.fixed_random(b"fuzz_bundle"):
        for nodes, index, version in ((3, 1, 1), (5, 4, 7)):
            roster = vectors.example_roster(nodes, version=version)
            identity = vectors.example_identity(index)
            files = {
                IDENTITY_KEY: written(identity.save),
                ADMIN_PUB: written(write_admin_pub, roster.admin_key),
                ROSTER_FILE: roster.to_bytes(),
                STATE_FILE: written(write_state, roster),
            }
            out.append(pack(files))
            out.append(pack(files | {RING_SEQ_FILE: written(store_ring_seq, 42)}))
        encrypted = files | {
            IDENTITY_KEY: written(identity.save, _keyfiles.SEED_PASSPHRASE, keyfile.KDF_MODERATE),
            PASSPHRASE_FILE: _keyfiles.SEED_PASSPHRASE + b"\n",
        }
        out.append(pack(encrypted))
        admin = vectors.example_admin()
        out.append(pack(files | {ADMIN_KEY: written(admin.save)}))
    return out


def dictionary() -> dict[str, bytes]:
    """A record header for every file, and the text prefixes of the small
    files."""
    entries = {f"record_{i}": RECORD.pack(i, 0)[:2] for i in range(len(FILES))}
    entries.update(
        {
            "admin_pub": b"ringward-admin-key 1 ",
            "state": b"ringward-roster-state 1 ",
            "key_magic": b"RWKF",
        }
    )
    return entries


if __name__ == "__main__":
    _harness.main(TestOneInput)
