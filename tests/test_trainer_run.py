"""Training runs end to end (tiny nets, synthetic shapes): learning, exact resume, safe checkpoints, bad input."""
from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from _helpers_trainer import make_dataset, make_images, tiny_config

from cgan._cli import run
from cgan.errors import CganError, IntegrityError
from cgan.pairs import load_pair
from cgan.trainer import checkpoint as ckpt
from cgan.trainer.cli import cli
from cgan.trainer.data import ResumableSampler, Transform, UnalignedDataset, list_images
from cgan.trainer.train import CycleGAN, config_for_resume, export_pair, train


@pytest.fixture
def data(tmp_path):
    return make_dataset(tmp_path / "data")


def _one_line_error(capsys, code: int, expected_code: int, *words: str) -> str:
    err = capsys.readouterr().err.strip()
    last = err.splitlines()[-1] if err else ""
    assert code == expected_code, err
    assert "Traceback" not in err and last.startswith("error:"), err
    for w in words:
        assert w in last, last
    return last


# ---- learning ------------------------------------------------------------------------------------------
def test_cycle_loss_falls_on_synthetic_shapes(tmp_path):
    root = tmp_path / "d"
    make_images(root / "trainA", 6, (40, 200, 60), seed=1)
    make_images(root / "trainB", 6, (200, 60, 40), seed=2, shape="square")
    cfg = tiny_config(root, tmp_path / "runs", lr=1e-3, ngf=8)
    ds = UnalignedDataset(list_images(cfg.data_a, "X"), list_images(cfg.data_b, "Y"),
                          Transform(cfg.preprocess, cfg.load_size, cfg.size), cfg.seed)
    sampler = ResumableSampler(6, 6, cfg.seed)
    model = CycleGAN(cfg, torch.device("cpu"))
    cyc = []
    for epoch in range(5):
        sampler.set_epoch(epoch)
        for key in sampler:
            item = ds[key]
            parts = model.train_step(item["X"][None], item["Y"][None])
            cyc.append((parts["cycle_X"] + parts["cycle_Y"]).item())
    first, last = sum(cyc[:6]) / 6, sum(cyc[-6:]) / 6
    assert last < 0.7 * first, (first, last)


# ---- the CLI smoke command -----------------------------------------------------------------------------
def test_smoke_command_writes_pair(tmp_path, data, capsys):
    code = run(cli, ["--data", str(data), "--out", str(tmp_path / "R"), "--name", "t", "--size", "64", "--ngf", "8",
                     "--blocks", "2", "--max-steps", "3", "--device", "cpu", "--workers", "0", "-q",
                     "--domains", "summer,winter", "--ndf", "8", "--log-every", "1"])
    assert code == 0, capsys.readouterr().err
    run_dir = tmp_path / "R" / "t"
    pair = load_pair(run_dir / "pair")
    assert pair.spec.name == "summer2winter" and pair.spec.generator.ngf == 8 and pair.spec.generator.blocks == 2
    assert pair.meta["training"]["steps"] == 3 and pair.meta["training"]["size"] == 64
    cfg = json.loads((run_dir / "config.json").read_text())["config"]
    assert cfg["ngf"] == 8 and cfg["load_size"] == 286 and cfg["lambda_identity"] == 0.5
    lines = (run_dir / "log.csv").read_text().splitlines()
    assert lines[0].startswith("step,epoch,lr_G") and len(lines) == 4
    assert list((run_dir / "samples").glob("*.png"))


def test_sample_names_carry_the_epoch_log_csv_gives(tmp_path, data, capsys):
    """Samples taken mid-epoch were named with the epochs done (epoch0001 for a step log.csv puts in epoch 2)."""
    code = run(cli, ["--data", str(data), "--out", str(tmp_path / "R"), "--name", "s", "--size", "32", "--load-size",
                     "36", "--ngf", "4", "--ndf", "4", "--blocks", "1", "--max-steps", "10", "--device", "cpu",
                     "--workers", "0", "-q", "--sample-every-steps", "3", "--log-every", "1"])
    assert code == 0, capsys.readouterr().err
    run_dir = tmp_path / "R" / "s"
    rows = [line.split(",") for line in (run_dir / "log.csv").read_text().splitlines()[1:]]
    epoch_of = {int(r[0]): int(r[1]) for r in rows}
    names = sorted(p.stem for p in (run_dir / "samples").glob("*.png"))
    seen = {int(n.split("_step")[1]): int(n.split("_step")[0].removeprefix("epoch")) for n in names}
    assert {3, 6, 9} <= set(seen) and len(set(epoch_of.values())) > 1, (names, epoch_of)
    assert all(seen[step] == epoch_of[step] for step in seen), (seen, epoch_of)


# ---- exact resume ---------------------------------------------------------------------------------------
def _final_state(run_dir):
    return ckpt.load_checkpoint(ckpt.latest_checkpoint(run_dir))


@pytest.mark.parametrize("dropout", [False, True])
def test_resume_is_bit_exact(tmp_path, data, dropout):
    # 4 X images → 4 steps per epoch; 6 steps cross an epoch end (lr decays in epoch 2); stop mid-epoch at 3.
    # With dropout the masks come from torch's global RNG, which the DataLoader's iter() drew from before
    # the checkpoint captured it (a resumed run drew again: different masks).
    straight = train(tiny_config(data, tmp_path / "a", max_steps=6, pool_size=2, dropout=dropout), progress=False)
    half = tiny_config(data, tmp_path / "b", max_steps=3, pool_size=2, dropout=dropout)
    train(half, progress=False)
    assert _final_state(half.out + "/run")["counters"]["step_in_epoch"] == 3
    resumed = train(half.replace(max_steps=6), resume=True, progress=False)
    a, b = _final_state(straight), _final_state(resumed)
    assert a["counters"]["step"] == b["counters"]["step"] == 6
    for net in ("G", "F", "D_X", "D_Y"):
        for k, v in a["nets"][net].items():
            assert torch.equal(v, b["nets"][net][k]), f"{net}.{k}"
    for opt in ("G", "D"):
        for pid, st in a["optim"][opt]["state"].items():
            assert torch.equal(st["exp_avg"], b["optim"][opt]["state"][pid]["exp_avg"])
    for dom in ("X", "Y"):
        pa, pb = a["pools"][dom]["images"], b["pools"][dom]["images"]
        assert len(pa) == len(pb) == 2 and all(torch.equal(x, y) for x, y in zip(pa, pb))
    assert a["optim"]["G"]["param_groups"][0]["lr"] == b["optim"]["G"]["param_groups"][0]["lr"] < 2e-4
    # and the pair written at the end holds the same weights (file bytes differ: safetensors metadata order)
    ga, gb = load_pair(straight / "pair").load_numpy("G"), load_pair(resumed / "pair").load_numpy("G")
    assert ga.keys() == gb.keys() and all((ga[k] == gb[k]).all() for k in ga)


def test_checkpoints_keep_last_k_and_export_pair(tmp_path, data, capsys):
    run_dir = train(tiny_config(data, tmp_path / "r", max_steps=5, save_every_steps=1, keep=2), progress=False)
    names = [p.name for p in ckpt.list_checkpoints(run_dir)]
    assert names == ["step-000000004.pt", "step-000000005.pt"]
    code = run(cli, ["export-pair", str(run_dir), "--checkpoint", str(run_dir / "checkpoints" / names[0]),
                     "--out", str(tmp_path / "p4")])
    assert code == 0, capsys.readouterr().err
    p4 = load_pair(tmp_path / "p4")
    assert p4.meta["training"]["steps"] == 4 and p4.meta["training"]["checkpoint"] == names[0]
    assert p4.files["G"]["sha256"] != load_pair(run_dir / "pair").files["G"]["sha256"]
    # --dtype float16: half-size files holding the same weights rounded to fp16
    code = run(cli, ["export-pair", str(run_dir), "--out", str(tmp_path / "h"), "--dtype", "float16"])
    assert code == 0, capsys.readouterr().err
    full, half = load_pair(run_dir / "pair").load_numpy("G"), load_pair(tmp_path / "h").load_numpy("G")
    assert all(half[k].dtype.name == "float16" for k in half if full[k].dtype.name == "float32")
    assert all(np.array_equal(half[k], full[k].astype(half[k].dtype)) for k in full)


