"""Build fuzz targets the way a continuous fuzzing job does, without Docker.

OSS-Fuzz and ClusterFuzzLite build a Python target with
``compile_python_fuzzer``: in coverage mode it first puts a coverage stub
(``import coverage`` ...) in front of the target's source, then freezes the
file with PyInstaller (``--onefile``); the job then runs the frozen binary,
with libFuzzer flags in fuzzing mode and with ``-atheris_runs=N`` in
coverage mode (after which atheris exits through Python's atexit handlers,
which write ``.coverage``). This script checks each step of that here:

1. every ``fuzz/fuzz_*.py`` still compiles with the stub in front (a
   ``from __future__`` import must be a file's first statement, so a target
   that has one breaks the coverage build);
2. ``fuzz/build.sh`` itself, run with stand-ins for ``pip3`` and
   ``compile_python_fuzzer``, ships for every target its fuzzer, its
   ``.options``, the dictionary the options name and a seed corpus zip;
3. one target (``decode`` by default) is frozen with PyInstaller from PyPI,
   in fuzzing mode and in coverage mode, and each binary runs a few
   thousand executions: the fuzzing build must report coverage feedback
   (atheris instrumentation survives freezing), the coverage build must
   write a ``.coverage`` file that measured the ringward parser.

Step 3 needs PyInstaller and coverage (the ``fuzz-build`` extra, installed
by ``make fuzz-build``). Without them it is SKIPPED with the reason printed;
``RINGWARD_REQUIRE_FUZZ_BUILD=1`` turns that skip into a failure (for a CI
host that must run it).
"""

import argparse
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import targets

# What compile_python_fuzzer prepends in coverage mode (same statements,
# our own text): coverage starts before the target imports anything and
# is saved by an atexit handler.
COVERAGE_STUB = """\
import atexit
import coverage
_cov = coverage.Coverage(data_file=".coverage", cover_pylib=True)
_cov.start()
def _save_coverage():
    _cov.stop()
    _cov.save()
atexit.register(_save_coverage)
"""
REQUIRE_ENV = "RINGWARD_REQUIRE_FUZZ_BUILD"
# A frozen build is ~30 s of PyInstaller on 2 vCPUs; more means it hangs.
BUILD_TIMEOUT_S = 300
RUN_TIMEOUT_S = 120
# The libFuzzer summary line of a run that had coverage feedback.
_COV = re.compile(r"#\d+\s+DONE\s+cov: (\d+)")


class CheckError(Exception):
    """One failed step, with what to look at."""


def check_stub_compiles() -> None:
    """Step 1, for every target."""
    for name in targets.names():
        path = targets.FUZZ_DIR / f"fuzz_{name}.py"
        source = COVERAGE_STUB + path.read_text(encoding="utf-8")
        try:
            compile(source, str(path), "exec")
        except SyntaxError as exc:
            raise CheckError(
                f"{path.name} does not compile behind the coverage stub "
                f"({exc.msg}); a `from __future__` import cannot stay in a fuzz target"
            ) from None
    print(f"fuzz build: {len(targets.names())} targets compile behind the coverage stub")


def _shim(bin_dir: Path, name: str, body: str) -> None:
    path = bin_dir / name
    path.write_text(f"#!/bin/sh\n{body}\n", encoding="utf-8")
    path.chmod(0o755)


