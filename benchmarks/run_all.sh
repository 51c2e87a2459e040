#!/usr/bin/env bash
# Run every benchmarks/bench_*.py in turn, each with its own bed, and keep their JSON.
#
#   bash benchmarks/run_all.sh [--out DIR] [ARGS...]
#
# ARGS go to every script (e.g. --full). The JSON of each lands in DIR (default: a new
# folder under /tmp), as <script>.json, with its printed report as <script>.txt. A
# script that fails does not stop the others; the exit status says whether any failed.
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

failed=()
for script in "$here"/bench_*.py; do
    name="$(basename "$script" .py)"
    echo "=== $name $(date +%H:%M:%S)"
    if ! "$python" "$script" --json "$out/$name.json" "$@" 2>&1 | tee "$out/$name.txt"; then
        failed+=("$name")
    fi
done

echo "=== results in $out"
if ((${#failed[@]})); then
    echo "=== FAILED: ${failed[*]}"
    exit 1
fi
