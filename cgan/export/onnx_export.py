"""PyTorch generator -> checked ONNX graph (FP32), with optional reflection-padding rewrite and simplification.

Recipe: the TorchScript exporter (`torch.onnx.export(..., dynamo=False)`) at opset 17 with dynamic batch,
height and width; reflection padding becomes ONNX `Pad(mode="reflect")` unless `pad_mode="slice"` swaps every
`nn.ReflectionPad2d` for `SlicePad2d` (the same values, built from Slice + Concat) for TensorRT versions that
reject reflect padding. Every graph passes `onnx.checker` (full_check) and strict shape inference.
"""
from __future__ import annotations

import copy
import io
import json
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from cgan.errors import CganError, IntegrityError

DEFAULT_OPSET = 17
PAD_MODES = ("reflect", "slice")
NCHW_AXES = {0: "batch", 2: "height", 3: "width"}


class SlicePad2d(nn.Module):
    """Reflection padding written as Slice + Concat (no Pad op): equal to nn.ReflectionPad2d(p) for p < H, W."""

    def __init__(self, padding: int):
        super().__init__()
        self.p = int(padding)

    @staticmethod
    def _reflect(x: torch.Tensor, p: int, dim: int) -> torch.Tensor:
        n = x.dim()

        def cut(a: int, b: int | None) -> torch.Tensor:
            idx = [slice(None)] * n
            idx[dim] = slice(a, b)
            return x[tuple(idx)]

        before = [cut(i, i + 1) for i in range(p, 0, -1)]             # x[p], ..., x[1]
        after = [cut(-1 - i, -i) for i in range(1, p + 1)]             # x[-2], ..., x[-1-p]
        return torch.cat(before + [x] + after, dim=dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.p == 0:
            return x
        return self._reflect(self._reflect(x, self.p, 3), self.p, 2)


def _pad_amount(m: nn.ReflectionPad2d) -> int:
    pads = set(m.padding) if isinstance(m.padding, tuple) else {m.padding}
    if len(pads) != 1:
        raise CganError(f"--pad-mode slice supports symmetric reflection padding only, got {m.padding}")
    return int(pads.pop())


def swap_reflection_pad(net: nn.Module) -> nn.Module:
    """A deep copy of `net` with every nn.ReflectionPad2d replaced by an equivalent SlicePad2d."""
    net = copy.deepcopy(net)
    for module in list(net.modules()):
        for name, child in list(module.named_children()):
            if isinstance(child, nn.ReflectionPad2d):
                setattr(module, name, SlicePad2d(_pad_amount(child)))
    return net


def max_opset() -> int:
    """The newest opset both torch's TorchScript exporter and the installed onnx support."""
    import onnx

    newest = onnx.defs.onnx_opset_version()
    try:
        from torch.onnx import _constants

        newest = min(newest, int(_constants.ONNX_TORCHSCRIPT_EXPORTER_MAX_OPSET))
    except (ImportError, AttributeError):
        pass
    return newest


def check_opset(opset: int) -> None:
    """One line for an opset this export cannot use (before anything is written)."""
    if isinstance(opset, bool) or not isinstance(opset, int):  # (opset="17" from Python was a TypeError)
        raise CganError(f"opset must be an integer, 17 to {max_opset()}; got {opset!r}")
    if opset < 17:
        raise CganError(f"opset {opset} is too old: InstanceNormalization/Pad exports need opset >= 17")
    if opset > max_opset():
        raise CganError(f"opset {opset} is newer than this torch/onnx can export (at most {max_opset()}): "
                        f"use --opset 17 to {max_opset()}")


def torch_to_onnx_bytes(net: nn.Module, example: torch.Tensor, opset: int = DEFAULT_OPSET,
                        axes: dict[int, str] | None = None) -> bytes:
    """Export `net` (eval, CPU) with input `input` / output `output`, dynamic axes, to serialized ONNX."""
    check_opset(opset)
    axes = NCHW_AXES if axes is None else axes
    buf = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(net.eval(), (example,), buf, opset_version=opset, dynamo=False,
                          input_names=["input"], output_names=["output"],
                          dynamic_axes={"input": axes, "output": axes}, do_constant_folding=True)
    return buf.getvalue()


def simplify(model: Any) -> Any:
    """onnxslim graph simplification (folds the exporter's shape arithmetic); keeps I/O names and dynamic dims."""
    import onnxslim

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return onnxslim.slim(model)


def check(model: Any, what: str) -> Any:
    """onnx.checker (full_check) + strict shape inference; returns the shape-inferred model. A saved graph's path
    (one with external data: the checker resolves it against the graph's folder) is checked in place; None."""
    import onnx

    try:
        if isinstance(model, (str, Path)):
            onnx.checker.check_model(str(model), full_check=True)  # full_check: strict shape inference too
            return None
        onnx.checker.check_model(model, full_check=True)
        return onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as e:
        raise IntegrityError(f"{what} fails onnx.checker/shape inference: {str(e).splitlines()[0]}") from None


def set_metadata(model: Any, props: dict[str, Any]) -> Any:
    """Store cgan's spec/provenance in the model's metadata_props (strings; dicts become compact JSON)."""
    del model.metadata_props[:]
    for key, value in sorted(props.items()):
        entry = model.metadata_props.add()
        entry.key = key
        entry.value = value if isinstance(value, str) else json.dumps(value, sort_keys=True, separators=(",", ":"))
    model.producer_name = "cgan"
    return model


def export_onnx(net: nn.Module, metadata: dict[str, Any], *, opset: int = DEFAULT_OPSET, pad_mode: str = "reflect",
                do_simplify: bool = True, example_hw: tuple[int, int] = (64, 64)) -> Any:
    """The FP32 NCHW graph of `net` as a checked onnx.ModelProto (not yet saved). `net` itself is left as it was
    (its device, dtype and mode: a caller's CUDA generator stays on CUDA)."""
    import onnx

    if pad_mode not in PAD_MODES:
        raise CganError(f"unknown pad mode {pad_mode!r}: use one of {', '.join(PAD_MODES)}")
    net = copy.deepcopy(net).float().cpu().eval()
    if pad_mode == "slice":
        net = swap_reflection_pad(net)
    example = torch.zeros(1, net.spec.in_channels, *example_hw) if hasattr(net, "spec") else torch.zeros(1, 3, *example_hw)
    model = onnx.load_from_string(torch_to_onnx_bytes(net, example, opset))
    if do_simplify:
        model = simplify(model)
    # drop intermediate value_info: the FP16 converter would otherwise keep stale float32 types around blocked ops
    del model.graph.value_info[:]
    check(model, "the FP32 graph")
    return set_metadata(model, metadata)


def save(model: Any, path: Path) -> None:
    """Serialize a ModelProto (weights inline; these generators are far below the 2 GB protobuf limit)."""
    Path(path).write_bytes(model.SerializeToString())
