"""cgan-bench backend variants (NAME+option+option) and presets: parsing, schema, table, plot series (no torch)."""
from __future__ import annotations

import copy
import time

import pytest

from cgan.benchmarks.bench import default_e2e_backend, parse_backends, parse_e2e_backend, time_calls
from cgan.benchmarks.plot import latency_series
from cgan.benchmarks.report import ROW_KEYS, empty_row, format_table, schema_errors
from cgan.benchmarks.runners import BACKENDS, backend_device, variant
from cgan.benchmarks.variants import PRESETS, TOKENS, parse_variant
from cgan.errors import CganError


@pytest.mark.parametrize("text, label, base, opts", [
    ("torch-cuda", "torch-cuda", "torch-cuda", {}),
    ("torch-cuda+graph", "torch-cuda+graph", "torch-cuda", {"cuda_graph": True}),
    ("torch-cuda+compile", "torch-cuda+compile", "torch-cuda", {"compile": True}),
    ("Torch-CUDA+Graph+Compile", "torch-cuda+compile+graph", "torch-cuda", {"compile": True, "cuda_graph": True}),
    ("torch-cuda+fastcompile+graph", "torch-cuda+fastcompile+graph", "torch-cuda",
     {"compile": True, "compile_mode": "default", "cuda_graph": True}),
    ("torch-cuda+cl", "torch-cuda+cl", "torch-cuda", {"memory_format": "channels_last"}),
    ("torch-cuda+nchw+compile", "torch-cuda+compile+nchw", "torch-cuda", {"compile": True, "memory_format": "nchw"}),
    ("torch-cpu+nchw", "torch-cpu+nchw", "torch-cpu", {"memory_format": "nchw"}),
    ("torch-cpu+compile", "torch-cpu+compile", "torch-cpu", {"compile": True}),
    ("ort-cuda+nograph", "ort-cuda+nograph", "ort-cuda", {"cuda_graph": False}),
    ("tensorrt+nograph", "tensorrt+nograph", "tensorrt", {"cuda_graph": False}),
    ("tensorrt-rtx+nograph", "tensorrt-rtx+nograph", "tensorrt-rtx", {"cuda_graph": False}),
    ("torch+graph", "torch-cuda+graph", "torch-cuda", {"cuda_graph": True}),
    (" ort-cpu ", "ort-cpu", "ort-cpu", {}),
])
def test_valid_variants(text, label, base, opts):
    v = parse_variant(text, BACKENDS, "cuda")
    assert (v.label, v.base, v.opts) == (label, base, opts)
    assert variant(label) == v  # labels parse back to themselves (rows, e2e, runners use them)


@pytest.mark.parametrize("text, words", [
    ("torch-cuda+turbo", ["unknown option 'turbo'", "torch-cuda takes +compile"]),
    ("torch-cuda+", ["empty option"]),
    ("torch-cuda++graph", ["empty option"]),
    ("ort-cuda+graph", ["'graph' does not apply to ort-cuda", "ort-cuda takes +nograph"]),
    ("torch-cuda+nograph", ["'nograph' does not apply to torch-cuda"]),
    ("torch-cpu+graph", ["'graph' does not apply to torch-cpu"]),
    ("ort-cpu+compile", ["does not apply to ort-cpu", "ort-cpu takes no options"]),
    ("tensorrt+compile", ["does not apply to tensorrt"]),
    ("torch-cuda+cl+nchw", ["'cl' and 'nchw' both set memory_format"]),
    ("torch-cuda+compile+fastcompile", ["both set compile"]),
    ("warp+graph", ["unknown backend 'warp'", "torch-cuda"]),
])
def test_invalid_variants_are_one_line(text, words):
    with pytest.raises(CganError) as e:
        parse_backends([text], "cuda")
    msg = str(e.value)
    assert "\n" not in msg
    for w in words:
        assert w in msg, msg


def test_every_token_names_known_backends():
    for name, tok in TOKENS.items():
        assert tok.opts and set(tok.backends) <= set(BACKENDS), name


def test_presets_and_groups():
    ladder = ("torch-cuda", "torch-cuda+graph", "torch-cuda+compile", "torch-cuda+compile+graph")
    assert parse_backends(["torch-steps"], "cuda") == ladder == PRESETS["torch-steps"]["cuda"]
    assert parse_backends(["torch-steps"], "cpu") == ("torch-cpu", "torch-cpu+cl", "torch-cpu+compile")
    # presets mix with names and variants; repeats (also spelled differently) are dropped, order kept
    assert parse_backends(["ort-cuda", "TORCH-STEPS", "torch-cuda+graph", "torch+cl+graph"], "cuda") == (
        "ort-cuda", *ladder, "torch-cuda+graph+cl")
    assert parse_backends(["all", "torch-cuda+compile"], "cuda") == (
        "tensorrt", "tensorrt-rtx", "ort-cuda", "torch-cuda", "torch-cuda+compile")
    for bad in ("all+graph", "none+cl", "torch-steps+cl"):
        with pytest.raises(CganError, match="options go on one backend name"):
            parse_backends([bad], "cuda")
    with pytest.raises(CganError) as e:
        parse_backends(["warp-drive"], "cuda")
    assert "torch-steps" in str(e.value) and "torch-cuda" in str(e.value) and "graph" in str(e.value)


def test_e2e_backend_and_device_of_variants():
    assert parse_e2e_backend("torch+compile+graph", "cuda") == "torch-cuda+compile+graph"
    for bad in ("torch-steps", "all", "none"):
        with pytest.raises(CganError, match="--e2e-backend takes one backend"):
            parse_e2e_backend(bad, "cuda")
    assert default_e2e_backend(("torch-cpu+cl", "torch-cuda+graph")) == "torch-cuda+graph"
    assert default_e2e_backend(("torch-cpu+cl",)) == "torch-cpu+cl"
    assert backend_device("torch-cpu+compile") == "cpu" and backend_device("torch-cuda+compile+graph") == "cuda"
    assert backend_device("ort-cuda+nograph") == "cuda"


