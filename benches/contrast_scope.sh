#!/usr/bin/env bash
# Global vs local contrast, in one run:
#  1. training step time of the tiny model with `local` and `global` scope at W = 1, 2, 4;
#  2. the contrast computation alone as the global matrix grows to 16k rows, row-partitioned
#     vs replicated: time per call and peak memory per rank.
# Prints Markdown tables (docs/bench-contrast-scope.md holds a recorded run).
#   bash benches/contrast_scope.sh [--steps 40] [--repeats 3] [--max-rows 16384] [--ranks "1 2 4"] [--only train|contrast]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
. "$ROOT/scripts/setup.sh" > /dev/null
cd "$ROOT"
STEPS=40; MAX_ROWS=16384; RANKS="1 2 4"; REPEATS=3; PARTS="train contrast"
while [[ $# -gt 0 ]]; do
  case "$1" in --steps) STEPS="$2"; shift 2 ;; --max-rows) MAX_ROWS="$2"; shift 2 ;; --ranks) RANKS="$2"; shift 2 ;; --repeats) REPEATS="$2"; shift 2 ;; --only) PARTS="$2"; shift 2 ;; *) echo "unknown $1"; exit 2 ;; esac
done
OUT="$ROOT/target/bench-contrast-scope"; rm -rf "$OUT"; mkdir -p "$OUT"
cargo build -q --release -p rpo-shard
cargo bench -q -p rpo-contrast --bench contrast_scaling --no-run
BENCH="$(cargo bench -q -p rpo-contrast --bench contrast_scaling --no-run --message-format=json 2>/dev/null \
  | python -c 'import json,sys; print([j["executable"] for j in map(json.loads, sys.stdin) if j.get("executable") and "contrast_scaling" in j["executable"]][-1])')"
launch() { # launch W cmd...: one process without mpirun, else mpirun -n W
  local w="$1"; shift
  if [[ "$w" == 1 ]]; then RPO_LOG=warn "$@"; else RPO_LOG=warn mpirun -n "$w" --oversubscribe "$@"; fi
}

if [[ "$PARTS" == *train* ]]; then
echo "## Training step, tiny model: local vs global contrast"
echo
echo "$(nproc) cores; paired RPO, embedding weighting, 8 pairs per rank per micro-batch, global batch 8·W; each run's median step time after step 1 ($STEPS steps); local and global runs alternate, $REPEATS of each; the table shows the median run and the range."
echo
echo "| ranks | local (s) | global (s) | global / local (median runs) | local range (s) | global range (s) |"
echo "|---|---|---|---|---|---|"
for w in $RANKS; do
  declare -A T=([local]="" [global]="")
  for ((rep = 1; rep <= REPEATS; rep++)); do
    for scope in local global; do
      dir="$OUT/train-w$w-$scope-$rep"
      launch "$w" target/release/rpo-shard train --set "out_dir=$dir" --set train.steps="$STEPS" \
        --set train.sft_warmup_steps=0 --set eval.max_examples=0 --set train.save_model=false \
        --set train.micro_batch_size=8 --set train.global_batch_size=$((8 * w)) \
        --set contrast.scope=$scope --set data.synthetic_train=1024 > /dev/null
      T[$scope]+=" $(python -c 'import json,sys,statistics as s; r=[json.loads(l)["step_time_s"] for l in open(sys.argv[1])][1:]; print(s.median(r))' "$dir/metrics.jsonl")"
    done
  done
  python - "$w" "${T[local]}" "${T[global]}" <<'PY'
import statistics as s, sys
w, l, g = sys.argv[1], [float(x) for x in sys.argv[2].split()], [float(x) for x in sys.argv[3].split()]
ml, mg = s.median(l), s.median(g)
print(f"| {w} | {ml:.4f} | {mg:.4f} | {mg/ml:.3f} | {min(l):.4f}–{max(l):.4f} | {min(g):.4f}–{max(g):.4f} |")
PY
done
fi
if [[ "$PARTS" == *contrast* ]]; then
echo
echo "## The contrast computation alone: row-partitioned vs replicated"
echo
echo "Paired, embedding weighting (dim 384), fp32 CPU, loss + gradients of the whole global matrix; median of 3 calls; peak RSS of the largest rank (the process's whole footprint, libtorch included)."
echo
echo "| ranks | rows (global) | row-partitioned (s) | replicated (s) | speed-up | row-partitioned peak RSS (MiB) | replicated peak RSS (MiB) |"
echo "|---|---|---|---|---|---|---|"
for w in 2 4; do
  rows=1024
  while (( rows <= MAX_ROWS )); do
    rp="$(launch "$w" "$BENCH" --rows "$rows" --form row-partitioned)"
    # The replicated form holds W copies of a rows² matrix and its graph: skip where it cannot fit.
    if (( w * rows * rows * 4 * 6 < 20 * 1024 * 1024 * 1024 )); then
      re="$(launch "$w" "$BENCH" --rows "$rows" --form replicated)"
    else
      re='{"median_s": null, "peak_rss_bytes_max_rank": null}'
    fi
    python - "$w" "$rows" "$rp" "$re" <<'PY'
import json, sys
w, rows, rp, re = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), json.loads(sys.argv[4])
mib = lambda b: "n/a (would not fit)" if b is None else f"{b / 2**20:.0f}"
sec = lambda s: "n/a" if s is None else f"{s:.4f}"
ratio = "n/a" if re["median_s"] is None else f"{re['median_s'] / rp['median_s']:.1f}x"
print(f"| {w} | {rows} | {sec(rp['median_s'])} | {sec(re['median_s'])} | {ratio} | {mib(rp['peak_rss_bytes_max_rank'])} | {mib(re['peak_rss_bytes_max_rank'])} |")
PY
    rows=$((rows * 2))
  done
done
fi
