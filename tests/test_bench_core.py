"""cgan-bench arithmetic and formats: speed of light, percentiles, speedups, accuracy, parsing, JSON schema."""
from __future__ import annotations

import copy
import math

import numpy as np
import pytest

from cgan.benchmarks import sol
from cgan.benchmarks.bench import (accuracy, fps_from, latency_stats, parse_backends, parse_batches, parse_size,
                                   parse_sizes, speedup, synthetic_frame, train_row)
from cgan.benchmarks.report import (ROW_KEYS, append_history, empty_row, format_table, read_history,
                                    schema_errors, validate)
from cgan.errors import CganError, IntegrityError
from cgan.spec import GeneratorSpec

STD = GeneratorSpec()  # 9 blocks, ngf 64


# ---- speed of light -------------------------------------------------------------------------------------
@pytest.mark.parametrize("h,w,gflop", [(256, 256, 99.1), (720, 1280, 1393.6), (1080, 1920, 3135.7)])
def test_frame_flops_of_the_standard_generator(h, w, gflop):
    assert round(sol.frame_flops(STD, h, w) / 1e9, 1) == gflop


def test_flops_scale_with_pixels_and_blocks():
    assert sol.frame_flops(STD, 512, 512) == 4 * sol.frame_flops(STD, 256, 256)
    assert sol.frame_flops(GeneratorSpec(blocks=6), 256, 256) < sol.frame_flops(STD, 256, 256)


def test_tflops_and_percent_of_peak():
    # 1393.6 GFLOP per 720p frame, batch 4 in 10 ms -> 557 TFLOP/s; on an H100 SXM (989.4) that is 56.3 %
    t = sol.achieved_tflops(STD, 720, 1280, 4, 0.010)
    assert t == pytest.approx(4 * 1393.6361472 / 0.010 / 1e3)
    assert sol.pct_of_peak(t, 989.4) == pytest.approx(100 * t / 989.4)
    assert sol.pct_of_peak(t, 989.4) == pytest.approx(56.34, abs=0.01)
    assert sol.pct_of_peak(t, None) is None and sol.pct_of_peak(None, 989.4) is None
    assert sol.achieved_tflops(STD, 256, 256, 1, 0) is None
    # speed-of-light latency: 99.1 GFLOP at 989.4 TFLOP/s = 0.1002 ms (720p: 1.409 ms)
    assert sol.sol_ms(STD, 256, 256, 1, 989.4) == pytest.approx(0.10016, abs=1e-4)
    assert sol.sol_ms(STD, 720, 1280, 1, 989.4) == pytest.approx(1.4086, abs=1e-3)
    assert sol.sol_ms(STD, 256, 256, 1, None) is None


@pytest.mark.parametrize("name,peak", [
    ("NVIDIA H100 80GB HBM3", 989.4), ("NVIDIA H100 PCIe", 756.0), ("NVIDIA H200", 989.4),
    ("NVIDIA H200 NVL", 835.5), ("NVIDIA GH200 480GB", 989.4),
    ("NVIDIA A100-SXM4-80GB", 312.0), ("NVIDIA L4", 121.0), ("NVIDIA L40S", 362.05),
    ("NVIDIA GeForce RTX 4090", 165.2), ("Some Future GPU", None), (None, None), ("", None)])
def test_peak_table(name, peak):
    assert sol.peak_fp16_tflops(name) == peak


# ---- statistics -----------------------------------------------------------------------------------------
def test_percentiles_on_known_samples():
    samples = list(range(1, 101))  # 1..100 ms
    rng = np.random.default_rng(0)
    shuffled = list(rng.permutation(samples))
    for s in (samples, shuffled):
        st = latency_stats(s)
        assert st["p50_ms"] == pytest.approx(50.5)
        assert st["p90_ms"] == pytest.approx(90.1)
        assert st["p99_ms"] == pytest.approx(99.01)
        assert st["max_ms"] == 100 and st["mean_ms"] == pytest.approx(50.5) and st["iters"] == 100
    one = latency_stats([7.0])
    assert one["p50_ms"] == one["p99_ms"] == one["max_ms"] == 7.0
    with pytest.raises(ValueError):
        latency_stats([])


def test_fps_and_speedup_math():
    assert fps_from(4, 20.0) == pytest.approx(200.0)  # 4 frames per 20 ms
    assert fps_from(1, 0) is None
    assert speedup(30.0, 10.0) == pytest.approx(3.0)
    assert speedup(5.0, 10.0) == pytest.approx(0.5)
    assert speedup(None, 10.0) is None and speedup(10.0, None) is None and speedup(10.0, 0) is None


