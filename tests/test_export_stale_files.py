"""Exporting into a folder that holds another export replaced its manifest but left the files the new export
does not make (FP16 and pre/post graphs of the old weights) beside it: opened directly, or by a Triton
repository, they ran the old model. Files the old manifest listed and the new one does not are removed;
anything else in the folder is the user's and stays."""
from __future__ import annotations

import json

from _helpers_runtime import make_pair
from cgan.export.api import export_pair


def _names(folder):
    return {p.name for p in folder.iterdir()}


def test_a_narrower_export_removes_the_wider_ones_leftovers(tmp_path):
    a = make_pair(tmp_path / "a", blocks=1, ngf=4)
    b = make_pair(tmp_path / "b", blocks=1, ngf=4, seed=5)
    out = tmp_path / "export"
    export_pair(a, out, with_prepost=True, parity=False)
    wide = _names(out)
    assert {"G.fp16.onnx", "F.fp16.onnx"} <= wide and any("prepost" in n for n in wide), wide
    (out / "notes.txt").write_text("mine")  # not listed by any manifest: never touched
    export_pair(b, out, fp16=False, parity=False)
    manifest = json.loads((out / "manifest.json").read_text())
    listed = {f["path"] for f in manifest["files"]}
    assert _names(out) == listed | {"manifest.json", "pair", "notes.txt"}
    assert not any("fp16" in n or "prepost" in n for n in _names(out))


def test_a_hostile_old_manifest_cannot_delete_outside_the_folder(tmp_path):
    a = make_pair(tmp_path / "a", blocks=1, ngf=4)
    out = tmp_path / "export"
    export_pair(a, out, fp16=False, parity=False)
    victim = tmp_path / "victim.txt"
    victim.write_text("keep")
    (out / "sub").mkdir()
    (out / "sub" / "x.onnx").write_text("keep")
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["files"] += [{"path": "../victim.txt"}, {"path": str(victim)}, {"path": "sub/x.onnx"},
                          {"path": "pair"}, {"sidecar": ".."}, {"path": 5}, "junk"]
    (out / "manifest.json").write_text(json.dumps(manifest))
    export_pair(a, out, fp16=False, parity=False, force=True)
    assert victim.read_text() == "keep" and (out / "sub" / "x.onnx").read_text() == "keep"
    assert (out / "pair" / "pair.json").is_file()
