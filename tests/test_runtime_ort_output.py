"""ort-cuda's output path without a per-frame host allocation, run on the CPU provider (no GPU here).

With CUDA graphs the output stays bound on the device and is copied into one host array per shape
(`cuda.copy_device_to_host`, libcudart through ctypes: faked here with a host memmove, since the CPU stand-in's
"device" memory is host memory); without graphs the output is bound to that host array directly. Either way
`OrtValue.numpy()` (a new array per frame) is not called, and Translator's results survive the next frame."""
from __future__ import annotations

import ctypes
import logging
import sys
from pathlib import Path

import numpy as np
import pytest

from cgan.errors import CganError
from cgan.runtime import Translator
from cgan.runtime.backends import cuda
from cgan.runtime.backends import ort as ortmod
from cgan.runtime.backends.base import load_model

sys.path.insert(0, str(Path(__file__).parent))
from _helpers_runtime import make_export, make_pair, ort_cuda_cpu_stand_in  # noqa: E402

rng = np.random.default_rng(7)


@pytest.fixture(scope="module")
def export(tmp_path_factory):
    base = tmp_path_factory.mktemp("ort_out")
    pair = make_pair(base / "pair", blocks=1, ngf=4)
    return make_export(pair, base / "export", prepost=True)


@pytest.fixture(scope="module")
def cpu_reference(export):
    with Translator.load(str(export), backend="ort-cpu", threads=1) as t:
        yield t


CpuStandIn = ort_cuda_cpu_stand_in()


class FakeCopy:
    """copy_device_to_host stand-in: the stand-in's 'device' pointer is host memory, so memmove copies it."""

    def __init__(self, result: bool | Exception = True):
        self.result = result
        self.dsts: list[np.ndarray] = []

    def __call__(self, dst: np.ndarray, src_ptr: int) -> bool:
        self.dsts.append(dst)
        if isinstance(self.result, Exception):
            raise self.result
        if self.result:
            ctypes.memmove(dst.ctypes.data, src_ptr, dst.nbytes)
        return self.result


@pytest.fixture
def numpy_calls(monkeypatch):
    """Count OrtValue.numpy() calls (each allocates a new host array)."""
    calls = []
    real = ortmod._ort().OrtValue.numpy

    def counted(self):
        calls.append(1)
        return real(self)

    monkeypatch.setattr(ortmod._ort().OrtValue, "numpy", counted)
    return calls


def lsb(a: np.ndarray, b: np.ndarray) -> int:
    return int(np.abs(a.astype(int) - b.astype(int)).max())


@pytest.mark.parametrize("cuda_graph", [True, False], ids=["graph", "no-graph"])
@pytest.mark.parametrize("precision, io", [("fp16", "bgr-hwc-uint8"), ("fp32", "nchw")])
def test_output_reaches_one_host_array_per_shape(export, cpu_reference, monkeypatch, numpy_calls, cuda_graph,
                                                  precision, io):
    copy = FakeCopy()
    monkeypatch.setattr(ortmod.cudahelp, "copy_device_to_host", copy)
    frames = [rng.integers(0, 256, (1, 24, 32, 3), dtype=np.uint8) for _ in range(3)]
    with CpuStandIn(load_model(str(export)), precision, "cpu", cuda_graph=cuda_graph) as be:
        assert be.io == io and be.cuda_graph is cuda_graph
        results = []
        for f in frames:
            r = be.infer(f)
            assert lsb(r[0], cpu_reference.translate(f[0])) <= 1
            results.append(r)
        assert results[0] is results[1] is results[2]  # one array per shape, reused
        assert numpy_calls == []                        # no OrtValue.numpy(): no new array per frame
        if cuda_graph:
            assert len(copy.dsts) == 3 and copy.dsts[0] is copy.dsts[1] is copy.dsts[2]
            host_out = copy.dsts[0]
            assert host_out.dtype == (np.uint8 if io == "bgr-hwc-uint8" else np.float32)
            if io == "bgr-hwc-uint8":
                assert host_out is results[0]
        else:
            assert copy.dsts == []  # onnxruntime wrote into the bound host array itself
        other = be.infer(rng.integers(0, 256, (2, 24, 32, 3), dtype=np.uint8))
        assert other is not results[0] and len(be.bound) == 2


@pytest.mark.parametrize("failure", [False, CganError("CUDA device-to-host copy failed (cudaError 35)")],
                         ids=["no-libcudart", "copy-fails"])
def test_without_a_usable_cuda_runtime_it_falls_back_once_and_says_so(export, cpu_reference, monkeypatch,
                                                                      numpy_calls, caplog, failure):
    copy = FakeCopy(failure)
    monkeypatch.setattr(ortmod.cudahelp, "copy_device_to_host", copy)
    frames = [rng.integers(0, 256, (1, 20, 20, 3), dtype=np.uint8) for _ in range(3)]
    with caplog.at_level(logging.WARNING, logger="cgan.runtime"):
        with CpuStandIn(load_model(str(export)), "fp16", "cpu") as be:
            for f in frames:
                assert lsb(be.infer(f)[0], cpu_reference.translate(f[0])) <= 1
    assert len(copy.dsts) == 1  # tried once, not per frame
    assert len(numpy_calls) == 3
    warnings = [r.getMessage() for r in caplog.records if "OrtValue.numpy()" in r.getMessage()]
    assert len(warnings) == 1
    assert ("libcudart" in warnings[0]) if failure is False else ("cudaError 35" in warnings[0])


