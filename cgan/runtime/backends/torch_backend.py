"""The `torch` backend: the trainer's own generator, rebuilt from a pair folder (or an export's pair/ copy).

The only runtime module that uses torch, and only inside methods (`import cgan.runtime` stays torch-free).
On CUDA: FP16 weights, pre/post-processing on the GPU (uint8 crosses PCIe), optional `compile=True`
(torch.compile, kernels specialised per frame size on its first call) and `cuda_graph=True` (one captured graph
per input shape). On CPU: FP32.

Options (`Translator.load(..., backend="torch", **opts)`), checked when the backend is made:
  compile        bool, default False
  compile_mode   one of COMPILE_MODES (only with compile=True), default max-autotune-no-cudagraphs
  cuda_graph     bool, default False; CUDA only
  memory_format  auto (default) | channels_last | nchw — see resolve_memory_format
  upsample       transposed (default: the trained layers) | subpixel (the same arithmetic as a 2x2 convolution
                 and a pixel shuffle, cgan.trainer.networks.SubpixelUpsample; for cgan-bench to measure)
  threads        CPU threads (torch.set_num_threads, in the translating thread for each call)
"""
from __future__ import annotations

import contextlib
import importlib.util
import re
import sys
import threading
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from cgan._optional import pip_extra
from cgan.errors import BackendUnavailable, CganError, first_line
from cgan.runtime import _fork
from cgan.runtime.backends.base import Backend, Model, ShapeCache, log, module_available
from cgan.runtime.backends import cuda as cudahelp

COMPILE_MODES = ("max-autotune-no-cudagraphs", "max-autotune", "reduce-overhead", "default")
DEFAULT_COMPILE_MODE = "max-autotune-no-cudagraphs"
#: compile modes that capture CUDA graphs themselves (cudagraph trees): no manual capture on top of them
GRAPHING_COMPILE_MODES = ("max-autotune", "reduce-overhead")
MEMORY_FORMATS = ("auto", "channels_last", "nchw")
UPSAMPLES = ("transposed", "subpixel")
OPTIONS = ("compile", "compile_mode", "cuda_graph", "memory_format", "upsample")

_FORK_LOCK = threading.Lock()


def _one_thread_after_fork(torch: Any) -> None:
    """Before torch works on the CPU (loading weights, a CPU translation): in a child forked from a process that
    had torch loaded, torch on one thread, said once (cgan.runtime._fork: its pool does not survive a fork)."""
    if _fork.torch_in_parent and torch.get_num_threads() > 1:
        with _FORK_LOCK:
            if torch.get_num_threads() > 1:
                log.warning("warning: this process was forked from one with torch loaded, and PyTorch's CPU thread "
                            "pool does not survive a fork (its next parallel call would hang): torch runs on one "
                            "thread here; start worker processes with 'spawn' (or 'forkserver' without torch "
                            "preloaded), or use backend ort-cpu, to use every thread")
                torch.set_num_threads(1)


@contextlib.contextmanager
def _threads(torch: Any, threads: int | None) -> Iterator[None]:
    """Run torch on `threads` CPU threads in the calling thread for the block, then give that thread its own
    count back. torch's count is each thread's own (OpenMP's): set once when the translator was loaded, it held
    only in the loading thread, and a close in another thread left the loading one at that count for good."""
    had = torch.get_num_threads()
    want = 1 if _fork.torch_in_parent else threads
    if not want or want == had:
        yield
        return
    torch.set_num_threads(want)
    try:
        yield
    finally:
        torch.set_num_threads(had)


@contextlib.contextmanager
def _cudnn_benchmark(torch: Any) -> Iterator[None]:
    """cuDNN's algorithm search on (each new shape is timed once, the fastest kept) for the block: the flag is
    the process's, and setting it for good changed the embedding app's own torch work. Best effort: the app's
    other threads see it on while a translation runs."""
    had = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = True
    try:
        yield
    finally:
        torch.backends.cudnn.benchmark = had


