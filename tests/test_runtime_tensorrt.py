"""TensorRT backends without TensorRT: sidecar compatibility logic and check() with fakes; a real engine runs in
tests/test_gpu_parity.py (gpu)."""
from __future__ import annotations

import json
import sys

import numpy as np
import pytest

from cgan._files import file_record, write_json_atomic
from cgan.errors import BackendUnavailable, CganError, IntegrityError
from cgan.runtime.backends import tensorrt as trtmod
from cgan.runtime.backends.base import load_model
from cgan.runtime.backends.cuda import cuda_python_problem
from cgan.runtime.backends.tensorrt import (Environment, TensorRTBackend, TensorRTRTXBackend, profile_for,
                                           sidecar_problems)
from cgan.spec import EXPORT_FORMAT, FORMAT_VERSION, GeneratorSpec, PairSpec

ENV = Environment("tensorrt", "10.12.0.36", "NVIDIA H100 80GB HBM3", "9.0")
ONNX = "a" * 64


def sidecar(**over):
    side = {"format": "cgan.engine", "version": 1, "flavour": "tensorrt", "tensorrt_version": "10.12.0.36",
            "gpu_name": "NVIDIA H100 80GB HBM3", "compute_capability": "9.0", "onnx_sha256": ONNX,
            "profiles": [{"min": [1, 3, 16, 16], "opt": [1, 3, 256, 256], "max": [4, 3, 1088, 1920]}]}
    side.update(over)
    return side


def test_matching_sidecar_has_no_problems():
    assert sidecar_problems(sidecar(), ENV, {ONNX}) == []
    # aliases: nested gpu object, trt_version, cc as a list of ints
    alias = sidecar(gpu={"name": "NVIDIA H100", "compute_capability": [9, 0]}, trt_version="10.12.0.36")
    for k in ("tensorrt_version", "gpu_name", "compute_capability"):
        alias.pop(k)
    assert sidecar_problems(alias, ENV, {ONNX}) == []


@pytest.mark.parametrize("over, words", [
    ({"flavour": "tensorrt-rtx"}, "tensorrt-rtx engine"),
    ({"tensorrt_version": "10.11.0.33"}, "built with TensorRT 10.11.0.33, this is 10.12.0.36"),
    ({"tensorrt_version": None}, "which TensorRT version"),
    ({"compute_capability": "8.9"}, "compute capability 8.9, this GPU (NVIDIA H100 80GB HBM3) is 9.0"),
    ({"compute_capability": None}, "which GPU"),
    ({"onnx_sha256": "b" * 64}, "not the one in this export"),
    ({"tensorrt_version": "9.3.0", "version_compatible": True}, "version-compatible"),
    ({"tensorrt_version": "10.13.0", "version_compatible": True}, "version-compatible"),
])
def test_mismatches_are_reported(over, words):
    problems = sidecar_problems(sidecar(**over), ENV, {ONNX})
    assert len(problems) == 1 and words in problems[0], problems


def test_compatibility_flags_relax_checks():
    assert sidecar_problems(sidecar(tensorrt_version="10.8.0", version_compatible=True), ENV, {ONNX}) == []
    assert sidecar_problems(sidecar(compute_capability="8.6", hardware_compatible=True), ENV, {ONNX}) == []
    old_gpu = Environment("tensorrt", "10.12.0.36", "Tesla T4", "7.5")
    assert "Ampere" in sidecar_problems(sidecar(hardware_compatible=True), old_gpu, {ONNX})[0]
    assert sidecar_problems(sidecar(compute_capability=["8.9", "9.0"]), ENV, {ONNX}) == []
    assert sidecar_problems(sidecar(), ENV, None) == []  # no ONNX in the export: nothing to compare
    with pytest.raises(IntegrityError, match="compute capability"):
        sidecar_problems(sidecar(compute_capability="sm_x"), ENV)


def test_profile_for():
    profiles = [{"min": [1, 3, 16, 16], "max": [1, 3, 512, 512]}, {"min": [1, 3, 16, 16], "max": [8, 3, 2160, 3840]}]
    assert profile_for(profiles, (1, 3, 256, 256)) == 0
    assert profile_for(profiles, (2, 3, 256, 256)) == 1
    assert profile_for([], (9, 3, 9, 9)) == 0
    with pytest.raises(CganError, match="outside the engine's profiles.*--engine"):
        profile_for(profiles, (1, 3, 4000, 16))


