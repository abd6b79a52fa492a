#!/usr/bin/env bash
# Long continuous fuzzing of one target, or replay of one input.
#
#   fuzz/run.sh TARGET [SECONDS]        fuzz for SECONDS (default 3600); 0 = forever
#   fuzz/run.sh TARGET --reproduce FILE run FILE once through TARGET, show the failure
#   fuzz/run.sh --list                  the target names
#
# New coverage-increasing inputs accumulate in fuzz/.work/TARGET (not tracked);
# crashes, leaks and timeouts are written to fuzz/crashes/TARGET-*.
# Extra libFuzzer flags can be passed in FUZZ_FLAGS (e.g. "-workers=2 -jobs=2").
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
py="${PYTHON:-$here/../.venv/bin/python}"
[[ -x "$py" ]] || py=python3

if [[ "${1:-}" == "--list" ]]; then
    for f in "$here"/fuzz_*.py; do basename "$f" .py | sed 's/^fuzz_//'; done
    exit 0
fi
target="${1:?usage: fuzz/run.sh TARGET [SECONDS] | TARGET --reproduce FILE | --list}"
script="$here/fuzz_${target}.py"
[[ -f "$script" ]] || { echo "no such target: $target (try --list)" >&2; exit 2; }

if [[ "${2:-}" == "--reproduce" ]]; then
    file="${3:?--reproduce needs a FILE}"
    exec "$py" "$script" -runs=1 "$file"
fi

seconds="${2:-3600}"
mkdir -p "$here/.work/$target" "$here/crashes"
seeds=()
for d in "$here/corpus/$target" "$here/regressions/$target"; do [[ -d "$d" ]] && seeds+=("$d"); done
# shellcheck disable=SC2086  # FUZZ_FLAGS is a list of flags
exec "$py" "$script" \
    -max_total_time="$seconds" \
    -dict="$here/ringward.dict" \
    -artifact_prefix="$here/crashes/${target}-" \
    -max_len=65507 -rss_limit_mb=2048 -timeout=10 \
    ${FUZZ_FLAGS:-} \
    "$here/.work/$target" "${seeds[@]}"
