"""Shared fixtures-free helpers for the crypto and keys tests."""

from __future__ import annotations

from ringward.crypto import KdfCost

# libsodium's minimum Argon2id cost: only for tests, where the passphrase
# logic matters and the cost does not. Production defaults are in keyfile.py.
FAST_KDF = KdfCost(opslimit=1, memlimit=8192)


def flip_each_byte(data: bytes, mask: int = 0x01) -> list[bytes]:
    """Every copy of ``data`` with exactly one byte XORed with ``mask``."""
    out = []
    for i in range(len(data)):
        tampered = bytearray(data)
        tampered[i] ^= mask
        out.append(bytes(tampered))
    return out