def test_accuracy_against_float_reference():
    ref = [np.full((4, 4, 3), 100.0, np.float32), np.full((4, 4, 3), 50.0, np.float32)]
    same = [np.full((4, 4, 3), 100, np.uint8), np.full((4, 4, 3), 50, np.uint8)]
    assert accuracy(ref, same) == (0.0, None)
    off = [np.full((4, 4, 3), 101, np.uint8), np.full((4, 4, 3), 50, np.uint8)]
    err, psnr = accuracy(ref, off)
    assert err == 1.0
    assert psnr == pytest.approx(10 * math.log10(255 ** 2 / 0.5))  # MSE 1 on half the pixels
    with pytest.raises(CganError):
        accuracy(ref, [same[0][:2]] * 2)
    with pytest.raises(CganError):
        accuracy(ref, same[:1])


def test_synthetic_frame_is_smooth_natural_and_deterministic():
    a = synthetic_frame(96, 128, seed=0)
    assert a.shape == (96, 128, 3) and a.dtype == np.uint8
    assert np.array_equal(a, synthetic_frame(96, 128, seed=0))
    assert not np.array_equal(a, synthetic_frame(96, 128, seed=1))
    assert a.std() > 20  # a scene, not a flat colour
    neighbour = np.abs(np.diff(a.astype(np.int16), axis=1)).mean()
    noise = np.abs(np.diff(np.random.default_rng(0).integers(0, 256, a.shape).astype(np.int16), axis=1)).mean()
    assert neighbour < noise / 10  # smooth, unlike noise


# ---- parsing --------------------------------------------------------------------------------------------
def test_parse_sizes():
    assert parse_size("720p") == (720, 1280) and parse_size("1080p") == (1080, 1920)
    assert parse_size("480p") == (480, 856) and parse_size("256") == (256, 256)
    assert parse_size("480x852") == (480, 852) and parse_size(" 64X32 ") == (64, 32)
    assert parse_sizes("256x256,720p") == ((256, 256), (720, 1280))
    for bad in ("720", "abc", "32x", "33x32", "0x0", "-4x4", "1x1"):
        with pytest.raises(CganError, match="bad size"):
            parse_size(bad)
    with pytest.raises(CganError, match="try 480x856"):
        parse_size("480x854")
    with pytest.raises(CganError):
        parse_sizes(",")


def test_parse_backends_and_batches():
    assert parse_backends(["all"], "cpu") == ("ort-cpu", "torch-cpu")
    assert parse_backends(["all"], "cuda") == ("tensorrt", "tensorrt-rtx", "ort-cuda", "torch-cuda")
    assert parse_backends(["torch", "ort-cpu", "torch-cpu"], "cpu") == ("torch-cpu", "ort-cpu")
    assert parse_backends(["none"], "cpu") == ()
    with pytest.raises(CganError) as e:
        parse_backends(["ort-cpu", "onnx-magic"], "cpu")
    msg = str(e.value)
    assert "onnx-magic" in msg and "ort-cpu" in msg and "tensorrt" in msg and "\n" not in msg
    assert parse_batches("1,4") == (1, 4)
    for bad in ("0", "x", "", "1,-2"):
        with pytest.raises(CganError):
            parse_batches(bad)


# ---- schema, table, history -----------------------------------------------------------------------------
def _result(rows=None):
    row = empty_row("ort-cpu", "fp32", 1, 32, 32)
    row.update(p50_ms=1.0, p90_ms=1.2, p99_ms=1.3, max_ms=1.4, mean_ms=1.1, iters=3, fps=900.0, tflops=0.001,
               speedup_vs_baseline=2.0, max_abs_err=0.5, psnr_db=50.0, build_s=0.1, first_call_s=0.2)
    skipped = empty_row("tensorrt", "fp16", 1, 32, 32)
    skipped.update(status="skipped", reason="no GPU")
    env = {"date": "2026-01-01T00:00:00+00:00", "cgan": "0.1.0", "git_sha": "abc", "host_cpu": "cpu", "gpu": None,
           "driver": None, "cuda": None, "torch": "2", "onnxruntime": "1", "tensorrt": None}
    return {"format": "cgan.bench", "version": 1, "kind": "inference", "env": env, "config": {},
            "rows": rows if rows is not None else [row, skipped]}


