"""Hostile and broken files: pickle bombs, truncated / random bytes, forged hashes, path traversal, huge shapes.

Every case: a CganError/IntegrityError (one line through the CLIs), a non-zero exit, no code run, nothing written.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from _helpers_reliability import (huge_onnx, huge_safetensors, random_bytes, rehash_export, rehash_pair, tree,
                                  truncate, write_pickle_bomb, write_raw_pickle_bomb)
from _helpers_runtime import make_export, make_pair
from cgan._cli import run
from cgan._files import file_record, read_json, write_json_atomic
from cgan.errors import CganError, IntegrityError
from cgan.pairs import load_pair


# ---- fixtures --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def base(tmp_path_factory):
    root = tmp_path_factory.mktemp("rel_files")
    pair = make_pair(root / "pair", blocks=1, ngf=4)
    export = make_export(pair, root / "export")
    return pair, export


@pytest.fixture
def pair(base, tmp_path):
    return Path(shutil.copytree(base[0], tmp_path / "pair"))


@pytest.fixture
def export(base, tmp_path):
    return Path(shutil.copytree(base[1], tmp_path / "export"))


def one_line_error(code: int, err: str, *needles: str, codes=(2, 3)) -> str:
    assert code in codes, (code, err)
    assert "Traceback" not in err, err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for n in needles:
        assert n in lines[0], lines[0]
    return lines[0]


def train_cli(argv, capsys):
    from cgan.trainer.cli import cli

    code = run(cli, argv)
    return code, capsys.readouterr().err


# ---- pickle bombs ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("maker", [write_pickle_bomb, write_raw_pickle_bomb])
def test_import_official_pickle_bomb_not_run(tmp_path, capsys, maker):
    marker = tmp_path / "PWNED"
    bomb = maker(tmp_path / "latest_net_G_A.pth", marker)
    out = tmp_path / "out"
    code, err = train_cli(["import-official", str(bomb), "--out", str(out)], capsys)
    one_line_error(code, err, "latest_net_G_A.pth", codes=(3,))
    assert not marker.exists(), "unpickling ran code"
    assert tree(out) == {}


def test_resume_checkpoint_pickle_bomb_not_run(tmp_path, capsys):
    from cgan.trainer.config import TrainConfig

    marker = tmp_path / "PWNED"
    run_dir = tmp_path / "runs" / "r"
    (run_dir / "checkpoints").mkdir(parents=True)
    write_json_atomic(run_dir / "config.json", TrainConfig(name="r").to_dict())
    write_pickle_bomb(run_dir / "checkpoints" / "step-000000007.pt", marker, wrap="checkpoint")
    before = tree(run_dir)
    code, err = train_cli(["--out", str(tmp_path / "runs"), "--name", "r", "--resume"], capsys)
    one_line_error(code, err, "step-000000007.pt", codes=(3,))
    assert not marker.exists(), "unpickling ran code"
    assert tree(run_dir) == before, "nothing may be written when the checkpoint is refused"
    # export-pair from the same checkpoint is refused the same way
    code, err = train_cli(["export-pair", str(run_dir), "--out", str(tmp_path / "p")], capsys)
    one_line_error(code, err, codes=(3,))
    assert not marker.exists() and not (tmp_path / "p").exists()


# ---- truncated / random official checkpoints ------------------------------------------------------------------
@pytest.mark.parametrize("damage", ["truncated", "random", "empty", "json"])
def test_import_official_broken_pth(tmp_path, capsys, damage):
    import torch

    from cgan.spec import GeneratorSpec
    from cgan.trainer.networks import build_generator

    p = tmp_path / "G_A.pth"
    torch.save(build_generator(GeneratorSpec(blocks=1, ngf=4)).state_dict(), p)
    if damage == "truncated":
        truncate(p, 0.6)
    elif damage == "random":
        p.write_bytes(random_bytes(5000))
    elif damage == "empty":
        p.write_bytes(b"")
    else:
        p.write_text('{"model.1.weight": [1, 2, 3]}')
    out = tmp_path / "out"
    code, err = train_cli(["import-official", str(p), "--out", str(out)], capsys)
    one_line_error(code, err, "G_A.pth", codes=(3,))
    assert tree(out) == {}


# ---- pair folders: safetensors, pair.json ------------------------------------------------------------------------
def _video_cli(argv, capsys):
    from cgan.runtime.cli import cli

    code = run(cli, argv)
    return code, capsys.readouterr().err


def _load_torch(folder):
    from cgan.runtime import Translator

    with Translator.load(str(folder), backend="torch", device="cpu") as t:
        return t.translate(np.zeros((16, 16, 3), np.uint8))


@pytest.mark.parametrize("damage", ["truncated", "random", "zeros"])
def test_safetensors_damage_detected_by_hash(pair, damage):
    g = pair / "G.safetensors"
    if damage == "truncated":
        truncate(g, 0.7)
    elif damage == "random":
        g.write_bytes(random_bytes(g.stat().st_size))
    else:
        g.write_bytes(b"\0" * g.stat().st_size)
    with pytest.raises(IntegrityError, match="G.safetensors"):
        load_pair(pair)
    with pytest.raises(IntegrityError):
        _load_torch(pair)


@pytest.mark.parametrize("damage", ["truncated", "random", "header-only"])
def test_safetensors_damage_with_forged_hashes(pair, damage):
    """pair.json rewritten to match the broken file: the safetensors reader itself must refuse it cleanly."""
    g = pair / "G.safetensors"
    if damage == "truncated":
        truncate(g, 0.7)
    elif damage == "random":
        g.write_bytes(random_bytes(3000, seed=4))
    else:
        g.write_bytes(g.read_bytes()[:8])
    rehash_pair(pair)
    p = load_pair(pair)
    with pytest.raises(IntegrityError, match="safetensors"):
        p.load_numpy("G")
    with pytest.raises(IntegrityError, match="safetensors"):
        _load_torch(pair)


def test_safetensors_huge_declared_shape(pair):
    """A header declaring a 1e12-element tensor over 16 bytes: refused without trying to allocate 4 TB."""
    from cgan.trainer.weights import load_generator

    huge_safetensors(pair / "G.safetensors")
    rehash_pair(pair)
    p = load_pair(pair)
    with pytest.raises(IntegrityError, match="safetensors"):
        p.load_numpy("G")
    with pytest.raises(IntegrityError, match="safetensors"):
        load_generator(p, "G")


def test_safetensors_wrong_shapes_for_spec(pair):
    """A valid safetensors file of other shapes: strict load says it does not match pair.json's spec."""
    from safetensors.numpy import save_file

    from cgan.trainer.weights import load_generator

    state = load_pair(pair).load_numpy("G")
    save_file({"model.1.weight": np.zeros((2, 3, 7, 7), np.float32)}, str(pair / "G.safetensors"))
    rehash_pair(pair)
    with pytest.raises(IntegrityError, match="weights, the spec needs"):
        load_generator(pair, "G")
    # the right number of weights in the wrong shapes: the strict load names the mismatch
    state["model.1.weight"] = state["model.1.weight"].reshape(-1, 1, 7, 7).copy()
    save_file(state, str(pair / "G.safetensors"))
    rehash_pair(pair)
    with pytest.raises(IntegrityError, match="does not match the spec"):
        load_generator(pair, "G")


