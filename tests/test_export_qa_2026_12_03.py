"""cgan-export findings of 2026-12-03: --in-pair rewrote the packaged pair when given by its path; --workspace-gb
inf/1e12 ended in a traceback after the ONNX work; --out "" exported into the current folder; --base-url without
--pretrained and the parity options with --no-parity were dropped without a word; a gray model's architecture
message named only what matched; identical downloads got import-official's advice (its --direction); --triton
could point into a pair folder; broken weights were told to try another --pad-mode; a folder where a weight
file belongs was 'missing'."""
from __future__ import annotations

import dataclasses
import shutil

import pytest

from _helpers_export import TINY, official_bytes
from cgan._cli import run
from cgan.errors import CganError
from cgan.export import pretrained as P
from cgan.export.cli import cli


def _one_line(capsys, code: int, needle: str, exit_code: int = 2) -> None:
    err = capsys.readouterr().err.strip()
    assert code == exit_code and err.startswith("error: ") and needle in err, (code, err)
    assert "\n" not in err and "Traceback" not in err, err


def _no_work(monkeypatch):
    import cgan.export.api as api

    def started(*a, **k):
        raise AssertionError("the export started before its options were checked")

    monkeypatch.setattr(api, "_export_locked", started)


def test_in_pair_refuses_the_packaged_pair_given_by_its_path(tmp_path, monkeypatch, capsys):
    """Only the name was refused. (The package's pairs folder is a copy here: should the check fail, the test
    rewrites that copy, not the package.)"""
    import cgan.pairs
    from cgan.pairs import EMBEDDED_DIR

    packaged = tmp_path / "site" / "pairs"
    shutil.copytree(EMBEDDED_DIR, packaged)
    monkeypatch.setattr(cgan.pairs, "EMBEDDED_DIR", packaged)
    before = {p.name: p.read_bytes() for p in (packaged / "summer2winter").iterdir()}
    code = run(cli, [str(packaged / "summer2winter"), "--in-pair", "--parity-sizes", "32x32"])
    _one_line(capsys, code, "is the pair packaged with cgan")
    assert {p.name: p.read_bytes() for p in (packaged / "summer2winter").iterdir()} == before


@pytest.mark.parametrize("value", ["inf", "1e12", "1025"])
def test_workspace_gb_out_of_range_is_refused_before_any_work(tmp_path, monkeypatch, capsys, value):
    from cgan.export import tensorrt as trt_mod

    with pytest.raises(CganError, match=r"--workspace-gb must be a number of GB in \(0, 1024\]"):
        trt_mod.resolve_build("tensorrt-rtx", "8.9", 3, float(value))


def test_an_empty_out_is_refused(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    _no_work(monkeypatch)
    _one_line(capsys, run(cli, ["summer2winter", "--out", "", "--no-parity"]), "--out is empty")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("argv,needle", [
    (["--base-url", "/tmp"], "--base-url says where --pretrained downloads from"),
    (["--no-parity", "--parity-image", "IMAGE"], "--parity-image is the photo of the parity check"),
    (["--no-parity", "--parity-sizes", "32x32"], "--parity-sizes are the sizes of the parity check"),
])
def test_options_that_do_nothing_here_are_refused(tmp_path, monkeypatch, capsys, argv, needle):
    import cv2
    import numpy as np

    image = tmp_path / "p.png"
    cv2.imwrite(str(image), np.full((32, 32, 3), 99, np.uint8))
    _no_work(monkeypatch)
    argv = [str(image) if a == "IMAGE" else a for a in argv]
    _one_line(capsys, run(cli, ["summer2winter", "--out", str(tmp_path / "e"), *argv]), needle)
    assert not (tmp_path / "e").exists()


def test_a_gray_models_architecture_message_names_the_channels(tmp_path):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    gray = dataclasses.replace(TINY, in_channels=1)
    (mirror / "horse2zebra.pth").write_bytes(official_bytes(1, gray))
    with pytest.raises(CganError) as e:
        P.download("horse2zebra", str(mirror), progress=False, expect=TINY)
    assert "ResNet-1 ngf 4 generator of 1 input channel, expected the official ResNet-1 ngf 4 generator of 3 " \
           "input channels" in str(e.value)


def test_identical_downloads_for_both_directions_say_so(tmp_path):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    body = official_bytes(1)
    (mirror / "horse2zebra.pth").write_bytes(body)
    (mirror / "zebra2horse.pth").write_bytes(body)
    with pytest.raises(CganError) as e:
        P.fetch_pair("horse2zebra", str(mirror), progress=False, expect=TINY)
    msg = str(e.value)
    assert "the downloads horse2zebra.pth and zebra2horse.pth are the same file" in msg and "--direction" not in msg


def test_triton_inside_a_pair_folder_is_refused(tmp_path, monkeypatch, capsys):
    from cgan.pairs import EMBEDDED_DIR

    pair = tmp_path / "p"
    shutil.copytree(EMBEDDED_DIR / "summer2winter", pair)
    _no_work(monkeypatch)
    out = tmp_path / "e"
    code = run(cli, [str(pair), "--out", str(out), "--no-parity", "--triton", str(pair / "triton")])
    _one_line(capsys, code, f"--triton {pair / 'triton'} is inside the pair folder {pair}")
    code = run(cli, [str(pair), "--out", str(out), "--no-parity", "--triton", str(out / "pair" / "t")])
    _one_line(capsys, code, "is inside the export's pair/ copy")


def test_broken_weights_are_not_told_to_try_another_pad_mode():
    from cgan.export import parity

    figures = {"generators": {"G": {"failures": [f"{parity.BROKEN_WEIGHTS} NaN or infinite values: its weights "
                                                 f"are broken"]}}}
    with pytest.raises(CganError) as e:
        parity.raise_on_failure(figures)
    assert "--pad-mode" not in str(e.value) and "finite" in str(e.value)
    figures["generators"]["G"]["failures"] = ["FP32 max abs error 0.5 > 0.0001"]
    with pytest.raises(CganError, match="another --pad-mode"):
        parity.raise_on_failure(figures)


def test_a_folder_where_a_weight_file_belongs_is_not_called_missing(tmp_path):
    from cgan.errors import IntegrityError
    from cgan.pairs import EMBEDDED_DIR, load_pair

    pair = tmp_path / "p"
    shutil.copytree(EMBEDDED_DIR / "summer2winter", pair)
    weight = next(p for p in pair.iterdir() if p.suffix == ".safetensors")
    weight.unlink()
    weight.mkdir()
    with pytest.raises(IntegrityError, match=f"{weight} is not a file"):
        load_pair(pair)


@pytest.mark.parametrize("error", [PermissionError(13, "Permission denied"), MemoryError()])
def test_weights_that_cannot_be_read_are_not_called_damaged(monkeypatch, error):
    """Any error reading a weight file became 'not a readable safetensors file; re-create the pair' (exit 3),
    wrong advice for a file this user may not read, or a machine out of memory."""
    import safetensors.numpy
    import safetensors.torch

    from cgan.errors import IntegrityError
    from cgan.pairs import EMBEDDED_DIR, load_pair
    from cgan.trainer.weights import load_state

    def refuse(*a, **k):
        raise error

    pair = load_pair(EMBEDDED_DIR / "summer2winter")
    for module, load in ((safetensors.torch, lambda: load_state(pair, "G")), (safetensors.numpy,
                                                                            lambda: pair.load_numpy("G"))):
        monkeypatch.setattr(module, "load_file", refuse)
        with pytest.raises(CganError, match="cannot be read") as e:
            load()
        assert not isinstance(e.value, IntegrityError) and "re-create" not in str(e.value)
