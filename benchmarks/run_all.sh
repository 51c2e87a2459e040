#!/usr/bin/env bash
# Run every benchmarks/bench_*.py in turn, each with its own bed, and keep their JSON.
#
#   bash benchmarks/run_all.sh [--out DIR] [ARGS...]
#   BENCH_QUICK=1 bash benchmarks/run_all.sh      # CI: every script in quick mode
#
# ARGS go to every script (e.g. --full). The JSON of each lands in DIR (default: a new
# folder under /tmp), as <script>.json, with its printed report as <script>.txt. A
# script that fails does not stop the others; the exit status says whether any failed.
# In quick mode (BENCH_QUICK=1: small counts, one sample, numbers meaningless) no JSON
# is asked for, and a script still running after BENCH_TIMEOUT seconds (300) fails.
set -u -o pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out=""
if [[ "${1:-}" == "--out" ]]; then
    out="$2"
    shift 2
fi
out="${out:-$(mktemp -d /tmp/acbench-results-XXXXXX)}"
mkdir -p "$out"
python="${PYTHON:-python3}"

quick="${BENCH_QUICK:-}"
[[ "$quick" == "0" ]] && quick=""
failed=()
for script in "$here"/bench_*.py; do
    name="$(basename "$script" .py)"
    echo "=== $name $(date +%H:%M:%S)"
    if [[ -n "$quick" ]]; then
        run=(timeout "${BENCH_TIMEOUT:-300}" "$python" "$script" "$@")
    else
        run=("$python" "$script" --json "$out/$name.json" "$@")
    fi
    if ! "${run[@]}" 2>&1 | tee "$out/$name.txt"; then
        failed+=("$name")
    fi
done

echo "=== results in $out"
if ((${#failed[@]})); then
    echo "=== FAILED: ${failed[*]}"
    exit 1
fi
