"""PyTorch peer for rpo-optim: torch.optim.RMSprop / AdamW, LambdaLR warmup, clip_grad_norm_.

Usage: optim_peer.py SPEC.json INPUTS.safetensors OUTPUTS.safetensors

Optimizer cases: initial `param/<i>`, gradients `grad/<step>/<i>`, learning rates `lrs`;
writes the final `param/<i>` and torch's state as `state/<slot>.<i>` and `state/step`.
Schedule cases: `lrs` as LambdaLR sets them before each optimizer step (HALOs' lambda).
Clip cases: `total_norm` returned by clip_grad_norm_ and the clipped `grad/<i>`.
"""

import torch

import peer_io


def optimizer_case(case, t, out):
    n = case["params"]
    params = [torch.nn.Parameter(t[f"param/{i}"].clone()) for i in range(n)]
    config = dict(case["config"])
    if "betas" in config:
        config["betas"] = tuple(config["betas"])
    cls = {"rmsprop": torch.optim.RMSprop, "adamw": torch.optim.AdamW}[case["kind"]]
    opt = cls(params, lr=1.0, foreach=False, **config)
    for step, lr in enumerate(t["lrs"].tolist()):
        for group in opt.param_groups:
            group["lr"] = lr
        for i, p in enumerate(params):
            p.grad = t[f"grad/{step}/{i}"].clone()
        opt.step()
    step_written = False
    for i, p in enumerate(params):
        out[f"param/{i}"] = p.detach().clone()
        for slot, value in opt.state[p].items():
            if slot == "step":
                if not step_written:
                    out["state/step"] = value.detach().clone().reshape(())
                    step_written = True
            else:
                out[f"state/{slot}.{i}"] = value.detach().clone()


def schedule_case(case, t, out):
    warmup = case["warmup_steps"]
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=case["base_lr"])
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lr_lambda=lambda step: min(1.0, (step + 1) / (warmup + 1))
    )
    lrs = []
    for _ in range(case["steps"]):
        lrs.append(opt.param_groups[0]["lr"])  # the lr this optimizer step runs at
        opt.step()
        sched.step()
    out["lrs"] = torch.tensor(lrs, dtype=torch.float64)


def clip_case(case, t, out):
    params = []
    for i in range(case["params"]):
        p = torch.nn.Parameter(torch.zeros_like(t[f"grad/{i}"]))
        p.grad = t[f"grad/{i}"].clone()
        params.append(p)
    total = torch.nn.utils.clip_grad_norm_(params, max_norm=case["max_norm"])
    out["total_norm"] = total.detach().clone().to(torch.float64).reshape(())
    for i, p in enumerate(params):
        out[f"grad/{i}"] = p.grad.clone()


KINDS = {"rmsprop": optimizer_case, "adamw": optimizer_case,
         "schedule": schedule_case, "clip": clip_case}


def run_case(case, t):
    out = {}
    KINDS[case["kind"]](case, t, out)
    return out


if __name__ == "__main__":
    peer_io.run_cases(run_case)
