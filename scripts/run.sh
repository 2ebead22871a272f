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
# The demo starts over each time (--overwrite replaces the previous run in runs/default);
# with --resume among the arguments it continues instead.
case " $* " in *" --resume "*) FRESH=() ;; *) FRESH=(--overwrite) ;; esac
# --oversubscribe: more ranks than cores is allowed (slower, never refused).
exec mpirun -n "$RANKS" --oversubscribe target/release/rpo-shard train "${FRESH[@]}" "$@"