def _row(backend, p50=2.0, **kw):
    r = empty_row(backend, "fp16", 1, 64, 64)
    r.update(p50_ms=p50, p90_ms=p50, p99_ms=p50, max_ms=p50, mean_ms=p50, iters=3, fps=1000 / p50, **kw)
    return r


def _result(rows):
    env = {"date": "2026-01-01T00:00:00+00:00", "cgan": "0.1.0", "git_sha": "abc", "host_cpu": "cpu", "gpu": "H200",
           "driver": None, "cuda": None, "torch": "2", "onnxruntime": "1", "tensorrt": None}
    return {"format": "cgan.bench", "version": 1, "kind": "inference", "env": env, "config": {}, "rows": rows}


def test_schema_takes_variant_rows_and_checks_them():
    opts = {"compile": True, "compile_mode": "max-autotune-no-cudagraphs", "cuda_graph": True,
            "memory_format": "channels_last"}
    good = _result([_row("torch-cuda+compile+graph", options=opts, first_call_s=57.0, warmup_s=0.1),
                    _row("video:torch-cuda+compile+graph"), _row("train:fp32+channels_last"), _row("baseline")])
    assert schema_errors(good) == []
    assert {"options", "warmup_s", "first_call_s", "build_s"} <= set(ROW_KEYS)
    old = copy.deepcopy(good)  # results written before these keys existed still validate
    for r in old["rows"]:
        del r["options"], r["warmup_s"]
    assert schema_errors(old) == []
    for mutate, needle in [
        (lambda r: r.update(backend="torch cuda"), "does not match"),
        (lambda r: r.update(backend=""), "does not match"),
        (lambda r: r["options"].update(memory_format="nhwc"), "'nhwc' is not one of"),
        (lambda r: r["options"].update(cuda_graph="yes"), "expected boolean"),
        (lambda r: r.update(options="compile"), "expected object/null"),
        (lambda r: r.update(warmup_s="1 s"), "expected number/null"),
    ]:
        bad = copy.deepcopy(good)
        mutate(bad["rows"][0])
        errs = schema_errors(bad)
        assert any(needle in e for e in errs), (needle, errs)


def test_table_and_plot_series_show_every_variant():
    rows = [_row("baseline", 50.0), _row("torch-cuda", 15.0), _row("torch-cuda+graph", 12.0),
            _row("torch-cuda+compile", 5.0, first_call_s=57.25), _row("torch-cuda+compile+graph", 4.5)]
    text = format_table(rows)
    header, _, *body = text.splitlines()
    assert "1st s" in header
    assert [line.split()[0] for line in body] == [r["backend"] for r in rows]
    assert "57.25" in body[3]
    series = latency_series(_result(rows))
    assert set(series) == {f"{r['backend']} fp16 b1" for r in rows}
    assert series["torch-cuda+compile fp16 b1"] == [(64 * 64 / 1e6, 5.0)]


def test_warmup_time_is_reported_not_timed():
    calls = []

    def runner(frames):
        calls.append(len(calls))
        if len(calls) <= 3:
            time.sleep(0.2)  # the warm-up calls are the slow ones (a compile, a build)

    info = {}
    samples = time_calls(runner, [], warmup=3, iters=4, info=info)
    assert len(samples) == 4 and len(calls) == 7 and info["warmup_s"] >= 0.6
    assert max(samples) < 200  # ms: none of the slow calls is among the timed ones


def test_ort_cuda_nhwc_reaches_the_cuda_providers_options():
    """`ort-cuda+nhwc` sets prefer_nhwc, which the ort-cuda backend passes to the CUDA provider (the layout the
    GPU bench compares); without it the option is left to onnxruntime's default."""
    import types

    from cgan.runtime.backends.ort import OrtCudaBackend

    v = parse_variant("ort-cuda+nhwc", BACKENDS, "cuda")
    assert v.opts == {"prefer_nhwc": True} and "prefer_nhwc" in OrtCudaBackend.options
    for opts, want in (({"prefer_nhwc": True}, "1"), ({}, None)):
        fake = types.SimpleNamespace(opts=opts, cuda_graph=True, provider=OrtCudaBackend.provider)
        [(name, given)] = OrtCudaBackend._providers(fake)
        assert name == "CUDAExecutionProvider" and given.get("prefer_nhwc") == want
        assert given["cudnn_conv_algo_search"] == "EXHAUSTIVE" and given["enable_cuda_graph"] == "1"
    with pytest.raises(CganError, match="'nhwc' does not apply to torch-cuda"):
        parse_variant("torch-cuda+nhwc", BACKENDS, "cuda")


def test_the_help_lists_each_option_with_the_backends_that_take_it():
    """The --backends help was written by hand and fell behind (+graph listed for tensorrt-rtx, which refuses it;
    no +nhwc): it is made from TOKENS now."""
    from click.testing import CliRunner

    from cgan.benchmarks.cli import cli

    # click wraps long help lines at spaces and after hyphens ("ort-\ncuda"): join both back
    text = " ".join(CliRunner().invoke(cli, ["--help"]).output.split()).replace("- ", "-")
    for name, tok in TOKENS.items():
        assert f"+{name}" in text
        for base in tok.backends:
            parse_variant(f"{base}+{name}", BACKENDS, "cuda")  # every pair the help offers is accepted
    assert "+graph (torch-cuda)" in text and "+nhwc (ort-cuda)" in text
