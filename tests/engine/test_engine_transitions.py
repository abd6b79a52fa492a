"""The engine's state changes go through one function and follow one table
(engine/transition.py): checked in the source, and on real engines driven
through start, token loss, a rejection and its rejoin."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from ring_harness import FAST, Cluster
from ringward.engine import State, transition
from ringward.engine.detector import Verdict

ENGINE_SRC = Path(__file__).resolve().parents[2] / "src" / "ringward" / "engine"


def test_the_table_names_every_state() -> None:
    assert set(transition.NEXT) == set(State)
    assert all(targets <= set(State) for targets in transition.NEXT.values())


def test_only_transition_py_assigns_the_state() -> None:
    """Outside transition.py, only Engine.__init__ sets the first state."""
    found = []
    for path in sorted(ENGINE_SRC.glob("*.py")):
        if path.name == "transition.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets = node.targets if isinstance(node, ast.Assign) else []
            for target in targets:
                if isinstance(target, ast.Attribute) and target.attr == "state":
                    found.append(f"{path.name}:{target.lineno}")
    assert found == ["engine.py:" + str(_init_state_line())], found


def _init_state_line() -> int:
    text = (ENGINE_SRC / "engine.py").read_text(encoding="utf-8").splitlines()
    return next(i for i, line in enumerate(text, 1) if "self.state = State.GATHER" in line)


def test_real_engines_move_only_along_the_table(monkeypatch: pytest.MonkeyPatch) -> None:
    moves: list[tuple[int, State, State]] = []
    real_to = transition.to

    def recording_to(engine: object, new: State) -> None:
        moves.append((engine.node_id, engine.state, new))  # type: ignore[attr-defined]
        real_to(engine, new)  # type: ignore[arg-type]

    monkeypatch.setattr(transition, "to", recording_to)
    c = Cluster(4)
    c.run(2.0)
    assert all(c.engines[i].state is State.OPERATIONAL for i in c.roster)
    # Token loss: node 4 goes silent, the others reform without it.
    c.down.add(4)
    c.run(3.0)
    c.down.discard(4)
    c.run(3.0)
    # A rejection and its rejoin after the cool-down.
    e4 = c.engines[4]
    c.call(4, lambda: e4.reject(Verdict(4, "overload", True, (), c.now)))
    assert e4.state is State.REJECTED
    c.run(FAST.evict_cooldown_ms / 1000 + 4.0)
    assert all(c.engines[i].state is State.OPERATIONAL for i in c.roster)
    assert c.regular_members(1) == (1, 2, 3, 4)

    seen = {(old, new) for _, old, new in moves}
    illegal = {(old, new) for old, new in seen if new not in transition.NEXT[old]}
    assert not illegal
    # Every kind of move this run makes happened: the table is exercised.
    assert {
        (State.GATHER, State.COMMIT),
        (State.COMMIT, State.RECOVERY),
        (State.RECOVERY, State.OPERATIONAL),
        (State.OPERATIONAL, State.GATHER),
        (State.OPERATIONAL, State.REJECTED),
        (State.REJECTED, State.GATHER),
    } <= seen
    assert not any(k.startswith("bug") for i in c.roster for k in c.engines[i].notes)
