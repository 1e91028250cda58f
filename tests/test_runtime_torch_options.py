"""The torch backend's options: memory_format resolution, option checks, and what reaches torch.compile."""
from __future__ import annotations

import concurrent.futures
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from cgan.errors import CganError
from cgan.runtime import Translator
from cgan.runtime.backends.torch_backend import (DEFAULT_COMPILE_MODE, TorchBackend, check_options,
                                                 resolve_memory_format)

sys.path.insert(0, str(Path(__file__).parent))
from _helpers_runtime import make_pair  # noqa: E402


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    return make_pair(tmp_path_factory.mktemp("torchopts") / "pair", blocks=1, ngf=4)


def frames(n=2, h=20, w=24):
    return np.random.default_rng(3).integers(0, 256, (n, h, w, 3), dtype=np.uint8)


@pytest.mark.parametrize("fmt, compiled, want", [
    ("auto", False, "nchw"),            # eager: NCHW (PERF_NOTES: 15.0 ms vs 21.2 ms channels_last at 720p)
    ("auto", True, "channels_last"),    # compiled: channels_last (4.71 ms, the fastest measured)
    ("channels_last", False, "channels_last"),
    ("channels_last", True, "channels_last"),
    ("nchw", False, "nchw"),
    ("nchw", True, "nchw"),
])
def test_memory_format_resolution(fmt, compiled, want):
    assert resolve_memory_format(fmt, compiled) == want


def test_settings_defaults():
    assert check_options({}, "cuda") == {"compile": False, "compile_mode": None, "cuda_graph": False,
                                         "memory_format": "nchw", "upsample": "transposed"}
    assert check_options({"compile": True, "cuda_graph": True}, "cuda") == {
        "compile": True, "compile_mode": DEFAULT_COMPILE_MODE, "cuda_graph": True, "memory_format": "channels_last",
        "upsample": "transposed"}
    assert check_options({"upsample": "subpixel"}, "cpu")["upsample"] == "subpixel"
    for bad in ("pixel", "", False, 0):
        with pytest.raises(CganError, match="unknown upsample .* for the torch backend: use transposed, subpixel"):
            check_options({"upsample": bad}, "cpu")
    assert check_options({"compile": True, "compile_mode": "default", "memory_format": "nchw", "threads": 2},
                         "cpu")["memory_format"] == "nchw"
    assert check_options({"cuda_graph": False}, "cpu")["cuda_graph"] is False


@pytest.mark.parametrize("opts, device, words", [
    ({"memory_format": "nhwc"}, "cuda", "unknown memory_format 'nhwc'"),
    ({"compile": True, "compile_mode": "fastest"}, "cuda", "unknown compile_mode 'fastest'"),
    ({"compile_mode": "default"}, "cuda", "needs compile=True"),
    ({"cuda_graph": True}, "cpu", "need device cuda"),
    ({"compile": True, "compile_mode": "reduce-overhead", "cuda_graph": True}, "cuda", "captures CUDA graphs itself"),
    ({"compile": "yes"}, "cpu", "must be True or False"),
    ({"compiled": True}, "cpu", "unknown option(s) 'compiled'"),
])
def test_bad_options_are_one_line_errors(opts, device, words):
    with pytest.raises(CganError) as e:
        check_options(opts, device)
    assert words in str(e.value) and "\n" not in str(e.value)


def test_bad_option_through_translator_load(pair):
    with pytest.raises(CganError, match="unknown memory_format 'fast'"):
        Translator.load(str(pair), backend="torch", device="cpu", memory_format="fast")
    with pytest.raises(CganError, match="need device cuda"):
        Translator.load(str(pair), backend="torch", device="cpu", cuda_graph=True)


def test_memory_format_is_applied_and_outputs_agree(pair):
    import torch

    x = frames()
    outs = {}
    for fmt in ("nchw", "channels_last"):
        with Translator.load(str(pair), backend="torch", device="cpu", memory_format=fmt) as t:
            be = t.backend
            assert be.settings["memory_format"] == fmt
            conv = next(m for m in be.net.modules() if isinstance(m, torch.nn.Conv2d))
            assert conv.weight.is_contiguous(memory_format=torch.channels_last) == (fmt == "channels_last")
            outs[fmt] = be.infer(x).copy()
    diff = np.abs(outs["nchw"].astype(int) - outs["channels_last"].astype(int))
    assert diff.max() <= 1


