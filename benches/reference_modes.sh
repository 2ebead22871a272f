#!/usr/bin/env bash
# The frozen reference's share of memory and time, per reference.mode, on a ~270M
# Llama under ZeRO-3 on 2 ranks (fp32, CPU): the same step as benches/zero_memory.sh
# plus a reference forward. "none" is what `precomputed` costs during training (a
# table lookup; the reference's work moved to `rpo-shard precompute-ref`).
#   bash benches/reference_modes.sh [--layers 16] [--ranks 2] [--steps 3]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
. "$ROOT/scripts/setup.sh" > /dev/null
cd "$ROOT"
LAYERS=16; RANKS=2; STEPS=3
while [[ $# -gt 0 ]]; do
  case "$1" in --layers) LAYERS="$2"; shift 2 ;; --ranks) RANKS="$2"; shift 2 ;;
    --steps) STEPS="$2"; shift 2 ;; *) echo "unknown $1"; exit 2 ;; esac
done
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 MALLOC_MMAP_THRESHOLD_=1048576
cargo bench -q -p rpo-zero --bench zero_memory --no-run 2>/dev/null
BIN=$(ls -t target/release/deps/zero_memory-* | grep -v '\.d$' | head -1)
OUT="$ROOT/target/bench-reference"; mkdir -p "$OUT"; : > "$OUT/runs.jsonl"
for mode in none live sharded offload; do
  mpirun -n "$RANKS" --oversubscribe -x MALLOC_MMAP_THRESHOLD_ "$BIN" --stage 3 --reference "$mode" \
    --layers "$LAYERS" --hidden 1024 --intermediate 2816 --heads 16 --kv-heads 16 --vocab 32000 \
    --batch 1 --seq 64 --steps "$STEPS" >> "$OUT/runs.jsonl"
done
python3 - "$OUT/runs.jsonl" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{") and json.loads(l)["rank"] == 0]
r0 = rows[0]
print(f"Llama, {r0['params']/1e6:.0f}M parameters, fp32, ZeRO-3 on {r0['ranks']} ranks (CPU: device and host memory are the same here), "
      f"1 × 64 tokens per rank per step; rank 0.\n")
print("| reference.mode | reference weights on this rank (MiB) | resident after step 1 (MiB) | peak resident (MiB) | reference forward (s) | step (s) | reference share of the step |")
print("|---|---|---|---|---|---|---|")
for r in rows:
    mode = "none (= precomputed)" if r["reference"] == "none" else r["reference"]
    share = r["median_reference_s"] / r["median_step_s"]
    print(f"| {mode} | {r['reference_mib']:.0f} | {r['rss_after_first_step_mib']:.0f} | {r['peak_rss_mib']:.0f} | "
          f"{r['median_reference_s']:.2f} | {r['median_step_s']:.2f} | {share:.0%} |")
PY
