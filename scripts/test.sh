#!/usr/bin/env bash
# Set up what is missing and run every test: Rust unit and integration tests, each
# numerical test checked against its Python peer (PyTorch, transformers) in .venv.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
. "$ROOT/scripts/setup.sh"
cd "$ROOT"
# Structure checks, no compiling: no import cycle among the modules of any crate, and
# the release build leaves the test failpoints out.
python3 scripts/check_import_cycles.py crates/*/src
bash scripts/check_no_failpoints.sh
cargo test --workspace --release "$@"
# Benchmarks are not run here, but they must keep compiling.
cargo bench --workspace --no-run -q