def test_compile_gets_mode_static_shapes_and_channels_last(pair, monkeypatch):
    """torch.compile itself takes ~20 s on this CPU even for a tiny net, so record what reaches it instead."""
    import torch
    from torch._dynamo import config as dynamo_config

    calls = []

    def fake_compile(net, **kw):
        calls.append(kw)
        conv = next(m for m in net.modules() if isinstance(m, torch.nn.Conv2d))
        calls[-1]["channels_last"] = conv.weight.is_contiguous(memory_format=torch.channels_last)
        return net

    monkeypatch.setattr(torch, "compile", fake_compile)
    key = "recompile_limit" if hasattr(dynamo_config, "recompile_limit") else "cache_size_limit"
    monkeypatch.setattr(dynamo_config, key, 8)
    with Translator.load(str(pair), backend="torch", device="cpu", compile=True) as t:
        assert t.backend.settings == {"compile": True, "compile_mode": DEFAULT_COMPILE_MODE, "cuda_graph": False,
                                      "memory_format": "channels_last", "upsample": "transposed"}
        t.translate(frames(1)[0])
    assert calls == [{"mode": DEFAULT_COMPILE_MODE, "dynamic": False, "channels_last": True}]
    assert getattr(dynamo_config, key) >= 64  # many benchmark sizes must not fall back to eager silently
    calls.clear()
    with Translator.load(str(pair), backend="torch", device="cpu", compile=True, compile_mode="default",
                         memory_format="nchw"):
        pass
    assert calls == [{"mode": "default", "dynamic": False, "channels_last": False}]
    calls.clear()
    with Translator.load(str(pair), backend="torch", device="cpu"):
        pass
    assert calls == []


def test_settings_exist_before_activation(pair):
    from cgan.runtime.backends.base import load_model

    be = TorchBackend(load_model(str(pair)), device="cpu", compile=True, memory_format="nchw")
    assert not be.is_active and be.settings["memory_format"] == "nchw"


# ---- on a GPU: every step of the ladder gives the eager output ------------------------------------------------
@pytest.mark.gpu
@pytest.mark.parametrize("opts", [
    {}, {"cuda_graph": True}, {"memory_format": "channels_last"},
    {"memory_format": "channels_last", "cuda_graph": True},
    {"compile": True, "compile_mode": "default"}, {"compile": True, "compile_mode": "default", "cuda_graph": True},
    {"upsample": "subpixel"},
    {"compile": True, "compile_mode": "default", "cuda_graph": True, "upsample": "subpixel"},
])
def test_gpu_ladder_matches_eager(pair, opts):
    """Every step of the ladder is as close to the FP32 output as eager FP16 is. (Compared with eager FP16 itself,
    torch.compile's fused instance norm -- its statistics summed in another order -- may differ by more than 2
    levels on a few pixels, as two FP16 roundings of the same value may.)"""
    x = frames(2, 64, 96)
    with Translator.load(str(pair), backend="torch", device="cuda", precision="fp32") as ref:
        ref32 = ref.backend.infer(x).astype(int)
    with Translator.load(str(pair), backend="torch", device="cuda", precision="fp16") as ref:
        want = ref.backend.infer(x).astype(int)
    with Translator.load(str(pair), backend="torch", device="cuda", precision="fp16", **opts) as t:
        for _ in range(3):  # first call compiles / captures, later ones replay
            got = t.backend.infer(x).astype(int)
    err_want, err_got = np.abs(want - ref32), np.abs(got - ref32)
    seen = (f"{opts}: vs FP32 max {err_got.max()} mean {err_got.mean():.3f}; eager FP16 max {err_want.max()} "
            f"mean {err_want.mean():.3f}; vs eager FP16 max {np.abs(got - want).max()}")
    print(seen)
    assert err_got.max() <= err_want.max() + 2 and err_got.mean() <= 1.5 * err_want.mean() + 0.05, seen


