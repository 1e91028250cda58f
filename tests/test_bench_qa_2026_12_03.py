"""cgan-bench findings of 2026-12-03: a failure before the first row wiped the previous --json; a damaged history
line stopped --plot with a traceback after all the measuring; the main run's options before a sub-command were
dropped without a word; TensorRT in --backends without a GPU took the ONNX rows down with it; a corrupt export
was a 'skipped' row and exit 0; an empty --backends ran the baseline alone."""
from __future__ import annotations

import json

import pytest

from cgan._cli import run
from cgan.benchmarks import bench as bench_mod
from cgan.benchmarks.cli import cli

TINY = ["--blocks", "1", "--ngf", "4", "--sizes", "32x32", "--precision", "fp32", "--batch", "1", "--iters", "1",
        "--warmup", "0", "-q"]


def _work_started(*a, **k):
    raise AssertionError("the run started before its options were all checked")


def _one_line(capsys, needle: str) -> None:
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and needle in err and "\n" not in err and "Traceback" not in err, err


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


@pytest.mark.parametrize("argv,needle", [
    (["--direction", "bogus"], "unknown direction 'bogus' for this pair"),
    pytest.param(["--device", "cuda"], "--device cuda: torch has no CUDA device here",
                 marks=pytest.mark.skipif(_cuda(), reason="a CUDA device is here")),
    (["--workdir", "PREVIOUS/sub"], "cannot write to the benchmark's --workdir"),
    (["--backends", ",,"], "--backends is empty"),
    (["--backends", ""], "--backends is empty"),
])
def test_a_run_refused_before_its_work_leaves_the_previous_result(tmp_path, monkeypatch, capsys, argv, needle):
    monkeypatch.setenv("CGAN_HOME", str(tmp_path / "home"))
    previous = tmp_path / "r.json"
    previous.write_text('{"the previous": "result"}\n')
    monkeypatch.setattr(bench_mod, "run_bench", _work_started)
    monkeypatch.setattr(bench_mod, "prepare", _work_started)
    argv = [a.replace("PREVIOUS", str(previous)) for a in argv]
    assert run(cli, [*TINY, "--backends", "none", "--device", "cpu", *argv, "--json", str(previous)]) == 2
    _one_line(capsys, needle)
    assert previous.read_text() == '{"the previous": "result"}\n'


@pytest.mark.parametrize("sub", ["train", "profile", "engines"])
def test_main_options_before_a_sub_command_are_refused(tmp_path, capsys, sub):
    out = tmp_path / "r.json"
    assert run(cli, ["--json", str(out), "--sizes", "32x32", sub, "--help"]) == 2
    _one_line(capsys, f"--sizes, --json before `{sub}` belong to the main benchmark")
    assert not out.exists()


@pytest.mark.parametrize("damage", ['"rows": null', '"date": 20261203, "rows": []', '"rows": [{"precision": "fp32"}]',
                                    '"env": "x", "rows": []', '"rows": [{"backend": "b", "precision": "fp32", '
                                                              '"batch": "1", "fps": "fast"}]'])
def test_a_damaged_history_line_is_skipped_with_a_warning_and_the_plot_is_drawn(tmp_path, monkeypatch, caplog,
                                                                                damage):
    pytest.importorskip("matplotlib")
    from cgan.benchmarks.report import read_history

    monkeypatch.setenv("CGAN_HOME", str(tmp_path / "home"))
    h = tmp_path / "h.jsonl"
    h.write_text('{"format": "cgan.bench", "kind": "inference", "host_cpu": "x", ' + damage + "}\n")
    assert read_history(h) == []
    with caplog.at_level("WARNING"):
        code = run(cli, [*TINY, "--backends", "none", "--device", "cpu", "--workdir", str(tmp_path / "w"),
                         "--history", str(h), "--plot", str(tmp_path / "p.png")])
    assert code == 0
    assert "line 1 is not a valid history line" in caplog.text and "it is skipped" in caplog.text
    assert (tmp_path / "p.png").stat().st_size > 0
    assert len(h.read_text().splitlines()) == 2 and len(read_history(h)) == 1  # this run's line, readable


