"""Peer for rpo-model: Hugging Face transformers runs the same Llama/Mistral folders.

Usage: llama_peer.py JOBS.json

JOBS.json is a list of jobs, run in one process (importing transformers is slow):
  {"op": "logits", "model_dir": D, "ids": F, "out": O}
      load D with AutoModelForCausalLM (fp32, eager attention) and write the logits
      of the int64 tensor "input_ids" in safetensors file F to O as "logits".
  {"op": "make", "config": {...HF config kwargs incl. model_type...}, "seed": S, "model_dir": D}
      let transformers build and randomly initialise that model and save_pretrained it to D.
  {"op": "generate", "model_dir": D, "prompts": [[ids]], "max_new_tokens": N, "eos_token_id": E|null}
      greedy generate(do_sample=False) for each prompt separately; new tokens only.

Prints one JSON line: {"results": [one object per job]}.
"""

import json
import sys

import torch
from safetensors.torch import load_file, save_file
from transformers import AutoConfig, AutoModelForCausalLM


def load(model_dir):
    model, info = AutoModelForCausalLM.from_pretrained(
        model_dir, dtype=torch.float32, attn_implementation="eager", output_loading_info=True
    )
    problems = {k: v for k, v in info.items() if v and k in ("missing_keys", "unexpected_keys", "mismatched_keys")}
    if problems:
        sys.exit(f"transformers did not load {model_dir} cleanly: {problems}")
    return model.eval()


def describe(model):
    config = model.config
    return {
        "class": type(model).__name__,
        "rope_parameters": getattr(config, "rope_parameters", None),
        "sliding_window": getattr(config, "sliding_window", None),
        "tie_word_embeddings": config.tie_word_embeddings,
        "num_key_value_heads": config.num_key_value_heads,
        "lm_head_is_embedding": model.lm_head.weight.data_ptr() == model.get_input_embeddings().weight.data_ptr(),
    }


def logits(job):
    model = load(job["model_dir"])
    ids = load_file(job["ids"])["input_ids"]
    with torch.no_grad():
        out = model(input_ids=ids).logits
    save_file({"logits": out.contiguous()}, job["out"])
    return describe(model)


def make(job):
    torch.manual_seed(job["seed"])
    config = AutoConfig.for_model(**job["config"])
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.save_pretrained(job["model_dir"])
    return describe(model)


def generate(job):
    model = load(job["model_dir"])
    # Only the job's EOS may stop generation (the config's default EOS must not).
    model.generation_config.eos_token_id = job["eos_token_id"]
    model.generation_config.pad_token_id = 0
    tokens = []
    for prompt in job["prompts"]:
        ids = torch.tensor([prompt], dtype=torch.int64)
        with torch.no_grad():
            out = model.generate(
                ids,
                attention_mask=torch.ones_like(ids),
                do_sample=False,
                max_new_tokens=job["max_new_tokens"],
            )
        tokens.append(out[0, len(prompt):].tolist())
    return {"tokens": tokens, **describe(model)}


OPS = {"logits": logits, "make": make, "generate": generate}


def main():
    (jobs_path,) = sys.argv[1:]
    with open(jobs_path) as f:
        jobs = json.load(f)
    print(json.dumps({"results": [OPS[job["op"]](job) for job in jobs]}))


if __name__ == "__main__":
    main()