@pytest.mark.parametrize("content", [b"", b"{", b"\xff\xfe\x00garbage", b"[]", b'{"format": "cgan.pair"}',
                                     random_bytes(2000, seed=7)])
def test_pair_json_broken(pair, content, capsys):
    (pair / "pair.json").write_bytes(content)
    with pytest.raises(IntegrityError):
        load_pair(pair)
    code, err = _video_cli(["--pair", str(pair), "--input", "demo", "--max-frames", "1", "--no-display",
                            "--output", str(pair / "o.mp4")], capsys)
    one_line_error(code, err, "pair.json", codes=(3,))
    assert not (pair / "o.mp4").exists()


def test_pair_json_huge_is_refused_unread(pair):
    with open(pair / "pair.json", "wb") as f:
        f.truncate(64 << 20)  # sparse 64 MiB
    with pytest.raises(IntegrityError, match="too large"):
        load_pair(pair)


def test_pair_json_hash_mismatch(pair, capsys):
    meta = read_json(pair / "pair.json")
    meta["files"]["G"]["sha256"] = "0" * 64
    write_json_atomic(pair / "pair.json", meta)
    with pytest.raises(IntegrityError, match="sha256"):
        load_pair(pair)
    with pytest.raises(IntegrityError, match="sha256"):
        _load_torch(pair)
    meta["files"]["G"]["bytes"] = 1
    write_json_atomic(pair / "pair.json", meta)
    with pytest.raises(IntegrityError, match="bytes"):
        load_pair(pair)


@pytest.mark.parametrize("name", ["../secret.safetensors", "/etc/passwd", "sub/../../x.safetensors",
                                  "..\\x.safetensors", ""])
