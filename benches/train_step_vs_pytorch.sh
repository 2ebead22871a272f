#!/usr/bin/env bash
# One RPO training step: rpo-shard vs the same step in PyTorch (transformers' Llama), on
# the same model weights, batch and thread count, in one run. Prints a Markdown table.
#   bash benches/train_step_vs_pytorch.sh [--preset small] [--batch 8] [--seq 128] [--threads 2]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
. "$ROOT/scripts/setup.sh"
cd "$ROOT"
OUT="$ROOT/target/bench-train-step"
THREADS=2; STEPS=10
ARGS=("$@")
for ((i = 0; i < ${#ARGS[@]}; i++)); do
  case "${ARGS[$i]}" in --threads) THREADS="${ARGS[$((i + 1))]}" ;; --steps) STEPS="${ARGS[$((i + 1))]}" ;; esac
done
cargo bench -q -p rpo-train --bench train_step -- --out "$OUT" "$@" > "$OUT.rust.json"
python benches/train_step_pytorch.py --dir "$OUT" --threads "$THREADS" --steps "$STEPS" > "$OUT.torch.json"
python - "$OUT.rust.json" "$OUT.torch.json" <<'PY'
import json, sys
r, t = (json.loads(open(p).read().strip().splitlines()[-1]) for p in sys.argv[1:3])
print(f"model: preset {r['preset']}, {r['params']/1e6:.1f}M parameters; batch {r['batch_pairs']} pairs x {r['seq']} tokens; {r['threads']} threads; median of {r['steps']} steps\n")
print("| implementation | median step (s) | tokens/s | policy forward (s) | policy forward+backward (s) | clip + optimizer (s) | loss at step 1 |")
print("|---|---|---|---|---|---|---|")
for x in (r, t):
    print(f"| {x['impl']} | {x['median_step_s']:.4f} | {x['tokens_per_s']:.0f} | {x['forward_s']:.4f} | {x['forward_backward_s']:.4f} | {x['clip_and_update_s']:.4f} | {x['first_loss']:.6f} |")
print(f"\nrpo-shard / PyTorch step-time ratio: **{r['median_step_s'] / t['median_step_s']:.3f}** (below 1 = rpo-shard faster)")
PY
