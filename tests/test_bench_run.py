"""cgan-bench end to end on CPU with a tiny generator: rows, baseline, speedups, JSON/history/plot, CLI errors.

The plumbing is tested against a stand-in runtime/exporter (so it does not depend on their state); the last
tests run the real cgan.runtime + cgan.export and skip only while those are not importable.
"""
from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from cgan._cli import run
from cgan.benchmarks import bench as bench_mod
from cgan.benchmarks.bench import PRECISIONS, BenchConfig, parse_choices, run_bench
from cgan.benchmarks.cli import cli
from cgan.benchmarks.report import read_history, schema_errors
from cgan.errors import CganError

TINY = dict(blocks=1, ngf=4)
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


class FakeTranslator:
    """Stands in for cgan.runtime.Translator: eager torch, rounding to uint8 like a real backend would."""

    loads: list[dict] = []

    def __init__(self, net, precision):
        self.net, self.precision = net, precision

    @classmethod
    def load(cls, source, direction=None, backend="auto", precision=None, device=None, **opts):
        from cgan.trainer.weights import load_generator

        cls.loads.append(dict(source=source, direction=direction, backend=backend, precision=precision, device=device,
                              **opts))
        if precision == "fp16":
            raise CganError("fp16 needs a GPU for this backend")
        folder = Path(source)
        if (folder / "manifest.json").is_file():
            folder = folder / "pair"
        return cls(load_generator(folder, direction or "G"), precision)

    def __enter__(self):
        return self

    def __exit__(self, *a):
        pass

    def translate_batch(self, frames):
        import torch

        x = torch.from_numpy(np.stack([f[..., ::-1] for f in frames]).copy()).permute(0, 3, 1, 2).float() / 127.5 - 1
        with torch.no_grad():
            y = self.net(x)
        y = ((y + 1) * 127.5).round().clamp(0, 255).byte().permute(0, 2, 3, 1).numpy()[..., ::-1]
        return [np.ascontiguousarray(a) for a in y]


def fake_export_pair(source, out, **opts):
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    shutil.copytree(source, out / "pair", dirs_exist_ok=True)
    (out / "manifest.json").write_text(json.dumps({"format": "cgan.export", "version": 1, "options": opts}))
    return out


@pytest.fixture
def fake_runtime(monkeypatch):
    import cgan.runtime as rt

    FakeTranslator.loads = []
    monkeypatch.setattr(rt, "Translator", FakeTranslator, raising=False)
    monkeypatch.setattr(rt, "available_backends",
                        lambda source=None: {"ort-cpu": (True, None), "torch": (True, None),
                                             "tensorrt": (False, "tensorrt is not installed")}, raising=False)
    monkeypatch.setattr(bench_mod, "_find_export_pair", lambda: fake_export_pair)
    return FakeTranslator


def _cfg(tmp_path, **kw):
    base = dict(**TINY, backends=("ort-cpu", "torch-cpu"), sizes=((32, 32),), precisions=("fp32",), batches=(1,),
                warmup=1, iters=3, device="cpu", threads=1, workdir=str(tmp_path / "work"))
    base.update(kw)
    return BenchConfig(**base)


