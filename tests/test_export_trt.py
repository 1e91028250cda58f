"""TensorRT engine logic with a fake `trt` module (profiles, strong typing, cache key/skip, sidecar, errors)."""
from __future__ import annotations

import re
import json
import sys
import types

import pytest

from cgan._optional import pip_extra
from cgan.errors import BackendUnavailable, CganError, IntegrityError
from cgan.export import tensorrt as T

GPU = {"name": "Fake GPU", "compute_capability": "8.9"}


class FakeTRT(types.SimpleNamespace):
    """Just enough of the tensorrt Python API; records what the builder was asked to do."""

    def __init__(self, version="10.13.0", parse_ok=True, strongly_flag=True, input_shape=(-1, 3, -1, -1)):
        calls = {"builds": 0, "flags": None, "shapes": None, "opt_level": None, "pool": None, "cache_in": None}
        flag_enum = types.SimpleNamespace(STRONGLY_TYPED=5) if strongly_flag else types.SimpleNamespace()

        class Logger:
            WARNING = 2

            def __init__(self, level):
                pass

        class Config:
            builder_optimization_level = 0

            def set_memory_pool_limit(self, pool, size):
                calls["pool"] = (pool, size)

            def add_optimization_profile(self, p):
                calls["shapes"] = p.shapes

            def create_timing_cache(self, data):
                calls["cache_in"] = bytes(data)
                return data

            def set_timing_cache(self, cache, ignore_mismatch):
                pass

            def get_timing_cache(self):
                return types.SimpleNamespace(serialize=lambda: b"timing-cache-" + str(calls["builds"]).encode())

        class Profile:
            def set_shape(self, name, mn, opt, mx):
                assert name == "input"
                self.shapes = (mn, opt, mx)

        class Builder:
            def __init__(self, logger):
                pass

            def create_network(self, flags):
                calls["flags"] = flags
                tensor = types.SimpleNamespace(shape=input_shape, name="input")  # as parsed: dynamic batch and size
                out = types.SimpleNamespace(shape=input_shape, name="output")
                return types.SimpleNamespace(get_input=lambda i: tensor, get_output=lambda i: out)

            def create_builder_config(self):
                self.config = Config()
                return self.config

            def create_optimization_profile(self):
                return Profile()

            def build_serialized_network(self, network, config):
                calls["builds"] += 1
                calls["opt_level"] = config.builder_optimization_level
                return b"PLAN" + bytes([calls["builds"]])

        class OnnxParser:
            num_errors = 0 if parse_ok else 1

            def __init__(self, network, logger):
                pass

            def parse_from_file(self, path):
                return parse_ok

            def get_error(self, i):
                return "In node 3 (importPad): UNSUPPORTED_NODE: Pad mode reflect"

        super().__init__(__version__=version, Logger=Logger, Builder=Builder, OnnxParser=OnnxParser,
                         NetworkDefinitionCreationFlag=flag_enum, MemoryPoolType=types.SimpleNamespace(WORKSPACE=0))
        self.calls = calls


@pytest.fixture
def onnx_file(tmp_path):
    p = tmp_path / "G.fp16.onnx"
    p.write_bytes(b"fake onnx bytes")
    return p


def test_parse_shapes_and_batch():
    assert T.parse_shapes("256x256,720x1280,1080x1920") == ((256, 256), (720, 1280), (1080, 1920))
    assert T.parse_shapes("512x512") == ((512, 512),) * 3
    assert T.parse_batch("1,2,4") == (1, 2, 4) and T.parse_batch("2") == (2, 2, 2)
    prof = T.make_profile("256x256,720x1280,1080x1920", "1,1,4")
    assert prof.input_shapes() == [(1, 3, 256, 256), (1, 3, 720, 1280), (4, 3, 1080, 1920)]
    assert prof.input_shapes("bgr-hwc-uint8")[2] == (4, 1080, 1920, 3)
    for bad_shapes, bad_batch in [("720by1280", "1"), ("256x256,128x128,1080x1920", "1"), ("250x256", "1"),
                                  ("256x256,512x512", "1"), ("256x256", "4,1,2"), ("256x256", "0"), ("256x256", "a")]:
        with pytest.raises(CganError):
            T.make_profile(bad_shapes, bad_batch)
    # over the runtime's largest frame: refused before the ONNX work (TensorRT ran out of memory after it)
    with pytest.raises(CganError, match=r"profile size 100000x100000 is over the 4096x4096 pixels"):
        T.make_profile("256x256,720x1280,100000x100000", "1")
    assert T.make_profile("256x256,720x1280,2160x3840", "1").shapes[2] == (2160, 3840)


