"""A Triton Inference Server model repository from an export folder (for users who outgrow one process).

One model per file: `<name>_<G|F>_<precision>[_prepost][_trt]/1/model.onnx|model.plan` with a
config.pbtxt (platform onnxruntime_onnx or tensorrt_plan, dynamic batching, -1 for height and width).
TensorRT-RTX plans are left out: Triton's tensorrt_plan backend runs TensorRT, which cannot load them.
"""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import logging

from cgan._files import atomic_path, ensure_writable_dir, inside

log = logging.getLogger(__name__)

TRITON_DTYPES = {"float32": "TYPE_FP32", "float16": "TYPE_FP16", "uint8": "TYPE_UINT8"}
DEFAULT_MAX_BATCH = 8


def model_name(name: str, rec: dict[str, Any]) -> str:
    parts = [name, rec["generator"], rec["precision"]]
    if rec.get("io") == "bgr-hwc-uint8":
        parts.append("prepost")
    if rec.get("kind") == "engine":
        parts.append("trt")
    return "_".join(parts)


def config_pbtxt(model: str, rec: dict[str, Any], max_batch: int) -> str:
    platform = "tensorrt_plan" if rec["kind"] == "engine" else "onnxruntime_onnx"
    dims = "[ -1, -1, 3 ]" if rec.get("io") == "bgr-hwc-uint8" else "[ 3, -1, -1 ]"
    dtype = TRITON_DTYPES[rec["io_dtype"]]
    return (f'name: "{model}"\n'
            f'platform: "{platform}"\n'
            f"max_batch_size: {max_batch}\n"
            f'input [\n  {{\n    name: "input"\n    data_type: {dtype}\n    dims: {dims}\n  }}\n]\n'
            f'output [\n  {{\n    name: "output"\n    data_type: {dtype}\n    dims: {dims}\n  }}\n]\n'
            f"dynamic_batching {{ }}\n"
            f'instance_group [ {{ kind: {"KIND_GPU" if rec["kind"] == "engine" else "KIND_AUTO"} }} ]\n')


def write_repository(export_dir: str | Path, repo_dir: str | Path, name: str, files: list[dict[str, Any]],
                     engine_max_batch: dict[str, int] | None = None) -> list[str]:
    """Copy every ONNX file and engine listed in `files` (manifest records) into a Triton model repository."""
    export_dir, repo = Path(export_dir), ensure_writable_dir(repo_dir, "Triton model repository")
    engine_max_batch = engine_max_batch or {}
    models = []
    for rec in files:
        if rec.get("kind") not in ("onnx", "engine"):
            continue
        if rec["kind"] == "engine" and rec["path"].endswith(".trt-rtx.plan"):
            log.warning("Triton: %s left out: Triton's TensorRT backend cannot load TensorRT-RTX plans (the ONNX "
                        "graphs are in the repository; build with --trt-flavour tensorrt for Triton)", rec["path"])
            stale = repo / (model_name(name, rec) + "rtx")  # written as <model>_trtrtx by cgan before 2026-12
            if stale.is_dir():
                shutil.rmtree(stale)
            continue
        model = model_name(name, rec)
        src = inside(export_dir, rec["path"], "manifest.json")
        target = repo / model / "1" / ("model.plan" if rec["kind"] == "engine" else "model.onnx")
        with atomic_path(target) as tmp:
            shutil.copyfile(src, tmp)
        max_batch = engine_max_batch.get(rec["path"], DEFAULT_MAX_BATCH)
        with atomic_path(repo / model / "config.pbtxt") as tmp:
            tmp.write_text(config_pbtxt(model, rec, max_batch))
        models.append(model)
    return models
