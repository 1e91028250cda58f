"""In-pair ONNX graphs (`cgan-export PAIR --in-pair`, cgan.export.pair_graph): a pair folder that ONNX Runtime
runs by itself, reading the pair's own safetensors weights, so the embedded pair works without torch."""
from __future__ import annotations

import json
import shutil
from pathlib import Path
import subprocess
import sys

import numpy as np
import torch
import pytest

from _helpers_runtime import make_export, make_pair
from cgan.errors import CganError, IntegrityError
from cgan.export.pair_graph import add_pair_graphs, share_weights, tensor_layout
from cgan.pairs import GRAPHS, graph_name, load_pair, resolve
from cgan.runtime import Translator

FRAME = np.random.default_rng(3).integers(0, 256, (36, 52, 3), dtype=np.uint8)  # odd size: padded by 4s


@pytest.fixture
def pair(tmp_path):
    return make_pair(tmp_path / "pair", blocks=2, ngf=8)


def test_graphs_read_the_pairs_weights_and_match_torch_and_an_export(pair, tmp_path):
    export = make_export(pair, tmp_path / "export")  # made before the graphs: an ordinary export to compare with
    p = add_pair_graphs(pair)
    assert set(p.graphs) == {"G", "F"}
    for gen in ("G", "F"):
        graph = pair / graph_name(gen)
        weights = pair / f"{gen}.safetensors"
        assert graph.stat().st_size < weights.stat().st_size / 2  # the weights are not copied into the graph
        assert p.graphs[gen]["weights_sha256"] == p.files[gen]["sha256"]
        assert p.graphs[gen]["parity"]["fp32_max_abs"] <= 1e-4
        import onnx

        model = onnx.load(str(graph), load_external_data=False)
        external = [t for t in model.graph.initializer if t.data_location == onnx.TensorProto.EXTERNAL]
        assert external and {e.value for t in external for e in t.external_data if e.key == "location"} == {weights.name}
    for direction in ("G", "F"):
        with Translator.load(str(pair), direction=direction, backend="ort-cpu", threads=1) as a, \
                Translator.load(str(export), direction=direction, backend="ort-cpu", threads=1) as b, \
                Translator.load(str(pair), direction=direction, backend="torch", device="cpu") as c:
            assert a.info.kind == "pair"
            ya, yb, yc = a.translate(FRAME), b.translate(FRAME), c.translate(FRAME)
            assert np.abs(ya.astype(int) - yb).max() <= 1
            assert np.abs(ya.astype(int) - yc).max() <= 1
            assert float(np.abs(ya.astype(int) - FRAME).mean()) > 2  # it translates, not copies


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_precision_weights_are_cast_in_the_graph(tmp_path, dtype):
    from cgan.trainer.weights import load_generator, save_pair

    src = load_pair(make_pair(tmp_path / "src", blocks=1, ngf=4))
    states = {g: load_generator(src, g).state_dict() for g in ("G", "F")}
    half = save_pair(tmp_path / dtype, src.spec, states, dtype)
    p = add_pair_graphs(half)
    import onnx

    model = onnx.load(str(half / "G.fp32.onnx"), load_external_data=False)
    assert sum(n.op_type == "Cast" and n.name.endswith(".to_float") for n in model.graph.node) == len(states["G"])
    with Translator.load(str(half), backend="ort-cpu", threads=1) as a, \
            Translator.load(str(half), backend="torch", device="cpu") as b:
        assert np.abs(a.translate(FRAME).astype(int) - b.translate(FRAME)).max() <= 1
    assert p.graphs["G"]["parity"]["failures"] == []


def test_auto_picks_ort_cpu_for_a_pair_with_graphs(pair):
    with Translator.load(str(pair), device="cpu") as t:
        assert t.info.backend == "torch"  # no graphs yet: ONNX Runtime needs an export
    add_pair_graphs(pair)
    with Translator.load(str(pair), device="cpu") as t:
        assert t.info.backend == "ort-cpu"


