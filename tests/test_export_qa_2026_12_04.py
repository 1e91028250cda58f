"""cgan-export findings of 2026-12-04: a finished training run given by its bare name (`cgan-export summer2winter`
beside a run called summer2winter) exported the embedded pair instead, without a word; an --out inside a pair
folder was taken, and one inside an export's pair/ copy was deleted by the next `--force` export of that export."""
from __future__ import annotations

import json
import re
import shutil

import pytest

from cgan._cli import run
from cgan.export.cli import cli
from cgan.pairs import EMBEDDED_DIR, resolve


def _one_line(capsys, code: int, needle: str) -> None:
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("error: ") and needle in err, (code, err)
    assert "\n" not in err and "Traceback" not in err, err


def _no_work(monkeypatch):
    import cgan.export.api as api

    def started(*a, **k):
        raise AssertionError("the export started before its options were checked")

    monkeypatch.setattr(api, "_export_locked", started)


def test_a_run_folder_given_by_its_bare_name_is_that_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert resolve("summer2winter").folder.resolve() == (EMBEDDED_DIR / "summer2winter").resolve()
    run_dir = tmp_path / "summer2winter"
    shutil.copytree(EMBEDDED_DIR / "summer2winter", run_dir / "pair")
    (run_dir / "config.json").write_text(json.dumps({"name": "summer2winter"}))
    found = resolve("summer2winter")
    assert found.folder.resolve() == (run_dir / "pair").resolve() and found.kind == "pair"
    (run_dir / "config.json").unlink()  # a folder that only holds a pair/ is not a run: the name is looked up
    assert resolve("summer2winter").folder.resolve() == (EMBEDDED_DIR / "summer2winter").resolve()


def test_an_out_inside_a_pair_folder_is_refused(tmp_path, monkeypatch, capsys):
    pair = tmp_path / "p"
    shutil.copytree(EMBEDDED_DIR / "summer2winter", pair)
    _no_work(monkeypatch)
    code = run(cli, [str(pair), "--out", str(pair / "sub"), "--no-parity"])
    _one_line(capsys, code, f"--out {pair / 'sub'} is inside the pair folder {pair}")
    assert not (pair / "sub").exists()
    # an export's own pair/ copy is a pair folder too: the next export into xs replaced it with all inside
    copy = tmp_path / "xs" / "pair"
    shutil.copytree(EMBEDDED_DIR / "summer2winter", copy)
    code = run(cli, [str(pair), "--out", str(copy / "nested" / "deeper"), "--no-parity"])
    _one_line(capsys, code, f"is inside the pair folder {copy}")
    assert not (copy / "nested").exists()


def test_a_folder_in_the_way_of_a_file_leaves_the_previous_export_whole(tmp_path, capsys):
    """It was found after the old manifest was gone and some files renamed: a mix of two exports, no manifest."""
    from _helpers_runtime import make_pair

    a, b, out = make_pair(tmp_path / "a", seed=0), make_pair(tmp_path / "b", seed=1), tmp_path / "e"
    assert run(cli, [str(a), "--out", str(out), "--no-parity"]) == 0
    before = {f.name: f.read_bytes() for f in out.iterdir() if f.is_file()}
    (out / "G.fp32.prepost.onnx").mkdir()
    capsys.readouterr()
    code = run(cli, [str(b), "--out", str(out), "--with-prepost", "--no-parity", "--force"])
    _one_line(capsys, code, f"{out / 'G.fp32.prepost.onnx'} is a folder where this export writes its file")
    assert {f.name: f.read_bytes() for f in out.iterdir() if f.is_file()} == before


@pytest.mark.parametrize("kwargs,needle", [
    ({"parity_sizes": "64x96,128x192"}, None),            # the CLI's form works from Python too
    ({"parity_sizes": [(64, 96)]}, None),
    ({"parity_sizes": "64x96x3"}, "parity_sizes"),          # was ValueError: not enough values to unpack
    ({"parity_sizes": [(64,)]}, "parity_sizes must be 'HxW,...' or (height, width) pairs"),
    ({"parity_sizes": 64}, "parity_sizes must be 'HxW,...' or (height, width) pairs"),
    ({"parity_sizes": [(64.0, 96)]}, "parity_sizes must be 'HxW,...' or (height, width) pairs"),
    ({"parity_sizes": []}, "parity_sizes needs at least one HEIGHTxWIDTH"),
    ({"opset": "17"}, "opset must be an integer, 17 to"),   # was TypeError: '<' not supported
    ({"opset": True}, "opset must be an integer"),
])
def test_python_export_options_are_checked_in_one_line(tmp_path, monkeypatch, kwargs, needle):
    from cgan.errors import CganError
    from cgan.export.api import export_pair

    _no_work(monkeypatch)
    pair = tmp_path / "p"
    shutil.copytree(EMBEDDED_DIR / "summer2winter", pair)
    if needle is None:
        with pytest.raises(AssertionError, match="the export started"):
            export_pair(pair, tmp_path / "e", **kwargs)
    else:
        with pytest.raises(CganError, match=re.escape(needle)) as e:
            export_pair(pair, tmp_path / "e", **kwargs)
        assert "\n" not in str(e.value)


