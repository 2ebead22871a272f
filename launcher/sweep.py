#!/usr/bin/env python3
"""The scaling experiment: contrast scope × per-rank batch × ranks, plus the paper's
baselines and RPO's weightings, on the built-in synthetic suite.

Every run starts from one SFT model (trained once, first), uses the same global batch of
32 examples per optimizer step in the same order (rpo-shard's global batch does not depend
on the rank count or micro-batch), the same steps and learning rate; only the contrast
matrix changes: `local` contrasts B examples (the paper's per-GPU matrix), `group:2`
2·B, `global` W·B. Each configuration runs for every seed (the data order); the table
gives the mean and the spread (min–max) of the final evaluation.

    python launcher/sweep.py [--steps 100] [--seeds 0 1] [--out docs/scaling-sweep]
(launcher/sweep.sh sets up and builds first.)
"""

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# RPO_SHARD_BIN: a copy of the binary, so rebuilding during a long sweep cannot change it.
BIN = Path(os.environ.get("RPO_SHARD_BIN", ROOT / "target/release/rpo-shard"))
GLOBAL_BATCH = 32


def train(out, ranks, sets):
    """Runs rpo-shard train on `ranks` ranks with --set overrides; returns summary.json."""
    summary = out / "summary.json"
    if summary.exists():  # resumable sweep: a finished run is not repeated
        return json.loads(summary.read_text())
    # An unfinished earlier attempt (no summary) starts over.
    args = [str(BIN), "train", "--overwrite"]
    for kv in sets + [f"out_dir={out}"]:
        args += ["--set", kv]
    if ranks > 1:
        args = ["mpirun", "-n", str(ranks), "--oversubscribe"] + args
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1", RPO_LOG="warn")
    started = time.time()
    done = subprocess.run(args, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"run {out} failed:\n{done.stderr[-3000:]}")
    print(f"  {out.name}: {time.time() - started:.0f} s", file=sys.stderr)
    return json.loads(summary.read_text())


def final_eval(summary):
    final = [e for e in summary["evals"] if e["at"] == "final"][-1]
    return final.get("judge_accuracy"), final.get("reward_accuracy")


