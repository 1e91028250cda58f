"""`cgan-bench engines`: how long FP16 TensorRT / TensorRT-RTX engines take to build and how big they are.

Builds every FP16 graph of an export (G and F, NCHW float and, with pre/post, uint8 BGR NHWC) through the
exporter (`cgan.export.api.export_pair(engine=True)`), in a scratch folder, and reports each engine's build
time and plan size from its sidecar, with the machine and library versions (and, for plain TensorRT, whether
the build reused a timing cache: `timing_cache_warm`; TensorRT-RTX uses none). With TensorRT-RTX and a named
compute capability (`--trt-target 8.9`) this runs ahead of time on a machine without a GPU.
"""
from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import Any

from cgan.benchmarks.env import collect_env
from cgan.errors import BackendUnavailable

FORMAT = "cgan.bench.engines"
#: what to do without a GPU or TensorRT here
AHEAD_OF_TIME_HINT = ("build ahead of time without a GPU: --trt-flavour tensorrt-rtx --trt-target 8.9 (a compute "
                      "capability)")


def run_engine_builds(source: str, *, flavour: str = "auto", target: str | None = None,
                      shapes: str = "256x256,720x1280,1080x1920", batch: str = "1,1,4", prepost: bool = True,
                      opt_level: int = 3, workspace_gb: float | None = None, note: str | None = None,
                      model: str | None = None) -> dict[str, Any]:
    """Export `source` with engines into a temporary folder; one row per engine built."""
    from cgan.benchmarks.checks import check_positive_float
    from cgan.export.api import export_pair
    from cgan.export.tensorrt import MAX_WORKSPACE_GB

    check_positive_float(workspace_gb, "--workspace-gb", maximum=MAX_WORKSPACE_GB)  # inf overflowed the builder

    with tempfile.TemporaryDirectory(prefix="cgan-bench-engines-") as tmp:
        t0 = time.perf_counter()
        try:
            out = export_pair(source, Path(tmp) / "export", with_prepost=prepost, engine=True, trt_flavour=flavour,
                              trt_target=target, shapes=shapes, batch=batch, opt_level=opt_level,
                              workspace_gb=workspace_gb, parity=False)
        except BackendUnavailable as e:  # the exporter's hint names its own --engine, no option of this command
            raise e.instead(AHEAD_OF_TIME_HINT) from None
        total = time.perf_counter() - t0
        manifest = json.loads((out / "manifest.json").read_text())
        rows = []
        for rec in manifest["files"]:
            if rec.get("kind") != "engine":
                continue
            side = json.loads((out / rec["sidecar"]).read_text())
            onnx = out / side["onnx"]["path"]
            rows.append({
                "generator": rec["generator"], "direction": rec.get("direction"), "io": side["io"],
                "flavour": side["flavour"], "trt_version": side["trt_version"],
                "gpu": side["gpu"]["name"], "compute_capability": side["gpu"]["compute_capability"],
                "ahead_of_time": bool(side["gpu"].get("ahead_of_time")),
                "profile": {k: side["profiles"][0][k] for k in ("min", "opt", "max")},
                "build_s": side["build_seconds"], "plan_bytes": side["plan"]["bytes"],
                # plain TensorRT reuses the timing cache in $CGAN_HOME: a warm build skips tactic timing
                "timing_cache_warm": bool(side.get("timing_cache_bytes_in")),
                "onnx_bytes": onnx.stat().st_size, "opt_level": side["opt_level"],
            })
    spec = manifest["spec"]["generator"]
    return {
        "format": FORMAT, "env": collect_env(),
        "config": {"source": str(source), "model": model or f"{manifest.get('name')} b{spec['blocks']} "
                   f"ngf{spec['ngf']}", "flavour": flavour, "target": target, "shapes": shapes, "batch": batch,
                   "prepost": prepost, "opt_level": opt_level, "workspace_gb": workspace_gb, "note": note,
                   "export_seconds_total": round(total, 2)},
        "rows": sorted(rows, key=lambda r: (r["generator"], r["io"])),
    }


def format_engines(result: dict[str, Any]) -> str:
    cfg = result["config"]
    lines = [f"engines: {cfg['model']}, profile {cfg['shapes']} batch {cfg['batch']}, "
             f"export + builds {cfg['export_seconds_total']:.1f} s",
             f"{'gen':3} {'io':14} {'flavour':13} {'version':12} {'target':6} {'build s':>8} {'plan MB':>8}"]
    for r in result["rows"]:
        lines.append(f"{r['generator']:3} {r['io']:14} {r['flavour']:13} {r['trt_version']:12} "
                     f"{r['compute_capability']:6} {r['build_s']:8.2f} {r['plan_bytes'] / 1e6:8.1f}")
    return "\n".join(lines)