def test_export_pair_during_training_and_of_a_pair_folder(tmp_path, data, capsys, monkeypatch):
    """export-pair while the run trains: the checkpoint it listed can be let go (--keep) before it is read; that
    failed with "truncated, corrupted or not ours: delete it" (QA). It reads the latest again. And a pair folder
    given for the run folder is said to be one (it said "no checkpoint in PAIR/checkpoints")."""
    run_dir = train(tiny_config(data, tmp_path / "r", max_steps=3, save_every_steps=1, keep=2), progress=False)
    real = ckpt.latest_checkpoint
    gone = run_dir / "checkpoints" / "step-000000001.pt"  # (let go by --keep 2 already)
    calls = []

    def racing(*args, **kw):
        calls.append(1)
        return gone if len(calls) == 1 else real(*args, **kw)

    monkeypatch.setattr(ckpt, "latest_checkpoint", racing)
    out = export_pair(run_dir, out=tmp_path / "during")
    assert len(calls) == 2 and load_pair(out).meta["training"]["checkpoint"] == "step-000000003.pt"
    monkeypatch.setattr(ckpt, "latest_checkpoint", real)
    code = run(cli, ["export-pair", str(run_dir / "pair")])
    _one_line_error(capsys, code, 2, f"{run_dir / 'pair'} is a pair folder, not a run folder: give the folder of "
                                     f"the cgan-train run it came from (OUT/NAME, e.g. {run_dir})")