def test_rows_baseline_speedup_and_accuracy(tmp_path, fake_runtime):
    seen = []
    result = run_bench(_cfg(tmp_path, sizes=((32, 32), (32, 48)), batches=(1, 2), precisions=("fp32", "fp16")),
                       on_row=seen.append)
    assert schema_errors(result) == []
    rows = result["rows"]
    assert len(seen) == len(rows) == 2 * 2 + 2 * 2 * 2 * 2  # baseline: sizes×batches; 2 backends × 2 prec
    base = {(r["height"], r["width"], r["batch"]): r for r in rows if r["backend"] == "baseline"}
    assert len(base) == 4 and all(r["status"] == "ok" and r["speedup_vs_baseline"] == 1.0 for r in base.values())
    for r in base.values():  # official tensor2im truncates: at most one level below the float reference
        assert r["max_abs_err"] <= 1.0 and r["psnr_db"] > 40
    ok = [r for r in rows if r["backend"] != "baseline" and r["precision"] == "fp32"]
    assert len(ok) == 8 and all(r["status"] == "ok" for r in ok)
    for r in ok:
        b = base[(r["height"], r["width"], r["batch"])]
        assert r["speedup_vs_baseline"] == pytest.approx(r["fps"] / b["fps"])
        assert r["fps"] == pytest.approx(r["batch"] / (r["mean_ms"] / 1e3))
        assert r["p50_ms"] <= r["p90_ms"] <= r["p99_ms"] <= r["max_ms"] and r["iters"] == 3
        assert r["max_abs_err"] <= 0.5 + 1e-3 and r["psnr_db"] > 45  # rounding only
        assert r["tflops"] > 0 and r["pct_of_peak"] is None  # CPU: no GPU peak
        assert r["build_s"] is not None and r["first_call_s"] is not None
        assert r["peak_mem_source"] in ("rss-peak-delta", None)
    # fp16 cannot run here: skipped with the backend's reason, the run goes on
    skipped = [r for r in rows if r["precision"] == "fp16"]
    assert skipped and all(r["status"] == "skipped" and "GPU" in r["reason"] for r in skipped)
    # one build per backend × precision, the export folder for ORT, direction G, device per backend
    by_backend = {(d["backend"], d["precision"]): d for d in fake_runtime.loads}
    assert by_backend[("torch", "fp32")]["device"] == "cpu" and by_backend[("ort-cpu", "fp32")]["direction"] == "G"
    assert len(fake_runtime.loads) == 4
    assert (Path(result["config"]["export"]["folder"]) / "manifest.json").is_file()
    assert result["config"]["spec"]["blocks"] == 1 and result["env"]["cgan"]
    # a pair's run records its own architecture (spec), not the random generator's unused options
    paired = _cfg(tmp_path, sizes=((32, 32),), batches=(1,), precisions=("fp32",), source="summer2winter")
    assert paired.public()["ngf"] is None and paired.public()["blocks"] is None


def test_unavailable_backend_is_a_skipped_row(tmp_path, fake_runtime, monkeypatch):
    monkeypatch.setattr(bench_mod, "runtime_availability",
                        lambda name, source: (name != "ort-cpu", "onnxruntime is not installed"))
    result = run_bench(_cfg(tmp_path, iters=2))
    st = {r["backend"]: (r["status"], r["reason"]) for r in result["rows"]}
    assert st["ort-cpu"] == ("skipped", "onnxruntime is not installed")
    assert st["torch-cpu"] == ("ok", None) and st["baseline"] == ("ok", None)


def test_seconds_mode_and_cached_pair(tmp_path, fake_runtime):
    cfg = _cfg(tmp_path, backends=("torch-cpu",), seconds=0.05, iters=1, threads=1)
    r1 = run_bench(cfg)
    assert fake_runtime.loads[0]["threads"] == 1
    assert all(r["iters"] >= 2 for r in r1["rows"])
    pair_json = Path(r1["config"]["pair_folder"]) / "pair.json"
    mtime = pair_json.stat().st_mtime_ns
    run_bench(cfg)  # the random pair is cached
    assert pair_json.stat().st_mtime_ns == mtime


def test_e2e_row_through_the_video_pipeline(tmp_path, fake_runtime):
    pytest.importorskip("cgan.runtime.video")
    result = run_bench(_cfg(tmp_path, backends=("ort-cpu",), e2e=True, e2e_size=(32, 48), e2e_frames=6, iters=2))
    row = result["rows"][-1]
    assert row["backend"] == "video:ort-cpu", row
    assert row["status"] == "ok", row["reason"]
    assert row["iters"] == 6 and row["fps"] > 0
    assert set(row["stages"]) >= {"decode_fps", "translate_fps", "encode_fps"}
    assert row["stages"]["codec"] in ("h264", "mp4v")  # the default codec here: what encode_fps measured
    assert schema_errors(result) == []


