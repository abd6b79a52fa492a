"""Invariant: for ANY bytes, ringward.crypto.Roster.from_bytes returns a
Roster (well formed and correctly signed by the admin key it names) or
raises RosterError (nothing else); an accepted roster re-encodes to the very
same bytes, and parsing that encoding gives the same Roster."""

if __name__ == "__main__":
    import _harness

    _harness.instrument(["ringward.crypto"])

from ringward.crypto import Roster
from ringward.errors import RosterError

import _harness


def TestOneInput(data: bytes) -> None:
    try:
        roster = Roster.from_bytes(data)
    except RosterError:
        return
    again = roster.to_bytes()
    assert again == data, "accepted roster is not canonical"
    assert Roster.from_bytes(again) == roster, "from_bytes(to_bytes(r)) != r"


def seeds() -> list[bytes]:
    from ringward.crypto import ProtocolParams, vectors

    # Deterministic (fixed seeds, deterministic Ed25519): the same corpus
    # on every machine. One small, one mid-size, one later version with
    # non-default parameters and a second admin key.
    return [
        vectors.example_roster(1).to_bytes(),
        vectors.example_roster(5).to_bytes(),
        vectors.example_roster(
            3,
            cluster="other.cluster",
            version=7,
            admin=vectors.example_admin("second"),
            params=ProtocolParams(token_timeout_ms=3000, window_size=100, max_messages=20),
        ).to_bytes(),
    ]


if __name__ == "__main__":
    _harness.main(TestOneInput)
