"""Node addresses: one canonical spelling per address, clear refusals."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ringward.crypto import canonical_address, split_address
from ringward.errors import ConfigError


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("127.0.0.1:7400", "127.0.0.1:7400"),
        ("[::1]:7400", "[::1]:7400"),
        ("[0:0:0:0:0:0:0:1]:7400", "[::1]:7400"),
        ("[FD00:0::2]:1", "[fd00::2]:1"),
        ("Node1.Example.COM:65535", "node1.example.com:65535"),
        ("localhost:7400", "localhost:7400"),
        ("db-3:9", "db-3:9"),
    ],
)
def test_canonical_spelling(text: str, canonical: str) -> None:
    assert canonical_address(text) == canonical
    assert canonical_address(canonical) == canonical


def test_split_returns_bare_ipv6_host() -> None:
    assert split_address("[fd00::2]:7400") == ("fd00::2", 7400)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "127.0.0.1",
        "127.0.0.1:",
        "127.0.0.1:0",
        "127.0.0.1:65536",
        "127.0.0.1:07400",
        "127.0.0.1:+74",
        "::1:7400",
        "[::1]7400",
        "[::1",
        "[fe80::1%eth0]:7400",
        "[1.2.3.4]:7400",
        "256.1.1.1:7400",
        "01.2.3.4:7400",
        "-bad.example:1",
        "bad-.example:1",
        "under_score:1",
        "a..b:1",
        "host.:1",
        ":7400",
        "h\u00e9llo:1",
        "x" * 300 + ":1",
        "a b:1",
    ],
)
def test_refused(text: str) -> None:
    with pytest.raises(ConfigError) as info:
        canonical_address(text)
    assert info.value.reason == "bad_address"
    assert "\n" not in str(info.value)


@given(st.text(max_size=60))
def test_total_and_idempotent(text: str) -> None:
    try:
        canonical = canonical_address(text)
    except ConfigError:
        return
    assert canonical_address(canonical) == canonical
