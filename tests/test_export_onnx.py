"""cgan-export on tiny pairs: ONNX graphs, FP16, pre/post, parity, manifest, Triton layout, bad inputs."""
from __future__ import annotations

import copy
import json
import os
import shutil

import numpy as np
import onnx
import pytest
import torch

from _helpers_export import SIZES, TINY, make_pair
from cgan._cli import run
from cgan._files import sha256_file
from cgan.errors import CganError, IntegrityError
from cgan.export import export_pair
from cgan.export import onnx_export, parity, prepost
from cgan.export.cli import cli
from cgan.pairs import load_pair
from cgan.trainer.weights import load_generator


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """One full export (FP32, FP16, pre/post, Triton) of a tiny pair, shared by the read-only tests below."""
    root = tmp_path_factory.mktemp("export")
    pair = make_pair(root / "pair")
    out = export_pair(pair, root / "out", with_prepost=True, parity_sizes=SIZES, triton=str(root / "triton"))
    return pair, out, root / "triton"


def _manifest(out):
    return json.loads((out / "manifest.json").read_text())


def test_files_and_manifest(exported):
    pair, out, _ = exported
    m = _manifest(out)
    assert m["format"] == "cgan.export" and m["version"] == 1 and m["name"] == "summer2winter"
    assert m["opset"] == 17 and m["precision"] == ["fp16", "fp32"]
    names = sorted(f["path"] for f in m["files"])
    assert names == sorted(f"{g}.{p}{s}.onnx" for g in "GF" for p in ("fp32", "fp16") for s in ("", ".prepost"))
    for rec in m["files"]:
        assert rec["sha256"] == sha256_file(out / rec["path"]) and rec["bytes"] == (out / rec["path"]).stat().st_size
        assert rec["direction"] == ("summer2winter" if rec["generator"] == "G" else "winter2summer")
        assert rec["io_dtype"] == ("uint8" if rec["io"] == "bgr-hwc-uint8" else "float32")
    src = load_pair(pair)
    assert m["source"]["pair_sha256"] == {g: r["sha256"] for g, r in src.files.items()}
    assert m["source"]["provenance"] == {"source": "test"}
    assert {"torch", "onnx", "onnxruntime", "onnxconverter_common", "onnxslim"} <= set(m["tools"])
    copy = load_pair(out / "pair")  # the copy verifies against its own hashes
    assert copy.spec == src.spec
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no staging leftovers


def test_graphs_check_and_have_dynamic_axes_and_metadata(exported):
    _, out, _ = exported
    for path in out.glob("*.onnx"):
        model = onnx.load(str(path))
        onnx.checker.check_model(model, full_check=True)
        onnx.shape_inference.infer_shapes(model, strict_mode=True)
        assert model.opset_import[0].version >= 17
        (inp,), (outp,) = model.graph.input, model.graph.output
        assert (inp.name, outp.name) == ("input", "output")
        dims = [d.dim_param or d.dim_value for d in inp.type.tensor_type.shape.dim]
        meta = {p.key: p.value for p in model.metadata_props}
        assert json.loads(meta["cgan.spec"])["generator"]["ngf"] == TINY.ngf
        assert meta["cgan.generator"] == path.name[0]
        if "prepost" in path.name:
            assert inp.type.tensor_type.elem_type == onnx.TensorProto.UINT8 and dims[3] == 3
            assert all(isinstance(d, str) for d in dims[:3])
        else:
            assert inp.type.tensor_type.elem_type == onnx.TensorProto.FLOAT and dims[1] == 3
            assert all(isinstance(d, str) for i, d in enumerate(dims) if i != 1)
        ops = {n.op_type for n in model.graph.node}
        assert "Pad" in ops  # reflection padding kept as Pad(mode=reflect)


def test_fp16_graph_keeps_instance_norm_fp32(exported):
    _, out, _ = exported
    model = onnx.load(str(out / "G.fp16.onnx"))
    conv_w = {n.input[1] for n in model.graph.node if n.op_type == "Conv"}
    inits = {i.name: i for i in model.graph.initializer}
    assert conv_w and all(inits[w].data_type == onnx.TensorProto.FLOAT16 for w in conv_w if w in inits)
    types = {}
    for vi in onnx.shape_inference.infer_shapes(model).graph.value_info:
        types[vi.name] = vi.type.tensor_type.elem_type
    norms = [n for n in model.graph.node if n.op_type == "InstanceNormalization"]
    assert norms and all(types.get(n.input[0]) == onnx.TensorProto.FLOAT for n in norms)


