"""Every shell and Python example of README.md and docs/getting-started.md runs.

The code blocks (```sh, ```bash, ```console, ```python) of each document are
run in order, as a reader would run them, in an empty directory with the
project's ``.venv`` linked into it (so ``.venv/bin/ringward`` works) and its
``bin`` on ``PATH``; ``HOME`` and ``XDG_STATE_HOME`` point into the
directory, and no ``RINGWARD_*`` variable is set.

How the reader's actions map to the test:

* A shell line that starts a node to keep running (``ringward node`` without
  ``--exit-on-eof``, "one terminal per node") is started in the background,
  with stdin at its end (a node then keeps running); the test waits for its
  first view before going on. At the end of the document every such node is
  stopped with SIGTERM and must exit 0.
* A command or Python block that uses the keys of a node running in the
  background (``--keys`` of a shell line, a quoted path in a Python block)
  runs *instead of* it, as the documents say: that background node is
  stopped first.
* Other shell lines run one by one (``bash -e -o pipefail``; a line ending
  in ``\\`` continues on the next) and must exit 0; ``console`` blocks run
  their ``$ `` lines. Lines that install the project (``pip install``) are
  not run: the test runs in the installed venv.
* A Python block runs as a script (``python FILE``) and must exit 0.
* A block preceded by ``<!-- not-run: REASON -->`` is not run (its Python is
  still compiled); keep these rare: ``test_examples_are_accounted_for`` lists
  them, and fails on an unmarked block that cannot be run.

The clusters of the documents use their fixed ports (7400...): the run
happens in a network namespace of its own when the user may make one
(``unshare -rn``), else on the host's loopback once those ports are free; and
in the ``loopback`` group, one cluster at a time.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import pytest

ROOT: Final = Path(__file__).resolve().parents[1]
DOCS: Final = ("README.md", "docs/getting-started.md")
RUN_LANGS: Final = frozenset({"sh", "bash", "console", "python"})
# Generous bounds: a loaded 2-CPU machine starting Python processes is slow.
STEP_S: Final = 90.0
VIEW_WAIT_S: Final = 30.0
# A whole document, every block included.
DOC_S: Final = 600.0
# The ports of the documents' clusters (`keys init --nodes 3`: 7400-7402).
DOC_PORTS: Final = range(7400, 7410)
# Blocks marked not-run per document (README: the make targets; getting-started:
# the three-machine set-up).
MARKED_MAX: Final = 3

_FENCE: Final = re.compile(r"^```([\w-]*)\s*$")
_NOT_RUN: Final = re.compile(r"^<!--\s*not-run:\s*(.+?)\s*-->$")
_SETUP: Final = re.compile(r"^pip3? install\b")
_NODE: Final = re.compile(r"^(?:\S*/)?ringward node\b")
_BACKGROUND: Final = re.compile(r"\s*&\s*(#.*)?$")
_QUOTED: Final = re.compile(r"""["']([^"'\n]+)["']""")


@dataclass(frozen=True, slots=True)
class Block:
    """One fenced code block of a document."""

    doc: str
    line: int
    lang: str
    code: str
    not_run: str | None  # the reason, when marked <!-- not-run: ... -->

    @property
    def where(self) -> str:
        return f"{self.doc}:{self.line}"


def blocks(doc: str) -> list[Block]:
    """The code blocks of ``doc`` (a path relative to the repository)."""
    lines = (ROOT / doc).read_text(encoding="utf-8").splitlines()
    found: list[Block] = []
    i = 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if m is None:
            i += 1
            continue
        start, lang = i, m[1]
        i += 1
        body: list[str] = []
        while i < len(lines) and lines[i].rstrip() != "```":
            body.append(lines[i])
            i += 1
        i += 1
        before = next((x.strip() for x in reversed(lines[:start]) if x.strip()), "")
        mark = _NOT_RUN.match(before)
        found.append(Block(doc, start + 1, lang, "\n".join(body) + "\n", mark[1] if mark else None))
    return found


def commands(block: Block) -> list[str]:
    """The shell commands of a block: logical lines (``\\`` continued),
    without comment lines; for ``console``, the ``$ `` lines."""
    raw = block.code.splitlines()
    if block.lang == "console":
        raw = [x[2:] for x in raw if x.startswith("$ ")]
    out: list[str] = []
    pending = ""
    for raw_line in raw:
        if raw_line.rstrip().endswith("\\"):
            pending += raw_line.rstrip()[:-1] + " "
            continue
        line = (pending + raw_line).strip()
        pending = ""
        if line and not line.startswith("#"):
            out.append(line)
    return out


def _runs_node(argv: list[str]) -> bool:
    """Whether a command line runs `ringward node` (anywhere in a pipeline)."""
    return any(a.endswith("ringward") and b == "node" for a, b in itertools.pairwise(argv))


def _norm(path: str) -> str:
    return os.path.normpath(path.rstrip("/")) if path else path


def _keys_of(argv: list[str]) -> set[str]:
    """The key directories a `ringward node` command line names: --keys,
    and --keys/--name (a cluster directory's bundle)."""
    keys = name = None
    for flag, value in itertools.pairwise(argv):
        if flag == "--keys":
            keys = value
        elif flag == "--name":
            name = value
    if keys is None:
        return set()
    return {_norm(keys)} | ({_norm(f"{keys}/{name}")} if name else set())


class Reader:
    """Runs one document's blocks in ``cwd`` (see the module docstring)."""

    def __init__(self, cwd: Path) -> None:
        self.cwd = cwd
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("RINGWARD_")}
        venv_bin = ROOT / ".venv" / "bin"
        self.env.update(
            PATH=f"{venv_bin}{os.pathsep}{self.env.get('PATH', '')}",
            HOME=str(cwd / "home"),
            XDG_STATE_HOME=str(cwd / "state"),
            PYTHONUNBUFFERED="1",
        )
        (cwd / "home").mkdir()
        (cwd / ".venv").symlink_to(ROOT / ".venv")
        self.background: dict[str, tuple[subprocess.Popen[bytes], set[str], Path]] = {}
        self.skipped: list[str] = []

    # -- shell

    def shell(self, block: Block) -> None:
        started: list[str] = []
        for cmd in commands(block):
            if _SETUP.match(cmd):
                self.skipped.append(f"{block.where}: {cmd}")
                continue
            argv = _argv(cmd)
            self.stop_users(_keys_of(argv) if _runs_node(argv) else set())
            if _NODE.match(cmd) and "--exit-on-eof" not in argv and "|" not in argv:
                # "cmd &" in a document is the same request: run it in the background.
                started.append(self.start(_BACKGROUND.sub("", cmd), _keys_of(argv)))
                continue
            done = subprocess.run(
                ["bash", "-e", "-o", "pipefail", "-c", cmd],
                cwd=self.cwd,
                env=self.env,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=STEP_S,
                check=False,
            )
            if done.returncode != 0:
                pytest.fail(
                    f"{block.where}: `{cmd}` exited {done.returncode}\n"
                    f"stdout:\n{done.stdout[-3000:]}\nstderr:\n{done.stderr[-3000:]}" + self.logs()
                )
        for label in started:
            self.wait_view(label)

    def start(self, cmd: str, keys: set[str]) -> str:
        label = f"bg{len(self.background) + 1}"
        out = self.cwd / f"{label}.out"
        with out.open("wb") as stdout, (self.cwd / f"{label}.err").open("wb") as stderr:
            proc = subprocess.Popen(
                ["bash", "-c", f"exec {cmd}"],
                cwd=self.cwd,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=stderr,
            )
        self.background[label] = (proc, keys, out)
        return label

    def wait_view(self, label: str) -> None:
        proc, _, out = self.background[label]
        deadline = time.monotonic() + VIEW_WAIT_S
        while b'"event":"view"' not in out.read_bytes():
            if proc.poll() is not None:
                pytest.fail(f"background node {label} exited {proc.returncode}" + self.logs())
            if time.monotonic() > deadline:
                pytest.fail(f"background node {label} printed no view" + self.logs())
            time.sleep(0.1)

    def stop_users(self, keys: set[str]) -> None:
        """Stop the background nodes running from any of ``keys``."""
        for label, (proc, theirs, _) in list(self.background.items()):
            if keys & theirs:
                self.stop(label, proc)

    def stop(self, label: str, proc: subprocess.Popen[bytes]) -> None:
        del self.background[label]
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(STEP_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            pytest.fail(f"background node {label} ignored SIGTERM" + self.logs())
        if code != 0:
            pytest.fail(f"background node {label} exited {code}" + self.logs(label))

    def stop_all(self) -> None:
        for label, (proc, _, _) in list(self.background.items()):
            self.stop(label, proc)

    def kill_all(self) -> None:
        for proc, _, _ in self.background.values():
            with contextlib.suppress(OSError):
                proc.kill()
            proc.wait()

    def logs(self, *labels: str) -> str:
        text = ""
        for label in labels or tuple(self.background):
            for suffix in ("out", "err"):
                path = self.cwd / f"{label}.{suffix}"
                if path.exists():
                    text += f"\n--- {label}.{suffix}:\n{path.read_text(errors='replace')[-2000:]}"
        return text

    # -- python

    def python(self, block: Block) -> None:
        self.stop_users({_norm(m) for m in _QUOTED.findall(block.code)})
        script = self.cwd / f"example_{block.line}.py"
        script.write_text(block.code, encoding="utf-8")
        try:
            done = subprocess.run(
                [sys.executable, str(script)],
                cwd=self.cwd,
                env=self.env,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=STEP_S,
                check=False,
            )
        except subprocess.TimeoutExpired:
            pytest.fail(f"{block.where}: the Python example did not end" + self.logs())
        if done.returncode != 0:
            pytest.fail(
                f"{block.where}: the Python example exited {done.returncode}\n"
                f"stdout:\n{done.stdout[-3000:]}\nstderr:\n{done.stderr[-3000:]}" + self.logs()
            )


def _argv(cmd: str) -> list[str]:
    try:
        return shlex.split(cmd, comments=True)
    except ValueError:
        return cmd.split()


def _ports_busy(ports: range) -> list[int]:
    busy = []
    for port in ports:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                busy.append(port)
    return busy


def test_examples_are_accounted_for() -> None:
    """Every runnable block runs unless marked, the marks give a reason,
    and every Python block at least compiles."""
    for doc in DOCS:
        found = [b for b in blocks(doc) if b.lang in RUN_LANGS]
        assert any(b.lang == "python" for b in found), f"{doc}: no Python example found"
        assert any(b.not_run is None and b.lang != "python" for b in found), doc
        marked = []
        for b in found:
            if b.lang == "python":
                compile(b.code, b.where, "exec")
            if b.not_run is not None:
                marked.append(f"{b.where}: {b.not_run}")
        # Rare and visible: a new mark means an example nobody checks.
        assert len(marked) <= MARKED_MAX, "too many not-run examples:\n" + "\n".join(marked)


def run_doc(doc: str, cwd: Path) -> str:
    """Run every block of ``doc`` in ``cwd`` (pytest.fail on the first
    that fails); a one-line summary of what ran."""
    reader = Reader(cwd)
    ran: list[str] = []
    try:
        for block in blocks(doc):
            if block.lang not in RUN_LANGS or block.not_run is not None:
                continue
            if block.lang == "python":
                reader.python(block)
            else:
                reader.shell(block)
            ran.append(block.lang)
        reader.stop_all()
    finally:
        reader.kill_all()
    return f"ran {ran.count('python')} python, {len(ran) - ran.count('python')} shell blocks"


def _check_summary(doc: str, summary: str) -> None:
    counts = re.fullmatch(r"ran (\d+) python, (\d+) shell blocks", summary.strip())
    assert counts is not None, f"{doc}: {summary!r}"
    assert int(counts[1]) >= 1 and int(counts[2]) >= 1, f"{doc}: {summary}"


def _netns_usable() -> bool:
    """Whether this user can make a network namespace of its own (user
    namespaces, and ip(8) to bring its loopback up)."""
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return False
    probe = subprocess.run(
        ["unshare", "-rn", "ip", "link", "set", "lo", "up"],
        capture_output=True,
        timeout=STEP_S,
        check=False,
    )
    return probe.returncode == 0


def _wait_ports_free(ports: range) -> None:
    deadline = time.monotonic() + STEP_S
    while busy := _ports_busy(ports):
        if time.monotonic() > deadline:
            pytest.fail(f"ports {busy} are in use: the documents' clusters need them")
        time.sleep(0.5)


@pytest.mark.heavy
@pytest.mark.xdist_group("loopback")
@pytest.mark.parametrize("doc", DOCS)
def test_doc_examples_run(doc: str, tmp_path: Path) -> None:
    """In a network namespace of its own when possible (the documents'
    fixed ports are then free whatever else runs on the machine; the
    namespace ends with the process), else on the host's loopback."""
    if not _netns_usable():
        _wait_ports_free(DOC_PORTS)
        _check_summary(doc, run_doc(doc, tmp_path))
        return
    script = 'ip link set lo up && exec "$0" "$@"'
    try:
        done = subprocess.run(
            ["unshare", "-rn", "sh", "-c", script, sys.executable, __file__, doc, str(tmp_path)],
            capture_output=True,
            text=True,
            timeout=DOC_S,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"{doc}: the examples did not finish within {DOC_S:g} s: {exc.stderr!r}")
    if done.returncode != 0:
        pytest.fail(f"{doc}:\n{done.stdout[-5000:]}\n{done.stderr[-8000:]}")
    _check_summary(doc, done.stdout)


if __name__ == "__main__":
    # The child of test_doc_examples_run, inside its network namespace.
    try:
        print(run_doc(sys.argv[1], Path(sys.argv[2])))
    except pytest.fail.Exception as exc:
        print(exc, file=sys.stderr)
        sys.exit(1)
