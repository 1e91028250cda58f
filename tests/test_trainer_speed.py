"""The training-speed benchmark runs on CPU at tiny sizes and writes the documented JSON rows."""
from __future__ import annotations

import json

import pytest

from cgan.benchmarks.train_speed import main, run_train_bench

KEYS = {"name", "precision", "channels_last", "compile", "it_per_s", "ms_per_it", "speedup_vs_baseline", "steps",
        "warmup_s"}


def test_run_train_bench_rows_on_cpu():
    res = run_train_bench(size=32, ngf=4, blocks=1, device="cpu", steps=2, warmup=1)
    rows = res["rows"]
    assert [r["name"] for r in rows] == ["official-eager-fp32", "fp32+channels_last"]
    assert all(set(r) == KEYS and r["it_per_s"] > 0 for r in rows)
    assert rows[0]["speedup_vs_baseline"] == 1.0
    assert rows[1]["speedup_vs_baseline"] == pytest.approx(rows[1]["it_per_s"] / rows[0]["it_per_s"], rel=0.01)
    assert res["env"]["device"].startswith("cpu") and res["env"]["torch"] and res["env"]["date"]


def test_module_cli_writes_json(tmp_path, capsys):
    out = tmp_path / "speed.json"
    assert main(["--size", "32", "--ngf", "4", "--blocks", "1", "--device", "cpu", "--steps", "1", "--warmup", "1",
                 "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    assert len(data["rows"]) == 2 and data["env"]["size"] == 32
    assert "official-eager-fp32" in capsys.readouterr().out


@pytest.mark.gpu
def test_fast_settings_on_cuda():
    res = run_train_bench(size=64, ngf=8, blocks=2, device="cuda", steps=3, warmup=2)
    assert [r["compile"] for r in res["rows"]][-1] is True and all(r["it_per_s"] > 0 for r in res["rows"])


def test_a_failing_configuration_is_an_error_row_and_the_others_are_measured(monkeypatch):
    """torch.compile or memory failing in one configuration (often the last, fastest one) used to abort the
    whole command and lose the rows already measured."""
    from cgan.benchmarks import bench
    from cgan.trainer import train

    real = train.CycleGAN

    class Fails(real):
        def train_step(self, x, y):
            if self.cfg.channels_last:
                raise RuntimeError("compile exploded\nlong traceback text")
            return super().train_step(x, y)

    monkeypatch.setattr(train, "CycleGAN", Fails)
    res = run_train_bench(size=32, ngf=4, blocks=1, device="cpu", steps=2, warmup=1)
    ok, bad = res["rows"]
    assert ok["it_per_s"] > 0 and ok["speedup_vs_baseline"] == 1.0
    assert bad["error"] == "RuntimeError: compile exploded" and "it_per_s" not in bad
    row = bench.train_row(bad, 1, 32)
    assert row["status"] == "error" and row["reason"] == bad["error"] and row["fps"] is None


def test_the_fastest_settings_pay_for_their_compilation():
    from cgan.benchmarks.train_speed import fastest_settings, settings_flags

    rows = [{"name": "official-eager-fp32", "precision": "fp32", "channels_last": False, "compile": False,
             "it_per_s": 16.7, "warmup_s": 3.0},
            {"name": "bf16", "precision": "bf16", "channels_last": False, "compile": False, "it_per_s": 14.9,
             "warmup_s": 2.0},
            {"name": "bf16+compile", "precision": "bf16", "channels_last": False, "compile": True, "it_per_s": 40.0,
             "warmup_s": 120.0},
            {"name": "broken", "precision": "bf16", "channels_last": True, "compile": True, "error": "RuntimeError: x"}]
    # 500 s: compiled 40 * 380 = 15200 steps beat eager 16.7 * 500 = 8350
    best, steps = fastest_settings(rows, 500)
    assert best["name"] == "bf16+compile" and steps == pytest.approx(15200)
    assert settings_flags(best) == "--precision bf16 --compile"
    # 150 s: the compilation is not earned back (40 * 30 = 1200 < 16.7 * 150 = 2505)
    best, steps = fastest_settings(rows, 150)
    assert best["name"] == "official-eager-fp32" and settings_flags(best) == "--precision fp32"
    assert settings_flags({"precision": "bf16", "channels_last": True, "compile": False}) == \
        "--precision bf16 --channels-last"
    assert fastest_settings([rows[-1]], 500) == (None, 0.0) and settings_flags(None) == "--precision fp32"
    # a compiled row that cannot finish compiling in time trains nothing: no flags from it
    assert fastest_settings([rows[2]], 100) == (None, 0.0)
    # rows whose figures cannot be trusted are left out: a compiled one without (or with a bad) warm-up, a rate
    # that is no number; no time at all picks nothing
    odd = [dict(rows[2], warmup_s=None), {k: v for k, v in rows[2].items() if k != "warmup_s"},
           dict(rows[2], warmup_s=-50.0), dict(rows[0], it_per_s="5"), dict(rows[0], it_per_s=float("nan"))]
    assert fastest_settings(odd, 500) == (None, 0.0)
    assert fastest_settings(rows, 0) == (None, 0.0) and fastest_settings(rows, float("nan")) == (None, 0.0)
    assert settings_flags({"precision": None}) == "--precision fp32" and settings_flags({}) == "--precision fp32"


def test_rows_say_how_long_their_warm_up_took():
    res = run_train_bench(size=32, ngf=4, blocks=1, device="cpu", steps=1, warmup=1)
    assert all(r["warmup_s"] > 0 for r in res["rows"])


@pytest.mark.parametrize("argv, needle", [(["--steps", "0"], "--steps must be at least 1, got 0"),
                                          (["--warmup", "-1"], "--warmup must be at least 0, got -1")])
def test_the_command_refuses_counts_that_measure_nothing(argv, needle, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv + ["--device", "cpu"])
    assert e.value.code == 2 and needle in capsys.readouterr().err