def test_pair_json_path_traversal(pair, tmp_path, name):
    secret = tmp_path / "secret.safetensors"
    shutil.copy(pair / "G.safetensors", secret)
    meta = read_json(pair / "pair.json")
    meta["files"]["G"]["path"] = name
    write_json_atomic(pair / "pair.json", meta)
    with pytest.raises(IntegrityError, match="outside its folder"):
        load_pair(pair)
    with pytest.raises(IntegrityError, match="outside its folder"):
        load_pair(pair, verify=False)
    with pytest.raises(IntegrityError, match="outside its folder"):
        _load_torch(pair)


def test_pair_symlink_escaping_folder_is_refused(pair, tmp_path):
    outside = tmp_path / "elsewhere.safetensors"
    shutil.move(pair / "G.safetensors", outside)
    (pair / "G.safetensors").symlink_to(outside)
    with pytest.raises(IntegrityError, match="outside its folder"):
        load_pair(pair)


# ---- export folders: ONNX, manifest.json, engines ---------------------------------------------------------------
def _load_ort(folder):
    from cgan.runtime import Translator

    with Translator.load(str(folder), backend="ort-cpu") as t:
        return t.translate(np.zeros((16, 16, 3), np.uint8))


@pytest.mark.parametrize("damage", ["truncated", "random"])
def test_onnx_damage_detected_by_hash(export, damage):
    g = export / "G.fp32.onnx"
    truncate(g, 0.5) if damage == "truncated" else g.write_bytes(random_bytes(g.stat().st_size))
    with pytest.raises(IntegrityError, match="G.fp32.onnx"):
        _load_ort(export)


@pytest.mark.parametrize("damage", ["truncated", "random", "empty"])
def test_onnx_damage_with_forged_hashes(export, damage):
    g = export / "G.fp32.onnx"
    if damage == "truncated":
        truncate(g, 0.5)
    elif damage == "random":
        g.write_bytes(random_bytes(4000, seed=9))
    else:
        g.write_bytes(b"")
    rehash_export(export)
    with pytest.raises(CganError, match="G.fp32.onnx"):
        _load_ort(export)


def test_onnx_huge_declared_initializer(export):
    huge_onnx(export / "G.fp32.onnx")
    rehash_export(export)
    with pytest.raises(CganError, match="G.fp32.onnx"):
        _load_ort(export)


@pytest.mark.parametrize("content", [b"", b"{", random_bytes(1500, seed=3), b'{"format": "cgan.export"}',
                                     b'{"format": "cgan.export", "version": 1, "spec": {}, "files": []}'])
def test_manifest_json_broken(export, content, capsys):
    (export / "manifest.json").write_bytes(content)
    with pytest.raises(CganError):
        _load_ort(export)
    code, err = _video_cli(["--pair", str(export), "--input", "demo", "--max-frames", "1", "--no-display",
                            "--output", str(export / "o.mp4")], capsys)
    one_line_error(code, err)
    assert not (export / "o.mp4").exists()


def test_manifest_hash_mismatch(export):
    meta = read_json(export / "manifest.json")
    meta["files"][0]["sha256"] = "f" * 64
    write_json_atomic(export / "manifest.json", meta)
    with pytest.raises(IntegrityError, match="sha256"):
        _load_ort(export)


@pytest.mark.parametrize("name", ["../G.fp32.onnx", "/tmp/G.fp32.onnx", "pair/../../G.fp32.onnx"])
def test_manifest_path_traversal(export, tmp_path, name):
    shutil.copy(export / "G.fp32.onnx", tmp_path / "G.fp32.onnx")
    meta = read_json(export / "manifest.json")
    for rec in meta["files"]:
        rec["path"] = name
    write_json_atomic(export / "manifest.json", meta)
    with pytest.raises(IntegrityError, match="outside its folder"):
        _load_ort(export)
    from cgan.runtime import Translator

    with pytest.raises(IntegrityError, match="outside its folder"):  # auto does not pass it over for torch
        Translator.load(str(export))


