"""The same RPO training step as benches/train_step.rs, written directly in PyTorch.

Loads the model folder and batch that the Rust bench wrote, so both time the same
computation on the same data: transformers' LlamaForCausalLM forward on chosen+rejected,
reference forward without grad, summed response log-probs, embedding-weighted RPO loss,
backward, clip_grad_norm_, torch.optim.RMSprop.
"""
import argparse, copy, json, statistics, time

import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM

p = argparse.ArgumentParser()
p.add_argument("--dir", required=True)
p.add_argument("--steps", type=int, default=10)
p.add_argument("--warmup", type=int, default=2)
p.add_argument("--threads", type=int, default=2)
p.add_argument("--breakdown", type=int, default=1, help="also time forward and forward+backward alone")
a = p.parse_args()
torch.set_num_threads(a.threads)

policy = AutoModelForCausalLM.from_pretrained(f"{a.dir}/model", torch_dtype=torch.float32, attn_implementation="sdpa")
policy.train()
reference = copy.deepcopy(policy).eval().requires_grad_(False)
b = load_file(f"{a.dir}/batch.safetensors")
ids = torch.cat([b["chosen_input_ids"], b["rejected_input_ids"]])
labels = torch.cat([b["chosen_labels"], b["rejected_labels"]])
mask = torch.cat([b["chosen_loss_mask"], b["rejected_loss_mask"]])
emb = b["embeddings"]
n = b["chosen_input_ids"].shape[0]
beta, tau = 0.1, 0.5


def logps(model, ids):
    logits = model(input_ids=ids).logits.float()
    tok = torch.gather(logits.log_softmax(-1), 2, labels.unsqueeze(2)).squeeze(2)
    return (tok * mask).sum(-1)


opt = torch.optim.RMSprop(policy.parameters(), lr=1e-5, alpha=0.99, eps=1e-8)
times, updates, first_loss = [], [], None
for step in range(a.warmup + a.steps):
    t0 = time.perf_counter()
    opt.zero_grad(set_to_none=False)
    lp = logps(policy, ids)
    with torch.no_grad():
        lr_ = logps(reference, ids)
    ratio = lp - lr_
    ca, rb = ratio[:n], ratio[n:]
    w = F.softmax(-(1 - emb @ emb.T) / tau, dim=1)
    loss = -F.logsigmoid(beta * w * (ca[:, None] - rb[None, :])).mean()
    loss.backward()
    t1 = time.perf_counter()
    torch.nn.utils.clip_grad_norm_(policy.parameters(), 10.0)
    opt.step()
    t_update = time.perf_counter() - t1
    if step == 0:
        first_loss = loss.item()
    if step >= a.warmup:
        times.append(time.perf_counter() - t0)
        updates.append(t_update)
# Where the time goes: the policy forward alone (no grad) and forward + backward.
fwd, fb = [float("nan")], [float("nan")]
for _ in range(a.steps if a.breakdown else 0):
    t0 = time.perf_counter()
    with torch.no_grad():
        policy(input_ids=ids)
    fwd.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    policy(input_ids=ids).logits.float().mean().backward()
    fb.append(time.perf_counter() - t0)
median = statistics.median(times)
tokens = int((ids != 0).sum())  # real tokens: the bench's ids are never the pad id 0
print(json.dumps({"impl": "pytorch+transformers", "threads": a.threads, "steps": a.steps, "median_step_s": median,
                  "tokens_per_s": tokens / median, "first_loss": first_loss, "forward_s": statistics.median(fwd),
                  "forward_backward_s": statistics.median(fb), "clip_and_update_s": statistics.median(updates), "torch": torch.__version__}))
