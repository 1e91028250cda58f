"""A video (end-to-end) row whose export cannot be made here (TensorRT without a GPU) ended as an error
("RuntimeError: export failed") and cgan-bench exited 2, while the same backend's other rows were skipped. It is
skipped too, with the reason."""
from __future__ import annotations

import json

from cgan._optional import pip_extra
from cgan._cli import run


def test_video_row_of_a_backend_that_cannot_export_here_is_skipped(tmp_path, capsys, monkeypatch):
    from cgan.benchmarks.cli import cli

    monkeypatch.setenv("CGAN_HOME", str(tmp_path / "home"))
    out = tmp_path / "r.json"
    code = run(cli, ["--blocks", "1", "--ngf", "4", "--backends", "tensorrt", "--sizes", "32x32", "--iters", "1",
                     "--e2e", "--e2e-size", "32x32", "--e2e-frames", "2", "--json", str(out)])
    assert code == 0, capsys.readouterr().err
    rows = {(r["backend"], r["batch"], r["precision"]): r for r in json.loads(out.read_text())["rows"]}
    video = [r for k, r in rows.items() if k[0] == "video:tensorrt"]
    assert len(video) == 1 and video[0]["status"] == "skipped" and video[0]["reason"]
    assert all(r["status"] == "skipped" for k, r in rows.items() if k[0] == "tensorrt")
    assert any(r["status"] == "ok" for k, r in rows.items() if k[0] == "baseline")


def test_an_export_missing_a_module_names_the_extra(tmp_path, capsys, monkeypatch):
    """With torch but no onnx ('cgan[runtime]' plus torch) the ort-cpu rows said 'export failed: No module named
    'onnx'', not what to install."""
    import sys

    from cgan.benchmarks.cli import cli

    monkeypatch.setenv("CGAN_HOME", str(tmp_path / "home"))
    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx fails as when it is not installed
    out = tmp_path / "r.json"
    code = run(cli, ["--blocks", "1", "--ngf", "4", "--backends", "ort-cpu", "--sizes", "32x32", "--iters", "1",
                     "--no-baseline", "--json", str(out)])
    assert code == 4, capsys.readouterr().err  # nothing was measured (it exited 0), the reasons are in --json
    rows = [r for r in json.loads(out.read_text())["rows"] if r["backend"] == "ort-cpu"]
    assert rows and all(r["status"] == "skipped" for r in rows)
    assert f"needs onnx, which is not installed here: {pip_extra('cpu')}" in rows[0]["reason"], rows[0]
