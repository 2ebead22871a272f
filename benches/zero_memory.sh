#!/usr/bin/env bash
# ZeRO stages 0–3 on 1, 2 and 4 ranks: per-rank state memory against the formula, step
# time and bytes per step, on a ~270M-parameter Llama (fp32, CPU); then the same model
# under a hard per-rank memory budget (a cgroup per rank), where stage 3 trains and
# stage 0 cannot. Prints Markdown (docs/bench-zero-memory.md holds a run).
#   bash benches/zero_memory.sh [--layers 16] [--budget-gib 2] [--steps 3]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
. "$ROOT/scripts/setup.sh" > /dev/null
cd "$ROOT"
LAYERS=16; BUDGET_GIB=2; STEPS=3
while [[ $# -gt 0 ]]; do
  case "$1" in --layers) LAYERS="$2"; shift 2 ;; --budget-gib) BUDGET_GIB="$2"; shift 2 ;;
    --steps) STEPS="$2"; shift 2 ;; *) echo "unknown $1"; exit 2 ;; esac
done
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
# Large buffers come from mmap and go back to the system when freed, so resident memory
# tracks the live tensors rather than the allocator's high-water mark.
export MALLOC_MMAP_THRESHOLD_=1048576
cargo bench -q -p rpo-zero --bench zero_memory --no-run 2>/dev/null
BIN=$(ls -t target/release/deps/zero_memory-* | grep -v '\.d$' | head -1)
SHAPE=(--layers "$LAYERS" --hidden 1024 --intermediate 2816 --heads 16 --kv-heads 16 --vocab 32000 --batch 1 --seq 64 --steps "$STEPS")
OUT="$ROOT/target/bench-zero"; mkdir -p "$OUT"; : > "$OUT/runs.jsonl"
launch() { # ranks, then the rest
  local n="$1"; shift
  if [[ "$n" == 1 ]]; then "$@"; else mpirun -n "$n" --oversubscribe -x MALLOC_MMAP_THRESHOLD_ "$@"; fi
}
for run in "0 1" "0 2" "1 2" "2 2" "3 2" "0 4" "1 4" "2 4" "3 4"; do
  set -- $run
  launch "$2" "$BIN" --stage "$1" "${SHAPE[@]}" >> "$OUT/runs.jsonl"
done
python3 - "$OUT/runs.jsonl" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
r0 = rows[0]
print(f"Llama, {r0['params']/1e6:.0f}M parameters (Ψ), fp32 compute and master (one copy), RMSprop; "
      f"1 × 64 tokens per rank per step; CPU, 2 cores shared by all ranks.\n")
print("| stage | ranks | formula state / rank (MiB) | state tensors / rank (MiB) | resident growth after step 1 (MiB) | growth ÷ formula | peak resident (MiB) | step (s) | bytes / step / rank | ÷ Ψ·4 B |")
print("|---|---|---|---|---|---|---|---|---|---|")
for r in rows:
    if r["rank"] != 0:
        continue
    growth = r["rss_after_first_step_mib"] - r["rss_before_model_mib"]
    psi_bytes = r["padded_params"] * 4
    print(f"| {r['stage']} | {r['ranks']} | {r['expected_state_mib']:.0f} | {r['measured_state_mib']:.0f} | {growth:.0f} | "
          f"{growth / r['expected_state_mib']:.2f} | {r['peak_rss_mib']:.0f} | {r['median_step_s']:.2f} | "
          f"{r['zero_bytes_per_step']:,} | {r['zero_bytes_per_step'] / psi_bytes:.3f} |")
PY
echo
echo "Per-rank budget $BUDGET_GIB GiB (memory cgroup per rank), 4 ranks:"
echo
LIMIT=$((BUDGET_GIB * 1024 * 1024 * 1024))
for stage in 0 3; do
  if launch 4 bash benches/memory_cgroup.sh "$LIMIT" "$BIN" --stage "$stage" "${SHAPE[@]}" > "$OUT/budget-$stage.jsonl" 2> "$OUT/budget-$stage.err"; then
    python3 -c "import json,sys; r=[json.loads(l) for l in open(sys.argv[1]) if l.startswith('{')]; print(f'- stage $stage: trained; peak resident {max(x[\"peak_rss_mib\"] for x in r):.0f} MiB on the largest rank, state {r[0][\"expected_state_mib\"]:.0f} MiB per rank')" "$OUT/budget-$stage.jsonl"
  else
    echo "- stage $stage: did not fit: $(grep -o 'exit [0-9]*' "$OUT/budget-$stage.err" | head -1) (stage 0 keeps the whole fp32 state, about 12 bytes per parameter, on every rank)"
  fi
done
