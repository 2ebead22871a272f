#!/usr/bin/env bash
# Set up what is missing, build rpo-shard, and run the main job on the embedded default
# (tiny Llama, built-in synthetic preference suite) on two MPI ranks with the global
# contrast matrix. Extra arguments go to `rpo-shard train`; RANKS=N changes the rank count.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
. "$ROOT/scripts/setup.sh"
cd "$ROOT"
cargo build --release -p rpo-shard
bash scripts/check_no_failpoints.sh target/release/rpo-shard
RANKS="${RANKS:-2}"
# --oversubscribe: more ranks than cores is allowed (slower, never refused).
exec mpirun -n "$RANKS" --oversubscribe target/release/rpo-shard train "$@"
