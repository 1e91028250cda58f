"""Small CUDA helpers without torch: is there a GPU and what is it (NVML via ctypes, else the driver in a child
process, never cuInit here), a device-to-host copy into an existing array (libcudart via ctypes, for ort-cuda), and, for the
TensorRT backend, device memory, pinned host memory, streams and CUDA graphs through cuda-python
(`cuda.bindings.runtime`, or the older `from cuda import cudart`). Everything imports lazily; nothing here runs
at `import cgan.runtime`.
"""
from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np

from cgan._env import env_flag
from cgan._optional import pip_extra
from cgan.errors import BackendUnavailable, CganError


# ---- is there a GPU? (NVML via ctypes: no CUDA state in this process, no toolkit, no torch) ---------------
# cuInit in this process would break CUDA in children forked later ("CUDA initialized before fork":
# multiprocessing, DataLoader workers, gunicorn), so the question is asked where it leaves nothing behind:
# NVML (libnvidia-ml, shipped with the driver; it does not initialise the CUDA driver), else the driver in a
# short child process. Loading a library (dlopen) creates no CUDA state; only cuInit does.
NVML_LIBRARIES = ("libnvidia-ml.so.1", "libnvidia-ml.so", "nvml.dll")
CUDA_LIBRARIES = ("libcuda.so.1", "libcuda.so", "nvcuda.dll")
DRIVER_PROBE_TIMEOUT_S = 10.0  # cuInit can take seconds on multi-GPU machines without persistence mode

# Run as `python -I -S -c DRIVER_PROBE LIB...` in a child: print how many devices the driver sees (the child
# inherits CUDA_VISIBLE_DEVICES, which the driver applies itself), 0 when it cannot say.
DRIVER_PROBE = """
import ctypes, sys
count = 0
for name in sys.argv[1:]:
    try:
        lib = ctypes.CDLL(name)
    except OSError:
        continue
    n = ctypes.c_int(0)
    if lib.cuInit(0) == 0 and lib.cuDeviceGetCount(ctypes.byref(n)) == 0:
        count = n.value
    break
print(count)
"""


@dataclass(frozen=True)
class GpuProbe:
    count: int
    how: str     # "nvml" | "driver subprocess" | "none"
    why: str     # when count is 0: why, in words for no_gpu_reason()


def _load(names: tuple[str, ...]) -> Any:
    for name in names:
        try:
            return ctypes.CDLL(name)
        except OSError:
            continue
    return None


def _visible_entries(value: str) -> list[str]:
    return [e.strip() for e in value.split(",")] if value.strip() else []


def _nvml_uuids(nvml: Any, count: int) -> list[str] | None:
    """The GPUs' UUIDs ("GPU-…") in NVML order, or None if this NVML cannot say."""
    uuids = []
    try:
        for i in range(count):
            handle = ctypes.c_void_p()
            if nvml.nvmlDeviceGetHandleByIndex_v2(ctypes.c_uint(i), ctypes.byref(handle)) != 0:
                return None
            buf = ctypes.create_string_buffer(96)
            if nvml.nvmlDeviceGetUUID(handle, buf, ctypes.c_uint(96)) != 0:
                return None
            uuids.append(buf.value.decode("ascii", "replace"))
    except AttributeError:
        return None
    return uuids


def _apply_visible(value: str, physical: int, uuids: list[str] | None) -> int:
    """How many of `physical` GPUs CUDA_VISIBLE_DEVICES=`value` leaves visible, as the driver reads it: entries
    in order until the first invalid one (an index out of range, -1, a UUID no GPU has, anything else); a
    repeated entry hides everything. `GPU-<uuid prefix>` is matched against NVML's UUIDs when it has them
    (a prefix must name one GPU), else counted; `MIG-…` entries are counted. Never more than `physical`."""
    seen: set[object] = set()
    for entry in _visible_entries(value):
        key: object
        if entry[:1] in tuple("0123456789"):
            digits = entry[:len(entry) - len(entry.lstrip("0123456789"))]  # like strtoul: "1abc" is 1
            key = int(digits)
            if key >= physical:
                break
        elif entry.startswith("GPU-") and uuids is not None:
            matches = [i for i, u in enumerate(uuids) if u.startswith(entry)]
            if len(matches) != 1:
                break
            key = matches[0]
        elif entry.startswith(("GPU-", "MIG-")):
            key = entry
        else:
            break
        if key in seen:
            return 0
        seen.add(key)
    return min(len(seen), physical)


