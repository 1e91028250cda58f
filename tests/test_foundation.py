"""Foundation: spec arithmetic, pair format and verification, name resolution, official checkpoint import."""
from __future__ import annotations

import json
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from cgan._optional import pip_extra
from cgan import pairs
from cgan._files import atomic_path, inside, write_json_atomic
from cgan.errors import CganError, IntegrityError
from cgan.spec import GeneratorSpec, PairSpec
from cgan.trainer.networks import build_generator, count_parameters
from cgan.trainer.weights import import_official, load_generator, read_official, save_pair

TINY = GeneratorSpec(blocks=1, ngf=4)


def make_pair(folder: Path, spec: GeneratorSpec = TINY, x="summer", y="winter", gens=("G", "F"), seed=0) -> Path:
    torch.manual_seed(seed)
    states = {g: build_generator(spec).state_dict() for g in gens}
    return save_pair(folder, PairSpec(spec, x, y), states)


# ---- spec ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("blocks,count", [(9, 11_378_179), (6, 7_837_699)])
def test_parameter_count_from_spec_matches_network(blocks, count):
    spec = GeneratorSpec(blocks=blocks, ngf=64)
    assert spec.parameter_count() == count
    assert count_parameters(build_generator(spec)) == count


@pytest.mark.parametrize("h,w,gflop", [(256, 256, 99.1), (720, 1280, 1393.6), (1080, 1920, 3135.7)])
def test_speed_of_light_flops(h, w, gflop):
    assert GeneratorSpec().flops(h, w) / 1e9 == pytest.approx(gflop, abs=0.05)


@pytest.mark.parametrize("spec,h,w", [(GeneratorSpec(), 256, 256), (GeneratorSpec(blocks=2, ngf=8), 32, 48),
                                      (GeneratorSpec(blocks=6, ngf=32), 64, 96)])
def test_flops_match_torchs_flop_counter(spec, h, w):
    """flops() must equal what torch's FlopCounterMode counts on the real network (on the meta device: no
    compute). The transposed convolutions do k·k MACs per input pixel; counting them per output pixel (the
    often quoted 113.6 GFLOP per 256² frame) overstates the frame's work by 14.6 %."""
    from torch.utils.flop_counter import FlopCounterMode

    with torch.device("meta"):
        net = build_generator(spec, init=False)
        x = torch.zeros(1, 3, h, w)
    with FlopCounterMode(display=False) as counter:
        net(x)
    assert spec.flops(h, w) == counter.get_total_flops()


@pytest.mark.parametrize("field,value", [("channel_order", "BGR"), ("value_range", (0.0, 1.0)), ("layout", "NHWC"),
                                         ("padding", "zeros"), ("size_multiple", 8), ("input_name", "images"),
                                         ("output_name", "out")])
def test_spec_io_contract_other_than_the_implemented_one_is_refused(field, value):
    """Every part of cgan implements RGB, [-1, 1], NCHW, reflection padding, sizes in multiples of 4: a pair
    whose spec asks for another contract used to load and translate with swapped colours or wrong values. Tensor
    names other than every graph's input/output were exported into the manifest, contradicting the graph."""
    with pytest.raises(CganError, match=f"{field} .* is not supported"):
        GeneratorSpec(**{field: value})
    d = GeneratorSpec().to_dict()
    d[field] = list(value) if isinstance(value, tuple) else value
    with pytest.raises(CganError, match="not supported"):
        GeneratorSpec.from_dict(d)


def test_spec_round_trip_and_validation():
    spec = GeneratorSpec(blocks=6, ngf=32, dropout=True)
    assert GeneratorSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec
    with pytest.raises(CganError, match="unknown fields"):
        GeneratorSpec.from_dict({**spec.to_dict(), "wings": 2})
    with pytest.raises(CganError, match="blocks"):
        GeneratorSpec(blocks=0)
    with pytest.raises(CganError, match="norm"):
        GeneratorSpec(norm="batch")


def test_direction_names():
    ps = PairSpec(TINY, "summer", "winter")
    assert ps.name == "summer2winter"
    assert ps.direction_name("F") == "winter2summer"
    for name, gen in [("G", "G"), ("f", "F"), ("G_B", "F"), ("summer2winter", "G"), ("Winter2Summer", "F")]:
        assert ps.resolve_direction(name) == gen
    assert ps.resolve_direction(None, ("F",)) == "F"
    with pytest.raises(CganError, match="summer2winter"):
        ps.resolve_direction("horse2zebra")
    with pytest.raises(CganError, match="different names"):
        PairSpec(TINY, "a", "a")


