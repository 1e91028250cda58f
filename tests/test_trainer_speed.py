"""The training-speed benchmark runs on CPU at tiny sizes and writes the documented JSON rows."""
from __future__ import annotations

import json

import pytest

from cgan.benchmarks.train_speed import main, run_train_bench

KEYS = {"name", "precision", "channels_last", "compile", "it_per_s", "ms_per_it", "speedup_vs_baseline", "steps"}


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
