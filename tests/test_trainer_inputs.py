"""Bad user input to cgan-train and its readers: one line, a non-zero exit, no traceback, nothing written.

Hostile tensors in official checkpoints, decompression-bomb images, NaN/inf and out-of-range options, overlong
domain names, and --out folders that export-pair / import-official would damage.
"""
from __future__ import annotations

import hashlib
import math
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from _helpers_export import TINY, official_bytes, tiny_states
from _helpers_trainer import make_dataset, tiny_config

from cgan._cli import run
from cgan.errors import CganError, IntegrityError
from cgan.pairs import load_pair
from cgan.trainer.cli import cli
from cgan.trainer.config import MAX_SIDE, TrainConfig

SMOKE = ["--size", "32", "--ngf", "4", "--blocks", "1", "--max-steps", "2", "--device", "cpu", "--workers", "0",
         "-q"]


def one_line(capsys, code: int, expected: int, *needles: str) -> str:
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == expected, err
    assert "Traceback" not in err and lines and lines[-1].startswith("error: "), err
    assert len([ln for ln in lines if ln.startswith("error:")]) == 1, err
    for n in needles:
        assert n in lines[-1], lines[-1]
    return lines[-1]


def tree(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def bomb_png(path: Path) -> Path:
    """69 bytes whose header says 100000x100000: OpenCV raises (CV_IO_MAX_IMAGE_PIXELS) instead of returning None."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 100000, 100000, 8, 2, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(b"\0" * 49)) + chunk(b"IEND", b""))
    return path


@pytest.fixture
def data(tmp_path):
    return make_dataset(tmp_path / "data")


# ---- 1. official checkpoints holding tensors no generator has ----------------------------------------------
def _quantized(v):
    return torch.quantize_per_tensor(v.float(), 0.1, 0, torch.qint8)


HOSTILE_TENSORS = {
    "sparse_coo": lambda v: v.to_sparse(),
    "sparse_csr": lambda v: v.reshape(v.shape[0], -1).to_sparse_csr(),
    "quantized": _quantized,
    "int64": lambda v: v.long(),
    "bool": lambda v: v > 0,
    "complex": lambda v: v.to(torch.complex64),
}


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize("kind", sorted(HOSTILE_TENSORS))
def test_import_official_refuses_sparse_quantized_and_non_float_tensors(tmp_path, capsys, kind):
    from cgan.trainer.weights import official_to_generator, read_official

    state = dict(tiny_states()["G"])
    state["model.1.weight"] = HOSTILE_TENSORS[kind](state["model.1.weight"])
    path = tmp_path / f"{kind}.pth"
    torch.save(state, path)
    code = run(cli, ["import-official", str(path), "--out", str(tmp_path / "out")])
    one_line(capsys, code, 3, f"{kind}.pth", "model.1.weight")
    assert not (tmp_path / "out").exists()
    # the pretrained download's check goes through the same converter
    with pytest.raises(IntegrityError, match="model.1.weight"):
        official_to_generator(read_official(path), "x.pth")


def test_import_official_refuses_odd_keys(tmp_path, capsys):
    good = tiny_states()["G"]
    odd = {"int key": {**good, 7: good["model.1.bias"]},
           "bad index": {**good, "model.x.conv_block.1.weight": torch.zeros(1)}}
    for name, state in odd.items():
        torch.save(state, tmp_path / "odd.pth")
        code = run(cli, ["import-official", str(tmp_path / "odd.pth"), "--out", str(tmp_path / "out")])
        one_line(capsys, code, 3)
        assert not (tmp_path / "out").exists(), name


def test_a_discriminator_file_is_named_and_said_to_be_one(tmp_path, capsys):
    """import-official G_A.pth D_A.pth said "not a ResNet generator checkpoint: no 'model.1.weight'" without
    saying which of the two files."""
    from cgan.trainer.networks import NLayerDiscriminator

    torch.save(tiny_states()["G"], tmp_path / "latest_net_G_A.pth")
    torch.save(NLayerDiscriminator(3, 4).state_dict(), tmp_path / "latest_net_D_A.pth")
    code = run(cli, ["import-official", str(tmp_path / "latest_net_G_A.pth"), str(tmp_path / "latest_net_D_A.pth"),
                     "--out", str(tmp_path / "out")])
    one_line(capsys, code, 3, "latest_net_D_A.pth", "looks like a discriminator")
    assert not (tmp_path / "out").exists()


# ---- 2. an image header claiming 100000x100000 ------------------------------------------------------------
def test_decompression_bomb_png_is_an_unreadable_image_everywhere(tmp_path, data, capsys):
    from cgan.benchmarks.quality import load_rgb
    from cgan.export.parity import photo
    from cgan.trainer.data import list_images, read_rgb

    bomb = bomb_png(data / "trainA" / "bomb.png")
    assert read_rgb(bomb) is None
    assert bomb not in list_images(data / "trainA", "X")
    with pytest.raises(CganError, match="cannot read parity image"):  # cgan-export --parity-image bomb.png
        photo(bomb, 32, 32)
    with pytest.raises(CganError, match="cannot read image"):  # cgan-eval's test photos
        load_rgb(bomb)
    # cgan-train skips it with the usual warning and trains on the others
    code = run(cli, ["--data", str(data), "--out", str(tmp_path / "runs"), "--name", "b", *SMOKE])
    assert code == 0, capsys.readouterr().err
    assert load_pair(tmp_path / "runs" / "b" / "pair").meta["training"]["steps"] == 2


# ---- 3-6. training options ----------------------------------------------------------------------------------
@pytest.mark.parametrize("argv,needle", [
    (["--lambda-cycle", "nan"], "--lambda-cycle"),
    (["--lambda-identity", "inf"], "--lambda-identity"),
    (["--lr", "inf"], "--lr"),
    (["--lr", "nan"], "--lr"),
    (["--beta1", "nan"], "--beta1"),
    (["--lambda-cycle", "-inf"], "--lambda-cycle"),
    (["--ndf", "0"], "--ndf"),
    (["--ndf", "-1"], "--ndf"),
    (["--ndf", "100000"], "--ndf"),
    (["--load-size", "100000"], f"at most {MAX_SIDE}"),
    (["--size", "100000", "--load-size", "100000"], "--size must be at most"),
    (["--domains", "a" * 300 + ",y"], "too long"),
    (["--domains", "é" * 40 + ",y"], "too long"),
])
def test_bad_training_options_are_one_line_and_write_nothing(tmp_path, data, capsys, argv, needle):
    code = run(cli, ["--data", str(data), "--out", str(tmp_path / "runs"), "--name", "t", *SMOKE, *argv])
    one_line(capsys, code, 2, needle)
    assert not (tmp_path / "runs" / "t").exists()


def test_every_float_field_of_the_config_must_be_finite(tmp_path, data):
    floats = [f for f, v in TrainConfig.__dataclass_fields__.items() if "float" in str(v.type)]
    assert set(floats) == {"lr", "beta1", "lambda_cycle", "lambda_identity", "time_budget"}
    for name in floats:
        for bad in (math.nan, math.inf, -math.inf):
            with pytest.raises(CganError, match=f"--{name.replace('_', '-')} must be a finite number"):
                tiny_config(data, tmp_path, **{name: bad})
    # config.json / a checkpoint: an integer too large for a float is refused the same way, not an OverflowError
    d = tiny_config(data, tmp_path).to_dict()
    with pytest.raises(CganError, match="--lr must be a finite number"):
        TrainConfig.from_dict({**d, "lr": 10 ** 400})


def test_architecture_and_size_fields_are_bounded(tmp_path, data):
    for kw in ({"ndf": 0}, {"ndf": 1025}, {"n_layers_d": -1}, {"n_layers_d": 11}, {"n_layers_d": 10 ** 6},
               {"size": MAX_SIDE + 4, "load_size": MAX_SIDE + 4}, {"load_size": MAX_SIDE + 1}):
        with pytest.raises(CganError):
            tiny_config(data, tmp_path, **kw)
    ok = tiny_config(data, tmp_path, size=MAX_SIDE, load_size=MAX_SIDE, ndf=1, n_layers_d=0)
    assert ok.size == MAX_SIDE


def test_domain_names_are_bounded():
    from cgan.spec import MAX_DOMAIN_BYTES, PairSpec

    assert PairSpec(TINY, "a" * MAX_DOMAIN_BYTES, "b").domain_x == "a" * MAX_DOMAIN_BYTES
    for bad in ("a" * (MAX_DOMAIN_BYTES + 1), "é" * (MAX_DOMAIN_BYTES // 2 + 1), "a/b", "a b", "", 7):
        with pytest.raises(CganError, match="domain name"):
            PairSpec(TINY, bad, "b")


# ---- 7-8. export-pair / import-official --out, and export-pair's advice -------------------------------------
@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from cgan.trainer.train import train

    root = tmp_path_factory.mktemp("trained")
    data = make_dataset(root / "data")
    a = train(tiny_config(data, root / "runs", max_steps=1), progress=False)
    b = train(tiny_config(data, root / "runs", name="other", max_steps=1), progress=False)
    return a, b


def _fake_export(folder: Path, pair: Path) -> Path:
    """An export folder as far as the --out checks look: manifest.json and its pair/ copy."""
    import shutil

    folder.mkdir()
    (folder / "manifest.json").write_text('{"format": "cgan.export"}')
    shutil.copytree(pair, folder / "pair")
    return folder


def test_export_pair_refuses_an_out_holding_an_export_or_another_pair(tmp_path, trained, capsys):
    run_a, run_b = trained
    export = _fake_export(tmp_path / "export", run_a / "pair")
    official = tmp_path / "official"
    (tmp_path / "G.pth").write_bytes(official_bytes())
    assert run(cli, ["import-official", str(tmp_path / "G.pth"), "--out", str(official)]) == 0
    # a run folder too: a pair at its top changed what --init-from RUN found (RUN/pair before)
    for out, needle in ((export, "export folder"), (export / "pair", "inside the export"),
                        (official, "another pair"), (run_b / "pair", "another pair"),
                        (run_b, "is a cgan-train run folder")):
        before = tree(out)
        code = run(cli, ["export-pair", str(run_a), "--out", str(out)])
        one_line(capsys, code, 2, needle, "choose a new folder")
        assert tree(out) == before
    # re-exporting the same run is fine: into its own pair/ (after more training) and into an earlier --out
    for out in (run_a / "pair", tmp_path / "mine", tmp_path / "mine"):
        assert run(cli, ["export-pair", str(run_a), "--out", str(out)]) == 0, capsys.readouterr().err
    assert run(cli, ["export-pair", str(run_a)]) == 0, capsys.readouterr().err


def test_import_official_refuses_an_out_holding_an_export_or_another_pair(tmp_path, trained, capsys):
    run_a, _ = trained
    trained_pair = tmp_path / "trained_pair"
    assert run(cli, ["export-pair", str(run_a), "--out", str(trained_pair)]) == 0
    export = _fake_export(tmp_path / "export", trained_pair)
    g, other = tmp_path / "G.pth", tmp_path / "G2.pth"
    g.write_bytes(official_bytes(0))
    other.write_bytes(official_bytes(1))
    imported = tmp_path / "imported"
    assert run(cli, ["import-official", str(g), "--out", str(imported)]) == 0
    for out, source, needle in ((trained_pair, g, "another pair"), (export, g, "export folder"),
                                (export / "pair", g, "inside the export"), (imported, other, "another pair"),
                                (run_a, g, "is a cgan-train run folder")):
        before = tree(out)
        code = run(cli, ["import-official", str(source), "--out", str(out)])
        one_line(capsys, code, 2, needle, "choose a new folder")
        assert tree(out) == before
    assert sorted(load_pair(trained_pair).files) == ["F", "G"]
    # importing the same file again (here with domain names) rewrites that import
    assert run(cli, ["import-official", str(g), "--out", str(imported), "--domains", "a,b"]) == 0
    assert load_pair(imported).spec.name == "a2b"


def test_export_pair_of_a_missing_or_empty_run_gives_export_advice(tmp_path, capsys):
    code = run(cli, ["export-pair", str(tmp_path / "runs" / "nonexistent")])
    line = one_line(capsys, code, 2, "does not exist")
    assert "--resume" not in line
    (tmp_path / "runs" / "empty").mkdir(parents=True)
    code = run(cli, ["export-pair", str(tmp_path / "runs" / "empty")])
    line = one_line(capsys, code, 2, "nothing to export", "--checkpoint")
    assert "--resume" not in line
    assert not (tmp_path / "runs" / "empty" / "pair").exists()


def test_export_pair_checkpoint_that_is_no_checkpoint_gets_export_advice(tmp_path, trained, capsys):
    """export-pair --checkpoint FILE reused the resume advice ('delete it to resume from the previous one': of a
    training photo given by mistake); an official generator got no word of import-official; a checkpoint cut
    short said only '[Errno 22] Invalid argument'."""
    run_a, _ = trained
    photo = tmp_path / "photo.png"
    cv2.imwrite(str(photo), np.zeros((8, 8, 3), np.uint8))
    (tmp_path / "latest_net_G_A.pth").write_bytes(official_bytes())
    good = sorted((run_a / "checkpoints").glob("step-*.pt"))[-1].read_bytes()
    (tmp_path / "cut.pt").write_bytes(good[:5000])
    for name, needles in (("photo.png", ("give --checkpoint a file cgan-train saved",)),
                          ("latest_net_G_A.pth", ("official generator", "cgan-train import-official")),
                          ("cut.pt", ("cut short", "give --checkpoint a file cgan-train saved"))):
        code = run(cli, ["export-pair", str(run_a), "--checkpoint", str(tmp_path / name), "--out", str(tmp_path / "o")])
        line = one_line(capsys, code, 3, *needles)
        assert "delete it" not in line and "Errno" not in line, line
        assert photo.exists() and not (tmp_path / "o").exists()


def test_trainer_max_side_matches_the_runtimes_largest_frame():
    from cgan.runtime.frames import DEFAULT_MAX_PIXELS
    from cgan.trainer.config import MAX_SIDE

    assert MAX_SIDE * MAX_SIDE == DEFAULT_MAX_PIXELS


def test_thousands_of_threads_are_refused_before_torch_crashes(tmp_path):
    """--threads 100000 ended cgan-train with a segmentation fault (exit 139)."""
    from _helpers_trainer import make_dataset, tiny_config
    from cgan.errors import CganError
    from cgan.trainer.train import train

    root = make_dataset(tmp_path / "d", n_x=2, n_y=2)
    with pytest.raises(CganError, match="--threads 100000 is more than this machine allows"):
        train(tiny_config(root, tmp_path / "r", threads=100000, max_steps=1), progress=False)


def test_thousands_of_loader_workers_are_refused_before_any_is_forked(tmp_path, data, capsys):
    """--workers 100000 forked worker processes until the machine stalled (load average 600)."""
    from cgan._limits import max_threads

    code = run(cli, ["--data", str(data), "--out", str(tmp_path / "runs"), "--name", "w", *SMOKE,
                     "--workers", str(max_threads() + 1)])
    one_line(capsys, code, 2, f"--workers {max_threads() + 1} is more than this machine allows")
    assert not (tmp_path / "runs" / "w").exists()


def test_a_photo_too_large_for_preprocess_none_or_scale_width_is_one_line(tmp_path):
    """--preprocess none / scale_width keep a photo's shape: a huge or very tall photo became a network input of
    many GB. Refused before the resize allocates, naming the file."""
    import cv2
    import numpy as np

    from cgan.errors import CganError
    from cgan.trainer.data import Transform, UnalignedDataset

    tall = np.zeros((40000, 4, 3), np.uint8)  # scaled to width 4096: 4096 x 40960000
    with pytest.raises(CganError, match=r"4096x40960000 after --preprocess scale_width, over 4096x4096"):
        Transform("scale_width", load_size=4096, size=64)(tall)
    with pytest.raises(CganError, match=r"after --preprocess none"):
        Transform("none", load_size=64, size=64)(np.zeros((4100, 4100, 3), np.uint8))
    assert Transform("none", load_size=64, size=64)(np.zeros((40, 44, 3), np.uint8)).shape == (40, 44, 3)
    path = tmp_path / "tall.png"
    cv2.imwrite(str(path), np.zeros((20000, 4, 3), np.uint8))
    ds = UnalignedDataset([path], [path], Transform("scale_width", load_size=4096, size=64))
    with pytest.raises(CganError, match=rf"training image {path}: it is 4096x20480000"):
        ds.load("X", 0, None)


def test_a_photo_too_large_once_preprocessed_is_refused_before_training(tmp_path, data, capsys):
    """docs/training.md: options are checked before anything is written. Such a photo was found only when the
    sampler reached it (hours into a run, maybe), after checkpoints had been written."""
    big = tmp_path / "big"
    big.mkdir()
    for f in (data / "trainA").iterdir():
        (big / f.name).write_bytes(f.read_bytes())
    cv2.imwrite(str(big / "z.png"), np.zeros((4200, 4200, 3), np.uint8))
    code = run(cli, ["--data-a", str(big), "--data-b", str(data / "trainB"), "--out", str(tmp_path / "R"), "--name",
                     "r", "--size", "32", "--preprocess", "none", "--ngf", "4", "--ndf", "4", "--blocks", "1",
                     "--device", "cpu", "--workers", "0", "-q", "--no-tensorboard", "--max-steps", "50",
                     "--save-every-steps", "1"])
    one_line(capsys, code, 2, f"training image {big / 'z.png'}: it is 4200x4200 after --preprocess none")
    assert not (tmp_path / "R" / "r").exists()
    # found while the folder is listed, wherever the sampler would have put it
    from cgan.trainer.data import Transform, list_images

    with pytest.raises(CganError, match=r"z.png: it is 4200x4200 after --preprocess none"):
        list_images(big, "domain X", transform=Transform("none", 64, 64))
    assert len(list_images(big, "domain X", transform=Transform("resize_and_crop", 64, 64))) == 5


def test_a_folder_of_sub_folders_says_where_the_images_are_beside_other_files(tmp_path, data, capsys):
    """trainA/photos/*.png with a README beside it: the hint about the sub-folder was lost ('no readable images
    (1 files skipped, e.g. README.txt)')."""
    nested = tmp_path / "A"
    (nested / "photos").mkdir(parents=True)
    for f in (data / "trainA").iterdir():
        (nested / "photos" / f.name).write_bytes(f.read_bytes())
    (nested / "README.txt").write_text("summer photos")
    code = run(cli, ["--data-a", str(nested), "--data-b", str(data / "trainB"), "--out", str(tmp_path / "R"),
                     "--name", "r", "--size", "32", "--device", "cpu", "--workers", "0", "-q", "--max-steps", "1"])
    one_line(capsys, code, 2, "sub-folders are not read", str(nested / "photos"))


@pytest.mark.parametrize("name", ["../x", ".", "..", "a/b", "/abs"])
def test_a_run_name_is_one_folder_inside_out(tmp_path, data, capsys, name):
    """--name ../x wrote the run outside --out; '.' and 'a/b' into --out itself or into another run."""
    out = tmp_path / "runs"
    code = run(cli, ["--data", str(data), "--out", str(out), "--name", name, *SMOKE])
    one_line(capsys, code, 2, "must be a plain folder name")
    assert not out.exists() and not (tmp_path / "x").exists()


def test_the_largest_seed_trains(tmp_path):
    """--seed took 0..2**63-1 but the sampler's generator overflowed above ~1.8e13, after the run folder existed."""
    from cgan.trainer.train import train

    data = make_dataset(tmp_path / "data")
    run_dir = train(tiny_config(data, tmp_path / "r", max_steps=1, seed=2**63 - 1), progress=False)
    assert load_pair(run_dir / "pair").meta["training"]["steps"] == 1


def test_tilde_in_out_and_data_is_the_home_folder(tmp_path, monkeypatch, capsys):
    """`--out=~/runs` (no shell expands ~ after '=') made a folder named '~' in the working folder."""
    home = tmp_path / "home"
    make_dataset(home / "photos")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(tmp_path)
    code = run(cli, ["--data=~/photos", "--out=~/runs", "--name", "x", "--load-size", "36", *SMOKE])
    assert code == 0, capsys.readouterr().err
    assert (home / "runs" / "x" / "pair" / "pair.json").is_file() and not (tmp_path / "~").exists()


def test_a_symlink_loop_as_a_data_folder_is_one_line(tmp_path, capsys):
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    code = run(cli, ["--data-a", str(loop), "--data-b", str(loop), "--out", str(tmp_path / "o"), "--name", "x",
                     *SMOKE])
    one_line(capsys, code, 2, "cannot be resolved", "symbolic link loop")


def test_a_file_given_as_a_data_folder_is_named_as_a_file(tmp_path, capsys):
    f = tmp_path / "photo.jpg"
    f.write_bytes(b"x")
    code = run(cli, ["--data-a", str(f), "--data-b", str(f), "--out", str(tmp_path / "o"), "--name", "x", *SMOKE])
    one_line(capsys, code, 2, "is a file; give the folder of images")
    code = run(cli, ["--data", str(f), "--out", str(tmp_path / "o"), "--name", "x", *SMOKE])
    one_line(capsys, code, 2, "is a file; give the folder that holds trainA and trainB")


def test_data_and_data_a_b_together_are_refused(tmp_path, capsys):
    """--data was silently passed over for --data-a/--data-b: a typo trained trainA against itself."""
    (tmp_path / "d" / "trainA").mkdir(parents=True)
    code = run(cli, ["--data", str(tmp_path / "d"), "--data-a", str(tmp_path / "d" / "trainA"), "--data-b",
                     str(tmp_path / "d" / "trainA"), "--out", str(tmp_path / "o"), "--name", "x", *SMOKE])
    one_line(capsys, code, 2, "either --data DIR", "not both")
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("name", [" ", "x ", " x", "a\nb", "tab\there"])
def test_run_names_that_hide_in_a_listing_are_refused(tmp_path, capsys, name):
    data = make_dataset(tmp_path / "data")
    code = run(cli, ["--data", str(data), "--out", str(tmp_path / "o"), "--name", name, *SMOKE])
    one_line(capsys, code, 2, "without leading or trailing spaces")
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())


def test_the_skipped_files_warning_names_several_and_jfif_is_a_photo(tmp_path, caplog):
    import logging

    import cv2
    import numpy as np

    from cgan.trainer.data import list_images

    folder = tmp_path / "photos"
    folder.mkdir()
    cv2.imwrite(str(folder / "a.jpg"), np.full((8, 8, 3), 99, np.uint8))
    (folder / "b.jfif").write_bytes((folder / "a.jpg").read_bytes())  # a JPEG under its other name
    for name in ("c.jpg", "d.png", "e.png", "f.png"):
        (folder / name).write_bytes(b"not an image")
    with caplog.at_level(logging.WARNING):
        good = list_images(folder, "domain X")
    assert [f.name for f in good] == ["a.jpg", "b.jfif"]
    assert "skipped 4 of 6 files: 4 could not be decoded, corrupt or cut short? ('c.jpg', 'd.png', 'e.png', ...)" \
        in caplog.text


def test_unopenable_files_links_to_nothing_and_heic_are_each_said_for_what_they_are(tmp_path, caplog,
                                                                                       monkeypatch):
    """A photo the user may not read was counted "could not be decoded, corrupt or cut short?"; a link to a
    missing file was skipped without a word (not even counted); HEIC photos got no hint to convert them."""
    import builtins
    import logging

    import cv2
    import numpy as np

    from cgan.trainer import data as data_module
    from cgan.trainer.data import list_images

    folder = tmp_path / "photos"
    folder.mkdir()
    cv2.imwrite(str(folder / "a.jpg"), np.full((8, 8, 3), 99, np.uint8))
    (folder / "locked.jpg").write_bytes((folder / "a.jpg").read_bytes())
    (folder / "gone.jpg").symlink_to(tmp_path / "nowhere.jpg")
    (folder / "IMG_1.HEIC").write_bytes(b"\x00\x00\x00\x18ftypheic")

    def guarded(path, *a, **kw):  # (root reads a chmod 000 file: the refusal is made here)
        if str(path).endswith("locked.jpg"):
            raise PermissionError(13, "Permission denied", str(path))
        return builtins.open(path, *a, **kw)

    monkeypatch.setattr(data_module, "open", guarded, raising=False)
    with caplog.at_level(logging.WARNING):
        good = list_images(folder, "domain X")
    assert [f.name for f in good] == ["a.jpg"]
    assert ("skipped 3 of 4 files: 1 could not be opened (Permission denied: 'locked.jpg'; fix their permissions); "
            "1 links to files that do not exist ('gone.jpg'); 1 not of a photo type read here ('IMG_1.HEIC'; photos "
            "are jpg/png/bmp/tif/webp/ppm; convert HEIC photos to JPEG first)") in caplog.text, caplog.text
    assert "could not be decoded" not in caplog.text


def test_the_same_folder_for_both_domains_is_warned_about(tmp_path, caplog):
    import logging

    from cgan.trainer.train import train

    data = make_dataset(tmp_path / "data")
    with caplog.at_level(logging.WARNING):
        train(tiny_config(data, tmp_path / "r", max_steps=1, data_b=str(data / "trainA")), progress=False)
    assert "domains X and Y are the same folder" in caplog.text


def test_init_from_a_missing_path_says_it_does_not_exist(tmp_path, capsys):
    data = make_dataset(tmp_path / "data")
    code = run(cli, ["--data", str(data), "--out", str(tmp_path / "o"), "--name", "x",
                     "--init-from", str(tmp_path / "nope" / "pair"), *SMOKE])
    one_line(capsys, code, 2, "does not exist: pass a pair folder")


def test_avif_training_photos_are_read_where_opencv_has_the_codec(tmp_path):
    """Photo sets collected from phones and the web hold AVIF: the trainer reads them when this OpenCV can
    (cgan._codecs), as cgan-video's photo mode does, instead of skipping them as unreadable."""
    import cv2
    import numpy as np

    from cgan._codecs import codec_works
    from cgan.trainer.data import list_images

    if not codec_works(".avif"):
        pytest.skip("this OpenCV has no AVIF codec")
    folder = tmp_path / "summer"
    folder.mkdir()
    for i, ext in enumerate((".avif", ".jpg")):
        ok, buf = cv2.imencode(ext, np.full((32, 32, 3), 60 * i, np.uint8))
        (folder / f"{i}{ext}").write_bytes(buf.tobytes())
    assert [p.name for p in list_images(folder, "summer")] == ["0.avif", "1.jpg"]


def test_a_data_folder_that_cannot_be_listed_is_one_line_and_leaves_no_run_folder(tmp_path, monkeypatch, capsys):
    """A PermissionError from listing it was the generic 'Permission denied' line, and the run folder made for
    the run was left behind (the cleanup of a refused input is for CganError). Listing is made to fail here, as
    root reads any folder."""
    from pathlib import Path

    from cgan._cli import run as run_cli
    from cgan.trainer.cli import cli

    data = tmp_path / "data"
    for side in ("trainA", "trainB"):
        (data / side).mkdir(parents=True)
    real = Path.iterdir

    def locked(self):
        if self.name == "trainA":
            raise PermissionError(13, "Permission denied", str(self))
        return real(self)

    monkeypatch.setattr(Path, "iterdir", locked)
    code = run_cli(cli, ["train", "--data", str(data), "--out", str(tmp_path / "runs"), "--name", "p", "--device",
                         "cpu", "--workers", "0"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.count("\n") == 0 and "trainA" in err and "cannot be read (Permission denied)" in err
    assert not (tmp_path / "runs" / "p").exists()


def test_more_loader_workers_than_cpus_is_one_line_and_the_default_fits_the_machine(tmp_path, data, caplog,
                                                                                      monkeypatch):
    """torch's own warning (a paragraph with its file and line, printed twice) came with the README's smoke run
    on a 2-core machine: the default --workers 4 was more than its CPUs. The default is now at most the CPUs
    usable here; more, when asked for, is said in one line."""
    import json
    import logging
    import warnings

    from cgan.trainer import train as train_mod

    monkeypatch.setattr(train_mod, "usable_cpus", lambda: 1)
    smoke = [a for a in SMOKE if a not in ("--workers", "0")]
    assert run(cli, ["--data", str(data), "--out", str(tmp_path / "runs"), "--name", "d", *smoke]) == 0
    assert json.loads((tmp_path / "runs" / "d" / "config.json").read_text())["config"]["workers"] == 1
    with warnings.catch_warnings(record=True) as seen, caplog.at_level(logging.WARNING):
        warnings.simplefilter("always")
        train_mod.train(tiny_config(data, tmp_path / "r", workers=2, max_steps=1), progress=False)
    assert not [w for w in seen if "This DataLoader will create" in str(w.message)], [str(w.message) for w in seen]
    said = [r.getMessage() for r in caplog.records if "usable CPUs" in r.getMessage()]
    assert said == ["warning: --workers 2 on 1 usable CPUs: the loader workers take turns with the training itself; "
                    "--workers 1 is enough here"], said


@pytest.mark.parametrize("device, needle", [("cuda:x", "--device must be auto, cpu, cuda or cuda:N"),
                                            ("cuda:-1", "--device must be auto, cpu, cuda or cuda:N"),
                                            ("cuda:0:1", "--device must be auto, cpu, cuda or cuda:N"),
                                            ("cuda:3", "--device cuda:3: this machine's GPUs are cuda:0..cuda:1")])
def test_a_bad_cuda_device_is_one_line(tmp_path, data, monkeypatch, device, needle):
    """`--device cuda:x` was a RuntimeError traceback ('Invalid device string') where CUDA is present, and
    cuda:99 passed the checks to fail later."""
    from cgan.errors import CganError
    from cgan.trainer.train import resolve_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    with pytest.raises(CganError, match=needle.replace("(", r"\(")):
        resolve_device(tiny_config(data, tmp_path, device=device).device)
    assert resolve_device("cuda:1") == torch.device("cuda:1")


def test_import_official_given_a_training_checkpoint_says_what_to_do(tmp_path, trained, capsys):
    """It said '... does not hold a generator state_dict (a dict of tensors)': true, but no help."""
    ckpt = sorted((trained[0] / "checkpoints").glob("*.pt"))[-1]
    code = run(cli, ["import-official", str(ckpt), "--out", str(tmp_path / "imp")])
    one_line(capsys, code, 2, "is a cgan training checkpoint, not an official one",
             f"cgan-train export-pair {trained[0]} --checkpoint {ckpt}")
    assert not (tmp_path / "imp").exists()


def test_import_official_with_a_malformed_first_layer_names_its_shape(tmp_path, capsys):
    """It said "no 'model.1.weight'" of a file that has one, of the wrong shape."""
    bad = tmp_path / "bad_G.pth"
    torch.save({"model.1.weight": torch.zeros(3)}, bad)
    code = run(cli, ["import-official", str(bad), "--out", str(tmp_path / "imp")])
    one_line(capsys, code, 3, "'model.1.weight' has the shape [3], not a first convolution's")


def test_folders_and_names_that_are_not_utf8(tmp_path, data, capsys):
    """Linux names are bytes (a folder named in Latin-1 by an older tool or a USB stick): an --out not valid
    UTF-8 trained to the end and then crashed writing the pair (the folder lock hashed the path as UTF-8), or,
    with TensorBoard, crashed at start and left a run folder; a --name so was said to have control characters
    (QA). Now the run trains and writes its pair there; TensorBoard's case and the name are one line first."""
    import os

    from cgan._cli import _tolerant_stdout

    _tolerant_stdout()  # (as the installed commands do: "pair written to ..." names the folder with escapes)
    out = os.fsdecode(os.path.join(os.fsencode(tmp_path), b"out\xe9t\xe9"))
    code = run(cli, ["--data", str(data), "--out", out, "--name", "r", *SMOKE])
    one_line(capsys, code, 2, "is not valid UTF-8", "--no-tensorboard")
    assert not os.path.exists(out)
    code = run(cli, ["--data", str(data), "--out", out, "--name", "r", "--no-tensorboard", *SMOKE])
    assert code == 0, capsys.readouterr().err
    assert load_pair(os.path.join(out, "r", "pair")).meta["training"]["steps"] == 2
    code = run(cli, ["export-pair", os.path.join(out, "r"), "--out", os.path.join(out, "again")])
    assert code == 0, capsys.readouterr().err
    code = run(cli, ["--data", str(data), "--out", str(tmp_path / "runs"), "--name",
                     os.fsdecode(b"bad\xffname"), *SMOKE])
    one_line(capsys, code, 2, "is not valid UTF-8 (bytes of another encoding): give the run a name in UTF-8")


def test_sigterm_while_the_photos_are_checked_stops_as_ctrl_c_does(tmp_path, data, capsys, monkeypatch):
    """The trainer's SIGTERM handling started with training: a SIGTERM while it checked thousands of photos (a
    scheduler's cancel) killed it without a word and left OUT/NAME holding .lock (QA). It stops as Ctrl-C there:
    'terminated', exit 143, no run folder."""
    import os
    import signal

    from cgan.trainer import train as train_module

    if signal.getsignal(signal.SIGTERM) != signal.SIG_DFL:
        pytest.skip("SIGTERM is handled by the test runner here")
    real = train_module.list_images

    def checking(*args, **kw):
        # (without a handler the signal would end the test run itself)
        assert signal.getsignal(signal.SIGTERM) != signal.SIG_DFL, "SIGTERM is not handled while photos are checked"
        os.kill(os.getpid(), signal.SIGTERM)
        return real(*args, **kw)

    monkeypatch.setattr(train_module, "list_images", checking)
    code = run(cli, ["--data", str(data), "--out", str(tmp_path / "runs"), "--name", "t", *SMOKE])
    assert code == 143 and capsys.readouterr().err.strip().endswith("terminated")
    assert not (tmp_path / "runs" / "t").exists()
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