def test_parity_figures_and_runtime_outputs(exported):
    pair, out, _ = exported
    figs = _manifest(out)["parity"]["generators"]
    for gen in "GF":
        f = figs[gen]
        assert f["failures"] == [] and 0 <= f["fp32_max_abs"] <= 1e-4
        assert 40 <= f["fp16_psnr_db"] < 140      # real FP16 rounding happened (float32 weights)
        assert f["fp16.prepost_within_1lsb"] >= 0.99
    # independent check: prepost graph on a frame equals the torch model + reference pre/post within 1 LSB
    net = load_generator(pair, "G")
    frame = parity.synthetic_photo(40, 56, seed=5)[None]
    got = parity.session(out / "G.fp32.prepost.onnx").run(None, {"input": frame})[0]
    with torch.no_grad():
        ref = prepost.nchw_to_bgr(net(torch.from_numpy(prepost.bgr_to_nchw(frame))).numpy())
    assert got.shape == frame.shape and got.dtype == np.uint8
    assert np.abs(got.astype(int) - ref).max() <= 1
    assert got.std() > 1  # not a constant image


def test_prepost_uint8_only_at_the_edges(exported):
    """TensorRT takes uint8 only as an input cast right away and an output made by the last cast."""
    _, out, _ = exported
    for path in sorted(out.glob("*.prepost.onnx")):
        g = onnx.load(str(path)).graph
        consumers = [n.op_type for n in g.node if "input" in n.input]
        producers = [n.op_type for n in g.node if "output" in n.output]
        assert consumers == ["Cast"] and producers == ["Cast"], (path.name, consumers, producers)


def test_every_graph_lists_each_opset_domain_once(exported):
    """The pre/post graphs listed the default domain three times ([('', 17), ('', 17), ('', 17)]): one per graph
    merged. ONNX Runtime takes that; a stricter reader need not."""
    _, out, _ = exported
    for path in sorted(out.glob("*.onnx")):
        domains = ["" if o.domain == "ai.onnx" else o.domain for o in onnx.load(str(path)).opset_import]
        assert len(domains) == len(set(domains)), (path.name, domains)


def test_triton_layout(exported):
    _, out, triton = exported
    models = sorted(p.name for p in triton.iterdir())
    assert "summer2winter_G_fp16" in models and "summer2winter_F_fp32_prepost" in models and len(models) == 8
    cfg = (triton / "summer2winter_G_fp16" / "config.pbtxt").read_text()
    assert 'platform: "onnxruntime_onnx"' in cfg and "dynamic_batching" in cfg and "dims: [ 3, -1, -1 ]" in cfg
    assert (triton / "summer2winter_G_fp16" / "1" / "model.onnx").read_bytes() == (out / "G.fp16.onnx").read_bytes()
    assert "TYPE_UINT8" in (triton / "summer2winter_G_fp16_prepost" / "config.pbtxt").read_text()
    # each model says what it computes (a comment line: Triton reads none of it)
    about = json.loads(cfg.split("# cgan: ", 1)[1].splitlines()[0])
    assert about["spec"]["domains"] == {"X": "summer", "Y": "winter"}
    assert (about["generator"], about["direction"], about["precision"], about["io"]) == ("G", "summer2winter",
                                                                                         "fp16", "nchw")


def test_slice_pad_equals_reflection_pad():
    torch.manual_seed(0)
    x = torch.randn(2, 3, 9, 13)
    for p in (1, 2, 3):
        assert torch.equal(onnx_export.SlicePad2d(p)(x), torch.nn.ReflectionPad2d(p)(x))


