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
