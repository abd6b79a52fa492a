"""Strict, canonical msgpack schemas for structured bodies.

Theory of operation (docs/wire-format.md, "Structured bodies"):

* A body is described by a :class:`Record` spec: an exact, ordered field set.
  Top-level bodies are msgpack maps keyed by the field names; nested records
  are fixed-arity arrays (compact, and their meaning is positional anyway).
* Decoding is total: msgpack is unpacked with every length bounded by the
  input size and by our own limits, then every value is checked against its
  spec (exact Python type, integer width, byte and list bounds, ordering).
  Anything else raises :class:`~ringward.errors.WireError`.
* Canonical form: after a successful check the value is packed again and the
  bytes must equal the input. That single comparison rejects non-minimal
  integers, reordered or duplicated map keys, str/bin confusion and every
  other alternative encoding, so ``encode(decode(b)) == b`` holds by
  construction and signatures over encodings are well defined.
"""

from __future__ import annotations

import dataclasses
import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

import msgpack

from ringward.errors import WireError

__all__ = [
    "Bool",
    "Bytes",
    "Embedded",
    "List",
    "Record",
    "Spec",
    "Text",
    "UInt",
    "dump_record",
    "pack_record",
    "unpack_record",
]

T = TypeVar("T")

# Initial packer buffer; it grows when a body is larger.
PACK_BUFFER_BYTES = 1024


class Spec(Protocol):
    """One field's type: ``check`` maps an unpacked msgpack value to the typed
    Python value (or raises WireError); ``dump`` is its inverse.

    ``depth`` is how deeply the enclosing frame is embedded in other frames
    (0 for a datagram). Container nesting needs no bound of its own: a value
    nested deeper than its schema fails the schema's type check, and the
    msgpack unpacker stops at its own stack limit first.
    """

    def check(self, value: object, path: str, depth: int) -> Any: ...

    def dump(self, value: Any) -> object: ...


def _fail(reason: str, path: str, detail: str) -> WireError:
    return WireError(reason, f"{path}: {detail}")


@dataclass(frozen=True, slots=True)
class UInt:
    """Unsigned integer of ``bits`` width, at least ``minimum`` (bool is not
    an int here)."""

    bits: int
    minimum: int = 0

    def check(self, value: object, path: str, depth: int) -> int:
        if type(value) is not int:
            raise _fail("bad_type", path, f"expected uint{self.bits}, got {type(value).__name__}")
        if not self.minimum <= value < (1 << self.bits):
            raise _fail("out_of_range", path, f"{value} not in {self.minimum}..uint{self.bits}")
        return value

    def dump(self, value: Any) -> object:
        return value


@dataclass(frozen=True, slots=True)
class Bool:
    def check(self, value: object, path: str, depth: int) -> bool:
        if type(value) is not bool:
            raise _fail("bad_type", path, f"expected bool, got {type(value).__name__}")
        return value

    def dump(self, value: Any) -> object:
        return value


@dataclass(frozen=True, slots=True)
class Bytes:
    """A msgpack ``bin`` of ``size_min..size_max`` bytes."""

    size_min: int
    size_max: int

    def check(self, value: object, path: str, depth: int) -> bytes:
        if type(value) is not bytes:
            raise _fail("bad_type", path, f"expected bin, got {type(value).__name__}")
        if not self.size_min <= len(value) <= self.size_max:
            raise _fail(
                "bad_length",
                path,
                f"{len(value)} bytes, allowed {self.size_min}..{self.size_max}",
            )
        return value

    def dump(self, value: Any) -> object:
        return value


@dataclass(frozen=True, slots=True)
class Text:
    """A msgpack ``str`` that must fully match ``pattern`` (ASCII patterns
    only: protocol names, never free text)."""

    pattern: str
    size_max: int

    def check(self, value: object, path: str, depth: int) -> str:
        if type(value) is not str:
            raise _fail("bad_type", path, f"expected str, got {type(value).__name__}")
        if len(value) > self.size_max or re.fullmatch(self.pattern, value) is None:
            raise _fail("bad_text", path, f"does not match {self.pattern!r}")
        return value

    def dump(self, value: Any) -> object:
        return value


@dataclass(frozen=True, slots=True)
class List:
    """A msgpack array of at most ``count_max`` items, decoded to a tuple.

    ``ascending`` requires strictly increasing items (sets of node ids,
    sequence numbers): one canonical order, no duplicates.
    """

    item: Spec
    count_max: int
    count_min: int = 0
    ascending: bool = False

    def check(self, value: object, path: str, depth: int) -> tuple[Any, ...]:
        if type(value) is not list:
            raise _fail("bad_type", path, f"expected array, got {type(value).__name__}")
        if not self.count_min <= len(value) <= self.count_max:
            raise _fail(
                "bad_count",
                path,
                f"{len(value)} items, allowed {self.count_min}..{self.count_max}",
            )
        # Paths are built only on failure: an item reports its own path
        # relative to this list ("" for the item itself).
        check = self.item.check
        out_items: list[Any] = []
        try:
            for v in value:
                out_items.append(check(v, "", depth))
        except WireError as exc:
            raise WireError(exc.reason, f"{path}[{len(out_items)}]{exc.message}") from None
        out = tuple(out_items)
        if self.ascending and any(a >= b for a, b in itertools.pairwise(out)):
            raise _fail("not_ascending", path, "items must be strictly ascending")
        return out

    def dump(self, value: Any) -> object:
        return [self.item.dump(v) for v in value]


