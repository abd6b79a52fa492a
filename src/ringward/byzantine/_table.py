"""Behaviour name -> the class that implements it.

Every name of ``EXPECT`` but ``overload`` is here: an overloaded node is
honest, made slow by whatever runs it (the simulator's ``World.set_slow``,
the runtime's ``--misbehave overload``), not by a wrapped engine.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from ringward.byzantine._base import Behaviour
from ringward.byzantine._membership import (
    AlterCert,
    AlterCommit,
    AlterKeyNext,
    BadKeyNext,
    CommitLie,
    CommitLieJump,
    DropCommit,
    FailLive,
    FloodRecovery,
    FloodRecoveryRepeat,
    JoinChurn,
    JoinPhantom,
    PoisonRingSeq,
    PoisonRingSeqJump,
    RecoverFork,
    StarveCommit,
)
from ringward.byzantine._tokens import (
    BreakLink,
    CreepFlow,
    DropToken,
    Equivocate,
    EquivocateSuccessor,
    FarHop,
    FarHopJump,
    FloodSigned,
    FrameAru,
    HoldAru,
    LieAru,
    LieBacklog,
    LieFcc,
    ResignAru,
    SlowToken,
    StarveSuccessor,
)
from ringward.byzantine._traffic import FloodJunk, FrameTarget, Replay, Withhold

__all__ = ["CLASSES"]

CLASSES: Final[Mapping[str, type[Behaviour]]] = MappingProxyType(
    {
        "equivocate": Equivocate,
        "lie-aru": LieAru,
        "break-link": BreakLink,
        "drop-token": DropToken,
        "starve-successor": StarveSuccessor,
        "slow-token": SlowToken,
        "withhold": Withhold,
        "join-churn": JoinChurn,
        "join-phantom": JoinPhantom,
        "flood-signed": FloodSigned,
        "frame": FrameTarget,
        "flood-junk": FloodJunk,
        "replay": Replay,
        "poison-ring-seq": PoisonRingSeq,
        "poison-ring-seq-jump": PoisonRingSeqJump,
        "far-hop": FarHop,
        "far-hop-jump": FarHopJump,
        "commit-lie": CommitLie,
        "commit-lie-jump": CommitLieJump,
        "lie-fcc": LieFcc,
        "lie-backlog": LieBacklog,
        "creep-flow": CreepFlow,
        "hold-aru": HoldAru,
        "drop-commit": DropCommit,
        "starve-commit": StarveCommit,
        "flood-recovery": FloodRecovery,
        "flood-recovery-repeat": FloodRecoveryRepeat,
        "recover-fork": RecoverFork,
        "equivocate-successor": EquivocateSuccessor,
        "frame-aru": FrameAru,
        "fail-live": FailLive,
        "resign-aru": ResignAru,
        "alter-commit": AlterCommit,
        "alter-cert": AlterCert,
        "alter-key-next": AlterKeyNext,
        "bad-key-next": BadKeyNext,
    }
)
