"""A video (end-to-end) row whose export cannot be made here (TensorRT without a GPU) ended as an error
("RuntimeError: export failed") and cgan-bench exited 2, while the same backend's other rows were skipped. It is
skipped too, with the reason."""
from __future__ import annotations

import json

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
