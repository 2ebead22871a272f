#!/usr/bin/env bash
# The on-policy experiment (docs/scaling-experiment.md, "On-policy"): sets up, builds, and
# runs launcher/online_sweep.py twice from one start model: with the paper's loss settings
# (β 0.1, RPO τ 0.5 paired / 0.75 unpaired) and with the settings the pilot grid found
# best (β 2, τ 0.1). Finished rounds are reused, so an interrupted sweep continues where
# it stopped. Extra arguments go to both runs:
#   bash launcher/online_sweep.sh [--seeds 0 1 2] [--rounds 3] [--only rsft dpo ...]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
. "$ROOT/scripts/setup.sh" > /dev/null
cd "$ROOT"
cargo build -q --release -p rpo-shard
# A copy of the binary, so a rebuild during the sweep cannot change it mid-way.
RUNS=target/online-sweep
mkdir -p "$RUNS"
cp target/release/rpo-shard "$RUNS/rpo-shard"
export RPO_SHARD_BIN="$ROOT/$RUNS/rpo-shard"
COMMON=(--start "$RUNS/start" --lr 3e-5 --prompts 512)
start=$(date +%s)
python launcher/online_sweep.py "${COMMON[@]}" --beta 2 --tau-paired 0.1 --tau-unpaired 0.1 \
  --runs "$RUNS/tuned" --out docs/online-sweep-tuned "$@"
python launcher/online_sweep.py "${COMMON[@]}" --runs "$RUNS/paper" --out docs/online-sweep-paper "$@"
echo "online sweep: $(( ($(date +%s) - start) / 60 )) min in all" >&2
