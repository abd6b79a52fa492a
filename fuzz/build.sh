#!/bin/bash -eu
# OSS-Fuzz / ClusterFuzzLite build script for ringward (a Python project).
# Runs in the base-builder-python image, where $SRC, $OUT, $SANITIZER and
# compile_python_fuzzer exist; .clusterfuzzlite/build.sh calls it. For each
# fuzz/fuzz_<name>.py it ships to $OUT:
#   fuzz_<name>                  the fuzzer (compile_python_fuzzer: PyInstaller
#                                --onefile plus a wrapper; a coverage stub in
#                                front of the source when $SANITIZER=coverage)
#   fuzz_<name>.options          its libFuzzer limits (the file fuzz/run.sh reads)
#   the dictionary its options name (dict = ..., resolved next to the fuzzer)
#   fuzz_<name>_seed_corpus.zip  its seed corpus and saved regressions
# `make test` runs this script with stand-ins for pip3 and
# compile_python_fuzzer, and freezes fuzz_decode for real in both modes
# (fuzz/check_build.py).
cd "$SRC/ringward"
python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
    || { echo "build.sh: ringward needs Python 3.11+; the builder image has $(python3 -V)" >&2; exit 1; }
pip3 install .
shopt -s nullglob
for fuzzer in fuzz/fuzz_*.py; do
    name=$(basename "$fuzzer" .py)
    target=${name#fuzz_}
    # Fails the build when the options file is missing or lacks a bound:
    # a target must never run at libFuzzer's defaults.
    dict=$(python3 fuzz/targets.py dict "$target")
    compile_python_fuzzer "$fuzzer"
    cp "fuzz/$name.options" "$OUT/"
    [[ -z "$dict" ]] || cp "fuzz/$dict" "$OUT/"
    seeds=(fuzz/corpus/"$target"/* fuzz/regressions/"$target"/*)
    if (( ${#seeds[@]} )); then
        # zipfile stores each file under its base name, as the job expects.
        python3 -m zipfile -c "$OUT/${name}_seed_corpus.zip" "${seeds[@]}"
    fi
done
