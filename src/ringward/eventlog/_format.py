"""The JSON Lines event log format: typed events, a strict total parser, one writer.

Theory of operation
-------------------
The simulator and the real runtime both write every node's sends, deliveries,
views, crashes and evictions as one JSON object per line; the guarantee
checker (:mod:`ringward.sim.checker`) and independent third-party checkers read
the same file. The format is therefore a contract (docs/guarantees.md):

* Parsing is strict and total: a line either yields one frozen event or raises
  :class:`~ringward.errors.EventLogError` with a machine-readable ``reason``
  and the 1-based line number -- never ``KeyError``, ``RecursionError``,
  ``UnicodeDecodeError`` or any other type.
* Everything is bounded before it is interpreted: line length, string lengths,
  integer digits, list lengths. A hostile log cannot make the parser allocate
  more than a small multiple of one line.
* Duplicate keys are rejected: JSON parsers disagree on which copy wins, and
  two checkers must never read one line two ways.
* Extra keys are allowed and ignored, so writers may add diagnostics.
* ``wall`` (optional, every event): wall-clock time, Unix seconds, written
  by the runtime for people and other tools; checkers order by ``t`` only
  (the wall clock may step), so it takes no part in equality.
* :func:`to_json` writes one canonical line per event (fixed key order, no
  spaces, ASCII only); ``parse_line(to_json(e)) == e`` for every event.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from os import PathLike
from typing import Any, ClassVar, Final, Literal, NoReturn

from ringward.errors import EventLogError

__all__ = [
    "DIGEST_HEX_CHARS",
    "LINE_BYTES_MAX",
    "NODE_ID_MAX",
    "ByzantineEvent",
    "CrashEvent",
    "DeliverEvent",
    "Event",
    "EvictEvent",
    "RejectedEvent",
    "RejoinEvent",
    "RestartEvent",
    "SendEvent",
    "ViewEvent",
    "ViewKind",
    "iter_lines",
    "parse_line",
    "parse_lines",
    "payload_digest",
    "read_log",
    "to_json",
]

# One line holds one event; the largest legitimate one is a view of NODES_MAX
# members (~2 KiB). 1 MiB leaves room for writers' extra keys while bounding
# what one hostile line can make the parser allocate.
LINE_BYTES_MAX: Final = 1 << 20

# Node ids are 16-bit on the wire. 0 is accepted here (the wire reserves it as
# "no node") so that simulators numbering nodes from 0 can log directly.
NODE_ID_MAX: Final = 65535

# Members in one view: the wire's NODES_MAX (rings are meant for 3-32 nodes).
VIEW_MEMBERS_MAX: Final = 256

# Message ids and view ids: printable ASCII without spaces, so every checker
# in every language compares them byte for byte.
ID_CHARS_MAX: Final = 256

# Free text (evict reasons, Byzantine behaviour names).
TEXT_CHARS_MAX: Final = 1024

# BLAKE2b-128 of the payload, lowercase hex.
DIGEST_HEX_CHARS: Final = 32

# seq is a ring sequence number; 64 bits is more than any ring can reach.
SEQ_MAX: Final = (1 << 64) - 1

# Integer literals longer than this are refused before int() sees them:
# Python's int() of a long digit string is quadratic.
INT_DIGITS_MAX: Final = 24

_ID_RE: Final = re.compile(rf"[!-~]{{1,{ID_CHARS_MAX}}}")
_DIGEST_RE: Final = re.compile(rf"[0-9a-f]{{{DIGEST_HEX_CHARS}}}")

ViewKind = Literal["transitional", "regular"]


@dataclass(frozen=True, slots=True, kw_only=True)
class _Base:
    """Fields every event carries. ``line`` is where it was read (0 if built
    in memory); it is for messages only and takes no part in equality.
    ``wall`` is the optional wall-clock time (Unix seconds) next to ``t``;
    it takes no part in equality either."""

    EV: ClassVar[str] = ""
    t: float
    node: int
    line: int = field(default=0, compare=False, repr=False)
    wall: float | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class SendEvent(_Base):
    """``node`` submitted message ``id`` (payload digest ``digest``)."""

    EV: ClassVar[str] = "send"
    id: str
    digest: str
    safe: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class DeliverEvent(_Base):
    """``node`` delivered message ``id`` of ``sender`` in view ``view``."""

    EV: ClassVar[str] = "deliver"
    view: str
    seq: int
    id: str
    sender: int
    digest: str
    safe: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class ViewEvent(_Base):
    """``node`` installed configuration ``view``; ``members`` ascending."""

    EV: ClassVar[str] = "view"
    view: str
    kind: ViewKind
    members: tuple[int, ...]
    quorate: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class CrashEvent(_Base):
    """``node`` crashed and lost its state (simulator only)."""

    EV: ClassVar[str] = "crash"


@dataclass(frozen=True, slots=True, kw_only=True)
class RestartEvent(_Base):
    """``node`` restarted as a new incarnation (simulator only)."""

    EV: ClassVar[str] = "restart"


@dataclass(frozen=True, slots=True, kw_only=True)
class EvictEvent(_Base):
    """``node`` installed a view without ``target``, which it evicted."""

    EV: ClassVar[str] = "evict"
    target: int
    reason: str
    proof: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class RejectedEvent(_Base):
    """``node`` learned that it was evicted."""

    EV: ClassVar[str] = "rejected"
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class RejoinEvent(_Base):
    """``node``, once evicted, is back in the group."""

    EV: ClassVar[str] = "rejoin"


@dataclass(frozen=True, slots=True, kw_only=True)
class ByzantineEvent(_Base):
    """``node`` attacks from here on; checkers judge none of its events."""

    EV: ClassVar[str] = "byzantine"
    behaviour: str


Event = (
    SendEvent
    | DeliverEvent
    | ViewEvent
    | CrashEvent
    | RestartEvent
    | EvictEvent
    | RejectedEvent
    | RejoinEvent
    | ByzantineEvent
)


# --------------------------------------------------------------------------
# Parsing


def _fail(lineno: int, reason: str, detail: str) -> NoReturn:
    raise EventLogError(f"eventlog.{reason}", f"line {lineno}: {detail}")


class _RejectError(Exception):
    """Raised inside json.loads hooks; turned into EventLogError by the caller."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def _parse_int(text: str) -> int:
    if len(text) > INT_DIGITS_MAX:
        raise _RejectError("int_too_long", f"integer literal of {len(text)} digits")
    return int(text)