@dataclass(frozen=True, slots=True)
class Embedded:
    """A complete, signed frame carried as ``bin`` inside another body (the
    statements of a proof, the joins of a commit certificate), decoded to a
    Frame of one of ``kinds``. Nesting depth is bounded by the frame decoder.
    """

    kinds: frozenset[int]
    size_max: int

    def check(self, value: object, path: str, depth: int) -> Any:
        # Late import: frame.py builds on this module.
        from ringward.wire.frame import decode_nested

        raw = Bytes(1, self.size_max).check(value, path, depth)
        try:
            return decode_nested(raw, self.kinds, depth + 1)
        except WireError as exc:
            raise WireError(exc.reason, f"{path}: embedded frame: {exc.message}") from None

    def dump(self, value: Any) -> object:
        from ringward.wire.frame import encode_decoded

        # Not re-checked: a value being dumped was checked when decoded, or
        # is checked as a whole by pack_record after the dump.
        return encode_decoded(value)


@dataclass(frozen=True, slots=True)
class Record(Generic[T]):
    """An exact, ordered field set building the frozen dataclass ``cls``.

    ``as_map`` selects a map keyed by field name (top-level bodies) or a
    fixed-arity array (nested tuples such as commit member entries).
    """

    cls: type[T]
    fields: tuple[tuple[str, Spec], ...]
    as_map: bool = True
    _names: tuple[str, ...] = dataclasses.field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # A schema that drifts from its dataclass is a programming error,
        # caught at import time.
        names = tuple(f.name for f in dataclasses.fields(self.cls))  # type: ignore[arg-type]
        if names != tuple(name for name, _ in self.fields):
            raise TypeError(f"schema of {self.cls.__name__} does not match its fields")
        object.__setattr__(self, "_names", names)

    def check(self, value: object, path: str, depth: int) -> T:
        items: Sequence[object]
        if self.as_map:
            if type(value) is not dict:
                raise _fail("bad_type", path, f"expected map, got {type(value).__name__}")
            expected = self._names
            if len(value) != len(expected) or set(value) != set(expected):
                got = sorted(str(k) for k in value)
                raise _fail("bad_fields", path, f"fields {got}, expected {list(expected)}")
            if tuple(value) != expected:
                # Schema key order is part of the canonical encoding.
                raise _fail("noncanonical", path, "not the canonical encoding")
            items = [value[name] for name in expected]
        else:
            if type(value) is not list:
                raise _fail("bad_type", path, f"expected array, got {type(value).__name__}")
            if len(value) != len(self.fields):
                raise _fail("bad_count", path, f"{len(value)} items, expected {len(self.fields)}")
            items = value
        # Paths are built only on failure: a field reports its own path
        # relative to this record (its name).
        checked: list[Any] = []
        try:
            for (name, spec), v in zip(self.fields, items, strict=True):
                checked.append(spec.check(v, name, depth))
        except WireError as exc:
            raise WireError(exc.reason, f"{path}.{exc.message}") from None
        return self.cls(*checked)

    def dump(self, value: Any) -> object:
        if self.as_map:
            return {name: spec.dump(getattr(value, name)) for name, spec in self.fields}
        return [spec.dump(getattr(value, name)) for name, spec in self.fields]


def _unpack(data: bytes) -> object:
    try:
        # strict_map_key: keys must be str/bytes; ext_hook rejects every ext
        # type; max_*_len default to len(data), so a length header cannot make
        # the unpacker allocate more than the input justifies.
        return msgpack.unpackb(
            data,
            raw=False,
            strict_map_key=True,
            use_list=True,
            ext_hook=_reject_ext,
            timestamp=0,
        )
    except WireError:
        raise
    except (ValueError, TypeError, OverflowError, UnicodeDecodeError) as exc:
        # msgpack's ExtraData, FormatError and StackError are ValueErrors.
        raise WireError("bad_msgpack", f"{type(exc).__name__}: {exc}") from None


def _reject_ext(code: int, data: bytes) -> object:
    raise WireError("bad_msgpack", f"ext type {code} is not allowed")


def _pack(obj: object) -> bytes:
    # A fresh packer with a small initial buffer: msgpack.packb's default
    # packer reserves 256 KiB per call, which would dominate both the memory
    # and the time of decoding a small token. Fresh per call: thread-safe.
    return msgpack.Packer(use_bin_type=True, buf_size=PACK_BUFFER_BYTES).pack(obj)  # type: ignore[no-any-return]


def pack_record(spec: Record[T], value: T) -> bytes:
    """Encode ``value`` canonically, after checking it against ``spec`` (so
    a caller cannot emit bytes that its peers would refuse)."""
    obj = spec.dump(value)
    spec.check(obj, spec.cls.__name__, 0)
    return _pack(obj)


def dump_record(spec: Record[T], value: T) -> bytes:
    """Encode ``value`` without checking it (it came from unpack_record, or
    the caller checks the result)."""
    return _pack(spec.dump(value))


def unpack_record(spec: Record[T], data: bytes, depth: int = 0) -> T:
    """Decode ``data`` as ``spec`` or raise WireError; accepts only the
    canonical encoding."""
    obj = _unpack(data)
    value = spec.check(obj, spec.cls.__name__, depth)
    # check() refused maps out of schema order; re-packing what was read
    # yields other bytes for any other integer width, length encoding or a
    # duplicate key. (Embedded frames were held to the same rule when
    # check() decoded them.)
    if _pack(obj) != data:
        raise WireError("noncanonical", f"{spec.cls.__name__}: not the canonical encoding")
    return value
