"""cgan-bench findings of 2026-12-04 (second round): `--json pair.json` in the working folder made every export
under it refuse ("inside the pair folder") and the run exited 0 with its ONNX rows skipped; a run that measured
nothing exited 0 and appended a history line without figures; --json into the benchmark's own cache replaced the
cached pair's manifest; a corrupt --pair replaced the previous --json result before being found out."""
from __future__ import annotations

import json

import pytest

from cgan._cli import run
from cgan.benchmarks.cli import cli

from _helpers_runtime import make_pair

TINY = ["--device", "cpu", "--blocks", "1", "--ngf", "4", "--sizes", "32x32", "--precision", "fp32", "--batch", "1",
        "--warmup", "0", "--iters", "2", "-q"]


@pytest.fixture
def home(monkeypatch, tmp_path):
    monkeypatch.setenv("CGAN_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def test_a_result_named_pair_json_makes_no_pair_folder(home, tmp_path, monkeypatch, capsys):
    pytest.importorskip("onnxruntime")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pair.json").write_text(json.dumps({"complete": False, "rows": []}))  # a previous result
    assert run(cli, [*TINY, "--backends", "ort-cpu", "--no-baseline", "--json", "pair.json"]) == 0, \
        capsys.readouterr().err
    rows = json.loads((tmp_path / "pair.json").read_text())["rows"]
    assert [r["status"] for r in rows] == ["ok"], rows
    # a pair's own manifest, even a damaged one, still keeps exports out of its folder
    from cgan.export.api import _pair_folder_around

    assert _pair_folder_around(tmp_path / "x") is None
    (tmp_path / "pair.json").write_text('{"format": "cgan.pair", "files": ')  # cut short
    assert _pair_folder_around(tmp_path / "x") == tmp_path


def test_a_broken_export_makes_error_rows_and_fails_the_run(home, monkeypatch, capsys):
    pytest.importorskip("onnxruntime")
    from cgan.benchmarks import bench
    from cgan.errors import CganError

    def refuse(*args, **kwargs):
        raise CganError("--out X is inside the pair folder Y: choose a folder outside it")

    monkeypatch.setattr(bench, "_find_export_pair", lambda: refuse)
    assert run(cli, [*TINY, "--backends", "ort-cpu,torch-cpu", "--no-baseline"]) == 2
    out, err = capsys.readouterr()
    assert "1 row(s) failed" in err and "inside the pair folder" in out, (out, err)


def test_a_run_that_measures_nothing_fails_and_leaves_the_history(home, tmp_path, capsys):
    history = tmp_path / "h.jsonl"
    history.write_text("")
    result = tmp_path / "r.json"
    code = run(cli, [*TINY, "--backends", "ort-cuda,torch-cuda", "--no-baseline", "--json", str(result),
                     "--history", str(history)])
    err = capsys.readouterr().err.strip()
    assert code == 4 and err.startswith("error: nothing was measured: every row was skipped"), err
    assert f"--history {history} left as they were" in err and history.read_text() == ""
    rows = json.loads(result.read_text())["rows"]  # the reasons are kept
    assert rows and all(r["status"] == "skipped" and r["reason"] for r in rows)


def test_json_into_the_benchmarks_cache_is_refused(home, capsys):
    cached = home / "bench" / "random-b1-ngf4"
    cached.mkdir(parents=True)
    code = run(cli, [*TINY, "--backends", "torch-cpu", "--json", str(cached / "pair.json")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "is inside the benchmark's cache (--workdir)" in err, err
    assert not (cached / "pair.json").exists()


def test_a_corrupt_pair_leaves_the_previous_result(home, tmp_path, capsys):
    pair = make_pair(tmp_path / "pair", blocks=1, ngf=4)
    weights = pair / "G.safetensors"
    data = bytearray(weights.read_bytes())
    data[-3] ^= 0x55
    weights.write_bytes(bytes(data))
    previous = tmp_path / "prev.json"
    previous.write_text('{"old": "result"}')
    argv = ["--pair", str(pair), "--device", "cpu", "--sizes", "32x32", "--backends", "torch-cpu", "--json",
            str(previous), "-q"]
    assert run(cli, argv) == 3
    assert "sha256" in capsys.readouterr().err and previous.read_text() == '{"old": "result"}'


def test_an_odd_size_over_the_limit_is_said_over_the_limit():
    """--sizes 99999x99999 suggested 'try 100000x100000', itself refused for its size."""
    from cgan.benchmarks.bench import parse_size
    from cgan.errors import CganError

    with pytest.raises(CganError, match=r"over the 4096x4096 pixels a frame may have"):
        parse_size("99999x99999")
    with pytest.raises(CganError, match=r"\(try 4096x4096\)"):
        parse_size("4094x4094")


def test_two_runs_sharing_a_cache_make_its_export_once(tmp_path, monkeypatch):
    """Two cgan-bench runs with one --workdir: the second saw no manifest yet, removed the first's half-made
    export under it, and the first failed ('No such file or directory: .../G.fp32.onnx'). The cache's export is
    now made under its folder's lock: the second waits and takes the first's."""
    import threading
    import time

    from cgan.benchmarks import bench
    from cgan.benchmarks.bench import BenchConfig

    monkeypatch.setenv("CGAN_HOME", str(tmp_path / "home"))
    made: list[str] = []

    exporting = threading.Event()

    def slow_export(pair_folder, out, **opts):
        made.append(threading.current_thread().name)
        exporting.set()
        out.mkdir(parents=True, exist_ok=True)
        (out / "G.fp32.onnx").write_text("graph")
        time.sleep(0.6)
        assert (out / "G.fp32.onnx").is_file(), "removed while being made"
        (out / "manifest.json").write_text("{}")

    monkeypatch.setattr(bench, "_find_export_pair", lambda: slow_export)
    fake = type("P", (), {"files": {"G": {"sha256": "x"}}})()
    cfg = BenchConfig(workdir=str(tmp_path / "work"))
    results = {}

    def one(name):
        prepared = bench.Prepared(tmp_path / "pair", None, "G", None, name, {})
        bench._export(cfg, prepared, fake, tmp_path / "work", {"fp16": False})
        results[name] = prepared

    threads = [threading.Thread(target=one, args=(n,), name=n) for n in ("a", "b")]
    threads[0].start()
    assert exporting.wait(30)  # "a" holds the cache's lock and is making the export
    threads[1].start()
    for t in threads:
        t.join(30)
    assert made == ["a"]
    assert all(r.export_folder is not None and r.export_error is None for r in results.values())
    assert results["b"].info["export"]["cached"] is True


def test_results_beside_the_cache_in_the_workdir_are_fine(home, tmp_path, monkeypatch, capsys):
    """`--workdir .` with --json result.json in the same folder was refused once the cache's folders were
    protected: only the cache's own folders are."""
    monkeypatch.chdir(tmp_path)
    assert run(cli, [*TINY, "--backends", "torch-cpu", "--workdir", ".", "--json", "result.json"]) == 0, \
        capsys.readouterr().err
    assert json.loads((tmp_path / "result.json").read_text())["rows"]
