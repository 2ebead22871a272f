#!/usr/bin/env bash
# (The runs use bag-of-words prompt embeddings: the MiniLM package is not on that machine.)
# GPU check of a prebuilt target/release/rpo-shard on a machine with PyTorch at
# /opt/torch/.venv (no Rust, no network, no MPI needed): the NCCL backend's self-test on
# one GPU, then 20 bf16 training steps with their tokens/s, then ZeRO stage 3 in bf16 on a
# Qwen2.5-0.5B-shaped model with the final save, a checkpoint and convert (not yet run on
# a GPU: no machine was lent when it was added). Every step runs even when an
# earlier one fails; the summary lists PASS/FAIL and the exit status is 1 if any failed.
#   bash benches/gpu_check.sh        # log on stdout, and in $OUT/gpu_check.log when OUT is set
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="${RPO_SHARD:-$ROOT/target/release/rpo-shard}"
if [[ -n "${OUT:-}" ]]; then
  mkdir -p "$OUT" && exec > >(tee -a "$OUT/gpu_check.log") 2>&1
  RUN_DIR="$OUT/gpu-run"
else
  RUN_DIR="$(mktemp -d)/gpu-run"
fi
RESULTS=(); FAILED=0
step() { # step NAME CMD...: runs CMD and records whether it passed; never stops the script
  local name="$1"; shift
  echo; echo "=== $name"
  if "$@"; then RESULTS+=("PASS  $name"); else RESULTS+=("FAIL  $name (exit $?)"); FAILED=1; fi
}

PY=/opt/torch/.venv/bin/python
[[ -x "$PY" ]] || PY="$ROOT/.venv/bin/python"
TORCH="$("$PY" -c 'import torch,os;print(os.path.dirname(torch.__file__))' 2>/dev/null)"
LINK_DIR="$(mktemp -d)"; trap 'rm -rf "$LINK_DIR"' EXIT
setup() { # libtorch from the wheel; cudarc opens "libnccl.so", the wheel ships libnccl.so.2
  [[ -n "$TORCH" ]] || { echo "no importable torch at /opt/torch/.venv or $ROOT/.venv"; return 1; }
  local nccl; nccl="$(readlink -f "$TORCH/../nvidia/nccl/lib/libnccl.so.2")"
  [[ -f "$nccl" ]] || { echo "the torch wheel has no nvidia/nccl/lib/libnccl.so.2"; return 1; }
  ln -sf "$nccl" "$LINK_DIR/libnccl.so"
  echo "torch: $TORCH"; echo "libnccl.so -> $nccl"
  "$PY" -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda,
    "nccl", torch.cuda.nccl.version(), "gpus", torch.cuda.device_count())'
}
step "torch and libnccl.so link" setup
export LD_LIBRARY_PATH="${TORCH:+$TORCH/lib:}$LINK_DIR${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export NCCL_DEBUG="${NCCL_DEBUG:-WARN}"
echo "LD_LIBRARY_PATH=$LD_LIBRARY_PATH"

step "nvidia-smi -L" nvidia-smi -L
libs() {
  [[ -x "$BIN" ]] || { echo "no binary at $BIN (build it with cargo build --release -p rpo-shard)"; return 1; }
  ldd "$BIN" | grep -E 'torch|mpi|nccl|not found'
  if ldd "$BIN" | grep -q 'libmpi.*not found'; then
    echo "libmpi is NOT installed here, but this rpo-shard links MPI: it cannot start."
    echo "Install Open MPI (libopenmpi3) or ship a build without the rpo-comm 'mpi' feature."
  fi
  ! ldd "$BIN" | grep -q 'not found'
}
step "shared libraries (ldd)" libs
step "selftest --device cuda --backend nccl" "$BIN" selftest --device cuda --backend nccl
step "train bf16, 20 steps (tiny)" "$BIN" train --set model.device=cuda --set model.dtype=bf16 \
  --set train.steps=20 --set train.sft_warmup_steps=0 --set embedding.model=bag-of-words \
  --set "out_dir=$RUN_DIR"
# Timing on a Qwen2.5-0.5B-shaped model (vocab cut to the synthetic tokenizer's 512).
step "train bf16, 30 steps (qwen2.5-0.5b shape)" "$BIN" train --set model.device=cuda \
  --set model.dtype=bf16 --set model.preset=qwen2.5-0.5b --set train.steps=30 \
  --set train.sft_warmup_steps=0 --set train.micro_batch_size=64 --set train.global_batch_size=64 \
  --set eval.max_examples=0 --set embedding.model=bag-of-words --set "out_dir=$RUN_DIR-0.5b"
rate() { # tokens/s and MFU: 8N FLOPs per token (policy forward+backward 6N, reference forward 2N)
  "$PY" - "$1" "${PEAK_TFLOPS:-989}" <<'PY'
import json, math, struct, sys
run, peak = sys.argv[1], float(sys.argv[2]) * 1e12
rows = [json.loads(l) for l in open(f"{run}/metrics.jsonl") if l.strip()]
assert rows, "metrics.jsonl has no steps"
with open(f"{run}/model/model.safetensors", "rb") as f:
    header = json.loads(f.read(struct.unpack("<Q", f.read(8))[0]))
n = sum(math.prod(v["shape"]) for k, v in header.items() if k != "__metadata__")
def tps(rs): return sum(r["tokens"] for r in rs) / sum(r["step_time_s"] for r in rs)
warm = rows[1:] or rows
print(f"{run}: {n/1e6:.1f}M parameters, {len(rows)} steps, loss {rows[0]['loss']:.4f} -> {rows[-1]['loss']:.4f}")
print(f"step time {sum(r['step_time_s'] for r in warm)/len(warm)*1e3:.1f} ms, tokens/s {tps(warm):.0f} "
      f"(without step 1), MFU {8*n*tps(warm)/peak*100:.2f}% of {peak/1e12:.0f} TFLOPS bf16")
assert all(math.isfinite(r["loss"]) for r in rows), "a loss is not finite"
PY
}
step "tokens/s and MFU (tiny)" rate "$RUN_DIR"
step "tokens/s and MFU (0.5b shape)" rate "$RUN_DIR-0.5b"
# ZeRO stage 3 in bf16 on the same shape (gradients summed in fp32, the default
# reduce_dtype), the final save unit by unit, a checkpoint, and convert to bf16.
step "plan (qwen2.5-0.5b shape, stage 3, 1 GPU)" "$BIN" plan --model qwen2.5-0.5b --ranks 1 \
  --gpu-mem 80GiB --set model.device=cuda --set model.dtype=bf16 --set zero.stage=3 \
  --set train.micro_batch_size=64 --set train.global_batch_size=64
step "train bf16 stage 3, 10 steps (qwen2.5-0.5b shape) + save" "$BIN" train --set model.device=cuda \
  --set model.dtype=bf16 --set model.preset=qwen2.5-0.5b --set zero.stage=3 --set train.steps=10 \
  --set train.sft_warmup_steps=0 --set train.micro_batch_size=64 --set train.global_batch_size=64 \
  --set eval.max_examples=0 --set embedding.model=bag-of-words --set checkpoint.at_end=true \
  --set "out_dir=$RUN_DIR-0.5b-z3"
step "tokens/s and MFU (0.5b shape, stage 3)" rate "$RUN_DIR-0.5b-z3"
step "convert the stage-3 checkpoint to bf16" "$BIN" convert \
  --checkpoint "$RUN_DIR-0.5b-z3/checkpoints" --out "$RUN_DIR-0.5b-z3/converted" --dtype bf16

echo; echo "=== summary"; printf '%s\n' "${RESULTS[@]}"
exit "$FAILED"
