"""Why the engine discarded something (:class:`Drop`), and what else it
counts (:class:`Note`): the keys of ``Engine.drops`` and ``Engine.notes``.

Every key of ``drops`` is a :class:`Drop` value, a wire reason (a
``WireError`` reason: the datagram did not decode), or a :class:`Drop`
prefix and a detail: ``batch:<wire reason>``, ``recovered:<wire reason>``,
``commit_unencodable:<wire reason>``, ``invalid:<rule>`` (engine/validate.py).
Every key of ``notes`` is a :class:`Note` value, alone or with a detail
(``gather:<reason>``, ``accuse:<signal>``, ``proof:<kind>``,
``rejected:<reason>``, ``bug:<what>``). docs/protocol.md lists both.
"""

from __future__ import annotations

import enum

__all__ = ["Drop", "Note"]


class Drop(enum.StrEnum):
    """A datagram, or a statement in it, that was not acted on."""

    # Before the body is decoded (header and signature).
    FOREIGN_CLUSTER = "foreign_cluster"  # another cluster id
    UNKNOWN_SENDER = "unknown_sender"  # not in the roster
    OWN_FRAME = "own_frame"  # ours, re-sent by a member serving a retransmission
    BANNED_SENDER = "banned_sender"  # evicted, cool-down not over
    BAD_SIGNATURE = "bad_signature"
    REJECTED = "rejected"  # we are evicted: nothing in or out
    NOT_ACCEPTED_IN_STATE = "not_accepted_in_state"  # dispatch.ACCEPTS
    # A claim its signer could not legitimately make (prefix: invalid:<rule>).
    INVALID = "invalid"
    # DATA frames.
    BAD_EPOCH = "bad_epoch"  # the epoch does not follow from the counter
    BAD_AEAD = "bad_aead"  # does not open under the ring's key
    BATCH = "batch"  # prefix: the plaintext batch did not parse
    FOREIGN_DATA = "foreign_data"  # not of a ring we hold a store for
    DATA_NOT_MEMBER = "data_not_member"
    DUPLICATE = "duplicate"
    BEYOND_WINDOW = "beyond_window"
    DIGEST_MISMATCH = "digest_mismatch"  # contradicts its maker's signed token
    OWN_FRAME_NOT_STORED = "own_frame_not_stored"  # a bug if the token was valid
    # Tokens.
    STALE_TOKEN = "stale_token"  # of our previous or pending ring
    TOKEN_NOT_MEMBER = "token_not_member"  # sender or successor not a member
    TOKEN_RULE_FRAMES = "token_rule:frames"  # lists frames outside its own seqs
    TOKEN_REQUEST_REPEAT = "token_request_repeat"  # answered recently
    # A member's token request of our operational ring for a hop more than
    # a rotation ahead of the newest we saw (engine/idle.py).
    WAKE_IGNORED = "wake_ignored"
    # Joins and merges.
    JOIN_BANNED = "join_banned"
    STALE_JOIN = "stale_join"  # older than what its sender told us since
    STALE_LEAVE = "stale_leave"
    JOIN_NOT_FOR_US = "join_not_for_us"
    JOIN_BACKOFF = "join_backoff"  # an outsider restarts membership once per back-off
    JOIN_FROM_FAILED = "join_from_failed"
    JOIN_EVIDENCE_DROPPED = "join_evidence_dropped"  # our join sent without its evidence
    FOREIGN_BANNED = "foreign_banned"
    FOREIGN_RING = "foreign_ring"  # no merge now (back-off, or not operational)
    # Commit tokens.
    COMMIT_BAD_CERT = "commit_bad_cert"
    COMMIT_NOT_MINE = "commit_not_mine"
    COMMIT_STALE = "commit_stale"
    # A commit of a ring no newer than one we entered (not our pending
    # one): a ring is never entered twice (recovery.py).
    COMMIT_REENTRY = "commit_reentry"
    COMMIT_DUPLICATE = "commit_duplicate"
    COMMIT_UNEXPECTED = "commit_unexpected"
    COMMIT_MISMATCH = "commit_mismatch"  # sets, members or key commitment differ
    COMMIT_BAD_KEY = "commit_bad_key"
    COMMIT_ENTRY_ALTERED = "commit_entry_altered"  # our own entry came back changed
    COMMIT_UNENCODABLE = "commit_unencodable"  # prefix: our forward does not fit
    # Recovery.
    RECOVERED = "recovered"  # prefix: a recovered old-ring frame did not decode
    RECOVERED_BAD_TOKEN = "recovered:bad_token"
    # An old-ring item its pusher already re-broadcast in this recovery.
    RECOVERED_REPEAT = "recovered:repeat"
    # Of a ring other than its pusher's old ring (per the commit).
    RECOVERED_FOREIGN = "recovered:foreign"
    # An old-ring frame its pusher does not re-broadcast: outside the plan's
    # range, or one the plan gives other members (RecoveryPlan.responsible).
    RECOVERED_NOT_OWED = "recovered:not_owed"
    # An old-ring token that contradicts the version this node holds or
    # the one the next token names (engine/versions.py).
    RECOVERED_VERSION = "recovered:version"
    # Evidence.
    ACCUSATION_BAD_SIGNATURE = "accusation_bad_signature"
    ACCUSATION_INVALID = "accusation_invalid"
    ACCUSATION_UNKNOWN_TARGET = "accusation_unknown_target"
    PROOF_REFUSED = "proof_refused"  # its statements do not convict
    PROOF_TOO_LARGE = "proof_too_large"
    PROOF_STALE = "proof_stale"  # an overload proof of rings long gone


class Note(enum.StrEnum):
    """Something the engine did or saw that is not a discarded input."""

    GATHER = "gather"  # prefix: a membership round started, and why
    LEFT = "left"  # we announced a leave
    TOKEN_RELAYED = "token_relayed"  # a token re-sent for a member that missed it
    TOKEN_RELAYED_AT_ONCE = "token_relayed_at_once"  # its maker's successor needed a relay lately
    WAKE_SENT = "wake_sent"  # new work on an idle ring: we asked for the next token
    WOKEN = "woken"  # a member's wake: our next visit does not hold the token
    COMMIT_RELAYED = "commit_relayed"  # a commit token re-sent to its late holder
    # Our key in the representative's commit did not open or match its
    # commitment: the representative failed and blamed (recovery.py).
    COMMIT_KEY_REFUSED = "commit_key_refused"
    CHAIN_STALLED = "chain_stalled"  # a missing link never came: membership restarts
    # Two rings in a row died in COMMIT or RECOVERY at the same member, and
    # their other members are too few to evict it: it is failed in the next
    # round (gather.enter).
    DIED_TWICE = "died_twice"
    # A signal against a member whose own reports say it is overloaded:
    # scored later, unless its overload evicts it first (detector.defer).
    SUSPICION_DEFERRED = "suspicion_deferred"
    ACCUSE = "accuse"  # prefix: we accused a member, on this signal
    PROOF = "proof"  # prefix: a proof convicted a member, of this kind
    REJECTED = "rejected"  # prefix: we were evicted, for this reason
    BUG = "bug"  # prefix: an internal inconsistency (never expected)
