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
- ``chaos``: the real-network suite (tests/chaos, root and network
  namespaces, minutes): ``make chaos`` only (``RINGWARD_CHAOS=1``); its
  one-scenario smoke is ``heavy`` instead (skipped where namespaces cannot
  be made, with the reason).

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
from pathlib import Path

import pytest
from hypothesis import settings

SOAK_ENV = "RINGWARD_SOAK"

# Hypothesis fails an example that takes over 200 ms by default: a timing
# assertion, which a loaded CI machine trips. Work is bounded by
# max_examples instead.
settings.register_profile("ringward", deadline=None)
settings.load_profile("ringward")
CHAOS_ENV = "RINGWARD_CHAOS"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # chaos: the real-network suite (tests/chaos), like soak run only on
    # request; its short smoke is marked heavy and runs in make test.
    for marker, env in (("soak", SOAK_ENV), ("chaos", CHAOS_ENV)):
        if os.environ.get(env) == "1":
            continue
        skip = pytest.mark.skip(reason=f"{marker}: run by `make {marker}` ({env}=1)")
        for item in items:
            if item.get_closest_marker(marker) is not None:
                item.add_marker(skip)


@pytest.fixture(autouse=True)
def _private_state_home(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """Node state of every test stays under its own tmp dir: ``ringward
    node`` without ``--state-dir`` puts ring.seq and its control socket in
    ``$XDG_STATE_HOME/ringward/NAME`` (runtime/statedir.py), never in the
    real home or /var/lib of the machine running the tests."""
    home = tmp_path_factory.mktemp("state")
    monkeypatch.setenv("XDG_STATE_HOME", str(home))
    monkeypatch.delenv("STATE_DIRECTORY", raising=False)
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    return home
