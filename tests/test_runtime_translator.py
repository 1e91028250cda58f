"""Translator + backends on CPU: ort-cpu vs torch parity, sizes, channels, batches, directions, errors."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from cgan._optional import pip_extra
from cgan.errors import BackendUnavailable, CganError, IntegrityError
from cgan.runtime import Translator, available_backends
from cgan.runtime.backends.base import load_model
from cgan.runtime.registry import backend_class

sys.path.insert(0, str(Path(__file__).parent))
from _helpers_runtime import make_export, make_pair  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
rng = np.random.default_rng(1)


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    base = tmp_path_factory.mktemp("rt")
    pair = make_pair(base / "pair", blocks=1, ngf=4)
    export = make_export(pair, base / "export")
    return pair, export


@pytest.fixture(scope="module")
def ort_t(folders):
    with Translator.load(str(folders[1]), backend="ort-cpu", threads=1) as t:
        yield t


@pytest.fixture(scope="module")
def torch_t(folders):
    with Translator.load(str(folders[1]), backend="torch", device="cpu") as t:
        yield t


def reference(pair: Path, gen: str, frame: np.ndarray) -> np.ndarray:
    """Straight through the trainer's generator (torch), reflect-padded to a multiple of 4 and cropped."""
    import torch

    from cgan.trainer.weights import load_generator

    h, w = frame.shape[:2]
    x = np.pad(frame, ((0, -h % 4), (0, -w % 4), (0, 0)), mode="reflect")
    x = torch.from_numpy(x[..., ::-1].transpose(2, 0, 1).copy()).float()[None] / 127.5 - 1
    with torch.no_grad():
        y = load_generator(pair, gen)(x)[0].numpy()
    y = np.clip(np.rint((y + 1) * 127.5), 0, 255).astype(np.uint8).transpose(1, 2, 0)[..., ::-1]
    return y[:h, :w]


def lsb(a: np.ndarray, b: np.ndarray) -> int:
    return int(np.abs(a.astype(int) - b.astype(int)).max())


@pytest.mark.parametrize("shape", [(37, 53, 3), (64, 48, 3), (17, 16, 3)])
def test_ort_cpu_matches_torch_cpu_and_reference(folders, ort_t, torch_t, shape):
    frame = rng.integers(0, 256, shape, dtype=np.uint8)
    a, b = ort_t.translate(frame), torch_t.translate(frame)
    assert a.shape == shape and a.dtype == np.uint8 and b.shape == shape
    assert a.std() > 5  # not a constant image: the comparison means something
    assert lsb(a, b) <= 1
    assert lsb(b, reference(folders[0], "G", frame)) <= 1


def test_batch_equals_single_frames(ort_t):
    frames = [rng.integers(0, 256, (21, 30, 3), dtype=np.uint8) for _ in range(3)]
    batch = ort_t.translate_batch(frames)
    assert len(batch) == 3
    for f, y in zip(frames, batch):
        assert lsb(y, ort_t.translate(f)) <= 1
    assert lsb(ort_t.translate_batch(np.stack(frames))[2], batch[2]) == 0
    with pytest.raises(CganError, match="one size"):
        ort_t.translate_batch([frames[0], frames[0][:20]])
    with pytest.raises(CganError, match="non-empty"):
        ort_t.translate_batch([])


def test_gray_and_bgra_inputs_give_bgr(ort_t):
    gray = rng.integers(0, 256, (24, 33), dtype=np.uint8)
    out = ort_t.translate(gray)
    assert out.shape == (24, 33, 3)
    assert np.array_equal(out, ort_t.translate(np.repeat(gray[..., None], 3, axis=2)))
    assert np.array_equal(ort_t.translate(gray[..., None]), out)
    bgr = rng.integers(0, 256, (24, 33, 3), dtype=np.uint8)
    bgra = np.concatenate([bgr, np.zeros((24, 33, 1), np.uint8)], axis=2)
    assert np.array_equal(ort_t.translate(bgra), ort_t.translate(bgr))


@pytest.mark.parametrize("shape", [(1, 1, 3), (1, 1), (3, 70, 3), (2, 2, 4)])
def test_tiny_frames_keep_their_size(ort_t, torch_t, shape):
    frame = rng.integers(0, 256, shape, dtype=np.uint8)
    for t in (ort_t, torch_t):
        out = t.translate(frame)
        assert out.shape == shape[:2] + (3,) and out.dtype == np.uint8


