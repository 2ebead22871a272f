#!/usr/bin/env bash
# Set up what is missing and run every test: Rust unit and integration tests, each
# numerical test checked against its Python peer (PyTorch, transformers) in .venv.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
. "$ROOT/scripts/setup.sh"
cd "$ROOT"
cargo test --workspace --release "$@"
# Benchmarks are not run here, but they must keep compiling.
cargo bench --workspace --no-run -q
