#!/usr/bin/env bash
# Runs the streamhost benchmarks one after another (several minutes with default runs) and
# keeps a copy of the output in bench/results/run-YYYYmmdd-HHMMSS.txt (git-ignored).
# Usage: bench/run_all.sh [PYTHON]   (default: .venv/bin/python, made by the README's test command)
# Extra arguments for every script can be given in BENCH_ARGS, e.g. BENCH_ARGS="--runs 5".
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
python="${1:-}"
if [[ -z "$python" ]]; then
    if [[ -x "$here/../.venv/bin/python" ]]; then python="$here/../.venv/bin/python"; else python=python3; fi
fi
mkdir -p "$here/results"
log="$here/results/run-$(date +%Y%m%d-%H%M%S).txt"
status=0
for name in startup ttft throughput cancel token_cpu litellm_startup litellm_ttft summarize store_journal store_calls handoff background_cpu resume http_ttft http_load http_costs replicas; do
    echo "== $name"
    # shellcheck disable=SC2086
    "$python" "$here/$name.py" ${BENCH_ARGS:-} || echo "!! $name failed"
    echo
done 2>&1 | tee "$log"
grep -q '^!! ' "$log" && status=1
echo "output kept in $log"
exit "$status"
