"""ringward.sync.Node takes exactly the asyncio Node's arguments.

The blocking facade forwards its keyword options (``NodeOptions``) to the
asyncio constructor instead of restating them; mypy checks that each option
is a constructor parameter of the same type, these tests that no constructor
parameter is missing from the options (the facade once lacked ``misbehave``,
``misbehave_after_s`` and ``leave_on_close``) and that they arrive.
"""

from __future__ import annotations

import inspect
import typing
from pathlib import Path

import pytest

from ringward.crypto import Identity, KeyDir, Roster
from ringward.errors import ConfigError
from ringward.runtime.node import Node as AsyncNode
from ringward.runtime.options import NodeOptions
from ringward.sync import Node as SyncNode


def _cluster(path: Path) -> tuple[Roster, Identity]:
    kd = KeyDir(path)
    roster = kd.init("sync", [("node1", "127.0.0.1:1"), ("node2", "127.0.0.1:2")])
    return roster, Identity.load(kd.node_key("node1"))


def test_options_are_the_asyncio_constructors_keywords() -> None:
    params = inspect.signature(AsyncNode).parameters
    keywords = {name for name, p in params.items() if p.kind is p.KEYWORD_ONLY}
    assert set(NodeOptions.__annotations__) == keywords
    assert [name for name, p in params.items() if p.kind is not p.KEYWORD_ONLY] == [
        "roster",
        "identity",
    ]
    assert not NodeOptions.__required_keys__  # every option has its default


def test_sync_signature_is_the_asyncio_one_plus_prefer_uvloop() -> None:
    params = inspect.signature(SyncNode).parameters
    assert list(params) == ["roster", "identity", "prefer_uvloop", "options"]
    hints = typing.get_type_hints(SyncNode.__init__, include_extras=True)
    assert typing.get_args(hints["options"]) == (NodeOptions,)


def test_options_reach_the_asyncio_node(tmp_path: Path) -> None:
    roster, identity = _cluster(tmp_path / "keys")
    with pytest.raises(ConfigError) as err:
        SyncNode(roster, identity, misbehave="no-such-behaviour")
    assert err.value.reason == "bad_misbehave"
    with pytest.raises(ConfigError) as err:
        SyncNode(roster, identity, event_queue_max=0)
    assert err.value.reason == "bad_config"
    with pytest.raises(TypeError):
        SyncNode(roster, identity, no_such_option=1)  # type: ignore[call-arg]
    node = SyncNode(roster, identity, bind="127.0.0.1:0", leave_on_close=False)
    assert node.node_id == 1
    assert node.name == "node1"