def test_variants_are_row_sets_with_their_options(tmp_path, fake_runtime):
    result = run_bench(_cfg(tmp_path, backends=("torch-cpu", "torch-cpu+cl", "torch+compile"), e2e=True,
                            e2e_backend="torch-cpu+nchw", e2e_size=(32, 48), e2e_frames=4, iters=2))
    assert schema_errors(result) == []
    assert result["config"]["backends"] == ["torch-cpu", "torch-cpu+cl", "torch-cpu+compile"]
    assert result["config"]["backend_options"]["torch-cpu+compile"] == {"compile": True}
    labels = [r["backend"] for r in result["rows"]]
    assert labels == ["baseline", "torch-cpu", "torch-cpu+cl", "torch-cpu+compile", "video:torch-cpu+nchw"]
    assert all(r["status"] == "ok" for r in result["rows"]), result["rows"]
    loads = [{k: v for k, v in d.items() if k not in ("source", "direction")} for d in fake_runtime.loads]
    assert loads == [  # the options reach Translator.load, on the runtime's own backend name
        dict(backend="torch", precision="fp32", device="cpu", threads=1),
        dict(backend="torch", precision="fp32", device="cpu", threads=1, memory_format="channels_last"),
        dict(backend="torch", precision="fp32", device="cpu", threads=1, compile=True),
        dict(backend="torch", precision="fp32", device="cpu", threads=1, memory_format="nchw"),
    ]
    rows = {r["backend"]: r for r in result["rows"]}
    assert rows["torch-cpu"]["options"] is None
    assert rows["torch-cpu+cl"]["options"] == {"memory_format": "channels_last"}
    assert rows["video:torch-cpu+nchw"]["options"] == {"memory_format": "nchw"}
    assert rows["video:torch-cpu+nchw"]["first_call_s"] is not None


def test_lazy_first_call_is_build_time_not_latency(tmp_path, fake_runtime, monkeypatch):
    """torch.compile compiles (and CUDA graphs are captured) on the first call at each shape: that time goes to
    first_call_s, never into the latencies or the warm-up. The stand-in sleeps 0.3 s on its first call at each
    shape, so that call is the row's slowest by 0.3 s, whatever the machine's speed: each timed call and the
    warm-up are compared with it, not with a fixed number of milliseconds."""
    import cgan.runtime as rt

    class CompilesOnFirstCall(FakeTranslator):
        def translate_batch(self, frames):
            shape = (len(frames), *frames[0].shape)
            if shape not in self.__dict__.setdefault("seen", set()):
                self.seen.add(shape)
                import time

                time.sleep(0.3)
            return super().translate_batch(frames)

    monkeypatch.setattr(rt, "Translator", CompilesOnFirstCall)
    result = run_bench(_cfg(tmp_path, backends=("torch-cpu+compile",), sizes=((32, 32), (32, 48)), iters=3))
    rows = [r for r in result["rows"] if r["backend"] == "torch-cpu+compile"]
    assert len(rows) == 2
    for r in rows:
        assert r["status"] == "ok" and r["first_call_s"] >= 0.3, r
        # a 0.3 s compile counted as a latency or as warm-up would make that the slowest; here the first call
        # is slower than every timed call and than the whole warm-up (warmup=1: one plain call)
        assert r["max_ms"] / 1e3 < r["first_call_s"] and r["warmup_s"] < r["first_call_s"], r


def test_every_row_checkpoints_a_valid_partial_result(tmp_path, fake_runtime):
    snaps = []
    result = run_bench(_cfg(tmp_path, backends=("torch-cpu", "torch-cpu+cl"), sizes=((32, 32), (32, 48)), iters=2),
                       checkpoint=lambda partial: snaps.append(copy.deepcopy(partial)))
    assert result["complete"] is True and schema_errors(result) == []
    assert [len(s["rows"]) for s in snaps] == list(range(0, len(result["rows"]) + 1))  # the first before any row
    for s in snaps:
        assert s["complete"] is False and schema_errors(s) == []
    assert [r["backend"] for r in snaps[-1]["rows"]] == [r["backend"] for r in result["rows"]]


