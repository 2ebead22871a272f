#!/usr/bin/env bash
# The release binary holds no failpoint code: rpo-storage's `failpoints` feature (the
# test-only aborts triggered by RPO_SHARD_FAILPOINT) is turned on only by the tests'
# dev-dependency. With a binary path, checks the binary itself (its strings); without,
# checks the build graph of `cargo build --release -p rpo-shard` (no compiling).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
if [ $# -gt 0 ]; then
  if grep -a -q RPO_SHARD_FAILPOINT "$1"; then
    echo "error: $1 holds failpoint code (RPO_SHARD_FAILPOINT): was it built by cargo test?" >&2
    exit 1
  fi
  echo "no failpoint code in $1"
else
  if cargo tree -q -p rpo-shard -e normal,build,features -i rpo-storage | grep -q '"failpoints"'; then
    echo "error: the release build of rpo-shard turns on rpo-storage/failpoints" >&2
    exit 1
  fi
  echo "the release build of rpo-shard leaves rpo-storage/failpoints off"
fi
