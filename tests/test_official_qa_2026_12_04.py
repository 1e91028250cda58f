"""Official checkpoints as a demanding user has them (QA 2026-12-04): a damaged zip, a lone G_B file, numbered
epochs."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from cgan.errors import CganError, IntegrityError
from cgan.pairs import official_generator_files, resolve
from cgan.spec import GeneratorSpec
from cgan.trainer.networks import build_generator
from cgan.trainer.weights import read_official


def _official(path: Path) -> Path:
    net = build_generator(GeneratorSpec(blocks=1, ngf=4), init=True)
    torch.save({f"model.{k}" if not k.startswith("model.") else k: v for k, v in net.state_dict().items()}, path)
    return path


def _damage(path: Path) -> None:
    """Flip 64 bytes inside the data of the zip's largest member (not in the padding torch puts between them)."""
    import struct
    import zipfile

    with zipfile.ZipFile(path) as z:
        info = max(z.infolist(), key=lambda i: i.file_size)
    data = bytearray(path.read_bytes())
    name_len, extra_len = struct.unpack("<HH", data[info.header_offset + 26:info.header_offset + 30])
    start = info.header_offset + 30 + name_len + extra_len
    data[start:start + 64] = bytes(b ^ 0xFF for b in data[start:start + 64])
    path.write_bytes(bytes(data))


def test_a_damaged_checkpoint_is_refused_not_imported(tmp_path):
    """torch.load does not check the zip's CRCs: a file with bytes flipped in a tensor's data was imported."""
    good = _official(tmp_path / "latest_net_G_A.pth")
    bad = tmp_path / "bad_net_G_A.pth"
    bad.write_bytes(good.read_bytes())
    _damage(bad)
    assert read_official(good)
    with pytest.raises(IntegrityError, match="damaged: .* fails its checksum"):
        read_official(bad)


def test_a_lone_g_b_file_is_told_to_import_with_direction_f(tmp_path):
    b = _official(tmp_path / "latest_net_G_B.pth")
    with pytest.raises(CganError, match="--direction F"):
        resolve(str(b))
    a = _official(tmp_path / "latest_net_G_A.pth")
    with pytest.raises(CganError) as e:
        resolve(str(a))
    assert "--direction F" not in str(e.value) and "add the G_B file" in str(e.value)


def test_the_last_numbered_epoch_is_the_one_suggested(tmp_path):
    for epoch in (15, 200, 100):
        for g in "AB":
            (tmp_path / f"{epoch}_net_G_{g}.pth").write_bytes(b"x")
    assert [f.name for f in official_generator_files(tmp_path)] == ["200_net_G_A.pth", "200_net_G_B.pth"]
    for g in "AB":
        (tmp_path / f"latest_net_G_{g}.pth").write_bytes(b"x")
    assert [f.name for f in official_generator_files(tmp_path)] == ["latest_net_G_A.pth", "latest_net_G_B.pth"]


def test_a_damaged_training_checkpoint_says_what_a_resume_does_about_it(tmp_path):
    """The checksum refusal first said "copy or download it again" for a training checkpoint too; a checkpoint's
    advice is its own (a resume deletes a bad newest one and takes the previous)."""
    from cgan.trainer.checkpoint import RESUME_FIX, load_checkpoint

    bad = _official(tmp_path / "step_1.pt")
    _damage(bad)
    with pytest.raises(IntegrityError, match=f"fails its checksum\\); {RESUME_FIX}$"):
        load_checkpoint(bad)
