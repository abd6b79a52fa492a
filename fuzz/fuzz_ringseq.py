"""Invariant: for ANY bytes as a node's ring-seq state file, load_ring_seq
returns a ring sequence in 0..2**64-1 or raises ConfigError
``bad_ring_seq_file``, nothing else; an accepted file holds exactly that
number in decimal (whitespace around it aside), and storing the value and
loading it again gives the same value.

The file is what a node reads at every start (runtime/ringseq.py), so a
crash here keeps a node from starting.
"""

if __name__ == "__main__":
    import _harness

    _harness.instrument(["ringward.runtime.ringseq"])

from ringward.errors import ConfigError
from ringward.runtime.ringseq import RING_SEQ_MAX, load_ring_seq, store_ring_seq

import _harness
import _keyfiles


def TestOneInput(data: bytes) -> None:
    path = _keyfiles.scratch_dir() / "ring.seq"
    _keyfiles.write_file(path, data)
    try:
        value = load_ring_seq(path)
    except ConfigError as exc:
        assert exc.reason == "bad_ring_seq_file", f"unexpected reason {exc.reason!r}"
        return
    assert 0 <= value <= RING_SEQ_MAX, f"loaded {value}, outside u64"
    digits = data.strip()
    assert digits.isdigit(), "accepted a file that is not a decimal number"
    assert int(digits) == value, "accepted file does not hold the value loaded"
    store_ring_seq(path, value)
    assert path.read_bytes() == f"{value}\n".encode("ascii"), "stored file is not canonical"
    assert load_ring_seq(path) == value, "store then load changed the value"


def seeds() -> list[bytes]:
    """Files as store_ring_seq writes them: zero, small, the u64 bounds."""
    out = []
    for value in (0, 1, 7, 1 << 32, RING_SEQ_MAX - 1, RING_SEQ_MAX):
        path = _keyfiles.scratch_dir() / "seed.seq"
        store_ring_seq(path, value)
        out.append(path.read_bytes())
    return out


def dictionary() -> dict[str, bytes]:
    """The u64 boundary in decimal, and the whitespace strip() removes."""
    return {
        "u64_max": str(RING_SEQ_MAX).encode(),
        "u64_over": str(RING_SEQ_MAX + 1).encode(),
        "newline": b"\n",
        "crlf": b"\r\n",
        "tab": b"\t",
        "nul": b"\x00",
        "file_sep": b"\x1c",
    }


if __name__ == "__main__":
    _harness.main(TestOneInput)
