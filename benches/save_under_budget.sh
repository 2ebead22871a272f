#!/usr/bin/env bash
# Issue 15: the 271M-parameter Llama (16 layers, hidden 1024, vocabulary 32000, fp32) trains
# at W = 4, ZeRO stage 3, then saves its final Hugging Face folder and a checkpoint, and
# `convert` turns the checkpoint into a folder — every rank in a memory cgroup of its own
# (benches/memory_cgroup.sh, cgroup v1, root). The budget per rank:
#   (ZeRO-3 state 12Ψ/W + the two largest units in fp32 + activations) × 1.15 + B,
# where B is the measured resident memory of a rank before the model is built (libtorch,
# MPI, the data). Without a limit first, to print each rank's peak next to the budget.
#   [BASE_MIB=400] bash benches/save_under_budget.sh
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
. "$ROOT/scripts/setup.sh" > /dev/null
cd "$ROOT"
STEPS=2
cargo build -q --release -p rpo-shard
BIN="$ROOT/target/release/rpo-shard"
OUT="$ROOT/target/bench-save-budget"; rm -rf "$OUT"; mkdir -p "$OUT"
export MALLOC_MMAP_THRESHOLD_=1048576 RPO_LOG=warn
. benches/lib/model_271m.sh
# W = 4; state 12Ψ/W; the two largest units (embed and head) in fp32.
W=4
STATE=$((12 * PSI / W)); UNITS=$((2 * 32000 * 1024 * 4))
train() { # limit, out
  mpirun -n $W --oversubscribe -x MALLOC_MMAP_THRESHOLD_ -x RPO_LOG -x MEMORY_CGROUP_REPORT \
    bash benches/memory_cgroup.sh "$1" "$BIN" train \
    --set model.preset= --set model.path="$OUT/start" --set out_dir="$2" --set loss.name=sft \
    --set zero.stage=3 --set train.steps="$STEPS" --set train.global_batch_size=4 \
    --set train.micro_batch_size=1 --set train.sft_warmup_steps=0 --set data.max_length=64 --set data.max_prompt_length=32 \
    --set eval.judge=false --set checkpoint.at_end=true --set train.save_model=true \
    --set embedding.model=bag-of-words
}
convert() { # limit, out
  bash benches/memory_cgroup.sh "$1" "$BIN" convert --checkpoint "$2/checkpoints" --out "$2/converted"
}
peaks() { awk '{printf "%s rank %s: peak %.0f MiB (exit %s)\n", "'"$1"'", $1, $2 / 1048576, $3}' "$2" | sort; }
# 1. No limit (64 GiB): each rank's peak.
export MEMORY_CGROUP_REPORT="$OUT/free.txt"
train $((64 << 30)) "$OUT/free"
convert $((64 << 30)) "$OUT/free"
peaks "no limit, train+save" <(head -n $W "$OUT/free.txt")
peaks "no limit, convert" <(tail -n 1 "$OUT/free.txt")
# 2. The budget. B: the resident memory of one rank of this job before its model is built,
#    measured on this machine (libtorch ~340 MiB, Open MPI, the synthetic data) — give
#    another with --base-mib.
BASE_MIB=${BASE_MIB:-400}
ACT=$((64 << 20))   # activations of 1 × 64 tokens with checkpointing: far below this
LIMIT=$(( (STATE + UNITS + ACT) * 115 / 100 + (BASE_MIB << 20) ))
echo "budget per rank: ($((STATE >> 20)) MiB state + $((UNITS >> 20)) MiB two units + $((ACT >> 20)) MiB activations) × 1.15 + $BASE_MIB MiB = $((LIMIT >> 20)) MiB"
export MEMORY_CGROUP_REPORT="$OUT/budget.txt"
if train "$LIMIT" "$OUT/budget" > "$OUT/budget-train.log" 2>&1; then
  peaks "budget, train+save" <(head -n $W "$OUT/budget.txt")
  if convert "$LIMIT" "$OUT/budget" > "$OUT/budget-convert.log" 2>&1; then
    peaks "budget, convert" <(tail -n 1 "$OUT/budget.txt")
    cmp "$OUT/budget/model/model.safetensors" "$OUT/free/model/model.safetensors" \
      && echo "the final folder under the budget is byte-identical to the one without a limit"
    cmp "$OUT/budget/converted/model.safetensors" "$OUT/budget/model/model.safetensors" \
      && echo "convert's folder equals the final folder"
  else
    echo "convert under the budget FAILED:"; tail -5 "$OUT/budget-convert.log"; exit 1
  fi
else
  echo "training under the budget FAILED:"; cat "$OUT/budget.txt" 2>/dev/null; tail -5 "$OUT/budget-train.log"; exit 1
fi
