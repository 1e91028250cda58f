"""Test helpers for the runtime: a tiny pair and a minimal export folder per docs/DESIGN.md (no cgan.export)."""
from __future__ import annotations

import io
import warnings
from pathlib import Path

from cgan._files import file_record, write_json_atomic
from cgan.pairs import load_pair
from cgan.spec import EXPORT_FORMAT, FORMAT_VERSION, GeneratorSpec, PairSpec


def make_pair(folder: Path, blocks: int = 1, ngf: int = 4, seed: int = 0, gens=("G", "F"),
              domains=("summer", "winter")) -> Path:
    import torch

    from cgan.trainer.networks import build_generator
    from cgan.trainer.weights import save_pair

    torch.manual_seed(seed)
    spec = PairSpec(GeneratorSpec(blocks=blocks, ngf=ngf), *domains)
    states = {}
    for g in gens:
        net = build_generator(spec.generator)
        with torch.no_grad():  # larger biases than the paper's init so outputs are not all ~0 (mid-grey)
            for m in net.modules():
                if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d)):
                    m.weight.normal_(0, 0.3)
                    m.bias.normal_(0, 0.3)
        states[g] = net.state_dict()
    return save_pair(folder, spec, states)


def make_export(pair_folder: Path, out: Path) -> Path:
    """pair/ copy + G/F.fp32.onnx (opset 17, dynamic batch/height/width) + manifest.json."""
    import shutil

    import torch

    from cgan.trainer.weights import load_generator

    out.mkdir(parents=True, exist_ok=True)
    if (out / "pair").exists():
        shutil.rmtree(out / "pair")
    shutil.copytree(pair_folder, out / "pair")
    pair = load_pair(pair_folder)
    files = []
    axes = {0: "batch", 2: "height", 3: "width"}
    for gen in pair.generators:
        net = load_generator(pair, gen)
        buf = io.BytesIO()
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(net, (torch.zeros(1, 3, 64, 64),), buf, opset_version=17, dynamo=False,
                              input_names=["input"], output_names=["output"],
                              dynamic_axes={"input": axes, "output": axes})
        path = out / f"{gen}.fp32.onnx"
        path.write_bytes(buf.getvalue())
        rec = file_record(path, out)
        rec.update(kind="onnx", generator=gen, direction=pair.spec.direction_name(gen), precision="fp32",
                   io="nchw", io_dtype="float32")
        files.append(rec)
    write_json_atomic(out / "manifest.json", {
        "format": EXPORT_FORMAT, "version": FORMAT_VERSION, "name": pair.spec.name, "spec": pair.spec.to_dict(),
        "source": {"pair_sha256": {g: r["sha256"] for g, r in pair.files.items()}, "provenance": {}},
        "opset": 17, "tools": {"torch": torch.__version__}, "files": files, "parity": {}})
    return out