@pytest.mark.parametrize("cuda_graph", [True, False], ids=["graph", "no-graph"])
def test_translator_results_survive_the_next_frame(export, monkeypatch, cuda_graph):
    """The backend reuses its host array; what Translator returns (and the video pipeline holds while the
    next frame is translated) must not change."""
    monkeypatch.setattr(ortmod.cudahelp, "copy_device_to_host", FakeCopy())
    model = load_model(str(export))
    with Translator(model, CpuStandIn(model, "fp16", "cpu", cuda_graph=cuda_graph).activate()) as t:
        a, b = (rng.integers(0, 256, (24, 32, 3), dtype=np.uint8) for _ in range(2))
        first = t.translate(a)
        kept = first.copy()
        second = t.translate(b)
        batch = t.translate_batch([b, a])
        assert np.array_equal(first, kept)
        assert not np.array_equal(first, second)
        assert np.array_equal(batch[1], first) and np.array_equal(batch[0], second)


class FakeCudart:
    def __init__(self, rc: int = 0):
        self.rc = rc
        self.calls = []

    def cudaMemcpy(self, dst, src, nbytes, kind):
        self.calls.append((dst, src, nbytes, kind))
        if self.rc == 0:
            ctypes.memmove(dst, src, nbytes)
        return self.rc


def test_copy_device_to_host_uses_cudamemcpy_into_the_given_array(monkeypatch):
    lib = FakeCudart()
    monkeypatch.setattr(cuda, "cudart_ctypes", lambda: lib)
    src = np.arange(24, dtype=np.float16).reshape(2, 3, 4)
    dst = np.zeros_like(src)
    assert cuda.copy_device_to_host(dst, src.ctypes.data) is True
    assert np.array_equal(dst, src)
    assert lib.calls == [(dst.ctypes.data, src.ctypes.data, src.nbytes, cuda.CUDA_MEMCPY_DEFAULT)]
    with pytest.raises(ValueError, match="C-contiguous"):
        cuda.copy_device_to_host(np.zeros((4, 6))[:, ::2], src.ctypes.data)
    lib.rc = 700  # cudaErrorIllegalAddress
    with pytest.raises(CganError, match="cudaError 700"):
        cuda.copy_device_to_host(dst, src.ctypes.data)
    monkeypatch.setattr(cuda, "cudart_ctypes", lambda: None)
    assert cuda.copy_device_to_host(dst, src.ctypes.data) is False


def test_cudart_prefers_the_library_this_process_already_mapped(monkeypatch):
    loaded = []

    class Lib:
        def __init__(self, name):
            loaded.append(name)
            if name != "/opt/ort/nvidia/cuda_runtime/lib/libcudart.so.12":
                raise OSError(name)
            self.cudaMemcpy = lambda *a: 0

    monkeypatch.setattr(cuda, "_loaded_cudart_paths", lambda: ["/opt/ort/nvidia/cuda_runtime/lib/libcudart.so.12"])
    monkeypatch.setattr(cuda.ctypes, "CDLL", Lib)
    cuda.cudart_ctypes.cache_clear()
    try:
        assert cuda.cudart_ctypes() is not None
        assert loaded == ["/opt/ort/nvidia/cuda_runtime/lib/libcudart.so.12"]
    finally:
        cuda.cudart_ctypes.cache_clear()


def test_cuda_graph_ids_are_never_reused_after_the_bound_buffers_are_dropped(export, monkeypatch):
    """A ninth frame size drops the bound buffers; a size seen again is bound anew and must get a new graph id
    (replaying the old id would write into freed buffers), and the next new size must not get an id in use."""
    monkeypatch.setattr(ortmod.cudahelp, "copy_device_to_host", FakeCopy())
    ids = []
    with CpuStandIn(load_model(str(export)), "fp16", "cpu", cuda_graph=True) as be:
        sizes = [(16 + 4 * i, 20) for i in range(9)] + [(16, 20), (60, 20)]
        for h, w in sizes:
            be.infer(np.zeros((1, h, w, 3), np.uint8))
            ids.append(int(be.bound.get((1, h, w, 3))[5].get_run_config_entry("gpu_graph_id")))
    assert len(set(ids)) == len(ids), ids


def test_no_cuda_provider_is_reported_once_not_retried_as_a_graph_problem(export, caplog):
    """onnxruntime without its CUDA provider: one BackendUnavailable saying so. It used to be caught as a CUDA
    graph failure: a second session was built and 'CUDA graph capture not possible' logged, the wrong reason."""
    from cgan.errors import BackendUnavailable

    class NoCuda(CpuStandIn):
        provider = "CUDAExecutionProvider"  # asked for; the CPU-only onnxruntime here cannot enable it
        sessions = 0

        def _providers(self):
            NoCuda.sessions += 1
            return ["CPUExecutionProvider"]

    be = NoCuda(load_model(str(export)), "fp16", "cpu")
    with caplog.at_level(logging.WARNING), pytest.raises(BackendUnavailable, match="did not enable"):
        be.activate()
    assert NoCuda.sessions == 1 and "graph capture" not in caplog.text
