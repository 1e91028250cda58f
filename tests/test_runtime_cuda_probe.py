"""`cgan.runtime.backends.cuda.gpu_count()` answers "is there a GPU, how many" without cuInit in this process
(a later fork would leave the children without CUDA): NVML through ctypes, else the driver in a child process.
The libraries are fakes here (ctypes.CDLL replaced), so every path runs on a CPU-only machine."""
from __future__ import annotations

import ctypes
import os
import subprocess
import sys

import pytest

from cgan.errors import CganError
from cgan.runtime.backends import cuda


class FakeNvml:
    """libnvidia-ml.so.1: nvmlInit_v2 / nvmlDeviceGetCount_v2 / nvmlShutdown (+ UUIDs), return codes like NVML."""

    def __init__(self, count: int, uuids: list[str] | None = None, init_rc: int = 0):
        self.count, self.uuids, self.init_rc = count, uuids, init_rc
        self.calls: list[str] = []

    def nvmlInit_v2(self):
        self.calls.append("init")
        return self.init_rc

    def nvmlDeviceGetCount_v2(self, ref):
        self.calls.append("count")
        ref._obj.value = self.count
        return 0

    def nvmlDeviceGetHandleByIndex_v2(self, index, ref):
        ref._obj.value = 1000 + index.value
        return 0 if self.uuids is not None else 999  # NVML_ERROR_UNKNOWN

    def nvmlDeviceGetUUID(self, handle, buf, size):
        buf.value = self.uuids[handle.value - 1000].encode()
        return 0

    def nvmlShutdown(self):
        self.calls.append("shutdown")
        return 0


class FakeLibcuda:
    """libcuda.so.1 whose cuInit must never run in this process."""

    def __init__(self):
        self.cuinit_calls = 0

    def cuInit(self, flags):
        self.cuinit_calls += 1
        return 0

    def cuDeviceGetCount(self, ref):
        ref._obj.value = 7
        return 0


@pytest.fixture
def libs(monkeypatch):
    """ctypes.CDLL serves the fakes in `found` by library name; any other name is 'not found'."""
    found: dict[str, object] = {}
    loaded: list[str] = []

    def cdll(name, *args, **kwargs):
        loaded.append(name)
        if name in found:
            return found[name]
        raise OSError(f"{name}: cannot open shared object file")

    monkeypatch.setattr(cuda.ctypes, "CDLL", cdll)
    monkeypatch.delenv("CGAN_NO_CUDA", raising=False)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    cuda.probe_gpus.cache_clear()
    yield found, loaded
    cuda.probe_gpus.cache_clear()


@pytest.fixture
def no_subprocess(monkeypatch):
    def run(*args, **kwargs):
        raise AssertionError("the driver probe subprocess must not run when NVML answers")

    monkeypatch.setattr(cuda.subprocess, "run", run)


def test_nvml_answers_and_cuinit_never_runs_here(libs, no_subprocess):
    found, loaded = libs
    nvml, libcuda = FakeNvml(2), FakeLibcuda()
    found.update({"libnvidia-ml.so.1": nvml, "libcuda.so.1": libcuda})
    assert cuda.gpu_count() == 2
    assert cuda.probe_gpus().how == "nvml"
    assert nvml.calls == ["init", "count", "shutdown"]
    assert libcuda.cuinit_calls == 0 and "libcuda.so.1" not in loaded
    assert cuda.gpu_count() == 2 and nvml.calls.count("init") == 1  # cached: NVML asked once


def test_nvml_with_no_gpu_is_zero_with_a_reason(libs, no_subprocess):
    found, _ = libs
    found["libnvidia-ml.so.1"] = FakeNvml(0)
    assert cuda.gpu_count() == 0
    assert cuda.no_gpu_reason() == "no CUDA GPU here (the NVIDIA driver reports no GPU)"


@pytest.mark.parametrize("visible, expected", [
    ("", 0), ("-1", 0), (" ", 0), ("none", 0),
    ("0", 1), ("1", 1), ("0,1", 2), ("1,0,2", 3), (" 2 , 0 ", 2),
    ("0,1,2,3,4", 4),                 # more than there are: capped
    ("0,5,1", 1), ("0,-1,1", 1),      # the driver stops at the first invalid entry
    ("0,0", 0),                       # a repeated index hides every device
    ("MIG-aaaa,MIG-bbbb", 2),         # MIG entries counted ...
    ("MIG-1,MIG-2,MIG-3,MIG-4,MIG-5", 4),  # ... capped at NVML's count
])
def test_cuda_visible_devices_is_honoured(libs, no_subprocess, monkeypatch, visible, expected):
    found, _ = libs
    found["libnvidia-ml.so.1"] = FakeNvml(4)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
    assert cuda.gpu_count() == expected
    if expected == 0:
        assert "CUDA_VISIBLE_DEVICES" in cuda.no_gpu_reason()


