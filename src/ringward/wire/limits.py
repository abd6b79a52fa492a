"""Every bound the wire format enforces, with units last and the reason.

These are *format* limits: what a decoder accepts at all. The protocol's
tunables (window size, retransmit list length, payload size) live in the
engine configuration and are always at or below these.
"""

from __future__ import annotations

from typing import Final

# IPv4 UDP payload maximum (65535 - 8 UDP - 20 IP); IPv6 allows slightly more
# but a frame must fit either family.
DATAGRAM_BYTES_MAX: Final = 65507

# Ed25519 signature, appended to every signed frame.
SIGNATURE_BYTES: Final = 64

# BLAKE2b-256: digests of data frames listed in tokens, and the hash linking
# a token to its predecessor. 256 bits so that a member cannot find two
# colliding frames (128 bits would leave a 2^64 birthday search).
DIGEST_BYTES: Final = 32

# Cluster id in the header: BLAKE2b-64 of the roster's identity. It only
# routes (cheap rejection of another cluster's traffic); signatures, not this
# id, are the security boundary, so 64 bits suffice.
CLUSTER_ID_BYTES: Final = 8

# Node ids are 1..65535; 0 means "no node" (e.g. an unset aru_id).
NODE_ID_NONE: Final = 0

# Members listed in one frame. Rings are meant for 3-32 nodes; 256 keeps the
# format open for large simulations while bounding every list.
NODES_MAX: Final = 256

# Retransmit requests carried by one token (Totem's default is 30; the
# engine's configured limit must not exceed this).
RTR_ENTRIES_MAX: Final = 256

# Data frames one holder can originate in one token visit (Totem's
# max_messages default is 17).
TOKEN_FRAMES_MAX: Final = 256

# Evidence carried in one join: proofs and accusations about other members.
JOIN_PROOFS_MAX: Final = 8
JOIN_ACCUSATIONS_MAX: Final = 64

# Signed statements that make one proof (two for equivocation, a token and
# its predecessor for a rule break, a run of self-reports for overload).
PROOF_STATEMENTS_MAX: Final = 4

# Frames nest (a commit carries joins, a join carries proofs, a proof carries
# tokens, joins or commits). Legitimate nesting is at most 4 deep: the proof
# of an impossible commit token carries the commit, its joins, their proofs
# and those proofs' statements (a join carries only proofs whose statements
# embed nothing). The bound stops a crafted chain from costing
# O(size * depth) work or deep recursion.
EMBED_DEPTH_MAX: Final = 4

# A group key sealed to one member's X25519 key (libsodium sealed box of a
# 32-byte key is 80 bytes; room for a versioned key blob).
SEALED_KEY_BYTES_MIN: Final = 48
SEALED_KEY_BYTES_MAX: Final = 160

# AEAD tag: the smallest ciphertext a data frame can carry.
AEAD_TAG_BYTES: Final = 16

# Names of signals, proof kinds and reasons: short ASCII identifiers.
NAME_CHARS_MAX: Final = 48
