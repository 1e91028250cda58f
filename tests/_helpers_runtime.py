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


class _PrePost:  # built lazily (needs torch): uint8 NHWC BGR -> generator -> uint8 NHWC BGR
    @staticmethod
    def wrap(net):
        import torch

        class PrePost(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.net = net

            def forward(self, frames):
                x = frames.flip(3).permute(0, 3, 1, 2).float() / 127.5 - 1.0
                y = torch.clamp(torch.round((self.net(x) + 1.0) * 127.5), 0.0, 255.0).to(torch.uint8)
                return y.permute(0, 2, 3, 1).flip(3)

        return PrePost().eval()


def make_export(pair_folder: Path, out: Path, prepost: bool = False) -> Path:
    """pair/ copy + G/F.fp32.onnx (opset 17, dynamic batch/height/width) + manifest.json; with `prepost`
    also G/F.prepost.onnx (uint8 NHWC BGR I/O), listed as precision fp16 so the ort-cuda code path picks it
    (its weights stay fp32: these tests exercise the code path on CPU, not FP16 numerics)."""
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
        if prepost:
            buf = io.BytesIO()
            nhwc = {0: "batch", 1: "height", 2: "width"}
            with warnings.catch_warnings(), torch.no_grad():
                warnings.simplefilter("ignore")
                torch.onnx.export(_PrePost.wrap(net), (torch.zeros(1, 64, 64, 3, dtype=torch.uint8),), buf,
                                  opset_version=17, dynamo=False, input_names=["input"], output_names=["output"],
                                  dynamic_axes={"input": nhwc, "output": nhwc})
            path = out / f"{gen}.fp16.prepost.onnx"
            path.write_bytes(buf.getvalue())
            rec = file_record(path, out)
            rec.update(kind="onnx", generator=gen, direction=pair.spec.direction_name(gen), precision="fp16",
                       io="bgr-hwc-uint8", io_dtype="uint8")
            files.append(rec)
    write_json_atomic(out / "manifest.json", {
        "format": EXPORT_FORMAT, "version": FORMAT_VERSION, "name": pair.spec.name, "spec": pair.spec.to_dict(),
        "source": {"pair_sha256": {g: r["sha256"] for g, r in pair.files.items()}, "provenance": {}},
        "opset": 17, "tools": {"torch": torch.__version__}, "files": files, "parity": {}})
    return out


def ort_cuda_cpu_stand_in():
    """OrtCudaBackend with the CPU provider and CPU OrtValues: ort-cuda's binding / copy code, run on a CPU."""
    from cgan.runtime.backends import ort as ortmod

    class CpuStandIn(ortmod.OrtCudaBackend):
        provider, ort_device, devices = "CPUExecutionProvider", "cpu", ("cpu",)

        @classmethod
        def check(cls, model=None, precision=None, device=None):
            return cls._check_model(model, precision or "fp16", True)

        def _providers(self):
            return [self.provider]

    return CpuStandIn
