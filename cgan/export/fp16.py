"""FP32 graph -> FP16 graph with onnxconverter-common: convolutions and weights in FP16, InstanceNormalization
kept in FP32 with Cast nodes around it (its mean/variance over H×W overflow or lose precision in FP16)."""
from __future__ import annotations

import copy
import warnings
from typing import Any

#: ops that stay FP32; InstanceNormalization is the one whose statistics need it.
FP32_OPS = ["InstanceNormalization"]


def _unshare_blocked_initializers(model: Any, block: list[str]) -> Any:
    """Give FP32-kept nodes private copies of initializers they share with FP16 nodes.

    Graph simplifiers deduplicate equal constants, so an all-zero Conv bias and an InstanceNormalization's
    zero shift can become one initializer; the converter would then need it in two precisions at once.
    """
    model = copy.deepcopy(model)
    graph = model.graph
    inits = {i.name: i for i in graph.initializer}
    users: dict[str, list[Any]] = {}
    for node in graph.node:
        for name in node.input:
            if name in inits:
                users.setdefault(name, []).append(node)
    for name, nodes in users.items():
        kept = [n for n in nodes if n.op_type in block]
        if kept and len(kept) != len(nodes):
            for k, node in enumerate(kept):
                clone = copy.deepcopy(inits[name])
                clone.name = f"{name}__fp32_{k}"
                graph.initializer.append(clone)
                node.input[:] = [clone.name if i == name else i for i in node.input]
    return model


def to_fp16(model: Any, fp16_io: bool = False, block: list[str] | None = None) -> Any:
    """FP16 copy of an FP32 ModelProto. I/O stays float32 unless `fp16_io` (uint8 I/O is never touched)."""
    from onnxconverter_common import float16

    block = list(FP32_OPS if block is None else block)
    model = _unshare_blocked_initializers(model, block)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "float32 number 5.96e-08 will be truncated" for tiny weights
        out = float16.convert_float_to_float16(model, keep_io_types=not fp16_io, op_block_list=block)
    del out.graph.value_info[:]  # the converter's value_info can carry stale types; shape inference redoes it
    return out