def test_tensorrt_without_engines_here_leaves_the_onnx_rows_running(tmp_path, monkeypatch, capsys):
    """The run made one export, engines included; without a GPU it failed and ort-cpu was 'skipped: export
    failed: no CUDA GPU is visible ... or export without --engine' (a cgan-export option)."""
    monkeypatch.setenv("CGAN_HOME", str(tmp_path / "home"))
    real = bench_mod._find_export_pair()
    calls = []

    def export_pair(pair, out, **opts):
        calls.append(opts.get("engine"))
        if opts.get("engine"):
            from cgan.export.tensorrt import gpu_info

            monkeypatch.setattr("cgan.export.tensorrt._nvidia_smi_gpu", lambda: None)
            gpu_info()  # (CPU torch, no nvidia-smi: the exporter's own "no CUDA GPU" error)
        return real(pair, out, **opts)

    monkeypatch.setattr(bench_mod, "_find_export_pair", lambda: export_pair)
    out = tmp_path / "r.json"
    code = run(cli, [*TINY, "--backends", "ort-cpu,tensorrt", "--device", "cpu", "--no-baseline",
                     "--workdir", str(tmp_path / "w"), "--json", str(out)])
    assert code == 0, capsys.readouterr().err
    rows = {r["backend"]: r for r in json.loads(out.read_text())["rows"]}
    assert rows["ort-cpu"]["status"] == "ok", rows["ort-cpu"]
    assert rows["tensorrt"]["status"] == "skipped"
    assert rows["tensorrt"]["reason"].startswith("no TensorRT engine: no CUDA GPU is visible")
    assert "leave the tensorrt backends out of --backends" in rows["tensorrt"]["reason"]
    assert "--engine" not in rows["tensorrt"]["reason"]
    assert calls == [True, None]  # (the second export: without the engine options)


def test_a_corrupt_export_is_an_error_row_and_fails_the_run(tmp_path, monkeypatch, capsys):
    """docs/benchmarks.md: 'skipped' is for what cannot run here; a model file that does not match its manifest
    is a failure, which CI must see (a non-zero exit), not a skip and exit 0."""
    from cgan.benchmarks.bench import BenchConfig, prepare

    monkeypatch.setenv("CGAN_HOME", str(tmp_path / "home"))
    prepared = prepare(BenchConfig(blocks=1, ngf=4, backends=("ort-cpu",), precisions=("fp32",),
                                   workdir=str(tmp_path / "w")), ("ort-cpu",))
    onnx = prepared.export_folder / "G.fp32.onnx"
    data = bytearray(onnx.read_bytes())
    data[200:300] = bytes(100)
    onnx.write_bytes(bytes(data))
    out = tmp_path / "r.json"
    code = run(cli, [*TINY[4:], "--pair", str(prepared.export_folder), "--backends", "ort-cpu", "--device", "cpu",
                     "--no-baseline", "--json", str(out), "--e2e", "--e2e-size", "32x32", "--e2e-frames", "2"])
    assert code != 0
    rows = json.loads(out.read_text())["rows"]
    assert [r["status"] for r in rows] == ["error", "error"], rows
    assert all("does not match the sha256" in r["reason"] for r in rows)
    assert "row(s) failed" in capsys.readouterr().err


def test_engines_without_a_gpu_names_this_commands_options(tmp_path, monkeypatch, capsys):
    """`cgan-bench engines` said 'or export without --engine', an option of cgan-export, not of this command."""
    import cgan.export.api as api
    from cgan.export.tensorrt import gpu_info

    monkeypatch.setenv("CGAN_HOME", str(tmp_path / "home"))
    monkeypatch.setattr("cgan.export.tensorrt._nvidia_smi_gpu", lambda: None)  # (CPU torch: no GPU)

    def no_gpu(*a, **k):
        gpu_info()

    monkeypatch.setattr(api, "export_pair", no_gpu)
    assert run(cli, ["engines", "--blocks", "1", "--ngf", "4"]) == 4
    err = capsys.readouterr().err
    assert "--trt-flavour tensorrt-rtx --trt-target" in err and "--engine" not in err, err


def test_eval_refuses_a_decompression_bomb_undecoded(tmp_path, monkeypatch):
    """cgan-eval decoded test photos with OpenCV's own limit (about a gigapixel), not the 134 megapixels
    cgan-train and cgan-video hold to: a 33-byte PNG declaring 20000x20000 was decoded (1.2 GB)."""
    import struct
    import zlib

    import cv2

    from cgan.benchmarks.quality import load_rgb
    from cgan.errors import CganError

    ihdr = struct.pack(">IIBBBBB", 20000, 20000, 8, 2, 0, 0, 0)
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + ihdr
                     + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr)))

    def decoded(*a, **k):
        raise AssertionError("the bomb was handed to the decoder")

    monkeypatch.setattr(cv2, "imdecode", decoded)
    monkeypatch.setattr(cv2, "imread", decoded)
    with pytest.raises(CganError, match="cannot read image .*: it declares 20000x20000 pixels, over the 134 megapixel limit"):
        load_rgb(bomb)
