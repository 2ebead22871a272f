"""Peer for saved model folders: what transformers makes of a folder rpo-shard wrote.

Usage: saved_folder_peer.py JOB.json

JOB.json: {"folders": [DIR, ...], "prompts": [text], "responses": [text],
           "generate": DIR | null, "max_new_tokens": N}

For every folder, AutoTokenizer.from_pretrained(DIR) gives
  prompt_ids[i] = tokenizer(prompts[i]).input_ids          (special tokens as the folder says)
  sequence_ids[i] = prompt_ids[i] + tokenizer(responses[i], add_special_tokens=False).input_ids
                    + [tokenizer.eos_token_id]
With "generate", AutoModelForCausalLM.from_pretrained(DIR) answers every prompt greedily
(do_sample=False, the folder's generation_config: its eos_token_id ids stop), one prompt at
a time; new tokens only.

Prints one JSON line: {"tokenized": [{"prompt_ids", "sequence_ids", "bos_token",
"eos_token", "pad_token"}], "generated": [[id]] | null}.
"""

import json
import sys

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer


def tokenized(folder, prompts, responses):
    tok = AutoTokenizer.from_pretrained(folder)
    prompt_ids = [tok(p)["input_ids"] for p in prompts]
    sequence_ids = [
        ids + tok(r, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
        for ids, r in zip(prompt_ids, responses)
    ]
    return {
        "prompt_ids": prompt_ids,
        "sequence_ids": sequence_ids,
        "bos_token": tok.bos_token,
        "eos_token": tok.eos_token,
        "pad_token": tok.pad_token,
    }


def generated(folder, prompts, max_new_tokens):
    tok = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    model.eval()
    out = []
    for p in prompts:
        enc = tok(p, return_tensors="pt")
        with torch.no_grad():
            ids = model.generate(**enc, do_sample=False, max_new_tokens=max_new_tokens)
        out.append(ids[0, enc["input_ids"].shape[1]:].tolist())
    return out


def main():
    with open(sys.argv[1]) as f:
        job = json.load(f)
    result = {
        "tokenized": [tokenized(d, job["prompts"], job["responses"]) for d in job["folders"]],
        "generated": None,
    }
    if job.get("generate"):
        result["generated"] = generated(job["generate"], job["prompts"], job["max_new_tokens"])
    print(json.dumps(result))


if __name__ == "__main__":
    main()