@pytest.mark.parametrize("visible, expected", [
    ("GPU-8932f937-d72c-4106-c12f-20bd9faed9f6", 1),  # a full UUID
    ("GPU-12,GPU-89", 2),                               # unique prefixes
    ("GPU-8932,GPU-0000", 1),                           # no GPU has the second: the list stops there
    ("GPU-1", 0),                                       # two GPUs start with GPU-1: invalid from the start
    ("GPU-89,GPU-8932f", 0),                            # the same GPU twice
])
def test_gpu_uuids_are_matched_against_nvml(libs, no_subprocess, monkeypatch, visible, expected):
    found, _ = libs
    found["libnvidia-ml.so.1"] = FakeNvml(3, uuids=["GPU-8932f937-d72c-4106-c12f-20bd9faed9f6",
                                                    "GPU-12aa0000-0000-0000-0000-000000000000",
                                                    "GPU-1bbb0000-0000-0000-0000-000000000000"])
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
    assert cuda.gpu_count() == expected


def test_gpu_uuids_counted_when_nvml_cannot_list_them(libs, no_subprocess, monkeypatch):
    found, _ = libs
    found["libnvidia-ml.so.1"] = FakeNvml(2, uuids=None)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "GPU-a,GPU-b,GPU-c")
    assert cuda.gpu_count() == 2


def test_cgan_no_cuda_and_hidden_devices_load_nothing(libs, no_subprocess, monkeypatch):
    found, loaded = libs
    found["libnvidia-ml.so.1"] = FakeNvml(2)
    monkeypatch.setenv("CGAN_NO_CUDA", "1")
    assert cuda.gpu_count() == 0 and "CGAN_NO_CUDA" in cuda.no_gpu_reason()
    monkeypatch.delenv("CGAN_NO_CUDA")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "-1")
    cuda.probe_gpus.cache_clear()
    assert cuda.gpu_count() == 0
    assert loaded == []


@pytest.mark.parametrize("value,hidden", [("0", False), ("false", False), ("off", False), (" ", False),
                                          ("1", True), ("yes", True)])
def test_cgan_no_cuda_reads_like_cgan_debug(libs, no_subprocess, monkeypatch, value, hidden):
    """CGAN_NO_CUDA=0 (or false) hid every GPU: any non-empty value counted."""
    found, _ = libs
    found["libnvidia-ml.so.1"] = FakeNvml(2)
    monkeypatch.setenv("CGAN_NO_CUDA", value)
    cuda.probe_gpus.cache_clear()
    assert cuda.gpu_count() == (0 if hidden else 2)


class Done:
    def __init__(self, stdout: str, returncode: int = 0):
        self.stdout, self.returncode = stdout, returncode


def test_without_nvml_the_driver_is_asked_in_a_child_process(libs, monkeypatch):
    found, loaded = libs
    libcuda = FakeLibcuda()
    found["libcuda.so.1"] = libcuda
    calls = []

    def run(cmd, **kwargs):
        calls.append((cmd, kwargs))
        return Done("3\n")

    monkeypatch.setattr(cuda.subprocess, "run", run)
    assert cuda.gpu_count() == 3 and cuda.probe_gpus().how == "driver subprocess"
    assert libcuda.cuinit_calls == 0  # loaded here only to see that a driver exists; cuInit ran in the child
    assert "libnvidia-ml.so.1" in loaded
    (cmd, kwargs), = calls
    assert cmd[:5] == [sys.executable, "-I", "-S", "-c", cuda.DRIVER_PROBE] and "libcuda.so.1" in cmd[5:]
    assert 0 < kwargs["timeout"] <= 10


@pytest.mark.parametrize("outcome, reason", [
    (subprocess.TimeoutExpired("python", 10), "did not answer within 10 s"),
    (Done("", returncode=-11), "reports no usable device"),       # the child crashed
    (Done("Warning: something\n"), "reports no usable device"),  # not a number
    (OSError("cannot start"), "reports no usable device"),
])
def test_driver_probe_that_hangs_crashes_or_babbles_means_no_gpu(libs, monkeypatch, outcome, reason):
    found, _ = libs
    found["libcuda.so.1"] = FakeLibcuda()

    def run(cmd, **kwargs):
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    monkeypatch.setattr(cuda.subprocess, "run", run)
    assert cuda.gpu_count() == 0
    assert reason in cuda.no_gpu_reason()


