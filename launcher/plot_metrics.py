"""Plot a run's metrics.jsonl: loss, reward accuracy and margin, learning rate and
gradient norm against the step, one panel each, phases shaded.

    .venv/bin/python launcher/plot_metrics.py runs/default/metrics.jsonl [-o runs/default/metrics.png]
"""
import argparse, json, os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

p = argparse.ArgumentParser()
p.add_argument("metrics")
p.add_argument("-o", "--out")
a = p.parse_args()
rows = [json.loads(line) for line in open(a.metrics) if line.strip()]
out = a.out or os.path.join(os.path.dirname(a.metrics), "metrics.png")

panels = [("loss", "loss"), ("reward_accuracy", "reward accuracy"), ("reward_margin", "reward margin"),
          ("grad_norm", "gradient norm"), ("lr", "learning rate")]
fig, axes = plt.subplots(len(panels), 1, figsize=(8, 2.2 * len(panels)), sharex=True)
phases = []
for r in rows:
    if not phases or phases[-1][0] != r["phase"]:
        phases.append([r["phase"], r["step"], r["step"]])
    phases[-1][2] = r["step"]
for ax, (key, label) in zip(axes, panels):
    for i, (name, lo, hi) in enumerate(phases):
        pts = [(r["step"], r[key]) for r in rows if r["phase"] == name and r.get(key) is not None]
        if pts:
            ax.plot(*zip(*pts), lw=0.8, label=name, color=f"C{i}")
        ax.axvspan(lo, hi, color=f"C{i}", alpha=0.06)
    ax.set_ylabel(label)
    values = [r[key] for r in rows if r.get(key) is not None]
    if key in ("loss", "grad_norm") and values and min(values) > 0 and max(values) / min(values) > 20:
        ax.set_yscale("log")  # the SFT warm-up's summed NLL dwarfs a preference loss near log 2
    ax.grid(alpha=0.3)
axes[0].legend(loc="upper right")
axes[-1].set_xlabel("optimizer step")
fig.suptitle(a.metrics)
fig.tight_layout()
fig.savefig(out, dpi=110)
print(out)
