"""The end of a run: a signal during the final checkpoint or the pair's write, and a full disk there.

When --max-steps or a time budget ended the run, the signal handlers were already gone while the last checkpoint
and the pair were written: a SIGTERM then (a lease's end, `timeout`) killed the trainer by default and lost the
run's last steps; a full disk's clear message was replaced by log.csv's own flush error."""
from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from _helpers_trainer import make_dataset, tiny_config
from cgan.errors import CganError
from cgan.pairs import load_pair
from cgan.trainer import checkpoint as ckpt

SCRIPT = textwrap.dedent("""
    import os, signal, sys
    from cgan.trainer import train as T
    real, SIG = T.save_pair, getattr(signal, sys.argv[1])
    def save_pair(*a, **k):  # the signal comes while the pair is being written
        os.kill(os.getpid(), SIG)
        return real(*a, **k)
    T.save_pair = save_pair
    from cgan.trainer.cli import main
    sys.argv = ["cgan-train", *sys.argv[2:]]
    main()
""")


@pytest.mark.parametrize("sig,code", [("SIGTERM", 143), ("SIGINT", 130)])
def test_a_signal_while_the_pair_is_written_is_noted_and_the_pair_still_written(tmp_path, sig, code):
    data = make_dataset(tmp_path / "data")
    out = tmp_path / "runs with space"
    args = ["--data-a", str(data / "trainA"), "--data-b", str(data / "trainB"), "--out", str(out), "--name", "x",
            "--size", "32", "--load-size", "36", "--ngf", "4", "--blocks", "1", "--ndf", "4", "--max-steps", "2",
            "--device", "cpu", "--workers", "0", "--threads", "1", "-q"]
    p = subprocess.run([sys.executable, "-c", SCRIPT, sig, *args], capture_output=True, text=True, timeout=300)
    assert p.returncode == code, p.stderr[-2000:]
    last = p.stderr.strip().splitlines()[-1]
    assert last.startswith(f"stopped: {sig} at step 2") and "Traceback" not in p.stderr, p.stderr[-2000:]
    assert f"--out '{out}' --resume" in last  # a hint that survives copy and paste
    assert load_pair(out / "x" / "pair").meta["training"]["steps"] == 2
    assert ckpt.load_checkpoint(ckpt.latest_checkpoint(out / "x"))["counters"]["step"] == 2


def test_a_full_disk_at_the_first_checkpoint_says_so(tmp_path, monkeypatch):
    import torch

    from cgan.trainer import train as T

    data = make_dataset(tmp_path / "data")

    def full(*a, **k):
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 1234 vs 1100")

    monkeypatch.setattr(torch, "save", full)
    real_logger = T._RunLogger
    closed = []
    real_close = real_logger.close

    def close(self):  # log.csv's own flush fails on the same full disk
        closed.append(1)
        real_close(self)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(real_logger, "close", close)
    with pytest.raises(CganError) as e:
        T.train(tiny_config(data, tmp_path / "r", max_steps=2, pool_size=2), progress=False)
    text = str(e.value)
    assert "no space left on the device" in text and "no checkpoint of this run was saved yet" in text, text
    assert "enforce fail" not in text and "previous checkpoint" not in text
    assert closed


def test_a_run_ends_with_a_summary_and_its_last_steps_in_the_log(tmp_path, caplog):
    """A run shorter than --log-every left log.csv with its header only, and ended on 'pair written to' with no
    word on how far it got."""
    import csv
    import logging

    from cgan.trainer.train import train

    data = make_dataset(tmp_path / "data")
    with caplog.at_level(logging.INFO, logger="cgan.trainer.train"):
        run_dir = train(tiny_config(data, tmp_path / "r", max_steps=3, log_every=50, pool_size=2), progress=False)
    rows = list(csv.DictReader(open(run_dir / "log.csv")))
    assert [r["step"] for r in rows] == ["3"] and float(rows[0]["G"]) > 0
    line = next(m for m in caplog.messages if m.startswith("trained "))
    assert line.startswith("trained 3 steps (3 steps into epoch 1 of 2; schedule 1 + 1) in ") and "G " in line


def test_resuming_with_other_data_says_so(tmp_path, caplog):
    import logging

    from cgan.trainer.train import config_for_resume, train

    data = make_dataset(tmp_path / "data")
    other = make_dataset(tmp_path / "other", n_x=6, n_y=3)
    run_dir = train(tiny_config(data, tmp_path / "r", max_steps=2, pool_size=2), progress=False)
    with caplog.at_level(logging.WARNING, logger="cgan.trainer.train"):
        train(config_for_resume(run_dir, {"max_steps": 3}), resume=True, progress=False)
        assert not [m for m in caplog.messages if "other data" in m]
        train(config_for_resume(run_dir, {"max_steps": 4, "data_a": str(other / "trainA")}), resume=True,
              progress=False)
    msg = next(m for m in caplog.messages if "resuming with other data" in m)
    assert f"X from {data / 'trainA'} (4 images) to {other / 'trainA'} (6)" in msg and "Y " not in msg


