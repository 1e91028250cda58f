"""cgan-bench findings of 2026-12-04: history lines did not say which model they measured, so the history chart
joined a 1-block ngf-8 run to a 9-block ngf-64 one as if it were a 46x speedup; an output path ending in '/' was
written as a file named like the folder; --e2e-backend/--e2e-size/--e2e-frames without --e2e, and --iters with
--seconds, were dropped without a word (and still recorded in the config); --plot wrote PNG bytes into p.pdf;
`cgan-bench train` suggested `--device auto`, which it refused."""
from __future__ import annotations

import json

import pytest

from cgan._cli import run
from cgan.benchmarks import bench as bench_mod
from cgan.benchmarks.cli import cli

TINY = ["--device", "cpu", "--blocks", "1", "--ngf", "4", "--sizes", "32x32", "--precision", "fp32", "--batch", "1",
        "--warmup", "0", "-q"]


def _work_started(*a, **k):
    raise AssertionError("the run started before its options were all checked")


@pytest.fixture
def no_work(monkeypatch, tmp_path):
    monkeypatch.setenv("CGAN_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(bench_mod, "run_bench", _work_started)
    monkeypatch.setattr(bench_mod, "prepare", _work_started)
    monkeypatch.setattr(bench_mod, "run_train", _work_started)


def _one_line(capsys, needle: str) -> None:
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and needle in err and "\n" not in err and "Traceback" not in err, err


def _row(backend: str, fps: float, h: int = 64, w: int = 64) -> dict:
    return dict(backend=backend, precision="fp32", batch=1, height=h, width=w, status="ok", fps=fps,
                p50_ms=1000 / fps)


def _result(blocks: int, ngf: int, fps: float, threads=None, note=None) -> dict:
    spec = {"arch": "resnet", "blocks": blocks, "ngf": ngf}
    return {"format": "cgan.bench", "version": 1, "kind": "inference", "env": {"host_cpu": "cpu x", "date": "d"},
            "config": {"spec": spec, "threads": threads, "device": "cpu", "note": note},
            "rows": [_row("ort-cpu", fps)]}


def test_history_lines_record_the_model_and_the_chart_joins_only_the_same_setup(tmp_path):
    from cgan.benchmarks.plot import history_series
    from cgan.benchmarks.report import append_history, read_history

    h = tmp_path / "h.jsonl"
    big, tiny = _result(9, 64, 13.0, note="standard"), _result(1, 8, 592.0, note="tiny model")
    append_history(h, big)
    append_history(h, tiny)
    append_history(h, _result(9, 64, 7.0, threads=1))  # the same model on one thread: not comparable either
    runs = read_history(h)
    assert [r["setup"] for r in runs] == [
        {"model": "resnet b9 ngf64", "threads": None, "device": "cpu", "note": "standard"},
        {"model": "resnet b1 ngf8", "threads": None, "device": "cpu", "note": "tiny model"},
        {"model": "resnet b9 ngf64", "threads": 1, "device": "cpu", "note": None}]
    _, shown, lines = history_series(_result(9, 64, 14.0), runs)
    assert lines == {"ort-cpu fp32": [(0, 13.0)]} and len(shown) == 1
    _, shown, lines = history_series(tiny, runs)
    assert lines == {"ort-cpu fp32": [(0, 592.0)]}
    # a line from before the setup was recorded cannot be told apart: left out, not joined to anything
    old = {k: v for k, v in json.loads(h.read_text().splitlines()[0]).items() if k != "setup"}
    assert history_series(big, [old])[2] == {}


def test_a_train_runs_setup_is_its_generator_and_threads():
    from cgan.benchmarks.report import setup_of

    result = {"kind": "train", "config": {"options": {"blocks": 2, "ngf": 8, "threads": 2, "device": "cpu"}}}
    assert setup_of(result) == {"model": "resnet b2 ngf8", "threads": 2, "device": "cpu", "note": None}


def test_the_plot_of_a_real_run_has_a_history_of_the_same_setup(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    monkeypatch.setenv("CGAN_HOME", str(tmp_path / "home"))
    h, png = tmp_path / "h.jsonl", tmp_path / "p.png"
    argv = [*TINY, "--backends", "ort-cpu", "--no-baseline", "--iters", "1", "--history", str(h), "--plot", str(png)]
    assert run(cli, argv) == 0
    (line,) = [json.loads(x) for x in h.read_text().splitlines()]
    assert line["setup"]["model"] == "resnet b1 ngf4" and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("option", ["--json", "--history", "--plot"])
def test_an_output_path_ending_in_a_slash_is_refused(option, tmp_path, no_work, capsys):
    target = tmp_path / "nd"
    assert run(cli, [*TINY, "--backends", "none", "--iters", "1", option, f"{target}/"]) == 2
    _one_line(capsys, f"{option} {target}/ names a folder: give a file name")
    assert not target.exists()


def test_plot_must_be_named_png(tmp_path, no_work, capsys):
    pytest.importorskip("matplotlib")
    assert run(cli, [*TINY, "--backends", "none", "--iters", "1", "--plot", str(tmp_path / "p.pdf")]) == 2
    _one_line(capsys, "--plot writes a PNG: give a file name ending in .png")


@pytest.mark.parametrize("argv,needle", [
    (["--e2e-backend", "ort-cpu"], "--e2e-backend is only used with --e2e (the end-to-end row): add --e2e"),
    (["--e2e-size", "64x64", "--e2e-frames", "3"], "--e2e-frames/--e2e-size are only used with --e2e"),
    (["--iters", "2", "--seconds", "0.2"], "--iters and --seconds both say how long each row is timed"),
])
def test_options_that_would_be_dropped_are_refused(argv, needle, no_work, capsys):
    assert run(cli, [*TINY, "--backends", "none", *argv]) == 2
    _one_line(capsys, needle)


def test_seconds_alone_and_e2e_options_with_e2e_are_still_taken(no_work):
    with pytest.raises(AssertionError, match="the run started"):  # got past every check to the work
        run(cli, [*TINY, "--backends", "none", "--seconds", "0.2", "--e2e", "--e2e-size", "32x32", "--e2e-frames",
                  "2", "--e2e-backend", "ort-cpu"])


def test_train_takes_the_device_its_messages_suggest(no_work):
    with pytest.raises(AssertionError, match="the run started"):
        run(cli, ["train", "--device", "auto", "--size", "32", "--iters", "1"])