@pytest.mark.gpu
def test_gpu_shapes_beyond_the_cache_evict_the_oldest(pair):
    """More frame shapes than MAX_SHAPES: the least recently used shape's pinned buffers and CUDA graph go
    (each graph holds a memory pool), and a shape that comes back is captured again and still right."""
    from cgan.runtime.backends.base import MAX_SHAPES

    shapes = [(1, 32, 32 + 4 * i) for i in range(MAX_SHAPES + 2)]
    with Translator.load(str(pair), backend="torch", device="cuda", precision="fp16") as ref:
        want = {s: ref.backend.infer(frames(*s)).copy() for s in shapes[:2]}
    with Translator.load(str(pair), backend="torch", device="cuda", precision="fp16", cuda_graph=True) as t:
        for s in shapes:
            t.backend.infer(frames(*s))
        assert len(t.backend.graphs) == MAX_SHAPES == len(t.backend.pinned)
        assert (1, 32, 32, 3) not in t.backend.pinned
        for s in shapes[:2]:
            got = t.backend.infer(frames(*s))
            assert np.abs(got.astype(int) - want[s].astype(int)).max() <= 2


def test_portable_options_and_typos_across_backends(pair, tmp_path):
    """device_id= and threads= are taken by every backend, so backend='auto' accepts them whatever it picks
    (auto picking torch used to refuse the documented device_id=); a typo is refused by every backend (ort-cpu
    used to accept thread=2 silently); bad values are one line (threads='two' was a ValueError traceback)."""
    import torch

    from _helpers_runtime import make_export
    from cgan.runtime.backends.base import Backend
    from cgan.runtime.backends.ort import OrtCpuBackend, OrtCudaBackend
    from cgan.runtime.backends.tensorrt import TensorRTBackend

    with Translator.load(str(pair), backend="torch", device="cpu", device_id=0, threads=1) as t:
        assert t.translate(frames(1)[0]).shape == (20, 24, 3)
    export = make_export(pair, tmp_path / "export")
    with Translator.load(str(export), backend="ort-cpu", device_id=0, threads=1) as t:
        assert t.translate(frames(1)[0]).shape == (20, 24, 3)
    with pytest.raises(CganError, match=r"unknown option\(s\) 'thread' for the ort-cpu backend"):
        Translator.load(str(export), backend="ort-cpu", thread=2)
    for bad in (dict(threads="two"), dict(threads=0), dict(device_id=-1), dict(device_id=True)):
        with pytest.raises(CganError, match="must be an integer"):
            Translator.load(str(pair), backend="torch", device="cpu", **bad)
    for backend, source in (("torch", pair), ("ort-cpu", export)):  # thousands of threads: a hang or a crash
        with pytest.raises(CganError, match=r"threads=100000 is more than this machine allows"):
            Translator.load(str(source), backend=backend, threads=100000)
    # GPU 1: ort-cuda can run there; torch and TensorRT say how to get there
    assert OrtCudaBackend.check_opts({"device_id": 1}, "cuda") == {"device_id": 1}
    for cls in (TorchBackend, TensorRTBackend):
        with pytest.raises(CganError, match="CUDA_VISIBLE_DEVICES=1"):
            cls.check_opts({"device_id": 1}, "cuda")
    assert OrtCpuBackend.check_opts({"device_id": 1}, "cpu") == {"device_id": 1}  # ignored on the CPU
    assert Backend.check_opts({}, "cpu") == {}
    # torch's thread count is each thread's own (OpenMP's): `threads` holds in whichever thread translates, for
    # the call; set once at load, it held only in the loading thread, and a close elsewhere left it set there
    before = torch.get_num_threads()
    seen = []

    def probe(t):
        net = t.backend.net
        t.backend.net = lambda x: (seen.append(torch.get_num_threads()), net(x))[1]

    with Translator.load(str(pair), backend="torch", device="cpu", threads=before + 1) as t:
        probe(t)
        assert torch.get_num_threads() == before
        t.translate(frames(1)[0])
        assert seen == [before + 1] and torch.get_num_threads() == before
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            assert pool.submit(lambda: (t.translate(frames(1)[0]), torch.get_num_threads())[1]).result() == 1
            assert seen[-1] == before + 1
            t2 = pool.submit(Translator.load, str(pair), backend="torch", device="cpu", threads=before + 2).result()
        probe(t2)
        t2.translate(frames(1)[0])  # loaded in another thread, used in this one
        assert seen[-1] == before + 2 and torch.get_num_threads() == before
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            pool.submit(t2.close).result()
    assert torch.get_num_threads() == before