def test_export_pair_from_another_runs_checkpoint_records_where_it_came_from(tmp_path):
    from cgan.trainer.train import export_pair, train

    data = make_dataset(tmp_path / "data")
    a = train(tiny_config(data, tmp_path / "a", max_steps=1, pool_size=2), progress=False)
    b = train(tiny_config(data, tmp_path / "b", max_steps=1, pool_size=2), progress=False)
    theirs = ckpt.latest_checkpoint(b)
    meta = load_pair(export_pair(a, theirs, tmp_path / "p")).meta
    assert meta["training"]["checkpoint"] == str(theirs.resolve())
    assert meta["provenance"]["checkpoint_run"] == str(b.resolve())
    own = load_pair(export_pair(a, None, tmp_path / "q")).meta
    assert own["training"]["checkpoint"] == ckpt.latest_checkpoint(a).name and "checkpoint_run" not in own["provenance"]


def test_another_runs_checkpoint_never_replaces_this_runs_pair(tmp_path):
    """`export-pair A --checkpoint B's.pt` rewrote A/pair with B's weights (other domains even), and into an
    earlier export of A too; a mistyped run folder with --checkpoint was created."""
    from cgan.trainer.train import export_pair, train

    data = make_dataset(tmp_path / "data")
    a = train(tiny_config(data, tmp_path / "a", max_steps=1, pool_size=2), progress=False)
    b = train(tiny_config(data, tmp_path / "b", max_steps=1, pool_size=2), progress=False)
    theirs = ckpt.latest_checkpoint(b)
    before = (a / "pair" / "pair.json").read_bytes()
    with pytest.raises(CganError, match=r"is not one of .*'s checkpoints .*: its pair would replace .*a/run/pair"):
        export_pair(a, theirs)
    assert (a / "pair" / "pair.json").read_bytes() == before
    export_pair(a, None, tmp_path / "mine")  # an export of A's own weights
    with pytest.raises(CganError, match="already holds another pair"):
        export_pair(a, theirs, tmp_path / "mine")
    with pytest.raises(CganError, match="is not one of"):
        export_pair(tmp_path / "typo", theirs)
    with pytest.raises(CganError, match="is not one of"):  # the run's own pair named as --out: the same
        export_pair(a, theirs, a / "pair")
    assert not (tmp_path / "typo").exists()
    export_pair(b, None, tmp_path / "theirs")  # B's weights may go over an earlier export of B's weights
    meta = load_pair(export_pair(a, theirs, tmp_path / "theirs")).meta
    assert meta["provenance"]["run"] == str(b.resolve())


def test_the_run_ends_with_a_sample_grid_when_its_last_step_was_saved_already(tmp_path):
    """--save-every-steps 3 --max-steps 3: the final save was skipped (the step was saved), and the end-of-run grid
    with it (it was tied to that save)."""
    from cgan.trainer.train import train

    data = make_dataset(tmp_path / "data")
    run = train(tiny_config(data, tmp_path / "r", max_steps=3, save_every_steps=3, pool_size=2), progress=False)
    assert [p.name for p in (run / "samples").glob("*.png")]


def test_a_resume_with_nothing_left_keeps_the_record_of_what_trained_it(tmp_path):
    """A finished run resumed with --lr 0.1 --lambda-cycle 5: no step ran, the weights were the same, but pair.json's
    training record and config.json said lr 0.1 and lambda 5. An --init-from given on a resume is said to be ignored
    once and not stored (it was, and said again at every later resume)."""
    import json

    from cgan.trainer.train import config_for_resume, export_pair, train

    data = make_dataset(tmp_path / "data")
    run = train(tiny_config(data, tmp_path / "r", pool_size=2), progress=False)  # its 1 + 1 epochs, all of them
    config = (run / "config.json").read_bytes()
    export_pair(run, sorted((run / "checkpoints").glob("*.pt"))[0])  # RUN/pair from an older checkpoint
    train(config_for_resume(run, {"lr": 0.1, "lambda_cycle": 5.0}), resume=True, progress=False)
    # the record of the weights written (the latest checkpoint's), not the options given now nor the older export's
    record = json.loads((run / "pair" / "pair.json").read_text())["training"]
    assert record == ckpt.load_checkpoint(ckpt.latest_checkpoint(run))["info"] and record["lr"] == 2e-4
    assert (run / "config.json").read_bytes() == config
    cfg = config_for_resume(run, {"epochs_decay": 2, "init_from": str(tmp_path / "elsewhere")})  # one more epoch
    train(cfg, resume=True, progress=False)
    assert json.loads((run / "config.json").read_text())["config"]["init_from"] in (None, "")
