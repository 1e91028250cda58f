"""What the benchmark times: one call translates a batch of BGR uint8 frames into BGR uint8 frames on the host.

Every runner has the same small lifecycle (`build()` / `__call__(frames)` / `close()`), so every row measures
the same thing — host frames in, host frames out, the result fully computed — whatever the backend:

* `OfficialBaseline`: the generator the way the official repo's test.py runs it: `model.eval()`,
  `torch.no_grad()`, NCHW float32, no compile, pre/post on the host as in test.py (RGB, ToTensor + Normalize to
  [-1, 1]; `tensor2im`: (x + 1) / 2 · 255 truncated to uint8). TF32 stays at PyTorch's default.
* `TranslatorRunner`: `cgan.runtime.Translator` with one backend and precision; the backend may be a variant
  with options (`torch-cuda+compile+graph`, see variants.py).

torch is imported only inside the torch-specific methods.
"""
from __future__ import annotations

import contextlib
import gc
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

from cgan.benchmarks.variants import Variant, parse_variant
from cgan.errors import BackendUnavailable, CganError, IntegrityError


def _torch_cuda_ready() -> bool:
    torch = sys.modules.get("torch")
    return bool(torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized())


def _rss_mb() -> float | None:
    try:
        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return None


def _nvidia_smi_process_mb() -> float | None:
    """GPU memory this process holds now, from nvidia-smi (works for ORT/TensorRT, which torch cannot see)."""
    import shutil
    import subprocess

    if not shutil.which("nvidia-smi"):
        return None
    try:
        out = subprocess.run(["nvidia-smi", "--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits"],
                             capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    total = None
    for line in out.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) == 2 and parts[0] == str(os.getpid()) and parts[1].isdecimal():
            total = (total or 0) + float(parts[1])
    return total


def _device_used_mb() -> float | None:
    """Memory in use on CUDA device 0 by everyone (total - free), or None without a usable torch CUDA."""
    if not _torch_cuda_ready():
        return None
    import torch

    free, total = torch.cuda.mem_get_info()
    return (total - free) / 2**20


class MemoryProbe:
    """Peak memory of one measurement, from the best source available for the device.

    cuda + torch runner: `torch.cuda.max_memory_allocated` since `start()` ("torch-max-allocated").
    cuda, other runners: the process's GPU memory after the run from nvidia-smi ("nvidia-smi-process"; the
    ORT/TensorRT arenas only grow, so this is their high-water mark, but it includes the CUDA context). In a
    container nvidia-smi lists host PIDs, so it often cannot name this process: then the growth of the
    device-wide used memory from before the runner was built to after the run ("device-used-delta"; other
    processes on the GPU would distort it).
    cpu: the highest resident set seen (sampled every 5 ms by a thread, outside the timed calls: the first call
    and the accuracy calls at the same shapes) minus the resident set before the runner was built
    ("rss-peak-delta"; a rough figure: it includes allocator caching and the input frames).
    """

    def __init__(self, device: str, torch_based: bool, rss_base: float | None = None,
                 gpu_used_base: float | None = None):
        self.device, self.torch_based, self.rss_base = device, torch_based, rss_base
        self.gpu_used_base = gpu_used_base  # _device_used_mb() taken before the runner was built
        self._peak_rss: float | None = None
        self._stop = None
        self._thread = None

    def start(self) -> None:
        if self.device == "cuda" and self.torch_based and _torch_cuda_ready():
            import torch

            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        elif self.device == "cpu" and self.rss_base is not None:
            self._peak_rss = _rss_mb()
            self.resume()

    def _sample(self) -> None:
        now = _rss_mb()
        if now is not None and (self._peak_rss is None or now > self._peak_rss):
            self._peak_rss = now

    def resume(self) -> None:
        """(Re)start sampling the resident set every 5 ms (cpu rows; nothing for the others)."""
        if self.device != "cpu" or self.rss_base is None or self._thread is not None:
            return
        import threading

        stop = self._stop = threading.Event()

        def sample() -> None:
            while not stop.wait(0.005):
                self._sample()

        self._thread = threading.Thread(target=sample, name="cgan-bench-rss", daemon=True)
        self._thread.start()

    def pause(self) -> None:
        """Stop sampling, keeping the peak seen (the timed calls run without the sampler: on 2 cores its wake-ups
        every 5 ms made them 5-8 % slower; the calls before and after them, at the same shapes, are sampled)."""
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None
            self._sample()

    def stop_quietly(self) -> None:
        """End the sampling thread after a failed row (no result wanted; nothing raised)."""
        self.pause()

    def stop(self) -> tuple[float | None, str | None]:
        if self.device == "cuda":
            if self.torch_based and _torch_cuda_ready():
                import torch

                torch.cuda.synchronize()
                return torch.cuda.max_memory_allocated() / 2**20, "torch-max-allocated"
            mb = _nvidia_smi_process_mb()
            if mb is not None:
                return mb, "nvidia-smi-process"
            used = _device_used_mb()
            if used is not None and self.gpu_used_base is not None:
                return max(0.0, used - self.gpu_used_base), "device-used-delta"
            return None, None
        self.stop_quietly()
        now = _rss_mb()
        peak = max(p for p in (now, self._peak_rss) if p is not None) if (now or self._peak_rss) else None
        if peak is None or self.rss_base is None:
            return None, None
        return max(0.0, peak - self.rss_base), "rss-peak-delta"


