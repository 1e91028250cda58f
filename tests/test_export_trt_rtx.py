"""The exporter's engine path against the real TensorRT-RTX library, on a machine without a GPU.

TensorRT-RTX builds engines ahead of time for a compute capability named on the builder config, with no GPU
and no CUDA driver (`cgan-export --engine --trt-target 8.9`). So our ONNX graphs (FP32 instance norm inside
FP16, reflection padding, the uint8 pre/post graphs) are parsed, typed and built by the real library here,
not only by the fake `trt` module of test_export_trt.py. Skipped where TensorRT-RTX is not installed (the
`test` extra brings it on Linux x86-64).
"""
from __future__ import annotations

import importlib
import json
from pathlib import Path

import pytest

from _helpers_export import make_pair
from cgan._files import sha256_file
from cgan._cli import run
from cgan.errors import CganError
from cgan.export.api import export_pair
from cgan.export.cli import cli


def _trt_rtx():
    for name in ("tensorrt_rtx", "tensorrt_rtx_bindings"):
        try:
            return importlib.import_module(name)
        except ImportError:
            continue
    pytest.skip("TensorRT-RTX is not installed (pip install 'cgan[tensorrt-rtx]')")


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    trt = _trt_rtx()
    root = tmp_path_factory.mktemp("rtx")
    pair = make_pair(root / "pair")
    out = export_pair(pair, root / "export", with_prepost=True, engine=True, trt_flavour="tensorrt-rtx",
                      trt_target="8.9", shapes="32x32,64x64,128x128", batch="1,1,2")
    return trt, root, pair, out


def test_real_builds_for_every_fp16_graph(built):
    trt, _, _, out = built
    manifest = json.loads((out / "manifest.json").read_text())
    engines = [f for f in manifest["files"] if f["kind"] == "engine"]
    # G and F, each as NCHW float and as the uint8 BGR pre/post graph
    assert sorted((e["generator"], e["io"]) for e in engines) == [
        ("F", "bgr-hwc-uint8"), ("F", "nchw"), ("G", "bgr-hwc-uint8"), ("G", "nchw")]
    for e in engines:
        plan = out / e["path"]
        side = json.loads((out / e["sidecar"]).read_text())
        assert plan.stat().st_size > 100_000 and side["plan"]["sha256"] == sha256_file(plan) == e["sha256"]
        assert side["flavour"] == "tensorrt-rtx" and side["trt_version"] == trt.__version__
        assert side["gpu"] == {"name": "any GPU of compute capability 8.9 (built ahead of time)",
                               "compute_capability": "8.9", "ahead_of_time": True}
        assert side["profiles"][0]["max"] == ([2, 128, 128, 3] if e["io"] == "bgr-hwc-uint8" else [2, 3, 128, 128])
        assert side["build_seconds"] > 0 and side["timing_cache"] is None  # RTX ignores timing caches
        # what the plan computes travels with it (a plan copied out of its export said nothing of its model)
        pair_json = json.loads((out / "pair" / "pair.json").read_text())
        assert side["cgan"]["spec"] == pair_json["spec"] and side["cgan"]["generator"] == e["generator"]
        assert side["cgan"]["io"] == e["io"] and side["cgan"]["precision"] == "fp16"


def test_the_runtime_accepts_them_only_for_their_compute_capability(built):
    from cgan.runtime.backends.tensorrt import Environment, sidecar_problems

    trt, _, _, out = built
    side = json.loads((out / "G.fp16.trt-rtx.plan.json").read_text())
    ada = Environment("tensorrt-rtx", trt.__version__, "NVIDIA GeForce RTX 4090", "8.9")
    hopper = Environment("tensorrt-rtx", trt.__version__, "NVIDIA H200", "9.0")
    assert sidecar_problems(side, ada, {side["onnx_sha256"]}) == []
    assert any("8.9" in p for p in sidecar_problems(side, hopper, {side["onnx_sha256"]}))


