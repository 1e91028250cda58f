"""Random bytes given as a checkpoint were reported as "it holds pickled Python objects" (torch's refusal text
names weights_only for any unreadable pickle), a text file as "(101)". They are "not a PyTorch file" now; a real
pickle of objects keeps its own reason."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from cgan.errors import IntegrityError
from cgan.trainer.weights import load_plain


@pytest.mark.parametrize("seed", range(12))
def test_random_bytes(tmp_path, seed):
    """Random bytes fail in many ways inside torch.load (an unknown opcode, IndexError, KeyError, EOF...)."""
    rng = np.random.default_rng(seed)
    p = tmp_path / "r.pth"
    p.write_bytes(bytes([0x80, 0x02]) + rng.integers(0, 256, 4000, dtype=np.uint8).tobytes())
    with pytest.raises(IntegrityError, match="not a PyTorch file") as e:
        load_plain(p, "official checkpoint", "use the official .pth")
    assert "pickled Python objects" not in str(e.value)


@pytest.mark.parametrize("data", [b"hello world", b"\xff\xd8\xff\xe0 a jpeg"])
def test_other_files(tmp_path, data):
    p = tmp_path / "t.pth"
    p.write_bytes(data)
    with pytest.raises(IntegrityError, match="not a PyTorch file|not a loadable") as e:
        load_plain(p, "official checkpoint", "use the official .pth")
    assert "pickled Python objects" not in str(e.value) and "\n" not in str(e.value)


def test_pickled_objects_keep_their_reason(tmp_path):
    p = tmp_path / "o.pth"
    torch.save({"obj": ValueError("x")}, p)
    with pytest.raises(IntegrityError, match="pickled Python objects"):
        load_plain(p, "official checkpoint", "use the official .pth")


def test_official_checkpoints_given_as_a_pair_point_at_import_official(tmp_path):
    """cgan-video/cgan-export given an official .pth or checkpoints/NAME folder said 'is not a folder' / 'not a
    cgan pair or export', never how to import it."""
    from cgan.errors import CganError
    from cgan.pairs import resolve

    folder = tmp_path / "checkpoints" / "s2w"
    folder.mkdir(parents=True)
    for name in ("latest_net_G_A.pth", "latest_net_G_B.pth", "latest_net_D_A.pth", "200_net_G_A.pth"):
        (folder / name).write_bytes(b"x")
    with pytest.raises(CganError, match=r"official checkpoints folder.*`cgan-train import-official "
                                        r"\S+latest_net_G_A\.pth \S+latest_net_G_B\.pth --out PAIR_FOLDER`"):
        resolve(str(folder))
    with pytest.raises(CganError, match=r"latest_net_G_A\.pth is a PyTorch checkpoint, not a cgan pair: import it "
                                        r"first \(`cgan-train import-official"):
        resolve(str(folder / "latest_net_G_A.pth"))
    for name in ("latest_net_G_A.pth", "200_net_G_A.pth"):
        (folder / name).unlink()
    with pytest.raises(CganError, match=r"latest_net_G_B\.pth --direction F --out"):
        resolve(str(folder))


def test_a_training_checkpoint_or_an_unfinished_run_given_as_a_pair_points_at_export_pair(tmp_path):
    """A cgan-train checkpoint was taken for an official one ("import it first (`cgan-train import-official`"),
    which import-official then refused ("write its pair with export-pair"): two hops. A run stopped before its
    end (no pair/ yet) was "not a cgan pair or export", with no word of export-pair or --resume."""
    from cgan.errors import CganError
    from cgan.pairs import resolve

    run = tmp_path / "runs" / "s1"
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.json").write_text("{}")
    step = run / "checkpoints" / "step-000000008.pt"
    step.write_bytes(b"x")
    with pytest.raises(CganError, match=r"step-000000008\.pt is a cgan-train checkpoint, not a pair: write its pair "
                                        r"\(`cgan-train export-pair \S+s1 --checkpoint \S+step-000000008\.pt --out "
                                        r"PAIR_FOLDER`\) and pass PAIR_FOLDER$"):  # (no pair/ yet)
        resolve(str(step))
    import os

    cwd = os.getcwd()
    try:  # typed inside RUN/checkpoints
        os.chdir(run / "checkpoints")
        with pytest.raises(CganError, match=r"is a cgan-train checkpoint, not a pair"):
            resolve(step.name)
    finally:
        os.chdir(cwd)
    with pytest.raises(CganError, match=r"s1 is a training run that has not written its pair yet: write it from "
                                        r"the latest checkpoint \(`cgan-train export-pair \S+s1`\), or train on "
                                        r"\(`cgan-train --name s1 --out \S+runs --resume`\)"):
        resolve(str(run))
    loose = tmp_path / "elsewhere" / "step-000000008.pt"  # not in a run: taken for an official one, as before
    loose.parent.mkdir()
    loose.write_bytes(b"x")
    with pytest.raises(CganError, match="is a PyTorch checkpoint, not a cgan pair: import it first"):
        resolve(str(loose))
