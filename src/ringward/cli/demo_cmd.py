"""``ringward demo``: the project's main job, end to end.

Until the runtime exists this exercises what does: every message kind is
encoded, decoded back and compared with the published test vectors, and a
tampered copy of each is shown to be refused with its reason.
"""

from __future__ import annotations

import argparse
from typing import Any

from ringward.errors import WireError
from ringward.wire import HEADER, decode, encode, vectors


def register(sub: Any) -> None:
    p = sub.add_parser(
        "demo",
        help="run the end-to-end demonstration",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    failures = 0
    print(f"{'kind':<14} {'bytes':>6}  round-trip  tampered copy")
    for name, frame in vectors.frames().items():
        data = encode(frame)
        ok = decode(data) == frame and encode(decode(data)) == data
        # Flip the low bit of the header's body-length field: refused on the
        # header alone, before the body is looked at.
        tampered = bytearray(data)
        tampered[HEADER.size - 1] ^= 0x01
        try:
            decode(bytes(tampered))
            verdict = "ACCEPTED (bug)"
            failures += 1
        except WireError as exc:
            verdict = f"refused: {exc.reason}"
        failures += not ok
        print(f"{name:<14} {len(data):>6}  {'ok' if ok else 'FAIL':<10}  {verdict}")
    print("all checks passed" if failures == 0 else f"{failures} checks FAILED")
    return 0 if failures == 0 else 1
