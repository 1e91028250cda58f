"""Under torchrun, --resume continues exactly, as it does in one process: each process's history of fakes and its
RNG states are saved and given back to that process (rank 0's alone were saved, and loaded by every process:
160 tensors of a resumed two-process run differed from the straight run's). Two gloo processes on the CPU."""
from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import pytest
import torch
from _helpers_trainer import make_dataset, tiny_config

from cgan.trainer import checkpoint as ckpt
from cgan.trainer.train import train


def _rank(rank: int, root: str, port: int, name: str, max_steps: int | None, resume: bool) -> None:
    import os

    os.environ.update(RANK=str(rank), WORLD_SIZE="2", LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    cfg = tiny_config(Path(root), Path(root) / "r", name=name, epochs=2, epochs_decay=2, pool_size=2, threads=1,
                      max_steps=max_steps)
    try:
        train(cfg, resume=resume, progress=False)
        ended = {"error": None}
    except Exception as e:  # (said in the assertion below)
        ended = {"error": f"{type(e).__name__}: {e}"}
    (Path(root) / f"{name}-rank{rank}.json").write_text(json.dumps(ended))


def _run(root: Path, name: str, max_steps: int | None = None, resume: bool = False) -> None:
    import torch.multiprocessing as mp

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ranks = mp.spawn(_rank, args=(str(root), port, name, max_steps, resume), nprocs=2, join=False)
    deadline = time.monotonic() + 120
    try:
        while any(p.is_alive() for p in ranks.processes) and time.monotonic() < deadline:
            time.sleep(0.2)
        hung = [i for i, p in enumerate(ranks.processes) if p.is_alive()]
    finally:
        for p in ranks.processes:
            if p.is_alive():
                p.kill()
                p.join(5)
    assert not hung, f"ranks {hung} hung"
    for r in (0, 1):
        assert json.loads((root / f"{name}-rank{r}.json").read_text()) == {"error": None}


def _tensors(tree, prefix=""):
    """Every tensor (and number) of a checkpoint part, by its path."""
    if isinstance(tree, dict):
        for k, v in tree.items():
            yield from _tensors(v, f"{prefix}/{k}")
    elif isinstance(tree, (list, tuple)):
        for i, v in enumerate(tree):
            yield from _tensors(v, f"{prefix}/{i}")
    else:
        yield prefix, tree


def _differences(a: dict, b: dict, parts: tuple[str, ...]) -> list[str]:
    flat_a = dict(_tensors({k: a[k] for k in parts}))
    flat_b = dict(_tensors({k: b[k] for k in parts}))
    assert flat_a.keys() == flat_b.keys()
    return [k for k in flat_a if not (torch.equal(flat_a[k], flat_b[k]) if isinstance(flat_a[k], torch.Tensor)
                                      else flat_a[k] == flat_b[k])]


@pytest.mark.timeout(400)
def test_a_resumed_two_process_run_ends_as_the_straight_run(tmp_path):
    make_dataset(tmp_path, n_x=8, n_y=6)  # 4 steps per epoch on each process, 16 in all
    _run(tmp_path, "straight")
    _run(tmp_path, "resumed", max_steps=5)  # mid-epoch 2, the pools (2 fakes) full and swapping
    cut = ckpt.load_checkpoint(ckpt.list_checkpoints(tmp_path / "r" / "resumed")[-1])
    assert cut["counters"]["step"] == 5
    # each process has its own history, its own draws
    assert len(cut["ranks"]) == 1
    assert not torch.equal(cut["pools"]["X"]["images"][0], cut["ranks"][0]["pools"]["X"]["images"][0])
    assert not torch.equal(cut["pools"]["X"]["rng"]["state"], cut["ranks"][0]["pools"]["X"]["rng"]["state"])
    _run(tmp_path, "resumed", resume=True)

    straight = ckpt.load_checkpoint(ckpt.list_checkpoints(tmp_path / "r" / "straight")[-1])
    resumed = ckpt.load_checkpoint(ckpt.list_checkpoints(tmp_path / "r" / "resumed")[-1])
    assert straight["counters"]["step"] == resumed["counters"]["step"] == 16
    assert _differences(straight, resumed, ("nets", "optim", "pools", "ranks")) == []
