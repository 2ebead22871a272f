"""Peer for rpo-data's special tokens and chat templates: transformers' AutoTokenizer on
the same folders, and TRL's conventions for turning preference records into token ids.

Usage: chat_template_peer.py CASES.json

CASES.json: {"folders": {NAME: DIR}, "cases": [CASE]}, CASE =
  {"folder": NAME, "prompt": str | [messages], "chosen": ..., "rejected": ...}   paired
  {"folder": NAME, "prompt": ..., "completion": ..., "label": bool}             unpaired

Prints one JSON line:
  {"folders": {NAME: {bos_token, eos_token, pad_token, bos_token_id, eos_token_id,
                      pad_token_id, adds_bos, chat_template, generation_eos}},
   "cases": [{"prompt", "responses": [text], "ids": [[id]], "prompt_len",
              "full": text rendered for prompt + first response, "error": str|null}]}

TRL is not installed; its conventions are written out here from its source:
- trl/data_utils.py `apply_chat_template` (what `maybe_apply_chat_template` calls for
  conversational records): prompt = apply_chat_template(prompt, add_generation_prompt
  = True) when the last prompt message is the user's; each response =
  apply_chat_template(prompt + response)[len(prompt):], and prompt + response must start
  with the prompt.
- trl/trainer/dpo_trainer.py `tokenize_row` (TRL 0.8-0.11, decoder-only): prompt ids =
  tokenizer(prompt, add_special_tokens=False), with BOS put in front when the tokenizer
  has one ("Avoid adding if it's already there"); answer ids = tokenizer(answer,
  add_special_tokens=False) + EOS, unless it already ends in EOS; sequence = prompt ids
  + answer ids. (Later TRL versions encode prompt and answer separately the same way.)
"""

import json
import sys

from transformers import AutoTokenizer, GenerationConfig


def trl_render(tok, prompt, responses):
    """TRL's apply_chat_template for conversational records; plain text passes through."""
    if isinstance(prompt, str):
        return prompt, list(responses)
    last = prompt[-1]["role"]
    if last != "user":
        raise ValueError(f"last prompt role {last} (this peer only covers user)")
    rendered = tok.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)
    out = []
    for response in responses:
        whole = tok.apply_chat_template(prompt + response, tokenize=False)
        if not whole.startswith(rendered):
            raise ValueError("prompt + completion does not start with the prompt")
        out.append(whole[len(rendered):])
    return rendered, out


def trl_ids(tok, prompt, response):
    prompt_ids = tok(prompt, add_special_tokens=False)["input_ids"]
    bos = tok.bos_token_id
    if bos is not None and (len(prompt_ids) == 0 or prompt_ids[0] != bos):
        prompt_ids = [bos] + prompt_ids
    answer = tok(response, add_special_tokens=False)["input_ids"]
    eos = tok.eos_token_id
    if len(answer) == 0 or answer[-1] != eos:
        answer = answer + [eos]
    return prompt_ids + answer, len(prompt_ids)


def describe(tok, folder):
    eos = GenerationConfig.from_pretrained(folder).eos_token_id if has_generation(folder) else None
    if eos is None:
        eos = []
    elif isinstance(eos, int):
        eos = [eos]
    probe = tok("a")["input_ids"]
    return {
        "bos_token": tok.bos_token,
        "eos_token": tok.eos_token,
        "pad_token": tok.pad_token,
        "bos_token_id": tok.bos_token_id,
        "eos_token_id": tok.eos_token_id,
        "pad_token_id": tok.pad_token_id,
        "adds_bos": tok.bos_token_id is not None and probe[:1] == [tok.bos_token_id],
        "chat_template": tok.chat_template,
        "generation_eos": eos,
    }


def has_generation(folder):
    import os

    return os.path.exists(os.path.join(folder, "generation_config.json"))


def main():
    with open(sys.argv[1]) as f:
        spec = json.load(f)
    toks = {name: AutoTokenizer.from_pretrained(d) for name, d in spec["folders"].items()}
    folders = {name: describe(tok, spec["folders"][name]) for name, tok in toks.items()}
    cases = []
    for case in spec["cases"]:
        tok = toks[case["folder"]]
        keys = ["chosen", "rejected"] if "chosen" in case else ["completion"]
        try:
            prompt, responses = trl_render(tok, case["prompt"], [case[k] for k in keys])
        except Exception as e:  # a template's raise_exception, or a split that fails
            cases.append({"error": str(e)})
            continue
        seqs = [trl_ids(tok, prompt, r) for r in responses]
        full = None
        if not isinstance(case["prompt"], str):
            full = tok.apply_chat_template(case["prompt"] + case[keys[0]], tokenize=False)
        cases.append({
            "prompt": prompt,
            "responses": responses,
            "ids": [ids for ids, _ in seqs],
            "prompt_len": seqs[0][1],
            "full": full,
            "error": None,
        })
    print(json.dumps({"folders": folders, "cases": cases}))


if __name__ == "__main__":
    main()