def test_uint16_and_float_inputs(ort_t):
    f8 = rng.integers(0, 256, (20, 20, 3), dtype=np.uint8)
    base = ort_t.translate(f8)
    assert np.array_equal(ort_t.translate(f8.astype(np.uint16) * 257), base)
    assert np.array_equal(ort_t.translate(f8.astype(np.float32) / 255), base)
    with pytest.raises(CganError, match="NaN"):
        ort_t.translate(np.full((20, 20, 3), np.nan, np.float32))


def test_resize_policies_and_limits(folders):
    frame = rng.integers(0, 256, (50, 70, 3), dtype=np.uint8)
    with Translator.load(str(folders[1]), backend="ort-cpu", resize="fit", threads=1) as t:
        assert t.translate(frame).shape == (50, 70, 3)
    with Translator.load(str(folders[1]), backend="ort-cpu", max_side=32, max_pixels=4000, threads=1) as t:
        assert t.translate(frame).shape == (50, 70, 3)
        big = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
        assert t.translate(big).shape == (64, 64, 3)  # the limit applies to what the model sees: 32x32 here
    with Translator.load(str(folders[1]), backend="ort-cpu", max_pixels=4000, threads=1) as t:
        with pytest.raises(CganError, match="over the limit.*max_side"):
            t.translate(big)  # 64x64 = 4096 pixels through the model
    with pytest.raises(CganError, match="resize policy"):
        Translator.load(str(folders[1]), backend="ort-cpu", resize="crop")


def test_direction_selection(folders, tmp_path, monkeypatch):
    pair, export = folders
    frame = rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)
    ref_f = reference(pair, "F", frame)
    for direction in ("winter2summer", "F", "G_B"):
        with Translator.load(str(export), direction=direction, backend="ort-cpu", threads=1) as t:
            assert t.info.direction == "winter2summer" and t.info.generator == "F"
            assert lsb(t.translate(frame), ref_f) <= 1
    # a name: $CGAN_HOME/pairs/summer2winter; "winter2summer" finds it and selects F
    import os

    shutil.copytree(pair, Path(os.environ["CGAN_HOME"]) / "pairs" / "summer2winter")
    with Translator.load("winter2summer", backend="torch") as t:
        assert (t.info.generator, t.info.direction, t.info.kind) == ("F", "winter2summer", "pair")
        assert lsb(t.translate(frame), ref_f) <= 1
    with pytest.raises(CganError, match="summer2winter.*winter2summer"):
        Translator.load(str(export), direction="autumn2spring", backend="ort-cpu")


def test_single_direction_pair(tmp_path):
    pair = make_pair(tmp_path / "g_only", gens=("G",))
    with pytest.raises(CganError, match="holds summer2winter"):
        load_model(str(pair), "F")
    assert load_model(str(pair)).gen == "G"


def test_user_errors_are_one_line(folders):
    pair, export = folders
    cases = [
        (dict(source=str(export), backend="onnx"), CganError, "auto, tensorrt, tensorrt-rtx, ort-cuda, ort-cpu, torch"),
        (dict(source="no_such_pair"), CganError, "unknown pair"),
        (dict(source=str(pair), backend="ort-cpu"), BackendUnavailable, "cgan-export"),
        (dict(source=str(export), backend="ort-cpu", precision="fp16"), BackendUnavailable, "fp16"),
        (dict(source=str(export), backend="torch", device="cpu", precision="fp16"), BackendUnavailable, "fp16"),
        (dict(source=str(export), precision="fp64"), CganError, "fp32, fp16"),
        (dict(source=str(export), device="tpu"), CganError, "cpu or cuda"),
        (dict(source=str(export), backend="ort-cuda"), BackendUnavailable, "GPU"),
        (dict(source=str(export), precision="fp16"), BackendUnavailable, "no backend can run"),
    ]
    for kwargs, exc, words in cases:
        with pytest.raises(exc) as e:
            Translator.load(**kwargs)
        assert words in str(e.value), (kwargs, str(e.value))
        assert "\n" not in str(e.value)


