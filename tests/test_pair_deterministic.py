"""The same weights saved twice gave safetensors files with other sha256s: safetensors writes its metadata from
a hash map, in a random order per process. save_pair's files are now byte for byte the same, so a re-exported
pair keeps its hashes (and `cgan-export`'s "nothing to do" recognises it)."""
from __future__ import annotations

import subprocess
import sys

from safetensors import safe_open

from cgan.pairs import load_pair

SCRIPT = r"""
import sys, torch
from cgan.spec import GeneratorSpec, PairSpec
from cgan.trainer.networks import build_generator
from cgan.trainer.weights import save_pair
torch.manual_seed(0)
spec = PairSpec(GeneratorSpec(blocks=1, ngf=4), "été", "winter")
net = build_generator(spec.generator)
save_pair(sys.argv[1], spec, {"G": net.state_dict(), "F": net.state_dict()}, "float16")
"""


def test_the_same_weights_give_the_same_bytes_in_every_process(tmp_path):
    # the hash map's order is random per process (3 keys: 6 orders): four processes, as four exports
    hashes = set()
    for i in range(4):
        out = tmp_path / f"p{i}"
        subprocess.run([sys.executable, "-c", SCRIPT, str(out)], check=True, timeout=120)
        pair = load_pair(out)
        hashes.add((pair.files["G"]["sha256"], pair.files["F"]["sha256"]))
    assert len(hashes) == 1
    with safe_open(str(tmp_path / "p0" / "G.safetensors"), "pt") as f:
        meta = f.metadata()
        assert meta["generator"] == "G" and meta["direction"] == "été2winter" and "spec" in meta
        assert f.get_tensor(next(iter(f.keys()))).dtype.is_floating_point
