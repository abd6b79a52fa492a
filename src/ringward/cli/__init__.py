"""The ``ringward`` command: a thin layer over the library.

Each verb lives in its own module exposing ``register(subparsers)``, which
adds an argparse sub-parser whose ``func(args) -> int`` does the work. One
catch of :class:`RingwardError` prints a single clear line and exits 2; a
traceback from the CLI is a bug.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from ringward import __version__
from ringward.cli import bench_cmd, demo_cmd, keys_cmd, node_cmd, sim_cmd, status_cmd
from ringward.errors import RingwardError

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser (exposed for tests and --help transcripts)."""
    parser = argparse.ArgumentParser(
        prog="ringward",
        description="Byzantine-tolerant, secure group messaging over a Totem token ring.",
    )
    parser.add_argument("--version", action="version", version=f"ringward {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in (bench_cmd, demo_cmd, keys_cmd, node_cmd, sim_cmd, status_cmd):
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.func(args)
    except RingwardError as exc:
        print(f"ringward {args.command}: error: {exc.message} [{exc.reason}]", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # Our reader went away (`ringward sim ... | head`): stop quietly,
        # and keep the interpreter's final flush from failing again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141  # as a shell reports a process ended by SIGPIPE
    return code


if __name__ == "__main__":
    sys.exit(main())