@pytest.fixture
def engine_export(tmp_path):
    """An export folder listing one fake engine (bytes are not a plan) with its sidecar, and one ONNX."""
    spec = PairSpec(GeneratorSpec(blocks=1, ngf=4), "summer", "winter")
    (tmp_path / "G.fp32.onnx").write_bytes(b"not really onnx")
    (tmp_path / "G.fp16.trt.plan").write_bytes(b"fake plan")
    onnx = file_record(tmp_path / "G.fp32.onnx", tmp_path)
    onnx.update(kind="onnx", generator="G", precision="fp32", io="nchw", io_dtype="float32")
    side = sidecar(onnx_sha256=onnx["sha256"])
    write_json_atomic(tmp_path / "G.fp16.trt.plan.json", side)
    eng = file_record(tmp_path / "G.fp16.trt.plan", tmp_path)
    eng.update(kind="engine", generator="G", precision="fp16", io="nchw", io_dtype="float32",
               sidecar="G.fp16.trt.plan.json")
    write_json_atomic(tmp_path / "manifest.json", {"format": EXPORT_FORMAT, "version": FORMAT_VERSION,
                                                   "name": spec.name, "spec": spec.to_dict(), "files": [onnx, eng]})
    return tmp_path


@pytest.fixture
def fake_machine(monkeypatch):
    """Pretend TensorRT, cuda-python and one GPU are here."""
    state = {"env": ENV}
    monkeypatch.setattr(trtmod, "module_available", lambda name: True)
    monkeypatch.setattr(trtmod.cudahelp, "gpu_count", lambda: 1)
    monkeypatch.setattr(trtmod.cudahelp, "cuda_python_problem", lambda: None)
    monkeypatch.setattr(TensorRTBackend, "environment", classmethod(lambda cls: state["env"]))
    return state


def test_check_accepts_matching_engine(engine_export, fake_machine, monkeypatch):
    monkeypatch.setattr(TensorRTRTXBackend, "_unsupported_gpu", classmethod(lambda cls: None))
    model = load_model(str(engine_export))
    assert TensorRTBackend.check(model, "fp16") == (True, "")
    assert TensorRTBackend.check(model, None) == (True, "")
    ok, reason = TensorRTBackend.check(model, "fp32")
    # loaded by its folder: the hint rebuilds that folder (by the name it would rebuild $CGAN_HOME/exports/NAME)
    assert not ok and "no tensorrt engine" in reason
    assert f"cgan-export {engine_export} --out {engine_export} --engine" in reason
    ok, reason = TensorRTRTXBackend.check(model, "fp16")
    assert not ok and "no tensorrt-rtx engine" in reason


def test_tensorrt_rtx_names_the_gpus_it_cannot_run_on(monkeypatch):
    class FakeRTX:
        __version__ = "1.7.1.116"

        class ComputeCapability:
            SM75 = SM80 = SM86 = SM89 = SM120 = SM121 = object()
            SMALL_FUTURE_NAME = CURRENT = object()  # not targets: ignored, not a crash

    monkeypatch.setattr(TensorRTRTXBackend, "_trt", classmethod(lambda cls: FakeRTX))
    for gpu, cc, runs in (("NVIDIA H200", "9.0", False), ("NVIDIA B200", "10.0", False),
                          ("NVIDIA GeForce RTX 4090", "8.9", True), ("NVIDIA GeForce RTX 5090", "12.0", True)):
        env = Environment("tensorrt-rtx", "1.7.1.116", gpu, cc)
        monkeypatch.setattr(TensorRTRTXBackend, "environment", classmethod(lambda cls, env=env: env))
        reason = TensorRTRTXBackend._unsupported_gpu()
        assert (reason is None) == runs, (gpu, reason)
        if not runs:
            assert f"does not run on {gpu} (compute capability {cc}; it supports SM75, SM80, SM86, SM89, SM120, " \
                   f"SM121): use the tensorrt or ort-cuda backend" in reason


def test_check_rejects_foreign_engine_with_rebuild_hint(engine_export, fake_machine):
    fake_machine["env"] = Environment("tensorrt", "10.13.0.1", "NVIDIA L4", "8.9")
    ok, reason = TensorRTBackend.check(load_model(str(engine_export)), "fp16")
    assert not ok
    for words in ("10.12.0.36", "10.13.0.1", "compute capability 9.0",
                  f"rebuild it here with `cgan-export {engine_export} --out {engine_export} --engine`"):
        assert words in reason, reason
    # the ONNX it was built from was replaced
    side = json.loads((engine_export / "G.fp16.trt.plan.json").read_text())
    side["onnx_sha256"] = "c" * 64
    (engine_export / "G.fp16.trt.plan.json").write_text(json.dumps(side))
    fake_machine["env"] = ENV
    ok, reason = TensorRTBackend.check(load_model(str(engine_export)), "fp16")
    assert not ok and "not the one in this export" in reason