# ---- pair folders ------------------------------------------------------------------------------------
def test_pair_round_trip(tmp_path):
    folder = make_pair(tmp_path / "p")
    pair = pairs.load_pair(folder)
    assert pair.generators == ("G", "F")
    assert pair.spec.name == "summer2winter"
    net = load_generator(folder, "F")
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        y = net(x)
    assert y.shape == x.shape and float(y.abs().max()) <= 1.0
    arrays = pair.load_numpy("G")
    assert arrays["model.1.weight"].shape == (4, 3, 7, 7)


def test_pair_detects_tampering(tmp_path):
    folder = make_pair(tmp_path / "p")
    g = folder / "G.safetensors"
    data = bytearray(g.read_bytes())
    data[-1] ^= 0xFF
    g.write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match="sha256"):
        pairs.load_pair(folder)
    g.write_bytes(bytes(data[:-10]))
    with pytest.raises(IntegrityError, match="truncated"):
        pairs.load_pair(folder)


def test_pair_json_path_traversal_refused(tmp_path):
    folder = make_pair(tmp_path / "p")
    meta = json.loads((folder / "pair.json").read_text())
    meta["files"]["G"]["path"] = "../../etc/passwd"
    (folder / "pair.json").write_text(json.dumps(meta))
    with pytest.raises(IntegrityError, match="outside its folder"):
        pairs.load_pair(folder)
    with pytest.raises(IntegrityError):
        inside(folder, "/etc/passwd")


@pytest.mark.parametrize("content,match", [
    ("{not json", "not valid JSON"),
    (json.dumps({"format": "something-else"}), "not a cgan pair"),
    (json.dumps({"format": "cgan.pair", "version": 99}), "version"),
    (json.dumps({"format": "cgan.pair", "version": 1, "spec": {}}), "missing"),
])
def test_bad_pair_json(tmp_path, content, match):
    folder = make_pair(tmp_path / "p")
    (folder / "pair.json").write_text(content)
    with pytest.raises(IntegrityError if match != "missing" else CganError, match=match):
        pairs.load_pair(folder)


def test_single_direction_pair_says_what_it_holds(tmp_path):
    folder = make_pair(tmp_path / "p", gens=("F",))
    pair = pairs.load_pair(folder)
    assert pair.generators == ("F",)
    with pytest.raises(CganError, match="holds F"):
        pair.weights_path("G")


# ---- atomic writes -------------------------------------------------------------------------------------
def test_atomic_path_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("killed")
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.bin"]
    write_json_atomic(target, {"a": 1})
    assert json.loads(target.read_text()) == {"a": 1}
    old = os.umask(0o022)
    try:
        write_json_atomic(tmp_path / "mode.json", {})
    finally:
        os.umask(old)
    assert (tmp_path / "mode.json").stat().st_mode & 0o777 == 0o644  # not mkstemp's private 0600


# ---- name resolution -----------------------------------------------------------------------------------
def test_resolution_order_and_reverse_names(tmp_path, _isolated_home):
    home = _isolated_home
    r = pairs.resolve("summer2winter")
    assert r.origin == "embedded" and r.kind == "pair" and r.direction is None
    assert pairs.resolve("winter2summer").direction == "F"
    make_pair(home / "pretrained" / "summer2winter")
    assert pairs.resolve("summer2winter").origin == "pretrained"
    make_pair(home / "pairs" / "summer2winter")
    assert pairs.resolve("summer2winter").origin == "user-pair"
    exp = home / "exports" / "summer2winter"
    exp.mkdir(parents=True)
    write_json_atomic(exp / "manifest.json", {"format": "cgan.export", "version": 1})
    r = pairs.resolve("summer2winter")
    assert (r.origin, r.kind) == ("user-export", "export")


def test_reverse_names_of_domains_with_a_2_in_them(tmp_path, _isolated_home):
    """Domain names may hold digits: the pair a2b2c of domains a, b2c is found as b2c2a (its F), and x2y2z of
    domains x2y, z as z2x2y; such a name reverses more than one way, and only the way its domains say is F."""
    for name, x, y in (("a2b2c", "a", "b2c"), ("x2y2z", "x2y", "z")):
        make_pair(_isolated_home / "pairs" / name, x=x, y=y)
    for name, folder in (("b2c2a", "a2b2c"), ("z2x2y", "x2y2z")):
        r = pairs.resolve(name)
        assert (r.folder.name, r.direction) == (folder, "F")
    assert pairs.resolve("a2b2c").direction is None
    for name, x, y in (("b22a", "b2", "a"), ("q22p", "q", "2p")):  # a 2 at an end of the name asked for
        make_pair(_isolated_home / "pairs" / name, x=x, y=y)
    assert pairs.resolve("a2b2").folder.name == "b22a"  # a -> b2 is b22a's F
    for wrong in ("c2a2b", "y2z2x", "2a2b", "p2q2"):  # reversed the other way: not their F
        with pytest.raises(CganError, match=f"unknown pair '{wrong}'"):
            pairs.resolve(wrong)


