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
