"""What transformers makes of a tokenizer folder: AutoTokenizer's special token ids and
its ids for texts, with and without special tokens.

Usage: tokenizer_peer.py DIR TEXTS.json  (TEXTS: a JSON list of strings)
Prints one JSON object.
"""

import json
import sys

from transformers import AutoTokenizer


def main():
    folder, texts_path = sys.argv[1], sys.argv[2]
    with open(texts_path, encoding="utf-8") as f:
        texts = json.load(f)
    tok = AutoTokenizer.from_pretrained(folder)
    print(json.dumps({
        "class": type(tok).__name__,
        "bos_token_id": tok.bos_token_id,
        "eos_token_id": tok.eos_token_id,
        "pad_token_id": tok.pad_token_id,
        "with_special": [tok(t)["input_ids"] for t in texts],
        "without_special": [tok(t, add_special_tokens=False)["input_ids"] for t in texts],
        "decoded": [tok.decode(tok(t, add_special_tokens=False)["input_ids"]) for t in texts],
    }))


if __name__ == "__main__":
    main()