def test_a_missing_graph_is_said_by_available_backends_and_auto_takes_torch(pair, tmp_path):
    """pair.json lists a graph whose file was deleted: available_backends said ort-cpu could run it, and auto
    picked ort-cpu, whose load then failed; the pair's torch backend could run it all along. An export whose
    graph is missing (and that holds pair/) is the same."""
    from cgan.runtime import available_backends

    add_pair_graphs(pair)
    export = make_export(pair, tmp_path / "export")
    (pair / "G.fp32.onnx").unlink()
    for graph in export.glob("G.*.onnx"):
        graph.unlink()
    for folder in (pair, export):
        ok, why = available_backends(str(folder))["ort-cpu"]
        assert not ok and "G." in why and "is missing" in why, why
        with Translator.load(str(folder), device="cpu") as t:
            assert t.info.backend == "torch" and t.translate(FRAME).shape == FRAME.shape
    assert available_backends(str(pair), direction="F")["ort-cpu"] == (True, "")
    with pytest.raises(CganError, match=r"G.fp32.onnx is missing; re-create its graphs with `cgan-export "
                                        r".*--in-pair`$"):
        Translator.load(str(pair), backend="ort-cpu")


def test_changed_weights_or_graph_are_refused(pair):
    add_pair_graphs(pair)
    weights = pair / "G.safetensors"
    data = bytearray(weights.read_bytes())
    data[-3] ^= 0x55  # a weight byte the graph would read as external data
    weights.write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match="sha256"):
        Translator.load(str(pair), backend="ort-cpu")
    add_pair_graphs(make_pair(pair, blocks=2, ngf=8))  # fresh weights and graphs
    meta = json.loads((pair / "pair.json").read_text())
    meta[GRAPHS]["F"]["weights_sha256"] = "0" * 64  # a graph listed for other weights
    (pair / "pair.json").write_text(json.dumps(meta))
    with pytest.raises(IntegrityError, match=r"made for other weights .*--in-pair"):
        Translator.load(str(pair), direction="F", backend="ort-cpu")
    with Translator.load(str(pair), direction="F", backend="torch", device="cpu") as t:  # torch never reads graphs
        assert t.translate(FRAME).shape == FRAME.shape
    meta[GRAPHS] = {"G": {"kind": "onnx", "precision": "fp32", "io": "nchw", "path": "G.fp32.onnx",
                          "io_dtype": "nonsense"}, "X": 3}
    (pair / "pair.json").write_text(json.dumps(meta))
    load_pair(pair)  # a broken graph entry does not stop the pair's other uses
    with pytest.raises(IntegrityError, match="malformed graph entry for G"):
        Translator.load(str(pair), backend="ort-cpu")
    with pytest.raises(CganError, match=r"without an FP32 ONNX graph for .*--in-pair.*--out EXPORT_FOLDER` and load "
                                        r"EXPORT_FOLDER"):  # F has no graph listed any more
        Translator.load(str(pair), direction="F", backend="ort-cpu")


def test_a_graph_listed_for_the_other_generator_is_refused(pair):
    """pair.json's G entry naming F's graph file (hashes updated to match): the graph's own metadata says F."""
    from cgan._files import file_record

    add_pair_graphs(pair)
    meta = json.loads((pair / "pair.json").read_text())
    meta[GRAPHS]["G"].update(file_record(pair / "F.fp32.onnx", pair))
    (pair / "pair.json").write_text(json.dumps(meta))
    with pytest.raises(IntegrityError, match="the graph of F, listed as G's"):
        Translator.load(str(pair), backend="ort-cpu")


