"""Under torchrun, a training image that fails on one process ends every process at the same step, and rank 0
saves the steps trained since the last checkpoint; a diverged run ends every process with the same message (two
gloo processes on the CPU)."""
from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import pytest
from _helpers_trainer import make_dataset, tiny_config

from cgan.trainer import checkpoint as ckpt
from cgan.trainer.train import train

BAD_CALL = 6  # rank 1's 6th image pair fails: epoch 2, after its epoch-end checkpoint (4 steps per epoch)


def _rank(rank: int, root: str, port: int, bad_rank: int | None, nan_at: int | None = None) -> None:
    """One torchrun-like rank; writes rank{rank}.json with how train() ended (its error message)."""
    import os

    from cgan.trainer import data as data_module

    os.environ.update(RANK=str(rank), WORLD_SIZE="2", LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    if rank == bad_rank:  # this process only: a photo that cannot be read, as a corrupt file would be
        calls = [0]
        item = data_module.UnalignedDataset.__getitem__

        def failing_item(self, key):
            calls[0] += 1
            if calls[0] == BAD_CALL:
                raise data_module.DataError("cannot read trainA/broken.jpg: not an image")
            return item(self, key)

        data_module.UnalignedDataset.__getitem__ = failing_item
    if nan_at is not None:  # divergence, as it comes: the same weights on every process (averaged gradients)
        import torch

        from cgan.trainer import train as train_module

        step = train_module.CycleGAN.train_step
        steps = [0]

        def diverging_step(model, real_x, real_y):
            out = step(model, real_x, real_y)
            steps[0] += 1
            if steps[0] == nan_at:
                with torch.no_grad():
                    next(model.G.parameters()).fill_(float("nan"))
            return out

        train_module.CycleGAN.train_step = diverging_step
    cfg = tiny_config(Path(root), Path(root) / "r", epochs=2, epochs_decay=2, pool_size=2, threads=1)
    try:
        train(cfg, progress=False)
        ended = {"error": None}
    except Exception as e:
        ended = {"error": str(e), "type": type(e).__name__}
    (Path(root) / f"rank{rank}.json").write_text(json.dumps(ended))


def _spawn(tmp_path: Path, bad_rank: int | None, nan_at: int | None = None) -> list[dict]:
    import torch.multiprocessing as mp

    make_dataset(tmp_path, n_x=8, n_y=6)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ranks = mp.spawn(_rank, args=(str(tmp_path), port, bad_rank, nan_at), nprocs=2, join=False)
    deadline = time.monotonic() + 90
    try:
        while any(p.is_alive() for p in ranks.processes) and time.monotonic() < deadline:
            time.sleep(0.2)
        hung = [i for i, p in enumerate(ranks.processes) if p.is_alive()]
    finally:  # a rank left waiting in a collective: end it, or it keeps pytest from exiting
        for p in ranks.processes:
            if p.is_alive():
                p.kill()
                p.join(5)
    assert not hung, f"ranks {hung} hung"
    return [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]


@pytest.mark.timeout(150)
@pytest.mark.parametrize("bad_rank", [1, 0])
def test_a_data_error_on_one_rank_ends_all_and_rank_0_saves(tmp_path, bad_rank):
    ended = _spawn(tmp_path, bad_rank)
    assert all(e["type"] == "DataError" for e in ended), ended
    # the failing process names the file; the other says that another process failed and which
    assert "trainA/broken.jpg" in ended[bad_rank]["error"], ended
    other = ended[1 - bad_rank]["error"]
    if bad_rank == 1:
        assert "process 1 of 2" in other and "its own error names the image" in other, other
    # rank 0 saved the 5 steps trained (the epoch-end checkpoint held 4) and says how to go on
    assert "--resume" in ended[0]["error"], ended
    saved = ckpt.list_checkpoints(tmp_path / "r" / "run")
    assert ckpt.load_checkpoint(saved[-1])["counters"]["step"] == BAD_CALL - 1


@pytest.mark.timeout(150)
def test_a_diverged_run_ends_every_rank_with_the_same_message(tmp_path):
    """Rank 0's check before saving refused NaN weights and ended it alone: rank 1 went on to the next step's
    collective and died of gloo's "Connection closed by peer" (NCCL: hung until torchrun killed it)."""
    ended = _spawn(tmp_path, None, nan_at=3)  # in epoch 1: its end's checkpoint is the first save
    assert ended[0] == ended[1], ended
    assert ended[0]["type"] == "CganError" and "training diverged" in ended[0]["error"], ended
    assert ckpt.list_checkpoints(tmp_path / "r" / "run") == []
