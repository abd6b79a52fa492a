"""Identities, the signed roster, group keys and sealing.

``Identity`` (a node's Ed25519 + X25519 keys), ``AdminKey`` (signs rosters),
``Roster`` (the signed manifest defining a cluster), ``GroupKey`` (per
configuration, HKDF-derived data keys and a key commitment) and
``seal_to``/``open_sealed``. No module here does network I/O; the key file
and key directory helpers are the only ones that touch the disk.
"""

from ringward.crypto.address import canonical_address, split_address
from ringward.crypto.groupkey import GroupKey
from ringward.crypto.identity import AdminKey, Identity, PublicIdentity, verify_signature
from ringward.crypto.keydir import KeyDir, Secrets
from ringward.crypto.keyfile import KDF_INTERACTIVE, KDF_MODERATE, KDF_SENSITIVE, KdfCost
from ringward.crypto.roster import NodeEntry, ProtocolParams, Roster, RosterManifest, cluster_id
from ringward.crypto.sealing import open_sealed, seal_to
from ringward.crypto.state import AcceptedRoster, accept_roster, check_roster

__all__ = [
    "KDF_INTERACTIVE",
    "KDF_MODERATE",
    "KDF_SENSITIVE",
    "AcceptedRoster",
    "AdminKey",
    "GroupKey",
    "Identity",
    "KdfCost",
    "KeyDir",
    "NodeEntry",
    "ProtocolParams",
    "PublicIdentity",
    "Roster",
    "RosterManifest",
    "Secrets",
    "accept_roster",
    "canonical_address",
    "check_roster",
    "cluster_id",
    "open_sealed",
    "seal_to",
    "split_address",
    "verify_signature",
]