@contextlib.contextmanager
def _nvml() -> Iterator[Any]:
    """NVML, initialised for the block (shut down after it), or None when there is no usable NVML here."""
    nvml = _load(NVML_LIBRARIES)
    try:
        ready = nvml is not None and nvml.nvmlInit_v2() == 0
    except AttributeError:  # not an NVML (or one older than the _v2 API, 2012)
        ready = False
    if not ready:
        yield None
        return
    try:
        yield nvml
    finally:
        nvml.nvmlShutdown()


def _nvml_count(visible: str | None) -> GpuProbe | None:
    """Devices visible through NVML, or None when there is no usable NVML here."""
    with _nvml() as nvml:
        return None if nvml is None else _nvml_devices(nvml, visible)


def _nvml_devices(nvml: Any, visible: str | None) -> GpuProbe | None:
    try:
        n = ctypes.c_uint(0)
        if nvml.nvmlDeviceGetCount_v2(ctypes.byref(n)) != 0:
            return None
        physical = int(n.value)
        if visible is None or physical == 0:
            return GpuProbe(physical, "nvml", "the NVIDIA driver reports no GPU")
        uuids = _nvml_uuids(nvml, physical) if "GPU-" in visible else None
        count = _apply_visible(visible, physical, uuids)
        return GpuProbe(count, "nvml", f"CUDA_VISIBLE_DEVICES={visible!r} names none of the {physical} GPU(s)")
    except AttributeError:
        return None


def _probe_python() -> str | None:
    """The interpreter to run a driver probe with, None for an embedded one (sys.executable may then be the host
    application, not something to run with -c)."""
    exe = sys.executable or ""
    return exe if os.path.basename(exe).lower().startswith(("python", "pypy")) else None


def _run_probe(exe: str, script: str, *args: str) -> str | None:
    """What `script` (DRIVER_PROBE, DEVICE_PROBE) prints in a child `exe -I -S -c`; None when it could not start
    or failed. subprocess.TimeoutExpired when the driver does not answer within DRIVER_PROBE_TIMEOUT_S."""
    try:
        done = subprocess.run([exe, "-I", "-S", "-c", script, *args], capture_output=True, text=True,
                              timeout=DRIVER_PROBE_TIMEOUT_S, stdin=subprocess.DEVNULL)
    except OSError:
        return None
    return done.stdout if done.returncode == 0 else None


def _driver_count_in_subprocess() -> GpuProbe:
    """Ask the CUDA driver in a short child process (no NVML here); cuInit then happens only there."""
    if _load(CUDA_LIBRARIES) is None:
        return GpuProbe(0, "none", "no NVIDIA driver")
    exe = _probe_python()
    if exe is None:
        return GpuProbe(0, "none", f"no NVML library, and {sys.executable or 'this interpreter'} cannot run a probe")
    try:
        out = _run_probe(exe, DRIVER_PROBE, *CUDA_LIBRARIES)
    except subprocess.TimeoutExpired:
        return GpuProbe(0, "driver subprocess", f"the CUDA driver did not answer within {DRIVER_PROBE_TIMEOUT_S:g} s")
    try:
        count = int(out.strip()) if out is not None else 0
    except ValueError:  # printed something else (a warning)
        count = 0
    why = "the CUDA driver reports no usable device"
    if "CUDA_VISIBLE_DEVICES" in os.environ:
        why += f" with CUDA_VISIBLE_DEVICES={os.environ['CUDA_VISIBLE_DEVICES']!r}"
    return GpuProbe(max(0, count), "driver subprocess", why)


