"""Scripted interaction tests: a small text script drives real engines and
states what they must output (the data-driven style of etcd-io/raft).

A script is a sequence of blocks::

    # a comment
    run 2
    ----
    n1 view R1.4 regular 1,2,3

Each block is one command, a ``----`` line, and the output it must produce
(the events the engines handed out during the command, one line each, in
node order, then the command's own output). Blocks are separated by a blank
line. Commands:

``cluster N``            a new ring of N real engines with real keys (FAST timeouts)
``run S``                advance S virtual seconds, delivering and ticking
``submit NODE TEXT [safe]``  NODE broadcasts TEXT
``down NODE`` / ``up NODE``  NODE stops hearing and ticking / resumes
``reject NODE REASON``   NODE learns it is evicted (its own verdict)
``state``                every node's state and installed view
``counters NODE``        NODE's non-zero drops and notes

``RINGWARD_REWRITE_SCRIPTS=1 pytest tests/engine/test_scripted.py`` rewrites the
expected outputs from what the engines do now (review the diff before
committing it).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

from ring_harness import Cluster
from ringward.engine.api import (
    Delivered,
    Evicted,
    Rejected,
    Rejoined,
    ViewInstalled,
)
from ringward.engine.detector import Verdict

REWRITE_ENV = "RINGWARD_REWRITE_SCRIPTS"


class Block(NamedTuple):
    line: int
    command: str
    expected: list[str]


def parse(text: str) -> list[Block]:
    blocks: list[Block] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i].strip()
        if not line or line.startswith("#"):
            i += 1
            continue
        start = i + 1
        if i + 1 >= len(lines) or lines[i + 1].strip() != "----":
            raise ValueError(f"line {start}: a command needs a '----' line after it")
        i += 2
        out: list[str] = []
        while i < len(lines) and lines[i].strip():
            out.append(lines[i].rstrip())
            i += 1
        blocks.append(Block(start, line, out))
    return blocks


def render(blocks: list[Block], outputs: list[list[str]], header: str) -> str:
    parts = [header.rstrip()] if header.strip() else []
    for block, out in zip(blocks, outputs, strict=True):
        parts.append("\n".join([block.command, "----", *out]))
    return "\n\n".join(parts) + "\n"


def _event(node: int, e: object) -> str:
    # object, not EngineEvent: an event kind added later still prints (repr).
    if isinstance(e, ViewInstalled):
        return f"n{node} view {e.view} {e.kind} {','.join(map(str, e.members))}"
    if isinstance(e, Delivered):
        mode = "safe" if e.safe else "agreed"
        text = e.payload.decode("utf-8", "backslashreplace")
        return f"n{node} deliver {e.view} {e.msg_id} {text} {mode}"
    if isinstance(e, Evicted):
        return f"n{node} evicted {e.target} {e.reason} proof={e.proof}"
    if isinstance(e, Rejected):
        return f"n{node} rejected {e.reason} cooldown={e.cooldown_s:g}s"
    if isinstance(e, Rejoined):
        return f"n{node} rejoined {e.view}"
    return f"n{node} {e!r}"


class Runner:
    """Runs one script's commands against a :class:`Cluster`."""

    def __init__(self) -> None:
        self.cluster: Cluster | None = None
        self._seen: dict[int, int] = {}

    def _c(self) -> Cluster:
        if self.cluster is None:
            raise ValueError("no cluster yet: start with 'cluster N'")
        return self.cluster

    def _new_events(self) -> Iterator[str]:
        c = self._c()
        for node in c.roster:
            events = c.events[node]
            for e in events[self._seen.get(node, 0) :]:
                yield _event(node, e)
            self._seen[node] = len(events)

    def do(self, command: str) -> list[str]:
        word, *args = command.split()
        out: list[str] = []
        if word == "cluster":
            self.cluster = Cluster(int(args[0]), budget=None)
            self._seen = {}
        elif word == "run":
            self._c().run(float(args[0]))
        elif word == "submit":
            node, text = int(args[0]), args[1]
            self._c().submit(node, text.encode(), safe=args[2:] == ["safe"])
        elif word == "down":
            self._c().down.add(int(args[0]))
        elif word == "up":
            self._c().down.discard(int(args[0]))
        elif word == "reject":
            c, node = self._c(), int(args[0])
            e = c.engines[node]
            e.reject(Verdict(node, args[1], True, (), c.now))
        elif word == "state":
            c = self._c()
            for node in c.roster:
                e = c.engines[node]
                out.append(f"n{node} {e.state.value} {e.view or '-'}")
        elif word == "counters":
            e = self._c().engines[int(args[0])]
            out += [f"drop {k} {v}" for k, v in sorted(e.drops.items()) if v]
            out += [f"note {k} {v}" for k, v in sorted(e.notes.items()) if v]
        else:
            raise ValueError(f"unknown command {word!r}")
        return [*self._new_events(), *out]


def run_script(path: Path) -> tuple[str, str]:
    """(expected text, actual text) of one script file."""
    text = path.read_text(encoding="utf-8")
    blocks = parse(text)
    header = "\n".join(
        line for line in text.splitlines()[: blocks[0].line - 1] if line.startswith("#")
    )
    runner = Runner()
    outputs = [runner.do(b.command) for b in blocks]
    actual = render(blocks, outputs, header)
    if os.environ.get(REWRITE_ENV):
        path.write_text(actual, encoding="utf-8")
    return render(blocks, [b.expected for b in blocks], header), actual
