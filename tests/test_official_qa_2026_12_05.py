"""Official checkpoints as users have them (QA 2026-12-04, second round): a pretrained model's folder, files given
the wrong way round, one generator under two names, files that are empty or another kind of zip, a download
holding NaN."""
from __future__ import annotations

import logging
import zipfile
from pathlib import Path

import pytest
import torch

from cgan._cli import run
from cgan.errors import CganError, IntegrityError
from cgan.pairs import official_generator_files, resolve
from cgan.spec import GeneratorSpec
from cgan.trainer.cli import cli
from cgan.trainer.networks import build_generator
from cgan.trainer.weights import import_official, read_official


def _official(path: Path, seed: int = 0, dtype: torch.dtype = torch.float32) -> Path:
    torch.manual_seed(seed)
    net = build_generator(GeneratorSpec(blocks=1, ngf=4), init=True)
    torch.save({f"model.{k}" if not k.startswith("model.") else k: v.to(dtype) for k, v in net.state_dict().items()},
               path)
    return path


def test_a_pretrained_models_folder_is_recognised(tmp_path):
    """The official download script saves checkpoints/NAME_pretrained/latest_net_G.pth: passing that folder said
    only "not a cgan pair or export"."""
    folder = tmp_path / "summer2winter_yosemite_pretrained"
    folder.mkdir()
    g = _official(folder / "latest_net_G.pth")
    assert official_generator_files(folder) == (g, None)
    with pytest.raises(CganError, match=rf"official checkpoints folder.*import-official {g} --out PAIR_FOLDER"):
        resolve(str(folder))
    with pytest.raises(CganError, match=rf"give its generator files, e.g. {g}"):
        read_official(folder)
    (folder / "latest_net_G_A.pth").write_bytes(g.read_bytes())  # a training folder's files win over it
    assert official_generator_files(folder)[0].name == "latest_net_G_A.pth"


@pytest.mark.parametrize("order", ["swapped", "lone G_B as G"])
def test_files_given_the_wrong_way_round_are_pointed_out(tmp_path, caplog, order):
    """G_B first made a pair whose G runs B→A without a word (its --domains then name the wrong way round)."""
    a = _official(tmp_path / "latest_net_G_A.pth", seed=1)
    b = _official(tmp_path / "latest_net_G_B.pth", seed=2)
    g, f = (b, a) if order == "swapped" else (b, None)
    with caplog.at_level(logging.WARNING, logger="cgan"):
        import_official(g, f, tmp_path / "pair", "summer", "winter")
    said = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(said) == 1 and "importing latest_net_G_B.pth (an official G_B) as G, X→Y" in said[0]
    assert ("and latest_net_G_A.pth (an official G_A) as F, Y→X: the pair runs the other way round" in said[0]) \
        == (order == "swapped")
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="cgan"):
        import_official(a, b, tmp_path / "right", "summer", "winter")
        import_official(None, b, tmp_path / "lone-f", "summer", "winter")  # --direction F
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_one_generator_under_two_names_is_refused_by_its_weights(tmp_path):
    """The check compared the files' sha256: the same weights saved twice (another zip layout, or a float16
    copy of float32 weights that float16 holds exactly) made a pair whose two directions were one generator."""
    a = _official(tmp_path / "latest_net_G_A.pth", seed=3)
    state = torch.load(a, weights_only=True)
    b = tmp_path / "latest_net_G_B.pth"
    torch.save(dict(reversed(list(state.items()))), b)  # other bytes, same tensors
    assert a.read_bytes() != b.read_bytes()
    with pytest.raises(CganError, match="hold the same generator"):
        import_official(a, b, tmp_path / "pair")
    assert not (tmp_path / "pair").exists()


@pytest.mark.parametrize("kind", ["empty", "photos zip"])
def test_files_that_are_no_checkpoint_say_so_in_words(tmp_path, capsys, kind):
    """An empty file said "EOFError ''"; a zip of something else "[enforce fail at inline_container.cc:180]"."""
    p = tmp_path / "latest_net_G_A.pth"
    if kind == "empty":
        p.write_bytes(b"")
    else:
        with zipfile.ZipFile(p, "w") as z:
            z.writestr("holiday/IMG_0001.jpg", b"\xff\xd8 not really")
    with pytest.raises(IntegrityError) as e:
        read_official(p)
    text = str(e.value)
    assert ("the file is empty" if kind == "empty" else "a zip archive, but not a PyTorch file") in text
    assert "copy or download it again" in text and "EOFError" not in text and "enforce fail" not in text
    assert run(cli, ["import-official", str(p), "--out", str(tmp_path / "pair")]) != 0
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err and not (tmp_path / "pair").exists()


def test_a_download_with_nan_weights_is_not_called_a_diverged_run(tmp_path):
    """A served file with NaN weights is not the official one; "the run that saved it diverged; use a checkpoint
    from before that" is advice for one's own training run."""
    from cgan.export.pretrained import OFFICIAL_SPEC, validate

    net = build_generator(OFFICIAL_SPEC, init=True)
    state = {f"model.{k}" if not k.startswith("model.") else k: v for k, v in net.state_dict().items()}
    next(v for v in state.values() if v.is_floating_point()).fill_(float("nan"))
    p = tmp_path / "summer2winter_yosemite.pth"
    torch.save(state, p)
    with pytest.raises(IntegrityError) as e:
        validate(p, "summer2winter_yosemite", OFFICIAL_SPEC)
    assert "NaN or infinite weights" in str(e.value) and "check the source" in str(e.value)
    assert "diverged" not in str(e.value)