def test_nvml_that_fails_to_init_falls_back_to_the_child(libs, monkeypatch):
    found, _ = libs
    nvml = FakeNvml(2, init_rc=18)  # NVML_ERROR_LIB_RM_VERSION_MISMATCH
    found.update({"libnvidia-ml.so.1": nvml, "libcuda.so.1": FakeLibcuda()})
    monkeypatch.setattr(cuda.subprocess, "run", lambda cmd, **kw: Done("1\n"))
    assert cuda.gpu_count() == 1
    assert "shutdown" not in nvml.calls  # NVML was not initialised, so not shut down either


def test_no_driver_at_all_starts_no_child(libs, no_subprocess):
    assert cuda.gpu_count() == 0
    assert cuda.no_gpu_reason() == "no CUDA GPU here (no NVIDIA driver)"


def test_embedded_interpreter_does_not_run_its_host_binary(libs, no_subprocess, monkeypatch):
    found, _ = libs
    found["libcuda.so.1"] = FakeLibcuda()
    monkeypatch.setattr(cuda.sys, "executable", "/opt/blender/blender")
    assert cuda.gpu_count() == 0 and "cannot run a probe" in cuda.no_gpu_reason()


def _run_probe_script(monkeypatch, capsys, lib) -> str:
    """Run DRIVER_PROBE as the child would, with `import ctypes` giving a fake whose CDLL serves `lib`."""
    fake_ctypes = type(sys)("ctypes")
    fake_ctypes.c_int, fake_ctypes.byref = ctypes.c_int, ctypes.byref

    def cdll(name):
        if lib is None or name != "libcuda.so.1":
            raise OSError(name)
        return lib

    fake_ctypes.CDLL = cdll
    monkeypatch.setitem(sys.modules, "ctypes", fake_ctypes)
    monkeypatch.setattr(sys, "argv", ["-c", *cuda.CUDA_LIBRARIES])
    exec(compile(cuda.DRIVER_PROBE, "<driver probe>", "exec"), {})
    monkeypatch.setitem(sys.modules, "ctypes", ctypes)
    return capsys.readouterr().out


def test_driver_probe_script_prints_the_drivers_count(monkeypatch, capsys):
    good = FakeLibcuda()
    assert _run_probe_script(monkeypatch, capsys, good) == "7\n" and good.cuinit_calls == 1

    class Failing(FakeLibcuda):
        def cuInit(self, flags):
            return 100  # CUDA_ERROR_NO_DEVICE

    assert _run_probe_script(monkeypatch, capsys, Failing()) == "0\n"
    assert _run_probe_script(monkeypatch, capsys, None) == "0\n"


