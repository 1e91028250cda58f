"""Pre/post-processing folded into the graph: uint8 NHWC BGR frames in, uint8 NHWC BGR frames out.

Built by ONNX composition (`onnx.compose.merge_models`) around an already converted and checked NCHW graph
(FP32 or FP16 with float32 I/O), so the FP16 conversion never has to reason about uint8 casts:

    pre:  uint8 (N,H,W,3) BGR -Cast float-> -Gather[2,1,0]-> RGB -Transpose-> NCHW -> x·(2/255) − 1
    core: the generator (input `input`, output `output`, float32)
    post: (y + 1)·127.5 -Round-> -Clip 0..255-> -Transpose-> NHWC -Gather[2,1,0]-> BGR -Cast uint8->

The uint8 tensors touch nothing but the first and the last Cast: TensorRT accepts uint8 only as a network
input converted right away and as an output produced by the final cast.

Height and width must be multiples of 4 (the runtime pads).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from cgan.errors import CganError


def _pre_post_graphs(opset: int, ir_version: int) -> tuple[Any, Any]:
    from onnx import TensorProto, helper, numpy_helper

    def const(name: str, value: np.ndarray):
        return numpy_helper.from_array(value, name)

    swap = const("bgr_rgb", np.array([2, 1, 0], dtype=np.int64))
    pre_nodes = [
        helper.make_node("Cast", ["frames"], ["frames_f"], to=TensorProto.FLOAT),
        helper.make_node("Gather", ["frames_f", "bgr_rgb"], ["rgb"], axis=3),
        helper.make_node("Transpose", ["rgb"], ["rgb_f"], perm=[0, 3, 1, 2]),
        helper.make_node("Mul", ["rgb_f", "scale_in"], ["rgb_s"]),
        helper.make_node("Sub", ["rgb_s", "one"], ["pre_out"]),
    ]
    pre = helper.make_graph(
        pre_nodes, "cgan_pre",
        [helper.make_tensor_value_info("frames", TensorProto.UINT8, ["batch", "height", "width", 3])],
        [helper.make_tensor_value_info("pre_out", TensorProto.FLOAT, ["batch", 3, "height", "width"])],
        [swap, const("scale_in", np.array(2.0 / 255.0, dtype=np.float32)), const("one", np.array(1.0, dtype=np.float32))])
    post_nodes = [
        helper.make_node("Add", ["post_in", "one"], ["y1"]),
        helper.make_node("Mul", ["y1", "scale_out"], ["y255"]),
        helper.make_node("Round", ["y255"], ["yr"]),
        helper.make_node("Clip", ["yr", "lo", "hi"], ["yc"]),
        helper.make_node("Transpose", ["yc"], ["yc_nhwc"], perm=[0, 2, 3, 1]),
        helper.make_node("Gather", ["yc_nhwc", "bgr_rgb"], ["bgr_f"], axis=3),
        helper.make_node("Cast", ["bgr_f"], ["frames_out"], to=TensorProto.UINT8),
    ]
    post = helper.make_graph(
        post_nodes, "cgan_post",
        [helper.make_tensor_value_info("post_in", TensorProto.FLOAT, ["batch", 3, "height", "width"])],
        [helper.make_tensor_value_info("frames_out", TensorProto.UINT8, ["batch", "height", "width", 3])],
        [swap, const("one", np.array(1.0, dtype=np.float32)), const("scale_out", np.array(127.5, dtype=np.float32)),
         const("lo", np.array(0.0, dtype=np.float32)), const("hi", np.array(255.0, dtype=np.float32))])
    opsets = [helper.make_opsetid("", opset)]
    return (helper.make_model(pre, opset_imports=opsets, ir_version=ir_version),
            helper.make_model(post, opset_imports=opsets, ir_version=ir_version))


def with_prepost(core: Any) -> Any:
    """uint8 NHWC BGR model around a float32-I/O NCHW model `core` (input `input`, output `output`)."""
    from onnx import TensorProto, compose

    ins, outs = core.graph.input, core.graph.output
    if [i.name for i in ins] != ["input"] or [o.name for o in outs] != ["output"]:
        raise CganError("the pre/post wrapper needs a graph with one input `input` and one output `output`")
    if ins[0].type.tensor_type.elem_type != TensorProto.FLOAT:
        raise CganError("--with-prepost wraps a float32-I/O graph; it cannot be combined with --fp16-io")
    if ins[0].type.tensor_type.shape.dim[1].dim_value != 3 or outs[0].type.tensor_type.shape.dim[1].dim_value != 3:
        raise CganError("--with-prepost needs a generator with 3 channels in and out (BGR frames)")
    opset = next(o.version for o in core.opset_import if o.domain in ("", "ai.onnx"))
    pre, post = _pre_post_graphs(opset, core.ir_version)
    merged = compose.merge_models(pre, core, io_map=[("pre_out", "input")], prefix1="pre/", prefix2="core/")
    merged = compose.merge_models(merged, post, io_map=[("core/output", "post_in")], prefix1="", prefix2="post/")
    # the user-facing tensor names stay `input` / `output` (the runtime's contract)
    _rename(merged.graph, "pre/frames", "input")
    _rename(merged.graph, "post/frames_out", "output")
    _dedupe_opsets(merged)
    del merged.metadata_props[:]
    merged.metadata_props.extend(core.metadata_props)
    merged.producer_name = core.producer_name
    return merged


def _dedupe_opsets(model: Any) -> None:
    """One opset entry per domain: merge_models listed the default domain once per merged graph (three
    `('', 17)`); the checker and ONNX Runtime take that, a stricter reader need not. The default domain's two
    spellings ('' and 'ai.onnx') are one domain; the highest version of each is kept (merged graphs share it)."""
    versions: dict[str, int] = {}
    for o in model.opset_import:
        domain = "" if o.domain == "ai.onnx" else o.domain
        versions[domain] = max(versions.get(domain, 0), o.version)
    del model.opset_import[:]
    for domain, version in versions.items():
        entry = model.opset_import.add()
        entry.domain, entry.version = domain, version


def _rename(graph: Any, old: str, new: str) -> None:
    for v in list(graph.input) + list(graph.output) + list(graph.value_info):
        if v.name == old:
            v.name = new
    for node in graph.node:
        node.input[:] = [new if n == old else n for n in node.input]
        node.output[:] = [new if n == old else n for n in node.output]


def bgr_to_nchw(frames: np.ndarray, dtype=np.float32) -> np.ndarray:
    """Reference pre-processing (numpy): uint8 (N,H,W,3) BGR -> float NCHW RGB in [-1, 1]."""
    x = frames[..., ::-1].transpose(0, 3, 1, 2).astype(np.float32) * np.float32(2.0 / 255.0) - np.float32(1.0)
    return np.ascontiguousarray(x, dtype=dtype)


def nchw_to_bgr(y: np.ndarray) -> np.ndarray:
    """Reference post-processing (numpy): float NCHW RGB in [-1, 1] -> uint8 (N,H,W,3) BGR."""
    y = np.clip(np.round((y.astype(np.float32) + 1.0) * 127.5), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(y.transpose(0, 2, 3, 1)[..., ::-1])
