#!/usr/bin/env bash
# Does preference training after SFT improve greedy answers on held-out prompts?
# For each seed: SFT on the synthetic suite's preferred answers, then from that model
# RPO (paired, embedding weighting), DPO, and a control that just continues SFT for the
# same number of steps. Prints a Markdown table of the judge's accuracy (mean ± std over
# seeds) and writes it to docs/sft-then-rpo-<SFT_STEPS>.md.
#   [SFT_STEPS=2000] [PREF_STEPS=200] bash launcher/sft_then_rpo.sh [SEED ...]   (default seeds: 0 1 2)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
[ -x target/release/rpo-shard ] || { . scripts/setup.sh; cargo build --release -p rpo-shard; }
B=target/release/rpo-shard
SEEDS=("${@:-0 1 2}"); read -r -a SEEDS <<<"${SEEDS[*]}"
SFT_STEPS=${SFT_STEPS:-2000}; PREF_STEPS=${PREF_STEPS:-200}
OUT=runs/sft-then-rpo/sft$SFT_STEPS
for seed in "${SEEDS[@]}"; do
  d=$OUT/seed$seed; mkdir -p "$d"
  if [ ! -f "$d/sft/summary.json" ]; then
    $B train --overwrite --set seed="$seed" --set out_dir="$d/sft" --set loss.name=sft --set train.sft_warmup_steps=0 \
      --set train.steps=$SFT_STEPS --set optim.lr=1e-3 2>"$d.sft.log" >/dev/null || { cat "$d.sft.log"; exit 1; }
  fi
  from=(--set seed="$seed" --set model.preset= --set model.path="$d/sft/model" --set train.sft_warmup_steps=0 --set train.steps=$PREF_STEPS)
  for variant in "rpo:--set loss.name=rpo --set optim.lr=1e-5" "dpo:--set loss.name=dpo --set optim.lr=1e-5" "sft-continued:--set loss.name=sft --set optim.lr=1e-3"; do
    name=${variant%%:*}; read -r -a extra <<<"${variant#*:}"
    [ -f "$d/$name/summary.json" ] || $B train --overwrite "${from[@]}" "${extra[@]}" --set out_dir="$d/$name" 2>"$d.$name.log" >/dev/null || { cat "$d.$name.log"; exit 1; }
  done
done
python3 - "$OUT" "$SFT_STEPS" "$PREF_STEPS" "${SEEDS[@]}" <<'PY' | tee "docs/sft-then-rpo-$SFT_STEPS.md"
import json, statistics, sys
out, sft_steps, pref_steps, seeds = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
def acc(seed, run, at):
    s = json.load(open(f"{out}/seed{seed}/{run}/summary.json"))
    return next(e for e in s["evals"] if e["at"] == at)
rows = [(f"SFT ({sft_steps} steps)", "sft", "final"), (f"SFT → RPO paired, embedding τ=0.5 (+{pref_steps} steps)", "rpo", "final"),
        (f"SFT → DPO (+{pref_steps} steps)", "dpo", "final"), (f"SFT → more SFT (+{pref_steps} steps, control)", "sft-continued", "final")]
fams = sorted(acc(seeds[0], "sft", "final")["judge_by_family"])
print("# SFT, then preference training: judge accuracy on held-out prompts\n")
print("Built-in synthetic suite, tiny Llama (hidden 64, 2 layers), 256 held-out questions, greedy answers")
print(f"checked by the suite's judge; seeds {', '.join(seeds)} (seed changes init and data order); mean ± std over seeds.")
print(f"RPO and DPO: β = 0.1, RMSprop lr 1e-5, reference = the SFT model. Command: `SFT_STEPS={sft_steps} PREF_STEPS={pref_steps} bash launcher/sft_then_rpo.sh " + " ".join(seeds) + "`\n")
print("| run | judge accuracy | " + " | ".join(fams) + " | held-out reward accuracy |")
print("|---|---|" + "---|" * len(fams) + "---|")
def ms(xs):
    return f"{statistics.mean(xs):.3f} ± {statistics.stdev(xs):.3f}" if len(xs) > 1 else f"{xs[0]:.3f}"
for label, run, at in rows:
    evs = [acc(s, run, at) for s in seeds]
    ra = [e["reward_accuracy"] for e in evs if e["reward_accuracy"] is not None]
    print(f"| {label} | {ms([e['judge_accuracy'] for e in evs])} | " + " | ".join(ms([e['judge_by_family'][f] for e in evs]) for f in fams)
          + f" | {ms(ra) if ra else '—'} |")
print("\nPer seed (judge accuracy): " + "; ".join(
    f"seed {s}: SFT {acc(s,'sft','final')['judge_accuracy']:.3f} → RPO {acc(s,'rpo','final')['judge_accuracy']:.3f}, DPO {acc(s,'dpo','final')['judge_accuracy']:.3f}, SFT+ {acc(s,'sft-continued','final')['judge_accuracy']:.3f}" for s in seeds))
PY
