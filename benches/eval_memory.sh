#!/usr/bin/env bash
# Issue 15: evaluation under ZeRO stage 3 must not gather the model whole on any rank. The
# 271M-parameter Llama of save_under_budget.sh (fp32: 1034 MiB for the policy, the same
# again for the reference) trains one DPO step at W = 2, stage 3, with a sharded
# reference, then evaluates (greedy answers judged + reward accuracy on held-out pairs).
# Two runs in one go, each rank in a memory cgroup of its own (benches/memory_cgroup.sh,
# cgroup v1, root, no limit): evaluation off (eval.max_examples=0) and on (16 examples).
# The difference of each rank's peak is what evaluation costs; gathering the policy and
# the reference whole on rank 0 would add about 2 GiB there.
#   bash benches/eval_memory.sh
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
. "$ROOT/scripts/setup.sh" > /dev/null
cd "$ROOT"
cargo build -q --release -p rpo-shard
BIN="$ROOT/target/release/rpo-shard"
OUT="$ROOT/target/bench-eval-memory"; rm -rf "$OUT"; mkdir -p "$OUT"
export MALLOC_MMAP_THRESHOLD_=1048576 RPO_LOG=warn
. benches/lib/model_271m.sh
W=2
run() { # examples, name
  export MEMORY_CGROUP_REPORT="$OUT/$2.txt"
  local t0=$SECONDS
  mpirun -n $W --oversubscribe -x MALLOC_MMAP_THRESHOLD_ -x RPO_LOG -x MEMORY_CGROUP_REPORT \
    bash benches/memory_cgroup.sh $((64 << 30)) "$BIN" train \
    --set model.preset= --set model.path="$OUT/start" --set reference.path="$OUT/start" \
    --set reference.mode=sharded --set out_dir="$OUT/$2" --set loss.name=dpo \
    --set zero.stage=3 --set train.steps=1 --set train.global_batch_size=2 \
    --set train.micro_batch_size=1 --set train.sft_warmup_steps=0 --set data.max_length=64 \
    --set data.max_prompt_length=32 --set data.synthetic_eval=16 --set eval.max_examples="$1" \
    --set eval.max_new_tokens=4 --set checkpoint.at_end=false --set train.save_model=false \
    --set embedding.model=bag-of-words > "$OUT/$2.log" 2>&1
  echo "$2: $((SECONDS - t0)) s"
}
run 0 eval-off
run 16 eval-on
python3 - "$OUT" <<'PY'
import json, sys
out = sys.argv[1]
peak = {}
for name in ("eval-off", "eval-on"):
    for line in open(f"{out}/{name}.txt"):
        rank, p, rc = line.split()
        assert rc == "0", f"{name} rank {rank} exit {rc}"
        peak[(name, int(rank))] = int(p) / 2**20
evals = json.load(open(f"{out}/eval-on/summary.json"))["evals"]
final = [e for e in evals if e["at"] == "final"][0]
print(f"eval-on final: judged {final['judged']}, judge_accuracy {final['judge_accuracy']}, "
      f"reward_accuracy {final['reward_accuracy']}")
print("| rank | peak, eval off (MiB) | peak, eval on (MiB) | evaluation's extra (MiB) |")
print("|---|---|---|---|")
for r in sorted({r for _, r in peak}):
    off, on = peak[("eval-off", r)], peak[("eval-on", r)]
    print(f"| {r} | {off:.0f} | {on:.0f} | {on - off:+.0f} |")
print("one whole fp32 copy of the policy: 1034 MiB (and the reference again)")
PY