def test_budget_skips_the_rows_that_would_start_after_it(tmp_path, fake_runtime, monkeypatch):
    """A started row finishes; later rows (and the video row) are skipped with the reason; the run exits 0."""
    clock = [0.0]
    monkeypatch.setattr(bench_mod, "_clock", lambda: clock[0])

    def on_row(row):  # every row "takes" 4 s of the 7 s budget: torch-cpu 32x32 0-4 s, 32x48 4-8 s (started in
        clock[0] += 4.0  # time, so measured); at 8 s torch-cpu+cl is not even built; the video row is skipped too

    result = run_bench(_cfg(tmp_path, backends=("torch-cpu", "torch-cpu+cl"), sizes=((32, 32), (32, 48)),
                            baseline=False, budget_s=7.0, e2e=True, e2e_size=(32, 48), e2e_frames=3), on_row=on_row)
    assert schema_errors(result) == []
    got = [(r["backend"], r["width"], r["status"]) for r in result["rows"]]
    assert got == [("torch-cpu", 32, "ok"), ("torch-cpu", 48, "ok"), ("torch-cpu+cl", 32, "skipped"),
                   ("torch-cpu+cl", 48, "skipped"), ("video:torch-cpu", 48, "skipped")]
    assert all("--budget 7 s was spent" in r["reason"] for r in result["rows"] if r["status"] == "skipped")
    assert len(fake_runtime.loads) == 1  # the skipped row set was never built
    with pytest.raises(CganError, match="--budget must be > 0"):
        _cfg(tmp_path, budget_s=0)


def test_cli_rewrites_json_after_every_row(tmp_path, fake_runtime, monkeypatch):
    from cgan.benchmarks import report

    writes = []
    real = report.write_result
    monkeypatch.setattr(report, "write_result", lambda path, result: (writes.append(
        (result["complete"], len(result["rows"]))), real(path, result))[1])
    out = tmp_path / "r.json"
    argv = ["--blocks", "1", "--ngf", "4", "--backends", "torch-cpu,torch-cpu+cl", "--sizes", "32x32", "--precision",
            "fp32", "--batch", "1", "--iters", "2", "--warmup", "0", "--device", "cpu", "-q", "--budget", "600",
            "--workdir", str(tmp_path / "w"), "--json", str(out)]
    assert run(cli, argv) == 0
    assert writes == [(False, 0), (False, 1), (False, 2), (False, 3), (True, 3)]
    data = json.loads(out.read_text())
    assert data["complete"] is True and data["config"]["budget_s"] == 600 and schema_errors(data) == []


def test_cli_writes_json_history_and_plot(tmp_path, fake_runtime, capsys):
    out = tmp_path / "res"
    argv = ["--blocks", "1", "--ngf", "4", "--backends", "ort-cpu,torch-cpu", "--sizes", "32x32", "--precision",
            "fp32", "--batch", "1", "--iters", "3", "--warmup", "1", "--device", "cpu", "--threads", "1", "-q",
            "--workdir", str(tmp_path / "w"), "--json", str(out / "r.json"), "--history", str(out / "h.jsonl"),
            "--plot", str(out / "p.png")]
    assert run(cli, argv) == 0
    assert run(cli, argv[:-2]) == 0  # again, without the plot: one more history line
    data = json.loads((out / "r.json").read_text())
    assert schema_errors(data) == []
    assert [r["backend"] for r in data["rows"]] == ["baseline", "ort-cpu", "torch-cpu"]
    assert len(read_history(out / "h.jsonl")) == 2
    assert (out / "p.png").read_bytes()[:8] == PNG_MAGIC
    text = capsys.readouterr().out
    assert "baseline" in text and "torch-cpu" in text and "speedup" in text