def test_auto_picks_ort_cpu_for_export_and_torch_for_pair(folders, caplog):
    pair, export = folders
    caplog.set_level("INFO", logger="cgan.runtime")
    with Translator.load(str(export), threads=1) as t:
        assert (t.info.backend, t.info.precision, t.info.device) == ("ort-cpu", "fp32", "cpu")
    assert any("auto -> ort-cpu" in r.getMessage() for r in caplog.records)
    skipped = [r.getMessage() for r in caplog.records if "skipped" in r.getMessage()]
    assert skipped and all(m.startswith("  skipped ") and "('" not in m for m in skipped), skipped
    assert any(m.startswith("  skipped ort-cuda (cuda): ") for m in skipped), skipped
    with Translator.load(str(pair)) as t:
        assert (t.info.backend, t.info.device) == ("torch", "cpu")


def test_available_backends_reasons(folders):
    pair, export = folders
    env = available_backends()
    assert set(env) == {"tensorrt", "tensorrt-rtx", "ort-cuda", "ort-cpu", "torch"}
    assert env["ort-cpu"] == (True, "")
    assert env["tensorrt"][0] is False and "tensorrt" in env["tensorrt"][1]
    on_pair = available_backends(str(pair))
    assert on_pair["ort-cpu"][0] is False and "cgan-export" in on_pair["ort-cpu"][1]
    assert on_pair["torch"][0] is True
    assert available_backends(str(export))["ort-cpu"] == (True, "")


def test_close_and_backend_lifecycle(folders):
    t = Translator.load(str(folders[1]), backend="ort-cpu", threads=1)
    assert not t.closed
    t.close()
    assert t.closed
    with pytest.raises(CganError, match="closed"):
        t.translate(np.zeros((16, 16, 3), np.uint8))
    t.close()  # idempotent
    assert repr(t).endswith("(closed)>") and t.info.backend == "ort-cpu"
    with pytest.raises(CganError, match="this Translator is closed"):  # (it raised only at the first call)
        with t:
            pass
    model = load_model(str(folders[1]))
    be = backend_class("ort-cpu")(model, None, None, threads=1)
    with pytest.raises(CganError, match="not active"):
        be.infer(np.zeros((1, 16, 16, 3), np.uint8))
    with be:
        assert be.infer(np.zeros((1, 16, 16, 3), np.uint8)).shape == (1, 16, 16, 3)
        for bad, words in [(np.zeros((1, 16, 16, 3), np.float32), "uint8"),
                           (np.zeros((16, 16, 3), np.uint8), "(N,H,W,3)"),
                           (np.zeros((1, 18, 16, 3), np.uint8), "multiples of 4")]:
            with pytest.raises(CganError, match=None) as e:
                be.infer(bad)
            assert words in str(e.value)
    assert not be.is_active