def test_slice_pad_mode_export(tmp_path):
    pair = make_pair(tmp_path / "pair", seed=3, gens=("G",))
    out = export_pair(pair, tmp_path / "out", pad_mode="slice", fp16_io=True, parity_sizes=((32, 32),))
    m = _manifest(out)
    ops = {n.op_type for n in onnx.load(str(out / "G.fp32.onnx")).graph.node}
    assert "Pad" not in ops and {"Slice", "Concat"} <= ops
    rec = {r["path"]: r for r in m["files"]}
    assert rec["G.fp16.onnx"]["io_dtype"] == "float16" and "F.fp32.onnx" not in rec
    assert m["parity"]["generators"]["G"]["fp32_max_abs"] <= 1e-4
    sess = parity.session(out / "G.fp16.onnx")
    assert sess.get_inputs()[0].type == "tensor(float16)"


def test_parity_failure_leaves_nothing(tmp_path, monkeypatch):
    pair = make_pair(tmp_path / "pair", gens=("G",))
    real = parity.Thresholds
    monkeypatch.setattr(parity, "Thresholds", lambda: real(fp32_max_abs=-1.0))  # impossible: any error fails
    with pytest.raises(IntegrityError, match="parity check failed"):
        export_pair(pair, tmp_path / "out", fp16=False, parity_sizes=((32, 32),))
    assert not (tmp_path / "out").exists()  # not even the empty folder it made
    with pytest.raises(IntegrityError, match="parity check failed"):  # nor the parents it made (a/b was left)
        export_pair(pair, tmp_path / "a" / "b" / "out", fp16=False, parity_sizes=((32, 32),))
    assert not (tmp_path / "a").exists()
    (tmp_path / "c").mkdir()
    with pytest.raises(IntegrityError, match="parity check failed"):  # a folder that was there stays
        export_pair(pair, tmp_path / "c" / "d" / "out", fp16=False, parity_sizes=((32, 32),))
    assert (tmp_path / "c").is_dir() and not (tmp_path / "c" / "d").exists()


def test_parity_image_and_reexport_from_export_folder(tmp_path):
    import cv2

    img = tmp_path / "photo.png"
    cv2.imwrite(str(img), parity.synthetic_photo(60, 90, seed=9))
    pair = make_pair(tmp_path / "pair", gens=("F",))
    out = export_pair(pair, tmp_path / "a", fp16=False, parity_image=str(img), parity_sizes=((32, 48),))
    label = _manifest(out)["parity"]["image"]
    assert label.startswith("photo.png (sha256 ") and len(label) == len("photo.png (sha256 )") + 16
    # another photo by the same name is another check (it was taken as this export, "nothing to do")
    other = tmp_path / "other" / "photo.png"
    other.parent.mkdir()
    cv2.imwrite(str(other), parity.synthetic_photo(60, 90, seed=10))
    stamp = (out / "manifest.json").stat().st_mtime_ns
    export_pair(pair, tmp_path / "a", fp16=False, parity_image=str(other), parity_sizes=((32, 48),))
    assert _manifest(out)["parity"]["image"] != label and (out / "manifest.json").stat().st_mtime_ns != stamp
    export_pair(pair, tmp_path / "a", fp16=False, parity_image=str(other), parity_sizes=((32, 48),))
    assert _manifest(out)["parity"]["image"] != label  # (the same photo again: up to date)
    again = export_pair(out, tmp_path / "b", fp16=False, parity=False)  # an export folder re-exports from pair/
    m = _manifest(again)
    assert m["parity"] is None and [f["path"] for f in m["files"]] == ["F.fp32.onnx"]
    assert (again / "F.fp32.onnx").read_bytes() == (out / "F.fp32.onnx").read_bytes()  # deterministic