def test_driver_probe_script_runs_for_real_in_a_child():
    """The real child on this machine: a number (0 without a driver), exit 0, within the timeout."""
    done = subprocess.run([sys.executable, "-I", "-S", "-c", cuda.DRIVER_PROBE, *cuda.CUDA_LIBRARIES],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert int(done.stdout.strip()) >= 0


def _count_without_cuinit() -> int:
    """gpu_count() in a fresh interpreter with ctypes.CDLL recording every load; the interpreter fails if cuInit
    (or any cuDevice call) is made in it."""
    code = """
import ctypes, sys
real = ctypes.CDLL
class Spy:
    def __init__(self, name, *a, **k):
        self._lib = real(name, *a, **k)
    def __getattr__(self, attr):
        if attr.startswith("cuInit") or attr.startswith("cuDevice"):
            sys.exit("cuInit called in-process")
        return getattr(self._lib, attr)
ctypes.CDLL = Spy
from cgan.runtime.backends import cuda
print(cuda.gpu_count())
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return int(done.stdout.strip())


def test_gpu_count_creates_no_cuda_state_in_a_fresh_interpreter():
    """gpu_count() never calls cuInit in-process, whatever this machine has (an NVML, a driver, neither)."""
    assert _count_without_cuinit() >= 0


@pytest.mark.gpu
def test_gpu_probes_count_this_machines_gpus():
    """On a GPU machine (torch sees CUDA): NVML in-process and the driver in a child both count the GPUs that
    nvidia-smi lists, and the in-process count still never calls cuInit (the two tests above can only see 0 on a
    machine without a driver)."""
    import shutil

    listed = None
    if shutil.which("nvidia-smi"):
        smi = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=60)
        if smi.returncode == 0:
            listed = sum(1 for line in smi.stdout.splitlines() if line.startswith("GPU "))
    if os.environ.get("CUDA_VISIBLE_DEVICES", "").strip():
        listed = None  # nvidia-smi ignores CUDA_VISIBLE_DEVICES; the probes apply it
    probe = cuda.probe_gpus()
    child = subprocess.run([sys.executable, "-I", "-S", "-c", cuda.DRIVER_PROBE, *cuda.CUDA_LIBRARIES],
                           capture_output=True, text=True, timeout=60)
    assert probe.count >= 1 and int(child.stdout.strip()) == probe.count, (probe, child.stdout, child.stderr)
    if listed is not None:
        assert probe.count == listed
    assert _count_without_cuinit() == probe.count


def test_torch_backend_check_does_not_initialise_cuda(monkeypatch):
    """The torch backend's availability answer must not call torch.cuda.is_available() (it runs cuInit, after
    which fork()ed children cannot use CUDA); the driver/build match is checked when the backend is loaded."""
    import torch

    from cgan.errors import BackendUnavailable
    from cgan.runtime.backends import torch_backend

    def forbidden():
        raise AssertionError("torch.cuda.is_available() called by check()")

    monkeypatch.setattr(torch.cuda, "is_available", forbidden)
    monkeypatch.setattr(cuda, "gpu_count", lambda: 1)
    monkeypatch.setattr(torch.backends.cuda, "is_built", lambda: True)
    assert torch_backend._cuda_ok() == (True, "")
    assert torch_backend.TorchBackend.check(device="cuda") == (True, "")
    monkeypatch.setattr(torch.backends.cuda, "is_built", lambda: False)
    ok, reason = torch_backend._cuda_ok()
    assert not ok and "no CUDA support" in reason
    # loading on CUDA with a torch that cannot drive the GPU: a clear BackendUnavailable, not a RuntimeError
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    backend = torch_backend.TorchBackend.__new__(torch_backend.TorchBackend)
    backend.device = "cuda"
    with pytest.raises(BackendUnavailable, match="cannot use the GPU"):
        backend._activate_impl()


class FakeDevice(FakeLibcuda):
    """libcuda with one device, an H200 (compute capability 9.0)."""

    def cuDeviceGet(self, ref, index):
        ref._obj.value = index
        return 0 if index == 0 else 101  # CUDA_ERROR_INVALID_DEVICE

    def cuDeviceGetName(self, buf, size, dev):
        buf.value = b"NVIDIA H200"
        return 0

    def cuDeviceGetAttribute(self, ref, attribute, dev):
        ref._obj.value = {75: 9, 76: 0}[attribute]
        return 0


def _run_device_probe(monkeypatch, capsys, lib, index: int = 0) -> str:
    fake_ctypes = type(sys)("ctypes")
    fake_ctypes.c_int, fake_ctypes.byref = ctypes.c_int, ctypes.byref
    fake_ctypes.create_string_buffer = ctypes.create_string_buffer
    fake_ctypes.CDLL = lambda name: lib if lib is not None and name == "libcuda.so.1" else (_ for _ in ()).throw(
        OSError(name))
    monkeypatch.setitem(sys.modules, "ctypes", fake_ctypes)
    monkeypatch.setattr(sys, "argv", ["-c", str(index), *cuda.CUDA_LIBRARIES])
    exec(compile(cuda.DEVICE_PROBE, "<device probe>", "exec"), {})
    monkeypatch.setitem(sys.modules, "ctypes", ctypes)
    return capsys.readouterr().out


def test_device_probe_script_prints_compute_capability_and_name(monkeypatch, capsys):
    assert _run_device_probe(monkeypatch, capsys, FakeDevice()) == "9.0\nNVIDIA H200\n"
    assert _run_device_probe(monkeypatch, capsys, FakeDevice(), index=1) == ""  # no such device
    assert _run_device_probe(monkeypatch, capsys, None) == ""  # no driver


def test_what_the_gpu_is_is_asked_in_a_child_process(monkeypatch):
    """The TensorRT checks (available_backends() among them) compare an engine's GPU with this one: asking the
    runtime API here ran cuInit in the caller's process, which the fork-safety promise rules out."""
    calls = []

    def run(cmd, **kwargs):
        calls.append(cmd)
        return Done("9.0\nNVIDIA H200\n")

    def no_cudart():
        raise AssertionError("the CUDA runtime must not be asked in this process")

    monkeypatch.setattr(cuda.subprocess, "run", run)
    monkeypatch.setattr(cuda, "cudart", no_cudart)
    cuda.device_properties.cache_clear()
    try:
        assert cuda.device_properties(0) == ("NVIDIA H200", "9.0") and cuda.device_properties(0)
        assert len(calls) == 1 and calls[0][:6] == [sys.executable, "-I", "-S", "-c", cuda.DEVICE_PROBE, "0"]
        cuda.device_properties.cache_clear()
        monkeypatch.setattr(cuda.subprocess, "run", lambda cmd, **kw: Done(""))
        with pytest.raises(CganError, match="did not say what GPU 0 is"):
            cuda.device_properties(0)
    finally:
        cuda.device_properties.cache_clear()


