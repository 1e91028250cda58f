"""A --triton path that cannot be a folder (under a file, a file itself) was found only after the whole export was
written (on a GPU, after minutes of engine building). It is checked before anything is made."""
from __future__ import annotations

import pytest

from _helpers_runtime import make_pair
from cgan._cli import run
from cgan.errors import CganError
from cgan.export.api import export_pair


@pytest.mark.parametrize("where", ["under-a-file", "a-file"])
def test_bad_triton_path_fails_before_the_export(tmp_path, where):
    pair = make_pair(tmp_path / "pair", blocks=1, ngf=4)
    f = tmp_path / "afile"
    f.write_text("")
    target = f / "sub" if where == "under-a-file" else f
    with pytest.raises(CganError, match="--triton"):
        export_pair(pair, tmp_path / "out", fp16=False, parity=False, triton=str(target))
    assert not (tmp_path / "out").exists()


def test_cli_is_one_line_and_writes_nothing(tmp_path, capsys):
    from cgan.export.cli import cli

    pair = make_pair(tmp_path / "pair", blocks=1, ngf=4)
    f = tmp_path / "afile"
    f.write_text("")
    code = run(cli, [str(pair), "--out", str(tmp_path / "out"), "--no-fp16", "--no-parity", "--triton", str(f / "sub")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "--triton" in err[0] and "is a file, not a folder" in err[0]
    assert not (tmp_path / "out").exists()


def test_a_new_triton_folder_is_fine(tmp_path):
    pair = make_pair(tmp_path / "pair", blocks=1, ngf=4)
    export_pair(pair, tmp_path / "out", fp16=False, parity=False, triton=str(tmp_path / "repo" / "deep"))
    assert any((tmp_path / "repo" / "deep").iterdir())


def test_a_new_export_removes_the_models_an_earlier_one_put_there_and_nothing_else(tmp_path, caplog):
    """--with-prepost, then an export of other weights without it: the old prepost models would serve the old
    weights. They go; another pair's models and the user's own folders stay."""
    import logging

    from _helpers_export import make_pair as make_export_pair

    repo = tmp_path / "repo"
    first = make_export_pair(tmp_path / "p1", seed=1)
    export_pair(first, tmp_path / "out", fp16=False, parity=False, with_prepost=True, triton=str(repo))
    assert sorted(p.name for p in repo.iterdir()) == ["summer2winter_F_fp32", "summer2winter_F_fp32_prepost",
                                                      "summer2winter_G_fp32", "summer2winter_G_fp32_prepost"]
    other = repo / "day2night_G_fp32"  # another pair's model, and the user's own look-alike without cgan's config
    other.mkdir()
    (other / "config.pbtxt").write_text('name: "day2night_G_fp32"\n')
    own = repo / "summer2winter_G_fp16_prepost"
    (own / "1").mkdir(parents=True)
    (own / "config.pbtxt").write_text('name: "summer2winter_G_fp16_prepost"\nplatform: "python"\n')
    second = make_export_pair(tmp_path / "p2", seed=2)
    with caplog.at_level(logging.INFO):
        export_pair(second, tmp_path / "out", fp16=False, parity=False, triton=str(repo))
    assert sorted(p.name for p in repo.iterdir()) == ["day2night_G_fp32", "summer2winter_F_fp32",
                                                      "summer2winter_G_fp16_prepost", "summer2winter_G_fp32"]
    assert sum(r.getMessage().startswith("Triton:") and "removed" in r.getMessage() for r in caplog.records) == 2
    assert (repo / "summer2winter_G_fp32" / "1" / "model.onnx").read_bytes() == \
        (tmp_path / "out" / "G.fp32.onnx").read_bytes()


def test_exports_of_other_folders_keep_their_models(tmp_path):
    """Two single-direction pairs of one name (as import-official makes them), exported into two folders and one
    repository: the second export removed the first one's G. Only the models an export into the same folder
    wrote are removed."""
    from _helpers_export import make_pair as make_export_pair

    repo = tmp_path / "repo"
    g_only = make_export_pair(tmp_path / "g", seed=1, gens=("G",))
    f_only = make_export_pair(tmp_path / "f", seed=2, gens=("F",))
    export_pair(g_only, tmp_path / "out_g", fp16=False, parity=False, triton=str(repo))
    export_pair(f_only, tmp_path / "out_f", fp16=False, parity=False, triton=str(repo))
    assert sorted(p.name for p in repo.iterdir()) == ["summer2winter_F_fp32", "summer2winter_G_fp32"]
    export_pair(f_only, tmp_path / "out_g", fp16=False, parity=False, triton=str(repo))  # out_g now holds F
    assert sorted(p.name for p in repo.iterdir()) == ["summer2winter_F_fp32"]


def test_a_grayscale_pair_gets_one_channel_triton_dims(tmp_path):
    from cgan.spec import GeneratorSpec

    from _helpers_export import make_pair as make_export_pair

    pair = make_export_pair(tmp_path / "gray", spec=GeneratorSpec(blocks=1, ngf=4, in_channels=1, out_channels=1))
    export_pair(pair, tmp_path / "out", fp16=False, parity=False, triton=str(tmp_path / "repo"))
    cfg = (tmp_path / "repo" / "summer2winter_G_fp32" / "config.pbtxt").read_text()
    assert cfg.count("dims: [ 1, -1, -1 ]") == 2 and "[ 3," not in cfg


def _repository(repo):
    """Every file under `repo` (hidden temp files included) -> its bytes."""
    return {p.relative_to(repo).as_posix(): p.read_bytes() for p in sorted(repo.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("how", ["copy fails", "ctrl-c", "file in the way", "ctrl-c while syncing"])
def test_a_failed_repository_write_leaves_the_old_one_whole(tmp_path, monkeypatch, how):
    """The QA pass's repro: a second export whose Triton step failed half-way (a Ctrl-C while copying, a file
    where F's model folder goes, a full disk) left new G models beside old F ones, or an empty `1/` without a
    config. Every file is now written beside its place first, and only then renamed."""
    import shutil

    import cgan.export.triton as triton
    from _helpers_export import make_pair as make_export_pair

    repo = tmp_path / "repo"
    export_pair(make_export_pair(tmp_path / "p1", seed=1), tmp_path / "out", fp16=False, parity=False,
                with_prepost=True, triton=str(repo))
    before = _repository(repo)
    if how == "ctrl-c while syncing":  # the review's repro: each file was renamed after its own fsync, so an
        import os  # interrupt in a later fsync left the first models new (the slow part: engines are 100s of MB)

        real_fsync, synced = os.fsync, []

        def fsync(fd):
            if str(repo) in os.readlink(f"/proc/self/fd/{fd}"):
                synced.append(fd)
                if len(synced) == 4:
                    raise KeyboardInterrupt
            return real_fsync(fd)

        monkeypatch.setattr(os, "fsync", fsync)
        error = KeyboardInterrupt
    elif how == "file in the way":
        shutil.rmtree(repo / "summer2winter_F_fp32_prepost")
        (repo / "summer2winter_F_fp32_prepost").write_text("someone's file")
        before = _repository(repo)
        error = OSError
    else:
        calls = []
        real = shutil.copyfile
        error = KeyboardInterrupt if how == "ctrl-c" else OSError

        def copyfile(src, dst, **kw):  # (shutil is one module: the export's own copies pass through here too)
            calls.append(dst) if str(repo) in str(dst) else None
            if len(calls) == 3 and str(repo) in str(dst):
                raise error("no space left" if error is OSError else None)
            return real(src, dst, **kw)

        monkeypatch.setattr(triton.shutil, "copyfile", copyfile)
    with pytest.raises(error):
        export_pair(make_export_pair(tmp_path / "p2", seed=2), tmp_path / "out", fp16=False, parity=False,
                    with_prepost=True, triton=str(repo))
    assert _repository(repo) == before  # the old weights everywhere, no temp file left
    assert not [p for p in repo.rglob("*") if p.is_dir() and not any(p.iterdir())]  # no empty model folder


def test_models_of_a_pair_of_another_name_exported_into_the_folder_before_are_removed(tmp_path):
    """The removal matched only the new pair's name: X2Y's models from an earlier export into the same folder
    stayed, serving their old weights, after summer2winter was exported there."""
    from _helpers_export import make_pair as make_export_pair
    from cgan.spec import PairSpec
    from cgan.trainer.weights import load_generator, save_pair
    from cgan.pairs import load_pair

    first = load_pair(make_export_pair(tmp_path / "p1", seed=1))
    states = {g: load_generator(first, g).state_dict() for g in ("G", "F")}
    renamed = save_pair(tmp_path / "x2y", PairSpec(first.spec.generator, "X", "Y"), states)
    repo = tmp_path / "repo"
    export_pair(renamed, tmp_path / "out", fp16=False, parity=False, triton=str(repo))
    assert sorted(p.name for p in repo.iterdir()) == ["X2Y_F_fp32", "X2Y_G_fp32"]
    export_pair(first.folder, tmp_path / "out", fp16=False, parity=False, triton=str(repo))
    assert sorted(p.name for p in repo.iterdir()) == ["summer2winter_F_fp32", "summer2winter_G_fp32"]


def test_the_manifest_names_the_repository_by_its_absolute_path(tmp_path, monkeypatch):
    import json

    pair = make_pair(tmp_path / "pair", blocks=1, ngf=4)
    monkeypatch.chdir(tmp_path)
    export_pair(pair, tmp_path / "out", fp16=False, parity=False, triton="repo")
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["triton"]["repository"] == str((tmp_path / "repo").resolve())


def test_a_tensorrt_rtx_model_an_older_cgan_wrote_is_removed(tmp_path):
    """Before 2026-12 a TensorRT-RTX plan went into the repository as <model>_trtrtx, with no line naming its export
    folder; Triton cannot load it (and stops at start with --exit-on-error): an export with an RTX plan removes it."""
    from cgan.export.triton import write_repository

    repo, export = tmp_path / "repo", tmp_path / "out"
    export.mkdir()
    (export / "G.fp16.trt-rtx.plan").write_bytes(b"plan")
    old = repo / "p_G_fp16_trtrtx"
    (old / "1").mkdir(parents=True)
    (old / "config.pbtxt").write_text('name: "p_G_fp16_trtrtx"\nplatform: "tensorrt_plan"\ndynamic_batching { }\n')
    rec = {"kind": "engine", "path": "G.fp16.trt-rtx.plan", "generator": "G", "precision": "fp16",
           "io": "nchw", "io_dtype": "float32"}
    assert write_repository(export, repo, "p", [rec]) == []
    assert not old.exists()