def _parse_constant(text: str) -> NoReturn:
    raise _RejectError("not_finite", f"{text} is not a JSON number")


def _pairs_hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise _RejectError("duplicate_key", "an object repeats a key")
    return obj


_DECODER: Final = json.JSONDecoder(
    parse_int=_parse_int,
    parse_constant=_parse_constant,
    object_pairs_hook=_pairs_hook,
)


def _decode(line: str | bytes, lineno: int) -> dict[str, Any]:
    raw: object = line  # callers are untyped too: refuse anything else cleanly
    if isinstance(raw, bytes | bytearray):
        if len(raw) > LINE_BYTES_MAX + (1 if raw.endswith(b"\n") else 0):
            _fail(lineno, "line_too_long", f"{len(raw)} bytes > {LINE_BYTES_MAX}")
        try:
            text = bytes(raw).decode("utf-8")
        except UnicodeDecodeError:
            _fail(lineno, "bad_utf8", "line is not UTF-8")
    elif isinstance(raw, str):
        # A str of n chars is at most 4n UTF-8 bytes: encode only when needed.
        if len(raw) > LINE_BYTES_MAX + 1 or (
            len(raw) * 4 > LINE_BYTES_MAX
            and len(raw.encode("utf-8", "replace")) > LINE_BYTES_MAX + 1
        ):
            _fail(lineno, "line_too_long", f"line longer than {LINE_BYTES_MAX} bytes")
        text = raw
    else:
        _fail(lineno, "bad_type", f"line is a {type(raw).__name__}, not str or bytes")
    try:
        obj = _DECODER.decode(text)
    except _RejectError as exc:
        _fail(lineno, exc.reason, exc.detail)
    except RecursionError:
        _fail(lineno, "too_deep", "JSON nested too deeply")
    except (ValueError, OverflowError) as exc:
        _fail(lineno, "bad_json", str(exc)[:200])
    if not isinstance(obj, dict):
        _fail(lineno, "not_object", "a line must hold one JSON object")
    return obj


def _get(obj: dict[str, Any], key: str, lineno: int) -> Any:
    try:
        return obj[key]
    except KeyError:
        _fail(lineno, "missing_key", f"required key {key!r} is missing")


def _int(obj: dict[str, Any], key: str, lineno: int, lo: int, hi: int) -> int:
    value = _get(obj, key, lineno)
    # bool is an int subclass in Python; a log saying "node": true is malformed.
    if type(value) is not int:
        _fail(lineno, "bad_type", f"{key!r} must be an integer")
    if not lo <= value <= hi:
        _fail(lineno, "out_of_range", f"{key!r}={value} outside [{lo}, {hi}]")
    return value


def _bool(obj: dict[str, Any], key: str, lineno: int) -> bool:
    value = _get(obj, key, lineno)
    if type(value) is not bool:
        _fail(lineno, "bad_type", f"{key!r} must be true or false")
    return value


