"""Soak: 10,000 frames through one Translator on CPU with flat resident memory (the GPU version is
benchmarks/soak_gpu.py, run on a GPU machine)."""
from __future__ import annotations

import gc
import time

import numpy as np
import pytest

from _helpers_reliability import release_free_memory, rss_bytes
from _helpers_runtime import make_export, make_pair
from cgan.runtime import Translator

FRAMES = 10_000
WARMUP = 500


@pytest.fixture(scope="module")
def export(tmp_path_factory):
    root = tmp_path_factory.mktemp("rel_soak")
    return make_export(make_pair(root / "pair", blocks=1, ngf=4), root / "export")


@pytest.mark.timeout(300)  # a hang guard only (the run takes a few seconds); its speed is benchmarks' business
def test_soak_10000_frames_flat_memory(export):
    """10,000 frames (two shapes) through one Translator: resident memory stays flat. The time it takes is
    printed, not asserted: speed targets live in benchmarks (benchmarks/soak_gpu.py), and a hang is caught by
    the timeout."""
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (32, 32, 3), dtype=np.uint8) for _ in range(8)]
    odd = rng.integers(0, 256, (30, 34, 3), dtype=np.uint8)  # a second shape now and then (pad path, buffers)
    t0 = time.perf_counter()
    with Translator.load(str(export), backend="ort-cpu", threads=1) as t:
        for i in range(WARMUP):
            t.translate(frames[i % 8])
        t.translate(odd)
        gc.collect()
        base = rss_bytes()
        peak = base
        checksum = 0
        for i in range(FRAMES - WARMUP):
            out = t.translate(odd if i % 97 == 0 else frames[i % 8])
            checksum += int(out[0, 0, 0])
            if i % 500 == 0:
                peak = max(peak, rss_bytes())
        gc.collect()
        end = rss_bytes()
    seconds = time.perf_counter() - t0
    growth = (max(peak, end) - base) / base
    print(f"soak: {FRAMES} frames 32x32 ort-cpu in {seconds:.1f} s ({FRAMES / seconds:.0f} fps); "
          f"rss {base / 2**20:.1f} -> {end / 2**20:.1f} MiB (peak {peak / 2**20:.1f}), growth {growth:+.2%}")
    assert checksum > 0
    assert growth < 0.05, f"resident memory grew {growth:.1%} over {FRAMES - WARMUP} frames"


def test_soak_detector_sees_a_leak(export):
    """The RSS probe is sensitive enough: a 40 MiB leak over the same loop is seen as growth (the threshold
    leaves room for memory that earlier tests free meanwhile, which would hide part of the leak)."""
    leak = []
    with Translator.load(str(export), backend="ort-cpu", threads=1) as t:
        f = np.zeros((32, 32, 3), np.uint8)
        for _ in range(50):
            t.translate(f)
        gc.collect()
        release_free_memory()  # memory earlier tests freed would take the leak unseen (it failed in a sdist run)
        base = rss_bytes()
        for _ in range(400):
            t.translate(f)
            leak.append(np.ones(100 * 1024, np.uint8))  # 100 KiB per frame, touched
        grown = rss_bytes() - base
    assert grown > 20 * 2**20, grown


def test_soak_gpu_script_runs_on_cpu(export, tmp_path):
    """benchmarks/soak_gpu.py is meant for a GPU machine; here a tiny CPU run checks it works and its JSON."""
    import importlib.util
    import json
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "benchmarks" / "soak_gpu.py"
    spec = importlib.util.spec_from_file_location("soak_gpu", script)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    out = tmp_path / "soak.json"
    code = mod.main(["--pair", str(export), "--backend", "ort-cpu", "--frames", "120", "--warmup", "20",
                     "--every", "20", "--size", "48x32", "--out", str(out)])
    result = json.loads(out.read_text())
    assert code == 0 and result["flat"] is True
    assert result["frames"] == 120 and result["size"] == [48, 32] and len(result["samples"]) == 6
    assert result["memory"]["rss_bytes"]["measured"] and result["translator"]["backend"] == "ort-cpu"
    assert mod.main(["--frames", "10", "--warmup", "20", "--out", str(out)]) == 2
