#!/usr/bin/env bash
# Set up what is missing, build rpo-shard, and run the main job on the embedded default
# (tiny Llama, built-in synthetic preference suite). Extra arguments go to `rpo-shard train`.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
. "$ROOT/scripts/setup.sh"
cd "$ROOT"
cargo build --release -p rpo-shard
# One process until the multi-process runtime lands; then this becomes `mpirun -n 2`.
exec target/release/rpo-shard train "$@"