@functools.lru_cache(maxsize=1)
def probe_gpus() -> GpuProbe:
    """How many CUDA devices this process may use, found without creating CUDA state here (see above)."""
    if env_flag("CGAN_NO_CUDA"):
        return GpuProbe(0, "none", "CGAN_NO_CUDA is set")
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None and _apply_visible(visible, 1 << 30, None) == 0:  # "", "-1", "none": no GPU at all
        return GpuProbe(0, "none", f"CUDA_VISIBLE_DEVICES={visible!r} hides every GPU")
    found = _nvml_count(visible)
    return found if found is not None else _driver_count_in_subprocess()


def gpu_count() -> int:
    """Number of CUDA devices visible to this process (0 without a driver); CUDA_VISIBLE_DEVICES is honoured.
    Cached; never calls cuInit in this process, so forking later keeps CUDA usable in the children."""
    return probe_gpus().count


def no_gpu_reason() -> str:
    p = probe_gpus()
    why = p.why if p.count == 0 else "no device visible"
    return f"no CUDA GPU here ({why})"


# ---- does cuda-python fit this driver? ---------------------------------------------------------------------
@functools.lru_cache(maxsize=1)
def driver_cuda_version() -> tuple[int, int] | None:
    """The newest CUDA version the installed driver supports (NVML: no CUDA state here), None if unknown."""
    with _nvml() as nvml:
        v = ctypes.c_int(0)
        try:
            if nvml is None or nvml.nvmlSystemGetCudaDriverVersion_v2(ctypes.byref(v)) != 0 or v.value <= 0:
                return None
        except AttributeError:
            return None
        return v.value // 1000, v.value % 1000 // 10


def cuda_python_version() -> str | None:
    """The installed cuda-python's version (its cuda-bindings package from 12.6 on), None if unknown."""
    from importlib import metadata

    for dist in ("cuda-bindings", "cuda-python"):
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return None


def cuda_python_problem(version: str | None = None, driver: tuple[int, int] | None = None) -> str | None:
    """Why the installed cuda-python cannot drive this GPU (None: it can, or nothing can be told). cuda-python
    13 calls CUDA 13's runtime, which an older driver (before 580) refuses; 11 lacks the API used here."""
    version = version or cuda_python_version()
    driver = driver or driver_cuda_version()
    m = re.match(r"(\d+)\.", version or "")
    if m is None:
        return None
    major = int(m.group(1))
    if driver is not None and driver[0] < 12:  # no cuda-python this backend can use runs on it
        return (f"this NVIDIA driver supports CUDA {driver[0]}.{driver[1]}; TensorRT through cuda-python needs "
                f"CUDA 12 or newer: update the driver")
    if major < 12:
        return f"cuda-python {version} is too old: pip install 'cuda-python>=12.6'"
    if driver is not None and major > driver[0]:
        want = "'cuda-python>=12.6,<13'" if driver[0] == 12 else f"'cuda-python<{driver[0] + 1}'"
        return (f"cuda-python {version} needs an NVIDIA driver for CUDA {major}, this one supports CUDA "
                f"{driver[0]}.{driver[1]}: pip install {want}, or update the driver")
    return None


# ---- device -> host copy into an existing array (ort-cuda; libcudart via ctypes, no cuda-python) -----------
CUDART_LIBRARIES = ("libcudart.so.12", "libcudart.so.13", "libcudart.so.11.0", "libcudart.so",
                    "cudart64_12.dll", "cudart64_13.dll", "cudart64_110.dll")
CUDA_MEMCPY_DEFAULT = 4  # cudaMemcpyDefault: direction from the pointers (unified addressing)


def _loaded_cudart_paths() -> list[str]:
    """Paths of the CUDA runtime libraries already mapped into this process (Linux), e.g. by onnxruntime-gpu."""
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as f:
            paths = {line.split(None, 5)[-1].strip() for line in f if "libcudart" in line}
    except OSError:
        return []
    return sorted(p for p in paths if p.startswith("/"))


