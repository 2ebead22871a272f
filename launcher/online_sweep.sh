#!/usr/bin/env bash
# The on-policy experiment (docs/scaling-experiment.md, "On-policy"): sets up, builds, and
# runs launcher/online_sweep.py. Finished rounds are reused, so an interrupted sweep
# continues where it stopped.
#   bash launcher/online_sweep.sh [--seeds 0 1 2] [--rounds 3] [--only rsft dpo ...]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
. "$ROOT/scripts/setup.sh" > /dev/null
cd "$ROOT"
cargo build -q --release -p rpo-shard
# A copy of the binary, so a rebuild during the sweep cannot change it mid-way.
mkdir -p target/online-sweep
cp target/release/rpo-shard target/online-sweep/rpo-shard
RPO_SHARD_BIN="$ROOT/target/online-sweep/rpo-shard" exec python launcher/online_sweep.py "$@"
