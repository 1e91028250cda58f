"""The `torch` backend: the trainer's own generator, rebuilt from a pair folder (or an export's pair/ copy).

The only runtime module that uses torch, and only inside methods (`import cgan.runtime` stays torch-free).
On CUDA: FP16 weights, channels_last, pre/post-processing on the GPU (uint8 crosses PCIe), optional
`compile=True` (torch.compile) and `cuda_graph=True` (one captured graph per input shape). On CPU: FP32.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from cgan.runtime.backends.base import Backend, log, module_available
from cgan.runtime.backends import cuda as cudahelp


def _cuda_ok() -> tuple[bool, str]:
    if cudahelp.gpu_count() == 0:  # answers without importing torch on GPU-less machines
        return False, cudahelp.no_gpu_reason()
    import torch

    if not torch.cuda.is_available():
        return False, f"this torch ({torch.__version__}) has no CUDA support: install a CUDA build of torch"
    return True, ""


class TorchBackend(Backend):
    name = "torch"
    devices = ("cuda", "cpu")

    @classmethod
    def default_device(cls) -> str:
        return "cuda" if module_available("torch") and _cuda_ok()[0] else "cpu"

    @classmethod
    def check(cls, model=None, precision=None, device=None):
        if not module_available("torch"):
            return False, "torch is not installed: pip install 'cgan[cpu]' (or 'cgan[gpu]')"
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
        dev = torch.device(self.device)
        dtype = torch.float16 if self.precision == "fp16" else torch.float32
        net = load_generator(self.model.pair(), self.model.gen, device=dev, dtype=dtype)
        if self.device == "cuda":
            net = net.to(memory_format=torch.channels_last)
            torch.backends.cudnn.benchmark = True
        if self.opts.get("compile"):
            # dynamic=False: kernels specialised per frame size (a video keeps one size), not one generic set
            net = torch.compile(net, mode=self.opts.get("compile_mode", "max-autotune-no-cudagraphs"), dynamic=False)
        self.net, self.dev, self.dtype = net, dev, dtype
        self.cuda_graph = bool(self.opts.get("cuda_graph")) and self.device == "cuda"
        self.graphs: dict[tuple[int, ...], Any] = {}
        self.swap = torch.tensor([2, 1, 0], device=dev)
        self.pinned: dict[tuple[int, ...], Any] = {}
        if self.device == "cpu" and self.opts.get("threads"):
            torch.set_num_threads(int(self.opts["threads"]))
        log.debug("torch: %s on %s (%s)", self.model.describe(), dev, dtype)

    def _forward(self, frames_u8: Any) -> Any:
        """uint8 (N,H,W,3) BGR on the device -> uint8 (N,H,W,3) BGR on the device."""
        torch = self.torch
        x = frames_u8.index_select(3, self.swap).permute(0, 3, 1, 2).to(self.dtype)
        x = x / 127.5 - 1.0
        if self.device == "cuda":
            x = x.contiguous(memory_format=torch.channels_last)
        y = self.net(x)
        y = torch.clamp(torch.round((y.float() + 1.0) * 127.5), 0.0, 255.0).to(torch.uint8)
        return y.permute(0, 2, 3, 1).index_select(3, self.swap)

    def _infer_impl(self, batch: np.ndarray) -> np.ndarray:
        torch = self.torch
        with torch.inference_mode():
            if self.device == "cpu":
                return self._forward(torch.from_numpy(batch)).numpy()
            key = batch.shape
            host = self.pinned.get(key)
            if host is None:
                host = self.pinned[key] = (torch.empty(key, dtype=torch.uint8).pin_memory(),
                                           torch.empty(key, dtype=torch.uint8).pin_memory())
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
            with torch.cuda.graph(graph):
                static_out = self._forward(static_in)
            self.graphs[key] = (static_in, static_out, graph)
        return self.graphs[key]

    def _deactivate_impl(self) -> None:
        self.graphs.clear()
        self.pinned.clear()
        self.net = None
        if self.device == "cuda":
            self.torch.cuda.empty_cache()