def test_bad_resize_or_max_side_fail_before_loading(pair, monkeypatch):
    """A typo in resize= or max_side= used to cost a full load (hash check, session build) before the error;
    max_side='512' was a TypeError traceback."""
    def never(*a, **k):
        raise AssertionError("the model must not be loaded")

    monkeypatch.setattr("cgan.runtime.translator.load_model", never)
    with pytest.raises(CganError, match="unknown resize policy"):
        Translator.load(str(pair), resize="stretch")
    with pytest.raises(CganError, match="max_side must be an integer"):
        Translator.load(str(pair), max_side="512")


def test_numpy_integers_are_integers(pair):
    with Translator.load(str(pair), backend="torch", device="cpu", max_side=np.int64(16), threads=np.int32(1)) as t:
        assert t.translate(frames(1)[0]).shape == (20, 24, 3)


FORK_SCRIPT = r"""
import os, sys, time
import numpy as np
import torch
from cgan.runtime import Translator

torch.set_num_threads(2)  # a thread pool, as on any machine with more than one core
frame = np.random.default_rng(0).integers(0, 256, (128, 128, 3), dtype=np.uint8)
if sys.argv[2] == "app":  # the application ran torch itself; cgan's torch backend was not used before the fork
    x = torch.randn(512, 512)
    (x @ x).sum()
    (torch.randn(1_000_000) * 2).sum()
    parent, want = None, None
else:
    parent = Translator.load(sys.argv[1], backend="torch")
    want = parent.translate(frame)
pid = os.fork()
if pid == 0:  # the child: the parent's Translator, then a new one, then a new one asking for threads
    got = Translator.load(sys.argv[1], backend="torch").translate(frame)
    ok = want is None or np.array_equal(got, want)
    ok &= parent is None or np.array_equal(parent.translate(frame), got)
    ok &= np.array_equal(Translator.load(sys.argv[1], backend="torch", threads=2).translate(frame), got)
    os._exit(0 if ok else 3)
deadline = time.time() + 90
while time.time() < deadline:
    done, status = os.waitpid(pid, os.WNOHANG)
    if done:
        print("child exit", os.waitstatus_to_exitcode(status))
        break
    time.sleep(0.2)
else:
    os.kill(pid, 9)
    print("child hung")
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork here")
@pytest.mark.parametrize("who", ["cgan", "app"])
def test_a_forked_child_translates_on_one_thread_instead_of_hanging(pair, tmp_path, who):
    """PyTorch's CPU thread pool does not survive fork: a torch Translator used in a child forked after the
    parent ran torch on several threads -- through cgan, or the application's own torch code -- (a
    multiprocessing or gunicorn worker) hung for ever, a new one too, while loading its weights. The child now
    runs torch on one thread, with the same output, and a warning says why."""
    script = tmp_path / "fork.py"
    script.write_text(FORK_SCRIPT)
    p = subprocess.run([sys.executable, str(script), str(pair), who], capture_output=True, text=True, timeout=240)
    assert "child exit 0" in p.stdout, (p.stdout, p.stderr[-2000:])
    assert p.stderr.count("forked from one with torch loaded") == 1, p.stderr[-2000:]


def test_torch_failures_reach_the_app_as_one_cgan_error(pair):
    """ort-cpu turns onnxruntime's failures (no memory for a large frame) into one CganError line; torch's
    RuntimeError ("DefaultCPUAllocator: can't allocate memory ...") reached the app raw, so an app catching
    CganError broke whenever `auto` picked torch. The translator still works afterwards."""
    with Translator.load(str(pair), backend="torch", device="cpu") as t:
        net = t.backend.net

        def oom(x):
            raise RuntimeError("[enforce fail at alloc_cpu.cpp:127] data. DefaultCPUAllocator: can't allocate "
                               "memory: you tried to allocate 9663676416 bytes.\nmore lines")

        t.backend.net = oom
        with pytest.raises(CganError, match=r"^torch failed running .* on cpu on a batch of 1x20x24x3: "
                                            r"\[enforce fail.*bytes\.; a smaller frame size or batch") as e:
            t.translate(frames(1)[0])
        assert "\n" not in str(e.value)
        t.backend.net = net
        assert t.translate(frames(1)[0]).shape == (20, 24, 3)


def test_cudnn_search_is_on_only_while_translating(pair):
    """On CUDA the backend set torch.backends.cudnn.benchmark for the whole process and never put it back,
    changing the embedding app's own torch work. It is on for the backend's own calls only (the CUDA path is
    stood in for here: no GPU)."""
    import torch

    with Translator.load(str(pair), backend="torch", device="cpu") as t:
        seen = []
        t.backend.device = "cuda"
        t.backend._run_cuda = lambda batch: (seen.append(torch.backends.cudnn.benchmark), batch)[1]
        assert torch.backends.cudnn.benchmark is False
        t.translate(frames(1)[0])
        assert seen == [True] and torch.backends.cudnn.benchmark is False
        torch.backends.cudnn.benchmark = True  # the app's own choice stays
        t.translate(frames(1)[0])
        assert torch.backends.cudnn.benchmark is True
        torch.backends.cudnn.benchmark = False


def test_subpixel_upsampling_gives_the_transposed_convolutions_outputs(pair):
    """The torch backend's upsample='subpixel' runs the same arithmetic: on the CPU in FP32 the frames match."""
    x = frames(2, 36, 52)
    with Translator.load(str(pair), backend="torch", device="cpu") as ref:
        want = ref.backend.infer(x).astype(int)
    with Translator.load(str(pair), backend="torch", device="cpu", upsample="subpixel") as t:
        assert t.backend.settings["upsample"] == "subpixel"
        assert not any(type(m).__name__ == "ConvTranspose2d" for m in t.backend.net.modules())
        got = t.backend.infer(x).astype(int)
    assert np.abs(got - want).max() <= 1


