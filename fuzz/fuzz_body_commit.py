"""Invariant: any bytes given as a COMMIT body decode to its typed body or
raise WireError (nothing else), and an accepted body is canonical: it
re-encodes to the very same bytes."""

if __name__ == "__main__":
    import _harness

    _harness.instrument(["ringward.wire"])

import _harness

TestOneInput = _harness.body_target("COMMIT")


def seeds() -> list[bytes]:
    return _harness.body_seeds("COMMIT")


if __name__ == "__main__":
    _harness.main(TestOneInput)
