"""A roster reload hands the detector's verdicts to the next engine."""

from __future__ import annotations

from ringward.engine.config import EngineConfig
from ringward.engine.detector import Detector


def test_verdicts_cooldowns_and_amnesty_survive_an_engine_replacement() -> None:
    old = Detector(1, (1, 2, 3, 4), EngineConfig())
    assert old.convict(10.0, 4, "equivocation", True, ()) is not None
    assert old.convict(10.0, 3, "accused", False, ()) is not None
    old.convict(11.0, 1, "overload", True, ())  # this node, rejected
    old.amnesty[2] = 7
    cooldown_4, cooldown_3 = old.cooldown_s(4), old.cooldown_s(3)
    # The new roster removed node 3.
    new = Detector(1, (1, 2, 4, 5), EngineConfig())
    new.adopt(old.carry())
    assert sorted(new.verdicts) == [4]  # node 3 left the roster; node 1 is us
    assert new.banned(10.0 + cooldown_4 - 1.0, 4) and not new.banned(10.0 + cooldown_4, 4)
    assert new.cooldown_s(4) == cooldown_4 and cooldown_3 > 0
    assert new.verdicts[4].evidence == ()  # signed under the old roster version
    assert new.amnesty == {2: 7} and 3 not in new.evictions
