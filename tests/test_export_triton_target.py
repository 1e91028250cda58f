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