class _CaptureFails:
    """torch with its CUDA calls stood in for (no GPU here): graph capture raises `error` when it ends."""

    def __init__(self, torch, error):
        import contextlib
        import types

        @contextlib.contextmanager
        def graph(_):
            yield
            raise RuntimeError(error)

        stream = types.SimpleNamespace(wait_stream=lambda other: None, synchronize=lambda: None)
        self.cuda = types.SimpleNamespace(Stream=lambda: stream, current_stream=lambda: stream,
                                          stream=lambda s: contextlib.nullcontext(), CUDAGraph=object, graph=graph)
        self._torch = torch

    def zeros(self, shape, dtype, device):
        return self._torch.zeros(shape, dtype=dtype)

    def __getattr__(self, name):
        return getattr(self._torch, name)


def test_a_cuda_graph_that_cannot_be_captured_says_to_run_without_graphs(pair):
    """A capture failure (an op that cannot be captured) said 'torch failed ...; another backend', when the
    same backend without CUDA graphs runs: the line names the graph and --no-cuda-graphs. Out of memory in the
    capture still gets the memory hint."""
    import torch

    with Translator.load(str(pair), backend="torch", device="cpu") as t:
        b = t.backend
        b.torch = _CaptureFails(torch, "CUDA error: operation not permitted when stream is capturing\nmore")
        with pytest.raises(CganError, match=r"^torch could not capture a CUDA graph of .* for a batch of 1x20x24x3: "
                                            r"CUDA error: operation not permitted when stream is capturing; run "
                                            r"without CUDA graphs \(--no-cuda-graphs, cuda_graph=False\)$"):
            b._graph((1, 20, 24, 3))
        assert b.graphs == {}
        b.torch = _CaptureFails(torch, "CUDA out of memory. Tried to allocate 2.00 GiB")
        with pytest.raises(RuntimeError, match="out of memory"):
            b._graph((1, 20, 24, 3))
        b.torch = torch