@functools.lru_cache(maxsize=1)
def cudart_ctypes() -> Any:
    """The CUDA runtime library through ctypes, preferring the one this process already uses; None if absent.
    Only called once a CUDA backend runs (so CUDA is initialised anyway)."""
    for name in (*_loaded_cudart_paths(), *CUDART_LIBRARIES):
        try:
            lib = ctypes.CDLL(name)
        except OSError:
            continue
        if hasattr(lib, "cudaMemcpy"):
            lib.cudaMemcpy.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
            lib.cudaMemcpy.restype = ctypes.c_int
            return lib
    return None


def copy_device_to_host(dst: np.ndarray, src_ptr: int) -> bool:
    """Copy dst.nbytes bytes from device address `src_ptr` into the C-contiguous host array `dst`, synchronously,
    without allocating. False when there is no CUDA runtime library to call (the caller copies another way)."""
    lib = cudart_ctypes()
    if lib is None:
        return False
    if not dst.flags.c_contiguous:
        raise ValueError("copy_device_to_host needs a C-contiguous destination")
    err = lib.cudaMemcpy(dst.ctypes.data, src_ptr, dst.nbytes, CUDA_MEMCPY_DEFAULT)
    if err != 0:
        raise CganError(f"CUDA device-to-host copy failed (cudaError {err}); check the GPU and driver (nvidia-smi)")
    return True


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
        raise BackendUnavailable(f"cuda-python is not installed: {pip_extra('tensorrt')} "
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
        advice = cuda_python_problem() if "InsufficientDriver" in name else None
        advice = advice or "check the GPU and driver (nvidia-smi)"
        raise CganError(f"CUDA call failed: {name}; {advice}")
    if not rest:
        return None
    return rest[0] if len(rest) == 1 else rest


# Run as `python -I -S -c DEVICE_PROBE INDEX LIB...` in a child: print device INDEX's compute capability and name
# (in CUDA's own order: CUDA_VISIBLE_DEVICES and CUDA_DEVICE_ORDER applied by the driver), nothing when it cannot.
# CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR / _MINOR are 75 / 76.
DEVICE_PROBE = """
import ctypes, sys
for name in sys.argv[2:]:
    try:
        lib = ctypes.CDLL(name)
    except OSError:
        continue
    dev, major, minor, buf = ctypes.c_int(0), ctypes.c_int(0), ctypes.c_int(0), ctypes.create_string_buffer(256)
    if (lib.cuInit(0) == 0 and lib.cuDeviceGet(ctypes.byref(dev), int(sys.argv[1])) == 0
            and lib.cuDeviceGetName(buf, 256, dev) == 0
            and lib.cuDeviceGetAttribute(ctypes.byref(major), 75, dev) == 0
            and lib.cuDeviceGetAttribute(ctypes.byref(minor), 76, dev) == 0):
        print(f"{major.value}.{minor.value}")
        print(buf.value.decode("utf-8", "replace"))
    break
"""


@functools.lru_cache(maxsize=8)
def device_properties(device: int = 0) -> tuple[str, str]:
    """(GPU name, compute capability 'major.minor') of CUDA device `device`, asked of the driver in a short child
    process, so that checking an engine against this GPU (available_backends(), a TensorRT check) creates no CUDA
    state here (see above); an embedded interpreter that cannot run a child asks the runtime API here. Cached."""
    exe = _probe_python()
    if exe is None:
        rt = cudart()
        props = call(rt.cudaGetDeviceProperties(device))
        name = props.name
        if isinstance(name, (bytes, bytearray)):
            name = bytes(name).split(b"\0", 1)[0].decode(errors="replace")
        return str(name), f"{props.major}.{props.minor}"
    try:
        lines = (_run_probe(exe, DEVICE_PROBE, str(int(device)), *CUDA_LIBRARIES) or "").splitlines()
    except subprocess.TimeoutExpired:
        lines = []
    if len(lines) != 2 or not re.fullmatch(r"\d+\.\d+", lines[0]):
        raise CganError(f"the CUDA driver did not say what GPU {device} is (name, compute capability); check the "
                        f"GPU and driver (nvidia-smi)")
    return lines[1], lines[0]


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