def test_check_without_library_or_gpu_or_export(engine_export, tmp_path, monkeypatch):
    monkeypatch.setattr(trtmod, "module_available", lambda name: False)
    ok, reason = TensorRTBackend.check(load_model(str(engine_export)))
    assert not ok and "pip install" in reason
    monkeypatch.setattr(trtmod, "module_available", lambda name: True)
    monkeypatch.setattr(trtmod.cudahelp, "gpu_count", lambda: 0)
    ok, reason = TensorRTRTXBackend.check(None)
    assert not ok and "GPU" in reason


# A real engine on a real GPU: tests/test_gpu_parity.py::test_tensorrt_engine_matches_cpu_fp32.


# ---- the whole TensorRT code path against fake `tensorrt` and cuda-python modules (host memory) ----------------
class FakeCudart:
    """Enough of cuda.bindings.runtime for cuda.py: 'device' memory is host memory, copies are memmoves,
    stream capture records the operations and graph launch replays them."""

    class cudaError_t:
        cudaSuccess = 0

    class cudaMemcpyKind:
        cudaMemcpyHostToDevice, cudaMemcpyDeviceToHost = 1, 2

    class cudaStreamCaptureMode:
        cudaStreamCaptureModeThreadLocal = 1

    cudaStreamNonBlocking = 1

    def __init__(self):
        import ctypes

        self.ctypes, self.blocks, self.capturing, self.launches, self.live = ctypes, {}, None, 0, 0
        self.allocs = 0

    def _alloc(self, n):
        buf = self.ctypes.create_string_buffer(n)
        ptr = self.ctypes.addressof(buf)
        self.blocks[ptr] = buf
        self.live += 1
        self.allocs += 1
        return 0, ptr

    cudaMalloc = cudaMallocHost = _alloc

    def cudaFree(self, ptr):
        del self.blocks[ptr]
        self.live -= 1
        return (0,)

    cudaFreeHost = cudaFree

    def cudaStreamCreateWithFlags(self, flags):
        return 0, 7

    def cudaStreamSynchronize(self, s):
        return (0,)

    def cudaStreamDestroy(self, s):
        return (0,)

    def run(self, op):
        if self.capturing is not None:
            self.capturing.append(op)
        else:
            op()

    def cudaMemcpyAsync(self, dst, src, n, kind, stream):
        self.run(lambda: self.ctypes.memmove(dst, src, n))
        return (0,)

    def cudaStreamBeginCapture(self, stream, mode):
        self.capturing = []
        return (0,)

    def cudaStreamEndCapture(self, stream):
        ops, self.capturing = self.capturing, None
        return 0, ops

    def cudaGraphInstantiate(self, graph, flags):
        return 0, list(graph)

    def cudaGraphLaunch(self, exe, stream):
        self.launches += 1
        for op in exe:
            op()
        return (0,)

    def cudaGraphExecDestroy(self, exe):
        return (0,)

    cudaGraphDestroy = cudaGraphExecDestroy

    def cudaGetDeviceProperties(self, dev):
        class P:
            name, major, minor = b"NVIDIA H100 80GB HBM3\0", 9, 0
        return 0, P()


def fake_tensorrt(cudart, io: str):
    """A `tensorrt` module whose engine computes 255 - x (uint8 NHWC) or -x (float NCHW)."""
    import types

    trt = types.ModuleType("tensorrt")
    trt.__version__ = "10.12.0.36"
    trt.TensorIOMode = types.SimpleNamespace(INPUT="in", OUTPUT="out")
    trt.nptype = lambda dt: dt

    class Logger:
        WARNING = 2

        def __init__(self, level):
            pass

    class Context:
        def __init__(self):
            self.shape, self.addr = None, {}

        def set_input_shape(self, name, shape):
            self.shape = tuple(shape)
            return True

        def get_tensor_shape(self, name):
            return self.shape

        def set_tensor_address(self, name, ptr):
            self.addr[name] = ptr

        def execute_async_v3(self, stream):
            dtype = np.uint8 if io == "bgr-hwc-uint8" else np.float32
            n = int(np.prod(self.shape)) * np.dtype(dtype).itemsize
            src, dst = self.addr["input"], self.addr["output"]

            def op():
                x = np.frombuffer((cudart.ctypes.c_uint8 * n).from_address(src), dtype)
                y = np.frombuffer((cudart.ctypes.c_uint8 * n).from_address(dst), dtype)
                y[...] = (255 - x) if dtype == np.uint8 else -x
            cudart.run(op)
            return True

    class Engine:
        num_io_tensors, num_optimization_profiles = 2, 1

        def get_tensor_name(self, i):
            return ("input", "output")[i]

        def get_tensor_mode(self, name):
            return "in" if name == "input" else "out"

        def get_tensor_dtype(self, name):
            return np.uint8 if io == "bgr-hwc-uint8" else np.float32

        def create_execution_context(self):
            return Context()

    class Runtime:
        def __init__(self, logger):
            pass

        def deserialize_cuda_engine(self, plan):
            return Engine() if plan == b"fake plan" else None

    trt.Logger, trt.Runtime = Logger, Runtime
    return trt


