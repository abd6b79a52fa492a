"""Byzantine members: a real engine, holding its real keys, whose output
(and sometimes its timing) is altered by a behaviour.

Layer: above the engine, below the simulator and the runtime (it imports
ringward.engine, ringward.wire and ringward.errors, never ringward.sim or
ringward.runtime). The simulator runs these members and judges them
(``ringward sim --byzantine ID:BEHAVIOUR[,...]``, sim/byzantine.py); a real
node becomes one with ``ringward node --misbehave BEHAVIOUR``.

Public surface: ``ByzantineEngine`` (the wrapper), ``BEHAVIOURS`` and
``EXPECT`` (the names, and what must happen to each: evicted with a proof,
by accusations, for overload and back, or harmless), ``VALUE_LIES``,
``parse_spec``; ``Behaviour`` and ``Withhold`` for whoever inspects a
running behaviour. Modules: expect.py (names and expectations), spec.py
(parsing), engine.py (the wrapper), _base.py (what a behaviour is),
_tokens.py, _membership.py, _traffic.py (the behaviours), _table.py (name
-> class).

Behaviours (docs/fault-detector.md has the detection bounds):

* ``equivocate`` - signs two versions of each token, one to each half.
* ``lie-aru`` - signs each of its tokens with the aru raised to its seq
  (aru_id 0), and keeps telling that lie (retransmissions, links, answers).
* ``resign-aru`` - re-signs every token it sends, relays of other members'
  tokens included, with the aru raised to its seq, after its engine recorded
  the original: its relays are tokens out of its turn, and its successor's
  tokens link to a version its own engine never made.
* ``alter-commit`` - restarts membership once, then every commit token it
  forwards names another key commitment (as the representative: its keys
  do not match its commitment for anyone).
* ``alter-key-next`` - restarts membership once, then every commit token
  it forwards in the first rotation seals the next holder a bad key.
* ``alter-cert`` - restarts membership once, then every commit token it
  forwards in the first rotation carries a certificate that does not verify.
* ``bad-key-next`` - restarts membership once, then, as the representative,
  seals the member after it a key that does not open (only it can tell).
* ``break-link`` - resign-aru with random bytes for ``prev``, so that no
  predecessor links to its tokens (the transition rules cannot be applied);
  every copy it sends of a token, retransmissions and answers included, is
  the altered one.
* ``drop-token`` - never forwards the token (still answers joins).
* ``starve-successor`` - sends each token (and its retransmissions) to every
  member except the successor it names: the successor must not be blamed.
* ``slow-token`` - holds each token 90% of the token timeout.
* ``withhold`` - never re-sends a frame once it was broadcast (harmless:
  indistinguishable from lost copies; any member serves a request left
  standing 3 rotations).
* ``join-churn`` - restarts membership 0.3 s after every install.
* ``join-phantom`` - the same, proposing a roster node absent from the ring
  and silent (a crashed one) in each restart, as a merge would; with no
  such node, it is join-churn.
* ``flood-signed`` - signs and broadcasts tokens that are not its turn.
* ``frame:TARGET`` - accuses TARGET at every visit.
* ``fail-live:TARGET`` - restarts membership once, then lists TARGET, a
  live correct member, in the fail set of every join it signs.
* ``flood-junk`` - ten datagrams that fail checks per real one.
* ``replay`` - re-sends other members' frames captured a second earlier.
* ``overload`` - (honest) processes every datagram slowly for a while,
  reporting its receive queue in its signed tokens. Not a wrapped engine:
  whoever runs the node slows it (sim/byzantine.py, runtime/node.py).

Value lies (issue 14): signed numbers that make a correct engine loop over,
or overflow on, a range the liar chose. Each is one signed statement that
alone shows its signer said something impossible (expected: proof). The
join and commit liars restart membership once at the start of misbehaviour
(and retry every 0.3 s until they could), so that they have joins and a
commit entry to lie in.

* ``poison-ring-seq`` - signs every join with ring_seq 2^64-1;
  ``poison-ring-seq-jump``: its real ring_seq + 2^40.
* ``far-hop`` - every token it makes (its own turn, the right successor) has
  hop + 2^62 (rounded down to a multiple of the ring size, so the hop is
  still its turn); ``far-hop-jump``: + 10^7 (rounded the same way). Every
  copy it sends, retransmissions and answers included, is the altered one.
* ``commit-lie`` - its own entry in every commit token it forwards claims
  aru = high_seq = high_delivered = 2^64-1; ``commit-lie-jump``: each of the
  three + 5,000,000 over its real value.

Flow-control lies (issue 16): numbers that would starve the correct
holders' windows.

* ``lie-fcc`` / ``lie-backlog`` - every token it makes claims fcc
  (backlog) 2^32-1; ``creep-flow``: both raised every visit as far as the
  transition rules allow (one visit's frames, a full queue).
* ``hold-aru`` - keeps the aru of every token it makes where it was at its
  first visit of the ring, naming itself (a member that cannot receive);
  ``frame-aru``: the same, naming another member as the one holding it.
* ``drop-commit`` - restarts membership once, then never forwards a commit
  token: every ring round stops at it.
* ``equivocate-successor`` - the real token to its successor, another
  version to every other member.
* ``starve-commit`` - restarts membership once, then sends each commit
  token it forwards to every member but the next holder.
* ``flood-recovery`` - restarts membership once, then, in every recovery,
  re-broadcasts junk "recovered" frames for as long as it may, and reports
  no load in its tokens; ``flood-recovery-repeat``: the same with one of
  the old ring's genuine signed tokens, over and over.
* ``recover-fork`` - restarts membership once, then, in every recovery,
  re-broadcasts a second signed version of its last old-ring token that
  listed frames, naming other digests for them.
"""

from __future__ import annotations

from ringward.byzantine._base import U64_MAX, Behaviour
from ringward.byzantine._traffic import Withhold
from ringward.byzantine.engine import ByzantineEngine
from ringward.byzantine.expect import (
    ARU_LIES,
    BEHAVIOURS,
    COMMIT_LIES,
    EXPECT,
    FLOW_LIES,
    TARGETED,
    VALUE_LIES,
    Expectation,
)
from ringward.byzantine.spec import parse_spec

__all__ = [
    "ARU_LIES",
    "BEHAVIOURS",
    "COMMIT_LIES",
    "EXPECT",
    "FLOW_LIES",
    "TARGETED",
    "U64_MAX",
    "VALUE_LIES",
    "Behaviour",
    "ByzantineEngine",
    "Expectation",
    "Withhold",
    "parse_spec",
]
