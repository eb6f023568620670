#!/usr/bin/env bash
# The prepared GPU check for the Gemma encoder: one run, under 8 minutes, results in $OUT.
#
#   benchmarks/gpu_check.sh [GEMMA_DIR]        (from the repository root, on a CUDA machine)
#
# GEMMA_DIR (or $GEMMA_DIR): a folder with a saved Hugging Face tokenizer (tokenizer.json), e.g.
# `python -m metamon.rl.gemma_gguf --out DIR` (the real 262,144-piece Gemma tokenizer; only its
# tokenizer files are needed, 33 MB). With model weights there (model.safetensors) they are used;
# without, a random-init model of the real 270M architecture is made with that tokenizer: random
# weights time the same as real ones, and the tokenizer gives the real lengths (about 260-280
# Gemma tokens per observation). Without GEMMA_DIR the local BPE tokenizer is used (about 430
# tokens per observation; the check says so).
#
# Steps (each bounded by `timeout`; the whole run by a deadline of $BUDGET_S, default 470 s):
#   1. device         nvidia-smi, torch / CUDA / bitsandbytes versions
#   2. model          the 270M model folder (made from GEMMA_DIR, see above)
#   3. bf16_L128      benchmarks/gemma_encoder.py, ours, bf16 LoRA r16, B = 1 2 4 at L = 128:
#                     timesteps/s, Gemma tokens, TFLOP/s, MFU (against $PEAK_TFLOPS, default 989 =
#                     H100/H200 SXM bf16 dense), peak CUDA memory per batch size
#   4. bf16_L200      the same, B = 1 2 at L = 200
#   5. nf4_L128       the 4-bit NF4 base (bf16 compute), B = 1 2 at L = 128
#   6. test_4bit      pytest tests/unit/rl/test_rl_gemma_encoder.py::test_4bit_lora_on_cuda
# Out of memory is a result (reported in the table), not a failure.
#
# Output ($OUT, default ./gpu_check_out): summary.txt (one line per step: name, exit code,
# seconds), <step>.log, <step>.json (the benchmark rows), device.txt.
# GPU_CHECK_DRY_RUN=1 prints the commands without running them (what the unit test checks).
set -u -o pipefail

PY=${PYTHON:-python}
OUT=${OUT:-$PWD/gpu_check_out}
BUDGET_S=${BUDGET_S:-470}
PEAK_TFLOPS=${PEAK_TFLOPS:-989}
GEMMA_DIR=${1:-${GEMMA_DIR:-}}
DRY=${GPU_CHECK_DRY_RUN:-0}
BENCH=benchmarks/gemma_encoder.py
export HF_HUB_OFFLINE=1 HF_HUB_DISABLE_PROGRESS_BARS=1 TOKENIZERS_PARALLELISM=false PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"

if [ ! -f "$BENCH" ]; then
    echo "run from the repository root (no $BENCH here)" >&2
    exit 2
fi
mkdir -p "$OUT"
: > "$OUT/summary.txt"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/gpu_check.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
START=$SECONDS

# step NAME LIMIT_S CMD...: run CMD with a timeout (never past the deadline), log to $OUT/NAME.log
step() {
    local name=$1 limit=$2
    shift 2
    local left=$((BUDGET_S - (SECONDS - START)))
    if [ "$DRY" = 1 ]; then
        echo "$name: $*" | tee -a "$OUT/summary.txt"
        return 0
    fi
    if [ "$left" -lt 20 ]; then
        echo "$name skipped: the ${BUDGET_S} s budget is spent" | tee -a "$OUT/summary.txt"
        return 0
    fi
    [ "$limit" -gt "$left" ] && limit=$left
    echo "== $name (at most ${limit} s)"
    local t0=$SECONDS
    timeout --kill-after=10 "$limit" "$@" > "$OUT/$name.log" 2>&1
    local rc=$?
    echo "$name rc=$rc $((SECONDS - t0))s" | tee -a "$OUT/summary.txt"
    tail -n 20 "$OUT/$name.log"
    return 0
}

# 1. device
step device 60 bash -c "nvidia-smi; $PY -c 'import torch, transformers, peft; print(\"torch\", torch.__version__, \"cuda\", torch.version.cuda, torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else \"-\"); print(\"transformers\", transformers.__version__, \"peft\", peft.__version__)'; $PY -c 'import bitsandbytes; print(\"bitsandbytes\", bitsandbytes.__version__)'"
[ "$DRY" = 1 ] || cp "$OUT/device.log" "$OUT/device.txt"

# 2. model folder
MODEL=$WORK/gemma-270m
if [ -n "$GEMMA_DIR" ] && [ -f "$GEMMA_DIR/model.safetensors" ]; then
    MODEL=$GEMMA_DIR
    echo "model: $GEMMA_DIR (its weights and tokenizer)" | tee -a "$OUT/summary.txt"
elif [ -n "$GEMMA_DIR" ]; then
    step model 120 "$PY" -m metamon.rl.gemma_tiny "$MODEL" --size 270m --hf_tokenizer "$GEMMA_DIR"
else
    echo "note: no GEMMA_DIR: random 270M with the local BPE tokenizer (~430 tokens per observation, not the real ~270)" \
        | tee -a "$OUT/summary.txt"
    step model 180 "$PY" -m metamon.rl.gemma_tiny "$MODEL" --size 270m
fi

# 3-5. throughput, MFU and peak memory (each case in a fresh process; ours only)
COMMON=(--model_dir "$MODEL" --device cuda --paths ours --repeats 3 --peak_tflops "$PEAK_TFLOPS")
step bf16_L128 150 "$PY" "$BENCH" "${COMMON[@]}" --dtype bf16 --batch 1 2 4 --seq_len 128 --json_out "$OUT/bf16_L128.json"
step bf16_L200 100 "$PY" "$BENCH" "${COMMON[@]}" --dtype bf16 --batch 1 2 --seq_len 200 --json_out "$OUT/bf16_L200.json"
step nf4_L128 100 "$PY" "$BENCH" "${COMMON[@]}" --dtype nf4 --batch 1 2 --seq_len 128 --json_out "$OUT/nf4_L128.json"

# 6. the 4-bit LoRA test (skips, and says so, without bitsandbytes)
step test_4bit 90 "$PY" -m pytest -q -rs -p no:cacheprovider \
    "tests/unit/rl/test_rl_gemma_encoder.py::test_4bit_lora_on_cuda"

echo "total $((SECONDS - START)) s; results in $OUT" | tee -a "$OUT/summary.txt"
