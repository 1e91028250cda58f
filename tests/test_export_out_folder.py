"""`cgan-export --out` at a folder that is not a cgan export: the export replaced its manifest.json and pair/
and removed what the old manifest listed, so a web app's manifest.json, the files it listed and a pair/ of
notes were deleted. Such folders are refused, untouched; other files beside an export stay as they were."""
from __future__ import annotations

import json
import os

import pytest

from _helpers_runtime import make_pair
from cgan.errors import CganError
from cgan.export.api import export_pair


def _tree(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


@pytest.fixture
def pair(tmp_path):
    return make_pair(tmp_path / "a", blocks=1, ngf=4)


def test_a_foreign_manifest_and_the_files_it_lists_stay(tmp_path, pair):
    out = tmp_path / "app"
    (out / "pair").mkdir(parents=True)
    (out / "manifest.json").write_text(json.dumps({"name": "my app", "files": [{"path": "index.html"},
                                                                            {"path": "app.js"}]}))
    (out / "index.html").write_text("<html>")
    (out / "app.js").write_text("1")
    (out / "pair" / "notes.txt").write_text("mine")
    before = _tree(out)
    with pytest.raises(CganError, match="manifest.json that is not a cgan export's"):
        export_pair(pair, out, fp16=False, parity=False)
    assert _tree(out) == before


@pytest.mark.parametrize("kind", ["notes", "link"])
def test_a_pair_folder_that_is_not_a_cgan_pair_stays(tmp_path, pair, kind):
    out = tmp_path / "out"
    out.mkdir()
    if kind == "notes":
        (out / "pair").mkdir()
        (out / "pair" / "notes.txt").write_text("mine")
    else:  # re-export deleted manifest.json, then crashed in rmtree on the link: the export was broken
        export_pair(pair, out, fp16=False, parity=False)
        elsewhere = tmp_path / "elsewhere"
        os.replace(out / "pair", elsewhere)
        os.symlink(elsewhere, out / "pair")
    before = _tree(out)
    with pytest.raises(CganError, match="pair/ that is not a cgan pair"):
        export_pair(pair, out, fp16=False, parity=False)
    assert _tree(out) == before


def test_a_damaged_manifest_is_refused_not_replaced(tmp_path, pair):
    out = tmp_path / "out"
    out.mkdir()
    (out / "manifest.json").write_text("{not json")
    with pytest.raises(CganError, match="delete the folder first"):
        export_pair(pair, out, fp16=False, parity=False)
    assert (out / "manifest.json").read_text() == "{not json"


def test_an_existing_folder_of_other_files_and_an_earlier_export_still_take_an_export(tmp_path, pair):
    out = tmp_path / "models"
    out.mkdir()
    (out / "readme.txt").write_text("mine")
    export_pair(pair, out, fp16=False, parity=False)
    export_pair(pair, out, fp16=False, parity=False)  # again, over its own export
    assert (out / "readme.txt").read_text() == "mine"
    assert json.loads((out / "manifest.json").read_text())["format"] == "cgan.export"


def test_an_unwritable_cgan_home_is_named_when_the_export_folder_is_its_default(tmp_path, monkeypatch):
    """CGAN_HOME a file (or unwritable) and no --out: the error said "choose another path" of a folder the user
    never chose. It now names $CGAN_HOME and --out."""
    from cgan._cli import run
    from cgan.export.cli import cli

    home = tmp_path / "home-file"
    home.write_text("not a folder")
    monkeypatch.setenv("CGAN_HOME", str(home))
    with pytest.raises(CganError, match=r"cannot write to export folder .*home-file/exports/summer2winter: "
                                        r".*home-file is a file, not a folder; it is the default under \$CGAN_HOME: "
                                        r"set CGAN_HOME to a writable folder, or pass --out DIR"):
        export_pair("summer2winter")
    assert run(cli, ["summer2winter", "--out", str(tmp_path / "o"), "--no-parity"]) == 0  # --out is the way out
