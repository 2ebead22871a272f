"""Independent PyTorch peer for rpo-losses.

Written from the formulas, not from the Rust code:
- RPO: paper §3 (Eq. 9-14), entry by entry, with the reference implementation's two
  departures (embedding weights from cosine *distance*; weight 1 without embeddings;
  diagonal emphasis applied to per-entry losses), see docs/reference-facts.md.
- DPO / IPO: TRL's `sigmoid` / `ipo` losses on summed log-probabilities.
- KTO: HALOs' KTOTrainer (KL from mismatched pairs, detached, clamped at 0).
- sequence log-probs: negated token cross-entropy, summed over response tokens.

Usage: losses_peer.py SPEC.json INPUTS.safetensors OUTPUTS.safetensors
Writes `<case>/value` and `<case>/grad/<input>` for every case in SPEC.
"""

import torch
import torch.nn.functional as F

import peer_io


def contrast_weight(spec, t, i, j, m, n):
    """w_ij of paper Eq. 11 / 13 / uniform strategy, for win i against lose j."""
    kind = spec["kind"]
    if kind == "embedding":
        tau = spec["tau"]
        # Eq. 10 as run by the reference code: distance d = 1 - cos, softmax over lose j.
        def unnormalised(jj):
            cos = F.cosine_similarity(t["win_emb"][i], t["lose_emb"][jj], dim=0)
            return torch.exp(-(1.0 - cos) / tau)

        return unnormalised(j) / sum(unnormalised(jj) for jj in range(n))
    if kind == "uniform_paper":
        return 1.0 / n
    if kind == "uniform_code":
        return 1.0
    if kind == "diagonal_paper":
        alpha = spec["alpha"]
        return alpha if i == j else (1.0 - alpha) / (m - 1)
    raise ValueError(f"unknown weighting {kind}")


def rpo(case, t):
    beta, spec = case["beta"], case["weighting"]
    # Eq. 9 without Z(x): log-ratios of wins (rows) and losses (columns).
    r_w = t["policy_chosen"] - t["reference_chosen"]
    r_l = t["policy_rejected"] - t["reference_rejected"]
    m, n = len(r_w), len(r_l)
    if spec["kind"] == "diagonal_code":
        alpha = spec["alpha"]
        rows = []
        for i in range(m):
            entry = [-F.logsigmoid(beta * (r_w[i] - r_l[j])) for j in range(n)]
            off = sum(entry[j] for j in range(n) if j != i) / (n - 1)
            rows.append(alpha * entry[i] + (1.0 - alpha) * off)
        return sum(rows) / m
    total = 0.0
    for i in range(m):
        for j in range(n):
            s_ij = contrast_weight(spec, t, i, j, m, n) * beta * (r_w[i] - r_l[j])  # Eq. 12
            total = total + F.logsigmoid(s_ij)
    return -total / (m * n)  # Eq. 14


def dpo_logits(t):
    pi_logratios = t["policy_chosen"] - t["policy_rejected"]
    ref_logratios = t["reference_chosen"] - t["reference_rejected"]
    return pi_logratios - ref_logratios


def dpo(case, t):
    return (-F.logsigmoid(case["beta"] * dpo_logits(t))).mean()


def ipo(case, t):
    return ((dpo_logits(t) - 1.0 / (2.0 * case["beta"])) ** 2).mean()


def kto(case, t):
    beta = case["beta"]
    kl = (t["policy_kl"] - t["reference_kl"]).mean().detach().clamp(min=0)
    desirable = t["desirable"].bool()
    logratios = t["policy"] - t["reference"]
    chosen = 1 - torch.sigmoid(beta * (logratios[desirable] - kl))
    rejected = 1 - torch.sigmoid(beta * (kl - logratios[~desirable]))
    losses = torch.cat(
        (case["desirable_weight"] * chosen, case["undesirable_weight"] * rejected)
    )
    return losses.mean()


def sft(case, t):
    return -t["chosen_logps"].mean()


def sequence_logps(case, t):
    logits, labels = t["logits"], t["labels"].clone()
    labels[t["loss_mask"] == 0] = -100
    b, s, v = logits.shape
    nll = F.cross_entropy(
        logits.reshape(b * s, v), labels.reshape(b * s), ignore_index=-100, reduction="none"
    )
    return -nll.reshape(b, s).sum(-1)


LOSSES = {"rpo": rpo, "dpo": dpo, "ipo": ipo, "kto": kto, "sft": sft,
          "sequence_logps": sequence_logps}


def run_case(case, t):
    for key in case["grad_wrt"]:
        t[key].requires_grad_(True)
    value = LOSSES[case["loss"]](case, t)
    scalar = (value * t["upstream"]).sum() if "upstream" in t else value
    scalar.backward()
    out = {"value": value.detach().clone()}
    for key in case["grad_wrt"]:
        grad = t[key].grad
        out[f"grad/{key}"] = torch.zeros_like(t[key]) if grad is None else grad
    return out


if __name__ == "__main__":
    peer_io.run_cases(run_case)
