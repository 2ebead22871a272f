#!/usr/bin/env bash
# `[zero] overlap` on the CPU (MPI immediate collectives): step time and the time rank 0's
# forwards and backwards spend in ZeRO collective calls (`zero_wait_s`), with overlap on
# and off, stages 2 and 3, at W = 2 and 4 (4 ranks on a 2-core machine are
# oversubscribed). On/off runs alternate, `--reps` times each, so drift hits both alike.
# Writes docs/bench-overlap.md (the command, the table, the machine).
#   bash benches/overlap.sh [--steps 6] [--reps 2] [--hidden 1024] [--layers 4] [--out docs/bench-overlap.md]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
. "$ROOT/scripts/setup.sh" > /dev/null
cd "$ROOT"
STEPS=6; REPS=2; HIDDEN=1024; LAYERS=4; DOC="$ROOT/docs/bench-overlap.md"
ARGS="$*"
while [[ $# -gt 0 ]]; do
  case "$1" in --steps) STEPS="$2"; shift 2 ;; --reps) REPS="$2"; shift 2 ;;
    --hidden) HIDDEN="$2"; shift 2 ;; --layers) LAYERS="$2"; shift 2 ;;
    --out) DOC="$2"; shift 2 ;; *) echo "unknown $1"; exit 2 ;; esac
done
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
cargo build -q --release -p rpo-shard
BIN="$ROOT/target/release/rpo-shard"
OUT="$ROOT/target/bench-overlap"; rm -rf "$OUT"; mkdir -p "$OUT"

# An untied Llama of HIDDEN × LAYERS on the synthetic suite's 512-token vocabulary:
# large units (communication visible) and short sequences (little compute per byte).
"$BIN" init-model --preset tiny --out "$OUT/base" > /dev/null
python3 - "$OUT/base/config.json" "$OUT/shape.json" "$HIDDEN" "$LAYERS" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
h, l = int(sys.argv[3]), int(sys.argv[4])
c.update(hidden_size=h, intermediate_size=h * 11 // 4, num_hidden_layers=l,
         num_attention_heads=h // 64, num_key_value_heads=h // 64, tie_word_embeddings=False)
json.dump(c, open(sys.argv[2], "w"), indent=2)
PY
"$BIN" init-model --config "$OUT/shape.json" --out "$OUT/model" > /dev/null

: > "$OUT/runs.jsonl"
for rep in $(seq "$REPS"); do
  for ranks in 2 4; do
    for stage in 2 3; do
      for overlap in true false; do
        dir="$OUT/r$rep-w$ranks-s$stage-$overlap"
        # 1 example (2 sequences) per rank per micro-batch, 2 micro-batches per step.
        mpirun -n "$ranks" --oversubscribe "$BIN" train \
          --set out_dir="$dir" --set model.preset= --set model.path="$OUT/model" --set model.dtype=fp32 \
          --set zero.stage="$stage" --set zero.overlap="$overlap" \
          --set train.micro_batch_size=1 --set train.global_batch_size=$((2 * ranks)) \
          --set train.steps="$STEPS" --set train.sft_warmup_steps=0 \
          --set data.synthetic_train=256 --set eval.max_examples=0 \
          --set embedding.model=bag-of-words --set checkpoint.at_end=false \
          --set optim.warmup_steps=0 > "$dir.log" 2>&1 || { cat "$dir.log"; exit 1; }
        python3 - "$dir/metrics.jsonl" "$rep" "$ranks" "$stage" "$overlap" >> "$OUT/runs.jsonl" <<'PY'
import json, sys
m = [json.loads(l) for l in open(sys.argv[1])][1:]  # the first step warms up
print(json.dumps(dict(rep=int(sys.argv[2]), ranks=int(sys.argv[3]), stage=int(sys.argv[4]),
                      overlap=sys.argv[5] == "true", steps=[x["step_time_s"] for x in m],
                      waits=[x["zero_wait_s"] for x in m], bytes=m[0]["zero_bytes"])))
PY
      done
    done
  done
done

python3 - "$OUT/runs.jsonl" "$OUT/shape.json" "$STEPS" "$REPS" "bash benches/overlap.sh $ARGS" > "$DOC" <<'PY'
import json, os, statistics, sys, datetime
rows = [json.loads(l) for l in open(sys.argv[1])]
shape = json.load(open(sys.argv[2]))
steps, reps, cmd = sys.argv[3], sys.argv[4], sys.argv[5]
params = shape["vocab_size"] * shape["hidden_size"] * 2 + shape["num_hidden_layers"] * (
    4 * shape["hidden_size"] ** 2 + 3 * shape["hidden_size"] * shape["intermediate_size"])
med = statistics.median
print("# ZeRO communication overlap on the CPU (`[zero] overlap`)\n")
print(f"Command: `{cmd}` (written by the script; {datetime.date.today()}).\n")
print(f"Model: untied Llama, hidden {shape['hidden_size']}, {shape['num_hidden_layers']} layers, "
      f"MLP {shape['intermediate_size']}, vocab {shape['vocab_size']} (≈{params / 1e6:.0f}M parameters, "
      f"fp32, {params * 4 / 2**20:.0f} MiB); synthetic suite (sequences ≤ 64 tokens), RPO, "
      f"1 example per rank per micro-batch, 2 micro-batches per step, RMSprop. "
      f"{steps} steps per run, the first dropped; {reps} repetitions, on/off alternating. "
      f"Machine: {os.cpu_count()} CPU cores, Open MPI over shared memory on one host; "
      "4 ranks on 2 cores are oversubscribed (each rank gets half a core).\n")
print("`wait` is rank 0's `zero_wait_s`: the seconds its policy forwards and backwards spent "
      "in ZeRO collective calls per step (starting, testing and waiting for parameter "
      "all-gathers and gradient reduce-scatters; not the optimizer step's all-gathers). "
      "Medians over the steps of all repetitions.\n")
print("| W | stage | MB moved / step / rank | step off (s) | step on (s) | on ÷ off | wait off (s) | wait on (s) | wait hidden |")
print("|---|---|---|---|---|---|---|---|---|")
for ranks in (2, 4):
    for stage in (2, 3):
        sel = lambda ov: [r for r in rows if r["ranks"] == ranks and r["stage"] == stage and r["overlap"] == ov]
        on, off = sel(True), sel(False)
        s_on = med([s for r in on for s in r["steps"]]); s_off = med([s for r in off for s in r["steps"]])
        w_on = med([s for r in on for s in r["waits"]]); w_off = med([s for r in off for s in r["waits"]])
        hidden = f"{(w_off - w_on) / w_off:.0%}" if w_off > 0 else "–"
        print(f"| {ranks} | {stage} | {on[0]['bytes'] / 1e6:.0f} | {s_off:.3f} | {s_on:.3f} | {s_on / s_off:.3f} | "
              f"{w_off:.3f} | {w_on:.3f} | {hidden} |")
print("\nPer repetition (median step s, off → on):\n")
for ranks in (2, 4):
    for stage in (2, 3):
        parts = []
        for rep in sorted({r["rep"] for r in rows}):
            g = {r["overlap"]: med(r["steps"]) for r in rows if r["ranks"] == ranks and r["stage"] == stage and r["rep"] == rep}
            parts.append(f"{g[False]:.3f} → {g[True]:.3f}")
        print(f"- W = {ranks}, stage {stage}: " + "; ".join(parts))
PY
echo "wrote $DOC"
cat "$DOC"