def test_engine_sidecar_broken_or_escaping(export, monkeypatch):
    """Engine records with a random-byte plan, a truncated / random / escaping sidecar: never usable, clear
    reasons, and the plan's bytes are only read after its hash matches."""
    from cgan.runtime.backends import tensorrt as trtmod
    from cgan.runtime.backends.base import load_model
    from cgan.runtime.backends.tensorrt import Environment, TensorRTBackend

    env = Environment("tensorrt", "10.12.0.36", "NVIDIA H100", "9.0")
    monkeypatch.setattr(trtmod, "module_available", lambda name: True)
    monkeypatch.setattr(trtmod.cudahelp, "gpu_count", lambda: 1)
    monkeypatch.setattr(TensorRTBackend, "environment", classmethod(lambda cls: env))
    (export / "G.fp16.trt.plan").write_bytes(random_bytes(3000, seed=11))
    meta = read_json(export / "manifest.json")
    onnx_sha = meta["files"][0]["sha256"]
    good_side = {"format": "cgan.engine", "version": 1, "flavour": "tensorrt", "tensorrt_version": "10.12.0.36",
                 "gpu_name": "NVIDIA H100", "compute_capability": "9.0", "onnx_sha256": onnx_sha,
                 "profiles": [{"min": [1, 3, 16, 16], "opt": [1, 3, 64, 64], "max": [1, 3, 256, 256]}]}
    rec = file_record(export / "G.fp16.trt.plan", export)
    rec.update(kind="engine", generator="G", precision="fp16", io="nchw", io_dtype="float32", flavour="tensorrt",
               sidecar="G.fp16.trt.plan.json")
    meta["files"].append(rec)
    write_json_atomic(export / "manifest.json", meta)

    side = export / "G.fp16.trt.plan.json"
    write_json_atomic(side, good_side)
    assert TensorRTBackend.check(load_model(str(export)), "fp16") == (True, "")
    for content, words in [(json.dumps(good_side)[:40].encode(), "not valid JSON"),
                           (random_bytes(500, seed=2), "not valid JSON"), (b"[1, 2]", "not a JSON object")]:
        side.write_bytes(content)
        ok, reason = TensorRTBackend.check(load_model(str(export)), "fp16")
        assert not ok and words in reason and "--engine" in reason, reason
    write_json_atomic(side, good_side)
    rec["sidecar"] = "../../G.fp16.trt.plan.json"
    write_json_atomic(export / "manifest.json", meta)
    ok, reason = TensorRTBackend.check(load_model(str(export)), "fp16")
    assert not ok and "outside its folder" in reason, reason
    # the engine file itself: truncated -> refused by size/sha256 before TensorRT ever sees it
    rec["sidecar"] = "G.fp16.trt.plan.json"
    write_json_atomic(export / "manifest.json", meta)
    truncate(export / "G.fp16.trt.plan", 0.5)
    model = load_model(str(export))
    with pytest.raises(IntegrityError, match="truncated or replaced"):
        model.path(model.find("engine")[0])


def test_pair_json_spec_forged_to_a_huge_network(pair):
    """pair.json's spec rewritten to 64 blocks / ngf 1024 (19.5G parameters, ~78 GB) over the real small weights:
    refused before the network is built (no allocation, no minutes of init)."""
    import time

    from _helpers_reliability import rss_bytes
    from cgan.trainer.weights import load_generator

    meta = read_json(pair / "pair.json")
    meta["spec"]["generator"].update(blocks=64, ngf=1024)
    write_json_atomic(pair / "pair.json", meta)
    rss, t0 = rss_bytes(), time.perf_counter()
    with pytest.raises(IntegrityError, match="weights, the spec needs"):
        load_generator(pair, "G")
    with pytest.raises(IntegrityError, match="weights, the spec needs"):
        _load_torch(pair)
    assert time.perf_counter() - t0 < 10 and rss_bytes() - rss < 200 * 2**20


# ---- every single-field mutation of pair.json / manifest.json ---------------------------------------------
_ODD_VALUES = [None, True, 0, -1, 10**30, 1.5, float("nan"), "", "x", "../x", [], [1], {}, {"a": 1}, "G",
               "summer2winter"]