def test_a_crash_before_pair_json_leaves_a_usable_pair_and_a_rerun_mends_it(pair, monkeypatch):
    """The graphs take their final names before pair.json is rewritten: a failure in between (a full disk) left
    graphs that pair.json's hashes did not match, which made every use of the pair fail, --in-pair too."""
    from cgan.export import pair_graph

    add_pair_graphs(pair, opset=17)

    def full_disk(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pair_graph, "write_json_atomic", full_disk)
    with pytest.raises(OSError):
        add_pair_graphs(pair, opset=18)  # other graph bytes than the listed ones
    monkeypatch.undo()
    with Translator.load(str(pair), backend="torch", device="cpu") as t:
        assert t.translate(FRAME).shape == FRAME.shape
    with pytest.raises(IntegrityError, match="--in-pair"):
        Translator.load(str(pair), backend="ort-cpu")
    add_pair_graphs(pair)
    with Translator.load(str(pair), backend="ort-cpu", threads=1) as t:
        assert t.translate(FRAME).shape == FRAME.shape


def test_weights_changed_while_graphs_are_made_write_nothing(pair, tmp_path, monkeypatch):
    """cgan's own writers wait for the folder's lock (tests/test_pair_lock.py); a writer that takes none (a
    pair copied over it by hand) is caught by the check before pair.json is written."""
    from cgan.export import parity
    from cgan.trainer.weights import load_generator, save_pair

    p = load_pair(pair)
    new = {g: load_generator(p, g).state_dict() for g in ("G", "F")}
    for v in new["G"].values():
        v.mul_(0.5)
    elsewhere = save_pair(tmp_path / "elsewhere", p.spec, new, "float32")
    real, calls = parity.check_generator, []

    def meanwhile(net, variants, frames, thresholds=None):
        calls.append(1)
        if len(calls) == 2:  # while F's graph is checked, new weights are copied into the pair
            for name in ("G.safetensors", "F.safetensors", "pair.json"):
                shutil.copyfile(elsewhere / name, pair / name)
        return real(net, variants, frames, thresholds)

    monkeypatch.setattr(parity, "check_generator", meanwhile)
    with pytest.raises(IntegrityError, match="changed while its graphs were made"):
        add_pair_graphs(pair)
    after = load_pair(pair)  # the new weights, listed with their own hashes
    assert after.graphs == {} and not (pair / "G.fp32.onnx").exists()


def test_in_pair_refusals_before_anything_is_written(pair, monkeypatch):
    from cgan.export import pair_graph

    with pytest.raises(CganError, match="packaged with cgan"):
        add_pair_graphs("summer2winter")
    with pytest.raises(CganError, match="packaged with cgan"):
        add_pair_graphs("winter2summer")
    meta = json.loads((pair / "pair.json").read_text())
    (pair / "G.safetensors").rename(pair / "G.fp32.onnx")
    meta["files"]["G"]["path"] = "G.fp32.onnx"
    (pair / "pair.json").write_text(json.dumps(meta))
    with pytest.raises(CganError, match="the name of G's graph"):
        add_pair_graphs(pair)
    assert load_pair(pair).files["G"]["path"] == "G.fp32.onnx"  # the weights are still there, verified
    (pair / "G.fp32.onnx").rename(pair / "G.safetensors")
    meta["files"]["G"]["path"] = "G.safetensors"
    (pair / "pair.json").write_text(json.dumps(meta))
    monkeypatch.setattr(pair_graph, "MAX_INLINE_BYTES", 0)  # the instance-norm constants stay inline
    with pytest.raises(IntegrityError, match="cannot be shared"):
        add_pair_graphs(pair)
    assert sorted(p.name for p in pair.iterdir()) == ["F.safetensors", "G.safetensors", "pair.json"]


def test_weights_in_a_subfolder_are_named_by_their_path(tmp_path):
    src = make_pair(tmp_path / "p", blocks=1, ngf=4)
    (src / "w").mkdir()
    meta = json.loads((src / "pair.json").read_text())
    for gen in ("G", "F"):
        (src / f"{gen}.safetensors").rename(src / "w" / f"{gen}.safetensors")
        meta["files"][gen]["path"] = f"w/{gen}.safetensors"
    (src / "pair.json").write_text(json.dumps(meta))
    add_pair_graphs(src)
    with Translator.load(str(src), backend="ort-cpu", threads=1) as a, \
            Translator.load(str(src), backend="torch", device="cpu") as b:
        assert np.abs(a.translate(FRAME).astype(int) - b.translate(FRAME)).max() <= 1


