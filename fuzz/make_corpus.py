"""Regenerate fuzz/corpus/<target>/ from each target's seeds() (real
encodings), named by content hash so reruns are idempotent, the shared
libFuzzer dictionary fuzz/ringward.dict (header prefixes, msgpack markers,
every field name of every schema), and the dictionary of each target that
defines ``dictionary()`` (written where its .options file's ``dict`` says)."""

from __future__ import annotations

import hashlib
import sys

import msgpack

from ringward.wire import MAGIC, VERSION
from ringward.wire.codec import List, Record, Spec
from ringward.wire.messages import SCHEMAS, Kind

import targets

MSGPACK_MARKERS = {
    "nil": b"\xc0",
    "false": b"\xc2",
    "true": b"\xc3",
    "bin8": b"\xc4",
    "bin16": b"\xc5",
    "bin32": b"\xc6",
    "ext8": b"\xc7",  # must be refused
    "float32": b"\xca",  # must be refused
    "float64": b"\xcb",
    "uint8": b"\xcc",
    "uint16": b"\xcd",
    "uint32": b"\xce",
    "uint64": b"\xcf",
    "int8": b"\xd0",
    "int64": b"\xd3",
    "fixext1": b"\xd4",
    "str8": b"\xd9",
    "array16": b"\xdc",
    "array32": b"\xdd",
    "map16": b"\xde",
    "map32": b"\xdf",
    "bin8_digest": b"\xc4\x20",
    "uint64_max": b"\xcf" + b"\xff" * 8,
}


def _escape(data: bytes) -> str:
    return "".join(f"\\x{c:02x}" for c in data)


def _field_names(spec: Spec, out: set[str]) -> None:
    if isinstance(spec, Record):
        for name, inner in spec.fields:
            if spec.as_map:
                out.add(name)
            _field_names(inner, out)
    elif isinstance(spec, List):
        _field_names(spec.item, out)


def render_dict(title: str, entries: dict[str, bytes]) -> str:
    """A libFuzzer dictionary file: a comment line, then ``name="\\xNN..."``."""
    lines = [f"# {title}; made by make_corpus.py."]
    lines += [f'{key}="{_escape(value)}"' for key, value in entries.items()]
    return "\n".join(lines) + "\n"


def make_dict() -> str:
    entries = {"magic": MAGIC}
    for kind in Kind:
        entries[f"header_{kind.name.lower()}"] = MAGIC + bytes([VERSION, kind, 0])
    entries.update({f"mp_{name}": raw for name, raw in MSGPACK_MARKERS.items()})
    names: set[str] = set()
    for schema in SCHEMAS.values():
        _field_names(schema, names)
    entries.update({f"key_{n}": msgpack.packb(n) for n in sorted(names)})
    return render_dict(
        "libFuzzer dictionary of the wire, roster, engine and member targets", entries
    )


def main(argv: list[str]) -> int:
    """``make_corpus.py [TARGET...]``: the named targets (default: all)."""
    for name in argv or targets.names():
        out = targets.CORPUS_DIR / name
        out.mkdir(parents=True, exist_ok=True)
        module = targets.load(name)
        seeds = module.seeds()
        for seed in seeds:
            (out / hashlib.sha1(seed, usedforsecurity=False).hexdigest()).write_bytes(seed)
        print(f"{name}: {len(seeds)} seeds -> {out}")
        dict_file = targets.dict_file(name)
        if hasattr(module, "dictionary") and dict_file is not None:
            dict_file.write_text(
                render_dict(f"libFuzzer dictionary of fuzz_{name}", module.dictionary())
            )
            print(f"{name}: dictionary -> {dict_file}")
    targets.DICT_FILE.write_text(make_dict())
    print(f"dictionary -> {targets.DICT_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
