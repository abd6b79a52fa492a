"""Invariant: any bytes given as the decrypted plaintext of a DATA frame
decode to a batch of entries or raise WireError (nothing else); an accepted
batch re-encodes to the very same bytes."""

if __name__ == "__main__":
    import _harness

    _harness.instrument(["ringward.wire"])

from ringward.errors import WireError
from ringward.wire import decode_batch, encode_batch

import _harness


def TestOneInput(data: bytes) -> None:
    try:
        entries = decode_batch(data)
    except WireError:
        return
    assert encode_batch(entries) == data, "accepted batch is not canonical"


def seeds() -> list[bytes]:
    from ringward.wire import vectors

    return [encode_batch(vectors.BATCH), encode_batch(vectors.BATCH[:1])]


if __name__ == "__main__":
    _harness.main(TestOneInput)