def step_time(out):
    lines = [json.loads(l) for l in (out / "metrics.jsonl").read_text().splitlines()]
    return statistics.median(m["step_time_s"] for m in lines)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--sft-steps", type=int, default=2000)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--out", default="docs/scaling-sweep")
    p.add_argument("--runs", default="target/sweep")
    p.add_argument("--lr", type=float, default=1e-5, help="preference-phase learning rate")
    p.add_argument("--ranks", type=int, nargs="+", default=[2, 4])
    p.add_argument("--no-baselines", action="store_true", help="only the scope × batch × ranks grid")
    a = p.parse_args()
    runs = ROOT / a.runs
    runs.mkdir(parents=True, exist_ok=True)
    common = [
        "data.synthetic_train=4096",
        "data.synthetic_eval=256",
        "embedding.model=minilm",
        "eval.max_examples=256",
        "checkpoint.at_end=false",
        f"train.global_batch_size={GLOBAL_BATCH}",
    ]

    print("SFT model", file=sys.stderr)
    sft_dir = ROOT / "target/sweep" / "sft"  # shared by every sweep
    sft = train(sft_dir, 2, common + [
        "loss.name=sft", f"train.steps={a.sft_steps}", "train.sft_warmup_steps=0",
        "optim.lr=1e-3", "train.micro_batch_size=16",
    ])
    base = common + [f"model.path={sft_dir / 'model'}", "model.preset=", f"train.steps={a.steps}",
                     "train.sft_warmup_steps=0", f"optim.lr={a.lr}", "optim.warmup_steps=10"]

    # (label, objective overrides, scope, per-rank batch, ranks)
    configs = []
    for ranks in a.ranks:
        for batch in (2, 4, 8):
            for scope in ("local", "group:2", "global"):
                configs.append((f"RPO paired, embedding", ["loss.name=rpo", "loss.weighting=embedding"], scope, batch, ranks))
    for label, sets in [] if a.no_baselines else [
        ("DPO", ["loss.name=dpo"]),
        ("IPO", ["loss.name=ipo"]),
        ("KTO", ["loss.name=kto"]),
        ("RPO unpaired, embedding", ["loss.name=rpo", "loss.pairing=unpaired", "loss.tau=0.75"]),
        ("RPO paired, uniform-paper", ["loss.name=rpo", "loss.weighting=uniform-paper"]),
        ("RPO paired, diagonal-paper", ["loss.name=rpo", "loss.weighting=diagonal-paper", "loss.alpha=0.5"]),
    ]:
        configs.append((label, sets, "global", 4, 2))

    rows = []
    sft_judge, _ = final_eval(sft)
    rows.append({"method": "SFT (start of every run)", "scope": "-", "ranks": 2, "per_rank_batch": 16,
                 "matrix_rows": 0, "judge_mean": sft_judge, "judge_min": sft_judge, "judge_max": sft_judge,
                 "reward_mean": None, "reward_min": None, "reward_max": None, "step_s": step_time(sft_dir), "seeds": 1})
    for label, sets, scope, batch, ranks in configs:
        scope_ranks = {"local": 1, "group:2": 2, "global": ranks}[scope]
        judges, rewards, times = [], [], []
        for seed in a.seeds:
            name = f"{label.replace(' ', '').replace(',', '-')}_{scope.replace(':', '')}_b{batch}_w{ranks}_s{seed}"
            out = runs / name
            summary = train(out, ranks, base + sets + [
                f"contrast.scope={scope}", f"train.micro_batch_size={batch}", f"seed={seed}"])
            j, r = final_eval(summary)
            judges.append(j)
            rewards.append(r)
            times.append(step_time(out))
        rows.append({"method": label, "scope": scope, "ranks": ranks, "per_rank_batch": batch,
                     "matrix_rows": batch * scope_ranks if label.startswith("RPO") else 0,
                     "judge_mean": statistics.mean(judges), "judge_min": min(judges), "judge_max": max(judges),
                     "reward_mean": statistics.mean(rewards), "reward_min": min(rewards), "reward_max": max(rewards),
                     "step_s": statistics.median(times), "seeds": len(a.seeds)})

    out = ROOT / a.out
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(f"{out}.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    fmt = lambda x: "–" if x is None else f"{x:.3f}"
    spread = lambda r, k: "–" if r[f"{k}_mean"] is None else f"{r[f'{k}_mean']:.3f} ({r[f'{k}_min']:.3f}–{r[f'{k}_max']:.3f})"
    with open(f"{out}.md", "w") as f:
        f.write("| method | scope | ranks | per-rank batch | contrast rows | judge accuracy, mean (min–max) | reward accuracy, mean (min–max) | step (s) |\n")
        f.write("|---|---|---|---|---|---|---|---|\n")
        for r in rows:
            f.write(f"| {r['method']} | {r['scope']} | {r['ranks']} | {r['per_rank_batch']} | {r['matrix_rows'] or '–'} | "
                    f"{spread(r, 'judge')} | {spread(r, 'reward')} | {r['step_s']:.2f} |\n")

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    sweep = [r for r in rows if r["method"] == "RPO paired, embedding"]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    for ax, key, title in [(axes[0], "judge", "judge accuracy (held-out)"), (axes[1], "reward", "reward accuracy (held-out)")]:
        for scope, marker in (("local", "o"), ("group:2", "s"), ("global", "^")):
            pts = sorted((r["matrix_rows"], r[f"{key}_mean"], r[f"{key}_min"], r[f"{key}_max"], r["ranks"]) for r in sweep if r["scope"] == scope)
            xs = [p[0] for p in pts]
            ys = [p[1] for p in pts]
            err = [[p[1] - p[2] for p in pts], [p[3] - p[1] for p in pts]]
            ax.errorbar(xs, ys, yerr=err, marker=marker, linestyle="", capsize=3, label=scope)
        ax.set_xscale("log", base=2)
        ax.set_xlabel("contrast-matrix rows (examples per matrix)")
        ax.set_title(title)
        ax.legend()
    for scope, marker in (("local", "o"), ("group:2", "s"), ("global", "^")):
        pts = sorted((r["matrix_rows"], r["step_s"]) for r in sweep if r["scope"] == scope)
        axes[2].plot([p[0] for p in pts], [p[1] for p in pts], marker=marker, linestyle="", label=scope)
    axes[2].set_xscale("log", base=2)
    axes[2].set_xlabel("contrast-matrix rows")
    axes[2].set_title("median step time (s), 32 examples per step")
    axes[2].legend()
    fig.tight_layout()
    fig.savefig(f"{out}.png", dpi=110)
    print(open(f"{out}.md").read())


if __name__ == "__main__":
    main()