def _fake_machine_with_engine(engine_export, monkeypatch, io: str) -> "FakeCudart":
    """Point the engine export at `io`, install fake tensorrt + cuda-python modules; returns the fake cudart."""
    manifest = json.loads((engine_export / "manifest.json").read_text())
    manifest["files"][1]["io"] = io
    (engine_export / "manifest.json").write_text(json.dumps(manifest))
    if io == "bgr-hwc-uint8":  # profiles are in the engine input's layout: NHWC here
        side = json.loads((engine_export / "G.fp16.trt.plan.json").read_text())
        side["profiles"] = [{"min": [1, 16, 16, 3], "opt": [1, 256, 256, 3], "max": [4, 1088, 1920, 3]}]
        (engine_export / "G.fp16.trt.plan.json").write_text(json.dumps(side))
    cudart = FakeCudart()
    monkeypatch.setitem(__import__("sys").modules, "tensorrt", fake_tensorrt(cudart, io))
    monkeypatch.setattr(trtmod, "module_available", lambda name: True)
    monkeypatch.setattr(trtmod.cudahelp, "gpu_count", lambda: 1)
    monkeypatch.setattr(trtmod.cudahelp, "cuda_python_problem", lambda: None)
    monkeypatch.setattr(trtmod.cudahelp, "cudart", lambda: cudart)
    monkeypatch.setattr(TensorRTBackend, "environment", classmethod(lambda cls: ENV))
    return cudart


@pytest.mark.parametrize("io", ["bgr-hwc-uint8", "nchw"])
def test_tensorrt_backend_runs_with_fakes(engine_export, monkeypatch, io):
    from cgan.runtime import Translator

    cudart = _fake_machine_with_engine(engine_export, monkeypatch, io)
    frame = np.random.default_rng(3).integers(0, 256, (30, 41, 3), dtype=np.uint8)
    with Translator.load(str(engine_export), backend="tensorrt") as t:
        assert (t.info.backend, t.info.precision, t.info.device) == ("tensorrt", "fp16", "cuda")
        for _ in range(3):  # plain run, capture + launch, launch
            assert np.array_equal(t.translate(frame), 255 - frame)
        assert cudart.launches == 2
        assert np.array_equal(t.translate(frame[:20, :20]), 255 - frame[:20, :20])  # new shape: new buffers
        with pytest.raises(CganError, match="outside the engine's profiles"):
            t.translate_batch([frame] * 5)  # the profile allows batch <= 4
    assert cudart.live == 0  # every device/pinned buffer freed at close


def test_tensorrt_capture_failure_leaves_capture_mode_and_runs_without_graphs(engine_export, monkeypatch):
    from cgan.runtime import Translator

    cudart = _fake_machine_with_engine(engine_export, monkeypatch, "nchw")
    frame = np.random.default_rng(4).integers(0, 256, (24, 32, 3), dtype=np.uint8)
    with Translator.load(str(engine_export), backend="tensorrt") as t:
        ctx = t.backend.context
        real = ctx.execute_async_v3
        ctx.execute_async_v3 = lambda stream: False if cudart.capturing is not None else real(stream)
        for _ in range(3):  # plain run, failed capture (falls back), plain run
            assert np.array_equal(t.translate(frame), 255 - frame)
        assert cudart.capturing is None, "the stream was left in capture mode"
        assert cudart.launches == 0 and t.backend.cuda_graph is False
    assert cudart.live == 0


def _two_sizes(seed: int):
    rng = np.random.default_rng(seed)
    return rng, rng.integers(0, 256, (24, 32, 3), dtype=np.uint8), rng.integers(0, 256, (16, 20, 3), dtype=np.uint8)