def test_fp16_arithmetic_is_emulated_and_overflow_fails_parity(tmp_path):
    """The FP16 figure of ORT's CPU provider can be optimistic (it runs FP16 nodes through FP32 kernels), so
    parity also emulates FP16 arithmetic: a generator whose first convolution outputs exceed FP16's range
    (fine in FP32, since instance norm follows) must fail on the emulated figure."""
    pair = make_pair(tmp_path / "pair", gens=("G",))
    out = export_pair(pair, tmp_path / "ok", parity_sizes=((32, 32),))
    fig = _manifest(out)["parity"]["generators"]["G"]
    assert fig["fp16_emulated_psnr_db"] >= 40 and fig["failures"] == []

    net = load_generator(pair, "G")
    with torch.no_grad():
        net.model[1].weight.mul_(1e5)  # weights ~2e4 still fit FP16; conv outputs go beyond 65504
    frames, _ = parity.parity_frames(((32, 32),))
    from cgan.export.fp16 import to_fp16
    m32 = onnx_export.export_onnx(net, {}, do_simplify=False)
    onnx_export.save(m32, tmp_path / "g32.onnx")
    onnx_export.save(to_fp16(m32, fp16_io=False), tmp_path / "g16.onnx")
    bad = parity.check_generator(net, {"fp32": tmp_path / "g32.onnx", "fp16": tmp_path / "g16.onnx"}, frames)
    assert bad["fp16_emulated_psnr_db"] is None  # -inf: the emulated activations overflowed
    assert any("emulated FP16" in f for f in bad["failures"])
    # FP32 passed: the advice is FP32 (it said "another --pad-mode/--no-simplify, or report a bug")
    with pytest.raises(IntegrityError, match=r"do not run in FP16 \(FP32 passed\): export with --no-fp16"):
        parity.raise_on_failure({"generators": {"G": bad}})
    bad32 = {**bad, "failures": [*bad["failures"], "FP32 max abs error 0.5 > 0.001"]}
    with pytest.raises(IntegrityError, match="another --pad-mode/--no-simplify"):
        parity.raise_on_failure({"generators": {"G": bad32}})


def test_nan_outputs_fail_parity(tmp_path):
    """max() and PSNR pass NaN over (max(0.0, nan) is 0.0): a generator with a NaN weight, or a graph whose output
    is NaN, must fail parity instead of being recorded as exact."""
    import onnx.helper as oh

    pair = make_pair(tmp_path / "pair", gens=("G",))
    net = load_generator(pair, "G")
    frames, _ = parity.parity_frames(((32, 32),))
    m32 = onnx_export.export_onnx(net, {}, do_simplify=False)
    onnx_export.save(m32, tmp_path / "g32.onnx")
    out_name = m32.graph.output[0].name
    nan = copy.deepcopy(m32)  # the same graph with its output multiplied by NaN
    nan.graph.initializer.append(onnx.numpy_helper.from_array(np.array(np.nan, np.float32), "nan_scale"))
    nan.graph.node.append(oh.make_node("Mul", [out_name, "nan_scale"], ["nan_out"]))
    nan.graph.output[0].name = "nan_out"
    onnx_export.save(nan, tmp_path / "nan.onnx")
    fig = parity.check_generator(net, {"fp32": tmp_path / "nan.onnx"}, frames)
    assert fig["failures"] == ["the fp32 ONNX graph gives NaN or infinite values"]
    from cgan.export.fp16 import to_fp16
    onnx_export.save(to_fp16(nan, fp16_io=False), tmp_path / "nan16.onnx")
    fig = parity.check_generator(net, {"fp32": tmp_path / "g32.onnx", "fp16": tmp_path / "nan16.onnx"}, frames)
    assert fig["failures"] == ["the fp16 ONNX graph gives NaN or infinite values"]
    with torch.no_grad():
        net.model[1].bias[0] = float("nan")
    broken = onnx_export.export_onnx(net, {}, do_simplify=False)
    onnx_export.save(broken, tmp_path / "broken.onnx")
    fig = parity.check_generator(net, {"fp32": tmp_path / "broken.onnx"}, frames)
    assert fig["failures"][0].startswith("the PyTorch generator itself gives NaN")


def test_fp16_emulation_rounds_every_stored_tensor_including_residual_sums(tmp_path):
    """The emulated FP16 forward must round what an FP16 engine stores: each layer's output and each residual
    block's sum `x + conv_block(x)` (the sums used to stay FP32). Checked against a hand-written forward."""
    from cgan.trainer.networks import ResnetBlock

    net = load_generator(make_pair(tmp_path / "pair", gens=("G",)), "G").eval()
    r = lambda t: t.half().float()  # noqa: E731

    def seq(layers, x):
        for layer in layers:
            if isinstance(layer, ResnetBlock):
                x = r(x + seq(layer.conv_block, x))
            else:
                x = r(layer(x))
        return x

    half = copy.deepcopy(net)
    with torch.no_grad():
        for p in half.parameters():
            p.copy_(r(p))
        x = torch.rand(1, 3, 32, 36) * 2 - 1
        want = seq(half.model, r(x)).numpy()
    assert any(isinstance(m, ResnetBlock) for m in net.model)
    np.testing.assert_array_equal(parity.fp16_emulated_forward(net, x), want)