class Runner:
    """Base: host BGR uint8 frames in, host BGR uint8 frames out."""

    name = "runner"
    torch_based = False

    def __init__(self, precision: str, device: str):
        self.precision, self.device = precision, device

    def build(self) -> None:
        raise NotImplementedError

    def __call__(self, frames: list[np.ndarray]) -> list[np.ndarray]:
        raise NotImplementedError

    def sync(self) -> None:
        """Wait for the device. Calls return host arrays, so this is a belt-and-braces no-op for most runners."""
        if self.device == "cuda" and _torch_cuda_ready():
            sys.modules["torch"].cuda.synchronize()

    def close(self) -> None:
        pass

    def __enter__(self) -> "Runner":
        self.build()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
        gc.collect()
        if _torch_cuda_ready():
            sys.modules["torch"].cuda.empty_cache()


class OfficialBaseline(Runner):
    """Eager FP32 PyTorch exactly as the official CycleGAN test.py runs it (see module docstring)."""

    name = "baseline"
    torch_based = True

    def __init__(self, pair_folder: str | os.PathLike, gen: str, device: str, threads: int | None = None):
        super().__init__("fp32", device)
        self.pair_folder, self.gen, self.threads = Path(pair_folder), gen, threads
        self.net = None

    def build(self) -> None:
        import torch

        from cgan.trainer.weights import load_generator

        if self.device == "cuda" and not torch.cuda.is_available():
            raise BackendUnavailable("the baseline on cuda needs a CUDA build of torch and a GPU; use --device cpu")
        if self.threads:
            torch.set_num_threads(self.threads)
        self.net = load_generator(self.pair_folder, self.gen, device=self.device).eval()

    def _pre(self, frames: list[np.ndarray]):
        import torch

        # test.py: PIL RGB -> ToTensor ([0,1], CHW) -> Normalize(0.5, 0.5) -> [-1, 1]
        x = torch.from_numpy(np.stack([f[..., ::-1] for f in frames])).to(self.device)
        x = x.permute(0, 3, 1, 2).float().div_(255.0)
        return (x - 0.5) / 0.5

    def forward_float(self, frames: list[np.ndarray]) -> list[np.ndarray]:
        """The exact FP32 output (no TF32) as float BGR in [0, 255] — the accuracy reference."""
        import torch

        cudnn, matmul = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
        torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
        try:
            with torch.no_grad():
                y = self.net(self._pre(frames))
            y = ((y.float().cpu().numpy().transpose(0, 2, 3, 1) + 1.0) / 2.0 * 255.0)[..., ::-1]
        finally:
            torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = cudnn, matmul
        return [np.ascontiguousarray(f, dtype=np.float32) for f in y]

    def __call__(self, frames: list[np.ndarray]) -> list[np.ndarray]:
        import torch

        with torch.no_grad():
            y = self.net(self._pre(frames))
        # tensor2im: image_tensor.cpu().float().numpy(); (transpose + 1) / 2 * 255; astype(uint8) (truncates)
        arr = (np.transpose(y.cpu().float().numpy(), (0, 2, 3, 1)) + 1) / 2.0 * 255.0
        arr = arr.astype(np.uint8)
        return [np.ascontiguousarray(a[..., ::-1]) for a in arr]

    def close(self) -> None:
        self.net = None