def resolve_memory_format(memory_format: str = "auto", compiled: bool = False) -> str:
    """'auto' | 'channels_last' | 'nchw' -> the layout the network runs in: 'channels_last' or 'nchw'.

    auto: channels_last when compiled, NCHW (contiguous) in eager. Measured on an H100, FP16, 720p, batch 1
    (PERF_NOTES.md of the project's shared notes, ../shared; copied in docs/runtime.md): eager NCHW 14.98 ms
    vs channels_last + CUDA graph 21.2 ms, and with instance norm removed, both with CUDA graphs, 9.0 ms NCHW vs
    12.7 ms channels_last: eager cuDNN is faster in NCHW. The fastest path measured was torch.compile
    max-autotune with channels_last, 4.71 ms. Again on an H200 (2026-12-04, cgan-bench, FP16 720p, CUDA graphs):
    NCHW 14.98 ms, channels_last 20.31 ms; compiled (channels_last) + graph 5.57 ms. CPU layouts are unmeasured
    and follow the same rule;
    `channels_last` / `nchw` force one.
    """
    if memory_format not in MEMORY_FORMATS:
        raise CganError(f"unknown memory_format {memory_format!r} for the torch backend: use "
                        f"{', '.join(MEMORY_FORMATS)}")
    if memory_format == "auto":
        return "channels_last" if compiled else "nchw"
    return memory_format


def check_options(opts: dict[str, Any], device: str) -> dict[str, Any]:
    """Validate the torch backend's options; return its effective settings (compile, compile_mode,
    cuda_graph, memory_format). One-line CganError for an unknown option or value, or a combination that
    cannot work."""
    TorchBackend.check_opts(opts, device)  # unknown options, threads / device_id: the rule every backend shares
    for key in ("compile", "cuda_graph"):
        if opts.get(key) is not None and not isinstance(opts[key], bool):
            raise CganError(f"torch backend option {key} must be True or False, got {opts[key]!r}")
    compiled = bool(opts.get("compile"))
    mode = opts.get("compile_mode")
    if mode is not None:
        if mode not in COMPILE_MODES:
            raise CganError(f"unknown compile_mode {mode!r} for the torch backend: use {', '.join(COMPILE_MODES)}")
        if not compiled:
            raise CganError(f"compile_mode={mode!r} needs compile=True (the torch backend runs eager otherwise)")
    mode = (mode or DEFAULT_COMPILE_MODE) if compiled else None
    graph = bool(opts.get("cuda_graph"))
    if graph and device != "cuda":
        raise CganError(f"CUDA graphs (cuda_graph=True, --cuda-graphs) need device cuda; the torch backend runs on "
                        f"{device} here: drop them")
    if graph and mode in GRAPHING_COMPILE_MODES:
        raise CganError(f"compile_mode {mode!r} captures CUDA graphs itself: drop cuda_graph=True or use "
                        f"compile_mode {DEFAULT_COMPILE_MODE!r}")
    upsample = opts.get("upsample")
    upsample = "transposed" if upsample is None else upsample
    if not isinstance(upsample, str) or upsample not in UPSAMPLES:
        raise CganError(f"unknown upsample {upsample!r} for the torch backend: use {', '.join(UPSAMPLES)}")
    return {"compile": compiled, "compile_mode": mode, "cuda_graph": graph,
            "memory_format": resolve_memory_format(opts.get("memory_format") or "auto", compiled),
            "upsample": upsample}


def _cuda_ok() -> tuple[bool, str]:
    """Can torch use a GPU here? Answered without initialising CUDA in this process: the GPU count comes from
    NVML (cudahelp), and `torch.cuda.is_available()` is not called because it runs cuInit, after which a
    fork()ed child (multiprocessing, DataLoader workers, gunicorn) cannot use CUDA. Whether this torch build
    can drive this driver is checked when the backend is loaded."""
    if cudahelp.gpu_count() == 0:  # answers without importing torch on GPU-less machines
        return False, cudahelp.no_gpu_reason()
    try:
        version, cuda = _torch_build()
    except Exception as e:  # noqa: BLE001 - a torch that is installed but does not import: said, not raised
        why = first_line(e, 200)
        return False, f"torch is installed but does not import ({why}): reinstall it"
    if not cuda:
        return False, f"this torch ({version}) has no CUDA support: install a CUDA build of torch"
    return True, ""


_BUILD_LINE = re.compile(r"^(__version__|cuda)\b[^=\n]*=\s*(?:'([^'\n]*)'|\"([^\"\n]*)\"|None)\s*$", re.M)