def test_tensorrt_alternating_shapes_keep_their_buffers_and_rebind(engine_export, monkeypatch):
    """Several streams batched together change the batch shape from call to call: each shape keeps its buffers
    (no free/alloc per switch, which synchronizes a real device), the context is re-bound to the right buffers
    on every switch, a graph is only replayed while its shape stays current, a shape outside the profiles
    leaves the others working, and no more than MAX_SHAPES shapes stay allocated."""
    from cgan.runtime import Translator
    from cgan.runtime.backends.base import MAX_SHAPES

    cudart = _fake_machine_with_engine(engine_export, monkeypatch, "nchw")
    rng, a, b = _two_sizes(5)
    with Translator.load(str(engine_export), backend="tensorrt") as t:
        for _ in range(3):
            for f in (a, b):  # A, B, A, B, ...: every call switches shape
                assert np.array_equal(t.translate(f), 255 - f)
        assert cudart.allocs == 8  # 4 buffers per shape, allocated once each
        assert cudart.launches == 0  # never replayed a graph captured under another shape's binding
        for _ in range(3):  # one shape again: plain run, capture + launch, launch
            assert np.array_equal(t.translate(a), 255 - a)
        assert cudart.launches == 2
        with pytest.raises(CganError, match="outside the engine's profiles"):
            t.translate_batch([a] * 5)
        assert np.array_equal(t.translate(a), 255 - a) and cudart.launches == 3  # still bound, graph kept
        for i in range(MAX_SHAPES + 2):  # more sizes than are kept: the least recently used are freed
            f = rng.integers(0, 256, (16, 16 + 4 * i, 3), dtype=np.uint8)
            assert np.array_equal(t.translate(f), 255 - f)
        assert len(t.backend.slots) == MAX_SHAPES and cudart.live == 4 * MAX_SHAPES
    assert cudart.live == 0


def test_tensorrt_capture_raising_any_error_leaves_capture_mode(engine_export, monkeypatch):
    """A failure during capture that is not ours (a binding's TypeError, Ctrl-C) still ends the capture before
    it propagates: a stream left capturing would break every later call and the close."""
    from cgan.runtime import Translator

    cudart = _fake_machine_with_engine(engine_export, monkeypatch, "nchw")
    frame = np.random.default_rng(6).integers(0, 256, (24, 32, 3), dtype=np.uint8)
    with Translator.load(str(engine_export), backend="tensorrt") as t:
        ctx = t.backend.context
        real = ctx.execute_async_v3

        def broken(stream):
            if cudart.capturing is not None:
                raise TypeError("incompatible function arguments")
            return real(stream)
        ctx.execute_async_v3 = broken
        assert np.array_equal(t.translate(frame), 255 - frame)  # plain run
        with pytest.raises(TypeError):
            t.translate(frame)  # capture fails with a foreign error: re-raised ...
        assert cudart.capturing is None  # ... after leaving capture mode
        ctx.execute_async_v3 = real
        assert np.array_equal(t.translate(frame), 255 - frame)
    assert cudart.live == 0


def test_tensorrt_refused_shape_leaves_no_stale_binding(engine_export, monkeypatch):
    """When the context refuses a shape, the shape that ran before is bound again on its next call (not assumed
    still bound) and its old graph is not replayed."""
    from cgan.runtime import Translator

    cudart = _fake_machine_with_engine(engine_export, monkeypatch, "nchw")
    rng, a, b = _two_sizes(8)
    with Translator.load(str(engine_export), backend="tensorrt") as t:
        for _ in range(3):
            assert np.array_equal(t.translate(a), 255 - a)
        assert cudart.launches == 2
        ctx = t.backend.context
        real = ctx.set_input_shape
        ctx.set_input_shape = lambda name, shape: False if shape[2:] == (16, 20) else real(name, shape)
        with pytest.raises(CganError, match="TensorRT refused input shape"):
            t.translate(b)
        assert t.backend.current is None
        ctx.set_input_shape = real
        assert np.array_equal(t.translate(a), 255 - a)  # re-bound: plain run, no replay of the old graph
        assert cudart.launches == 2 and ctx.shape == (1, 3, 24, 32)
    assert cudart.live == 0


def test_a_version_compatible_plan_runs_its_host_code_only_when_the_app_allows_it(engine_export, monkeypatch):
    """A plan built version-compatible embeds a lean runtime (host code) that TensorRT runs only when allowed.
    The sidecar that says so comes with a shared export: it allowed host code by itself, so a shared engine
    could run native code in the app. Now only engine_host_code=True does."""
    from cgan.errors import IntegrityError
    from cgan.runtime import Translator

    _fake_machine_with_engine(engine_export, monkeypatch, "nchw")
    side_path = engine_export / "G.fp16.trt.plan.json"
    side = json.loads(side_path.read_text())
    try:
        side_path.write_text(json.dumps({**side, "version_compatible": False}))
        with Translator.load(str(engine_export), backend="tensorrt") as t:
            assert getattr(t.backend.runtime, "engine_host_code_allowed", None) is None
        side_path.write_text(json.dumps({**side, "version_compatible": True}))
        with pytest.raises(IntegrityError, match="version-compatible plan.*engine_host_code=True"):
            Translator.load(str(engine_export), backend="tensorrt")
        with Translator.load(str(engine_export), backend="tensorrt", engine_host_code=True) as t:
            assert t.backend.runtime.engine_host_code_allowed is True
    finally:
        side_path.write_text(json.dumps(side))