def test_new_weights_drop_the_old_graphs(pair):
    from cgan.trainer.weights import load_generator, save_pair

    p = add_pair_graphs(pair)
    states = {g: load_generator(p, g).state_dict() for g in ("G", "F")}
    save_pair(pair, p.spec, states, "float16")
    again = load_pair(pair)
    assert again.graphs == {} and not (pair / "G.fp32.onnx").exists() and not (pair / "F.fp32.onnx").exists()
    with pytest.raises(CganError, match="without an FP32 ONNX graph"):
        Translator.load(str(pair), backend="ort-cpu")


def test_the_same_weights_written_again_keep_the_graphs(pair):
    """A finished run resumed, or `export-pair` again, rewrites the pair with the same weights, byte for byte:
    its graphs still read them and stay (they were deleted, and ort-cpu no longer ran the pair). A pair whose G
    changes keeps only F's graph."""
    from cgan.trainer.weights import load_generator, save_pair

    p = add_pair_graphs(pair)
    dtype = p.meta["files"]["G"]["dtype"]
    states = {g: load_generator(p, g, dtype=torch.float32).state_dict() for g in ("G", "F")}
    save_pair(pair, p.spec, states, dtype, training={"steps": 1})
    again = load_pair(pair)
    assert set(again.graphs) == {"G", "F"} and again.meta["training"] == {"steps": 1}
    with Translator.load(str(pair), backend="ort-cpu") as t:
        assert t.translate(FRAME).shape == FRAME.shape
    states["G"] = {k: v + 0.01 if v.is_floating_point() else v for k, v in states["G"].items()}
    save_pair(pair, p.spec, states, dtype)
    again = load_pair(pair)
    assert set(again.graphs) == {"F"} and not (pair / "G.fp32.onnx").exists() and (pair / "F.fp32.onnx").exists()
    with Translator.load(str(pair), backend="ort-cpu", direction="F") as t:
        assert t.translate(FRAME).shape == FRAME.shape


def test_each_file_is_hashed_once_when_a_pair_is_written(pair, monkeypatch):
    """Each new weight file is hashed once (it was hashed twice: to check the old graphs, then for pair.json),
    and each kept graph once."""
    import cgan._files
    from cgan.trainer.weights import load_generator, save_pair

    p = add_pair_graphs(pair)
    dtype = p.meta["files"]["G"]["dtype"]
    states = {g: load_generator(p, g, dtype=torch.float32).state_dict() for g in ("G", "F")}
    hashed = []
    real = cgan._files.sha256_file
    monkeypatch.setattr(cgan._files, "sha256_file", lambda path, *a: hashed.append(Path(path).name) or real(path, *a))
    import cgan.trainer.weights

    monkeypatch.setattr(cgan.trainer.weights, "sha256_file", cgan._files.sha256_file)
    save_pair(pair, p.spec, states, dtype)
    import re

    hashed = [re.sub(r"^\.(.+)\.[^.]+\.tmp$", r"\1", name) for name in hashed]  # (weights: hashed as temp files)
    assert sorted(hashed) == ["F.fp32.onnx", "F.safetensors", "G.fp32.onnx", "G.safetensors"]
    assert set(load_pair(pair).graphs) == {"G", "F"}


@pytest.mark.parametrize("junk", ["[" * 100_000, "not json", '{"onnx": [1, 2]}'])
def test_a_damaged_pair_json_is_written_over(pair, junk):
    """save_pair reads the old pair.json for graphs to keep: a damaged one keeps none (one nested too deeply for
    Python's parser was a RecursionError traceback)."""
    from cgan.trainer.weights import load_generator, save_pair

    p = load_pair(pair)
    states = {g: load_generator(p, g).state_dict() for g in ("G", "F")}
    (pair / "pair.json").write_text(junk)
    save_pair(pair, p.spec, states)
    assert load_pair(pair).graphs == {}


