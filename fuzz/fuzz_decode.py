"""Invariant: for ANY bytes, ringward.wire.decode returns a Frame or raises
WireError (nothing else); an accepted datagram re-encodes to the very same
bytes, and decoding that encoding gives the same Frame."""

if __name__ == "__main__":
    import _harness

    _harness.instrument(["ringward.wire"])

from ringward.errors import WireError
from ringward.wire import decode, encode

import _harness


def TestOneInput(data: bytes) -> None:
    try:
        frame = decode(data)
    except WireError:
        return
    again = encode(frame)
    assert again == data, "accepted bytes are not canonical"
    assert decode(again) == frame, "decode(encode(f)) != f"


def seeds() -> list[bytes]:
    from ringward.wire import vectors

    return [encode(f) for f in vectors.all_frames()]


if __name__ == "__main__":
    _harness.main(TestOneInput)
