"""Small CUDA helpers without torch: is there a GPU (ctypes + the driver), and, for the TensorRT backend,
device memory, pinned host memory, streams and CUDA graphs through cuda-python (`cuda.bindings.runtime`, or
the older `from cuda import cudart`). Everything imports lazily; nothing here runs at `import cgan.runtime`.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
from typing import Any

import numpy as np

from cgan.errors import BackendUnavailable, CganError


# ---- is there a GPU? (driver API via ctypes: cheap, needs no CUDA toolkit and no torch) ------------------
@functools.lru_cache(maxsize=1)
def gpu_count() -> int:
    """Number of CUDA devices the driver sees (0 without a driver). CUDA_VISIBLE_DEVICES is honoured."""
    if os.environ.get("CGAN_NO_CUDA"):
        return 0
    for name in ("libcuda.so.1", "libcuda.so", ctypes.util.find_library("cuda") or "", "nvcuda.dll"):
        if not name:
            continue
        try:
            lib = ctypes.CDLL(name)
        except OSError:
            continue
        try:
            if lib.cuInit(0) != 0:
                return 0
            n = ctypes.c_int(0)
            if lib.cuDeviceGetCount(ctypes.byref(n)) != 0:
                return 0
            return int(n.value)
        except AttributeError:
            return 0
    return 0


def no_gpu_reason() -> str:
    return "no CUDA GPU here (no NVIDIA driver or no device visible)"


# ---- cuda-python runtime wrappers (TensorRT backend) -------------------------------------------------------
@functools.lru_cache(maxsize=1)
def cudart() -> Any:
    """The cuda-python runtime module (new layout first)."""
    try:
        from cuda.bindings import runtime as rt  # cuda-python >= 12.6
        return rt
    except ImportError:
        pass
    try:
        from cuda import cudart as rt  # older cuda-python
        return rt
    except ImportError:
        raise BackendUnavailable("cuda-python is not installed: pip install 'cgan[tensorrt]' "
                                 "(or cuda-python>=12.6)") from None


def call(result: Any) -> Any:
    """Unwrap cuda-python's (err, *values) tuples; raise on an error code."""
    rt = cudart()
    if isinstance(result, tuple):
        err, rest = result[0], result[1:]
    else:
        err, rest = result, ()
    if int(err) != int(rt.cudaError_t.cudaSuccess):
        name = getattr(err, "name", str(err))
        raise CganError(f"CUDA call failed: {name}; check the GPU and driver (nvidia-smi)")
    if not rest:
        return None
    return rest[0] if len(rest) == 1 else rest


def device_properties(device: int = 0) -> tuple[str, str]:
    """(GPU name, compute capability 'major.minor') via the runtime API."""
    rt = cudart()
    props = call(rt.cudaGetDeviceProperties(device))
    name = props.name
    if isinstance(name, (bytes, bytearray)):
        name = bytes(name).split(b"\0", 1)[0].decode(errors="replace")
    return str(name), f"{props.major}.{props.minor}"


class Stream:
    def __init__(self) -> None:
        rt = cudart()
        self.handle = call(rt.cudaStreamCreateWithFlags(rt.cudaStreamNonBlocking))

    @property
    def ptr(self) -> int:
        return int(self.handle)

    def synchronize(self) -> None:
        call(cudart().cudaStreamSynchronize(self.handle))

    def free(self) -> None:
        if self.handle is not None:
            call(cudart().cudaStreamDestroy(self.handle))
            self.handle = None


class DeviceBuffer:
    """Raw device memory of `nbytes`."""

    def __init__(self, nbytes: int):
        self.nbytes = int(nbytes)
        self.ptr = int(call(cudart().cudaMalloc(max(1, self.nbytes))))

    def free(self) -> None:
        if self.ptr:
            call(cudart().cudaFree(self.ptr))
            self.ptr = 0


class PinnedArray:
    """Page-locked host memory viewed as a numpy array (so async copies really are async)."""

    def __init__(self, shape: tuple[int, ...], dtype: Any):
        dtype = np.dtype(dtype)
        self.nbytes = int(np.prod(shape)) * dtype.itemsize
        self.ptr = int(call(cudart().cudaMallocHost(max(1, self.nbytes))))
        raw = (ctypes.c_uint8 * max(1, self.nbytes)).from_address(self.ptr)
        self.array = np.frombuffer(raw, dtype=np.uint8, count=self.nbytes).view(dtype).reshape(shape)

    def free(self) -> None:
        if self.ptr:
            self.array = None
            call(cudart().cudaFreeHost(self.ptr))
            self.ptr = 0


def copy_htod_async(dst: DeviceBuffer, src: PinnedArray, stream: Stream) -> None:
    rt = cudart()
    call(rt.cudaMemcpyAsync(dst.ptr, src.ptr, src.nbytes, rt.cudaMemcpyKind.cudaMemcpyHostToDevice, stream.handle))


def copy_dtoh_async(dst: PinnedArray, src: DeviceBuffer, stream: Stream) -> None:
    rt = cudart()
    call(rt.cudaMemcpyAsync(dst.ptr, src.ptr, dst.nbytes, rt.cudaMemcpyKind.cudaMemcpyDeviceToHost, stream.handle))


class Graph:
    """A CUDA graph captured from work enqueued on `stream` (fixed shapes and addresses), replayed by launch()."""

    def __init__(self, stream: Stream):
        self.stream = stream
        self.graph = None
        self.exec = None

    def begin(self) -> None:
        rt = cudart()
        call(rt.cudaStreamBeginCapture(self.stream.handle,
                                       rt.cudaStreamCaptureMode.cudaStreamCaptureModeThreadLocal))

    def end(self) -> None:
        rt = cudart()
        self.graph = call(rt.cudaStreamEndCapture(self.stream.handle))
        self.exec = call(rt.cudaGraphInstantiate(self.graph, 0))

    def abort(self) -> None:
        """End a capture that failed midway, so the stream leaves capture mode; drop whatever was captured."""
        rt = cudart()
        try:
            err, graph = rt.cudaStreamEndCapture(self.stream.handle)[:2]
            if graph is not None and int(err) == 0:
                rt.cudaGraphDestroy(graph)
        except Exception:  # the stream may not be capturing any more; nothing to undo then
            pass
        self.free()

    def launch(self) -> None:
        call(cudart().cudaGraphLaunch(self.exec, self.stream.handle))

    def free(self) -> None:
        rt = cudart()
        if self.exec is not None:
            call(rt.cudaGraphExecDestroy(self.exec))
            self.exec = None
        if self.graph is not None:
            call(rt.cudaGraphDestroy(self.graph))
            self.graph = None