def test_an_export_copies_the_graphs_with_its_pair(pair, tmp_path):
    from cgan.export.api import export_pair

    add_pair_graphs(pair)
    out = export_pair(str(pair), tmp_path / "exp", fp16=False, parity=False)
    copy = load_pair(out / "pair")  # verifies the copied graphs too
    assert set(copy.graphs) == {"G", "F"}
    with Translator.load(str(out / "pair"), backend="ort-cpu", threads=1) as t:
        assert t.translate(FRAME).shape == FRAME.shape


def test_a_failed_parity_writes_nothing(pair, monkeypatch):
    from cgan.export import parity

    before = (pair / "pair.json").read_bytes()
    real = parity.check_generator

    def bad(net, variants, frames, thresholds=None):
        fig = real(net, variants, frames, thresholds)
        fig["failures"] = ["FP32 max abs error 1 > 0.0001"]
        return fig

    monkeypatch.setattr(parity, "check_generator", bad)
    with pytest.raises(IntegrityError, match="parity"):
        add_pair_graphs(pair)
    assert (pair / "pair.json").read_bytes() == before
    assert sorted(p.name for p in pair.iterdir()) == ["F.safetensors", "G.safetensors", "pair.json"]


def test_weights_that_are_not_in_the_file_are_not_shared(pair, tmp_path):
    """A graph whose initializers do not come from the safetensors file keeps them inline (and add_pair_graphs
    refuses a graph that would copy the weights): nothing may point at the wrong bytes."""
    from cgan.export import onnx_export
    from cgan.trainer.weights import load_generator

    other = load_pair(make_pair(tmp_path / "other", blocks=2, ngf=8, seed=1))
    net = load_generator(other, "G")
    model = onnx_export.export_onnx(net, {})
    _, shared, inline = share_weights(model, load_generator(load_pair(pair), "G").state_dict(), pair / "G.safetensors")
    assert shared == 0 and inline > sum(v.numel() * 4 for v in net.state_dict().values()) * 0.9