def test_schema_accepts_a_valid_result_and_rejects_broken_ones():
    good = _result()
    assert schema_errors(good) == []
    validate(good)
    for mutate, needle in [
        (lambda r: r["rows"][0].pop("p50_ms"), "missing key 'p50_ms'"),
        (lambda r: r["rows"][0].update(fps="fast"), "fps"),
        (lambda r: r["rows"][0].update(psnr_db=float("inf")), "finite"),
        (lambda r: r["rows"][0].update(batch=0), "minimum"),
        (lambda r: r["rows"][0].update(batch=True), "batch"),
        (lambda r: r["rows"][0].update(status="great"), "status"),
        (lambda r: r["env"].pop("gpu"), "gpu"),
        (lambda r: r.update(format="other"), "format"),
    ]:
        bad = copy.deepcopy(good)
        mutate(bad)
        errs = schema_errors(bad)
        assert errs and any(needle in e for e in errs), (needle, errs)
        with pytest.raises(IntegrityError):
            validate(bad)
    assert set(ROW_KEYS) >= {"backend", "precision", "batch", "height", "width", "p50_ms", "p90_ms", "p99_ms",
                             "max_ms", "fps", "tflops", "pct_of_peak", "speedup_vs_baseline", "max_abs_err",
                             "psnr_db", "peak_mem_mb", "build_s"}


def test_table_shows_rows_and_reasons():
    text = format_table(_result()["rows"])
    lines = text.splitlines()
    assert lines[0].split()[:3] == ["backend", "prec", "batch"]
    assert "ort-cpu" in lines[2] and "900.0" in lines[2] and "2.00" in lines[2]
    assert "tensorrt fp16 b1 32x32: skipped: no GPU" in text


def test_history_appends_one_line_per_run(tmp_path):
    h = tmp_path / "sub" / "history.jsonl"
    append_history(h, _result())
    append_history(h, _result())
    runs = read_history(h)
    assert len(h.read_text().splitlines()) == 2 and len(runs) == 2
    assert runs[0]["rows"][0]["fps"] == 900.0 and runs[0]["git_sha"] == "abc"
    with open(h, "a") as f:
        f.write("not json\n")
    assert len(read_history(h)) == 2


def test_train_row_mapping():
    r = {"name": "bf16-channels-last", "precision": "bf16", "channels_last": True, "compile": False,
         "it_per_s": 2.0, "ms_per_it": 500.0, "speedup_vs_baseline": 3.1}
    row = train_row(r, batch=2, size=64)
    assert row["backend"] == "train:bf16-channels-last" and row["precision"] == "mixed"
    assert row["fps"] == 4.0 and row["p50_ms"] == 500.0 and row["speedup_vs_baseline"] == 3.1
    assert (row["height"], row["width"], row["batch"]) == (64, 64, 2)



def test_help_path_imports_no_torch():
    import subprocess
    import sys

    code = ("import sys, cgan.benchmarks.cli, cgan.benchmarks.bench, cgan.benchmarks.plot, cgan.benchmarks.e2e; "
            "assert 'torch' not in sys.modules, 'torch imported'; assert 'matplotlib' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_gpu_memory_falls_back_to_device_used_delta(monkeypatch):
    """In a container nvidia-smi lists host PIDs; then the probe reports device-wide growth since the build."""
    from cgan.benchmarks import runners

    monkeypatch.setattr(runners, "_nvidia_smi_process_mb", lambda: None)
    monkeypatch.setattr(runners, "_device_used_mb", lambda: 1500.0)
    probe = runners.MemoryProbe("cuda", torch_based=False, gpu_used_base=1200.0)
    probe.start()
    assert probe.stop() == (300.0, "device-used-delta")
    monkeypatch.setattr(runners, "_nvidia_smi_process_mb", lambda: 900.0)
    assert probe.stop() == (900.0, "nvidia-smi-process")
    assert runners.MemoryProbe("cuda", torch_based=False).stop() == (900.0, "nvidia-smi-process")


def test_clip_row_precision_follows_its_own_backend():
    """On a GPU machine with fp32,fp16 asked for, a CPU clip backend (ort-cpu) must run fp32: its fp16 is
    refused, so the 720p clip row used to be always 'skipped'."""
    from cgan.benchmarks.bench import e2e_precision_for

    assert e2e_precision_for("ort-cpu", ("fp32", "fp16")) == "fp32"
    assert e2e_precision_for("torch-cpu", ("fp32", "fp16")) == "fp32"
    assert e2e_precision_for("ort-cuda", ("fp32", "fp16")) == "fp16"
    assert e2e_precision_for("torch-cuda+compile+graph", ("fp32",)) == "fp32"


def test_a_broken_cuda_install_is_said_in_the_env_record(monkeypatch):
    """gpu_info() swallowed any exception from torch's CUDA queries: the report showed no GPU and no reason."""
    import torch

    from cgan.benchmarks.env import gpu_info

    def broken() -> bool:
        raise RuntimeError("CUDA driver initialization failed\nmore detail")

    monkeypatch.setattr(torch.cuda, "is_available", broken)
    info = gpu_info()
    assert info["gpu"] is None and info["cuda_error"] == "CUDA driver initialization failed", info
