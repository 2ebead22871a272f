#!/usr/bin/env bash
# The scaling experiment (global vs grouped vs per-GPU contrast, baselines, weightings) on
# the synthetic suite: sets up, builds, runs launcher/sweep.py. Finished runs under
# target/sweep are reused, so an interrupted sweep continues.
#   bash launcher/sweep.sh [--steps 100] [--seeds 0 1] [--out docs/scaling-sweep]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
. "$ROOT/scripts/setup.sh" > /dev/null
cd "$ROOT"
cargo build -q --release -p rpo-shard
python launcher/sweep.py "$@"
