"""Flicker smoothing: lowers the flicker index on a flickering sequence, without ghosting moving objects."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from cgan.runtime.smooth import FlickerMeter, TemporalSmoother, flicker_index
from cgan.runtime.sources import FrameListSource
from cgan.runtime.video import VideoJob, run_video

H, W, SQ, STEP = 64, 192, 12, 16


def scene(t: int, rng: np.random.Generator) -> np.ndarray:
    """Static textured background + a bright square moving STEP px per frame + a little sensor noise."""
    yy, xx = np.mgrid[0:H, 0:W]
    bg = 80 + 40 * np.sin(xx / 9.0) * np.cos(yy / 7.0)
    img = np.repeat(bg[..., None], 3, axis=2)
    x0 = 8 + STEP * t
    img[20:20 + SQ, x0:x0 + SQ] = 240
    img += rng.normal(0, 1.0, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def flickery_translation(frame: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A fake per-frame generator: inversion plus per-frame noise, as a GAN's output shimmer."""
    noise = rng.normal(0, 12.0, frame.shape[:2])[..., None]
    return np.clip(255.0 - frame + noise, 0, 255).astype(np.uint8)


def sequence(n: int = 10, seed: int = 0):
    rng = np.random.default_rng(seed)
    ins = [scene(t, rng) for t in range(n)]
    outs = [flickery_translation(f, rng) for f in ins]
    return ins, outs


def test_flicker_index_definition():
    ins, outs = sequence(5)
    assert flicker_index(ins, ins) == pytest.approx(1.0)
    const = [np.full_like(outs[0], 7)] * len(outs)
    assert flicker_index(ins, const) == 0.0
    m = FlickerMeter()
    m.update(ins[0], outs[0])
    with pytest.raises(ValueError):
        _ = m.value


def test_smoothing_lowers_flicker_without_ghosting():
    ins, outs = sequence(10)
    sm = TemporalSmoother(strength=0.8, threshold=12.0)
    smoothed = [sm(i, o) for i, o in zip(ins, outs)]
    raw, smooth = flicker_index(ins, outs), flicker_index(ins, smoothed)
    assert smooth < 0.6 * raw, (raw, smooth)
    for t in range(3, 10):
        x0 = 8 + STEP * t
        now = (slice(22, 20 + SQ - 2), slice(x0 + 2, x0 + SQ - 2))             # square interior, frame t
        was = (slice(22, 20 + SQ - 2), slice(x0 - STEP + 2, x0 - STEP + SQ - 2))  # where it was at t-1
        # the moving square follows the new frame (its output is dark: 255-240 + noise)
        assert abs(float(smoothed[t][now].mean()) - float(outs[t][now].mean())) < 3
        assert float(smoothed[t][now].mean()) < 40
        # where it just left, the background is back (no trail of the square's dark output)
        expected_bg = 255.0 - float(ins[t][was].mean())
        assert abs(float(smoothed[t][was].mean()) - expected_bg) < 15


def test_scene_cut_resets_history():
    ins, outs = sequence(3)
    sm = TemporalSmoother()
    sm(ins[0], outs[0])
    cut_in = 255 - ins[1]
    assert np.array_equal(sm(cut_in, outs[1]), outs[1])


def haloed_translation(frame: np.ndarray, rng: np.random.Generator | None) -> np.ndarray:
    """A fake generator with a wide receptive field: each output pixel depends on its surroundings (as a
    CycleGAN's does), so an object paints a halo on the unchanged background around it; plus per-frame noise
    (none without `rng`)."""
    context = cv2.GaussianBlur(frame.astype(np.float32), (0, 0), 6)
    noise = 0.0 if rng is None else rng.normal(0, 6.0, frame.shape[:2])[..., None]
    return np.clip(255.0 - 0.2 * frame - 0.8 * context + noise, 0, 255).astype(np.uint8)