def test_build_writes_plain_plan_sidecar_and_cache_then_skips(onnx_file, monkeypatch):
    trt = FakeTRT()
    prof = T.make_profile("256x256,720x1280,1080x1920", "1,1,4")
    side = T.build_engine(onnx_file, prof, trt_module=trt, flavour="tensorrt", gpu=GPU, opt_level=4,
                          workspace_gb=2, cgan_version="9.9")
    plan = onnx_file.with_name("G.fp16.trt.plan")
    assert plan.read_bytes() == b"PLAN\x01"  # no custom header
    meta = json.loads(plan.with_name("G.fp16.trt.plan.json").read_text())
    assert meta["flavour"] == "tensorrt" and meta["trt_version"] == "10.13.0" and meta["gpu"] == GPU
    assert meta["profiles"][0]["shapes"] == [[256, 256], [720, 1280], [1080, 1920]] and meta["strongly_typed"] == "flag"
    assert meta["onnx"]["sha256"] == T.sha256_file(onnx_file) and meta["cgan_version"] == "9.9"
    assert side["skipped"] is False and trt.calls["flags"] == 1 << 5 and trt.calls["opt_level"] == 4
    assert trt.calls["pool"] == (0, 2 << 30) and trt.calls["shapes"][2] == (4, 3, 1080, 1920)
    cache = T.timing_cache_path("tensorrt", "10.13.0", GPU)  # per TensorRT version and GPU
    assert "cc8.9-fake-gpu" in cache.name
    assert cache.read_bytes() == b"timing-cache-1" and trt.calls["cache_in"] == b""
    assert meta["timing_cache_bytes_in"] == 0  # a cold build
    # same key: skipped, nothing rebuilt
    again = T.build_engine(onnx_file, prof, trt_module=trt, flavour="tensorrt", gpu=GPU, opt_level=4, workspace_gb=2)
    assert again["skipped"] is True and trt.calls["builds"] == 1
    # a different key (shapes, GPU, version, ONNX) rebuilds and reuses the persisted timing cache
    warm = T.build_engine(onnx_file, T.make_profile("256x256", "1"), trt_module=trt, flavour="tensorrt", gpu=GPU,
                          opt_level=4)
    assert trt.calls["builds"] == 2 and trt.calls["cache_in"] == b"timing-cache-1"
    assert warm["timing_cache_bytes_in"] == len(b"timing-cache-1")  # cgan-bench engines reports it as warm
    T.build_engine(onnx_file, prof, trt_module=trt, flavour="tensorrt", gpu={**GPU, "name": "Other"}, opt_level=4)
    assert trt.calls["builds"] == 3
    plan.write_bytes(b"tampered")  # a damaged plan is never treated as up to date
    T.build_engine(onnx_file, prof, trt_module=trt, flavour="tensorrt", gpu={**GPU, "name": "Other"}, opt_level=4)
    assert trt.calls["builds"] == 4
    # another workspace cap: built again, and the sidecar says the cap it was built with
    for cap, builds in ((0.5, 5), (0.5, 5), (None, 6)):
        side = T.build_engine(onnx_file, prof, trt_module=trt, flavour="tensorrt", gpu=GPU, opt_level=4,
                              workspace_gb=cap)
        assert trt.calls["builds"] == builds and side["workspace_gb"] == cap


