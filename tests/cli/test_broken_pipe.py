"""A reader that goes away (`ringward sim ... | head -1`) ends the command
quietly: no traceback, the exit status a shell gives SIGPIPE."""

from __future__ import annotations

import subprocess
import sys


def test_a_closed_stdout_ends_the_command_without_a_traceback() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "ringward", "sim", "--nodes", "3", "--duration", "0.5",
         "--rate", "20", "--quiet", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdout is not None
    proc.stdout.close()  # before it prints anything: its first line meets EPIPE
    _, err = proc.communicate(timeout=120)
    assert b"Traceback" not in err, err.decode()
    assert proc.returncode == 141, (proc.returncode, err.decode())
