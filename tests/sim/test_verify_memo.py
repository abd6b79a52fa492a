"""The simulator's shared signature memo: same outcomes, bounded, shared."""

from __future__ import annotations

from ringward.sim.keys import SimKeys, VerifyMemo


def test_a_world_verifies_each_broadcast_once_and_refuses_forgeries() -> None:
    keys = SimKeys(7, (1, 2, 3))
    sig = keys.security(1).sign(b"token")
    a, b = keys.security(2), keys.security(3)
    assert a.verify(1, b"token", sig) and b.verify(1, b"token", sig)
    assert keys.verify_memo.hits == 1
    forged = bytes(64)
    assert not a.verify(1, b"token", forged) and not b.verify(1, b"token", forged)
    assert not a.verify(2, b"token", sig)  # another sender's key: not a hit
    assert keys.verify_memo.hits == 2


def test_the_memo_forgets_the_oldest_past_its_bound() -> None:
    memo = VerifyMemo(entries_max=2)
    for i in range(3):
        memo.store(1, bytes([i]), b"s", True)
    assert memo.lookup(1, b"\x00", b"s") is None
    assert memo.lookup(1, b"\x02", b"s") is True
