"""FP32 graph -> FP16 graph with onnxconverter-common: convolutions and weights in FP16, InstanceNormalization
kept in FP32 with Cast nodes around it (its mean/variance over H×W overflow or lose precision in FP16)."""
from __future__ import annotations

import warnings
from typing import Any

#: ops that stay FP32; InstanceNormalization is the one whose statistics need it.
FP32_OPS = ["InstanceNormalization"]


def to_fp16(model: Any, fp16_io: bool = False, block: list[str] | None = None) -> Any:
    """FP16 copy of an FP32 ModelProto. I/O stays float32 unless `fp16_io` (uint8 I/O is never touched)."""
    from onnxconverter_common import float16

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "float32 number 5.96e-08 will be truncated" for tiny weights
        return float16.convert_float_to_float16(model, keep_io_types=not fp16_io,
                                                op_block_list=list(FP32_OPS if block is None else block))
