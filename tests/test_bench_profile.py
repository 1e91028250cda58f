"""cgan-bench profile: kernels grouped by what they do (the breakdown that guides the speed work)."""
from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from cgan._cli import run
from cgan.benchmarks.cli import cli
from cgan.benchmarks.profile import categorize, summarize
from cgan.errors import CganError


@pytest.mark.parametrize("name,cat", [
    # kernel names as torch.profiler reports them on an H100 (eager FP16 and torch.compile)
    ("sm90_xmma_fprop_implicit_gemm_f16f16_f16f32_f32_nhwckrsc_nhwc_tilesize128x128x64", "convolution"),
    ("void cudnn::engines_precompiled::nchwToNhwcKernel<__half, __half, float, false, true>", "layout / copies"),
    ("void at::native::(anonymous namespace)::reflection_pad2d_out_kernel<c10::Half>", "padding"),
    ("void at::native::batch_norm_collect_statistics_kernel<InvStd, c10::Half, float, float, int>", "instance norm"),
    ("void at::native::vectorized_elementwise_kernel<4, at::native::clamp_min_kernel_cuda>", "element-wise"),
    ("void at::native::unrolled_elementwise_kernel<at::native::direct_copy_kernel_cuda>", "layout / copies"),
    ("triton_red_fused__native_batch_norm_legit_functional_0", "norm (compiled)"),
    ("triton_poi_fused_relu_reflection_pad2d_3", "element-wise (compiled)"),
    ("triton_tem_fused_convolution_5", "fused (compiled)"),
    ("aten::mkldnn_convolution", "convolution"), ("aten::native_batch_norm", "instance norm"),
    ("aten::reflection_pad2d", "padding"), ("aten::empty", "other"),
    ("aten::slow_conv_transpose2d", "convolution"), ("aten::transpose", "layout / copies"),
])
def test_categories(name, cat):
    assert categorize(name) == cat


def _ev(key, device_type, self_device=0.0, self_cpu=0.0, count=10):
    return SimpleNamespace(key=key, device_type=device_type, self_device_time_total=self_device,
                           self_cpu_time_total=self_cpu, count=count)


def test_cuda_summary_counts_kernels_once():
    events = [_ev("aten::cudnn_convolution", "DeviceType.CPU", self_device=900.0, self_cpu=50.0),  # its kernels' time
              _ev("sm90_xmma_fprop_implicit_gemm_f16", "DeviceType.CUDA", self_device=600.0),
              _ev("void at::native::reflection_pad2d_out_kernel<c10::Half>", "DeviceType.CUDA", self_device=300.0),
              _ev("triton_red_fused__native_batch_norm_legit_0", "DeviceType.CUDA", self_device=100.0)]
    s = summarize(events, "cuda", iters=10)
    assert s["total_ms_per_call"] == pytest.approx(0.1)  # 1000 us over 10 calls, the CPU operator not counted
    cats = {c["category"]: c for c in s["categories"]}
    assert cats["convolution"]["share"] == pytest.approx(0.6) and cats["padding"]["ms_per_call"] == pytest.approx(0.03)
    assert sum(c["share"] for c in s["categories"]) == pytest.approx(1.0)
    assert s["top"][0]["name"].startswith("sm90_xmma")
    with pytest.raises(CganError, match="no kernel time"):
        summarize([_ev("aten::add", "DeviceType.CPU", self_device=5.0)], "cuda", iters=1)


def test_profile_command_on_cpu(tmp_path, capsys):
    out = tmp_path / "p.json"
    code = run(cli, ["profile", "--device", "cpu", "--size", "64x64", "--ngf", "4", "--blocks", "1", "--iters", "2",
                     "--warmup", "1", "--json", str(out)])
    assert code == 0, capsys.readouterr().err
    r = json.loads(out.read_text())
    assert r["format"] == "cgan.profile" and r["device"] == "cpu" and (r["height"], r["width"]) == (64, 64)
    assert r["total_ms_per_call"] > 0 and r["wall_ms_per_call"] > 0
    cats = {c["category"] for c in r["categories"]}
    assert {"convolution", "instance norm", "padding"} <= cats
    assert "convolution" in capsys.readouterr().out
    assert run(cli, ["profile", "--device", "cpu", "--compile-mode", "default"]) == 2


@pytest.mark.gpu
def test_profile_on_cuda_sees_kernels(tmp_path):
    from cgan.benchmarks.profile import run_profile

    from cgan.benchmarks.bench import random_pair

    pair = random_pair(tmp_path / "p", blocks=2, ngf=8)
    r = run_profile(str(pair), "cuda", 64, 96, "fp16", iters=3, warmup=2)
    assert r["measured"].startswith("device kernels") and r["total_ms_per_call"] > 0
    assert "convolution" in {c["category"] for c in r["categories"]}