@pytest.mark.parametrize("io", ["bgr-hwc-uint8", "nchw"])
def test_tensorrt_output_is_not_memory_the_backend_frees(engine_export, monkeypatch, io):
    """An app calling the backend directly may keep its last output after deactivate(): the array must not be the
    pinned buffer that deactivate() frees (reading it then is a use-after-free, a crash or garbage on a GPU)."""
    from cgan.runtime import Translator

    cudart = _fake_machine_with_engine(engine_export, monkeypatch, io)
    batch = np.random.default_rng(9).integers(0, 256, (1, 24, 32, 3), dtype=np.uint8)
    t = Translator.load(str(engine_export), backend="tensorrt")
    out = t.backend.infer(batch)
    start = out.__array_interface__["data"][0]
    for ptr, buf in cudart.blocks.items():  # every pinned and 'device' allocation the backend holds
        assert not (ptr <= start < ptr + len(buf)), "infer returned memory the backend frees at deactivate()"
    t.close()
    assert cudart.live == 0 and np.array_equal(out, 255 - batch)


def test_cuda_python_must_fit_the_driver(engine_export, fake_machine, monkeypatch):
    """cuda-python 13 calls CUDA 13's runtime, which a driver before 580 refuses (the TensorRT backend then failed
    at its first cudaMalloc); cuda-python 11 lacks the API used here. check() says which to install, and a CUDA
    call failing with cudaErrorInsufficientDriver says the same."""
    from cgan.runtime.backends import cuda as cudahelp

    problem = cuda_python_problem  # the real one (fake_machine replaced the module's)
    assert problem("11.8.0", (12, 4)) == "cuda-python 11.8.0 is too old: pip install 'cuda-python>=12.6'"
    assert problem("13.0.1", (12, 4)) == ("cuda-python 13.0.1 needs an NVIDIA driver for CUDA 13, this one supports "
                                          "CUDA 12.4: pip install 'cuda-python>=12.6,<13', or update the driver")
    assert problem("13.0.1", (13, 0)) is None and problem("12.9.0", (13, 1)) is None
    for version in ("12.6.0", "11.8.0"):  # a CUDA 11 driver: no pin helps (it said "cuda-python<12", then "too old")
        assert problem(version, (11, 8)).endswith("supports CUDA 11.8; TensorRT through cuda-python needs CUDA 12 or "
                                                  "newer: update the driver")
    monkeypatch.setattr(cudahelp, "driver_cuda_version", lambda: None)
    assert problem("13.0.1") is None  # the driver cannot be asked: nothing to say
    monkeypatch.setattr(cudahelp, "cuda_python_version", lambda: "13.2.0")
    monkeypatch.setattr(cudahelp, "driver_cuda_version", lambda: (12, 8))
    monkeypatch.setattr(cudahelp, "cuda_python_problem", problem)
    ok, reason = TensorRTBackend.check(load_model(str(engine_export)), "fp16")
    assert not ok and reason.startswith("cuda-python 13.2.0 needs an NVIDIA driver for CUDA 13")

    class Err(int):
        name = "cudaErrorInsufficientDriver"
    monkeypatch.setattr(cudahelp, "cudart", lambda: FakeCudart())
    with pytest.raises(CganError, match=r"cudaErrorInsufficientDriver; cuda-python 13.2.0 needs .*<13'"):
        cudahelp.call((Err(35), None))


def test_tensorrt_skips_capture_when_the_context_says_it_cannot_be_captured(engine_export, monkeypatch, caplog):
    """TensorRT-RTX engines built without user-allocated memory (and some TensorRT setups) cannot be captured:
    the context's is_stream_capturable() is asked before capturing, and a 'no' runs without graphs, logged once."""
    from cgan.runtime import Translator

    cudart = _fake_machine_with_engine(engine_export, monkeypatch, "nchw")
    frame = np.random.default_rng(8).integers(0, 256, (24, 32, 3), dtype=np.uint8)
    asked = []
    with Translator.load(str(engine_export), backend="tensorrt") as t:
        t.backend.context.is_stream_capturable = lambda stream: asked.append(stream) or False
        began = []
        real_begin = cudart.cudaStreamBeginCapture
        cudart.cudaStreamBeginCapture = lambda *a: began.append(a) or real_begin(*a)
        with caplog.at_level("WARNING"):
            for _ in range(4):
                assert np.array_equal(t.translate(frame), 255 - frame)
        assert asked == [t.backend.stream.ptr] and began == [] and cudart.launches == 0
        assert t.backend.cuda_graph is False
        assert sum("cannot be captured" in r.getMessage() for r in caplog.records) == 1
    assert cudart.live == 0


