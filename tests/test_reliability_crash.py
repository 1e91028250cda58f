"""Crashes: kill -9 of `cgan-train` (during a checkpoint write and at other moments) and of `cgan-export`
mid-write; two exports into one folder at once."""
from __future__ import annotations

import csv
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from _helpers_trainer import make_dataset
from cgan.trainer import checkpoint as ckpt

INTERVAL = 2  # --save-every-steps


def _env() -> dict[str, str]:
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    return env


def _train_cmd(data: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "cgan.trainer.cli", "--data", str(data), "--out", str(out), "--name", "r",
            "--blocks", "1", "--ngf", "4", "--ndf", "4", "--size", "32", "--load-size", "36",
            "--epochs", "50", "--epochs-decay", "0", "--save-every-steps", str(INTERVAL), "--keep", "3",
            "--workers", "0", "--device", "cpu", "--log-every", "1", "--no-tensorboard", "-q", *extra]


def _last_logged_step(run_dir: Path) -> int:
    with open(run_dir / "log.csv", newline="") as f:
        steps = [int(r["step"]) for r in csv.DictReader(f) if r.get("step", "").isdigit()]
    return max(steps)


def _kill_when(proc: subprocess.Popen, ckdir: Path, when: str, timeout: float = 60.0) -> str:
    """SIGKILL `proc` at a moment chosen by `when`; returns what was seen at that moment."""
    t0 = time.perf_counter()
    seen_first = None
    while time.perf_counter() - t0 < timeout:
        if proc.poll() is not None:
            raise AssertionError(f"training ended before the kill ({when}): {proc.stderr.read()}")
        names = os.listdir(ckdir) if ckdir.is_dir() else []
        tmp = [n for n in names if n.endswith(".tmp")]
        done = [n for n in names if n.startswith("step-")]
        if when == "during-write" and tmp and len(done) >= 1:
            proc.send_signal(signal.SIGKILL)
            return f"tmp {tmp}"
        if done and seen_first is None:
            seen_first = time.perf_counter()
        if when == "after-3" and len(done) >= 3 and seen_first is not None:
            proc.send_signal(signal.SIGKILL)
            return "after 3 checkpoints"
        if when == "between" and seen_first is not None and time.perf_counter() - seen_first > 0.37:
            proc.send_signal(signal.SIGKILL)
            return "0.37 s after the first checkpoint"
        time.sleep(0.0005 if when == "during-write" else 0.01)
    proc.kill()
    raise AssertionError(f"no moment for {when} within {timeout} s")


def _check_run_after_kill(run_dir: Path) -> int:
    """Every checkpoint under a final name is complete; no .tmp survives under a final name; return latest step."""
    found = ckpt.list_checkpoints(run_dir)
    assert found, "a checkpoint written before the kill is gone"
    for p in found:
        state = ckpt.load_checkpoint(p)  # raises IntegrityError for a half-written file
        assert state["counters"]["step"] == int(p.name[5:14])
    return int(found[-1].name[5:14])


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("rel_crash_data"), n_x=4, n_y=3)


def test_kill_9_training_then_resume_loses_at_most_one_interval(tmp_path, data, caplog):
    """One run killed three times (mid checkpoint write, 0.37 s after a checkpoint, after 3 checkpoints), resumed
    after each kill; each time the latest checkpoint is complete and at most one interval behind, and the
    resumed run finishes with a pair and no leftover temp files."""
    out = tmp_path / "runs"
    run_dir = out / "r"
    latest = None
    T0 = time.perf_counter()
    for when in ("during-write", "between", "after-3"):
        extra = ["--max-steps", "400"] + (["--resume"] if latest is not None else [])
        proc = subprocess.Popen(_train_cmd(data, out, *extra), env=_env(), stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True)
        try:
            if latest is not None:  # wait for the resumed run to write past where it started
                _wait_for(lambda: int(ckpt.list_checkpoints(run_dir)[-1].name[5:14]) > latest, proc)
            moment = _kill_when(proc, run_dir / "checkpoints", when)
            print(f"{when}: killed at {time.perf_counter() - T0:.1f} s ({moment})", flush=True)
        finally:
            proc.wait(timeout=30)
            proc.stderr.close()
        assert proc.returncode == -signal.SIGKILL
        latest = _check_run_after_kill(run_dir)
        logged = _last_logged_step(run_dir)
        assert logged - latest <= INTERVAL, f"{moment}: trained to step {logged}, latest checkpoint {latest}"
    # the last resume (in this process: no second torch start-up) continues from the latest checkpoint
    from cgan._cli import run
    from cgan.trainer.cli import cli

    target = latest + 3
    with caplog.at_level(logging.INFO):
        code = run(cli, _train_cmd(data, out, "--resume", "--max-steps", str(target))[3:])
    assert code == 0, caplog.text
    assert f"step {latest}" in caplog.text, caplog.text  # "resuming ... at epoch E, step N"
    assert _last_logged_step(run_dir) == target
    assert (run_dir / "pair" / "pair.json").is_file()
    leftovers = [p.name for p in (run_dir / "checkpoints").iterdir() if p.name.endswith(".tmp")]
    assert not leftovers, f"a killed checkpoint write left {leftovers} behind"


def _wait_for(cond, proc, timeout: float = 60.0) -> None:
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        if proc.poll() is not None:
            raise AssertionError(f"resumed training ended early: {proc.stderr.read()}")
        try:
            if cond():
                return
        except Exception:  # noqa: BLE001 - a checkpoint being deleted by `keep` while we look
            pass
        time.sleep(0.05)
    raise AssertionError("resumed training made no progress")