def check_build_script(work: Path) -> None:
    """Step 2: run fuzz/build.sh against a copy of the tree."""
    src, out, bin_dir = work / "src", work / "out", work / "bin"
    repo = targets.FUZZ_DIR.parent
    shutil.copytree(repo / "fuzz", src / "ringward" / "fuzz", ignore=_ignore_scratch)
    out.mkdir()
    bin_dir.mkdir()
    _shim(bin_dir, "pip3", 'echo "pip3 $*" >> "$OUT/.pip3"')
    # The builder image's python3 is 3.11; here, the interpreter running us.
    _shim(bin_dir, "python3", f'exec "{sys.executable}" "$@"')
    # Records the call and leaves an executable, as the real one does.
    _shim(
        bin_dir,
        "compile_python_fuzzer",
        'touch "$OUT/$(basename "$1" .py)"; chmod +x "$OUT/$(basename "$1" .py)"',
    )
    env = dict(os.environ, SRC=str(src), OUT=str(out), SANITIZER="address")
    env["PATH"] = f"{bin_dir}{os.pathsep}{env['PATH']}"
    proc = subprocess.run(
        ["bash", str(repo / "fuzz" / "build.sh")],
        env=env,
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT_S,
        check=False,
    )
    if proc.returncode != 0:
        raise CheckError(f"fuzz/build.sh failed:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    for name in targets.names():
        fuzzer = f"fuzz_{name}"
        options = out / f"{fuzzer}.options"
        seeds = out / f"{fuzzer}_seed_corpus.zip"
        dict_file = targets.dict_file(name)
        missing = [p.name for p in (out / fuzzer, options, seeds) if not p.is_file()]
        if dict_file is not None and not (out / dict_file.name).is_file():
            missing.append(dict_file.name)
        if missing:
            raise CheckError(f"fuzz/build.sh did not ship {', '.join(missing)} for {fuzzer}")
        if options.read_bytes() != targets.options_file(name).read_bytes():
            raise CheckError(f"{options.name} in $OUT differs from fuzz/{options.name}")
        with zipfile.ZipFile(seeds) as archive:
            shipped = set(archive.namelist())
        expected = {p.name for p in targets.inputs(name)}
        if shipped != expected:
            raise CheckError(f"{seeds.name} holds {len(shipped)} files, expected {len(expected)}")
    print("fuzz build: build.sh ships fuzzer, options, dictionary, seeds for every target")


def _ignore_scratch(directory: str, names: list[str]) -> list[str]:
    return [n for n in names if n in {".work", "crashes", "__pycache__"}]


def missing_tools() -> str | None:
    """Why step 3 cannot run here, or None."""
    for module, package in (("PyInstaller", "pyinstaller"), ("coverage", "coverage")):
        if importlib.util.find_spec(module) is None:
            return f"{package} is not installed (make fuzz-build installs the fuzz-build extra)"
    return None


def freeze(name: str, mode: str, work: Path) -> Path:
    """The frozen fuzzer of target ``name`` built as compile_python_fuzzer
    does in ``mode`` ("fuzzing" or "coverage"); returns the binary."""
    stage = work / mode / "fuzz"
    # The staged copy is what gets the stub: the tracked file stays as is.
    shutil.copytree(targets.FUZZ_DIR, stage, ignore=_ignore_scratch)
    script = stage / f"fuzz_{name}.py"
    if mode == "coverage":
        script.write_text(COVERAGE_STUB + script.read_text(encoding="utf-8"), encoding="utf-8")
    dist = work / mode / "out"
    cmd = [
        sys.executable,
        "-m",
        "PyInstaller",
        "--noconfirm",
        "--onefile",
        "--log-level",
        "WARN",
        "--distpath",
        str(dist),
        "--workpath",
        str(work / mode / "build"),
        "--specpath",
        str(work / mode),
        "--name",
        f"fuzz_{name}.pkg",
        str(script),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=BUILD_TIMEOUT_S, check=False)
    binary = dist / f"fuzz_{name}.pkg"
    if proc.returncode != 0 or not binary.is_file():
        raise CheckError(f"PyInstaller failed ({mode}):\n{proc.stderr[-3000:]}")
    return binary


def _seed_dir(name: str, into: Path) -> Path:
    into.mkdir(parents=True)
    for path in targets.inputs(name):
        shutil.copy(path, into / path.name)
    return into


def run_fuzzing(name: str, binary: Path, runs: int, work: Path) -> str:
    """Fuzz with the frozen binary under the target's options."""
    corpus = _seed_dir(name, work / "fuzzing" / "corpus")
    cmd = [
        str(binary),
        *targets.libfuzzer_flags(name),
        f"-runs={runs}",
        f"-artifact_prefix={work}/",
        str(corpus),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=RUN_TIMEOUT_S, check=False)
    found = _COV.search(proc.stderr)
    if proc.returncode != 0:
        raise CheckError(
            f"frozen fuzz_{name} failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}"
        )
    if found is None or int(found[1]) == 0:
        raise CheckError(
            f"frozen fuzz_{name} ran without coverage feedback: "
            "atheris instrumentation did not survive PyInstaller"
        )
    return f"{runs} runs, cov {found[1]}"


def run_coverage(name: str, binary: Path, runs: int, work: Path) -> str:
    """Run the coverage build as the coverage job does; read .coverage."""
    import coverage

    corpus = _seed_dir(name, work / "coverage" / "corpus")
    cwd = work / "coverage" / "run"
    cwd.mkdir()
    cmd = [str(binary), str(corpus), f"-atheris_runs={runs}"]
    proc = subprocess.run(
        cmd, cwd=cwd, capture_output=True, text=True, timeout=RUN_TIMEOUT_S, check=False
    )
    data_file = cwd / ".coverage"
    if proc.returncode != 0 or not data_file.is_file():
        raise CheckError(
            f"coverage build of fuzz_{name} wrote no .coverage "
            f"(exit {proc.returncode}):\n{proc.stderr[-3000:]}"
        )
    data = coverage.CoverageData(basename=str(data_file))
    data.read()
    measured = {
        f: len(data.lines(f) or ()) for f in data.measured_files() if "ringward" in Path(f).parts
    }
    if not any(measured.values()):
        raise CheckError(f"coverage build of fuzz_{name} measured no ringward line")
    return f"{runs} runs, {len(measured)} ringward files, {sum(measured.values())} lines"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", default="decode", help="target to freeze (default decode)")
    parser.add_argument("--runs", type=int, default=3000, help="executions per frozen build")
    parser.add_argument("--keep", action="store_true", help="keep the build directory")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ringward-fuzz-build-"))
    try:
        check_stub_compiles()
        check_build_script(work / "script")
        why = missing_tools()
        if why is not None:
            print(f"fuzz build: SKIPPED freezing fuzz_{args.target}: {why}")
            return 1 if os.environ.get(REQUIRE_ENV) == "1" else 0
        for mode, run in (("fuzzing", run_fuzzing), ("coverage", run_coverage)):
            start = time.monotonic()
            binary = freeze(args.target, mode, work)
            summary = run(args.target, binary, args.runs, work)
            took = time.monotonic() - start
            print(f"fuzz build: frozen fuzz_{args.target} ({mode}) ok in {took:.0f}s: {summary}")
    except (CheckError, subprocess.TimeoutExpired) as exc:
        print(f"fuzz build: FAILED: {exc}")
        return 1
    finally:
        if args.keep:
            print(f"fuzz build: kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
