"""The event log parser is strict and total; the writer is canonical."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ringward.errors import EventLogError
from ringward.eventlog import (
    LINE_BYTES_MAX,
    ByzantineEvent,
    CrashEvent,
    DeliverEvent,
    Event,
    EvictEvent,
    RejectedEvent,
    RejoinEvent,
    RestartEvent,
    SendEvent,
    ViewEvent,
    parse_line,
    parse_lines,
    read_log,
    to_json,
)

D = "0123456789abcdef" * 2

# One valid line per event type, as a writer would emit it.
VALID: dict[str, dict[str, Any]] = {
    "send": {"t": 1.5, "node": 1, "ev": "send", "id": "m1", "digest": D, "safe": False},
    "deliver": {
        "t": 2,
        "node": 2,
        "ev": "deliver",
        "view": "r1",
        "seq": 7,
        "id": "m1",
        "sender": 1,
        "digest": D,
        "safe": True,
    },
    "view": {
        "t": 0,
        "node": 3,
        "ev": "view",
        "view": "r1",
        "kind": "regular",
        "members": [1, 2, 3],
        "quorate": True,
    },
    "crash": {"t": 3, "node": 3, "ev": "crash"},
    "restart": {"t": 4, "node": 3, "ev": "restart"},
    "evict": {"t": 5, "node": 1, "ev": "evict", "target": 4, "reason": "overload", "proof": True},
    "rejected": {"t": 5, "node": 4, "ev": "rejected", "reason": "overload"},
    "rejoin": {"t": 9, "node": 4, "ev": "rejoin"},
    "byzantine": {"t": 0, "node": 4, "ev": "byzantine", "behaviour": "equivocate"},
}

TYPES: dict[str, type] = {
    "send": SendEvent,
    "deliver": DeliverEvent,
    "view": ViewEvent,
    "crash": CrashEvent,
    "restart": RestartEvent,
    "evict": EvictEvent,
    "rejected": RejectedEvent,
    "rejoin": RejoinEvent,
    "byzantine": ByzantineEvent,
}


def reason_of(line: str | bytes) -> str:
    with pytest.raises(EventLogError) as info:
        parse_line(line, 7)
    assert "line 7" in info.value.message
    return info.value.reason


@pytest.mark.parametrize("ev", sorted(VALID))
def test_valid_lines_parse_and_round_trip(ev: str) -> None:
    event = parse_line(json.dumps(VALID[ev]), 3)
    assert type(event) is TYPES[ev]
    assert event.line == 3
    line = to_json(event)
    assert parse_line(line, 1) == event
    assert to_json(parse_line(line, 1)) == line
    assert list(json.loads(line))[:3] == ["t", "node", "ev"]


def test_canonical_line_is_fixed() -> None:
    event = parse_line(json.dumps(VALID["deliver"]), 1)
    assert to_json(event) == (
        '{"t":2.0,"node":2,"ev":"deliver","view":"r1","seq":7,"id":"m1","sender":1,'
        f'"digest":"{D}","safe":true}}'
    )


def test_extra_keys_are_ignored() -> None:
    obj = dict(VALID["send"], note={"any": [1, 2]}, x=None)
    assert parse_line(json.dumps(obj), 1) == parse_line(json.dumps(VALID["send"]), 1)


@pytest.mark.parametrize(
    ("ev", "key"), [(ev, key) for ev, obj in sorted(VALID.items()) for key in obj]
)
def test_every_required_key_is_required(ev: str, key: str) -> None:
    obj = dict(VALID[ev])
    del obj[key]
    assert reason_of(json.dumps(obj)) == "eventlog.missing_key"


@pytest.mark.parametrize(
    ("ev", "key", "value", "reason"),
    [
        ("send", "node", True, "bad_type"),
        ("send", "node", 1.0, "bad_type"),
        ("send", "node", "1", "bad_type"),
        ("send", "node", -1, "out_of_range"),
        ("send", "node", 65536, "out_of_range"),
        ("send", "t", "1", "bad_type"),
        ("send", "t", True, "bad_type"),
        ("send", "t", -0.5, "bad_time"),
        ("send", "t", 1e308 * 10, "not_finite"),
        ("send", "safe", 1, "bad_type"),
        ("send", "safe", None, "bad_type"),
        ("send", "id", "", "bad_id"),
        ("send", "id", "has space", "bad_id"),
        ("send", "id", "x" * 257, "bad_id"),
        ("send", "id", "é", "bad_id"),
        ("send", "id", 5, "bad_type"),
        ("send", "digest", D.upper(), "bad_digest"),
        ("send", "digest", D[:-1], "bad_digest"),
        ("send", "digest", D + "0", "bad_digest"),
        ("send", "digest", "g" * 32, "bad_digest"),
        ("deliver", "seq", -1, "out_of_range"),
        ("deliver", "seq", 2**64, "out_of_range"),
        ("deliver", "seq", False, "bad_type"),
        ("deliver", "sender", [1], "bad_type"),
        ("view", "kind", "primary", "bad_kind"),
        ("view", "members", [], "bad_members"),
        ("view", "members", [2, 1], "bad_members"),
        ("view", "members", [1, 1], "bad_members"),
        ("view", "members", [1, True], "bad_members"),
        ("view", "members", list(range(300)), "bad_members"),
        ("view", "members", "1,2", "bad_type"),
        ("view", "quorate", "yes", "bad_type"),
        ("evict", "target", 1.5, "bad_type"),
        ("evict", "reason", "a\nb", "bad_text"),
        ("evict", "reason", "x" * 2000, "bad_text"),
        ("byzantine", "behaviour", ["x"], "bad_type"),
        ("send", "ev", "sent", "unknown_event"),
        ("send", "ev", 1, "unknown_event"),
    ],
)
def test_mistyped_values_are_refused(ev: str, key: str, value: Any, reason: str) -> None:
    obj = dict(VALID[ev])
    obj[key] = value
    line = json.dumps(obj)  # json.dumps writes inf as "Infinity"
    assert reason_of(line) == f"eventlog.{reason}"


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("", "bad_json"),
        ("   ", "bad_json"),
        ("[]", "not_object"),
        ("42", "not_object"),
        ('"send"', "not_object"),
        ("{", "bad_json"),
        ('{"t": NaN, "node": 1, "ev": "crash"}', "not_finite"),
        ('{"t": -Infinity, "node": 1, "ev": "crash"}', "not_finite"),
        ('{"t": 1e400, "node": 1, "ev": "crash"}', "bad_time"),
        ('{"t": 1, "node": 1' + "0" * 5000 + ', "ev": "crash"}', "int_too_long"),
        ('{"t": 1, "node": 1, "ev": "crash", "ev": "restart"}', "duplicate_key"),
        (
            '{"t": 1, "node": 1, "ev": "crash", "x": ' + "[" * 100_000 + "]" * 100_000 + "}",
            "too_deep",
        ),
        ('{"t": 1, "node": 1, "ev": "crash"} {}', "bad_json"),
        ('{"t": 1, "node": 1, "ev": "crash", "x": "\\ud800"}', None),  # extra keys: anything
    ],
)
def test_malformed_lines_are_refused(line: str, reason: str | None) -> None:
    if reason is None:
        assert isinstance(parse_line(line, 1), CrashEvent)
    else:
        assert reason_of(line) == f"eventlog.{reason}"


def test_bytes_lines() -> None:
    line = json.dumps(VALID["send"]).encode()
    assert parse_line(line, 1) == parse_line(line.decode(), 1)
    assert parse_line(line + b"\n", 1) == parse_line(line, 1)
    assert reason_of(b'{"t": 1, "node": 1, "ev": "crash", "x": "\xff"}') == "eventlog.bad_utf8"
    assert reason_of(12345) == "eventlog.bad_type"  # type: ignore[arg-type]


def test_overlong_lines_are_refused_before_parsing() -> None:
    pad = "x" * LINE_BYTES_MAX
    line = json.dumps(dict(VALID["crash"], pad=pad))
    assert reason_of(line) == "eventlog.line_too_long"
    assert reason_of(line.encode()) == "eventlog.line_too_long"
    # Multi-byte characters count in bytes, not characters.
    wide = json.dumps(dict(VALID["crash"], pad="é" * (LINE_BYTES_MAX // 2)), ensure_ascii=False)
    assert len(wide) < LINE_BYTES_MAX
    assert reason_of(wide) == "eventlog.line_too_long"


def test_read_log(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    lines = [json.dumps(VALID[ev]) for ev in ("view", "send", "deliver")]
    path.write_text("\n".join(lines) + "\n")
    events = read_log(path)
    assert [e.line for e in events] == [1, 2, 3]
    assert events == parse_lines(lines)
    path.write_text("\r\n".join(lines))  # CRLF, no final newline
    assert read_log(path) == events
    path.write_text(lines[0] + "\n\n" + lines[1] + "\n")
    with pytest.raises(EventLogError) as info:
        read_log(path)
    assert "line 2" in info.value.message
    path.write_bytes(b"x" * (LINE_BYTES_MAX + 10))
    with pytest.raises(EventLogError, match="line_too_long"):
        read_log(path)
    with pytest.raises(EventLogError, match="unreadable"):
        read_log(tmp_path / "missing.jsonl")


# --------------------------------------------------------------------------
# Totality under random input


def _total(line: str | bytes) -> Event | None:
    try:
        return parse_line(line, 1)
    except EventLogError as exc:
        assert exc.reason.startswith("eventlog.")
        return None


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_any_text_is_an_event_or_an_error(text: str) -> None:
    _total(text)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_any_bytes_are_an_event_or_an_error(data: bytes) -> None:
    _total(data)


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(sorted(VALID)),
    st.dictionaries(
        st.sampled_from(
            [
                "t",
                "node",
                "ev",
                "id",
                "digest",
                "safe",
                "view",
                "seq",
                "sender",
                "kind",
                "members",
                "quorate",
                "target",
                "reason",
                "proof",
                "behaviour",
            ]
        ),
        _json_values,
        max_size=4,
    ),
)
def test_valid_lines_with_random_values_are_total(ev: str, changes: dict[str, Any]) -> None:
    obj = dict(VALID[ev], **changes)
    event = _total(json.dumps(obj))
    if event is not None:
        assert parse_line(to_json(event), 1) == event


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(sorted(VALID)), st.integers(0, 300), st.integers(0, 255))
def test_truncated_and_garbled_lines_are_total(ev: str, at: int, byte: int) -> None:
    line = json.dumps(VALID[ev]).encode()
    cut = at % (len(line) + 1)
    _total(line[:cut])
    garbled = bytearray(line)
    garbled[cut % len(line)] = byte
    _total(bytes(garbled))
