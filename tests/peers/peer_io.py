"""The exchange every tensor peer shares with its Rust test (rpo_peer::tensors).

Usage of a peer: PEER.py SPEC.json INPUTS.safetensors OUTPUTS.safetensors
SPEC is a list of cases, each with a "name"; case `c`'s input `k` arrives as `c/k`,
and each output `o` the peer computes for it is written back as `c/o`.
"""

import json
import sys

from safetensors.torch import load_file, save_file


def run_cases(run_case):
    """Calls `run_case(case, inputs)` for every case in SPEC with that case's inputs
    (own copies, unprefixed) and writes the dicts of outputs it returns."""
    spec_path, in_path, out_path = sys.argv[1:4]
    with open(spec_path) as f:
        cases = json.load(f)
    tensors = load_file(in_path)
    result = {}
    for case in cases:
        prefix = case["name"] + "/"
        inputs = {k[len(prefix):]: v.clone() for k, v in tensors.items() if k.startswith(prefix)}
        outputs = run_case(case, inputs)
        result.update({prefix + k: v.contiguous() for k, v in outputs.items()})
    save_file(result, out_path)