def test_device_probe_runs_for_real_in_a_child():
    """On this machine (no driver here, or a GPU on the device machine): exit 0, two lines or none."""
    done = subprocess.run([sys.executable, "-I", "-S", "-c", cuda.DEVICE_PROBE, "0", *cuda.CUDA_LIBRARIES],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert len(done.stdout.splitlines()) in (0, 2)


LIST_ON_A_GPU_MACHINE = r"""
import sys
from cgan.runtime.backends import cuda
cuda.gpu_count = lambda *a, **k: 1  # an NVIDIA GPU, as NVML would say
from cgan.runtime import available_backends
found = available_backends()
print("torch imported" if "torch" in sys.modules else "torch not imported")
print("torch:", *found["torch"])
"""


def fake_torch(folder, cuda_line: str) -> None:
    """A torch package whose import fails (it must not be imported) and whose version.py says `cuda_line`."""
    (folder / "torch").mkdir()
    (folder / "torch" / "__init__.py").write_text("raise ImportError('torch was imported')\n")
    (folder / "torch" / "version.py").write_text(
        f"from typing import Optional\n__version__ = '9.9.0+test'\ndebug = False\n{cuda_line}\n")


@pytest.mark.parametrize("line,ok", [("cuda: Optional[str] = None", False), ("cuda: Optional[str] = '13.0'", True),
                                     ('cuda = "12.8"', True), ("", None)])
def test_listing_the_backends_on_a_gpu_machine_does_not_import_torch(tmp_path, line, ok):
    """available_backends() imported torch (seconds, hundreds of MB) on every machine with an NVIDIA GPU, to ask
    whether it was a CUDA build; torch's version.py says so as text. A version.py that does not say: torch is
    asked (here its import fails, and the backend says torch cannot be used)."""
    fake_torch(tmp_path, line)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]))
    p = subprocess.run([sys.executable, "-c", LIST_ON_A_GPU_MACHINE], capture_output=True, text=True, env=env,
                       timeout=120)
    if ok is None:  # asked, and its import fails: said in the reason, the listing does not fail
        assert p.returncode == 0, p.stderr[-2000:]
        assert "torch is installed but does not import (torch was imported)" in p.stdout, p.stdout
        return
    assert p.returncode == 0, p.stderr[-2000:]
    assert "torch not imported" in p.stdout
    if ok:
        assert "torch: True cuda" in p.stdout, p.stdout
    else:
        assert "torch: True cpu only: this torch (9.9.0+test) has no CUDA support" in p.stdout, p.stdout


def test_the_drivers_cuda_version_comes_from_nvml(monkeypatch):
    """What cuda_python_problem compares cuda-python's major version with: NVML's
    nvmlSystemGetCudaDriverVersion_v2 (12040 -> 12.4), shut down after; None without NVML or the call."""
    class WithVersion(FakeNvml):
        def nvmlSystemGetCudaDriverVersion_v2(self, ref):
            self.calls.append("version")
            ref._obj.value = 12040
            return 0

    for lib, want, calls in ((WithVersion(1), (12, 4), ["init", "version", "shutdown"]),
                             (WithVersion(1, init_rc=1), None, ["init"]),
                             (FakeNvml(1), None, ["init", "shutdown"]), (None, None, None)):
        monkeypatch.setattr(cuda, "_load", lambda names, lib=lib: lib if names == cuda.NVML_LIBRARIES else None)
        cuda.driver_cuda_version.cache_clear()
        assert cuda.driver_cuda_version() == want
        assert lib is None or lib.calls == calls
    cuda.driver_cuda_version.cache_clear()