def test_a_link_to_nothing_is_not_called_a_file(tmp_path, monkeypatch, capsys):
    _no_work(monkeypatch)
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    for out in ("dangling", "dangling/x"):
        code = run(cli, ["summer2winter", "--out", str(tmp_path / out), "--no-parity"])
        _one_line(capsys, code, f"is a link to {tmp_path / 'nowhere'}, which does not exist, not a folder")
    code = run(cli, ["summer2winter", "--out", str(tmp_path / "e"), "--no-parity",
                     "--triton", str(tmp_path / "dangling")])
    _one_line(capsys, code, "--triton")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dangling"]


@pytest.mark.parametrize("spec", [5, "x", {"generator": {"blocks": 999}, "domains": {"X": "a", "Y": "b"}},
                                  {"generator": {"blocks": 9, "colour": 1}, "domains": {"X": "a", "Y": "b"}}])
def test_a_malformed_spec_is_a_damaged_file_like_the_rest_of_the_manifest(tmp_path, capsys, spec):
    """"spec": 5 in pair.json was exit 2 (a user mistake) where any other damage to the file is exit 3, and the
    message did not say which file."""
    from cgan.errors import IntegrityError
    from cgan.runtime import Translator

    pair = tmp_path / "p"
    shutil.copytree(EMBEDDED_DIR / "summer2winter", pair)
    meta = json.loads((pair / "pair.json").read_text())
    (pair / "pair.json").write_text(json.dumps({**meta, "spec": spec}))
    code = run(cli, [str(pair), "--out", str(tmp_path / "e"), "--no-parity"])
    err = capsys.readouterr().err.strip()
    assert code == 3 and err.startswith(f"error: {pair / 'pair.json'}: ") and "\n" not in err, (code, err)
    with pytest.raises(IntegrityError, match=re.escape(str(pair / "pair.json"))):
        Translator.load(pair, backend="ort-cpu")


def test_a_malformed_spec_in_an_export_manifest_is_a_damaged_file(tmp_path):
    from _helpers_runtime import make_export, make_pair

    from cgan.errors import IntegrityError
    from cgan.runtime import Translator

    out = make_export(make_pair(tmp_path / "p"), tmp_path / "e")
    meta = json.loads((out / "manifest.json").read_text())
    (out / "manifest.json").write_text(json.dumps({**meta, "spec": 5}))
    with pytest.raises(IntegrityError, match=re.escape(f"{out / 'manifest.json'}: pair spec is not a mapping")):
        Translator.load(out, backend="ort-cpu")


def test_a_failure_half_way_through_the_final_renames_puts_the_previous_export_back(tmp_path, monkeypatch):
    """A disk error (or Ctrl-C) between the renames left new G files, old F files and no manifest. The old files
    are moved aside, not deleted, and put back: the folder holds the previous export, byte for byte."""
    import os

    from _helpers_runtime import make_pair

    from cgan.export.api import export_pair

    a, b, out = make_pair(tmp_path / "a", seed=0), make_pair(tmp_path / "b", seed=1), tmp_path / "e"
    export_pair(a, out, fp16=False, parity=False)

    def snapshot():
        return {str(f.relative_to(out)): f.read_bytes() for f in out.rglob("*") if f.is_file()}

    before = snapshot()
    real = os.replace

    def failing(src, dst):
        src = os.fspath(src)  # (the new F moving in fails; putting the old one back does not)
        if os.path.basename(dst) == "F.fp32.onnx" and ".export-staging-" in src and ".previous" not in src:
            raise OSError(28, "No space left on device")
        return real(src, dst)

    monkeypatch.setattr(os, "replace", failing)
    with pytest.raises(OSError, match="No space left"):
        export_pair(b, out, fp16=False, parity=False, force=True)
    monkeypatch.setattr(os, "replace", real)
    assert snapshot() == before
    assert not [p for p in out.iterdir() if p.name.startswith(".export-staging-")]


