"""Full training checkpoints: written atomically, loaded without executing pickled code.

A checkpoint is `torch.save` of a plain dict (tensors, numbers, strings, lists, dicts) read back with
`torch.load(weights_only=True)`:

    {"format": "cgan.train-checkpoint", "version": 1,
     "spec": PairSpec dict, "config": TrainConfig dict,
     "counters": {"epoch", "step_in_epoch", "step", "seconds"},
     "nets": {"G", "F", "D_X", "D_Y"}, "optim": {"G", "D"}, "sched": {"G", "D"}, "scaler": {"G", "D"},
     "pools": {"X", "Y"}, "rng": {"python", "numpy", "torch", "cuda"},
     "ranks": [{"pools", "rng"} of process 1, 2, ...]}  (under torchrun; "pools" and "rng" are rank 0's)

Files are RUN/checkpoints/step-000000123.pt; the newest `keep` are kept.
"""
from __future__ import annotations

import errno
import logging
import os
import random
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cgan._files import atomic_path
from cgan.errors import CganError, IntegrityError
from cgan.trainer.pool import python_rng_from, python_rng_state
from cgan.trainer.weights import load_plain

log = logging.getLogger(__name__)

FORMAT = "cgan.train-checkpoint"
VERSION = 1
_NAME = re.compile(r"^step-(\d{9,})\.pt$")


def checkpoint_dir(run_dir: str | os.PathLike) -> Path:
    return Path(run_dir) / "checkpoints"


def list_checkpoints(run_dir: str | os.PathLike) -> list[Path]:
    """Checkpoints of a run, oldest first."""
    folder = checkpoint_dir(run_dir)
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := _NAME.match(p.name))]
    return [p for _, p in sorted(found)]


def latest_checkpoint(run_dir: str | os.PathLike,
                      advice: str = "nothing to resume; start without --resume") -> Path:
    """The newest checkpoint; none is a CganError "no checkpoint in RUN/checkpoints: ADVICE"."""
    found = list_checkpoints(run_dir)
    if not found:
        raise CganError(f"no checkpoint in {checkpoint_dir(run_dir)}: {advice}")
    return found[-1]


def save_checkpoint(run_dir: str | os.PathLike, state: dict[str, Any], keep: int = 3) -> Path:
    """Write RUN/checkpoints/step-N.pt atomically, then delete all but the newest `keep`."""
    step = int(state["counters"]["step"])
    path = checkpoint_dir(run_dir) / f"step-{step:09d}.pt"
    state = {"format": FORMAT, "version": VERSION, **state}
    for stale in checkpoint_dir(run_dir).glob(".step-*.tmp"):  # left by a write that was killed (kill -9, power cut)
        stale.unlink(missing_ok=True)
    try:
        with atomic_path(path) as tmp:
            torch.save(state, tmp)
    except (OSError, RuntimeError) as e:  # torch reports a full disk as RuntimeError ("file write failed")
        reason = getattr(e, "strerror", None) or (str(e).splitlines() or [type(e).__name__])[0][:200]
        code = getattr(e, "errno", None)
        if "can't allocate memory" in reason:  # (the CPU allocator's words also start "[enforce fail at")
            reason, fix = "out of memory while saving", "free memory"
        elif "enforce fail" in reason or "unexpected pos" in reason or "file write failed" in reason:
            # torch's own words for a write cut short ("[enforce fail at inline_container.cc:672] . unexpected
            # pos ..."): a full disk or a file size limit, in practice
            reason = "the write was cut short (no space left on the device, or a file size limit?)"
            fix = "free disk space"
        elif code in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
            fix = "free disk space"
        elif code in (errno.EACCES, errno.EPERM, errno.EROFS):
            fix = f"make {path.parent} writable"
        elif code in (errno.EEXIST, errno.ENOTDIR):
            fix = f"move away the file in the way of {path.parent}"
        else:
            fix = "fix that"
        found = list_checkpoints(run_dir)
        previous = found[-1] if found else None
        kept = (f"the previous checkpoint {previous.name} is intact; {fix} and continue with --resume"
                if previous is not None else f"no checkpoint of this run was saved yet; {fix} and start again")
        raise CganError(f"cannot write checkpoint {path}: {reason}; {kept}") from None
    for old in list_checkpoints(run_dir)[:-keep]:
        old.unlink(missing_ok=True)
    return path


RESUME_FIX = "delete it to resume from the previous one"


def load_checkpoint(path: str | os.PathLike, fix: str = RESUME_FIX) -> dict[str, Any]:
    """Read and check a checkpoint (refuses pickled code, foreign and truncated files with one line ending in
    `fix`, what to do: a resume deletes a bad newest checkpoint, an export given --checkpoint FILE takes another)."""
    p = Path(path)
    state = load_plain(p, "cgan checkpoint", f"truncated, corrupted or not ours: {fix}", damaged_advice=fix)
    if isinstance(state, dict) and "model.1.weight" in state and "format" not in state:
        raise IntegrityError(f"{p} is an official generator, not a cgan training checkpoint: turn it into a pair "
                             f"with cgan-train import-official")
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise IntegrityError(f"{p} is not a cgan training checkpoint (format != {FORMAT!r}): {fix}")
    if state.get("version") != VERSION:
        raise IntegrityError(f"{p} has checkpoint version {state.get('version')!r}, this cgan reads {VERSION}")
    missing = [k for k in ("spec", "config", "counters", "nets", "optim", "sched", "pools", "rng") if k not in state]
    if missing:
        raise IntegrityError(f"{p} is an incomplete cgan checkpoint (missing {missing})")
    # parts with the wrong type (a foreign or hand-edited file): one line here instead of a traceback later
    wrong = [k for k in ("spec", "config", "counters", "nets", "optim", "sched", "pools", "rng")
             if not isinstance(state[k], dict)]
    counters = state["counters"] if isinstance(state["counters"], dict) else {}
    if not wrong and not all(type(counters.get(k)) is int and counters[k] >= 0
                             for k in ("epoch", "step_in_epoch", "step")):
        wrong = ["counters"]
    if wrong:
        raise IntegrityError(f"{p} is a malformed cgan checkpoint ({', '.join(wrong)} not as cgan writes them); "
                             f"{fix}")
    from cgan.trainer.config import TrainConfig

    try:
        TrainConfig.from_dict(state["config"])
    except CganError as e:
        raise IntegrityError(f"{p} holds an unusable training config ({e})") from None
    return state


# ---- random number generators -------------------------------------------------------------------------
def capture_rng() -> dict[str, Any]:
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    out = {"python": python_rng_state(random.getstate()),
           "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                     "has_gauss": int(has_gauss), "cached": float(cached)},
           "torch": torch.get_rng_state(), "cuda": []}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        out["cuda"] = list(torch.cuda.get_rng_state_all())
    return out


def restore_rng(state: dict[str, Any]) -> None:
    random.setstate(python_rng_from(state["python"]))
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"]))
    torch.set_rng_state(state["torch"])
    if state.get("cuda") and torch.cuda.is_available():
        if len(state["cuda"]) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(state["cuda"])
        else:
            log.warning("warning: checkpoint has CUDA RNG states for %d GPUs, this machine has %d: not restored",
                        len(state["cuda"]), torch.cuda.device_count())
