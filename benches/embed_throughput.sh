#!/usr/bin/env bash
# Prompt-embedding throughput, rpo-embed vs sentence-transformers, same prompts (the
# synthetic suite's, 10k by default), same threads and batch, in one run; Markdown table.
#   bash benches/embed_throughput.sh [--n 10000] [--threads 2] [--batch 64]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
. "$ROOT/scripts/setup.sh" > /dev/null
cd "$ROOT"
N=10000; THREADS=2; BATCH=64
while [[ $# -gt 0 ]]; do
  case "$1" in --n) N="$2"; shift 2 ;; --threads) THREADS="$2"; shift 2 ;; --batch) BATCH="$2"; shift 2 ;; *) echo "unknown $1"; exit 2 ;; esac
done
OUT="$ROOT/target/bench-embed"; mkdir -p "$OUT"
cargo build -q --release -p rpo-shard
target/release/rpo-shard synth --out "$OUT/data" --train "$N" --eval 1 > /dev/null
cargo bench -q -p rpo-embed --bench embed_throughput -- --jsonl "$OUT/data/train.jsonl" \
  --batch "$BATCH" --threads "$THREADS" > "$OUT/rust.json"
python benches/embed_throughput.py --jsonl "$OUT/data/train.jsonl" --batch "$BATCH" \
  --threads "$THREADS" > "$OUT/python.json"
python - "$OUT/rust.json" "$OUT/python.json" <<'PY'
import json, sys
r, p = (json.loads(open(f).read().strip().splitlines()[-1]) for f in sys.argv[1:3])
print(f"{r['sentences']} prompts of the synthetic suite, {r['mean_tokens']:.1f} tokens on average; batch {r['batch']}, {r['threads']} threads, fp32 CPU\n")
print("| implementation | seconds | sentences/s |\n|---|---|---|")
for x in (r, p):
    print(f"| {x['impl']} | {x['seconds']:.2f} | {x['sentences_per_s']:.0f} |")
print(f"\nrpo-embed / sentence-transformers throughput: **{r['sentences_per_s'] / p['sentences_per_s']:.2f}**")
PY