def test_same_export_again_is_skipped_unless_something_changed(tmp_path):
    pair = make_pair(tmp_path / "pair", gens=("G",))
    out = tmp_path / "out"
    export_pair(pair, out, fp16=False, parity=False)
    stamp = (out / "manifest.json").stat().st_mtime_ns
    export_pair(pair, out, fp16=False, parity=False)                      # same pair + options: kept
    assert (out / "manifest.json").stat().st_mtime_ns == stamp
    export_pair(pair, out, fp16=False, parity=False, force=True)          # --force: rebuilt
    assert (out / "manifest.json").stat().st_mtime_ns != stamp
    stamp = (out / "manifest.json").stat().st_mtime_ns
    export_pair(pair, out, fp16=False, parity=False, simplify=False)      # other options: rebuilt
    assert (out / "manifest.json").stat().st_mtime_ns != stamp and _manifest(out)["options"]["simplify"] is False
    stamp = (out / "manifest.json").stat().st_mtime_ns
    with open(out / "G.fp32.onnx", "ab") as f:                            # a damaged file: rebuilt
        f.write(b"x")
    export_pair(pair, out, fp16=False, parity=False, simplify=False)
    assert (out / "manifest.json").stat().st_mtime_ns != stamp
    assert sha256_file(out / "G.fp32.onnx") == _manifest(out)["files"][0]["sha256"]


