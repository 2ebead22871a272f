#!/usr/bin/env bash
# One RPO training step: rpo-shard vs the same step in PyTorch (transformers' Llama), on
# the same model weights, batch and thread count, in one run. Prints a Markdown table.
#   bash benches/train_step_vs_pytorch.sh [--preset small|100m] [--batch 8] [--seq 128]
#        [--lengths fixed|hh] [--threads 2] [--steps 10] [--warmup 2] [--breakdown true]
# rpo-shard runs once per layout in LAYOUTS (default "padded shared shared+packed"), the
# PyTorch step (padded [2B, T], logits everywhere) after the first, so the runs interleave.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
[ -n "${RPO_SHARD_NO_SETUP:-}" ] || . "$ROOT/scripts/setup.sh"
cd "$ROOT"
OUT="$ROOT/target/bench-train-step"
THREADS=2; STEPS=10; WARMUP=2; BREAKDOWN=true
ARGS=("$@")
for ((i = 0; i < ${#ARGS[@]}; i++)); do
  case "${ARGS[$i]}" in
    --threads) THREADS="${ARGS[$((i + 1))]}" ;;
    --steps) STEPS="${ARGS[$((i + 1))]}" ;;
    --warmup) WARMUP="${ARGS[$((i + 1))]}" ;;
    --breakdown) BREAKDOWN="${ARGS[$((i + 1))]}" ;;
  esac
done
LAYOUTS=${LAYOUTS:-"padded shared shared+packed"}
RESULTS=()
n=0
for layout in $LAYOUTS; do
  case "$layout" in
    padded) flags=(--share-prompt false --pack false) ;;
    shared) flags=(--share-prompt true --pack false) ;;
    packed) flags=(--share-prompt false --pack true) ;;
    shared+packed) flags=(--share-prompt true --pack true) ;;
    *) echo "unknown layout $layout" >&2; exit 2 ;;
  esac
  cargo bench -q -p rpo-train --bench train_step -- --out "$OUT" "$@" "${flags[@]}" > "$OUT.rust-$layout.json"
  RESULTS+=("$OUT.rust-$layout.json")
  n=$((n + 1))
  if [ $n = 1 ]; then
    python benches/train_step_pytorch.py --dir "$OUT" --threads "$THREADS" --steps "$STEPS" --warmup "$WARMUP" \
      --breakdown "$([ "$BREAKDOWN" = true ] && echo 1 || echo 0)" > "$OUT.torch.json"
  fi
done
python - "$OUT.torch.json" "${RESULTS[@]}" <<'PY'
import json, sys
t, *rs = (json.loads(open(p).read().strip().splitlines()[-1]) for p in sys.argv[1:])
r0 = rs[0]
t["flops_step"], t["tokens_computed"], t["layout"] = r0["flops_step_padded_full_head"], r0["padded_tokens"], "padded, logits at every position"
print(f"model: preset {r0['preset']}, {r0['params']/1e6:.1f}M parameters; batch {r0['batch_pairs']} pairs, lengths {r0['lengths']}"
      f" ({r0['tokens']} real tokens, {r0['padded_tokens']} padded positions); {r0['threads']} threads; median of {r0['steps']} steps\n")
print("| implementation | layout | median step (s) | real tokens/s | positions computed | GFLOP/step | policy fwd (s) | policy fwd+bwd (s) | loss at step 1 | step / PyTorch |")
print("|---|---|---|---|---|---|---|---|---|---|")
def layout(x):
    if "layout" in x: return x["layout"]
    parts = ["response-only logits"] + (["shared prompt"] if x["share_prompt"] else []) + (["packed"] if x["pack"] else [])
    return ", ".join(parts)
def sec(v):  # NaN (not measured) arrives as null from Rust, nan from Python
    return "—" if v is None or v != v else f"{v:.4f}"
for x in [t] + rs:
    print(f"| {x['impl']} | {layout(x)} | {x['median_step_s']:.4f} | {x['tokens_per_s']:.0f} | {x['tokens_computed']} | {x['flops_step']/1e9:.1f} |"
          f" {sec(x['forward_s'])} | {sec(x['forward_backward_s'])} | {x['first_loss']:.6f} | {x['median_step_s'] / t['median_step_s']:.3f} |")
PY