def test_unknown_pair_lists_known_names():
    with pytest.raises(CganError, match=r"unknown pair 'horse2zebra'.*summer2winter"):
        pairs.resolve("horse2zebra")
    with pytest.raises(CganError, match=r"unknown pair 'sumer2winter' \(did you mean 'summer2winter'\?\)"):
        pairs.resolve("sumer2winter")


def test_an_unknown_pair_among_many_lists_a_few_names(_isolated_home):
    """Every installed name was listed: with many user pairs the line grew without limit."""
    for i in range(20):
        make_pair(_isolated_home / "pairs" / f"style{i:02d}")
    with pytest.raises(CganError) as e:
        pairs.resolve("style7")
    said = str(e.value)
    assert f"and {21 - pairs.KNOWN_SHOWN} more" in said and "style19" not in said, said
    with pytest.raises(CganError, match="not a valid pair name"):
        pairs.resolve("sum mer")


def test_name_resolution_survives_a_same_named_folder_a_broken_export_and_a_tilde_home(tmp_path, _isolated_home,
                                                                                       monkeypatch):
    """A data set folder ./summer2winter in the working directory used to hide the pair of that name; one export
    with a damaged manifest turned every unknown-name error into an error about that folder; CGAN_HOME=~/x was
    taken literally (a folder named '~')."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "summer2winter" / "trainA").mkdir(parents=True)
    assert pairs.resolve("summer2winter").origin == "embedded"
    with pytest.raises(CganError, match="neither pair.json"):
        pairs.resolve("./summer2winter")  # written as a path: it is one
    broken = _isolated_home / "exports" / "broken"
    broken.mkdir(parents=True)
    (broken / "manifest.json").write_text("{not json")
    with pytest.raises(CganError, match=r"unknown pair 'sumer2winter'.*summer2winter"):
        pairs.resolve("sumer2winter")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CGAN_HOME", "~/cganhome")
    assert pairs.cgan_home() == tmp_path / "home" / "cganhome"


def test_a_pair_json_that_misstates_its_weights_type_is_refused(tmp_path):
    """pair.json's dtype was never checked: an FP16 pair whose pair.json said float32 loaded, and cgan-eval's
    report said "these pair weights are float32" of FP16 ones."""
    folder = tmp_path / "p"
    spec = PairSpec(TINY, "summer", "winter")
    save_pair(folder, spec, {g: build_generator(TINY).state_dict() for g in "GF"}, "float16")
    assert load_generator(pairs.load_pair(folder), "G") is not None
    meta = json.loads((folder / "pair.json").read_text())
    meta["files"]["G"]["dtype"] = "float32"
    (folder / "pair.json").write_text(json.dumps(meta))
    with pytest.raises(IntegrityError, match=r"G.safetensors holds float16 weights, but pair.json says float32; "
                                             r"re-create the pair"):
        load_generator(pairs.load_pair(folder), "G")


def test_folder_that_is_not_a_pair(tmp_path):
    with pytest.raises(CganError, match="neither pair.json"):
        pairs.resolve(str(tmp_path))
    f = tmp_path / "file.txt"
    f.write_text("x")
    with pytest.raises(CganError, match="not a folder"):
        pairs.resolve(str(f))


# ---- official checkpoints --------------------------------------------------------------------------------
def _official_state(spec: GeneratorSpec) -> dict:
    """A state_dict as the official repo saves it under DataParallel with old-PyTorch InstanceNorm buffers."""
    torch.manual_seed(1)
    sd = build_generator(spec).state_dict()
    out = {f"module.{k}": v for k, v in sd.items()}
    out["module.model.2.running_mean"] = torch.zeros(spec.ngf)
    out["module.model.2.running_var"] = torch.ones(spec.ngf)
    return out


def test_import_official_strict_and_equal(tmp_path):
    spec = GeneratorSpec(blocks=2, ngf=8)
    sd = _official_state(spec)
    torch.save(sd, tmp_path / "latest_net_G_A.pth")
    folder = import_official(tmp_path / "latest_net_G_A.pth", None, tmp_path / "pair", "horse", "zebra")
    pair = pairs.load_pair(folder)
    assert pair.generators == ("G",) and pair.spec.generator == spec
    assert pair.meta["provenance"]["source"] == "official-checkpoint"
    ref = build_generator(spec, init=False)
    ref.load_state_dict({k[len("module."):]: v for k, v in sd.items() if "running" not in k}, strict=True)
    x = torch.rand(2, 3, 32, 40) * 2 - 1
    with torch.no_grad():
        assert torch.equal(ref(x), load_generator(folder, "G")(x))


def test_official_nine_block_key_layout():
    keys = list(build_generator(GeneratorSpec(), init=False).state_dict())
    assert keys[:2] == ["model.1.weight", "model.1.bias"]
    assert "model.10.conv_block.5.weight" in keys and "model.18.conv_block.1.bias" in keys
    assert keys[-2:] == ["model.26.weight", "model.26.bias"]
    dropout_keys = build_generator(GeneratorSpec(dropout=True), init=False).state_dict()
    assert "model.10.conv_block.6.weight" in dropout_keys


class _Evil:
    def __reduce__(self):
        return (os.system, (f"touch {_Evil.marker}",))


def test_pickle_with_code_is_refused_and_not_run(tmp_path):
    _Evil.marker = tmp_path / "pwned"
    with open(tmp_path / "evil.pth", "wb") as f:
        pickle.dump({"model.1.weight": _Evil()}, f)
    with pytest.raises(IntegrityError, match="never pickled code"):
        read_official(tmp_path / "evil.pth")
    assert not _Evil.marker.exists()
    with pytest.raises(IntegrityError):
        import_official(tmp_path / "evil.pth", None, tmp_path / "out")
    assert not (tmp_path / "out" / "pair.json").exists()


def test_foreign_state_dict_refused(tmp_path):
    torch.save({"fc.weight": torch.zeros(2, 2)}, tmp_path / "resnet.pth")
    with pytest.raises(IntegrityError, match="model.1.weight"):
        import_official(tmp_path / "resnet.pth", None, tmp_path / "out")
    (tmp_path / "junk.pth").write_bytes(os.urandom(1000))
    with pytest.raises(IntegrityError, match="not a loadable"):
        read_official(tmp_path / "junk.pth")


# ---- the embedded default pair ----------------------------------------------------------------------------
def test_embedded_pair_loads_matches_hashes_and_translates():
    r = pairs.resolve("summer2winter")
    pair = pairs.load_pair(r.folder, verify=True)  # checks size + sha256 of both files
    assert pair.spec.domain_x == "summer" and pair.spec.domain_y == "winter"
    assert sum(p.stat().st_size for p in r.folder.iterdir()) <= 12 * 2**20
    net = load_generator(pair, "G")
    yy, xx = np.mgrid[0:64, 0:64] / 63.0
    img = np.stack([yy, xx, 0.5 * (xx + yy)])[None].astype(np.float32) * 2 - 1
    with torch.no_grad():
        out = net(torch.from_numpy(img))
    assert out.shape == (1, 3, 64, 64)
    assert torch.isfinite(out).all()
    assert float((out - torch.from_numpy(img)).abs().mean()) > 0.01  # it changes the picture


def test_light_modules_do_not_import_torch():
    code = "import sys, cgan, cgan.spec, cgan.pairs, cgan._files, cgan._cli; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_python_m_cgan_lists_commands():
    out = subprocess.run([sys.executable, "-m", "cgan"], check=True, capture_output=True, text=True).stdout
    for cmd in ("cgan-train", "cgan-export", "cgan-video", "cgan-bench", "cgan-eval"):
        assert cmd in out


def test_python_m_cgan_says_what_needs_torch_when_it_is_missing():
    code = "import sys; sys.modules['torch'] = None; import runpy; runpy.run_module('cgan', run_name='__main__')"
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    assert "torch is not installed here" in out and pip_extra("cpu") in out
    out = subprocess.run([sys.executable, "-m", "cgan"], check=True, capture_output=True, text=True).stdout
    assert "torch is not installed" not in out  # this environment has torch


def test_git_sha_only_for_cgans_own_checkout(tmp_path, monkeypatch):
    """Provenance names cgan's commit only when cgan runs from a checkout that tracks it: a copy inside some
    other repository (a venv in a project's checkout) gets None, not that repository's HEAD."""
    import subprocess

    import cgan._git as g

    def git(*args):
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    git("init", "-q", ".")
    (tmp_path / "cgan").mkdir()
    shutil.copy(g.__file__, tmp_path / "cgan" / "_git.py")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "--allow-empty", "-m", "other project")
    monkeypatch.setattr(g, "REPO", tmp_path)
    assert g.git_sha() is None  # untracked copy inside another repository
    git("add", "cgan/_git.py")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "cgan")
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=tmp_path, capture_output=True, text=True).stdout.strip()
    assert g.git_sha() == head
    (tmp_path / "cgan" / "_git.py").write_text("# changed\n")
    assert g.git_sha() == head + "-dirty"