def _ident(obj: dict[str, Any], key: str, lineno: int) -> str:
    value = _get(obj, key, lineno)
    if type(value) is not str:
        _fail(lineno, "bad_type", f"{key!r} must be a string")
    if not _ID_RE.fullmatch(value):
        _fail(lineno, "bad_id", f"{key!r} must be 1-{ID_CHARS_MAX} printable ASCII chars")
    return value


def _text(obj: dict[str, Any], key: str, lineno: int) -> str:
    value = _get(obj, key, lineno)
    if type(value) is not str:
        _fail(lineno, "bad_type", f"{key!r} must be a string")
    # isprintable() refuses control characters and lone surrogates, which some
    # other checker's UTF-8 decoder would choke on.
    if len(value) > TEXT_CHARS_MAX or not value.isprintable():
        _fail(lineno, "bad_text", f"{key!r} must be <= {TEXT_CHARS_MAX} printable chars")
    return value


def _digest(obj: dict[str, Any], lineno: int) -> str:
    value = _get(obj, "digest", lineno)
    if type(value) is not str or not _DIGEST_RE.fullmatch(value):
        _fail(lineno, "bad_digest", f"'digest' must be {DIGEST_HEX_CHARS} lowercase hex chars")
    return value


def _time(obj: dict[str, Any], lineno: int, key: str = "t") -> float:
    value = _get(obj, key, lineno)
    if type(value) is not int and type(value) is not float:
        _fail(lineno, "bad_type", f"{key!r} must be a number")
    as_float = float(value)  # ints are bounded by INT_DIGITS_MAX: no overflow
    if not math.isfinite(as_float) or as_float < 0.0:
        _fail(lineno, "bad_time", f"{key!r}={value} must be finite and >= 0")
    return as_float


def _members(obj: dict[str, Any], lineno: int) -> tuple[int, ...]:
    value = _get(obj, "members", lineno)
    if type(value) is not list:
        _fail(lineno, "bad_type", "'members' must be a list")
    if not 1 <= len(value) <= VIEW_MEMBERS_MAX:
        _fail(lineno, "bad_members", f"a view has 1-{VIEW_MEMBERS_MAX} members")
    previous = -1
    for member in value:
        if type(member) is not int or not 0 <= member <= NODE_ID_MAX:
            _fail(lineno, "bad_members", "members must be node ids")
        if member <= previous:
            _fail(lineno, "bad_members", "members must be strictly ascending")
        previous = member
    return tuple(value)


def _kind(obj: dict[str, Any], lineno: int) -> ViewKind:
    value = _get(obj, "kind", lineno)
    if value == "transitional":
        return "transitional"
    if value == "regular":
        return "regular"
    _fail(lineno, "bad_kind", "'kind' must be 'transitional' or 'regular'")


_Builder = Callable[[dict[str, Any], int, float, int], Event]


def _send(o: dict[str, Any], n: int, t: float, node: int) -> Event:
    return SendEvent(
        t=t,
        node=node,
        line=n,
        id=_ident(o, "id", n),
        digest=_digest(o, n),
        safe=_bool(o, "safe", n),
    )


def _deliver(o: dict[str, Any], n: int, t: float, node: int) -> Event:
    return DeliverEvent(
        t=t,
        node=node,
        line=n,
        view=_ident(o, "view", n),
        seq=_int(o, "seq", n, 0, SEQ_MAX),
        id=_ident(o, "id", n),
        sender=_int(o, "sender", n, 0, NODE_ID_MAX),
        digest=_digest(o, n),
        safe=_bool(o, "safe", n),
    )


def _view(o: dict[str, Any], n: int, t: float, node: int) -> Event:
    return ViewEvent(
        t=t,
        node=node,
        line=n,
        view=_ident(o, "view", n),
        kind=_kind(o, n),
        members=_members(o, n),
        quorate=_bool(o, "quorate", n),
    )


def _evict(o: dict[str, Any], n: int, t: float, node: int) -> Event:
    return EvictEvent(
        t=t,
        node=node,
        line=n,
        target=_int(o, "target", n, 0, NODE_ID_MAX),
        reason=_text(o, "reason", n),
        proof=_bool(o, "proof", n),
    )


_BUILDERS: Final[dict[str, _Builder]] = {
    "send": _send,
    "deliver": _deliver,
    "view": _view,
    "crash": lambda o, n, t, node: CrashEvent(t=t, node=node, line=n),
    "restart": lambda o, n, t, node: RestartEvent(t=t, node=node, line=n),
    "evict": _evict,
    "rejected": lambda o, n, t, node: RejectedEvent(
        t=t, node=node, line=n, reason=_text(o, "reason", n)
    ),
    "rejoin": lambda o, n, t, node: RejoinEvent(t=t, node=node, line=n),
    "byzantine": lambda o, n, t, node: ByzantineEvent(
        t=t, node=node, line=n, behaviour=_text(o, "behaviour", n)
    ),
}