@pytest.mark.parametrize("when", ["writing", "moving in"])
def test_a_failure_at_the_manifest_puts_the_previous_export_back(tmp_path, monkeypatch, when):
    """The manifest was written after the swap had ended: a Ctrl-C or a full disk there left the new files, the
    old ones deleted and no manifest (the folder was no export any more). It is now the swap's last file."""
    import os

    from _helpers_runtime import make_pair

    import cgan.export.api as api
    from cgan.export.api import export_pair

    a, b, out = make_pair(tmp_path / "a", seed=0), make_pair(tmp_path / "b", seed=1), tmp_path / "e"
    export_pair(a, out, fp16=False, parity=False)
    before = {str(f.relative_to(out)): f.read_bytes() for f in out.rglob("*") if f.is_file()}
    real_write, real_replace = api.write_json_atomic, os.replace

    def failing_write(path, obj):
        if when == "writing" and path.name == "manifest.json":
            raise KeyboardInterrupt
        return real_write(path, obj)

    def failing_replace(src, dst):
        if when == "moving in" and os.path.basename(dst) == "manifest.json" and ".previous" not in os.fspath(src) \
                and ".export-staging-" in os.fspath(src):
            raise OSError(28, "No space left on device")
        return real_replace(src, dst)

    monkeypatch.setattr(api, "write_json_atomic", failing_write)
    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises((KeyboardInterrupt, OSError)):
        export_pair(b, out, fp16=False, parity=False, force=True)
    monkeypatch.undo()
    assert {str(f.relative_to(out)): f.read_bytes() for f in out.rglob("*") if f.is_file()} == before
    assert not [p for p in out.iterdir() if p.name.startswith(".export-staging-")]
    export_pair(b, out, fp16=False, parity=False, force=True)  # and the next export goes through
    assert json.loads((out / "manifest.json").read_text())["source"]["pair_sha256"] != {}


def test_a_reader_waits_out_the_swap_and_an_export_killed_in_it_is_said(tmp_path, monkeypatch):
    """While an export swaps its files in, the folder has no manifest for a moment: a reader found no export
    there ('unknown pair', or the packaged pair of that name instead); one killed then left it so for good."""
    import os
    import threading
    import time

    from _helpers_runtime import make_pair

    import cgan.pairs as pairs
    from cgan.errors import CganError
    from cgan.export.api import export_pair

    from cgan._locks import folder_lock

    out = tmp_path / "e"
    export_pair(make_pair(tmp_path / "a"), out, fp16=False, parity=False)
    stage = out / ".export-staging-x"
    (stage / ".previous").mkdir(parents=True)
    monkeypatch.setattr(pairs, "SWAP_WAIT_S", 30.0)  # (generous: the test never waits that long)
    swapping = threading.Event()

    def exporter():  # holds the folder's lock, as an export does, through its swap
        with folder_lock(out, "waiting"):
            os.replace(out / "manifest.json", stage / ".previous" / "manifest.json")  # the swap's first step
            swapping.set()
            time.sleep(0.5)
            os.replace(stage / ".previous" / "manifest.json", out / "manifest.json")

    t = threading.Thread(target=exporter)
    t.start()
    assert swapping.wait(30)
    assert pairs._kind_or_none(out) is None  # listing names does not wait
    assert resolve(str(out)).kind == "export"  # waited for the swap to end (else: "stopped while it replaced")
    t.join(30)
    os.replace(out / "manifest.json", stage / ".previous" / "manifest.json")  # a swap whose export was killed
    t0 = time.monotonic()
    with pytest.raises(CganError, match=r"holds no manifest.json: an export into it was stopped while it replaced "
                                        r"the previous one \(set aside in .export-staging-x\); run cgan-export"):
        resolve(str(out))
    assert time.monotonic() - t0 < 10  # no writer holds the lock: said at once, no wait
    monkeypatch.chdir(tmp_path)  # a bare name that is such a folder here: the same, not "unknown pair 'e'"
    with pytest.raises(CganError, match="an export into it was stopped"):
        resolve("e")
    export_pair(make_pair(tmp_path / "a"), out, fp16=False, parity=False)  # and the next export mends it
    assert resolve(str(out)).kind == "export" and not list(out.glob(".export-staging-*"))


def test_a_pair_written_again_during_its_export_is_said_so(tmp_path, monkeypatch):
    """`cgan-train export-pair` writing the source pair again while cgan-export read it: the export failed with
    'X/.export-staging-…/pair/F.safetensors does not match the sha256 … corrupted or replaced', naming a hidden
    copy and blaming damage. Nothing is written either way; the message now says what happened."""
    from _helpers_runtime import make_pair

    import cgan.export.api as api
    from cgan.errors import IntegrityError
    from cgan.export.api import export_pair

    pair, out = make_pair(tmp_path / "a", seed=0), tmp_path / "e"
    real = api._copy_pair

    def rewritten_first(p, dest):
        make_pair(tmp_path / "a", seed=1)  # the other command's new weights land now
        return real(p, dest)

    monkeypatch.setattr(api, "_copy_pair", rewritten_first)
    with pytest.raises(IntegrityError, match=r"^the pair .* changed while it was exported \(written again by another "
                                             r"command, such as cgan-train export-pair\): nothing was written"):
        export_pair(pair, out, fp16=False, parity=False)
    assert not (out / "manifest.json").exists()
    monkeypatch.undo()
    export_pair(pair, out, fp16=False, parity=False)  # once it is done, the export goes through
