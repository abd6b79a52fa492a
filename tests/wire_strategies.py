"""Hypothesis strategies derived from the wire schemas themselves.

Generating from the specs (not from hand-written copies) means a field added
to a schema is covered by every property test at once.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from ringward.wire import BatchEntry, DataFrame, Frame, Kind, RingId, limits
from ringward.wire.codec import Bool, Bytes, Embedded, List, Record, Spec, Text, UInt
from ringward.wire.messages import SCHEMAS

# Keep generated lists short: bounds are tested separately, and nested
# frames multiply sizes.
LIST_ITEMS_MAX = 3
BYTES_MAX = 48


def from_spec(spec: Spec, depth: int) -> st.SearchStrategy[Any]:
    """A strategy for valid values of ``spec`` in a frame nested ``depth`` deep."""
    if isinstance(spec, UInt):
        return st.integers(spec.minimum, (1 << spec.bits) - 1)
    if isinstance(spec, Bool):
        return st.booleans()
    if isinstance(spec, Bytes):
        return st.binary(min_size=spec.size_min, max_size=min(spec.size_max, BYTES_MAX))
    if isinstance(spec, Text):
        return st.from_regex(spec.pattern, fullmatch=True).filter(lambda s: len(s) <= spec.size_max)
    if isinstance(spec, List):
        if isinstance(spec.item, Embedded) and not _can_embed(spec.item, depth):
            return st.nothing() if spec.count_min else st.just(())
        items = from_spec(spec.item, depth)
        lo, hi = spec.count_min, min(spec.count_max, LIST_ITEMS_MAX)
        if spec.ascending:
            unique = st.lists(items, min_size=lo, max_size=hi, unique=True)
            return unique.map(lambda xs: tuple(sorted(xs)))
        return st.lists(items, min_size=lo, max_size=hi).map(tuple)
    if isinstance(spec, Record):
        return st.builds(spec.cls, **{name: from_spec(s, depth) for name, s in spec.fields})
    if isinstance(spec, Embedded):
        kinds = [Kind(k) for k in sorted(spec.kinds) if _constructible(Kind(k), depth + 1)]
        return st.one_of(*(frames(k, depth + 1) for k in kinds))
    raise TypeError(f"no strategy for {spec!r}")


def _constructible(kind: Kind, depth: int) -> bool:
    """Whether a frame of ``kind`` can exist ``depth`` deep (a proof needs at
    least one embedded statement, one level deeper)."""
    if depth > limits.EMBED_DEPTH_MAX:
        return False
    if kind is Kind.DATA:
        return True
    return all(
        not (isinstance(s, List) and isinstance(s.item, Embedded) and s.count_min)
        or _can_embed(s.item, depth)
        for _, s in SCHEMAS[kind].fields
    )


def _can_embed(spec: Embedded, depth: int) -> bool:
    return any(_constructible(Kind(k), depth + 1) for k in spec.kinds)


def node_ids() -> st.SearchStrategy[int]:
    return st.integers(1, 0xFFFF)


def ring_ids() -> st.SearchStrategy[RingId]:
    return st.builds(RingId, node_ids(), st.integers(0, (1 << 64) - 1))


def bodies(kind: Kind, depth: int = 0) -> st.SearchStrategy[Any]:
    if kind is Kind.DATA:
        return st.builds(
            DataFrame,
            st.integers(0, (1 << 64) - 1),
            st.integers(0, (1 << 32) - 1),
            st.integers(0, (1 << 64) - 1),
            st.binary(min_size=limits.AEAD_TAG_BYTES, max_size=200),
        )
    return from_spec(SCHEMAS[kind], depth)


def frames(kind: Kind | None = None, depth: int = 0) -> st.SearchStrategy[Frame]:
    """Valid frames of ``kind`` (any kind when None)."""
    if kind is None:
        return st.one_of(*(frames(k, depth) for k in Kind))
    signature = st.just(b"") if kind is Kind.DATA else st.binary(min_size=64, max_size=64)
    return st.builds(
        Frame,
        cluster_id=st.binary(min_size=limits.CLUSTER_ID_BYTES, max_size=limits.CLUSTER_ID_BYTES),
        sender=node_ids(),
        ring=ring_ids(),
        body=bodies(kind, depth),
        signature=signature,
    )


def batch_entries() -> st.SearchStrategy[BatchEntry]:
    return st.integers(1, 8).flatmap(
        lambda count: st.builds(
            BatchEntry,
            msg_no=st.integers(0, (1 << 64) - 1),
            frag_index=st.integers(0, count - 1),
            frag_count=st.just(count),
            safe=st.booleans(),
            payload=st.binary(max_size=300),
            recovered=st.booleans(),
        )
    )


def msgpack_values() -> st.SearchStrategy[Any]:
    """Arbitrary msgpack-able values, including the types schemas refuse."""
    leaves = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(1 << 63), (1 << 64) - 1),
        st.floats(allow_nan=True),
        st.text(max_size=20),
        st.binary(max_size=40),
    )
    return st.recursive(
        leaves,
        lambda inner: st.one_of(
            st.lists(inner, max_size=4),
            st.dictionaries(st.text(max_size=10), inner, max_size=4),
        ),
        max_leaves=20,
    )
