"""Where a benchmark ran: GPU, driver, CUDA, library versions, cgan version and git sha, date, host CPU.

Library versions come from package metadata (no import); the GPU comes from torch when it is installed with
CUDA, else from nvidia-smi. Nothing here fails: an unknown item is None.
"""
from __future__ import annotations

import datetime as _dt
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import cgan
from cgan._git import git_sha
from cgan._versions import dist_version
from cgan.errors import first_line

_DISTS = {
    "torch": ("torch",),
    "onnxruntime": ("onnxruntime-gpu", "onnxruntime"),
    "onnx": ("onnx",),
    "tensorrt": ("tensorrt", "tensorrt-cu12", "tensorrt-cu13"),
    "tensorrt_rtx": ("tensorrt-rtx-cu13-bindings", "tensorrt-rtx"),
    "opencv": ("opencv-python-headless", "opencv-python"),
    "numpy": ("numpy",),
}


def _run(cmd: list[str], cwd: str | None = None) -> str | None:
    try:
        out = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def host_cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def gpu_info() -> dict[str, Any]:
    """{'gpu', 'gpu_count', 'driver', 'cuda', 'cudnn', 'compute_capability', 'gpu_memory_mb'} (None when absent)."""
    info: dict[str, Any] = {"gpu": None, "gpu_count": 0, "driver": None, "cuda": None, "cudnn": None,
                            "compute_capability": None, "gpu_memory_mb": None}
    if "torch" in sys.modules or dist_version(*_DISTS["torch"]):
        try:
            import torch

            info["cuda"] = torch.version.cuda
            if torch.cuda.is_available():
                i = torch.cuda.current_device()
                props = torch.cuda.get_device_properties(i)
                info.update(gpu=props.name, gpu_count=torch.cuda.device_count(),
                            compute_capability=f"{props.major}.{props.minor}",
                            gpu_memory_mb=round(props.total_memory / 2**20))
                info["cudnn"] = torch.backends.cudnn.version()
        except Exception as e:  # a broken CUDA install must not stop the benchmark report; the report says why
            info["cuda_error"] = first_line(e)  # its GPU is unknown
    if shutil.which("nvidia-smi"):
        out = _run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader,nounits"])
        if out:
            first = [x.strip() for x in out.splitlines()[0].split(",")]
            if len(first) >= 3:
                info["driver"] = first[1]
                if info["gpu"] is None:
                    info["gpu"] = first[0]
                    info["gpu_count"] = len(out.splitlines())
                    info["gpu_memory_mb"] = int(float(first[2])) if first[2].replace(".", "", 1).isdecimal() else None
    return info


def collect_env() -> dict[str, Any]:
    """Everything needed to compare two benchmark runs."""
    env: dict[str, Any] = {
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "cgan": cgan.__version__,
        "git_sha": git_sha(),
        "host": platform.node(),
        "host_cpu": host_cpu(),
        "cpu_count": os.cpu_count(),
        "os": platform.platform(),
        "python": platform.python_version(),
    }
    env.update(gpu_info())
    for key, dists in _DISTS.items():
        env[key] = dist_version(*dists)
    return env
