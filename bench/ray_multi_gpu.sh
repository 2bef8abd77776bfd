#!/usr/bin/env bash
# A corpus job with `infiniretri batch` on the GPUs of one host: K Ray actors on each of N GPUs
# (--workers N*K --gpus-per-worker 1/K), rows checked (every id back exactly once), rates and
# GPU utilisation written as JSON. The same script for 1, 2, 4 or 8 GPUs:
#
#   bash bench/ray_multi_gpu.sh --gpus 8 --actors-per-gpu 2
#   bash bench/ray_multi_gpu.sh --gpus 1 --actors-per-gpu 2 --answer --docs 16 --doc-tokens 16000
#   bash bench/ray_multi_gpu.sh --gpus 1 --actors-per-gpu 0,1,2,4     # 0: in-process, no Ray
#
# Options (defaults in brackets):
#   --gpus N              GPUs to use, the first N of the host; refused if it has fewer [1]
#   --actors-per-gpu K    actors sharing each GPU, or a comma-separated list [1]
#   --answer              also generate an answer per row
#   --docs D              rows [32 per actor of the largest K, 2 calls of 16 each]
#   --doc-tokens T        tokens per document [128000]
#   --model DIR           a local model folder [a random-weight SmolLM2-135M shape, made here]
#   --tokenizer DIR       tokenizer for the random model [.carry/tokenizer if there, else the
#                         embedded model's]
#   --out FILE            results JSON [bench/results/ray_gpu_<N>gpu.json]
#   --address ADDR        a running Ray cluster instead of a local Ray started by the job
#   anything else is passed to `python -m bench.ray_gpu measure` (--batch-size, --chunk-tokens,
#   --prep-workers, --cpus-per-worker, --timeout, --note ...).
#
# Needs: the project and `ray[data]` importable by $PYTHON (default python3), nvidia-smi.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="${PYTHON:-python3}"
gpus=1 actors=1 docs="" doc_tokens=128000 model="" tokenizer=""
[ -d "$root/.carry/tokenizer" ] && tokenizer="$root/.carry/tokenizer"
out="" answer=() extra=()
while [ $# -gt 0 ]; do
    case "$1" in
        --gpus) gpus="$2"; shift 2 ;;
        --actors-per-gpu) actors="$2"; shift 2 ;;
        --answer) answer=(--answer); shift ;;
        --docs) docs="$2"; shift 2 ;;
        --doc-tokens) doc_tokens="$2"; shift 2 ;;
        --model) model="$2"; shift 2 ;;
        --tokenizer) tokenizer="$2"; shift 2 ;;
        --out) out="$2"; shift 2 ;;
        -h|--help) sed -n '2,/^set -/{/^#/p}' "$0"; exit 0 ;;
        *) extra+=("$1"); shift ;;
    esac
done
case "$gpus" in ''|*[!0-9]*|0) echo "--gpus must be a positive integer, got '$gpus'" >&2; exit 2 ;; esac
most=1
for k in ${actors//,/ }; do
    case "$k" in ''|*[!0-9]*) echo "--actors-per-gpu: '$k' is not a count" >&2; exit 2 ;; esac
    [ "$k" -gt "$most" ] && most="$k"
done
docs="${docs:-$((32 * gpus * most))}"
out="${out:-$root/bench/results/ray_gpu_${gpus}gpu.json}"
case "$out" in /*) ;; *) out="$PWD/$out" ;; esac
if [[ " ${extra[*]:-} " != *" --address "* ]]; then
    found=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU ' || true)
    if [ "$found" -lt "$gpus" ]; then
        echo "--gpus $gpus: this host has $found GPU(s)" >&2
        exit 2
    fi
fi
# The project's own folder goes last on the path: an installed infiniretri (or one named in
# $PYTHONPATH) wins; the child processes run in a scratch folder, never in the checkout.
export PYTHONPATH="${PYTHONPATH:+$PYTHONPATH:}$root"
work="$(mktemp -d "${TMPDIR:-/tmp}/ray-multi-gpu.XXXXXX")"
trap 'rm -rf "$work"' EXIT
cd "$work"
label=()
if [ -z "$model" ]; then
    model="$work/model"
    "$python" -m bench.ray_gpu make-model "$model" ${tokenizer:+--tokenizer "$tokenizer"}
    label=(--model-label "random weights, SmolLM2-135M shape (bench/gpu_speed.py SMOL, seed 0)")
fi
"$python" -m bench.ray_gpu corpus "$work/rows.jsonl" --docs "$docs" --doc-tokens "$doc_tokens" \
    --tokenizer "$model"
nvidia-smi --query-gpu=index,name,memory.total,driver_version --format=csv,noheader || true
"$python" -m bench.ray_gpu measure "$work/rows.jsonl" --model "$model" "${label[@]}" \
    --gpus "$gpus" --actors-per-gpu "$actors" "${answer[@]}" --out "$out" "${extra[@]}"