def _fake_rtx(engine_export, monkeypatch, tmp_path, refuse_cache=False):
    """The fake machine as TensorRT-RTX 1.7: its engines have a runtime config with a runtime cache and
    CudaGraphStrategy. Returns (cudart, record of what the config was asked)."""
    import sys
    import types

    cudart = _fake_machine_with_engine(engine_export, monkeypatch, "nchw")
    trt = sys.modules["tensorrt"]
    side_path = engine_export / "G.fp16.trt.plan.json"
    side_path.write_text(json.dumps({**json.loads(side_path.read_text()), "flavour": "tensorrt-rtx"}))
    rec = {"deserialized": [], "strategy": [], "contexts": 0, "cache alive when the context went": []}

    class Cache:
        def __init__(self):
            self.kernels = b""

        def deserialize(self, blob):
            rec["deserialized"].append(bytes(blob))
            if refuse_cache or not bytes(blob).startswith(b"KERNELS"):
                return False
            self.kernels = bytes(blob)
            return True

        def reset(self):
            self.kernels = b""

        def serialize(self):
            return self.kernels or b"KERNELS for 1x3x24x32"

    class Config:
        def create_runtime_cache(self):
            return Cache()

        def set_runtime_cache(self, cache):
            import weakref

            rec["cache"] = weakref.ref(cache)  # (the test's reference must not keep it alive)
            return True

        @property
        def cuda_graph_strategy(self):
            return rec["strategy"][-1]

        @cuda_graph_strategy.setter
        def cuda_graph_strategy(self, value):
            rec["strategy"].append(value)

    engine_cls = trt.Runtime(None).deserialize_cuda_engine(b"fake plan").__class__
    plain = engine_cls.create_execution_context

    def with_config(self, config=None):
        import weakref

        assert isinstance(config, Config)
        rec["contexts"] += 1
        ctx = plain(self)
        cache = rec["cache"]
        # RTX: a runtime config and its cache must outlive the contexts made from them
        weakref.finalize(ctx, lambda: rec["cache alive when the context went"].append(cache() is not None))
        return ctx
    monkeypatch.setattr(engine_cls, "create_runtime_config", lambda self: Config(), raising=False)
    monkeypatch.setattr(engine_cls, "create_execution_context", with_config)
    trt.CudaGraphStrategy = types.SimpleNamespace(DISABLED="disabled", WHOLE_GRAPH_CAPTURE="whole")
    monkeypatch.setitem(sys.modules, "tensorrt_rtx", trt)
    monkeypatch.setattr(TensorRTRTXBackend, "environment", classmethod(
        lambda cls: Environment("tensorrt-rtx", ENV.tensorrt_version, "NVIDIA GeForce RTX 4090", "9.0")))
    monkeypatch.setattr(TensorRTRTXBackend, "_unsupported_gpu", classmethod(lambda cls: None))
    monkeypatch.setenv("CGAN_HOME", str(tmp_path / "home"))
    return cudart, rec


def test_tensorrt_rtx_keeps_its_jit_kernels_and_uses_its_own_cuda_graphs(engine_export, monkeypatch, tmp_path):
    """TensorRT-RTX compiles kernels just in time: they are kept in a runtime cache on disk (the next run reads
    them back), RTX's own CUDA graphs are on (WHOLE_GRAPH_CAPTURE) and ours are not captured over them;
    cuda_graph=False turns RTX's off; a cache RTX refuses is logged, reset and rewritten."""
    from cgan.runtime import Translator

    cudart, rec = _fake_rtx(engine_export, monkeypatch, tmp_path)
    frame = np.random.default_rng(10).integers(0, 256, (24, 32, 3), dtype=np.uint8)
    with Translator.load(str(engine_export), backend="tensorrt-rtx") as t:
        for _ in range(3):
            assert np.array_equal(t.translate(frame), 255 - frame)
        assert rec["strategy"] == ["whole"] and rec["contexts"] == 1 and rec["deserialized"] == []
        assert t.backend.cuda_graph is False and cudart.launches == 0  # no capture of ours on top of RTX's
    files = list((tmp_path / "home" / "trt-rtx-runtime-cache").iterdir())
    assert len(files) == 1 and files[0].read_bytes() == b"KERNELS for 1x3x24x32"
    assert "nvidia-geforce-rtx-4090" in files[0].name and cudart.live == 0
    assert rec["cache alive when the context went"] == [True]
    mtime = files[0].stat().st_mtime_ns

    with Translator.load(str(engine_export), backend="tensorrt-rtx", cuda_graph=False) as t:
        assert np.array_equal(t.translate(frame), 255 - frame)
    assert rec["deserialized"] == [b"KERNELS for 1x3x24x32"] and rec["strategy"][-1] == "disabled"
    assert files[0].stat().st_mtime_ns == mtime  # nothing new compiled: not rewritten

    files[0].write_bytes(b"from another driver")
    with Translator.load(str(engine_export), backend="tensorrt-rtx") as t:
        assert np.array_equal(t.translate(frame), 255 - frame)
    assert files[0].read_bytes() == b"KERNELS for 1x3x24x32"  # refused, compiled again, saved


