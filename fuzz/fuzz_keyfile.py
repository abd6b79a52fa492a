"""Invariant: for ANY bytes as a private key file, Identity.load and
AdminKey.load (without a passphrase, with the right one as bytes and as str,
and with one taken from the file's last bytes the way os.environ decodes a
variable) and both load_public return a key or raise KeyFileError with a
well-formed reason, nothing else; no KDF runs without a passphrase, and none
with a cost beyond the load bounds; an accepted key is the file's: its
public half is the one stored in clear, and a plain file re-encodes to the
very same bytes.

The KDF is a cheap stand-in during each execution (_keyfiles.py): the
Argon2id cost stored in the file is checked, not paid.
"""

from collections.abc import Callable
from typing import TypeVar

if __name__ == "__main__":
    import _harness

    _harness.instrument(["ringward.crypto"])

from ringward.crypto import keyfile
from ringward.crypto.identity import AdminKey, Identity
from ringward.crypto.keyfile import KdfCost, KeyKind, Passphrase
from ringward.errors import KeyFileError

import _harness
import _keyfiles

# Executions in `make test`'s smoke run (each loads the file ten ways).
SMOKE_RUNS = 20000
T = TypeVar("T")
# The tail of the file that doubles as an environment-variable passphrase.
ENV_TAIL_BYTES = 12


def passphrases(data: bytes) -> list[Passphrase | None]:
    """The passphrases every input is loaded with."""
    env_like = data[-ENV_TAIL_BYTES:].decode("utf-8", "surrogateescape")
    return [
        None,
        _keyfiles.SEED_PASSPHRASE,
        _keyfiles.SEED_PASSPHRASE.decode(),
        env_like,
    ]


def _check_identity(identity: Identity, data: bytes) -> None:
    public = identity.signing_key + identity.encryption_key
    if data[6] == keyfile.PROTECTION_NONE:
        again = keyfile.encode_key_file(KeyKind.NODE, public, identity.private_bytes())
        assert again == data, "accepted plain identity file is not canonical"
    assert data[7 : 7 + 64] == public, "identity differs from the public half in clear"


def _check_admin(admin: AdminKey, data: bytes) -> None:
    if data[6] == keyfile.PROTECTION_NONE:
        again = keyfile.encode_key_file(KeyKind.ADMIN, admin.public_key, admin.private_bytes())
        assert again == data, "accepted plain admin key file is not canonical"
    assert data[7 : 7 + 32] == admin.public_key, "admin key differs from its public half"


def _loaded_or_refused(load: Callable[[], T]) -> T | None:
    """What ``load`` returns, or None when it refuses the file with a
    KeyFileError (whose reason must be well-formed)."""
    try:
        return load()
    except KeyFileError as exc:
        assert _keyfiles.REASON.fullmatch(exc.reason), f"malformed reason {exc.reason!r}"
        return None


def TestOneInput(data: bytes) -> None:
    path = _keyfiles.scratch_dir() / "key"
    _keyfiles.write_file(path, data)
    with _keyfiles.cheap_kdf() as kdf:
        for passphrase in passphrases(data):
            before = kdf.calls
            identity = _loaded_or_refused(lambda: Identity.load(path, passphrase))  # noqa: B023
            if identity is not None:
                _check_identity(identity, data)
            admin = _loaded_or_refused(lambda: AdminKey.load(path, passphrase))  # noqa: B023
            if admin is not None:
                _check_admin(admin, data)
            if passphrase is None:
                assert kdf.calls == before, "a KDF ran without a passphrase"
        public = _loaded_or_refused(lambda: Identity.load_public(path))
        if public is not None:
            assert data[7 : 7 + 64] == public.signing_key + public.encryption_key
        admin_public = _loaded_or_refused(lambda: AdminKey.load_public(path))
        if admin_public is not None:
            assert data[7 : 7 + 32] == admin_public
        assert kdf.calls == 0 or data[6] == keyfile.PROTECTION_ARGON2ID_SECRETBOX


def seeds() -> list[bytes]:
    """Key files of both kinds as the library writes them: plain, and
    encrypted at each named cost level (the stand-in KDF, so that the
    fuzzer reaches past the decryption)."""
    from nacl.pwhash import argon2id

    from ringward.crypto import vectors

    admin = vectors.example_admin()
    node = vectors.example_identity(1)
    parts = [
        (KeyKind.ADMIN, admin.public_key, admin.private_bytes()),
        (KeyKind.NODE, node.signing_key + node.encryption_key, node.private_bytes()),
    ]
    costs = [keyfile.KDF_INTERACTIVE, keyfile.KDF_MODERATE, keyfile.KDF_SENSITIVE]
    out = [keyfile.encode_key_file(kind, public, secret) for kind, public, secret in parts]
    with _keyfiles.cheap_kdf(), _keyfiles.fixed_random(b"fuzz_keyfile"):
        for kind, public, secret in parts:
            for cost in costs:
                out.append(
                    keyfile.encode_key_file(kind, public, secret, _keyfiles.SEED_PASSPHRASE, cost)
                )
        # The smallest cost libsodium accepts: the lower bound.
        low = KdfCost(argon2id.OPSLIMIT_MIN, argon2id.MEMLIMIT_MIN)
        out.append(keyfile.encode_key_file(*parts[1], _keyfiles.SEED_PASSPHRASE, low))
    return out


def dictionary() -> dict[str, bytes]:
    """Header prefixes of every kind and protection, and the cost bounds
    (each limit, one step past it, and the largest u32)."""
    from nacl.pwhash import argon2id

    entries = {}
    for kind in KeyKind:
        for protection in (keyfile.PROTECTION_NONE, keyfile.PROTECTION_ARGON2ID_SECRETBOX):
            head = keyfile.MAGIC + bytes([keyfile.FORMAT_VERSION, kind, protection])
            entries[f"head_{kind.name.lower()}_{protection}"] = head
    limits = {
        "ops_min": argon2id.OPSLIMIT_MIN,
        "ops_max": keyfile.KDF_OPSLIMIT_MAX,
        "ops_over": keyfile.KDF_OPSLIMIT_MAX + 1,
        "mem_min": argon2id.MEMLIMIT_MIN,
        "mem_max": keyfile.KDF_MEMLIMIT_MAX,
        "mem_over": keyfile.KDF_MEMLIMIT_MAX + 1024,
        "mem_odd": argon2id.MEMLIMIT_MIN + 1,
        "u32_max": 0xFFFFFFFF,
    }
    entries.update({name: value.to_bytes(4, "big") for name, value in limits.items()})
    return entries


if __name__ == "__main__":
    _harness.main(TestOneInput)