def _torch_build() -> tuple[str, str | None]:
    """(torch's version, the CUDA version it was built for, None: a CPU build), from torch/version.py read as text:
    importing torch (seconds, hundreds of MB) only to list the backends, on every machine with an NVIDIA GPU,
    is what `import cgan.runtime` promises not to do. An imported torch, or a file that does not say, is asked."""
    torch = sys.modules.get("torch")
    if torch is None:
        try:
            spec = importlib.util.find_spec("torch")
            folders = list(spec.submodule_search_locations or []) if spec is not None else []
            text = (Path(folders[0]) / "version.py").read_text(encoding="utf-8") if folders else ""
        except (ImportError, ValueError, OSError, UnicodeError):
            text = ""
        found = {m.group(1): m.group(2) if m.group(2) is not None else m.group(3) for m in _BUILD_LINE.finditer(text)}
        if "__version__" in found and "cuda" in found:
            return found["__version__"] or "?", found["cuda"] or None
        import torch
    return torch.__version__, (torch.version.cuda or "?") if torch.backends.cuda.is_built() else None


class TorchBackend(Backend):
    name = "torch"
    devices = ("cuda", "cpu")
    options = OPTIONS

    def __init__(self, model: Model, precision: str | None = None, device: str | None = None, **opts: Any):
        super().__init__(model, precision, device, **opts)
        #: what this backend runs with: compile, compile_mode, cuda_graph, memory_format (after 'auto'), upsample
        self.settings = check_options(self.opts, self.device)

    @classmethod
    def default_device(cls) -> str:
        return "cuda" if module_available("torch") and _cuda_ok()[0] else "cpu"

    @classmethod
    def check(cls, model=None, precision=None, device=None):
        if not module_available("torch"):
            return False, f"torch is not installed: {pip_extra('cpu')} (or the gpu extra)"
        if model is not None and not model.has_pair():
            return False, f"{model.folder} has no pair weights (pair/ folder) for the torch backend; re-export it"
        if device == "cuda":
            return _cuda_ok()
        if device == "cpu" and precision == "fp16":
            return False, "fp16 does not run fast on the CPU: use precision fp32 or device cuda"
        if device is None:
            ok, reason = _cuda_ok()
            return True, "cuda" if ok else f"cpu only: {reason}"
        return True, ""

    def _activate_impl(self) -> None:
        import torch
        from cgan.trainer.weights import load_generator

        self.torch = torch
        _one_thread_after_fork(torch)  # the weights are converted on the CPU's threads too
        if self.device == "cuda" and not torch.cuda.is_available():
            raise BackendUnavailable(f"torch {torch.__version__} (CUDA {torch.version.cuda}) cannot use the GPU "
                                     f"here: is the NVIDIA driver older than this CUDA build? (nvidia-smi shows "
                                     f"the driver's CUDA version); use device='cpu' or a matching torch")
        dev = torch.device(self.device)
        dtype = torch.float16 if self.precision == "fp16" else torch.float32
        net = load_generator(self.model.pair(), self.model.gen, device=dev, dtype=dtype)
        s = self.settings
        if s["upsample"] == "subpixel":
            from cgan.trainer.networks import subpixel_upsampling

            net = subpixel_upsampling(net)
        self.memory_format = torch.channels_last if s["memory_format"] == "channels_last" else torch.contiguous_format
        net = net.to(memory_format=self.memory_format)
        if s["compile"]:
            # dynamic=False: kernels specialised per frame size (a video keeps one size), not one generic set.
            # Each new size recompiles the same code; raise dynamo's limit (8) so that a benchmark's many
            # sizes × batches do not fall back to eager silently after the eighth.
            from torch._dynamo import config as cfg

            for key in ("recompile_limit", "cache_size_limit"):
                if hasattr(cfg, key):
                    setattr(cfg, key, max(getattr(cfg, key), 64))
                    break
            net = torch.compile(net, mode=s["compile_mode"], dynamic=False)
        self.net, self.dev, self.dtype = net, dev, dtype
        self.cuda_graph = s["cuda_graph"]
        self.graphs: dict[tuple[int, ...], Any] = {}
        self.swap = torch.tensor([2, 1, 0], device=dev)
        # batch shape -> pinned host buffers; a dropped shape's CUDA graph (a private memory pool) goes with them
        self.pinned = ShapeCache(drop=lambda key, _, graphs=self.graphs: graphs.pop(key, None))
        self.threads = int(self.opts["threads"]) if self.device == "cpu" and self.opts.get("threads") else None
        log.debug("torch: %s on %s (%s), compile %s, cuda_graph %s, %s, upsample %s", self.model.describe(), dev,
                  dtype, s["compile_mode"] or "off", s["cuda_graph"], s["memory_format"], s["upsample"])

    def _forward(self, frames_u8: Any) -> Any:
        """uint8 (N,H,W,3) BGR on the device -> uint8 (N,H,W,3) BGR on the device."""
        torch = self.torch
        x = frames_u8.index_select(3, self.swap).permute(0, 3, 1, 2).to(self.dtype)
        x = (x / 127.5 - 1.0).contiguous(memory_format=self.memory_format)
        y = self.net(x)
        # NaN (a broken or overflowing model) -> 0 as in the ONNX backends, not whatever the cast makes of it
        y = torch.clamp(torch.round((torch.nan_to_num(y.float(), nan=-1.0) + 1.0) * 127.5), 0.0, 255.0)
        y = y.to(torch.uint8)
        return y.permute(0, 2, 3, 1).index_select(3, self.swap)

    def _infer_impl(self, batch: np.ndarray) -> np.ndarray:
        """_run, torch's errors (no memory for this size, a CUDA failure) as one CganError line naming the batch,
        as the ONNX Runtime backends give theirs."""
        try:
            return self._run(batch)
        except RuntimeError as e:  # torch.OutOfMemoryError and torch.AcceleratorError are RuntimeErrors
            text = first_line(e)
            memory = "memory" in text.lower() or "alloc" in text.lower()
            hint = "a smaller frame size or batch, or another backend" if memory else "another backend"
            raise CganError(f"torch failed running {self.model.describe()} on {self.device} on a batch of "
                            f"{'x'.join(map(str, batch.shape))}: {text}; {hint}") from e

    def _run(self, batch: np.ndarray) -> np.ndarray:
        torch = self.torch
        with torch.inference_mode():
            if self.device == "cpu":
                _one_thread_after_fork(torch)
                if not batch.flags.writeable or any(st < 0 for st in batch.strides):
                    batch = np.array(batch, order="C")  # torch.from_numpy refuses negative strides, warns on these
                with _threads(torch, self.threads):
                    return self._forward(torch.from_numpy(batch)).numpy()
            with _cudnn_benchmark(torch):
                return self._run_cuda(batch)

    def _run_cuda(self, batch: np.ndarray) -> np.ndarray:
        torch = self.torch
        key = batch.shape
        host = self.pinned.get(key)
        if host is None:
            if self.pinned.make_room():
                torch.cuda.empty_cache()  # the dropped shapes' memory back to the device
            host = self.pinned.put(key, (torch.empty(key, dtype=torch.uint8).pin_memory(),
                                         torch.empty(key, dtype=torch.uint8).pin_memory()))
        h_in, h_out = host
        h_in.numpy()[...] = batch
        if self.cuda_graph:
            static_in, static_out, graph = self._graph(key)
            static_in.copy_(h_in, non_blocking=True)
            graph.replay()
            h_out.copy_(static_out, non_blocking=True)
        else:
            h_out.copy_(self._forward(h_in.to(self.dev, non_blocking=True)), non_blocking=True)
        torch.cuda.current_stream().synchronize()
        return h_out.numpy()

    def _graph(self, key: tuple[int, ...]) -> tuple[Any, Any, Any]:
        torch = self.torch
        if key not in self.graphs:
            static_in = torch.zeros(key, dtype=torch.uint8, device=self.dev)
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                for _ in range(3):  # warm-up (cudnn.benchmark picks algorithms) before capture
                    self._forward(static_in)
            torch.cuda.current_stream().wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            try:
                with torch.cuda.graph(graph):
                    static_out = self._forward(static_in)
            except RuntimeError as e:
                text = first_line(e)
                if "memory" in text.lower() or "alloc" in text.lower():
                    raise  # (said by _infer_impl: a smaller size or batch)
                # the warm-up above ran the same forward eagerly: what failed is the capture itself (an op or a
                # library call that cannot be captured), which running without graphs avoids
                raise CganError(f"torch could not capture a CUDA graph of {self.model.describe()} for a batch of "
                                f"{'x'.join(map(str, key))}: {text}; run without CUDA graphs (--no-cuda-graphs, "
                                f"cuda_graph=False)") from e
            self.graphs[key] = (static_in, static_out, graph)
        return self.graphs[key]

    def _deactivate_impl(self) -> None:
        self.graphs.clear()
        self.pinned.clear()
        self.net = None
        if self.device == "cuda":
            self.torch.cuda.empty_cache()

