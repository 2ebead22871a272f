"""Writes a JSON Lines file in the other forms the Hugging Face Hub serves datasets as,
with the libraries that write them there (pyarrow, as `datasets` uses it).

Usage: dataset_files_peer.py SRC.jsonl OUTDIR [SHARDS]
Writes OUTDIR/data.parquet (pyarrow's defaults: snappy), OUTDIR/zstd.parquet, OUTDIR/data.jsonl.gz,
OUTDIR/data.json (one JSON array) and, with SHARDS > 1, the records split in order
over OUTDIR/train-0000i-of-0000N.parquet.
"""

import gzip
import json
import os
import sys

import pyarrow as pa
import pyarrow.parquet as pq


def main():
    src, out = sys.argv[1], sys.argv[2]
    shards = int(sys.argv[3]) if len(sys.argv) > 3 else 1
    with open(src, encoding="utf-8") as f:
        records = [json.loads(line) for line in f if line.strip()]
    os.makedirs(out, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(records), os.path.join(out, "data.parquet"))
    # A codec rpo-shard is built without, to check that it is refused by name.
    pq.write_table(pa.Table.from_pylist(records), os.path.join(out, "zstd.parquet"),
                   compression="zstd")
    with gzip.open(os.path.join(out, "data.jsonl.gz"), "wt", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    with open(os.path.join(out, "data.json"), "w", encoding="utf-8") as f:
        json.dump(records, f, ensure_ascii=False, indent=1)
    if shards > 1:
        per = -(-len(records) // shards)
        for i in range(shards):
            part = records[i * per:(i + 1) * per]
            name = f"train-{i:05d}-of-{shards:05d}.parquet"
            pq.write_table(pa.Table.from_pylist(part), os.path.join(out, name))
    print(json.dumps({"records": len(records)}))


if __name__ == "__main__":
    main()
