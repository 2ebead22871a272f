"""Peer for rpo-embed: sentence-transformers encodes the same sentences from the same folder.

Usage: embed_peer.py JOB.json OUT.safetensors

JOB.json: {"model_dir": D, "sentences": [str], "batch_size": N}
Loads D with sentence_transformers.SentenceTransformer(D, device="cpu") (offline: the
Rust side sets HF_HUB_OFFLINE=1), encodes the sentences as sentence-transformers does
by default (its own tokenization, truncation, pooling and Normalize module) and writes
them to OUT as "embeddings" [n, d] float32.

Prints one JSON line: {"dim", "max_seq_length", "modules": [class names],
"token_ids": [[int]] (what the Transformer module feeds the model, padding removed)}.

A missing sentence-transformers is an ImportError, so the peer (and the test) fails.
"""

import json
import sys

import torch
from safetensors.torch import save_file
from sentence_transformers import SentenceTransformer


def main():
    job_path, out_path = sys.argv[1:3]
    with open(job_path) as f:
        job = json.load(f)
    sentences = job["sentences"]
    model = SentenceTransformer(job["model_dir"], device="cpu")
    model.eval()
    with torch.no_grad():
        embeddings = model.encode(
            sentences,
            batch_size=job["batch_size"],
            convert_to_tensor=True,
            show_progress_bar=False,
        )
    save_file({"embeddings": embeddings.float().cpu().contiguous()}, out_path)

    token_ids = []
    for start in range(0, len(sentences), 64):
        features = model.preprocess(sentences[start:start + 64])
        for ids, mask in zip(features["input_ids"].tolist(), features["attention_mask"].tolist()):
            token_ids.append([i for i, m in zip(ids, mask) if m])
    print(json.dumps({
        "dim": int(embeddings.shape[1]),
        "max_seq_length": model.max_seq_length,
        "modules": [type(m).__name__ for m in model],
        "token_ids": token_ids,
    }))


if __name__ == "__main__":
    main()
