#!/usr/bin/env bash
# The model-heavy benchmarks on one GPU machine, inside a wall-clock budget.
#
#   bash bench/run_gpu.sh hotpotqa [results folder] [seconds]   # tune on dev, then the report split
#   bash bench/run_gpu.sh niah     [results folder] [seconds]   # the 4k..1M grid, chosen settings
#   bash bench/run_gpu.sh all      [results folder] [seconds]
#
# Defaults: bench/results, 560 s per stage. Run `python -m bench.hotpotqa prepare` first (CPU).
# NIAH uses the settings chosen by the tuning run when its JSON is in the results folder.
set -uo pipefail
stage="${1:-all}"
out="${2:-bench/results}"
budget="${3:-560}"
python="${PYTHON:-python3}"
start=$(date +%s)
left() { echo $((budget - ($(date +%s) - start))); }
mkdir -p "$out"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true

if [ "$stage" = hotpotqa ] || [ "$stage" = all ]; then
    echo "== tune ($(left)s left)"
    "$python" -m bench.hotpotqa tune --device cuda --workers "${TUNE_WORKERS:-5}" --batch-size 64 \
        --deadline 200 --out "$out/hotpotqa_tuning.json" || echo "tune failed"
    options=()
    [ -f "$out/hotpotqa_tuning.json" ] && options=(--options "$out/hotpotqa_tuning.json")
    echo "== hotpotqa report ($(left)s left)"
    "$python" -m bench.hotpotqa report --device cuda --workers "${REPORT_WORKERS:-8}" --block 20 \
        --batch-size 64 --deadline $(( $(left) - 15 )) "${options[@]}" \
        --checkpoint /tmp/hotpotqa_report.jsonl --out "$out/hotpotqa.json" || echo "report failed"
fi

if [ "$stage" = niah ] || [ "$stage" = all ]; then
    options=()
    [ -f "$out/hotpotqa_tuning.json" ] && options=(--options "$out/hotpotqa_tuning.json")
    echo "== niah ($(left)s left)"
    "$python" -m bench.niah run --device cuda --workers "${NIAH_WORKERS:-12}" \
        --timing-max-length 128000 --timing-reference-max-length 64000 \
        --deadline $(( $(left) - 25 )) "${options[@]}" \
        --checkpoint /tmp/niah.jsonl --out "$out/niah.json" || echo "niah failed"
fi
echo "== done in $(( $(date +%s) - start ))s"