def _json_paths(obj, prefix=()):
    yield prefix
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _json_paths(v, prefix + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _json_paths(v, prefix + (i,))


def _mutated(obj, path, value):
    import copy

    if not path:
        return value
    obj = copy.deepcopy(obj)
    cur = obj
    for k in path[:-1]:
        cur = cur[k]
    cur[path[-1]] = value
    return obj


@pytest.mark.parametrize("which", ["pair.json", "manifest.json"])
def test_every_field_mutation_is_loaded_or_refused_cleanly(pair, export, which):
    """Each field (and each sub-tree) of a valid manifest replaced by odd JSON values: loading gives a model or a
    CganError, never another exception (found: value_range ["x"] -> ValueError, generator [] -> TypeError)."""
    from cgan.runtime.backends.base import load_model

    folder = pair if which == "pair.json" else export
    target = folder / which
    base = json.loads(target.read_text())
    failures = []
    for path in _json_paths(base):
        for value in _ODD_VALUES:
            target.write_text(json.dumps(_mutated(base, path, value)))
            try:
                model = load_model(str(folder))
                for rec in model.files:
                    model.path(rec)
                if which == "pair.json":
                    load_pair(folder).weights_path(model.gen)
            except CganError as e:
                assert "\n" not in str(e)
            except Exception as e:  # noqa: BLE001 - the point of the test
                failures.append(f"{'/'.join(map(str, path))} = {value!r}: {type(e).__name__}: {e}")
    assert not failures, "\n".join(failures[:20])


# ---- training checkpoints that load with weights_only but are not what they claim ---------------------------
@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    from _helpers_trainer import make_dataset, tiny_config
    from cgan.trainer.train import train

    root = tmp_path_factory.mktemp("rel_ckpt")
    data = make_dataset(root / "data", n_x=2, n_y=2)
    cfg = tiny_config(data, root / "runs", max_steps=2, save_every_steps=1, keep=1)
    train(cfg, progress=False)
    return data, root / "runs"


@pytest.mark.parametrize("field, value", [
    ("counters", {}), ("counters", {"epoch": "x", "step_in_epoch": 0, "step": 2, "seconds": 0.0}),
    ("nets", {}), ("nets", "G"), ("nets.G", {}), ("optim", {}), ("sched", {}), ("pools", {}), ("rng", {}),
    ("rng.torch", None), ("config", "x"), ("config.ngf", "x"),
])
def test_resume_from_a_malformed_checkpoint_is_one_line(tmp_path, trained_run, capsys, field, value):
    """A checkpoint that unpickles safely but has missing/mistyped parts: `--resume` says so in one line
    (exit 3), writes nothing, and never shows a KeyError/TypeError traceback."""
    import torch

    from cgan.trainer import checkpoint as ckpt

    data, runs = trained_run
    out = Path(shutil.copytree(runs, tmp_path / "runs"))
    path = ckpt.latest_checkpoint(out / "run")
    state = torch.load(path, weights_only=True)
    key, _, sub = field.partition(".")
    if sub:
        state[key] = dict(state[key], **{sub: value})
    else:
        state[key] = value
    torch.save(state, path)
    before = tree(out)
    code, err = train_cli(["--data", str(data), "--out", str(out), "--name", "run", "--resume", "--max-steps",
                           "4", "--workers", "0", "--device", "cpu", "-q"], capsys)
    one_line_error(code, err, path.name, codes=(2, 3))
    assert tree(out) == before


@pytest.mark.parametrize("mode", ["few-tensors", "stride-0-views", "shared-storage"])
def test_official_pth_declaring_a_huge_network_is_refused_before_building(tmp_path, capsys, mode):
    """A small .pth whose keys/shapes describe a 64-block ngf-1024 generator (19.5G parameters, ~78 GB): refused
    from its contents before the network is built (this is what --pretrained downloads go through too). Its
    tensors all views into one stored block (64 blocks, ngf 128 in 2.4 MB): imported with 5 GB peak memory and a
    1.2 GB pair written, until the tensors' bytes had to fit in the data stored."""
    import time

    from _helpers_reliability import rss_bytes, write_huge_spec_pth

    if mode == "shared-storage":
        p = write_huge_spec_pth(tmp_path / "G_A.pth", ngf=128, shared=True)
    else:
        p = write_huge_spec_pth(tmp_path / "G_A.pth", expanded=mode == "stride-0-views")
    assert p.stat().st_size < 3 << 20
    rss, t0 = rss_bytes(), time.perf_counter()
    code, err = train_cli(["import-official", str(p), "--out", str(tmp_path / "out")], capsys)
    one_line_error(code, err, "G_A.pth", codes=(3,))
    assert time.perf_counter() - t0 < 10 and rss_bytes() - rss < 300 * 2**20
    assert tree(tmp_path / "out") == {}


def test_written_files_are_readable_by_others_per_umask(base):
    """safetensors' save_file leaves its file 0600; every file we write follows the umask like `touch`
    (a Triton server or a colleague reading an export runs as another user)."""
    import os
    import stat

    mask = os.umask(0o022)
    os.umask(mask)
    want = 0o666 & ~mask
    pair, export = base
    files = [p for folder in (pair, export) for p in folder.rglob("*") if p.is_file()]
    assert any(p.suffix == ".safetensors" for p in files) and any(p.suffix == ".onnx" for p in files)
    for p in files:
        assert stat.S_IMODE(p.stat().st_mode) == want, f"{p}: {oct(stat.S_IMODE(p.stat().st_mode))}"