def test_a_grayscale_generator_gets_a_one_channel_profile(onnx_file):
    """The profile's channel count is the parsed network's (a 1-channel generator's engine was asked for 3)."""
    prof = T.make_profile("64x64,128x128,256x256", "1,1,2")
    for io, shape, want in (("nchw", (-1, 1, -1, -1), (2, 1, 256, 256)), ("nchw", (-1, 3, -1, -1), (2, 3, 256, 256)),
                            ("bgr-hwc-uint8", (-1, -1, -1, 3), (2, 256, 256, 3))):
        trt = FakeTRT(input_shape=shape)
        side = T.build_engine(onnx_file, prof, io=io, trt_module=trt, flavour="tensorrt", gpu=GPU, force=True)
        assert trt.calls["shapes"][2] == want and side["profiles"][0]["max"] == list(want)


def test_sidecar_is_what_the_runtime_backend_reads(onnx_file):
    """The exporter's sidecar and the runtime's compatibility/profile logic must speak the same format."""
    from cgan.runtime.backends.tensorrt import Environment, profile_for, sidecar_fields, sidecar_problems

    side = T.build_engine(onnx_file, T.make_profile("256x256,720x1280,1080x1920", "1,1,4"), trt_module=FakeTRT(),
                          flavour="tensorrt", gpu=GPU)
    env = Environment("tensorrt", "10.13.0", GPU["name"], GPU["compute_capability"])
    onnx_sha = T.sha256_file(onnx_file)
    assert sidecar_problems(side, env, {onnx_sha}) == []
    assert any("not the one in this export" in p for p in sidecar_problems(side, env, {"0" * 64}))
    assert any("10.14" in p for p in sidecar_problems(side, Environment("tensorrt", "10.14.0", "x", "8.9"), None))
    profiles = sidecar_fields(side)["profiles"]
    assert profile_for(profiles, (1, 3, 720, 1280)) == 0 and profile_for(profiles, (4, 3, 1080, 1920)) == 0
    with pytest.raises(CganError, match="outside the engine's profiles"):
        profile_for(profiles, (1, 3, 2160, 3840))


def test_corrupt_timing_cache_starts_empty(onnx_file):
    trt = FakeTRT()
    cache_path = T.timing_cache_path("tensorrt", "10.13.0", GPU)
    cache_path.parent.mkdir(parents=True, exist_ok=True)
    cache_path.write_bytes(b"garbage")
    real = trt.Builder

    class RefusingBuilder(real):
        def create_builder_config(self):
            config = super().create_builder_config()
            make = config.create_timing_cache

            def create(data):
                if data:
                    raise RuntimeError("invalid timing cache")
                return make(data)

            config.create_timing_cache = create
            return config

    trt.Builder = RefusingBuilder
    side = T.build_engine(onnx_file, T.make_profile("256x256", "1"), trt_module=trt, flavour="tensorrt", gpu=GPU)
    assert side["skipped"] is False and trt.calls["cache_in"] == b""
    assert side["timing_cache_bytes_in"] == 0  # the refused cache did not make this build a warm one
    assert cache_path.read_bytes() == b"timing-cache-1"  # replaced by the new build's cache


def test_rtx_and_trt11_strong_typing(onnx_file):
    rtx = FakeTRT(version="1.1.0", strongly_flag=False)
    side = T.build_engine(onnx_file, T.make_profile("256x256", "1"), trt_module=rtx, flavour="tensorrt-rtx", gpu=GPU)
    assert side["plan"]["path"] == "G.fp16.trt-rtx.plan" and side["strongly_typed"] == "implicit"
    assert rtx.calls["flags"] == 0
    trt11 = FakeTRT(version="11.1.0", strongly_flag=False)
    assert T.network_flags(trt11, "tensorrt") == (0, "implicit")
    with pytest.raises(BackendUnavailable, match="too old"):
        T.network_flags(FakeTRT(version="10.8.0"), "tensorrt")


def test_errors(onnx_file, monkeypatch):
    prof = T.make_profile("256x256", "1")
    with pytest.raises(CganError, match="no fast FP16"):
        T.build_engine(onnx_file, prof, trt_module=FakeTRT(), gpu={"name": "GTX 1080", "compute_capability": "6.1"})
    with pytest.raises(IntegrityError, match="--pad-mode slice"):
        T.build_engine(onnx_file, prof, trt_module=FakeTRT(parse_ok=False), gpu=GPU)
    assert not onnx_file.with_name("G.fp16.trt.plan").exists()
    monkeypatch.setitem(sys.modules, "tensorrt", None)  # import fails
    monkeypatch.setitem(sys.modules, "tensorrt_rtx", None)
    monkeypatch.setitem(sys.modules, "tensorrt_rtx_bindings", None)
    with pytest.raises(BackendUnavailable, match=re.escape(pip_extra("tensorrt"))):
        T.import_trt("auto")
    with pytest.raises(CganError, match="unknown --trt-flavour"):
        T.import_trt("onnx")


