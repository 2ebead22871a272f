#!/usr/bin/env bash
# Prompt-embedding throughput on the same distinct prompts (the synthetic suite's, 10k
# drawn), same threads and batch, in one run; Markdown table:
#   - `rpo-shard embed` itself: the whole command (wall clock, process start to the cache
#     file synced), and its own timing of encoding + writing rows (its JSON report);
#   - rpo-embed's encoder alone (benches/embed_throughput.rs);
#   - sentence-transformers' encode (benches/embed_throughput.py).
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
cargo bench -q -p rpo-embed --bench embed_throughput --no-run 2> /dev/null
target/release/rpo-shard synth --out "$OUT/data" --train "$N" --eval 1 > /dev/null
# The prompts of train.jsonl as a paired run reads them (no held-out file, so no other texts).
cat > "$OUT/embed.toml" <<TOML
out_dir = "$OUT/run"
[model]
preset = "tiny"
[data]
format = "paired"
train = "$OUT/data/train.jsonl"
[loss]
name = "rpo"
[embedding]
model = "minilm"
batch_size = $BATCH
[optim]
name = "rmsprop"
lr = 1e-5
[train]
global_batch_size = 64
micro_batch_size = 64
steps = 1
TOML
start=$(date +%s.%N)
RPO_LOG=warn target/release/rpo-shard embed --config "$OUT/embed.toml" --out "$OUT/embeddings.bin" \
  --threads "$THREADS" > "$OUT/shard.json"
end=$(date +%s.%N)
python -c "import json; print(json.dumps({'wall_seconds': $end - $start}))" > "$OUT/shard_wall.json"
cargo bench -q -p rpo-embed --bench embed_throughput -- --jsonl "$OUT/data/train.jsonl" \
  --batch "$BATCH" --threads "$THREADS" > "$OUT/rust.json"
python benches/embed_throughput.py --jsonl "$OUT/data/train.jsonl" --batch "$BATCH" \
  --threads "$THREADS" > "$OUT/python.json"
python - "$OUT"/{shard,shard_wall,rust,python}.json <<'PY'
import json, sys
s, w, r, p = (json.loads(open(f).read().strip().splitlines()[-1]) for f in sys.argv[1:5])
assert s["texts"] == r["sentences"] == p["sentences"], (s["texts"], r["sentences"], p["sentences"])
n = s["texts"]
print(f"{n} distinct prompts of the synthetic suite, {r['mean_tokens']:.1f} tokens on average; "
      f"batch {r['batch']}, {r['threads']} threads, fp32 CPU\n")
print("| implementation | what is timed | seconds | sentences/s |\n|---|---|---|---|")
rows = [
    ("`rpo-shard embed`", "whole command: start, data, model load, encode, write, fsync", w["wall_seconds"]),
    ("`rpo-shard embed`", "its own report: encode + write rows", s["embed_seconds"]),
    ("rpo-embed encoder", "`SentenceEncoder::encode` on all prompts", r["seconds"]),
    ("sentence-transformers", "`SentenceTransformer.encode` on all prompts", p["seconds"]),
]
for name, what, sec in rows:
    print(f"| {name} | {what} | {sec:.2f} | {n / sec:.0f} |")
print(f"\n`rpo-shard embed` (own report) / sentence-transformers throughput: "
      f"**{s['sentences_per_s'] / p['sentences_per_s']:.2f}**; "
      f"of its wall time, {s['collect_seconds']:.2f} s went to reading the data and "
      f"{s['load_model_seconds']:.2f} s to loading the model")
PY