def test_bad_inputs(tmp_path, capsys):
    with pytest.raises(CganError, match="unknown pair"):
        export_pair("no_such_pair", tmp_path / "o")
    pair = make_pair(tmp_path / "pair", gens=("G",))
    data = json.loads((pair / "pair.json").read_text())
    data["spec"]["generator"]["ngf"] = 8  # pair.json disagrees with the weights
    (pair / "pair.json").write_text(json.dumps(data))
    with pytest.raises(IntegrityError, match="does not match the spec"):
        export_pair(pair, tmp_path / "o", parity=False)
    (pair / "G.safetensors").write_bytes(b"junk")
    with pytest.raises(IntegrityError):
        export_pair(pair, tmp_path / "o", parity=False)
    with pytest.raises(CganError, match="multiple of 4"):
        export_pair(pair, tmp_path / "o", parity_sizes=((30, 32),))
    with pytest.raises(CganError, match="parity image"):
        export_pair(pair, tmp_path / "o", parity_image=str(tmp_path / "missing.jpg"))
    good = make_pair(tmp_path / "good", gens=("G",))
    with pytest.raises(CganError, match="fp16-io"):
        export_pair(good, tmp_path / "o", fp16=False, fp16_io=True)
    if os.geteuid() != 0:  # root can write anywhere
        ro = tmp_path / "ro"
        ro.mkdir(mode=0o500)
        with pytest.raises(CganError, match="cannot write"):
            export_pair(good, ro / "x", parity=False)
    # the CLI: one line, exit code, no traceback
    code = run(cli, [str(tmp_path / "nope" / "x"), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_cli_exports(tmp_path, capsys):
    pair = make_pair(tmp_path / "pair", gens=("G",))
    code = run(cli, [str(pair), "--out", str(tmp_path / "o"), "--no-fp16", "--no-simplify", "--parity-sizes", "32x32"])
    assert code == 0, capsys.readouterr().err
    m = _manifest(tmp_path / "o")
    assert m["options"]["simplify"] is False and m["parity"]["sizes"] == [[32, 32]]


def test_cli_default_out_installs_where_pair_name_looks(tmp_path, capsys, monkeypatch):
    """`cgan-export NAME` (no --out) installs into $CGAN_HOME/exports/<the pair's own name>, which `--pair NAME`
    then resolves first; the reverse name installs under the pair's name (not as a wrong-way 'winter2summer');
    a folder has no name to install under, so it needs --out (one line, exit 2)."""
    from cgan.pairs import cgan_home, resolve

    home = cgan_home()
    make_pair(home / "pairs" / "summer2winter", gens=("G", "F"))
    assert resolve("summer2winter").origin == "user-pair"
    code = run(cli, ["winter2summer", "--no-fp16", "--no-simplify", "--parity-sizes", "32x32"])
    out = capsys.readouterr()
    assert code == 0, out.err
    target = home / "exports" / "summer2winter"
    assert out.out.strip() == str(target) and (target / "manifest.json").is_file()
    assert not (home / "exports" / "winter2summer").exists()
    assert (resolve("summer2winter").origin, resolve("summer2winter").kind) == ("user-export", "export")
    assert resolve("winter2summer").direction == "F" and resolve("winter2summer").folder == target
    code = run(cli, [str(home / "pairs" / "summer2winter"), "--no-fp16"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: give --out DIR") and len(err.strip().splitlines()) == 1


def test_export_by_name_takes_the_pair_not_an_older_export_of_it(tmp_path, capsys):
    """Once `cgan-export NAME` has installed an export, the name still means the pair: new weights under that
    name (a retrained pair, a cgan upgrade's embedded pair) are exported, not the old export's pair/ copy. A
    reverse name whose generator the pair lacks fails before anything is written."""
    from cgan.pairs import cgan_home

    home = cgan_home()
    src = home / "pairs" / "summer2winter"
    make_pair(src, seed=1, gens=("G",))
    args = ["summer2winter", "--no-fp16", "--no-simplify", "--parity-sizes", "32x32"]
    assert run(cli, args) == 0, capsys.readouterr().err
    target = home / "exports" / "summer2winter"
    first = _manifest(target)["source"]["pair_sha256"]["G"]
    shutil.rmtree(src)
    make_pair(src, seed=2, gens=("G",))  # retrained
    assert run(cli, args) == 0, capsys.readouterr().err
    second = _manifest(target)["source"]["pair_sha256"]["G"]
    assert second != first and second == json.loads((src / "pair.json").read_text())["files"]["G"]["sha256"]
    capsys.readouterr()
    assert run(cli, ["winter2summer", "--out", str(tmp_path / "w2s"), "--no-fp16"]) == 2
    err = capsys.readouterr().err
    assert "is F of the pair" in err and "holds only G" in err and not (tmp_path / "w2s").exists()


def test_one_channel_pair_exports_with_the_default_parity_check(tmp_path):
    """The spec allows 1-channel generators; the parity check fed them BGR photos (a torch RuntimeError
    traceback). They are checked on the same photos in grayscale."""
    import json

    from cgan.export import export_pair
    from cgan.spec import GeneratorSpec, PairSpec
    from cgan.trainer.networks import build_generator
    from cgan.trainer.weights import save_pair

    spec = PairSpec(GeneratorSpec(blocks=1, ngf=4, in_channels=1, out_channels=1), "day", "night")
    pair = save_pair(tmp_path / "pair", spec, {g: build_generator(spec.generator).state_dict() for g in ("G", "F")})
    out = export_pair(pair, tmp_path / "out")
    parity = json.loads((out / "manifest.json").read_text())["parity"]["generators"]
    assert parity["G"]["failures"] == [] and parity["G"]["fp16_psnr_db"] > 40


def test_a_refused_or_failed_export_leaves_no_empty_out_folder(tmp_path, monkeypatch, capsys):
    """--opset 99 was a torch traceback after --out was made; a failed export removes the --out it made (see
    test_parity_failure_leaves_nothing) but not a folder that was there before."""
    from cgan.errors import CganError
    from cgan.export.cli import cli

    pair = make_pair(tmp_path / "pair", gens=("G",))
    for opset in ("99", "16"):
        assert run(cli, [str(pair), "--out", str(tmp_path / "o" / "x"), "--opset", opset]) == 2
        err = capsys.readouterr().err
        assert "Traceback" not in err and "--opset" in err or "too old" in err, err
        assert not (tmp_path / "o" / "x").exists()

    def fail(record):
        raise CganError("parity failed (stand-in)")

    monkeypatch.setattr(parity, "raise_on_failure", fail)
    (tmp_path / "kept").mkdir()
    with pytest.raises(CganError, match="stand-in"):
        export_pair(pair, tmp_path / "kept", fp16=False, parity_sizes=((32, 32),))
    assert (tmp_path / "kept").is_dir()  # a folder that was there stays


def test_an_export_whose_new_folder_was_removed_while_it_waited_makes_it_again(tmp_path, monkeypatch):
    """Two exports into one new --out: the first failed and removed the folder while the second waited for the
    lock; the second then wrote into a folder that no longer existed (No such file or directory). The folder is
    now made under the lock, after any earlier export's failure."""
    import contextlib

    from cgan.export import api

    pair = make_pair(tmp_path / "pair", gens=("G",))
    real_lock = api.export_lock

    @contextlib.contextmanager
    def lock_after_the_other_failed(out):
        with real_lock(out):
            out.mkdir(parents=True, exist_ok=True)  # what the failed export did under its lock, before this one
            out.rmdir()                             # got it: made the folder, failed, removed it
            yield

    monkeypatch.setattr(api, "export_lock", lock_after_the_other_failed)
    out = export_pair(pair, tmp_path / "new", fp16=False, parity=False)
    assert (out / "G.fp32.onnx").is_file() and (out / "manifest.json").is_file()


@pytest.mark.parametrize("channels", [(3, 1), (1, 3), (1, 1)])
def test_with_prepost_refuses_a_generator_without_three_channels_both_ways(tmp_path, capsys, channels):
    """A 3-in/1-out generator (the spec allows it) went through to ORT's Gather error, a traceback."""
    from cgan.spec import GeneratorSpec

    spec = GeneratorSpec(blocks=1, ngf=4, in_channels=channels[0], out_channels=channels[1])
    pair = make_pair(tmp_path / "pair", spec=spec, gens=("G",))
    code = run(cli, [str(pair), "--out", str(tmp_path / "out"), "--with-prepost"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "--with-prepost" in err[0] and f"gives {channels[1]} channels" in err[0]
    assert not (tmp_path / "out").exists()
    net = load_generator(pair, "G")
    with pytest.raises(CganError, match="3 channels in and out"):
        prepost.with_prepost(onnx_export.export_onnx(net, {}, do_simplify=False))


def test_export_onnx_leaves_the_callers_generator_as_it_was(tmp_path):
    """export_onnx moved the caller's net to CPU float32 eval mode in place: cgan-eval's FP16 check on CUDA then
    ran its CUDA input through CPU weights."""
    pair = make_pair(tmp_path / "pair", gens=("G",))
    net = load_generator(pair, "G").double().train()
    onnx_export.export_onnx(net, {}, do_simplify=False)
    assert net.training and all(p.dtype == torch.float64 for p in net.parameters())


@pytest.mark.parametrize("argv,needle", [
    (["--shapes", "garbage", "--batch", "x"], "--shapes, --batch set up TensorRT engines: add --engine"),
    (["--workspace-gb", "1", "--no-fp16"], "--workspace-gb sets up TensorRT engines: add --engine, or leave it out"),
    (["--trt-flavour", "tensorrt"], "--trt-flavour sets up TensorRT engines"),
])
def test_engine_options_without_engine_are_refused(tmp_path, capsys, argv, needle):
    """Like --trt-target, which was refused: the engine options were dropped without a word (a user asking for
    fixed shapes got an export without engines), malformed or not."""
    from cgan._cli import run
    from cgan.export.cli import cli

    assert run(cli, ["summer2winter", "--out", str(tmp_path / "o"), *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and needle in err[0], err
    assert not (tmp_path / "o").exists()


def test_tool_versions_come_from_metadata_not_imports(monkeypatch):
    """The manifest's tool versions were read by importing each library with every exception suppressed: a library
    that failed to import vanished from the record (and importing onnxslim only for its version costs time)."""
    import sys

    from cgan.export.api import tool_versions

    for name in ("onnxslim", "onnxconverter_common"):
        monkeypatch.setitem(sys.modules, name, None)  # (importing them now fails)
    tools = tool_versions()
    assert tools["onnxslim"] and tools["onnxconverter_common"], tools
    assert tools["onnx"] == __import__("onnx").__version__
