#!/bin/bash -eu
# OSS-Fuzz / ClusterFuzzLite build script for Python projects.
# Runs in their builder image, where $SRC, $OUT and compile_python_fuzzer exist.
# Each fuzz/fuzz_<name>.py becomes a fuzzer binary $OUT/fuzz_<name>, with its
# seed corpus as $OUT/fuzz_<name>_seed_corpus.zip and the shared dictionary
# as $OUT/fuzz_<name>.dict.
cd "$SRC/ringward"
pip3 install .
for fuzzer in fuzz/fuzz_*.py; do
    name=$(basename "$fuzzer" .py)
    compile_python_fuzzer "$fuzzer" --add-data fuzz/_harness.py:. --add-data fuzz/targets.py:.
    cp fuzz/ringward.dict "$OUT/$name.dict"
    corpus="fuzz/corpus/${name#fuzz_}"
    if [ -d "$corpus" ]; then
        zip -q -j "$OUT/${name}_seed_corpus.zip" "$corpus"/*
    fi
done
