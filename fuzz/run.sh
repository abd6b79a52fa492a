#!/usr/bin/env bash
# Long continuous fuzzing of one target, or replay of one input.
#
#   fuzz/run.sh TARGET [SECONDS]        fuzz for SECONDS (default 3600); 0 = forever
#   fuzz/run.sh TARGET --reproduce FILE run FILE once through TARGET, show the failure
#   fuzz/run.sh TARGET --minimize FILE  shrink a crashing FILE (keeps it crashing) to
#                                       fuzz/crashes/TARGET-minimized-NAME
#   fuzz/run.sh TARGET --merge          add the inputs of fuzz/.work/TARGET that bring
#                                       new coverage to fuzz/corpus/TARGET
#   fuzz/run.sh --list                  the target names
#
# The limits (-max_len, -rss_limit_mb, -timeout, -dict) come from the
# target's fuzz/fuzz_TARGET.options, the file a continuous fuzzing job
# reads too: one source of the settings.
# New coverage-increasing inputs accumulate in fuzz/.work/TARGET (not tracked);
# crashes, leaks and timeouts are written to fuzz/crashes/TARGET-*.
# Extra libFuzzer flags can be passed in FUZZ_FLAGS (e.g. "-workers=2 -jobs=2").
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
py="${PYTHON:-$here/../.venv/bin/python}"
[[ -x "$py" ]] || py=python3

if [[ "${1:-}" == "--list" ]]; then
    exec "$py" "$here/targets.py" names
fi
target="${1:?usage: fuzz/run.sh TARGET [SECONDS] | TARGET --reproduce|--minimize FILE | TARGET --merge | --list}"
script="$here/fuzz_${target}.py"
[[ -f "$script" ]] || { echo "no such target: $target (try --list)" >&2; exit 2; }
flags=()
while IFS= read -r flag; do flags+=("$flag"); done < <("$py" "$here/targets.py" flags "$target")
[[ ${#flags[@]} -gt 0 ]] || { echo "no settings for $target (fuzz_${target}.options)" >&2; exit 2; }

if [[ "${2:-}" == "--reproduce" ]]; then
    file="${3:?--reproduce needs a FILE}"
    # Same limits as the run that found it: a timeout or out-of-memory
    # reproduces as one.
    exec "$py" "$script" "${flags[@]}" -runs=1 "$file"
fi

# libFuzzer minimizes and merges by running argv[0] again, so argv[0] must
# be an executable that starts this target with this interpreter.
relaunch() {
    mkdir -p "$here/.work"
    local wrapper="$here/.work/fuzz_${target}"
    printf '#!/bin/sh\nexec "%s" "%s" "$@"\n' "$py" "$script" > "$wrapper"
    chmod +x "$wrapper"
    RINGWARD_FUZZ_ARGV0="$wrapper" "$wrapper" "${flags[@]}" "$@"
}

if [[ "${2:-}" == "--minimize" ]]; then
    file="${3:?--minimize needs a FILE}"
    out="$here/crashes/${target}-minimized-$(basename "$file")"
    relaunch -minimize_crash=1 -runs="${MINIMIZE_RUNS:-20000}" -exact_artifact_path="$out" "$file"
    echo "minimized: $out ($(wc -c < "$out") bytes)"
    exit 0
fi

if [[ "${2:-}" == "--merge" ]]; then
    # Keep the inputs of fuzz/.work/TARGET that add coverage to the corpus.
    mkdir -p "$here/corpus/$target"
    relaunch -merge=1 "$here/corpus/$target" "$here/.work/$target"
    exit 0
fi

seconds="${2:-3600}"
mkdir -p "$here/.work/$target" "$here/crashes"
seeds=()
for d in "$here/corpus/$target" "$here/regressions/$target"; do [[ -d "$d" ]] && seeds+=("$d"); done
# shellcheck disable=SC2086  # FUZZ_FLAGS is a list of flags
exec "$py" "$script" \
    "${flags[@]}" \
    -max_total_time="$seconds" \
    -artifact_prefix="$here/crashes/${target}-" \
    ${FUZZ_FLAGS:-} \
    "$here/.work/$target" "${seeds[@]}"
