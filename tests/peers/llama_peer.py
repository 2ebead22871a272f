"""Peer for rpo-model: Hugging Face transformers runs the same Llama/Mistral folders.

Usage: llama_peer.py JOBS.json

JOBS.json is a list of jobs, run in one process (importing transformers is slow):
  {"op": "logits", "model_dir": D, "ids": F, "out": O}
      load D with AutoModelForCausalLM.from_pretrained (the folder's own dtype, so a
      sharded folder goes through its index; eager attention), report that dtype, and
      write the fp32 logits of the int64 tensor "input_ids" in safetensors file F to O
      as "logits" (bf16/fp16 weights are upcast exactly, so fp32 tolerances apply).
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
    """The model of `model_dir` upcast to fp32, and the name of the dtype transformers
    loaded it in (dtype="auto": the folder's own), which the test checks."""
    model, info = AutoModelForCausalLM.from_pretrained(
        model_dir, dtype="auto", attn_implementation="eager", output_loading_info=True
    )
    problems = {k: v for k, v in info.items() if v and k in ("missing_keys", "unexpected_keys", "mismatched_keys")}
    if problems:
        sys.exit(f"transformers did not load {model_dir} cleanly: {problems}")
    dtype = dtype_name(model)
    return model.float().eval(), dtype


def dtype_name(model):
    """The one dtype of the model's parameters, as Hugging Face names it ("bfloat16")."""
    dtypes = {p.dtype for p in model.parameters()}
    if len(dtypes) != 1:
        sys.exit(f"the parameters have mixed dtypes {dtypes}")
    return str(dtypes.pop()).removeprefix("torch.")


def describe(model, dtype):
    config = model.config
    return {
        "dtype": dtype,
        "class": type(model).__name__,
        "rope_parameters": getattr(config, "rope_parameters", None),
        "sliding_window": getattr(config, "sliding_window", None),
        "tie_word_embeddings": config.tie_word_embeddings,
        "num_key_value_heads": config.num_key_value_heads,
        "lm_head_is_embedding": model.lm_head.weight.data_ptr() == model.get_input_embeddings().weight.data_ptr(),
    }


def logits(job):
    model, dtype = load(job["model_dir"])
    ids = load_file(job["ids"])["input_ids"]
    with torch.no_grad():
        out = model(input_ids=ids).logits
    save_file({"logits": out.contiguous()}, job["out"])
    return describe(model, dtype)


def make(job):
    torch.manual_seed(job["seed"])
    config = AutoConfig.for_model(**job["config"])
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.save_pretrained(job["model_dir"])
    return describe(model, dtype_name(model))


def generate(job):
    model, dtype = load(job["model_dir"])
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
    return {"tokens": tokens, **describe(model, dtype)}


OPS = {"logits": logits, "make": make, "generate": generate}


def main():
    (jobs_path,) = sys.argv[1:]
    with open(jobs_path) as f:
        jobs = json.load(f)
    print(json.dumps({"results": [OPS[job["op"]](job) for job in jobs]}))


if __name__ == "__main__":
    main()