# ---- safe checkpoints ---------------------------------------------------------------------------------
def test_crash_while_saving_keeps_previous_checkpoint(tmp_path, data, monkeypatch):
    run_dir = train(tiny_config(data, tmp_path / "r", max_steps=2), progress=False)
    before = ckpt.list_checkpoints(run_dir)
    state = ckpt.load_checkpoint(before[-1])
    real_save = torch.save

    def crash(obj, f, *a, **kw):  # write half a file, then die
        real_save(obj, f, *a, **kw)
        with open(f, "r+b") as fh:
            fh.truncate(fh.seek(0, 2) // 2)
        raise OSError("disk full")

    monkeypatch.setattr(ckpt.torch, "save", crash)
    state["counters"]["step"] = 99
    with pytest.raises(CganError, match="disk full.*previous checkpoint step-000000002.pt is intact"):
        ckpt.save_checkpoint(run_dir, state, keep=1)
    monkeypatch.undo()
    assert ckpt.list_checkpoints(run_dir) == before
    assert ckpt.load_checkpoint(before[-1])["counters"]["step"] == 2
    assert not [p for p in (run_dir / "checkpoints").iterdir() if p.name.startswith(".")]


def test_truncated_foreign_and_pickled_checkpoints_are_refused(tmp_path, data, capsys):
    run_dir = train(tiny_config(data, tmp_path / "r", max_steps=1), progress=False)
    latest = ckpt.latest_checkpoint(run_dir)
    blob = latest.read_bytes()
    args = ["--data", str(data), "--out", str(tmp_path / "r"), "--name", "run", "--resume", "--max-steps", "2",
            "--workers", "0", "-q", "--device", "cpu"]
    latest.write_bytes(blob[: len(blob) // 2])
    _one_line_error(capsys, run(cli, args), 3, "truncated")
    torch.save({"state_dict": {"w": torch.zeros(2)}}, latest)
    _one_line_error(capsys, run(cli, args), 3, "not a cgan training checkpoint")
    torch.save({"format": "cgan.train-checkpoint", "obj": CganError("x")}, latest)  # arbitrary object: refused
    _one_line_error(capsys, run(cli, args), 3, "not a loadable cgan checkpoint")
    with pytest.raises(IntegrityError):
        ckpt.load_checkpoint(latest)


def test_resume_with_other_architecture_is_refused(tmp_path, data, capsys):
    train(tiny_config(data, tmp_path / "r", max_steps=1), progress=False)
    args = ["--out", str(tmp_path / "r"), "--name", "run", "--resume", "--ngf", "8", "-q"]
    _one_line_error(capsys, run(cli, args), 2, "different architecture", "ngf 4 -> 8")
    # a fresh run must not silently reuse a folder with checkpoints
    args = ["--data", str(data), "--out", str(tmp_path / "r"), "--name", "run", "-q"]
    _one_line_error(capsys, run(cli, args), 2, "--resume")


def test_resume_without_checkpoint(tmp_path, capsys):
    args = ["--out", str(tmp_path / "r"), "--name", "nothing", "--resume"]
    _one_line_error(capsys, run(cli, args), 2, "nothing to resume")


def test_resume_without_checkpoints_beside_a_pair_gives_advice_that_works(tmp_path, data, capsys):
    """A finished run whose checkpoints were removed: --resume advised starting without --resume, which then
    refused the folder (it holds a trained pair) and advised another --name: the first now says so too."""
    run_dir = train(tiny_config(data, tmp_path / "r", max_steps=1), progress=False)
    for p in ckpt.list_checkpoints(run_dir):
        p.unlink()
    args = ["--out", str(tmp_path / "r"), "--name", "run", "--resume", "-q"]
    _one_line_error(capsys, run(cli, args), 2, "cannot go on", "another --name", "--init-from")


def test_resuming_a_finished_run_trains_nothing_and_keeps_the_pairs_graphs(tmp_path, data, caplog):
    """The pair is written again with the same weights, byte for byte: its in-pair graphs (cgan-export
    --in-pair) stay, and the log says there was nothing left to train."""
    import logging

    from cgan.export.pair_graph import add_pair_graphs

    cfg = tiny_config(data, tmp_path / "r", epochs=1, epochs_decay=1)
    run_dir = train(cfg, progress=False)
    add_pair_graphs(run_dir / "pair")
    before = load_pair(run_dir / "pair")
    with caplog.at_level(logging.INFO):
        train(cfg, resume=True, progress=False)
    after = load_pair(run_dir / "pair")
    assert set(after.graphs) == {"G", "F"} and after.files == before.files
    assert any("nothing left to train" in r.getMessage() for r in caplog.records)


# ---- bad input ------------------------------------------------------------------------------------------
def _train_args(tmp_path, data_a, data_b, out=None):
    return ["--data-a", str(data_a), "--data-b", str(data_b), "--out", str(out or tmp_path / "out"), "--name", "x",
            "--size", "32", "--load-size", "36", "--ngf", "4", "--blocks", "1", "--ndf", "4", "--max-steps", "1",
            "--device", "cpu", "--workers", "0", "-q"]


def test_missing_and_empty_domain_folders(tmp_path, data, capsys):
    _one_line_error(capsys, run(cli, _train_args(tmp_path, tmp_path / "nope", data / "trainB")), 2, "does not exist")
    (tmp_path / "empty").mkdir()
    _one_line_error(capsys, run(cli, _train_args(tmp_path, data / "trainA", tmp_path / "empty")), 2, "is empty")
    _one_line_error(capsys, run(cli, ["--out", str(tmp_path), "--name", "x"]), 2, "no training data")
    args = _train_args(tmp_path, data / "trainA", data / "trainB") + ["--init-from", str(tmp_path / "no-pair")]
    _one_line_error(capsys, run(cli, args), 2, "no-pair")
    assert not (tmp_path / "out" / "x").exists()  # a refused input leaves no run folder behind


def test_a_refused_folder_is_one_line_without_opencvs_own(tmp_path, data):
    """OpenCV's decoders printed their own lines for a broken PNG ([ WARN:0@1.2] ..., [ERROR:0@1.2] ...) on the
    process's stderr beside cgan's one line (capsys cannot see them: a child process does)."""
    import subprocess
    import sys

    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "x.png").write_bytes(b"\x89PNG\r\n\x1a\nxxxxgarbage")
    r = subprocess.run([sys.executable, "-c", "from cgan.trainer.cli import main; main()",
                        *_train_args(tmp_path, junk, data / "trainB")], capture_output=True, text=True, timeout=300,
                       env={**os.environ, "CGAN_HOME": str(tmp_path / "home")})
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert r.returncode == 2 and len(lines) == 1 and "no readable images" in lines[0], r.stderr


def test_corrupt_files_are_skipped_or_fatal(tmp_path, data, capsys, caplog):
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "a.jpg").write_bytes(b"\xff\xd8 truncated jpeg")
    (junk / "notes.txt").write_text("hello")
    _one_line_error(capsys, run(cli, _train_args(tmp_path, data / "trainA", junk)), 2, "no readable images")
    mixed = make_images(tmp_path / "mixed", 2, (10, 10, 250), seed=5)
    (mixed / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    (mixed / "readme.md").write_text("x")
    with caplog.at_level("WARNING"):
        assert len(list_images(mixed, "Y")) == 2
    assert "skipped 2 of 4 files: 1 could not be decoded, corrupt or cut short? ('broken.png'); 1 not of a photo " \
        "type read here ('readme.md'; photos are jpg/png/bmp/tif/webp/ppm)" in caplog.text
    assert run(cli, _train_args(tmp_path, data / "trainA", mixed)) == 0


def test_unwritable_run_folder(tmp_path, data, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    _one_line_error(capsys, run(cli, _train_args(tmp_path, data / "trainA", data / "trainB", out=blocker / "sub")),
                    2, "cannot write")


def test_bad_options_are_one_line(tmp_path, data, capsys):
    args = _train_args(tmp_path, data / "trainA", data / "trainB") + ["--size", "30"]
    _one_line_error(capsys, run(cli, args), 2, "multiple of 4")
    args = _train_args(tmp_path, data / "trainA", data / "trainB") + ["--domains", "summer"]
    _one_line_error(capsys, run(cli, args), 2, "--domains")
    with pytest.raises(CganError, match="batch-size 1"):
        tiny_config(data, tmp_path, preprocess="none", batch_size=2)


def test_batch_size_two_and_export_default_location(tmp_path, data):
    run_dir = train(tiny_config(data, tmp_path / "r", max_steps=2, batch_size=2), progress=False)
    (run_dir / "pair" / "pair.json").unlink()
    export_pair(run_dir)
    assert load_pair(run_dir / "pair").meta["training"]["batch_size"] == 2


def test_pair_records_the_commit_the_training_started_from(tmp_path, data, monkeypatch):
    """The checkout may move on while a long run trains: the pair (and config.json) name the commit whose code
    ran, read at the start, not whatever HEAD is when the pair is written."""
    import cgan.trainer.train as train_mod

    shas = iter(["a" * 40, "b" * 40, "c" * 40])
    monkeypatch.setattr(train_mod, "git_sha", lambda: next(shas))
    run_dir = train(tiny_config(data, tmp_path / "r", max_steps=2), progress=False)
    assert load_pair(run_dir / "pair").meta["training"]["git_sha"] == "a" * 40
    assert json.loads((run_dir / "config.json").read_text())["git_sha"] == "a" * 40


def test_resume_with_a_longer_schedule_trains_at_the_new_schedules_rate(tmp_path, data):
    """1 + 1 epochs end at rate 0; resuming with 2 + 1 must run epoch 3 at half the rate (the official linear
    policy for that epoch), not at the 0 the finished schedule left in the optimizers."""
    import csv

    run_dir = train(tiny_config(data, tmp_path / "r", epochs=1, epochs_decay=1), progress=False)
    done = ckpt.load_checkpoint(ckpt.latest_checkpoint(run_dir))
    assert done["counters"]["epoch"] == 2
    before = {k: v.clone() for k, v in done["nets"]["G"].items()}
    train(tiny_config(data, tmp_path / "r", epochs=2, epochs_decay=1), resume=True, progress=False,
          reset_schedule=True)
    rows = list(csv.DictReader((run_dir / "log.csv").open()))
    third = [r for r in rows if r["epoch"] == "3"]
    assert third and all(float(r["lr_G"]) == pytest.approx(1e-4) and float(r["lr_D"]) == pytest.approx(1e-4)
                         for r in third)
    after = ckpt.load_checkpoint(ckpt.latest_checkpoint(run_dir))
    assert after["counters"]["epoch"] == 3
    assert any(not torch.equal(before[k], v) for k, v in after["nets"]["G"].items())  # it did learn


def test_resume_at_the_step_limit_does_nothing_more(tmp_path, data):
    cfg = tiny_config(data, tmp_path / "r", max_steps=2)
    run_dir = train(cfg, progress=False)
    train(cfg, resume=True, progress=False)
    assert ckpt.load_checkpoint(ckpt.latest_checkpoint(run_dir))["counters"]["step"] == 2
    assert load_pair(run_dir / "pair").meta["training"]["steps"] == 2


# ---- fine-tuning from a pair (--init-from) ------------------------------------------------------------
def test_init_from_starts_g_and_f_from_a_pair_and_records_it(tmp_path, data, capsys):
    from cgan.trainer.train import CycleGAN, init_generators

    first = train(tiny_config(data, tmp_path / "a", max_steps=2, domain_x="summer", domain_y="winter"),
                  progress=False)
    source = load_pair(first / "pair")
    cfg = tiny_config(data, tmp_path / "b", domain_x="summer", domain_y="winter", seed=11)
    model = CycleGAN(cfg, torch.device("cpu"))
    rec = init_generators(model, str(first / "pair"))
    assert rec["swapped"] is False and rec["sha256"]["G"] == source.files["G"]["sha256"]
    for gen in ("G", "F"):
        want = source.load_numpy(gen)
        got = getattr(model, gen).state_dict()
        assert all(np.array_equal(got[k].numpy(), want[k]) for k in want), gen
    # the reverse pair (winter2summer) fits with G and F swapped
    rev = CycleGAN(cfg.replace(domain_x="winter", domain_y="summer"), torch.device("cpu"))
    assert init_generators(rev, str(first / "pair"))["swapped"] is True
    assert all(np.array_equal(rev.F.state_dict()[k].numpy(), v) for k, v in source.load_numpy("G").items())
    # a run started from it records where it came from, and keeps the record through a resume
    run_b = train(cfg.replace(init_from=str(first / "pair"), max_steps=1), progress=False)
    assert load_pair(run_b / "pair").meta["training"]["init_from"]["sha256"] == rec["sha256"]
    train(cfg.replace(init_from=None, max_steps=2), resume=True, progress=False)
    assert load_pair(run_b / "pair").meta["training"]["init_from"]["sha256"] == rec["sha256"]


def test_init_from_a_pair_that_does_not_fit_is_one_line(tmp_path, data, capsys):
    first = train(tiny_config(data, tmp_path / "a", max_steps=1), progress=False)  # domains X, Y; ngf 4
    base = ["--data", str(data), "--out", str(tmp_path / "R"), "--size", "32", "--load-size", "36", "--blocks", "1",
            "--ndf", "4", "--device", "cpu", "--workers", "0", "-q", "--max-steps", "1", "--no-tensorboard"]
    for extra, words in ((["--name", "n1", "--ngf", "8"], "ngf 4 vs 8): add --blocks 1 --ngf 4"),
                         (["--name", "n2", "--ngf", "4", "--domains", "cat,dog"], "X<->Y"),
                         (["--name", "n3", "--ngf", "4", "--init-from", "nosuchpair"], "nosuchpair")):
        args = base + extra + ([] if "--init-from" in extra else ["--init-from", str(first / "pair")])
        code = run(cli, args)
        _one_line_error(capsys, code, 2, words)


_FAILING_IMAGE = """
from cgan.trainer import data
getitem = data.UnalignedDataset.__getitem__
def failing(self, key):  # the second item of the second epoch: after the first epoch's checkpoint and one step
    epoch, pos, ix, iy = key
    if (epoch, pos) == (1, 1):
        raise getattr(data, "DataError", data.CganError)(f"cannot read training image {self.files['X'][ix]} "
                                                         "(removed or corrupted while "
                             "training?)")
    return getitem(self, key)
data.UnalignedDataset.__getitem__ = failing
from cgan.trainer.cli import main
main()
"""


def test_an_image_failing_mid_run_saves_the_steps_trained_and_says_resume(tmp_path, data):
    """With loader workers (default 4), an image removed or damaged mid-run printed its line, then at exit a
    'DataLoader worker is killed by signal: Terminated' traceback; the steps since the last checkpoint (up to an
    epoch) were lost, and nothing said --resume would go on."""
    import subprocess
    import sys

    args = ["--data-a", str(data / "trainA"), "--data-b", str(data / "trainB"), "--out", str(tmp_path / "R"),
            "--name", "r", "--size", "32", "--load-size", "36", "--ngf", "4", "--ndf", "4", "--blocks", "1",
            "--device", "cpu", "--threads", "1", "--workers", "2", "-q", "--no-tensorboard", "--epochs", "3",
            "--epochs-decay", "0", "--seed", "1"]
    r = subprocess.run([sys.executable, "-c", _FAILING_IMAGE, *args], capture_output=True, text=True, timeout=300)
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert r.returncode == 2 and len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    assert "cannot read training image" in lines[0] and "--resume" in lines[0], lines[0]
    # the first epoch's 4 steps were saved at its end; the step trained in the second epoch is saved too
    assert ckpt.load_checkpoint(ckpt.latest_checkpoint(tmp_path / "R" / "r"))["counters"]["step"] == 5


@pytest.mark.parametrize("fails_at", [1, 3])
def test_running_out_of_memory_is_one_line_and_saves_the_steps_trained(tmp_path, data, monkeypatch, fails_at):
    """torch's allocator errors (CPU: a RuntimeError "can't allocate memory"; CUDA: torch.OutOfMemoryError, also
    a RuntimeError) ended a run in a 93-line traceback, the steps since the last checkpoint lost. Now one line
    with the sizes to lower; the steps trained are saved first, and a run that trained nothing leaves no folder."""
    real, calls = CycleGAN.train_step, []

    def step(self, x, y):
        calls.append(1)
        if len(calls) == fails_at:
            raise RuntimeError("[enforce fail at alloc_cpu.cpp:127] data. DefaultCPUAllocator: can't allocate "
                               "memory: you tried to allocate 1073741824 bytes. Error code 12")
        return real(self, x, y)

    monkeypatch.setattr(CycleGAN, "train_step", step)
    cfg = tiny_config(data, tmp_path / "r", max_steps=6)
    with pytest.raises(CganError) as e:
        train(cfg, progress=False)
    said = str(e.value)
    when = "at the first step" if fails_at == 1 else f"after {fails_at - 1} steps"
    assert "\n" not in said and said.startswith(f"out of memory on cpu {when} (--preprocess resize_and_crop: "
                                                 f"--size {cfg.size}, --batch-size 1, --ngf 4)"), said
    assert "lower --size or --batch-size, or free what else uses the memory" in said
    run_dir = tmp_path / "r" / "run"
    if fails_at == 1:
        assert "--resume" not in said and not run_dir.exists()
    else:
        assert "steps trained so far are saved" in said and said.endswith("--resume`"), said
        assert ckpt.load_checkpoint(ckpt.latest_checkpoint(run_dir))["counters"]["step"] == fails_at - 1
    monkeypatch.setattr(torch, "OutOfMemoryError", type("OutOfMemoryError", (RuntimeError,), {}), raising=False)
    from cgan.trainer.train import _out_of_memory
    assert _out_of_memory(torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"))
    assert _out_of_memory(MemoryError()) and not _out_of_memory(RuntimeError("Sizes of tensors must match"))
    from cgan.trainer.train import _oom_advice  # the size the networks train at, by --preprocess

    assert "lower --load-size or --batch-size" in _oom_advice(tiny_config(data, tmp_path, preprocess="scale_width",
                                                                          load_size=64), 3, "cuda")[1]
    what, fix = _oom_advice(tiny_config(data, tmp_path, preprocess="none"), 3, "cuda")
    assert "each photo at its own size" in what and fix.startswith("shrink the largest photos")


def test_the_epochs_checkpoint_is_saved_before_its_sample_grid(tmp_path, data, monkeypatch):
    """The epoch-end sample grid was written before the checkpoint: a grid that could not be written (a
    read-only or full samples/, memory for a large first photo under --preprocess none) lost the whole epoch."""
    def fail(self, *a, **kw):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(CycleGAN, "translate_samples", fail)
    cfg = tiny_config(data, tmp_path / "r")
    with pytest.raises(OSError):
        train(cfg, progress=False)
    saved = ckpt.load_checkpoint(ckpt.latest_checkpoint(tmp_path / "r" / "run"))
    assert saved["counters"]["epoch"] == 1 and saved["counters"]["step"] > 0


def test_a_pair_that_cannot_be_written_at_the_end_says_export_pair(tmp_path, data):
    """RUN/pair could not be written at the run's end: "choose a writable folder", a folder the user never
    chose. The checkpoint is saved, so the way on is export-pair once the cause is fixed."""
    run_dir = tmp_path / "r" / "run"
    run_dir.mkdir(parents=True)
    (run_dir / "pair").write_text("in the way")
    with pytest.raises(CganError) as e:
        train(tiny_config(data, tmp_path / "r", max_steps=2), progress=False)
    said = str(e.value)
    assert said.startswith(f"the run's pair could not be written: cannot write to pair folder {run_dir / 'pair'}: "
                           f"it is a file, not a folder; its checkpoint of step 2 is saved: fix that, then write "
                           f"the pair with `cgan-train export-pair {run_dir}`"), said
    assert "choose" not in said and ckpt.latest_checkpoint(run_dir) is not None


def test_a_mistyped_command_a_forgotten_resume_and_a_finished_runs_resume_are_said_plainly(tmp_path, data, capsys,
                                                                                            caplog):
    """`cgan-train exportpair RUN` said "Missing option '--name'" (any first word went to `train`); a run named
    again without --resume or --data said only "no training data"; resuming a finished 1+1-epoch run said
    "resuming ... at epoch 3"."""
    _one_line_error(capsys, run(cli, ["exportpair", str(tmp_path)]), 2,
                    "no command 'exportpair' (did you mean 'export-pair'?); the commands are export-pair, "
                    "import-official, train")
    run_dir = train(tiny_config(data, tmp_path / "r"), progress=False)
    _one_line_error(capsys, run(cli, ["--out", str(tmp_path / "r"), "--name", "run", "-q"]), 2,
                    f"no training data given, and {run_dir} holds a run with checkpoints: add --resume")
    caplog.clear()
    with caplog.at_level("INFO", logger="cgan.trainer.train"):
        train(config_for_resume(run_dir, {}), resume=True, progress=False)
    assert "at epoch 3" not in caplog.text and "has trained all 2 epochs of its schedule" in caplog.text


def test_compile_failing_for_want_of_a_compiler_is_one_line(tmp_path, data, monkeypatch):
    """--compile without a C++ compiler (CPU) failed at the first step in torch's multi-line InductorError
    traceback, leaving a run folder behind."""
    InductorError = type("InductorError", (RuntimeError,), {})

    def step(self, x, y):  # (as torch 2.13 words it: one line, then its hints after a blank line)
        raise InductorError("InvalidCxxCompiler: No working C++ compiler found in torch._inductor.config.cpp.cxx: "
                            "(None, 'g++')\n\nSet TORCHDYNAMO_VERBOSE=1 for the internal stack trace (please do "
                            "this especially if you're reporting a bug to PyTorch). For even more developer "
                            "context, set TORCH_LOGS=\"+dynamo\"\n")

    monkeypatch.setattr(CycleGAN, "train_step", step)
    with pytest.raises(CganError) as e:
        train(tiny_config(data, tmp_path / "r", compile=True, max_steps=2), progress=False)
    assert str(e.value) == ("--compile failed on cpu: InvalidCxxCompiler: No working C++ compiler found in "
                            "torch._inductor.config.cpp.cxx: (None, 'g++') (torch.compile on CPU needs a C++ "
                            "compiler, g++ or clang++); install one, or add --no-compile")
    assert not (tmp_path / "r" / "run").exists()
    from cgan.trainer.train import _compile_advice  # another compile error is not blamed on a compiler

    what, fix = _compile_advice(InductorError("LoweringException: AssertionError: \n  target: aten.foo"), "cuda")
    assert what == ("--compile failed on cuda: LoweringException: AssertionError: (an error inside torch.compile; "
                    "CGAN_DEBUG=1 shows its traceback)") and fix == "add --no-compile"


def test_init_from_a_diverged_pair_is_refused_and_leaves_no_run_folder(tmp_path, data, capsys):
    """A pair of NaN weights used to train until the divergence check blamed --lr, and the refused run left its
    config.json, log.csv and tensorboard/ behind (the clean-up knew no tensorboard folder)."""
    from cgan.pairs import PairSpec
    from cgan.trainer.networks import build_generator
    from cgan.trainer.weights import save_pair

    spec = tiny_config(data, tmp_path).pair_spec()
    nan = {k: v.fill_(float("nan")) if v.is_floating_point() else v
           for k, v in build_generator(spec.generator).state_dict().items()}
    save_pair(tmp_path / "nanpair", PairSpec(spec.generator, "X", "Y"), {"G": nan, "F": nan}, "float32")
    with pytest.raises(CganError, match=r"--init-from .*nanpair: its G has NaN or infinite weights"):
        train(tiny_config(data, tmp_path / "r", max_steps=1, tensorboard=True, init_from=str(tmp_path / "nanpair")),
              progress=False)
    assert not (tmp_path / "r" / "run").exists()


@pytest.mark.parametrize("preprocess,lambda_identity", [("none", 0.5), ("none", 0.0), ("scale_width", 0.5)])
def test_photos_of_different_sizes_train_with_batch_one(tmp_path, preprocess, lambda_identity):
    """--preprocess none / scale_width keep each photo's size: X, Y and pooled fakes differ and must not be joined
    into one batch (they used to be: 'Sizes of tensors must match' at step 1)."""
    root = tmp_path / "mixed"
    make_images(root / "trainA", 3, (40, 200, 60), seed=1, size=(40, 44), shape="circle")
    make_images(root / "trainB", 3, (200, 60, 40), seed=2, size=(52, 36), shape="square")
    cfg = tiny_config(root, tmp_path / "r", preprocess=preprocess, load_size=36, max_steps=4,
                      lambda_identity=lambda_identity)
    run_dir = train(cfg, progress=False)
    pair = load_pair(run_dir / "pair")
    assert pair.spec.generator.ngf == 4 and pair.meta["training"]["steps"] == 4


@pytest.mark.parametrize("sig, code, workers, group", [(signal.SIGTERM, 143, 0, False), (signal.SIGINT, 130, 1, True),
                                                       (signal.SIGTERM, 143, 1, False), (signal.SIGTERM, 143, 2, True)])
def test_signal_saves_a_checkpoint_and_the_pair_then_resume_goes_on(tmp_path, data, sig, code, workers, group):
    """Ctrl-C (to the whole process group, DataLoader workers included) or SIGTERM (`timeout`, a scheduler; to the
    trainer or to the whole group, workers included) used to lose every step since the last epoch-end checkpoint. Now the step finishes, a checkpoint and the pair
    are saved, the exit code says which signal, and --resume continues from that step."""
    import os
    import subprocess
    import sys
    import time

    args = _train_args(tmp_path, data / "trainA", data / "trainB")
    i = args.index("--max-steps")
    args = args[:i] + args[i + 2:] + ["--epochs", "500", "--epochs-decay", "0", "--log-every", "1"]
    args[args.index("--workers") + 1] = str(workers)
    cmd = [sys.executable, "-c", "from cgan.trainer.cli import main; main()", *args]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    log_csv = tmp_path / "out" / "x" / "log.csv"
    deadline = time.time() + 120
    while time.time() < deadline and (not log_csv.is_file() or len(log_csv.read_text().splitlines()) < 4):
        time.sleep(0.2)  # a few steps logged (header + 3 rows)
    os.killpg(proc.pid, sig) if group else proc.send_signal(sig)  # group: as a terminal / `timeout` sends it
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == code, err
    assert "Traceback" not in err and "--resume" in err.strip().splitlines()[-1], err
    assert err.count("stopping after this step") == 1, err  # said once, by the trainer, not by its workers
    run_dir = tmp_path / "out" / "x"
    step = ckpt.load_checkpoint(ckpt.latest_checkpoint(run_dir))["counters"]["step"]
    assert step >= 3 and load_pair(run_dir / "pair").meta["training"]["steps"] == step
    # in-process with workers=0: forking loader workers from the many-threaded pytest process can deadlock
    resumed = train(config_for_resume(run_dir, {"max_steps": step + 2, "workers": 0}), resume=True, progress=False)
    assert ckpt.load_checkpoint(ckpt.latest_checkpoint(resumed))["counters"]["step"] == step + 2


WORKER_SIGNALS = """
import os, signal, sys, time
from cgan.trainer.train import _worker_signals
me = os.getpid()
def worker(trainer_pid):
    pid = os.fork()
    if pid == 0:
        _worker_signals(trainer_pid)
        time.sleep(30)
        os._exit(0)
    return pid
kept = worker(trainer_pid=1)    # stands for a SIGTERM to the whole group: not sent by this worker's trainer
ended = worker(trainer_pid=me)  # the DataLoader ending a worker that did not stop in time
time.sleep(1.0)
for pid in (kept, ended):
    os.kill(pid, signal.SIGTERM)
    os.kill(pid, signal.SIGINT)
_, status = os.waitpid(ended, 0)
assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGTERM, status
time.sleep(1.0)
assert os.waitpid(kept, os.WNOHANG) == (0, 0), "a SIGTERM from another process ended the worker"
os.kill(kept, signal.SIGKILL)
os.waitpid(kept, 0)
print("ok")
"""


WORKER_GROUP = """
import os, signal, sys, time
del signal.sigwaitinfo  # as on macOS
from cgan.trainer.train import _worker_signals
pid = os.fork()
if pid == 0:
    _worker_signals(os.getppid())
    time.sleep(30)
    os._exit(0)
time.sleep(1.0)
signal.signal(signal.SIGTERM, signal.SIG_IGN)  # the trainer handles its own copy (here: ignores it)
os.killpg(os.getpgid(0), signal.SIGTERM)       # `timeout` / `kill -TERM -PGID`: the whole group
time.sleep(1.0)
assert os.waitpid(pid, os.WNOHANG) == (0, 0), "the group's SIGTERM ended the worker"
assert os.getpgid(pid) == pid
os.kill(pid, signal.SIGTERM)                   # the DataLoader's own terminate still ends it
_, status = os.waitpid(pid, 0)
assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGTERM, status
print("ok")
"""


def test_without_sigwaitinfo_workers_leave_the_trainers_process_group():
    """macOS has no sigwaitinfo: there a worker leaves the trainer's process group, so a SIGTERM to the group
    passes it by, and the trainer's own SIGTERM to it still ends it. Simulated here by removing sigwaitinfo."""
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-c", WORKER_GROUP], capture_output=True, text=True, timeout=60,
                       start_new_session=True)  # the script leads its own process group, as a shell job does
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr[-2000:]


def test_loader_workers_end_on_the_trainers_sigterm_only():
    """A SIGTERM to the whole process group or job killed the loader workers, and torch then failed the trainer's
    step ('DataLoader worker is killed by signal') before it could save. The workers now drop a SIGTERM from
    anyone but their trainer (the trainer stops on its own copy), and still end on the trainer's, which the
    DataLoader sends to a worker that does not stop in time. Run in a fresh process (it forks)."""
    import signal
    import subprocess
    import sys

    if not hasattr(signal, "sigwaitinfo"):
        pytest.skip("no sigwaitinfo here: the workers keep SIGTERM's default")
    r = subprocess.run([sys.executable, "-c", WORKER_SIGNALS], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr[-2000:]


WORKERS_BORN_BLOCKED = """
import os, signal, sys
import torch
from cgan.trainer.train import _workers_started

class Masks(torch.utils.data.Dataset):
    def __len__(self):
        return 2
    def __getitem__(self, i):
        return 0

def first_thing(_):  # the worker's state as it was forked (before cgan's own worker set-up would run)
    blocked = signal.SIGTERM in signal.pthread_sigmask(signal.SIG_BLOCK, [])
    os.write(w, b"1" if blocked else b"0")
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})  # (cgan's set-up takes it over here; the
    #                                                                DataLoader's shut-down may SIGTERM the worker)

r, w = os.pipe()
loader = torch.utils.data.DataLoader(Masks(), num_workers=1, worker_init_fn=first_thing)
it = _workers_started(loader)
next(it)
child = os.read(r, 1)
parent = signal.SIGTERM in signal.pthread_sigmask(signal.SIG_BLOCK, [])
print("ok" if child == b"1" and not parent else f"child blocked {child!r}, parent blocked {parent}")
"""


def test_loader_workers_are_born_with_sigterm_blocked():
    """A SIGTERM to the process group 8-12 ms after the workers were forked came before their own handling was
    set up: torch's handler ended the worker, and the run ended with a traceback, unsaved (5 times in 6). The
    workers are now forked with SIGTERM blocked (it waits for cgan's handling); the trainer's mask is restored."""
    import signal
    import subprocess
    import sys

    if not hasattr(signal, "pthread_sigmask"):
        pytest.skip("no pthread_sigmask here")
    r = subprocess.run([sys.executable, "-c", WORKERS_BORN_BLOCKED], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.strip() == "ok", (r.stdout, r.stderr[-2000:])


def test_a_damaged_image_met_by_a_loader_worker_is_one_line(tmp_path):
    """With --workers > 0 torch re-raises a worker's CganError with the worker's whole traceback in the message:
    the CLI printed it all. One line, the original message. Reads fail only inside the loader worker, as for a
    photo removed while training. Run in a fresh process: forking loader workers from the many-threaded pytest
    process can deadlock."""
    import subprocess
    import sys

    root = make_dataset(tmp_path / "d", n_x=2, n_y=2)
    args = _train_args(tmp_path, root / "trainA", root / "trainB")
    args[args.index("--workers") + 1] = "1"
    args[args.index("--max-steps") + 1] = "8"
    script = (
        "import multiprocessing, sys, torch\n"
        "if multiprocessing.get_start_method() != 'fork': sys.exit(77)\n"
        "from cgan.trainer import data\n"
        "real = data.read_rgb\n"
        "data.read_rgb = lambda p, *a, **k: None if torch.utils.data.get_worker_info() is not None else real(p)\n"
        "from cgan.trainer.cli import main\n"
        "main()\n")
    proc = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, timeout=180)
    if proc.returncode == 77:
        pytest.skip("the patched reader reaches the loader worker only when it is forked")
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert proc.returncode != 0 and "Traceback" not in proc.stderr, proc.stderr
    assert len(lines) == 1 and lines[0].startswith("error: cannot read training image"), proc.stderr

def test_sizes_the_networks_cannot_take_are_refused_up_front(tmp_path):
    """--size 8..20 passed validation and crashed in the discriminator (three stride-2 layers need 24 px);
    --seed -1 failed in every data item; tiny photos under --preprocess none are enlarged."""
    data = make_dataset(tmp_path / "d")
    with pytest.raises(CganError, match="at least 24"):
        tiny_config(data, tmp_path, size=16, load_size=20, n_layers_d=3)
    with pytest.raises(CganError, match="--seed"):
        tiny_config(data, tmp_path, seed=-1)
    with pytest.raises(CganError, match="--load-size must be at least"):
        tiny_config(data, tmp_path, preprocess="scale_width", load_size=4)
    root = tmp_path / "tiny"
    for side, (h, w) in (("trainA", (12, 16)), ("trainB", (16, 12))):
        (root / side).mkdir(parents=True)
        for i in range(2):
            cv2.imwrite(str(root / side / f"{i}.png"), np.full((h, w, 3), 60 * i + 40, np.uint8))
    run_dir = train(tiny_config(root, tmp_path / "r", preprocess="none", n_layers_d=3, size=24, load_size=24,
                                max_steps=2), progress=False)
    assert (run_dir / "pair" / "pair.json").is_file()


def test_rewriting_a_pair_that_fails_halfway_keeps_the_old_pair(tmp_path, monkeypatch):
    """save_pair replaced G, then F, then pair.json one by one: a full disk while writing F left the new G beside
    the old pair.json, which then failed its hash check. All weights are written before any is replaced."""
    from cgan.spec import GeneratorSpec, PairSpec
    from cgan.trainer.networks import build_generator
    from cgan.trainer.weights import save_pair

    spec = PairSpec(GeneratorSpec(blocks=1, ngf=4), "summer", "winter")
    folder = save_pair(tmp_path / "pair", spec, {g: build_generator(spec.generator).state_dict() for g in "GF"})
    before = {f.name: f.read_bytes() for f in folder.iterdir()}
    real, calls = Path.write_bytes, []

    def disk_full_on_second(self, data):
        if "safetensors" in self.name:  # the weight files' temp names; the second is F's
            calls.append(1)
            if len(calls) == 2:
                raise OSError(28, "No space left on device")
        return real(self, data)

    monkeypatch.setattr(Path, "write_bytes", disk_full_on_second)
    with pytest.raises(OSError):
        save_pair(folder, spec, {g: build_generator(spec.generator).state_dict() for g in "GF"})
    assert len(calls) == 2
    assert {f.name: f.read_bytes() for f in folder.iterdir()} == before
    load_pair(folder)


def test_an_interrupt_while_a_rewritten_pair_is_hashed_or_listed_keeps_the_old_pair(tmp_path, monkeypatch):
    """The new weight files were renamed into place before they were hashed and pair.json written: a Ctrl-C,
    a kill or a full disk in that window (two full hashes of an ngf-64 pair) left new weights beside the old
    pair.json, which then failed its sha256 check. Now all are renamed together, pair.json last."""
    from cgan.spec import GeneratorSpec, PairSpec
    from cgan.trainer import weights
    from cgan.trainer.networks import build_generator

    spec = PairSpec(GeneratorSpec(blocks=1, ngf=4), "summer", "winter")
    folder = weights.save_pair(tmp_path / "pair", spec, {g: build_generator(spec.generator).state_dict()
                                                         for g in "GF"})
    before = {f.name: f.read_bytes() for f in folder.iterdir()}
    real_record, real_json = weights.file_record, weights.write_pair_json
    for where in ("hashing F", "writing pair.json"):
        calls = []

        def record(*a, **kw):
            calls.append(1)
            if where == "hashing F" and len(calls) == 2:
                raise KeyboardInterrupt
            return real_record(*a, **kw)

        def listing(*a, **kw):
            if where == "writing pair.json":
                raise OSError(28, "No space left on device")
            return real_json(*a, **kw)

        monkeypatch.setattr(weights, "file_record", record)
        monkeypatch.setattr(weights, "write_pair_json", listing)
        with pytest.raises((KeyboardInterrupt, OSError)):
            weights.save_pair(folder, spec, {g: build_generator(spec.generator).state_dict() for g in "GF"},
                              dtype="float16")
        assert {f.name: f.read_bytes() for f in folder.iterdir()} == before, where
        load_pair(folder)


def test_resume_applies_changed_lr_beta1_pool_and_switches_and_forgets_max_steps(tmp_path, data):
    """On --resume, --lr / --beta1 / --pool-size were recorded as given but the saved optimizer and pool state
    kept the old ones; --max-steps of a smoke run was carried over (every later --resume trained 0 steps);
    switches like --no-flip could not be turned back on."""
    run_dir = train(tiny_config(data, tmp_path / "r", max_steps=2, flip=False), progress=False)
    cfg = config_for_resume(run_dir, {"lr": 1e-4, "beta1": 0.9, "pool_size": 1, "flip": True})
    assert cfg.max_steps is None and cfg.flip is True
    model = CycleGAN(cfg, torch.device("cpu"))
    saved = ckpt.load_checkpoint(ckpt.latest_checkpoint(run_dir))
    model.load_state_dict(saved)
    model.sync_lr()
    for opt in (model.opt_G, model.opt_D):
        assert opt.param_groups[0]["lr"] == pytest.approx(1e-4) and opt.param_groups[0]["betas"][0] == 0.9
    kept = saved["pools"]["X"]["images"]
    assert len(kept) == 2  # two steps: two fakes stored; the smaller pool keeps the first
    assert model.pool_X.size == 1 and len(model.pool_X.images) == 1 and torch.equal(model.pool_X.images[0], kept[0])
    resumed = train(config_for_resume(run_dir, {"max_steps": 3, "lr": 1e-4}), resume=True, progress=False)
    assert load_pair(resumed / "pair").meta["training"]["steps"] == 3


def test_resume_with_another_crop_size_refills_the_fake_history(tmp_path, data):
    """docs/training.md: --size given on --resume takes effect. The saved pools held fakes of the old size, and
    with --batch-size 2 a batch mixing old and new sizes ended the run in a torch.cat traceback."""
    run_dir = train(tiny_config(data, tmp_path / "r", max_steps=2, batch_size=2, pool_size=4), progress=False)
    assert len(ckpt.load_checkpoint(ckpt.latest_checkpoint(run_dir))["pools"]["X"]["images"]) == 4
    train(config_for_resume(run_dir, {"max_steps": 4, "size": 48, "load_size": 52}), resume=True, progress=False)
    saved = ckpt.load_checkpoint(ckpt.latest_checkpoint(run_dir))
    assert saved["counters"]["step"] == 4
    assert {tuple(t.shape[-2:]) for t in saved["pools"]["X"]["images"]} == {(48, 48)}


def test_resume_mid_epoch_with_another_batch_size_goes_on_after_the_images_seen(tmp_path, data, caplog):
    """A checkpoint's step_in_epoch counts steps of its own batch size: resumed with another --batch-size it was
    taken as steps of the new one, so the rest of the epoch re-used or skipped images. Now the epoch goes on after
    the images already seen (4 X images: 1 step of batch 2 = 2 images, then 2 steps of batch 1 end the epoch)."""
    run_dir = train(tiny_config(data, tmp_path / "r", max_steps=1, batch_size=2), progress=False)
    assert ckpt.load_checkpoint(ckpt.latest_checkpoint(run_dir))["counters"]["step_in_epoch"] == 1
    with caplog.at_level("WARNING", logger="cgan.trainer.train"):
        train(config_for_resume(run_dir, {"max_steps": 3, "batch_size": 1}), resume=True, progress=False)
    counters = ckpt.load_checkpoint(ckpt.latest_checkpoint(run_dir))["counters"]
    assert (counters["step"], counters["epoch"], counters["step_in_epoch"]) == (3, 1, 0), counters
    assert "images per step changed from 2 to 1" in caplog.text


def test_a_full_disk_while_checkpointing_is_one_line_and_keeps_the_previous_checkpoint(tmp_path, data, monkeypatch):
    run_dir = train(tiny_config(data, tmp_path / "r", max_steps=1), progress=False)
    before = ckpt.list_checkpoints(run_dir)

    def full(*a, **k):
        raise RuntimeError("[enforce fail at inline_container.cc:603] . unexpected pos 64 vs 0 file write failed")

    monkeypatch.setattr(ckpt.torch, "save", full)
    with pytest.raises(CganError, match=r"cannot write checkpoint .*no space left on the device.*--resume"):
        ckpt.save_checkpoint(run_dir, {"counters": {"step": 99}})
    assert ckpt.list_checkpoints(run_dir) == before and not list((run_dir / "checkpoints").glob(".step-*.tmp"))
    # the advice follows the cause: a full disk's "free disk space" was said for a folder without write permission
    import errno

    for code, advice in ((errno.EACCES, "make .*checkpoints writable and continue with --resume"),
                         (errno.EROFS, "make .*checkpoints writable"),
                         (errno.ENOTDIR, "move away the file in the way of .*checkpoints"),
                         (errno.ENOSPC, "free disk space and continue with --resume"),
                         (errno.EIO, "fix that and continue with --resume")):
        def refused(*a, code=code, **k):
            raise OSError(code, os.strerror(code))

        monkeypatch.setattr(ckpt.torch, "save", refused)
        with pytest.raises(CganError, match=rf"cannot write checkpoint .*: {os.strerror(code)}; the previous "
                                            rf"checkpoint \S+ is intact; {advice}"):
            ckpt.save_checkpoint(run_dir, {"counters": {"step": 99}})

    def no_memory(*a, **k):  # (the CPU allocator's words start as a cut-short write's do)
        raise RuntimeError("[enforce fail at alloc_cpu.cpp:127] data. DefaultCPUAllocator: can't allocate memory")

    monkeypatch.setattr(ckpt.torch, "save", no_memory)
    with pytest.raises(CganError, match=r"out of memory while saving; the previous checkpoint \S+ is intact; free "
                                        r"memory and continue"):
        ckpt.save_checkpoint(run_dir, {"counters": {"step": 99}})


def test_one_trainer_per_run_folder_and_a_log_without_repeated_steps(tmp_path, data):
    """A second trainer on the same run folder deleted the first one's checkpoint writes; after a crash and
    --resume, log.csv repeated the steps trained after the last checkpoint (step numbers went backwards)."""
    import csv

    from filelock import FileLock

    run_dir = train(tiny_config(data, tmp_path / "r", max_steps=4, log_every=1, save_every_steps=2), progress=False)
    newest = ckpt.latest_checkpoint(run_dir)
    newest.unlink()  # as if the run died after step 4 was logged but before its checkpoint
    with open(run_dir / "log.csv", "a") as f:
        f.write("5,1,0.0002")  # ... in the middle of writing a row
    with FileLock(str(run_dir / ".lock")):
        with pytest.raises(CganError, match="another cgan-train is running"):
            train(config_for_resume(run_dir, {"max_steps": 5}), resume=True, progress=False)
    train(config_for_resume(run_dir, {"max_steps": 5}), resume=True, progress=False)
    with open(run_dir / "log.csv", newline="") as f:
        steps = [int(r["step"]) for r in csv.DictReader(f)]
    assert steps == [1, 2, 3, 4, 5]


def test_malformed_checkpoint_parts_are_one_line(tmp_path, data):
    """A mistyped field in a checkpoint's config ({"size": "x"}) and a checkpoint without G were tracebacks."""
    from cgan.trainer.config import TrainConfig

    with pytest.raises(CganError, match="wrong type"):
        TrainConfig.from_dict({"name": "x", "size": "x"})
    run_dir = train(tiny_config(data, tmp_path / "r", max_steps=1), progress=False)
    path = ckpt.latest_checkpoint(run_dir)
    state = ckpt.load_checkpoint(path)
    del state["nets"]["G"]
    torch.save(state, path)
    with pytest.raises(IntegrityError, match="not a complete cgan-train checkpoint"):
        export_pair(run_dir, out=tmp_path / "p")


def test_a_finished_run_without_checkpoints_is_not_trained_over(tmp_path, data, capsys):
    """With its checkpoints removed to save disk, a finished run's folder took a new training that replaced its
    pair and appended to its log."""
    import shutil

    run_dir = train(tiny_config(data, tmp_path / "r", max_steps=2), progress=False)
    shutil.rmtree(run_dir / "checkpoints")
    before = (run_dir / "pair" / "G.safetensors").read_bytes()
    code = run(cli, ["train", "--data", str(data), "--out", str(tmp_path / "r"), "--name", "run", "--size", "32",
                     "--load-size", "36", "--blocks", "1", "--ngf", "4", "--ndf", "4", "--device", "cpu",
                     "--workers", "0", "--max-steps", "1", "-q"])
    _one_line_error(capsys, code, 2, "already holds a trained pair", "another --name")
    assert (run_dir / "pair" / "G.safetensors").read_bytes() == before


def test_the_last_log_row_has_the_epoch_and_rate_its_steps_trained_at(tmp_path, data):
    """4 images a step at a time: 4 steps an epoch, 2 + 2 epochs = 16 steps; with --log-every 5 the last row
    (step 16) was written after the epoch's end and read epoch 5 of 4 at rate 0."""
    import csv

    run_dir = train(tiny_config(data, tmp_path / "r", epochs=2, epochs_decay=2, log_every=5), progress=False)
    with open(run_dir / "log.csv", newline="") as f:
        rows = [(int(r["step"]), int(r["epoch"]), float(r["lr_G"]), float(r["lr_D"])) for r in csv.DictReader(f)]
    assert [r[:2] for r in rows] == [(5, 2), (10, 3), (15, 4), (16, 4)]
    assert rows[-1][2] == rows[-1][3] == pytest.approx(2e-4 / 3) and rows[-2][2] == pytest.approx(2e-4 / 3)


def test_a_run_that_died_before_its_first_checkpoint_starts_a_fresh_log(tmp_path, data):
    """Its rows stayed and the new run's were appended after them: steps 1..6 then 1..3."""
    import csv

    run_dir = tmp_path / "r" / "run"
    run_dir.mkdir(parents=True)
    (run_dir / "log.csv").write_text("step,epoch,lr_G\n1,1,0.0002\n2,1,0.0002\n3,1,0.0002\n")
    train(tiny_config(data, tmp_path / "r", max_steps=3, log_every=1), progress=False)
    with open(run_dir / "log.csv", newline="") as f:
        assert [int(r["step"]) for r in csv.DictReader(f)] == [1, 2, 3]


def test_tensorboard_hides_the_steps_trained_again(tmp_path, data):
    """A dead run's events (steps 1..6, no checkpoint) and a resumed run's events after its checkpoint are
    purged by TensorBoard (SummaryWriter's purge_step): each step shows once."""
    import time

    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from torch.utils.tensorboard import SummaryWriter

    run_dir = tmp_path / "r" / "run"
    dead = SummaryWriter(str(run_dir / "tensorboard"))
    for step in range(1, 7):
        dead.add_scalar("lr_G", 1.0, step)
    dead.close()
    for f in (run_dir / "tensorboard").iterdir():  # written by an earlier process: named by an earlier second
        parts = f.name.split(".")  # events.out.tfevents.<seconds>.<host>.<pid>.<n> (read in name order)
        parts[3] = str(int(parts[3]) - 100)
        f.rename(f.with_name(".".join(parts)))
    train(tiny_config(data, tmp_path / "r", max_steps=3, log_every=1, tensorboard=True, save_every_steps=2),
          progress=False)
    ckpt.latest_checkpoint(run_dir).unlink()  # step 3's checkpoint lost: resumed from step 2
    time.sleep(1.1)  # the resumed run's event file is named by a later second than the first one's, as it would be
    train(config_for_resume(run_dir, {"max_steps": 4}), resume=True, progress=False)

    def steps() -> list[int]:
        acc = EventAccumulator(str(run_dir / "tensorboard"))
        acc.Reload()
        return [e.step for e in acc.Scalars("lr_G")]

    assert steps() == [1, 2, 3, 4]
    assert all(v.value == pytest.approx(2e-4) for v in EventAccumulator(str(run_dir / "tensorboard")).Reload()
               .Scalars("lr_G"))


def test_loader_workers_start_after_large_photos_were_listed(tmp_path):
    """Listing 4000x3000 photos starts OpenCV's thread pool in the trainer; cv2.setNumThreads in a forked loader
    worker then deadlocked, and a run with --workers (default 4) hung before its first step, for ever. Run in a
    child with a timeout, so that a hang fails the test instead of the suite."""
    import subprocess
    import sys

    rng = np.random.default_rng(0)
    for side in ("trainA", "trainB"):
        (tmp_path / "photos" / side).mkdir(parents=True)
        for i in range(2):
            cv2.imwrite(str(tmp_path / "photos" / side / f"{i}.jpg"),
                        rng.integers(0, 256, (3000, 4000, 3), dtype=np.uint8))
    cmd = [sys.executable, "-m", "cgan.trainer.cli", "train", "--data", str(tmp_path / "photos"), "--out",
           str(tmp_path / "runs"), "--name", "big", "--size", "32", "--load-size", "36", "--ngf", "4", "--ndf", "4",
           "--blocks", "1", "--device", "cpu", "--threads", "1", "--epochs", "1", "--epochs-decay", "0",
           "--workers", "2", "-q"]
    child = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = child.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        import os
        import signal as _signal

        os.killpg(child.pid, _signal.SIGKILL)  # the trainer and its stuck workers
        child.communicate()
        pytest.fail("the run with loader workers hung before its first step")
    assert child.returncode == 0, err
    assert (tmp_path / "runs" / "big" / "pair" / "pair.json").is_file()


def test_a_ctrl_c_while_starting_leaves_no_run_folder(tmp_path, data, monkeypatch):
    """A Ctrl-C before the first step (listing a large data set, say) left a run folder holding only .lock."""
    import cgan.trainer.train as train_module

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(train_module, "list_images", interrupted)
    with pytest.raises(KeyboardInterrupt):
        train(tiny_config(data, tmp_path / "r", max_steps=1), progress=False)
    assert not (tmp_path / "r" / "run").exists()
