#!/usr/bin/env bash
# The collective watchdog's cost per step at W = 4 (docs/bench-faults.md): the same short
# run with a baseline binary (blocking MPI collectives, built from the commit before the
# watchdog) and with this one (immediate collectives polled under the deadline),
# interleaved REPEATS times per ZeRO stage. Prints the median step time of each.
#   BASE=/path/to/old/rpo-shard bash benches/watchdog_overhead.sh [REPEATS]
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
NEW="${NEW:-$ROOT/target/release/rpo-shard}"
BASE="${BASE:?set BASE to a rpo-shard binary built without the watchdog}"
REPEATS="${1:-2}"
OUT="$(mktemp -d)"; trap 'rm -rf "$OUT"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 RPO_LOG=warn
median() { python3 -c "
import json, statistics, sys
t = [json.loads(l)['step_time_s'] for l in open(sys.argv[1])][3:]  # skip warm-up steps
print(f'{statistics.median(t):.4f}')" "$1"; }
for stage in 0 3; do
  for r in $(seq "$REPEATS"); do
    for which in base new; do
      bin=$BASE; [ "$which" = new ] && bin=$NEW
      dir="$OUT/$stage-$which-$r"
      mpirun --oversubscribe -n 4 "$bin" train --set out_dir="$dir" --set zero.stage=$stage \
        --set train.steps=15 --set train.sft_warmup_steps=0 --set train.global_batch_size=64 \
        --set eval.max_examples=0 --set embedding.model=bag-of-words --set checkpoint.at_end=false >/dev/null
      echo "stage $stage  $which  run $r  median step_time_s $(median "$dir/metrics.jsonl")"
    done
  done
done