#: bench backend name -> (runtime backend name, device passed to Translator.load)
RUNTIME_NAMES: dict[str, tuple[str, str | None]] = {
    "tensorrt": ("tensorrt", None),
    "tensorrt-rtx": ("tensorrt-rtx", None),
    "ort-cuda": ("ort-cuda", None),
    "ort-cpu": ("ort-cpu", None),
    "torch-cuda": ("torch", "cuda"),
    "torch-cpu": ("torch", "cpu"),
}
GPU_BACKENDS = ("tensorrt", "tensorrt-rtx", "ort-cuda", "torch-cuda")
CPU_BACKENDS = ("ort-cpu", "torch-cpu")
BACKENDS = GPU_BACKENDS + CPU_BACKENDS


def variant(name: str) -> Variant:
    """A bench backend name or variant label (e.g. torch-cuda+compile+graph) -> Variant (base, options)."""
    return parse_variant(name, BACKENDS)


def backend_device(name: str) -> str:
    return "cpu" if variant(name).base in CPU_BACKENDS else "cuda"


def runtime_availability(name: str, source: str | os.PathLike) -> tuple[bool, str | None]:
    """Can `cgan.runtime` run this bench backend on this source here? (ok, reason when not)."""
    try:
        import cgan.runtime as rt
    except ImportError as e:
        return False, f"cgan.runtime cannot be imported ({e})"
    runtime_name, device = RUNTIME_NAMES[variant(name).base]
    if device == "cuda":
        try:
            import torch
        except ImportError:
            return False, "torch is not installed"
        if not torch.cuda.is_available():
            return False, "torch has no CUDA device here"
    avail = getattr(rt, "available_backends", None)
    if avail is None:
        return True, None
    try:
        table = avail(str(source))
    except TypeError:
        table = avail()
    except IntegrityError:  # a corrupt or replaced model file is a failure to report, not a backend missing here
        raise
    except CganError as e:
        return False, str(e)
    entry = table.get(runtime_name) if isinstance(table, dict) else None
    if entry is None:
        return False, f"cgan.runtime has no backend {runtime_name!r} (it has {', '.join(sorted(table or {}))})"
    ok, reason = entry if isinstance(entry, tuple) else (bool(entry), None)
    return bool(ok), (None if ok else (reason or "not available here"))


class TranslatorRunner(Runner):
    """`cgan.runtime.Translator` with one backend (or variant: backend + options), precision and device."""

    def __init__(self, name: str, source: str | os.PathLike, gen: str, precision: str, threads: int | None = None):
        super().__init__(precision, backend_device(name))
        self.variant = variant(name)
        self.name, self.source, self.gen = name, str(source), gen
        self.opts = {"threads": threads} if threads and self.device == "cpu" else {}
        self.opts.update(self.variant.opts)
        self.torch_based = self.variant.base.startswith("torch")
        self._stack = contextlib.ExitStack()
        self.translator = None

    def options(self) -> dict[str, Any] | None:
        """The options this row ran with: the variant's, completed by what the backend reports once built
        (torch: compile, compile_mode, cuda_graph, memory_format after 'auto'; others: cuda_graph)."""
        out = dict(self.variant.opts)
        be = getattr(self.translator, "backend", None)
        if isinstance(getattr(be, "settings", None), dict):
            out.update(be.settings)
        elif isinstance(getattr(be, "cuda_graph", None), bool):
            out["cuda_graph"] = be.cuda_graph
        return out or None

    def build(self) -> None:
        from cgan.runtime import Translator

        runtime_name, device = RUNTIME_NAMES[self.variant.base]
        t = Translator.load(self.source, direction=self.gen, backend=runtime_name, precision=self.precision,
                            device=device, **self.opts)
        self.translator = self._stack.enter_context(t) if hasattr(t, "__enter__") else t
        if self.translator is None:  # a context manager that does not return itself
            self.translator = t

    def __call__(self, frames: list[np.ndarray]) -> list[np.ndarray]:
        return list(self.translator.translate_batch(frames))

    def close(self) -> None:
        self._stack.close()
        self.translator = None