def test_export_with_fake_engine_and_triton(tmp_path):
    from _helpers_export import make_pair
    from cgan.export import export_pair

    trt = FakeTRT()
    pair = make_pair(tmp_path / "pair", gens=("G",))
    out = export_pair(pair, tmp_path / "out", engine=True, parity=False, shapes="64x64,128x128,256x256",
                      batch="1,2,3", triton=str(tmp_path / "tri"), extra={"trt_module": trt, "gpu": GPU})
    m = json.loads((out / "manifest.json").read_text())
    eng = [f for f in m["files"] if f["kind"] == "engine"]
    assert [e["path"] for e in eng] == ["G.fp16.trt.plan"] and eng[0]["sidecar"] == "G.fp16.trt.plan.json"
    cfg = (tmp_path / "tri" / "summer2winter_G_fp16_trt" / "config.pbtxt").read_text()
    assert 'platform: "tensorrt_plan"' in cfg and "max_batch_size: 3" in cfg
    assert (tmp_path / "tri" / "summer2winter_G_fp16_trt" / "1" / "model.plan").read_bytes() == b"PLAN\x01"
    export_pair(pair, tmp_path / "out", engine=True, parity=False, shapes="64x64,128x128,256x256",
                batch="1,2,3", extra={"trt_module": trt, "gpu": GPU})
    assert trt.calls["builds"] == 1  # deterministic ONNX -> same key -> engine reused


def test_a_failed_engine_build_leaves_the_previous_export_intact(tmp_path):
    """Engines are built in the staging folder: a build that fails (out of memory, Ctrl-C) after minutes must
    not cost the export that was there (its manifest used to be deleted before the build)."""
    from _helpers_export import make_pair
    from cgan.export import export_pair
    from cgan.runtime.backends.base import load_model

    trt = FakeTRT()
    pair = make_pair(tmp_path / "pair", gens=("G",))
    kw = dict(engine=True, parity=False, shapes="64x64,128x128,256x256", batch="1,2,3")
    out = export_pair(pair, tmp_path / "out", extra={"trt_module": trt, "gpu": GPU}, **kw)
    before = {f.name: f.read_bytes() for f in out.iterdir() if f.is_file()}
    broken = FakeTRT()
    broken.Builder.build_serialized_network = lambda self, network, config: None
    with pytest.raises(IntegrityError, match="failed to build"):
        export_pair(pair, out, opset=18, extra={"trt_module": broken, "gpu": {**GPU, "name": "Other GPU"}}, **kw)
    after = {f.name: f.read_bytes() for f in out.iterdir() if f.is_file()}
    assert after == before
    assert not list(out.glob(".export-staging-*"))
    assert load_model(out, "G") is not None


@pytest.mark.gpu
def test_real_engine_build(tmp_path):
    pytest.importorskip("tensorrt")
    from _helpers_export import make_pair
    from cgan.export import export_pair

    out = export_pair(make_pair(tmp_path / "pair", gens=("G",)), tmp_path / "out", engine=True,
                      shapes="64x64,128x128,256x256", batch="1,1,2", parity_sizes=((32, 32),))
    assert (out / "G.fp16.trt.plan").stat().st_size > 0