def test_a_run_stopped_before_its_first_row_does_not_leave_the_last_runs_file_complete(tmp_path, fake_runtime,
                                                                                         monkeypatch):
    """Ctrl-C while the pair was exported (before any row) left the previous run's JSON, other sizes and date,
    still marked complete."""
    out = tmp_path / "r.json"
    argv = ["--blocks", "1", "--ngf", "4", "--backends", "torch-cpu", "--sizes", "32x32", "--precision", "fp32",
            "--iters", "1", "--warmup", "0", "--device", "cpu", "-q", "--workdir", str(tmp_path / "w"),
            "--json", str(out)]
    assert run(cli, argv) == 0 and json.loads(out.read_text())["complete"] is True

    def stopped(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(bench_mod, "prepare", stopped)
    assert run(cli, argv[:7] + ["32x48"] + argv[8:]) == 130
    data = json.loads(out.read_text())
    assert data["complete"] is False and data["rows"] == [] and data["config"]["sizes"] == [[32, 48]]
    assert schema_errors(data) == []


def test_timed_calls_run_without_the_memory_sampler(tmp_path, fake_runtime, monkeypatch):
    """On the CPU a thread woke every 5 ms during the timed calls to read /proc: 5-8 % on 2 cores."""
    import threading

    seen = []
    real = bench_mod.time_calls

    def timed(*a, **k):
        seen.append([t.name for t in threading.enumerate() if t.name == "cgan-bench-rss"])
        return real(*a, **k)

    monkeypatch.setattr(bench_mod, "time_calls", timed)
    result = run_bench(_cfg(tmp_path, backends=("torch-cpu",)))
    assert seen and all(names == [] for names in seen)
    assert all(r["peak_mem_source"] == "rss-peak-delta" for r in result["rows"] if r["status"] == "ok")


def test_both_precisions_repeated_sizes_and_nothing_to_measure(tmp_path, fake_runtime, capsys):
    """--help says "fp32, fp16 or both" and 'both' was refused; --sizes 32x32,32x32 measured every row twice;
    --backends none --no-baseline wrote an empty complete result, exit 0."""
    from cgan.benchmarks.bench import parse_sizes

    assert parse_choices(["both"], PRECISIONS, "precision") == ("fp32", "fp16")
    assert parse_sizes("32x32,32x32") == ((32, 32),)
    argv = ["--blocks", "1", "--ngf", "4", "--backends", "none", "--no-baseline", "--device", "cpu",
            "--workdir", str(tmp_path / "w"), "--json", str(tmp_path / "r.json")]
    assert run(cli, argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: nothing to measure") and "\n" not in err and not (tmp_path / "r.json").exists()


def test_fps_under_one_keeps_two_digits_in_the_table():
    from cgan.benchmarks.report import _fmt

    assert [_fmt(v, ".1f") for v in (0.157, 0.165, 0.212, 0.04, 1.5)] == ["0.16", "0.17", "0.21", "0.04", "1.5"]
    assert [_fmt(v, ".2f") for v in (0.05, 0.157, 3.1)] == ["0.05", "0.16", "3.10"]


@pytest.mark.parametrize("argv,needle", [
    (["--backends", "ort-cpu,warp-drive"], "unknown backend 'warp-drive'"),
    (["--sizes", "720p,31x32"], "bad size '31x32'"),
    (["--sizes", "big"], "bad size 'big'"),
    (["--precision", "int4"], "unknown precision 'int4'"),
    (["--batch", "0"], "bad --batch"),
    (["--pair", "no-such-pair"], "unknown pair 'no-such-pair'"),
    (["--backends", "torch-cpu+turbo"], "unknown option 'turbo'"),
    (["--backends", "ort-cpu+graph"], "'graph' does not apply to ort-cpu"),
    (["--backends", "none", "--e2e-backend", "torch-steps"], "--e2e-backend takes one backend"),
    (["--pair", "summer2winter", "--ngf", "8", "--blocks", "2"], "--blocks/--ngf shape the random generator"),
    (["--pair", "summer2winter", "--ngf", "8"], "--ngf shapes the random generator"),
    (["profile", "--pair", "summer2winter", "--blocks", "2"], "--blocks shapes the random generator"),
    (["engines", "--pair", "summer2winter", "--ngf", "8"], "--ngf shapes the random generator"),
])
def test_cli_bad_input_is_one_line(argv, needle, capsys, tmp_path):
    assert run(cli, argv + ([] if argv[0] in ("profile", "engines") else ["--workdir", str(tmp_path)])) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and needle in err and "\n" not in err and "Traceback" not in err


def test_unknown_backend_lists_valid_ones(capsys):
    assert run(cli, ["--backends", "foo"]) == 2
    err = capsys.readouterr().err
    for name in ("tensorrt", "tensorrt-rtx", "ort-cuda", "ort-cpu", "torch-cuda", "torch-cpu"):
        assert name in err


# ---- with the real runtime and exporter --------------------------------------------------------------------
def _real_backends() -> list[str]:
    """torch-cpu needs cgan.runtime; ort-cpu needs cgan.export's export_pair as well."""
    try:
        from cgan.runtime import Translator  # noqa: F401
    except ImportError as e:
        pytest.skip(f"cgan.runtime not ready here: {e}")
    try:
        bench_mod._find_export_pair()
    except (ImportError, CganError):
        return ["torch-cpu"]
    return ["ort-cpu", "torch-cpu"]


def test_real_runtime_cpu_backends(tmp_path):
    backends = _real_backends()
    out = tmp_path / "res"
    argv = ["--blocks", "1", "--ngf", "4", "--backends", ",".join(backends), "--sizes", "32x32", "--precision",
            "fp32", "--batch", "1", "--iters", "3", "--warmup", "1", "--device", "cpu", "--threads", "1", "-q",
            "--workdir", str(tmp_path / "w"), "--json", str(out / "r.json"), "--history", str(out / "h.jsonl")]
    assert run(cli, argv) == 0
    data = json.loads((out / "r.json").read_text())
    assert schema_errors(data) == []
    rows = {r["backend"]: r for r in data["rows"]}
    assert set(rows) == {"baseline", *backends}
    for name in rows:
        assert rows[name]["status"] == "ok", rows[name]["reason"]
        assert rows[name]["max_abs_err"] <= 2.0 and rows[name]["fps"] > 0
        assert rows[name]["speedup_vs_baseline"] == pytest.approx(rows[name]["fps"] / rows["baseline"]["fps"])
    assert len(read_history(out / "h.jsonl")) == 1


def test_real_runtime_torch_variants(tmp_path):
    """A real cgan-bench run with torch-cpu variants: labelled row sets, the backend's effective options."""
    _real_backends()
    out = tmp_path / "r.json"
    argv = ["--blocks", "1", "--ngf", "4", "--backends", "torch-cpu,torch-cpu+cl,torch-cpu+nchw", "--sizes",
            "32x32,32x48", "--precision", "fp32", "--batch", "1", "--iters", "2", "--warmup", "1", "--device", "cpu",
            "--threads", "1", "-q", "--workdir", str(tmp_path / "w"), "--json", str(out), "--e2e", "--e2e-backend",
            "torch+cl", "--e2e-size", "32x48", "--e2e-frames", "3"]
    assert run(cli, argv) == 0
    data = json.loads(out.read_text())
    assert schema_errors(data) == []
    labels = [r["backend"] for r in data["rows"]]
    assert labels == ["baseline"] * 2 + ["torch-cpu"] * 2 + ["torch-cpu+cl"] * 2 + ["torch-cpu+nchw"] * 2 + [
        "video:torch-cpu+cl"]
    want = {"torch-cpu": "nchw", "torch-cpu+cl": "channels_last", "torch-cpu+nchw": "nchw",
            "video:torch-cpu+cl": "channels_last"}
    for r in data["rows"][2:]:
        assert r["status"] == "ok", r["reason"]
        assert r["options"]["memory_format"] == want[r["backend"]] and r["options"]["compile"] is False
        assert r["first_call_s"] is not None and r["build_s"] is not None
        if not r["backend"].startswith("video:"):
            assert r["max_abs_err"] <= 2.0 and r["warmup_s"] is not None


# ---- cgan-bench train ---------------------------------------------------------------------------------------
def test_train_subcommand_runs_the_real_trainer(tmp_path, capsys):
    out = tmp_path / "t.json"
    assert run(cli, ["train", "--iters", "2", "--warmup", "1", "--batch", "1", "--size", "32", "--ngf", "4",
                     "--blocks", "1", "--device", "cpu", "--threads", "1", "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    assert schema_errors(data) == [] and data["kind"] == "train"
    assert data["config"]["options"]["steps"] == 2
    rows = data["rows"]
    assert [r["backend"] for r in rows] == ["train:official-eager-fp32", "train:fp32+channels_last"]
    assert rows[0]["speedup_vs_baseline"] == 1.0
    for r in rows:
        assert r["status"] == "ok" and r["fps"] > 0 and r["p50_ms"] == pytest.approx(1000 / r["fps"], rel=0.01)
    assert "train:" in capsys.readouterr().out



# ---- on a GPU -----------------------------------------------------------------------------------------------
@pytest.mark.gpu
def test_gpu_baseline_and_torch_cuda(tmp_path):
    import torch

    from cgan.benchmarks.sol import peak_fp16_tflops

    _real_backends()
    result = run_bench(BenchConfig(**TINY, backends=("torch-cuda",), sizes=((64, 64),), precisions=("fp32", "fp16"),
                                   batches=(1, 2), warmup=2, iters=5, device="cuda", workdir=str(tmp_path)))
    assert schema_errors(result) == []
    assert result["env"]["gpu"] == torch.cuda.get_device_name()
    for r in result["rows"]:
        assert r["status"] == "ok", r
        assert r["peak_mem_source"] == "torch-max-allocated" and r["peak_mem_mb"] > 0
        if peak_fp16_tflops(result["env"]["gpu"]):
            assert r["pct_of_peak"] is not None
        assert r["max_abs_err"] <= (2.0 if r["precision"] == "fp32" else 8.0)


@pytest.mark.gpu
def test_gpu_torch_variants(tmp_path):
    """The torch ladder's steps on a GPU (fastcompile: torch.compile without autotuning keeps this short)."""
    _real_backends()
    result = run_bench(BenchConfig(**TINY, backends=("torch-cuda", "torch-cuda+graph", "torch-cuda+cl",
                                                     "torch-cuda+fastcompile+graph"),
                                   sizes=((64, 64), (64, 96)), precisions=("fp16",), batches=(1,), warmup=2, iters=5,
                                   device="cuda", workdir=str(tmp_path), e2e=True, e2e_size=(64, 96), e2e_frames=6,
                                   e2e_backend="torch-cuda+fastcompile+graph"))
    assert schema_errors(result) == []
    want = {"torch-cuda": (False, False, "nchw"), "torch-cuda+graph": (False, True, "nchw"),
            "torch-cuda+cl": (False, False, "channels_last"),
            "torch-cuda+fastcompile+graph": (True, True, "channels_last"),
            "video:torch-cuda+fastcompile+graph": (True, True, "channels_last")}
    for r in result["rows"]:
        assert r["status"] == "ok", r
        if r["backend"] != "baseline":
            o = r["options"]
            assert (o["compile"], o["cuda_graph"], o["memory_format"]) == want[r["backend"]], r["backend"]
        if r["backend"] in want and not r["backend"].startswith("video:"):
            assert r["max_abs_err"] <= 8.0 and r["first_call_s"] > 0


def test_a_backend_that_goes_wrong_after_warm_up_is_an_error_row(tmp_path, fake_runtime, monkeypatch):
    """Output checked on the path that is timed too (a replayed CUDA graph differs from the first call): a backend
    whose later calls return wrong frames is an 'error' row, not 'ok' and not 'skipped'; and a failed row leaves
    no memory-sampling thread behind."""
    import threading

    calls = {"n": 0}
    good = FakeTranslator.translate_batch

    def goes_wrong(self, frames):
        calls["n"] += 1
        out = good(self, frames)
        return out if calls["n"] == 1 else [np.zeros((8, 8, 3), np.uint8) for _ in frames]

    monkeypatch.setattr(FakeTranslator, "translate_batch", goes_wrong)
    result = run_bench(_cfg(tmp_path, backends=("ort-cpu",), baseline=False))
    (row,) = [r for r in result["rows"] if r["backend"] == "ort-cpu"]
    assert row["status"] == "error" and "shape" in row["reason"], row
    assert not [t for t in threading.enumerate() if t.name == "cgan-bench-rss"]


def test_accuracy_reports_the_worse_of_first_and_steady_calls(tmp_path, fake_runtime, monkeypatch):
    calls = {"n": 0}
    good = FakeTranslator.translate_batch

    def drifts(self, frames):
        calls["n"] += 1
        out = good(self, frames)
        return out if calls["n"] == 1 else [np.clip(o.astype(int) + 9, 0, 255).astype(np.uint8) for o in out]

    monkeypatch.setattr(FakeTranslator, "translate_batch", drifts)
    result = run_bench(_cfg(tmp_path, backends=("ort-cpu",), baseline=False))
    (row,) = [r for r in result["rows"] if r["backend"] == "ort-cpu"]
    assert row["status"] == "ok" and row["max_abs_err"] >= 8.5 and row["psnr_db"] < 30, row


def test_history_chart_compares_like_with_like():
    """The history lines hold only runs of the same kind on the same machine, ok rows at the reference shape;
    a train run gets its own history (it used to get none, and inference charts picked up train/video rows)."""
    from cgan.benchmarks.plot import history_series

    def row(backend, fps, h=256, w=256, batch=1, status="ok"):
        return dict(backend=backend, precision="fp32", batch=batch, height=h, width=w, status=status, fps=fps,
                    p50_ms=1000 / fps if fps else None)

    cur = {"kind": "inference", "env": {"gpu": "H100"}, "rows": [row("ort-cuda", 50), row("ort-cuda", 20, 720, 1280)]}
    history = [
        {"kind": "inference", "gpu": "H100", "rows": [row("ort-cuda", 18, 720, 1280), row("ort-cuda", 0, 720, 1280)]},
        {"kind": "inference", "gpu": "L4", "rows": [row("ort-cuda", 5, 720, 1280)]},            # another machine
        {"kind": "train", "gpu": "H100", "rows": [row("train:bf16", 9, 720, 1280)]},        # another kind
        {"kind": "inference", "gpu": "H100", "rows": [row("ort-cuda", 21, 720, 1280, status="error")]},
    ]
    ref, runs, lines = history_series(cur, history)
    assert ref == (720, 1280, 1) and len(runs) == 2
    assert lines == {"ort-cuda fp32": [(0, 18)]}
    train = {"kind": "train", "env": {"gpu": "H100"}, "rows": [row("train:bf16", 11, 720, 1280)]}
    ref, runs, lines = history_series(train, history)
    assert ref == (720, 1280, 1) and lines == {"train:bf16 fp32": [(0, 9)]}


def test_train_result_plot_shows_its_configurations(tmp_path):
    from cgan.benchmarks.plot import plot_result

    rows = [dict(backend=f"train:{n}", precision="fp32", batch=1, height=64, width=64, status="ok", fps=f)
            for n, f in (("official-eager-fp32", 2.0), ("fp32+channels_last", 2.5))]
    rows.append(dict(backend="train:x", precision="mixed", batch=1, height=64, width=64, status="error", fps=None))
    result = {"kind": "train", "env": {"host_cpu": "test cpu"}, "rows": rows}
    out = plot_result(result, tmp_path / "t.png", history=[{"kind": "train", "host_cpu": "test cpu", "rows": rows}])
    assert out.read_bytes().startswith(PNG_MAGIC)


def test_a_shape_the_model_cannot_take_is_skipped_not_an_error(tmp_path, fake_runtime, monkeypatch):
    """A TensorRT engine built for up to 1080p asked for 2160p refuses the shape: that row is 'skipped' (cannot
    run here), the others are measured and the run does not fail."""
    from cgan.errors import ShapeUnsupported

    good = FakeTranslator.translate_batch

    def small_only(self, frames):
        if frames[0].shape[1] > 32:
            raise ShapeUnsupported("input shape (1, 3, 32, 48) is outside the engine's profiles")
        return good(self, frames)

    monkeypatch.setattr(FakeTranslator, "translate_batch", small_only)
    result = run_bench(_cfg(tmp_path, backends=("ort-cpu",), baseline=False, sizes=((32, 32), (32, 48))))
    st = {r["width"]: r["status"] for r in result["rows"] if r["backend"] == "ort-cpu"}
    assert st == {32: "ok", 48: "skipped"}