def test_a_moving_objects_halo_leaves_no_trail():
    """Behind a moving object the input is plain background again while the output still changes (its halo
    goes): that change is coherent, not flicker, so the new output is taken there. Weighted by the input change
    alone, the halo was averaged in at 0.8 and left a fading trail (26.8 levels behind a moving disk on the
    real pair, QA 2026-12-02)."""
    rng = np.random.default_rng(2)
    yy, xx = np.mgrid[0:H, 0:W]
    ins = []
    for t in range(10):
        img = np.full((H, W, 3), 150, np.float32)
        img[(yy - 32) ** 2 + (xx - (20 + 12 * t)) ** 2 < 12 ** 2] = 20
        ins.append(np.clip(img + rng.normal(0, 1.0, img.shape), 0, 255).astype(np.uint8))
    outs = [haloed_translation(f, rng) for f in ins]
    clean = [haloed_translation(f, None) for f in ins]
    sm = TemporalSmoother()
    smoothed = [sm(i, o) for i, o in zip(ins, outs)]
    for t in (6, 8):
        cx = 20 + 12 * t
        behind = (slice(22, 42), slice(cx - 40, cx - 16))  # the background it left 2-3 frames ago
        trail = float((smoothed[t][behind].astype(np.float32) - clean[t][behind]).mean())  # the noise averages out
        assert abs(trail) < 3, (t, trail)  # 6.2 and 6.7 when weighted by the input change alone
    still = (slice(0, 8), slice(0, W))  # far from the disk: flicker still smoothed
    assert np.abs(smoothed[9][still].astype(np.float32) - outs[9][still]).mean() > 1


def test_a_cut_to_a_scene_as_bright_resets_history():
    """Two textures of the same mean brightness: the mean input change (about 30 levels) stays under the
    scene-cut level, but most pixels changed, so the history is dropped: the first frame after the cut is the
    new output itself (it carried 4 % of its pixels off by more than 40 from the old scene)."""
    a, b = _textures(H, W)
    g = [cv2.GaussianBlur(cv2.cvtColor(x, cv2.COLOR_BGR2GRAY), (5, 5), 0).astype(np.float32) for x in (a, b)]
    assert np.abs(g[0] - g[1]).mean() < TemporalSmoother().scene_cut  # not a cut by the mean change alone
    sm = TemporalSmoother()
    for _ in range(3):
        sm(a, 255 - a)
    assert np.array_equal(sm(b, 255 - b), 255 - b)