def test_tensor_layout_refuses_a_damaged_header(tmp_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes((10**9).to_bytes(8, "little") + b"{}")
    with pytest.raises(IntegrityError, match="header length"):
        tensor_layout(bad)
    bad.write_bytes((12).to_bytes(8, "little") + b'{"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 8]}}'[:12])
    with pytest.raises(IntegrityError):
        tensor_layout(bad)
    header = json.dumps({"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 8]}}).encode()
    bad.write_bytes(len(header).to_bytes(8, "little") + header + bytes(8))
    with pytest.raises(IntegrityError, match="does not fit"):  # 4 floats need 16 bytes
        tensor_layout(bad)


def test_cli_in_pair_and_its_refusals(pair, tmp_path, capsys):
    from cgan._cli import run
    from cgan.export.cli import cli

    for extra, msg in ((["--out", str(tmp_path / "o")], "drop --out"), (["--engine"], "drop --engine"),
                       (["--no-parity"], "always checks parity"),
                       (["--no-fp16", "--no-simplify", "--shapes", "x"], "drop --no-fp16, --no-simplify, --shapes")):
        assert run(cli, [str(pair), "--in-pair", *extra]) == 2
        err = capsys.readouterr().err
        assert msg in err and "Traceback" not in err, err
    assert not (tmp_path / "o").exists() and load_pair(pair).graphs == {}
    export = make_export(pair, tmp_path / "export")
    assert run(cli, [str(export), "--in-pair"]) == 2
    assert "is an export folder" in capsys.readouterr().err
    assert run(cli, ["--in-pair"]) == 2
    assert "needs PAIR" in capsys.readouterr().err
    assert run(cli, [str(pair), "--in-pair", "--parity-sizes", "32x48"]) == 0
    assert capsys.readouterr().out.strip() == str(pair) and set(load_pair(pair).graphs) == {"G", "F"}


def test_embedded_pair_runs_on_onnxruntime_without_torch(tmp_path):
    """The base install has no torch: the embedded pair must still translate (ort-cpu on its in-pair graphs),
    and give what the torch backend gives."""
    folder = resolve("summer2winter").folder
    p = load_pair(folder)  # verifies weights and graphs
    assert set(p.graphs) == {"G", "F"}
    assert all((folder / rec["path"]).stat().st_size < 100_000 for rec in p.graphs.values())
    frame = np.ascontiguousarray(np.random.default_rng(0).integers(0, 256, (64, 96, 3), dtype=np.uint8))
    np.save(tmp_path / "frame.npy", frame)
    code = (
        "import sys; sys.modules['torch'] = None\n"  # `import torch` now fails as if it were not installed
        "import numpy as np\n"
        "from cgan.runtime import Translator\n"
        f"f = np.load({str(tmp_path / 'frame.npy')!r})\n"
        "with Translator.load('summer2winter', threads=1) as t:\n"
        f"    np.save({str(tmp_path / 'out.npy')!r}, t.translate(f)); print(t.info.backend)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "ort-cpu"
    with Translator.load("summer2winter", backend="torch", device="cpu") as t:
        ref = t.translate(frame)
    assert np.abs(np.load(tmp_path / "out.npy").astype(int) - ref).max() <= 1


def test_an_old_onnxruntime_does_not_run_pair_graphs(pair, monkeypatch):
    """onnxruntime before 1.24.1 reads ONNX external data from any path a graph names (an absolute path or
    `../` outside the folder, tried with 1.23.2): a hostile pair could make it read any file as weights. Such an
    onnxruntime does not run pair graphs; auto falls back to torch."""
    import onnxruntime

    add_pair_graphs(pair)
    monkeypatch.setattr(onnxruntime, "__version__", "1.23.2")
    with pytest.raises(CganError, match=r"from 1\.24\.1 on \(this is 1\.23\.2\)"):
        Translator.load(str(pair), backend="ort-cpu")
    with Translator.load(str(pair), device="cpu") as t:
        assert t.info.backend == "torch"
    monkeypatch.setattr(onnxruntime, "__version__", "1.24.1")
    with Translator.load(str(pair), device="cpu") as t:
        assert t.info.backend == "ort-cpu"


def test_an_old_onnxruntime_does_not_run_export_graphs_either(pair, tmp_path, monkeypatch):
    """A shared export folder's graph can name external data too (an absolute path: the file's bytes came out in
    the output pixels with 1.23.2), so the version gate holds for export folders as well as pairs."""
    import onnxruntime

    from _helpers_runtime import make_export

    out = make_export(pair, tmp_path / "export")
    monkeypatch.setattr(onnxruntime, "__version__", "1.23.2")
    with pytest.raises(CganError, match=r"from 1\.24\.1 on \(this is 1\.23\.2\)"):
        Translator.load(str(out), backend="ort-cpu")
    monkeypatch.setattr(onnxruntime, "__version__", "1.24.1")
    with Translator.load(str(out), backend="ort-cpu") as t:
        assert t.info.kind == "export"


@pytest.mark.parametrize("location", ["../outside.safetensors", "ABSOLUTE"])
def test_a_graph_naming_weights_outside_its_folder_is_not_loaded(pair, tmp_path, location):
    """A hostile pair folder (graph and pair.json hashes forged to match) whose graph reads its weights from
    outside the folder: onnxruntime refuses it, and the user gets one line."""
    import onnx

    from cgan._files import file_record

    add_pair_graphs(pair)
    outside = pair.parent / "outside.safetensors"
    shutil.copy2(pair / "G.safetensors", outside)
    target = str(outside) if location == "ABSOLUTE" else location
    graph = pair / "G.fp32.onnx"
    model = onnx.load(str(graph), load_external_data=False)
    for t in model.graph.initializer:
        for e in t.external_data:
            if e.key == "location":
                e.value = target
    graph.write_bytes(model.SerializeToString())
    meta = json.loads((pair / "pair.json").read_text())
    meta[GRAPHS]["G"].update(file_record(graph, pair))
    (pair / "pair.json").write_text(json.dumps(meta))
    with pytest.raises(CganError, match="onnxruntime cannot load"):
        Translator.load(str(pair), backend="ort-cpu")


def test_every_graph_field_mutation_runs_or_is_one_line(tmp_path):
    """Each field of G's graph entry in pair.json (and the entry itself) replaced by odd JSON values: loading on
    ort-cpu and translating gives a result or a one-line CganError, never another exception (found: io_dtype
    "nonsense" -> TypeError through cgan-video)."""
    from cgan.errors import BackendUnavailable

    folder = make_pair(tmp_path / "p", blocks=1, ngf=4)
    add_pair_graphs(folder)
    base = json.loads((folder / "pair.json").read_text())
    odd = [None, True, 0, -1, 1.5, "", "x", "../x", "/etc/passwd", [], [1], {}, {"a": 1}, "G", "F.fp32.onnx",
           "F.safetensors"]
    failures, outcomes = [], set()
    for key in [None, *base[GRAPHS]["G"]]:
        for value in odd:
            meta = json.loads(json.dumps(base))
            if key is None:
                meta[GRAPHS]["G"] = value
            else:
                meta[GRAPHS]["G"][key] = value
            (folder / "pair.json").write_text(json.dumps(meta))
            try:
                with Translator.load(str(folder), backend="ort-cpu", threads=1) as t:
                    t.translate(FRAME)
                outcomes.add("ran")
            except BackendUnavailable:
                outcomes.add("no graph")
            except CganError as e:
                assert "\n" not in str(e)
                outcomes.add("refused")
            except Exception as e:  # noqa: BLE001 - the point of the test
                failures.append(f"{key} = {value!r}: {type(e).__name__}: {e}")
    assert not failures, "\n".join(failures[:20])
    assert outcomes == {"ran", "no graph", "refused"}  # e.g. a changed "parity" figure still runs


def test_an_export_copies_only_graphs_that_pass_their_checks(pair, tmp_path, caplog):
    """The export's pair/ copy took every file pair.json named: a graph entry `../../notes.txt` read a file
    outside the pair and overwrote one beside the export folder (exit 0); an absolute one was a SameFileError
    traceback; a deleted graph failed the whole export at its end. Checked graphs are copied, the rest left out
    of the copy with a warning, and nothing outside the folders is read or written."""
    import logging

    from cgan.export.api import export_pair

    add_pair_graphs(pair)
    nest = tmp_path / "a" / "b"
    nest.mkdir(parents=True)
    bad = shutil.copytree(pair, nest / "pair")
    outside = tmp_path / "notes.txt"
    outside.write_text("the attacker's bytes")
    mine = tmp_path / "o" / "notes.txt"
    mine.parent.mkdir()
    mine.write_text("the user's notes")
    meta = json.loads((bad / "pair.json").read_text())
    meta[GRAPHS]["G"]["path"] = "../../../notes.txt"
    meta[GRAPHS]["F"]["path"] = str(outside)
    (bad / "pair.json").write_text(json.dumps(meta))
    with caplog.at_level(logging.WARNING):
        export_pair(bad, tmp_path / "o" / "out", fp16=False, parity=False)
    assert mine.read_text() == "the user's notes" and outside.read_text() == "the attacker's bytes"
    copy = load_pair(tmp_path / "o" / "out" / "pair")
    assert copy.graphs == {} and sorted(p.name for p in copy.folder.iterdir()) == [
        "F.safetensors", "G.safetensors", "pair.json"]
    assert caplog.text.count("leaves out its ONNX graph") == 2
    # a good graph is copied; a deleted one is left out, and the export goes through
    (pair / "F.fp32.onnx").unlink()
    export_pair(pair, tmp_path / "ok", fp16=False, parity=False)
    copy = load_pair(tmp_path / "ok" / "pair")
    assert list(copy.graphs) == ["G"] and copy.graph("G")["path"] == "G.fp32.onnx"
    with Translator.load(str(tmp_path / "ok" / "pair"), backend="ort-cpu") as t:  # the copied graph runs
        assert t.translate(np.zeros((16, 16, 3), np.uint8)).shape == (16, 16, 3)