def test_identical_rebuild_is_skipped(built):
    _, root, pair, out = built
    before = {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in out.glob("*.plan*")}
    assert len(before) == 8
    # --force re-exports the ONNX (byte-identical), whose engines then match their build keys: not rebuilt
    export_pair(pair, out, with_prepost=True, engine=True, trt_flavour="tensorrt-rtx", trt_target="8.9",
                shapes="32x32,64x64,128x128", batch="1,1,2", force=True)
    assert {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in out.glob("*.plan*")} == before


def test_targets_the_library_cannot_build_are_one_line_and_write_nothing(built, tmp_path, capsys):
    _, _, pair, good = built
    code = run(cli, [str(pair), "--out", str(tmp_path / "e"), "--engine", "--trt-target", "9.0", "--no-parity"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code != 0 and len(err) == 1 and err[0].startswith("error:") and "SM89" in err[0] and "9.0" in err[0]
    assert not (tmp_path / "e").exists() or not any((tmp_path / "e").iterdir())
    # refused before anything in an existing export is replaced (it used to lose its manifest)
    before = {p.name: p.read_bytes() for p in good.iterdir() if p.is_file()}
    for bad in (dict(trt_target="9.0"), dict(trt_target="ada"), dict(trt_target="8.9", trt_flavour="tensorrt"),
                dict(trt_target="8.9", workspace_gb=0)):
        with pytest.raises(CganError):
            export_pair(pair, good, engine=True, parity=False, force=True, with_prepost=True, **bad)
    assert {p.name: p.read_bytes() for p in good.iterdir() if p.is_file()} == before


@pytest.mark.parametrize("text,cc", [("8.9", (8, 9)), ("sm89", (8, 9)), ("SM_120", (12, 0)), ("12.0", (12, 0)),
                                     ("120", (12, 0)), ("89", (8, 9))])
def test_target_spellings(text, cc):
    from cgan.export.tensorrt import parse_target

    assert parse_target(text) == cc


@pytest.mark.parametrize("text", ["12", "ada", "8", "8.95", "sm", "1.2", "890"])
def test_bad_target_spellings(text):
    from cgan.export.tensorrt import parse_target

    with pytest.raises(CganError, match="bad --trt-target"):
        parse_target(text)


def test_another_target_rebuilds_and_the_runtime_knows_it_was_ahead_of_time(built, tmp_path):
    from cgan.runtime.backends.tensorrt import sidecar_fields

    _, _, pair, _ = built
    kw = dict(engine=True, trt_flavour="tensorrt-rtx", parity=False, shapes="32x32,64x64,128x128", batch="1,1,2")
    out = export_pair(pair, tmp_path / "e", trt_target="8.9", **kw)
    first = (out / "G.fp16.trt-rtx.plan").read_bytes()
    export_pair(pair, out, trt_target="12.0", **kw)
    side = json.loads((out / "G.fp16.trt-rtx.plan.json").read_text())
    assert side["gpu"]["compute_capability"] == "12.0" and (out / "G.fp16.trt-rtx.plan").read_bytes() != first
    fields = sidecar_fields(side)
    assert fields["ahead_of_time"] and fields["compute_capabilities"] == [(12, 0)]


def test_standard_generator_builds_with_the_default_profile(tmp_path):
    """The paper's ResNet-9 ngf-64 generator, default profile 1x256x256 … 4x1080x1920 (what `cgan-export
    --engine` builds): a 4 GB workspace cap used to make TensorRT-RTX fail this with OutOfMemory."""
    trt = _trt_rtx()
    from cgan.benchmarks.bench import random_pair

    pair = random_pair(tmp_path / "std", blocks=9, ngf=64)
    out = export_pair(pair, tmp_path / "export", engine=True, trt_flavour="tensorrt-rtx", trt_target="8.9",
                      parity=False)
    side = json.loads((out / "G.fp16.trt-rtx.plan.json").read_text())
    assert side["profiles"][0]["min"] == [1, 3, 256, 256] and side["profiles"][0]["max"] == [4, 3, 1080, 1920]
    assert side["workspace_gb"] is None and side["trt_version"] == trt.__version__
    assert (out / "G.fp16.trt-rtx.plan").stat().st_size > 20 * 2**20  # FP16 weights alone are 22.8 MB


def test_triton_repository_leaves_rtx_plans_out(built, tmp_path):
    """Triton's tensorrt_plan backend runs TensorRT, which cannot load TensorRT-RTX plans: only ONNX models."""
    _, _, pair, _ = built
    export_pair(pair, tmp_path / "e", engine=True, trt_flavour="tensorrt-rtx", trt_target="8.9", parity=False,
                shapes="32x32,64x64,128x128", batch="1,1,2", triton=str(tmp_path / "tri"))
    models = sorted(p.name for p in (tmp_path / "tri").iterdir())
    assert models == ["summer2winter_F_fp16", "summer2winter_F_fp32", "summer2winter_G_fp16", "summer2winter_G_fp32"]
    assert not list((tmp_path / "tri").rglob("*.plan"))


def test_the_runtime_backend_uses_only_api_the_real_library_has():
    """Executing an engine needs a GPU, but every name cgan/runtime/backends/tensorrt.py calls must exist in the
    real module (its tests run against a fake one that could drift)."""
    trt = _trt_rtx()
    need = {None: ["Logger", "Runtime", "TensorIOMode", "nptype"],
            "Logger": ["WARNING"], "TensorIOMode": ["INPUT", "OUTPUT"], "Runtime": ["deserialize_cuda_engine"],
            "ICudaEngine": ["create_execution_context", "get_tensor_name", "num_io_tensors", "get_tensor_mode",
                            "get_tensor_dtype", "num_optimization_profiles"],
            "IExecutionContext": ["set_optimization_profile_async", "set_input_shape", "get_tensor_shape",
                                  "set_tensor_address", "execute_async_v3"]}
    missing = [f"{cls or 'module'}.{a}" for cls, attrs in need.items() for a in attrs
               if not hasattr(trt if cls is None else getattr(trt, cls), a)]
    assert missing == []
    import numpy as np

    assert trt.nptype(trt.DataType.HALF) is np.float16 and trt.nptype(trt.DataType.UINT8) is np.uint8
    source = (Path(__file__).parents[1] / "cgan" / "runtime" / "backends" / "tensorrt.py").read_text()
    for cls, attrs in need.items():
        for a in attrs:
            assert a in source, f"{a} is no longer used: update this list"


@pytest.mark.parametrize("gpu,cc", [("NVIDIA GeForce RTX 4090", "8.9"), ("NVIDIA H200", "9.0")])
def test_runtime_backend_with_real_engines_as_far_as_no_gpu_allows(built, monkeypatch, gpu, cc):
    """The runtime's tensorrt-rtx backend on real ahead-of-time engines, with the GPU faked: on a cc-8.9 GPU it
    takes the uint8 pre/post engine and hands the real plan to the real library (which then needs a driver to
    deserialize it: the end of the road without a GPU); on an H200 it says why it cannot."""
    from cgan.errors import BackendUnavailable, IntegrityError
    from cgan.runtime.backends import cuda as cudahelp
    from cgan.runtime.backends import tensorrt as rt
    from cgan.runtime.backends.base import load_model

    real_available = rt.module_available
    monkeypatch.setattr(rt, "module_available", lambda m: True if m.startswith("cuda.") else real_available(m))
    monkeypatch.setattr(cudahelp, "gpu_count", lambda: 1)
    monkeypatch.setattr(cudahelp, "device_properties", lambda i=0: (gpu, cc))
    rt.TensorRTRTXBackend.environment.cache_clear()
    try:
        _, _, _, out = built
        model = load_model(str(out))
        ok, reason = rt.TensorRTRTXBackend.check(model, "fp16", "cuda")
        if cc == "8.9":
            assert (ok, reason) == (True, "")
            be = rt.TensorRTRTXBackend(model, "fp16", "cuda")
            with pytest.raises(IntegrityError, match="could not deserialize"):
                be.activate()
            assert be.record["io"] == "bgr-hwc-uint8" and be.record["path"] == "G.fp16.prepost.trt-rtx.plan"
        else:  # TensorRT-RTX does not run on an H200 at all: say so, not "rebuild it here"
            assert not ok and "does not run on NVIDIA H200 (compute capability 9.0" in reason
            assert "SM89" in reason and "ort-cuda" in reason and "rebuild" not in reason
            with pytest.raises(BackendUnavailable, match="does not run on NVIDIA H200"):
                rt.TensorRTRTXBackend(model, "fp16", "cuda")
    finally:
        rt.TensorRTRTXBackend.environment.cache_clear()


@pytest.mark.parametrize("variant", [{"pad_mode": "slice"}, {"fp16_io": True}], ids=["pad-slice", "fp16-io"])
def test_other_graph_forms_build_too(built, tmp_path, variant):
    """Reflection padding as Slice+Concat (for TensorRT versions that reject Pad(reflect)) and FP16 I/O graphs
    parse and build with the real library as well."""
    _, _, pair, _ = built
    out = export_pair(pair, tmp_path / "e", engine=True, trt_flavour="tensorrt-rtx", trt_target="8.9",
                      shapes="32x32,64x64,128x128", batch="1,1,2", **variant)
    side = json.loads((out / "G.fp16.trt-rtx.plan.json").read_text())
    assert (out / "G.fp16.trt-rtx.plan").stat().st_size > 100_000 and side["gpu"]["compute_capability"] == "8.9"
    manifest = json.loads((out / "manifest.json").read_text())
    onnx = next(f for f in manifest["files"] if f["kind"] == "onnx" and f["precision"] == "fp16")
    assert onnx["io_dtype"] == ("float16" if variant.get("fp16_io") else "float32")


def test_bench_engines_reports_each_real_build(tmp_path, capsys):
    """`cgan-bench engines`: one row per engine the exporter built (G and F, NCHW and pre/post), build time and
    plan size taken from the sidecars of real TensorRT-RTX builds, plus the environment; the scratch export is
    gone afterwards."""
    import tempfile

    from cgan.benchmarks.cli import cli as bench_cli

    trt = _trt_rtx()
    pair = make_pair(tmp_path / "pair")
    before = set(Path(tempfile.gettempdir()).glob("cgan-bench-engines-*"))
    code = run(bench_cli, ["engines", "--pair", str(pair), "--trt-target", "8.9", "--shapes", "32x32,64x64,64x64",
                           "--batch", "1,1,1", "--json", str(tmp_path / "e.json")])
    out = capsys.readouterr()
    assert code == 0, out.err
    result = json.loads((tmp_path / "e.json").read_text())
    assert result["format"] == "cgan.bench.engines" and result["env"]["date"] and "git_sha" in result["env"]
    rows = result["rows"]
    assert [(r["generator"], r["io"]) for r in rows] == [
        ("F", "bgr-hwc-uint8"), ("F", "nchw"), ("G", "bgr-hwc-uint8"), ("G", "nchw")]
    for r in rows:
        assert r["flavour"] == "tensorrt-rtx" and r["trt_version"] == trt.__version__
        assert r["compute_capability"] == "8.9" and r["ahead_of_time"] is True
        assert r["build_s"] > 0 and r["plan_bytes"] > 100_000 and r["onnx_bytes"] > 0
        assert r["timing_cache_warm"] is False  # RTX uses no timing cache
        assert r["profile"]["max"] == ([1, 64, 64, 3] if r["io"] == "bgr-hwc-uint8" else [1, 3, 64, 64])
    assert "G   nchw" in out.out and set(Path(tempfile.gettempdir()).glob("cgan-bench-engines-*")) == before