def _textures(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Two textured scenes of the same mean brightness (about 30 levels apart per pixel, under the scene-cut
    level by the mean change alone)."""
    yy, xx = np.mgrid[0:h, 0:w]
    a = np.repeat((120 + 60 * np.sin(xx / 5.0) * np.cos(yy / 6.0))[..., None], 3, 2).astype(np.uint8)
    b = np.repeat((120 + 60 * np.sin(yy / 4.0 + 1) * np.cos(xx / 7.0))[..., None], 3, 2).astype(np.uint8)
    return a, b


@pytest.mark.parametrize("flow", [False, True])
@pytest.mark.parametrize("bars", [0, 128, 255, "pillarbox 255", "frame 200"])
def test_a_cut_inside_letterbox_bars_resets_history(flow, bars):
    """Bars around the picture never change: a cut between two wide scenes changed about half the whole frame,
    under the share that resets, and the old scene stayed in the new one's first frames. Bars of any colour
    (grey and white ones kept the history in 16 of 132 cuts), above and below, left and right, or all round."""
    level = int(str(bars).split()[-1])
    h, w = (96, 160) if bars != "pillarbox 255" else (48, 320)
    a, b = _textures(*((64, 128) if bars == "frame 200" else (48, 160)))
    frames = []
    for pic in (a, b):
        f = np.full((h, w, 3), level, np.uint8)
        if bars == "frame 200":  # a passe-partout: 16 px of bar on every side of the picture
            f[16:-16, 16:-16] = pic
        elif bars == "pillarbox 255":
            f[:, 80:240] = pic
        else:
            f[24:72] = pic
        frames.append(f)
    sm = TemporalSmoother(flow=flow)
    for _ in range(3):
        sm(frames[0], 255 - frames[0])
    assert np.array_equal(sm(frames[1], 255 - frames[1]), 255 - frames[1])


def test_flow_does_not_hide_a_cut():
    """The cut test runs on the frames as they are: warped by the flow, the old scene looked like the new one,
    and a cut that plain smoothing caught carried the old scene over."""
    a, b = _textures(96, 160)
    sm = TemporalSmoother(flow=True)
    for _ in range(3):
        sm(a, 255 - a)
    assert np.array_equal(sm(b, 255 - b), 255 - b)


def test_flow_keeps_a_still_noisy_scene_as_steady_as_plain_smoothing():
    """Optical flow follows sensor noise on flat areas (about 1 px here); the warped history is taken only where
    it matches better, so a still sky is smoothed as well with --smooth-flow as without (it flickered 39 % more)."""
    rng = np.random.default_rng(5)
    yy, xx = np.mgrid[0:120, 0:160]
    sky = np.repeat((150 + 40 * yy / 120.0 + 5 * np.sin(xx / 23.0))[..., None], 3, 2)
    ins = [np.clip(sky + rng.normal(0, 2.0, sky.shape), 0, 255).astype(np.uint8) for _ in range(16)]
    outs = [flickery_translation(f, rng) for f in ins]
    plain = flicker_index(ins, [s(i, o) for s in [TemporalSmoother()] for i, o in zip(ins, outs)])
    flow = flicker_index(ins, [s(i, o) for s in [TemporalSmoother(flow=True)] for i, o in zip(ins, outs)])
    assert flow <= 1.1 * plain, (plain, flow)


def test_smoother_refuses_frames_not_uint8():
    """Float or 16-bit outputs used to come back as uint8 garbage (0/1, or saturated), silently."""
    f = np.zeros((32, 32, 3), np.uint8)
    sm = TemporalSmoother()
    sm(f, f)
    for bad in (f.astype(np.float32) / 255, f.astype(np.uint16)):
        with pytest.raises(ValueError, match="uint8"):
            sm(f, bad)


def test_flow_smooths_a_pan_better():
    """In a camera pan every pixel changes, so plain smoothing blurs or does little; flow-warped history
    stays aligned: the result is closer to the noise-free translation."""
    rng = np.random.default_rng(3)
    tex = cv2.GaussianBlur(rng.uniform(0, 255, (H, W + 60)).astype(np.float32), (0, 0), 3)
    tex = cv2.normalize(tex, None, 20, 235, cv2.NORM_MINMAX)
    ins = [np.repeat(tex[:, 4 * t:4 * t + W, None], 3, 2).astype(np.uint8) for t in range(12)]
    outs = [flickery_translation(f, rng) for f in ins]
    clean = [255.0 - f for f in ins]

    def error(frames):
        return float(np.mean([np.abs(a.astype(np.float32) - c).mean() for a, c in zip(frames[3:], clean[3:])]))

    plain, flow = TemporalSmoother(flow=False), TemporalSmoother(flow=True)
    e_raw = error(outs)
    e_plain = error([plain(i, o) for i, o in zip(ins, outs)])
    e_flow = error([flow(i, o) for i, o in zip(ins, outs)])
    assert e_flow < 0.6 * e_raw and e_flow < 0.7 * e_plain, (e_raw, e_plain, e_flow)


def test_smoother_rejects_bad_strength():
    with pytest.raises(ValueError):
        TemporalSmoother(strength=1.0)


@pytest.mark.parametrize("bad", [dict(threshold=float("nan")), dict(strength="0.5"), dict(out_threshold=None),
                                 dict(scene_cut=-1), dict(scene_cut_share=0), dict(flow_long_side=0),
                                 dict(min_flow=float("inf")), dict(strength=True)])
def test_smoother_rejects_bad_settings_when_made(bad):
    """A NaN threshold failed on the first frame (cannot convert float NaN to integer), a string strength with a
    bare TypeError, and scene_cut=-1 quietly made every frame a cut (no smoothing at all)."""
    with pytest.raises(ValueError, match=next(iter(bad))):
        TemporalSmoother(**bad)


def test_cli_smooth_strength_range_is_the_api_range(tmp_path, capsys):
    """The CLI refused 0.995 (0..0.99) where the API takes [0, 1); and NaN passed the CLI's range, then failed
    naming the API's field smooth_strength instead of the flag."""
    from cgan._cli import run
    from cgan.runtime.cli import cli

    for value in ("nan", "1.0"):
        assert run(cli, ["--input", "demo", "--output", str(tmp_path / "o.mp4"), "--smooth-strength", value,
                         "--no-display"]) == 2
        err = capsys.readouterr().err
        assert "--smooth-strength" in err and "smooth_strength" not in err, err
    assert not (tmp_path / "o.mp4").exists()
    assert cli.params[[p.name for p in cli.params].index("smooth_strength")].type.max == 1.0


def test_pipeline_smooth_mode_lowers_flicker():
    ins, _ = sequence(10)

    def run(smooth: bool) -> float:
        rng = np.random.default_rng(5)

        class Flickery:
            def translate_batch(self, frames):
                return [flickery_translation(f, rng) for f in frames]

        meter = FlickerMeter()
        job = VideoJob(inputs=[FrameListSource(ins, fps=10)], display=False, progress=False, handle_signals=False,
                       smooth=smooth, on_frame=lambda _i, inp, out: meter.update(inp, out))
        summary = run_video(job, translator=Flickery())
        assert summary.frames == 10
        reported = summary.streams[0]["flicker"]
        if smooth:  # the summary's figures, from a sample of the pixels, agree with the whole frames'
            assert reported["smoothed"] == pytest.approx(meter.value, rel=0.1)
            assert reported["smoothed"] < 0.6 * reported["raw"]
            assert "flicker index" in summary.format() and "smoothed" in summary.format()
        else:
            assert reported is None and "flicker index" not in summary.format()
        return meter.value

    assert run(True) < 0.6 * run(False)


@pytest.mark.parametrize("h,w", [(2, 2), (8, 8), (8, 3000), (3000, 8), (31, 40), (32, 4000)])
def test_flow_smoothing_takes_tiny_and_thin_frames(h, w):
    """DIS optical flow raises on frames smaller than its patches (8x8) and on very thin ones (8x3000): such
    frames are smoothed without flow instead of ending the run with a cv2.error."""
    sm = TemporalSmoother(flow=True)
    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
    for i in range(3):
        out = sm(base, np.clip(base.astype(int) + 4 * (i % 2), 0, 255).astype(np.uint8))
        assert out.shape == base.shape and out.dtype == np.uint8


@pytest.mark.parametrize("shape", [(1, 1, 3), (1, 1), (1, 2, 3), (4, 1, 3), (31, 31, 3)])
def test_frames_too_small_for_flow_are_smoothed_as_without_it(shape):
    """A 1x1 video with --smooth-flow ended in a traceback (OpenCV takes a 1x1 array for a scalar: ValueError
    in the flow's arithmetic); random frames, cuts every one, never reached it. Frames too small for flow are
    smoothed exactly as plain --smooth smooths them."""
    runs = []
    for flow in (True, False):
        sm = TemporalSmoother(flow=flow)
        runs.append([sm(np.full(shape, 100 + i, np.uint8), np.full(shape, 50 + 3 * (i % 2), np.uint8))
                     for i in range(4)])
    for with_flow, plain in zip(*runs):
        assert with_flow.shape == shape and np.array_equal(with_flow, plain)
    assert int(runs[0][1].max()) < 53  # (the frames were smoothed, not passed through as cuts)


@pytest.mark.parametrize("shape", [(24, 32), (24, 32, 1), (24, 32, 3), (24, 32, 4)])
def test_the_output_keeps_its_shape(shape):
    """First frame, smoothed frames and cuts alike: a (H, W, 1) output came back (H, W) once smoothed."""
    rng = np.random.default_rng(0)
    inp = rng.integers(0, 255, (24, 32, 3), dtype=np.uint8)
    sm = TemporalSmoother()
    for k in range(3):
        out = np.clip(rng.integers(100, 110, shape), 0, 255).astype(np.uint8)
        got = sm(inp if k < 2 else 255 - inp, out)  # the third is a cut
        assert got.shape == shape and got.dtype == np.uint8, (k, got.shape)


def test_the_flicker_index_of_frames_in_a_reused_buffer():
    """A reader that fills one buffer with each frame (cap.read(buf)): the meter kept that buffer itself as the
    previous frame, so every change read 0 (index 0.0)."""
    ins, outs = sequence(6)

    def reused(frames):
        buf = np.empty_like(frames[0])
        for f in frames:
            buf[...] = f
            yield buf

    assert flicker_index(reused(ins), reused(outs)) == pytest.approx(flicker_index(ins, outs))
    assert flicker_index(ins, outs) > 0.5


def test_smoothing_runs_in_its_own_stage_beside_translation(monkeypatch):
    """--smooth ran inside the translate thread: a frame's smoothing (31 ms at 720p on a 2-core host) and the
    next frame's translation took turns. Now the smoother has its own thread: while it still holds frame 0, frame
    1 is translated. Frames keep their order, all are smoothed, and the summary names the stage."""
    import threading

    ins, _ = sequence(6)
    translated_1 = threading.Event()
    overlapped, threads = [], []
    real = TemporalSmoother.__call__

    def smoother(self, inp, out):
        threads.append(threading.current_thread().name)
        if len(threads) == 1:  # frame 0: is frame 1 translated meanwhile?
            overlapped.append(translated_1.wait(10))
        return real(self, inp, out)

    monkeypatch.setattr(TemporalSmoother, "__call__", smoother)

    class Marked:
        n = 0

        def translate_batch(self, frames):
            outs = []
            for f in frames:
                if self.n == 1:
                    translated_1.set()
                self.n += 1
                outs.append(255 - f)
            return outs

    written = []
    job = VideoJob(inputs=[FrameListSource(ins, fps=10)], display=False, progress=False, handle_signals=False,
                   smooth=True, smooth_strength=0.0, on_frame=lambda _i, inp, out: written.append((inp, out)))
    summary = run_video(job, translator=Marked())
    assert overlapped == [True]
    assert set(threads) == {"cgan-smooth-0"} and len(threads) == 6
    assert summary.frames == 6 and summary.smooth_fps > 0 and " smooth " in summary.format()
    # in order, and strength 0 passes each translation through unchanged
    assert all(np.array_equal(i, f) and np.array_equal(o, 255 - f) for (i, o), f in zip(written, ins))


def test_several_inputs_are_smoothed_in_parallel_each_in_order(monkeypatch):
    """The smoothing stage was one thread for every input: with four cameras, each frame of each stream waited for
    the others' smoothing. Now the streams share out workers (one per core at most): while stream 0's first frame
    is being smoothed, stream 1's is too; each stream's frames stay in order and all are smoothed."""
    import threading

    import cgan.runtime.video as video_mod

    monkeypatch.setattr(video_mod, "SMOOTH_WORKERS", 2)
    real = TemporalSmoother.__call__
    both = threading.Barrier(2, timeout=10)
    met, names = [], {}

    def smoother(self, inp, out):
        name = threading.current_thread().name
        if name not in names:  # each worker's first frame: is the other worker smoothing at the same time?
            names[name] = 0
            try:
                both.wait()
                met.append(True)
            except threading.BrokenBarrierError:
                met.append(False)
        names[name] += 1
        return real(self, inp, out)

    monkeypatch.setattr(TemporalSmoother, "__call__", smoother)

    class Copy:
        def translate_batch(self, frames):
            return [255 - f for f in frames]

    streams = [sequence(5)[0], [np.roll(f, 3, axis=1) for f in sequence(7)[0]]]
    written: dict[int, list] = {0: [], 1: []}
    job = VideoJob(inputs=[FrameListSource(s, fps=10) for s in streams], display=False, progress=False,
                   handle_signals=False, smooth=True, smooth_strength=0.0,
                   on_frame=lambda i, inp, _out: written[i].append(inp))
    summary = run_video(job, translator=Copy())
    assert met == [True, True]
    assert names == {"cgan-smooth-0": 5, "cgan-smooth-1": 7}  # stream i on worker i % 2
    assert summary.frames == 12 and summary.smooth_fps > 0
    for i, frames in enumerate(streams):
        assert len(written[i]) == len(frames) and all(np.array_equal(a, b) for a, b in zip(written[i], frames))


def test_a_failing_smoother_stops_the_run_with_its_error(monkeypatch):
    """An error in the smoothing stage ends the run and reaches the caller, as one in translation does."""
    ins, _ = sequence(4)

    def broken(self, inp, out):
        raise RuntimeError("smoother broke")

    monkeypatch.setattr(TemporalSmoother, "__call__", broken)

    class Copy:
        def translate_batch(self, frames):
            return [f.copy() for f in frames]

    job = VideoJob(inputs=[FrameListSource(ins, fps=10)], display=False, progress=False, handle_signals=False,
                   smooth=True)
    with pytest.raises(RuntimeError, match="smoother broke"):
        run_video(job, translator=Copy())


def test_smooth_flow_alone_smooths_in_the_api_too():
    """VideoJob(smooth_flow=True) without smooth=True did nothing, silently."""
    ins, _ = sequence(6)

    class Copy:
        def translate_batch(self, frames):
            return [255 - f for f in frames]

    job = VideoJob(inputs=[FrameListSource(ins, fps=10)], display=False, progress=False, handle_signals=False,
                   smooth_flow=True)
    assert job.smooth is True
    summary = run_video(job, translator=Copy())
    assert summary.smooth_fps > 0 and summary.streams[0]["flicker"] is not None


def test_a_pan_under_a_flat_sky_is_no_cut():
    """Bars come in pairs (above and below, left and right): a flat sky at the top of a pan is the same in
    consecutive frames, as a bar is, but taking it for one made most of the rest 'changed' and every frame a cut,
    so the sky was never smoothed."""
    rng = np.random.default_rng(5)
    h, w = 96, 192
    yy, xx = np.mgrid[0:h // 2, 0:w + 200]
    ground = (120 + 60 * np.sin(xx / 5.0) * np.cos(yy / 6.0)).astype(np.uint8)
    sky = np.repeat((170 + 0.3 * np.arange(h // 2))[:, None], w, 1).astype(np.uint8)
    sm = TemporalSmoother()
    kept = []
    for t in range(6):
        f = np.vstack([sky, ground[:, 6 * t:6 * t + w]])
        f = np.repeat(f[..., None], 3, 2)
        out = flickery_translation(f, rng)
        res = sm(f, out)
        kept.append(np.abs(res[:40].astype(np.float32) - out[:40]).mean())
    assert min(kept[1:]) > 3, kept  # the sky's flicker smoothed on every frame after the first


@pytest.mark.parametrize("top, bottom", [((24, 180), (24, 186)), ((24, 180), (40, 180)), ((24, 181), (24, 181))])
def test_flat_bands_of_a_scene_are_no_bars_unless_they_match_as_bars_do(top, bottom):
    """An overcast sky over snow (flat bands at the top and bottom, a few levels apart, or of other thicknesses)
    was taken for letterbox bars: the pan between them counted double and every frame was a cut. Only bands of
    one colour and one thickness count as bars (the last case: such a frame is a letterbox, and a pan filling
    most of the picture between its bars is a cut, as a letterboxed film's pan is)."""
    rng = np.random.default_rng(6)
    w = 192
    yy, xx = np.mgrid[0:48, 0:w + 200]
    mid = (120 + 60 * np.sin(xx / 5.0) * np.cos(yy / 6.0)).astype(np.uint8)
    sm = TemporalSmoother()
    cuts = 0
    for t in range(8):
        f = np.vstack([np.full((top[0], w), top[1], np.uint8), mid[:, 6 * t:6 * t + w],
                       np.full((bottom[0], w), bottom[1], np.uint8)])
        f = np.repeat(f[..., None], 3, 2)
        out = flickery_translation(f, rng)
        cuts += t > 0 and np.array_equal(sm(f, out), out)
        if t == 0:
            sm(f, out)
    assert cuts == (7 if top == bottom else 0), cuts


def test_the_smoothing_benchmarks_settings_are_ones_the_smoother_takes():
    """benchmarks/smoothing.py's 'before' rows passed out_threshold=inf, which the smoother refuses since it
    takes finite values only: the script crashed before measuring anything (QA, docs walk-through)."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "smoothing.py"
    spec = importlib.util.spec_from_file_location("smoothing_bench", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    rng = np.random.default_rng(0)
    for flow in (False, True):
        sm = TemporalSmoother(flow=flow, **mod.BEFORE)
        frames = [rng.integers(0, 255, (40, 48, 3), dtype=np.uint8) for _ in range(3)]
        assert all(sm(f, f).shape == f.shape for f in frames)
