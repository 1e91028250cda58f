"""Speed of light: the work one frame costs and the best a GPU could do with it (no torch).

The work is 2·MACs of the generator's convolutions (`GeneratorSpec.flops`), e.g. 99.1 GFLOP per 256² frame,
1393.6 per 720p and 3135.7 per 1080p for the standard 9-block ngf-64 generator, the count torch's own
FlopCounterMode gives (tested). The often quoted 113.6 / 1597.5 / 3594.3 (and so a 720p FP16 speed of light of
1.62 ms on an H100) count the two transposed convolutions at their output resolution, 4x their real work: that
would inflate every TFLOP/s and % of peak by 14.6 %. Norms, activations, padding and pre/post-processing are not
counted, so the achieved TFLOP/s is a slight under-estimate of the real work.

The peak is the GPU's dense (no 2:4 sparsity) FP16 tensor-core rate with FP32 accumulation, from the vendors'
data sheets. Every row, FP32 ones included, is compared with that same FP16 peak: it answers "how far is this
from the fastest this GPU could possibly run the network", not "how well does FP32 use the FP32 units".
"""
from __future__ import annotations

import re

from cgan.spec import GeneratorSpec

#: (words in the GPU name, lower case; dense FP16 TFLOP/s). First match wins, so specific names come first.
DENSE_FP16_PEAK_TFLOPS: tuple[tuple[str, float], ...] = (
    ("h100 pcie", 756.0),
    ("h100 nvl", 835.5),
    ("h100", 989.4),          # SXM5 (torch reports "NVIDIA H100 80GB HBM3")
    ("gh200", 989.4),         # Grace Hopper: "NVIDIA GH200 480GB"
    ("h200 nvl", 835.5),
    ("h200", 989.4),
    ("b200", 2250.0),
    ("a100", 312.0),
    ("l40s", 362.05),
    ("l40", 181.05),
    ("l4", 121.0),
    ("rtx 4090", 165.2),
    ("t4", 65.0),
    ("v100", 125.0),
)


def peak_fp16_tflops(gpu_name: str | None) -> float | None:
    """Dense FP16 peak in TFLOP/s for a GPU name as torch/nvidia-smi print it; None when unknown (or no GPU)."""
    if not gpu_name:
        return None
    name = gpu_name.lower()
    for key, peak in DENSE_FP16_PEAK_TFLOPS:
        if re.search(rf"\b{re.escape(key)}\b", name):
            return peak
    return None


def frame_flops(spec: GeneratorSpec, height: int, width: int) -> int:
    """FLOPs of one frame (2·MACs of the convolutions)."""
    return spec.flops(height, width)


def achieved_tflops(spec: GeneratorSpec, height: int, width: int, batch: int, seconds_per_call: float) -> float | None:
    """TFLOP/s achieved when one call translating `batch` frames of height×width takes `seconds_per_call`."""
    if not seconds_per_call or seconds_per_call <= 0:
        return None
    return frame_flops(spec, height, width) * batch / seconds_per_call / 1e12


def pct_of_peak(tflops: float | None, peak: float | None) -> float | None:
    """Achieved TFLOP/s as a percentage of the peak; None when either is unknown."""
    if tflops is None or not peak:
        return None
    return 100.0 * tflops / peak


def sol_ms(spec: GeneratorSpec, height: int, width: int, batch: int, peak: float | None) -> float | None:
    """The speed-of-light latency of one call in ms: the FLOPs at 100 % of peak."""
    if not peak:
        return None
    return frame_flops(spec, height, width) * batch / (peak * 1e12) * 1e3