def parse_line(line: str | bytes, lineno: int) -> Event:
    """Parse one log line into its event.

    ``lineno`` (1-based) is stored on the event and quoted in errors. A
    trailing newline is allowed. Raises :class:`EventLogError` (and nothing
    else) for any line that is not exactly one well-formed event; its
    ``reason`` is ``eventlog.<what>``, e.g. ``eventlog.missing_key``.
    """
    obj = _decode(line, lineno)
    ev = _get(obj, "ev", lineno)
    builder = _BUILDERS.get(ev) if type(ev) is str else None
    if builder is None:
        _fail(lineno, "unknown_event", f"'ev' must be one of {sorted(_BUILDERS)}")
    t = _time(obj, lineno)
    node = _int(obj, "node", lineno, 0, NODE_ID_MAX)
    event = builder(obj, lineno, t, node)
    if "wall" in obj:
        event = replace(event, wall=_time(obj, lineno, "wall"))
    return event


def iter_lines(lines: Iterable[str | bytes], *, first_lineno: int = 1) -> Iterator[Event]:
    """Parse lines lazily; a final empty line (after the last newline) is skipped."""
    for lineno, line in enumerate(lines, first_lineno):
        if line in ("", b""):
            continue  # str.splitlines() never yields it, file iteration may at EOF
        yield parse_line(line, lineno)


def parse_lines(lines: Iterable[str | bytes]) -> list[Event]:
    """Parse every line (numbered from 1) into a list of events.

    Empty lines are skipped (they carry no event; whitespace-only lines are
    still an error, since they are probably a damaged event).
    """
    return list(iter_lines(lines))


def read_log(path: str | PathLike[str]) -> list[Event]:
    """Read and parse a whole JSON Lines event log file.

    Lines are read in bounded chunks, so one endless line cannot exhaust
    memory before it is refused. ``OSError`` from opening the file is wrapped
    in :class:`EventLogError` (reason ``eventlog.unreadable``).
    """
    try:
        with open(path, "rb") as handle:
            return list(iter_lines(_bounded_lines(handle)))
    except OSError as exc:
        raise EventLogError("eventlog.unreadable", f"{path}: {exc.strerror or exc}") from exc


def _bounded_lines(handle: Any) -> Iterator[bytes]:
    lineno = 0
    while True:
        line = handle.readline(LINE_BYTES_MAX + 2)
        if not line:
            return
        lineno += 1
        if len(line) > LINE_BYTES_MAX + (1 if line.endswith(b"\n") else 0):
            _fail(lineno, "line_too_long", f"line longer than {LINE_BYTES_MAX} bytes")
        yield line


# --------------------------------------------------------------------------
# Writing


def payload_digest(payload: bytes) -> str:
    """The ``digest`` a log carries for ``payload``: BLAKE2b-128, lowercase hex."""
    return hashlib.blake2b(payload, digest_size=DIGEST_HEX_CHARS // 2).hexdigest()


def _fields(event: Event) -> dict[str, Any]:
    head: dict[str, Any] = {"t": event.t, "node": event.node, "ev": event.EV}
    match event:
        case SendEvent():
            head.update(id=event.id, digest=event.digest, safe=event.safe)
        case DeliverEvent():
            head.update(
                view=event.view,
                seq=event.seq,
                id=event.id,
                sender=event.sender,
                digest=event.digest,
                safe=event.safe,
            )
        case ViewEvent():
            head.update(
                view=event.view,
                kind=event.kind,
                members=list(event.members),
                quorate=event.quorate,
            )
        case EvictEvent():
            head.update(target=event.target, reason=event.reason, proof=event.proof)
        case RejectedEvent():
            head.update(reason=event.reason)
        case ByzantineEvent():
            head.update(behaviour=event.behaviour)
        case CrashEvent() | RestartEvent() | RejoinEvent():
            pass
    if event.wall is not None:
        head["wall"] = event.wall
    return head


def to_json(event: Event) -> str:
    """Return the canonical log line for ``event`` (no trailing newline).

    Keys in the documented order (``wall``, when set, last), no spaces,
    ASCII only; ``t`` is always written as a float. Writers (simulator,
    runtime) must use this so that every log reads back to equal events.
    """
    return json.dumps(
        _fields(event), separators=(",", ":"), sort_keys=False, ensure_ascii=True, allow_nan=False
    )
