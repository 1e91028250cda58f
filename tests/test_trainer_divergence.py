"""A run that diverges must not write a pair of NaN weights: `--lambda-cycle 1e300` (finite, but over float32)
trained a pair whose every weight was NaN and exited 0, `--lr 1e308` was a torch traceback. The options are
bounded, and a checkpoint or pair is never saved from non-finite weights."""
from __future__ import annotations

import math

import pytest
import torch

from _helpers_trainer import make_dataset, tiny_config
from cgan.errors import CganError
from cgan.trainer import train as train_mod
from cgan.trainer.config import MAX_LAMBDA


@pytest.mark.parametrize("kw,needle", [({"lambda_cycle": 1e300}, "--lambda-cycle"),
                                       ({"lambda_identity": MAX_LAMBDA * 2}, "--lambda-identity"),
                                       ({"lr": 1e308}, "--lr must be in (0, 1]"), ({"lr": 1.5}, "--lr")])
def test_float_options_are_bounded(tmp_path, kw, needle):
    with pytest.raises(CganError, match=needle.replace("(", r"\(").replace("]", r"\]")):
        tiny_config(tmp_path / "d", tmp_path, **kw)


def test_the_bounds_take_the_papers_values_and_more(tmp_path):
    cfg = tiny_config(tmp_path / "d", tmp_path, lr=1.0, lambda_cycle=MAX_LAMBDA, lambda_identity=0.0)
    assert cfg.lr == 1.0 and cfg.lambda_cycle == MAX_LAMBDA


def test_a_diverged_run_saves_nothing_and_keeps_the_last_checkpoint(tmp_path, monkeypatch):
    root = make_dataset(tmp_path / "d", n_x=2, n_y=2)
    cfg = tiny_config(root, tmp_path / "r", max_steps=4, save_every_steps=2)
    real_step = train_mod.CycleGAN.train_step

    def step(self, x, y):
        out = real_step(self, x, y)
        if self.steps_done >= 3:  # the third step blows up
            with torch.no_grad():
                next(self.G.parameters()).view(-1)[0] = math.nan
        self.steps_done += 1
        return out

    monkeypatch.setattr(train_mod.CycleGAN, "steps_done", 1, raising=False)
    monkeypatch.setattr(train_mod.CycleGAN, "train_step", step)
    with pytest.raises(CganError, match=r"training diverged: G has \d+ NaN or infinite weights at step 4"):
        train_mod.train(cfg, progress=False)
    run = tmp_path / "r" / "run"
    assert not (run / "pair").exists()
    from cgan.trainer import checkpoint as ckpt

    saved = ckpt.list_checkpoints(run)
    assert saved and ckpt.load_checkpoint(ckpt.latest_checkpoint(run))["counters"]["step"] == 2