def test_rtx_build_refused_for_a_gpu_it_cannot_run_on():
    """TensorRT-RTX builds on an H100/H200 but refuses to run there: `--engine` without --trt-target must say so
    before building (it used to write an engine the runtime then rejected)."""
    trt = FakeTRT()
    trt.ComputeCapability = types.SimpleNamespace(SM75=1, SM80=2, SM86=3, SM89=4, SM120=5, SM121=6)
    trt.NetworkDefinitionCreationFlag = types.SimpleNamespace(STRONGLY_TYPED=5)
    hopper = {"name": "NVIDIA H200", "compute_capability": "9.0"}
    with pytest.raises(CganError, match=r"cannot run engines on NVIDIA H200 \(compute capability 9.0; it supports "
                                        r"SM75, SM80, SM86, SM89, SM120, SM121\).*--trt-target"):
        T.resolve_build("tensorrt-rtx", None, 3, None, trt_module=trt, gpu=hopper)
    ada = {"name": "NVIDIA GeForce RTX 4090", "compute_capability": "8.9"}
    assert T.resolve_build("tensorrt-rtx", None, 3, None, trt_module=trt, gpu=ada)[1] == "tensorrt-rtx"
    assert T.resolve_build("tensorrt", None, 3, None, trt_module=trt, gpu=hopper)[1] == "tensorrt"


def test_gpu_found_through_nvidia_smi_when_torch_has_no_cuda(monkeypatch, tmp_path):
    """cgan[cpu] (CPU-only torch) plus cgan[tensorrt] on a GPU machine: --engine must still find the GPU."""
    import os
    import stat

    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    smi = tmp_path / "nvidia-smi"
    smi.write_text('#!/bin/sh\necho "$@" > "$(dirname "$0")/args"\necho "NVIDIA H100 80GB HBM3, 9.0"\n')
    smi.chmod(smi.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "GPU-1234,0")
    assert T.gpu_info() == {"name": "NVIDIA H100 80GB HBM3", "compute_capability": "9.0"}
    assert (tmp_path / "args").read_text().split()[:2] == ["-i", "GPU-1234"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    with pytest.raises(BackendUnavailable, match="no CUDA GPU is visible"):
        T.gpu_info()


def test_rtx_local_build_targets_the_gpu_it_runs_on(onnx_file):
    """A TensorRT-RTX build without --trt-target is for this machine's GPU (ComputeCapability.CURRENT): the
    library's default set (8.6, 8.9, 12.0) leaves out a Turing GPU the engine was built on, and the sidecar
    records one GPU. TensorRT (not RTX) has no such setting and gets none."""
    set_to = []

    def fake(version):
        trt = FakeTRT(version=version, strongly_flag=False)
        trt.ComputeCapability = types.SimpleNamespace(CURRENT="current", SM75="sm75", SM89="sm89")
        real = trt.Builder.create_builder_config

        def config(self):
            c = real(self)
            c.num_compute_capabilities = 0
            c.set_compute_capability = lambda cc, i: set_to.append((c.num_compute_capabilities, cc, i))
            return c
        trt.Builder.create_builder_config = config
        return trt

    turing = {"name": "NVIDIA GeForce RTX 2080 Ti", "compute_capability": "7.5"}
    prof = T.make_profile("256x256", "1")
    older = fake("1.7.1")  # as built before: the library's default GPUs (no CURRENT set)
    del older.ComputeCapability.CURRENT
    assert T.build_engine(onnx_file, prof, trt_module=older, flavour="tensorrt-rtx", gpu=turing)["skipped"] is False
    assert set_to == []
    # that plan is not taken as up to date: it is built again, for this GPU
    side = T.build_engine(onnx_file, prof, trt_module=fake("1.7.1"), flavour="tensorrt-rtx", gpu=turing)
    assert side["skipped"] is False and set_to == [(1, "current", 0)]
    assert T.build_engine(onnx_file, prof, trt_module=fake("1.7.1"), flavour="tensorrt-rtx", gpu=turing)["skipped"]
    set_to.clear()
    T.build_engine(onnx_file, prof, trt_module=fake("1.7.1"), flavour="tensorrt-rtx", gpu=turing, target="8.9",
                   force=True)
    assert set_to == [(1, "sm89", 0)]  # ahead of time: the GPU named
    set_to.clear()
    trt = fake("10.13.0")
    trt.NetworkDefinitionCreationFlag = types.SimpleNamespace(STRONGLY_TYPED=5)
    T.build_engine(onnx_file, prof, trt_module=trt, flavour="tensorrt", gpu=turing, force=True)
    assert set_to == []
