"""What runs where: the tiers of the suite (markers declared in pyproject.toml).

- unmarked: fast tests, well under a second each. ``make check`` runs only
  these (with ruff and mypy), in under two minutes.
- ``heavy``: seconds each - simulator and Byzantine worlds, attacks, real
  processes and sockets, the demo, fuzz corpus replays. ``make test`` runs
  them with the fast ones.
- ``soak``: run by ``make soak`` only - the long tail of a heavy
  parametrisation (``make test`` keeps a representative few of its cases)
  and the long soak runs. Plain ``pytest`` skips them unless
  ``RINGWARD_SOAK=1``, so ``pytest`` runs what ``make test`` runs.

A new slow case is marked ``heavy`` (a whole module: ``pytestmark``); a case
moved out of ``make test`` is marked ``soak``, never deleted.

Parallel runs (pytest-xdist, ``-n``, ``--dist loadgroup``): tests write only
under ``tmp_path`` and bind only ports the kernel hands out, or free ones
probed at random. Tests that run real nodes on loopback with wall-clock
timers are in ``xdist_group("loopback")``: one worker runs them one after
another, so two clusters never compete with each other for the CPUs.

Shared helpers are plain functions in tests/helpers.py (``from helpers
import ...``): the directory of this file, tests/, is on ``sys.path`` for
every test (pytest's default ``prepend`` import mode), also for tests in
subdirectories.
"""

from __future__ import annotations

import os

import pytest

SOAK_ENV = "RINGWARD_SOAK"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get(SOAK_ENV) == "1":
        return
    skip = pytest.mark.skip(reason=f"soak: run by `make soak` ({SOAK_ENV}=1)")
    for item in items:
        if item.get_closest_marker("soak") is not None:
            item.add_marker(skip)
