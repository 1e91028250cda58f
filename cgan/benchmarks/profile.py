"""Where the time goes: one translation path under torch.profiler, its kernels sorted into what they do.

`cgan-bench profile` runs the runtime's torch backend (the product's own path, pre/post included) on one frame
size and groups the device kernels (on the CPU: the operators) into convolution, instance norm, padding,
layout changes, element-wise and fused (torch.compile's Triton kernels) work — the breakdown issue 6 asks for
before trying fused kernels. PERF_NOTES' H100 eager profile, for comparison: instance norm 37 %, reflection
padding 13 %, NCHW↔NHWC transposes 14 %.

No CUDA graph while profiling: a replayed graph shows as one launch, which hides the kernels.
"""
from __future__ import annotations

import datetime as dt
import re
import time
from typing import Any

import numpy as np

from cgan.benchmarks.checks import check_batch
from cgan.errors import CganError

#: (category, pattern on the lower-cased kernel / operator name); the first match wins
CATEGORIES: tuple[tuple[str, str], ...] = (
    ("norm (compiled)", r"^triton_(red|per)_"),        # torch.compile's reductions: instance-norm statistics
    ("element-wise (compiled)", r"^triton_poi_"),       # its fused point-wise kernels (norm apply, ReLU, pad, ...)
    ("fused (compiled)", r"^triton_|triton"),
    ("instance norm", r"instance_norm|batch_norm|welford|norm_|_norm|bn_fw|layer_norm"),
    ("padding", r"reflection_pad|replication_pad|constant_pad|\bpad"),
    ("layout / copies", r"nchwtonhwc|nhwctonchw|(?<!conv_)transpose|permute|contiguous|copy_|convert_?layout|"
                        r"to_copy|clone"),
    ("convolution", r"conv|cudnn|xmma|implicit_?gemm|gemm|wgmma|cutlass|sm\d+_|mkldnn|winograd|fft"),
    ("element-wise", r"relu|tanh|add|mul|sub|div|clamp|round|elementwise|vectorized|unrolled|index|cat|fill|"
                     r"where|copy"),
)


def categorize(name: str) -> str:
    low = name.lower()
    for cat, pattern in CATEGORIES:
        if re.search(pattern, low):
            return cat
    return "other"


def _frame(height: int, width: int, batch: int) -> np.ndarray:
    from cgan.benchmarks.bench import synthetic_frame

    return np.stack([synthetic_frame(height, width, seed=i) for i in range(batch)])


def run_profile(source: str, device: str, height: int, width: int, precision: str = "fp16", batch: int = 1,
                iters: int = 10, warmup: int = 3, opts: dict[str, Any] | None = None, top: int = 12) -> dict[str, Any]:
    """Profile `iters` calls of the torch backend on `source` (pair name/folder/export). Returns a JSON-able
    dict: per-category milliseconds per call and share, the top kernels, wall time per call."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    from cgan.runtime import Translator

    if device == "cuda" and not torch.cuda.is_available():
        raise CganError("cgan-bench profile --device cuda: torch has no CUDA device here; use --device cpu")
    if iters < 1 or warmup < 0:
        raise CganError("--iters must be >= 1 and --warmup >= 0")
    check_batch(batch)  # batch 0 used to reach np.stack([]) ("need at least one array to stack")
    opts = dict(opts or {})
    if opts.get("cuda_graph"):
        raise CganError("profile without CUDA graphs: a replayed graph hides its kernels")
    x = _frame(height, width, batch)
    with Translator.load(source, backend="torch", device=device, precision=precision, **opts) as t:
        be = t.backend
        t0 = time.perf_counter()
        for _ in range(max(1, warmup)):  # the first call compiles / autotunes
            be.infer(x)
        first_s = time.perf_counter() - t0
        activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device == "cuda" else [])
        with profile(activities=activities) as prof:
            t1 = time.perf_counter()
            for _ in range(iters):
                be.infer(x)
            wall_ms = (time.perf_counter() - t1) * 1000 / iters
        settings = dict(getattr(be, "settings", {}) or {})
    return summarize(prof.key_averages(), device, iters, top) | {
        "format": "cgan.profile", "version": 1, "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "source": str(source), "device": device, "precision": precision, "batch": batch, "height": height,
        "width": width, "iters": iters, "options": {**opts, **settings}, "wall_ms_per_call": round(wall_ms, 3),
        "warmup_s": round(first_s, 3)}


def summarize(events: Any, device: str, iters: int, top: int = 12) -> dict[str, Any]:
    """Group profiler averages into categories. On CUDA: device kernels (self CUDA time of events that are not
    CPU operators); on the CPU: leaf operators' self CPU time."""
    rows = []
    for e in events:
        if getattr(e, "is_user_annotation", False):  # record_function spans would count their kernels twice
            continue
        if device == "cuda":
            # kernels only: CPU-side operators carry their kernels' time as device time too (counted twice)
            if "cuda" not in str(getattr(e, "device_type", "")).lower():
                continue
            us = float(getattr(e, "self_device_time_total", getattr(e, "self_cuda_time_total", 0.0)) or 0.0)
            if us <= 0:
                continue
        else:
            us = float(e.self_cpu_time_total or 0.0)
            if us <= 0 or not e.key.startswith(("aten::", "mkldnn", "onednn")):
                continue
        rows.append((e.key, us, int(e.count)))
    total = sum(us for _, us, _ in rows)
    if total <= 0:
        raise CganError("the profiler recorded no kernel time (is the profiler supported on this build?)")
    cats: dict[str, float] = {}
    for name, us, _ in rows:
        cats[categorize(name)] = cats.get(categorize(name), 0.0) + us
    ordered = sorted(cats.items(), key=lambda kv: -kv[1])
    kernels = sorted(rows, key=lambda r: -r[1])[:top]
    return {
        "measured": "device kernels (self CUDA time)" if device == "cuda" else "CPU operators (self CPU time)",
        "total_ms_per_call": round(total / 1000 / iters, 3),
        "categories": [{"category": c, "ms_per_call": round(us / 1000 / iters, 3), "share": round(us / total, 4)}
                       for c, us in ordered],
        "top": [{"name": n[:160], "category": categorize(n), "ms_per_call": round(us / 1000 / iters, 3),
                 "calls_per_call": round(cnt / iters, 2)} for n, us, cnt in kernels],
    }


def format_profile(result: dict[str, Any]) -> str:
    lines = [f"{result['source']} on {result['device']}, {result['precision']}, batch {result['batch']}, "
             f"{result['height']}x{result['width']}, options {result['options']}: "
             f"{result['wall_ms_per_call']:.2f} ms per call (wall, under the profiler); "
             f"{result['measured']}: {result['total_ms_per_call']:.2f} ms",
             f"{'category':<18} {'ms/call':>9} {'share':>7}"]
    lines += [f"{c['category']:<18} {c['ms_per_call']:>9.3f} {c['share'] * 100:>6.1f}%" for c in result["categories"]]
    lines.append("top kernels:")
    lines += [f"  {k['ms_per_call']:>8.3f} ms  x{k['calls_per_call']:<5g} {k['category']:<16} {k['name'][:90]}"
              for k in result["top"]]
    return "\n".join(lines)
