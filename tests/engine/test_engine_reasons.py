"""Drop reasons and notes are one documented vocabulary (engine/reasons.py,
docs/protocol.md "Counters"): no free-form key in the engine's source, and
every value listed in the docs."""

from __future__ import annotations

import ast
from pathlib import Path

from ringward.engine.reasons import Drop, Note

ROOT = Path(__file__).resolve().parents[2]
ENGINE_SRC = ROOT / "src" / "ringward" / "engine"


def _counter_keys() -> list[tuple[str, int, str, ast.expr]]:
    out = []
    for path in sorted(ENGINE_SRC.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Subscript)
                and isinstance(node.value, ast.Attribute)
                and node.value.attr in ("drops", "notes")
            ):
                out.append((path.name, node.lineno, node.value.attr, node.slice))
    return out


def _enum_ref(expr: ast.expr) -> str | None:
    """``Drop.X`` / ``Note.X``, alone or leading an f-string."""
    if isinstance(expr, ast.Attribute) and isinstance(expr.value, ast.Name):
        return expr.value.id
    if isinstance(expr, ast.JoinedStr) and expr.values:
        first = expr.values[0]
        if isinstance(first, ast.FormattedValue):
            return _enum_ref(first.value)
    return None


def test_every_counter_key_in_the_engine_is_named() -> None:
    keys = _counter_keys()
    assert len(keys) > 50  # the scan sees the engine's counters
    free = []
    for name, line, counter, key in keys:
        ref = _enum_ref(key)
        expected = "Drop" if counter == "drops" else "Note"
        # A decode failure is counted under the WireError's own reason.
        passthrough = isinstance(key, ast.Attribute) and key.attr == "reason"
        passthrough |= isinstance(key, ast.Name) and key.id == "refused"
        if ref != expected and not passthrough:
            free.append(f"{name}:{line} {counter}[{ast.unparse(key)}]")
    assert not free, free


def test_every_reason_is_documented() -> None:
    doc = (ROOT / "docs" / "protocol.md").read_text(encoding="utf-8")
    missing = [m.value for m in (*Drop, *Note) if f"| `{m.value}` |" not in doc]
    assert not missing