def test_tensorrt_rtx_runtime_cache_unwritable_home_is_not_an_error(engine_export, monkeypatch, tmp_path, caplog):
    from cgan.runtime import Translator

    cudart, rec = _fake_rtx(engine_export, monkeypatch, tmp_path)
    (tmp_path / "home").write_text("a file where $CGAN_HOME should be")
    frame = np.random.default_rng(11).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    with caplog.at_level("WARNING"):
        with Translator.load(str(engine_export), backend="tensorrt-rtx") as t:
            assert np.array_equal(t.translate(frame), 255 - frame)
    assert any("could not save the runtime cache" in r.getMessage() for r in caplog.records)
    assert cudart.live == 0


def test_tensorrt_rtx_failed_activation_releases_in_order(engine_export, monkeypatch, tmp_path):
    """An engine refused after its context was made (two outputs) left the context, config and cache to the
    garbage collector, which could free the cache first; they are released in order, as at deactivate."""
    import gc

    from cgan.errors import IntegrityError
    from cgan.runtime import Translator

    cudart, rec = _fake_rtx(engine_export, monkeypatch, tmp_path)
    engine_cls = __import__("sys").modules["tensorrt_rtx"].Runtime(None).deserialize_cuda_engine(b"fake plan").__class__
    monkeypatch.setattr(engine_cls, "num_io_tensors", 3)
    monkeypatch.setattr(engine_cls, "get_tensor_name", lambda self, i: ("input", "output", "extra")[i])
    gc.disable()  # only reference counts free things here, as they must
    try:
        with pytest.raises(IntegrityError, match="expected one each"):
            Translator.load(str(engine_export), backend="tensorrt-rtx")
        assert rec["cache alive when the context went"] == [True] and cudart.live == 0
    finally:
        gc.enable()


def test_tensorrt_rtx_without_a_home_folder_runs_without_a_runtime_cache(engine_export, monkeypatch, tmp_path):
    """In a container without HOME or a passwd entry Path.home() raises RuntimeError: the cache is optional, so
    that cost the run nothing but the cache (it failed Translator.load)."""
    from cgan import pairs
    from cgan.runtime import Translator

    cudart, rec = _fake_rtx(engine_export, monkeypatch, tmp_path)

    def no_home():
        raise RuntimeError("Could not determine home directory.")
    monkeypatch.setattr(pairs, "cgan_home", no_home)
    frame = np.random.default_rng(12).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    with Translator.load(str(engine_export), backend="tensorrt-rtx") as t:
        assert np.array_equal(t.translate(frame), 255 - frame) and t.backend.runtime_cache_file is None
    assert cudart.live == 0


def test_a_tensorrt_that_cannot_start_cuda_is_unavailable_in_one_line(engine_export, monkeypatch):
    """Where TensorRT cannot start CUDA (a driver older than its CUDA), its bindings' factory returns nullptr and
    pybind11 raised a bare TypeError from trt.Runtime(logger); the backend is now unavailable, in one line."""
    from cgan.runtime import Translator

    _fake_machine_with_engine(engine_export, monkeypatch, "nchw")

    def no_cuda(logger):
        raise TypeError("pybind11::init(): factory function returned nullptr")

    monkeypatch.setattr(sys.modules["tensorrt"], "Runtime", no_cuda)
    with pytest.raises(BackendUnavailable, match=r"^tensorrt could not start on this GPU \(pybind11::init\(\): "
                                                  r"factory function returned nullptr\): its CUDA may need a newer "
                                                  r"NVIDIA driver"):
        Translator.load(str(engine_export), backend="tensorrt")


def test_the_tensorrt_bindings_wheel_alone_is_tensorrt(monkeypatch):
    """The tensorrt-cuXX-bindings + -libs wheels without the `tensorrt` front package provide tensorrt_bindings,
    the same API: cgan said TensorRT was not installed."""
    import types

    from cgan.export import tensorrt as export_trt

    bindings = types.SimpleNamespace(__version__="10.13.0")
    monkeypatch.setitem(sys.modules, "tensorrt", None)
    monkeypatch.setitem(sys.modules, "tensorrt_bindings", bindings)
    assert TensorRTBackend._trt() is bindings
    assert export_trt.MODULES["tensorrt"] == ("tensorrt", "tensorrt_bindings")