def test_concurrent_calls_are_serialized(ort_t, monkeypatch):
    """One Translator shared by threads: its calls run one at a time (the reused input buffer and the backend's
    bound outputs would otherwise be overwritten mid-call) and every thread gets its own frames' results."""
    import time

    frames = [rng.integers(0, 256, (24, 28, 3), dtype=np.uint8) for _ in range(4)]
    expected = [ort_t.translate(f) for f in frames]
    results: dict[int, list] = {}
    errors: list[BaseException] = []
    inside, peak = [0], [0]
    infer = ort_t.backend.infer

    def counting_infer(batch):
        inside[0] += 1
        peak[0] = max(peak[0], inside[0])
        try:
            time.sleep(0.005)  # widens the window in which an unserialized second call would enter
            return infer(batch)
        finally:
            inside[0] -= 1

    monkeypatch.setattr(ort_t.backend, "infer", counting_infer)

    def work(i: int) -> None:
        try:
            results[i] = [ort_t.translate(f) for f in frames for _ in range(2)]
        except BaseException as e:  # a thread's exception would only be a pytest warning
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(3)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors and sorted(results) == [0, 1, 2], errors
    assert peak[0] == 1
    for outs in results.values():
        assert len(outs) == 8 and all(np.array_equal(o, expected[k // 2]) for k, o in enumerate(outs))


NO_TORCH = """
import sys
import numpy as np
import cgan.runtime
assert 'torch' not in sys.modules, 'import cgan.runtime imported torch'
# every runtime module a no-torch app or cgan-video loads (the torch backend's module too: it imports torch
# only when it is activated)
import cgan.runtime.video, cgan.runtime.cli, cgan.runtime.photos, cgan.runtime.registry, cgan.runtime.sources
import cgan.runtime.backends.base, cgan.runtime.backends.ort, cgan.runtime.backends.tensorrt
import cgan.runtime.backends.cuda, cgan.runtime.backends.torch_backend
for heavy in ('torch', 'cgan.trainer', 'cgan.export', 'onnx'):
    assert heavy not in sys.modules, f'importing the runtime modules imported {heavy}'
from cgan.runtime import Translator, available_backends
available_backends(sys.argv[1])
with Translator.load(sys.argv[1], backend=sys.argv[2]) as t:
    assert t.translate(np.zeros((20, 20, 3), np.uint8)).shape == (20, 20, 3)
assert 'torch' not in sys.modules, 'torch was imported'
print('ok')
"""


@pytest.mark.parametrize("backend", ["ort-cpu", "auto"])
def test_runtime_never_imports_torch(folders, backend):
    r = subprocess.run([sys.executable, "-c", NO_TORCH, str(folders[1]), backend], capture_output=True, text=True,
                       cwd=ROOT, timeout=60)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr[-2000:]


def test_example_embed_runs(folders, tmp_path, monkeypatch, capsys):
    import runpy

    pair, export = folders
    monkeypatch.setattr(sys, "argv", ["embed.py", "--pair", str(pair), "--export", str(export),
                                      "--out", str(tmp_path / "out")])
    runpy.run_path(str(ROOT / "examples" / "embed.py"), run_name="__main__")
    text = capsys.readouterr().out
    assert "export-ort-cpu vs torch: max difference" in text  # the pair has no in-pair graphs: torch only
    diff = int(text.split("max difference")[1].split()[0])
    assert diff <= 1
    assert {p.name for p in (tmp_path / "out").iterdir()} == {"input.png", "torch.png", "export-ort-cpu.png"}
    # the embedded pair runs on ort-cpu (its in-pair graphs) and on torch, and they agree
    monkeypatch.setattr(sys, "argv", ["embed.py", "--out", str(tmp_path / "out2")])
    runpy.run_path(str(ROOT / "examples" / "embed.py"), run_name="__main__")
    text = capsys.readouterr().out
    assert int(text.split("torch vs ort-cpu: max difference")[1].split()[0]) <= 1
    # the export runs the direction the pair's runs did (it ran G against the pair's F: a difference of 131)
    monkeypatch.setattr(sys, "argv", ["embed.py", "--pair", str(pair), "--direction", "F", "--export", str(export),
                                      "--out", str(tmp_path / "out3")])
    runpy.run_path(str(ROOT / "examples" / "embed.py"), run_name="__main__")
    text = capsys.readouterr().out
    ran = [line.split()[3] for line in text.splitlines()
           if line.startswith(("torch ", "export-ort-cpu ")) and " vs " not in line]
    assert ran == ["winter2summer"] * 2 and int(text.split("max difference")[1].split()[0]) <= 1, text


@pytest.mark.parametrize("argv, said", [
    (["nothere.jpg"], "nothere.jpg is not a file: pass a picture"),
    (["--export", "no/such/export"], "embed.py: no/such/export does not exist: pass a pair folder"),
    (["--pair", "nope"], "embed.py: unknown pair 'nope': known here:"),
    (["--out-is-a-file"], "cannot write pictures to --out"),
])
def test_example_embed_user_mistakes_are_one_line(argv, said, tmp_path):
    if argv == ["--out-is-a-file"]:  # (the last --out counts)
        (tmp_path / "taken").write_text("x")
        argv = ["--out", str(tmp_path / "taken" / "o")]
    r = subprocess.run([sys.executable, str(ROOT / "examples" / "embed.py"), "--out", str(tmp_path / "o"), *argv],
                       capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert r.returncode == 1 and r.stderr.strip().startswith(said), r.stderr[-2000:]
    assert "Traceback" not in r.stderr and "WARN" not in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert {f.name for f in (tmp_path / "o").glob("*.png")} <= {"input.png"}  # nothing translated before the error


def test_ort_cuda_code_path_on_the_cpu_provider(folders, tmp_path, monkeypatch):
    """ort-cuda's IO binding / prepost / graph-id logic, run with the CPU provider (no GPU here)."""
    from _helpers_runtime import ort_cuda_cpu_stand_in

    export = make_export(folders[0], tmp_path / "export_pp", prepost=True)
    CpuStandIn = ort_cuda_cpu_stand_in()

    frame = rng.integers(0, 256, (29, 35, 3), dtype=np.uint8)
    expect = reference(folders[0], "G", frame)
    model = load_model(str(export))
    for precision, io in (("fp16", "bgr-hwc-uint8"), ("fp32", "nchw")):
        be = CpuStandIn(model, precision, "cpu")
        t = Translator(model, be.activate())
        with t:
            assert be.io == io
            for _ in range(2):  # second call reuses the bound OrtValues
                assert lsb(t.translate(frame), expect) <= 1
            assert len(be.bound) == 1
            t.translate_batch([frame, frame])
            assert len(be.bound) == 2 and set(be.graph_ids.values()) == {1, 2}


def test_a_manifest_entry_that_contradicts_its_graph_is_refused(folders, tmp_path):
    """The manifest is not hashed: an entry edited to another I/O type, or a graph swapped in with its hash
    updated, reached inference (onnxruntime's 'Unexpected input data type' traceback, or wrong colours). Now
    the graph's inputs and outputs are checked against the entry when the backend starts."""
    import json

    from cgan._files import file_record
    from cgan.errors import IntegrityError

    def edited(name, change):
        folder = tmp_path / name
        shutil.copytree(folders[1], folder)
        manifest = json.loads((folder / "manifest.json").read_text())
        rec = next(r for r in manifest["files"] if r["path"] == "G.fp32.onnx")
        change(folder, rec)
        (folder / "manifest.json").write_text(json.dumps(manifest))
        return folder

    typed = edited("typed", lambda folder, rec: rec.update(io_dtype="float16"))
    with pytest.raises(IntegrityError, match=r"G.fp32.onnx does not match its entry .*input is tensor\(float\), "
                                             r"the manifest says float16.*cgan-export"):
        Translator.load(str(typed), backend="ort-cpu")

    def swap_in_prepost(folder, rec):  # a uint8 NHWC graph under the float NCHW entry, hash updated
        pp = make_export(folders[0], tmp_path / "pp", prepost=True) / "G.fp16.prepost.onnx"
        shutil.copyfile(pp, folder / "G.fp32.onnx")
        rec.update({k: v for k, v in file_record(folder / "G.fp32.onnx", folder).items() if k != "path"})

    with pytest.raises(IntegrityError, match=r"input is tensor\(uint8\), the manifest says float32"):
        Translator.load(str(edited("swapped", swap_in_prepost)), backend="ort-cpu")
    with Translator.load(str(folders[1]), backend="ort-cpu") as t:  # the untouched export still runs
        assert t.translate(np.zeros((20, 24, 3), np.uint8)).shape == (20, 24, 3)


def test_corrupt_export_file_is_refused(folders, tmp_path):
    from cgan.errors import IntegrityError

    bad = tmp_path / "bad_export"
    shutil.copytree(folders[1], bad)
    onnx = bad / "G.fp32.onnx"
    data = bytearray(onnx.read_bytes())
    data[len(data) // 2] ^= 0xFF
    onnx.write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match="sha256"):
        Translator.load(str(bad), backend="ort-cpu")
    (bad / "pair" / "G.safetensors").write_bytes(b"x")
    with pytest.raises(IntegrityError):
        Translator.load(str(bad), backend="torch")


def test_export_hints_name_what_the_user_gave(folders):
    """ONNX/TensorRT backends on a pair folder said `cgan-export X2Y` (the spec's name, unknown to cgan-export:
    'unknown pair'); the hint now names the folder with --out. A pair name keeps the short form. Both say how to
    give the pair its own FP32 graphs (--in-pair), and say it for Python callers too (no --pair flag there)."""
    from cgan.runtime.backends.base import load_model
    from cgan.runtime.registry import backend_class

    pair = folders[0]
    ok, why = backend_class("ort-cpu").check(load_model(str(pair)), "fp32")
    assert not ok and f"`cgan-export {pair} --in-pair` (FP32)" in why
    assert f"`cgan-export {pair} --out EXPORT_FOLDER` and load EXPORT_FOLDER instead" in why
    from cgan.pairs import cgan_home

    named = cgan_home() / "pairs" / "hintx2hinty"  # a pair found by name, without in-pair graphs
    shutil.copytree(pair, named)
    ok, why = backend_class("ort-cpu").check(load_model("hintx2hinty"), "fp32")
    assert not ok and "`cgan-export hintx2hinty --in-pair` (FP32), or export it with `cgan-export hintx2hinty`" in why


@pytest.mark.parametrize("field,value", [("io_dtype", "nonsense"), ("io_dtype", [1]), ("io_dtype", True)])
def test_unknown_io_in_a_manifest_is_one_line(folders, tmp_path, capsys, field, value):
    """An export manifest edited to an io_dtype numpy does not know was a TypeError traceback through cgan-video."""
    import json

    from cgan._cli import run
    from cgan.runtime.cli import cli

    bad = tmp_path / "bad_export"
    shutil.copytree(folders[1], bad)
    m = json.loads((bad / "manifest.json").read_text())
    for rec in m["files"]:
        rec[field] = value
    (bad / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(IntegrityError, match="does not know"):
        Translator.load(str(bad), backend="ort-cpu")
    clip = tmp_path / "in.mp4"
    from _helpers_video import make_clip

    make_clip(clip, frames=2)
    assert run(cli, ["--pair", str(bad), "--backend", "ort-cpu", "--input", str(clip), "--output",
                     str(tmp_path / "o.mp4"), "--no-display"]) == 3
    err = capsys.readouterr().err
    assert "does not know" in err and "Traceback" not in err


@pytest.mark.parametrize("backend", ["ort-cpu", "torch"])
def test_backend_infer_takes_flipped_and_read_only_batches(folders, backend):
    """Backend.infer takes any uint8 (N,H,W,3) batch: torch's CPU path refused flipped views (negative strides)
    with torch's own error and warned about read-only ones."""
    import warnings

    frames = rng.integers(0, 256, (2, 16, 20, 3), dtype=np.uint8)
    locked = frames.copy()
    locked.flags.writeable = False
    with backend_class(backend)(load_model(str(folders[1])), None, None, threads=1) as be:
        want = be.infer(np.ascontiguousarray(frames[:, ::-1, :, ::-1]))
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert np.array_equal(be.infer(frames[:, ::-1, :, ::-1]), want)
            assert np.array_equal(be.infer(locked), be.infer(frames.copy()))


def test_with_no_runtime_installed_the_error_leads_with_what_to_install(monkeypatch):
    """A base install (no onnxruntime, no torch) on a machine without a GPU: the one line named the GPU extras
    first and `cgan[runtime]`, the fix, fifth of six; the CPU backends' reasons now lead and the GPU backends
    share one clause."""
    from cgan.runtime.backends import cuda

    monkeypatch.setenv("CGAN_NO_CUDA", "1")
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    monkeypatch.setitem(sys.modules, "torch", None)
    cuda.probe_gpus.cache_clear()  # the count is cached per process: asked again under CGAN_NO_CUDA
    try:
        with pytest.raises(BackendUnavailable) as e:
            Translator.load("summer2winter")
    finally:
        monkeypatch.undo()
        cuda.probe_gpus.cache_clear()
    text = str(e.value)
    assert text.startswith("no backend can run this here: ort-cpu (cpu): onnxruntime is not installed: "
                           f"{pip_extra('runtime')}"), text
    assert text.endswith("; the GPU backends (tensorrt, tensorrt-rtx, ort-cuda, torch): no CUDA GPU here "
                         "(CGAN_NO_CUDA is set)"), text
    assert "\n" not in text


def fake_cpus(root, siblings: dict[int, str]) -> str:
    """A /sys/devices/system/cpu with each CPU's thread_siblings_list."""
    for cpu, text in siblings.items():
        (root / f"cpu{cpu}" / "topology").mkdir(parents=True)
        (root / f"cpu{cpu}" / "topology" / "thread_siblings_list").write_text(text + "\n")
    return str(root)


def test_cpu_threads_default_to_the_physical_cores_this_process_may_use(tmp_path, monkeypatch):
    """ort-cpu's default was psutil's physical cores, else os.cpu_count() (psutil is only a test dependency):
    every logical CPU of the machine, whatever taskset or a container allowed (2 threads under taskset -c 0)."""
    from cgan import _limits

    smt = {i: f"{i % 4},{i % 4 + 4}" for i in range(8)}  # 4 cores, 2 threads each
    cpus, cg = fake_cpus(tmp_path / "cpu", smt), tmp_path / "cg"
    cg.mkdir()
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(8)), raising=False)
    assert _limits.compute_threads(cpus, str(cg)) == 4  # one per core, not per SMT thread
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 4}, raising=False)
    assert _limits.compute_threads(cpus, str(cg)) == 1  # both threads of one core (taskset -c 0,4)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2}, raising=False)
    assert _limits.compute_threads(cpus, str(cg)) == 3
    (cg / "cpu.max").write_text("150000 100000\n")  # docker --cpus 1.5
    assert _limits.compute_threads(cpus, str(cg)) == 2
    (cg / "cpu.max").write_text("max 100000\n")  # no quota
    assert _limits.compute_threads(cpus, str(cg)) == 3
    (cg / "cpu.max").unlink()
    (cg / "cpu").mkdir()
    (cg / "cpu" / "cpu.cfs_quota_us").write_text("100000\n")  # cgroup v1, one CPU
    (cg / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    assert _limits.compute_threads(cpus, str(cg)) == 1
    (cg / "cpu" / "cpu.cfs_quota_us").write_text("-1\n")
    assert _limits.compute_threads(cpus, str(cg)) == 3
    # no topology to read (macOS, Windows): psutil's physical cores where it is installed, else each allowed CPU
    import psutil

    monkeypatch.setattr(psutil, "cpu_count", lambda logical=True: 2)
    assert _limits.compute_threads(str(tmp_path / "none"), str(cg)) == 2
    monkeypatch.setitem(sys.modules, "psutil", None)
    assert _limits.compute_threads(str(tmp_path / "none"), str(cg)) == 3
    # a quota on this process's own cgroup (a systemd slice's CPUQuota=), not on the root
    (cg / "system.slice" / "x.service").mkdir(parents=True)
    (cg / "system.slice" / "cpu.max").write_text("50000 100000\n")
    proc = tmp_path / "cgroup"
    proc.write_text("4:memory:/other\n0::/system.slice/x.service\n")
    assert _limits.compute_threads(cpus, str(cg), str(proc)) == 1
    assert _limits._cpu_list("0-3,8,10-11") == {0, 1, 2, 3, 8, 10, 11} and _limits._cpu_list("x") == set()


def test_ort_cpu_runs_on_the_default_cpu_threads(folders, monkeypatch):
    export = folders[1]
    monkeypatch.setattr("cgan.runtime.backends.ort.compute_threads", lambda: 3)
    with Translator.load(str(export), backend="ort-cpu") as t:
        assert t.backend.session.get_session_options().intra_op_num_threads == 3
    with Translator.load(str(export), backend="ort-cpu", threads=1) as t:
        assert t.backend.session.get_session_options().intra_op_num_threads == 1


def test_buffers_kept_for_other_frame_sizes_stay_bounded(folders, monkeypatch):
    """ort-cpu kept bound buffers for 8 frame sizes (27 bytes a pixel) and the translator 16 input arrays: a
    folder of photos of different sizes held 0.9 GB after eight 4 MP photos, until close. Least recently used
    sizes go first once the kept buffers pass MAX_HELD_BYTES (here made small)."""
    from cgan.runtime.backends import base
    from cgan.runtime.frames import Buffers

    monkeypatch.setattr(base, "MAX_HELD_BYTES", 200_000)
    export = folders[1]
    with Translator.load(str(export), backend="ort-cpu", threads=1) as t:
        bound = t.backend.bound
        sizes = [(40, 48), (44, 52), (48, 56), (52, 60)]  # 27 x 2000..3100 pixels = 54..84 KB each
        outs = {s: t.translate(rng.integers(0, 256, (*s, 3), dtype=np.uint8)) for s in sizes}
        assert len(bound) == 2 and bound.nbytes <= 200_000
        assert (1, 52, 60, 3) in bound and (1, 48, 56, 3) in bound  # the newest two
        t.translate(rng.integers(0, 256, (48, 56, 3), dtype=np.uint8))  # a hit: now the most recent
        t.translate(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8))
        assert (1, 48, 56, 3) in bound and (1, 52, 60, 3) not in bound
        big = rng.integers(0, 256, (100, 100, 3), dtype=np.uint8)  # larger than the limit alone: let in, alone
        assert t.translate(big).shape == big.shape and len(bound) == 1
        for s, out in outs.items():  # what was dropped is bound again, same results
            assert out.shape == (*s, 3)
    cache = base.ShapeCache(drop=lambda key, item: dropped.append(key))
    dropped = []
    for i in range(base.MAX_SHAPES + 2):
        cache.make_room(10)
        cache.put(i, object(), 10)
    assert dropped == [0, 1] and len(cache) == base.MAX_SHAPES
    cache.clear()
    assert len(dropped) == base.MAX_SHAPES + 2 and len(cache) == 0 and cache.nbytes == 0
    # GPU buffers keep the count limit only: two streams alternating batches of 1 and 2 large frames (more than
    # the byte limit together) evicted each other on every call, rebuilding buffers and CUDA graphs
    made = []
    for bounded in (False, True):
        cache = base.ShapeCache(bounded=bounded)
        made.append(0)
        for call in range(20):
            key = (1 + call % 2, 1088, 1920, 3)
            if cache.get(key) is None:
                cache.make_room(150_000 * key[0])
                cache.put(key, object(), 150_000 * key[0])
                made[-1] += 1
    assert made == [2, 20]  # (host memory, bounded: the limit here is 200,000 bytes)
    buffers = Buffers(max_bytes=1000)
    a = buffers.get("in", (10, 10, 3), np.uint8)
    assert buffers.get("in", (10, 10, 3), np.uint8) is a
    buffers.get("in", (20, 20, 3), np.uint8)  # 1200 bytes: the cache is emptied first
    assert buffers.get("in", (10, 10, 3), np.uint8) is not a


def test_an_export_runs_only_its_own_pair_copy(folders, tmp_path):
    """An export's pair/ replaced by a link to another pair (or by another pair's files) ran those weights with
    the manifest saying otherwise (exit 0); RELIABILITY.md promises links out are refused."""
    pair, export = folders
    other = make_pair(tmp_path / "other", blocks=1, ngf=4, seed=5)
    linked = shutil.copytree(export, tmp_path / "linked")
    shutil.rmtree(linked / "pair")
    (linked / "pair").symlink_to(other)
    with pytest.raises(IntegrityError, match="leads out of the export folder"):
        Translator.load(str(linked), backend="torch", device="cpu")
    swapped = shutil.copytree(export, tmp_path / "swapped")
    shutil.rmtree(swapped / "pair")
    shutil.copytree(other, swapped / "pair")
    with pytest.raises(IntegrityError, match="is not the pair .*manifest.json was exported from"):
        Translator.load(str(swapped), backend="torch", device="cpu")
    with Translator.load(str(export), backend="torch", device="cpu") as t:  # its own copy runs
        assert t.translate(np.zeros((16, 16, 3), np.uint8)).shape == (16, 16, 3)


def test_a_grayscale_generator_is_refused_before_a_backend_is_chosen(tmp_path):
    """A 1-channel official generator imported and exported fine, then ort-cpu said its graph 'does not match its
    entry in manifest.json ... re-export it', which cannot help. Every backend now gets the same one line."""
    from cgan.export import export_pair
    from cgan.spec import GeneratorSpec, PairSpec
    from cgan.trainer.networks import build_generator
    from cgan.trainer.weights import save_pair

    spec = PairSpec(GeneratorSpec(blocks=1, ngf=4, in_channels=1, out_channels=1), "day", "night")
    pair = save_pair(tmp_path / "pair", spec, {g: build_generator(spec.generator).state_dict() for g in ("G", "F")})
    export = export_pair(pair, tmp_path / "export", fp16=False, parity=False)
    for source, backend in ((export, "ort-cpu"), (export, "torch"), (pair, "auto")):
        with pytest.raises(CganError, match=r"holds a 1->1-channel generator \(grayscale.*colour \(3-channel\)"):
            Translator.load(str(source), backend=backend)


def test_a_closed_translator_says_so_before_judging_the_frame():
    """A closed Translator checked the frame first: a bad one got a dtype or shape error, not 'closed'."""
    from cgan.runtime import Translator

    t = Translator.load("summer2winter", backend="ort-cpu")
    t.close()
    for frame in (np.zeros((8, 8, 3), np.int32), np.zeros((8, 8, 3), np.uint8), [np.zeros((4, 4, 2), np.uint8)]):
        with pytest.raises(CganError, match="this Translator is closed"):
            t.translate_batch(frame) if isinstance(frame, list) else t.translate(frame)
