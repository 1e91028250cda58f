"""A Triton Inference Server model repository from an export folder (for users who outgrow one process).

One model per file: `<name>_<G|F>_<precision>[_prepost][_trt]/1/model.onnx|model.plan` with a
config.pbtxt (platform onnxruntime_onnx or tensorrt_plan, dynamic batching, -1 for height and width).
TensorRT-RTX plans are left out: Triton's tensorrt_plan backend runs TensorRT, which cannot load them.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
from pathlib import Path
from typing import Any

from cgan._files import atomic_group, ensure_writable_dir, inside, remove_stale_temps

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


def config_pbtxt(model: str, rec: dict[str, Any], max_batch: int, channels: tuple[int, int] = (3, 3),
                 source: str = "", spec: dict[str, Any] | None = None) -> str:
    """The model's config; `channels`: the generator's input and output channel counts (the uint8 pre/post
    graphs take and give BGR); `source`: a comment line naming the export folder it came from; `spec`: the pair's
    spec, in a comment line with the generator, direction, precision and io (a model file copied out of its
    export carries no manifest: the repository says what each model is)."""
    about = {"spec": spec, **{k: rec.get(k) for k in ("generator", "direction", "precision", "io")}}
    platform = "tensorrt_plan" if rec["kind"] == "engine" else "onnxruntime_onnx"
    dims = ["[ -1, -1, 3 ]"] * 2 if rec.get("io") == "bgr-hwc-uint8" else [f"[ {c}, -1, -1 ]" for c in channels]
    dtype = TRITON_DTYPES[rec["io_dtype"]]
    return (f'name: "{model}"\n'
            f'platform: "{platform}"\n'
            f"max_batch_size: {max_batch}\n"
            f'input [\n  {{\n    name: "input"\n    data_type: {dtype}\n    dims: {dims[0]}\n  }}\n]\n'
            f'output [\n  {{\n    name: "output"\n    data_type: {dtype}\n    dims: {dims[1]}\n  }}\n]\n'
            f"dynamic_batching {{ }}\n"
            f'instance_group [ {{ kind: {"KIND_GPU" if rec["kind"] == "engine" else "KIND_AUTO"} }} ]\n'
            + (f"{source}\n" if source else "")
            + (f"# cgan: {json.dumps(about, sort_keys=True, separators=(',', ':'))}\n" if spec else ""))


def _source_line(export_dir: Path) -> str:
    """The comment a model's config gets: which export folder wrote it (the models a later export of that folder
    does not have are removed; no other)."""
    return f"# cgan-export from {json.dumps(str(export_dir.resolve()))}"


def write_repository(export_dir: str | Path, repo_dir: str | Path, name: str, files: list[dict[str, Any]],
                     engine_max_batch: dict[str, int] | None = None,
                     channels: tuple[int, int] = (3, 3), spec: dict[str, Any] | None = None) -> list[str]:
    """Copy every ONNX file and engine listed in `files` (manifest records) into a Triton model repository, and
    remove the models an earlier export into the same export folder put there that this one does not have (they
    would serve its old weights; under any pair name); other models in the repository stay.

    Every file is written and fsynced beside its place before any replaces its old version (then renames only,
    atomic_group): a failure or Ctrl-C while copying (a full disk, a file where a model folder goes) leaves the
    repository as it was, not new G models beside old F ones or a model folder without its config."""
    export_dir, repo = Path(export_dir), ensure_writable_dir(repo_dir, "Triton model repository")
    source = _source_line(export_dir)
    engine_max_batch = engine_max_batch or {}
    _remove_stale_temps(repo)
    models = []
    made: list[Path] = []  # model folders this call created: removed again if it fails
    try:
        with atomic_group() as add:
            for rec in files:
                if rec.get("kind") not in ("onnx", "engine"):
                    continue
                if rec["kind"] == "engine" and rec["path"].endswith(".trt-rtx.plan"):
                    log.warning("Triton: %s left out: Triton's TensorRT backend cannot load TensorRT-RTX plans (the "
                                "ONNX graphs are in the repository; build with --trt-flavour tensorrt for Triton)",
                                rec["path"])
                    stale = repo / (model_name(name, rec) + "rtx")  # written as <model>_trtrtx before 2026-12,
                    if _written_for(stale, name, None):  # (without a source line): Triton cannot load it
                        shutil.rmtree(stale)
                    continue
                model = model_name(name, rec)
                src = inside(export_dir, rec["path"], "manifest.json")
                for folder in (repo / model, repo / model / "1"):
                    if not os.path.lexists(folder):
                        made.append(folder)
                shutil.copyfile(src, add(repo / model / "1" / ("model.plan" if rec["kind"] == "engine"
                                                              else "model.onnx")))
                max_batch = engine_max_batch.get(rec["path"], DEFAULT_MAX_BATCH)
                add(repo / model / "config.pbtxt").write_text(config_pbtxt(model, rec, max_batch, channels, source,
                                                                              spec))
                models.append(model)
    except BaseException:
        for folder in reversed(made):
            with contextlib.suppress(OSError):
                folder.rmdir()  # (only when empty: what another writer put there stays)
        raise
    for old in sorted(repo.iterdir()):
        if old.name not in models and _written_for(old, None, source):
            shutil.rmtree(old)
            log.info("Triton: %s removed (an earlier export into %s; not in this one)", old.name, export_dir)
    return models


#: a temp file of write_repository this old is left by a process that was killed (another export into the same
#: repository from another export folder may be writing its own right now: younger ones are left alone)
STALE_TMP_S = 3600.0


def _remove_stale_temps(repo: Path) -> None:
    """Remove what a killed write_repository left (temp files, and model folders holding nothing else)."""
    for model in repo.iterdir():
        if not model.is_dir() or model.is_symlink():
            continue
        temps = [*model.glob(".config.pbtxt.*.tmp"), *model.glob("1/.model.*.*.tmp")]
        removed = remove_stale_temps(temps, STALE_TMP_S, "an export into the Triton repository that was stopped", log)
        for folder in (model / "1", model) if removed else ():
            with contextlib.suppress(OSError):
                folder.rmdir()  # (only when that left it empty)


def _written_for(folder: Path, name: str | None, source: str | None) -> bool:
    """Whether `folder` is a model cgan-export wrote for pair `name` (None: any pair; its name and its config say
    so; TensorRT-RTX plans were written as <model>_trtrtx before 2026-12) from the export folder that `source`
    (_source_line) names; None: from any."""
    prefix = re.escape(name) if name is not None else r".+"
    if not folder.is_dir() or folder.is_symlink() or not re.fullmatch(
            prefix + r"_[GF]_fp(32|16)(_prepost)?(_trt|_trtrtx)?", folder.name):
        return False
    try:
        config = (folder / "config.pbtxt").read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return False
    return (config.startswith(f'name: "{folder.name}"\n') and "\ndynamic_batching { }\n" in config
            and (source is None or f"\n{source}\n" in config))
