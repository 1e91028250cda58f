"""The embedding API as an app developer uses it (QA 2026-12-04): memory after one large frame, run_photos with an
app's own translator, generators of frames, the translator's own size bounds, float frames, keyword typos."""
from __future__ import annotations

import logging
import sys
from pathlib import Path

import numpy as np
import pytest

from cgan.errors import CganError
from cgan.runtime import Translator

sys.path.insert(0, str(Path(__file__).parent))
from _helpers_runtime import make_export, make_pair  # noqa: E402


@pytest.fixture(scope="module")
def export(tmp_path_factory):
    base = tmp_path_factory.mktemp("embed_qa")
    return make_export(make_pair(base / "pair", blocks=1, ngf=8), base / "export")


def test_ort_cpu_gives_back_a_large_frames_memory(export):
    """onnxruntime's CPU arena grew to the largest frame and kept it until close (a 3 MP photo: 2.5 GB held by
    the embedded pair, 10 GB estimated at the 16.8 MP limit); the next smaller frame now gives it back."""
    psutil = pytest.importorskip("psutil")
    proc = psutil.Process()
    rng = np.random.default_rng(0)
    small = rng.integers(0, 256, (64, 64, 3), np.uint8)
    with Translator.load(str(export), backend="ort-cpu") as t:
        t.translate(small)
        before = proc.memory_info().rss
        big = t.translate(rng.integers(0, 256, (1536, 2048, 3), np.uint8))
        grown = proc.memory_info().rss - before
        del big
        out = [t.translate(small) for _ in range(2)]  # the second small frame in a row gives it back
        kept = proc.memory_info().rss - before
        assert grown > 200 << 20, grown >> 20  # (about 600 MB: else this test measures nothing)
        assert kept < grown / 3, (grown >> 20, kept >> 20)
        assert np.array_equal(out[0], out[1])  # and the small frame's result is unchanged by it


def test_ort_cpu_shrinks_its_arena_only_after_a_lasting_drop(export, monkeypatch):
    """A shrink makes the next larger run grow the arena again (9-16 % slower when it happens every run): two
    streams of two sizes, or a batch of 2 that is sometimes 1, must not shrink at all; a lasting drop must."""
    from cgan.runtime.backends import ort as ortmod

    shrunk = []
    real = ortmod._OrtBackend._run
    monkeypatch.setattr(ortmod._OrtBackend, "_run",
                        lambda self, b, shape, opts=None: shrunk.append(opts is not None) or real(self, b, shape, opts))
    big, small = np.zeros((64, 64, 3), np.uint8), np.zeros((16, 16, 3), np.uint8)
    with Translator.load(str(export), backend="ort-cpu") as t:
        for _ in range(3):
            t.translate(big), t.translate(small)  # alternating sizes
        for _ in range(3):
            t.translate_batch([big, big]), t.translate(big)  # a batch of 2, sometimes 1
        assert not any(shrunk)
        t.translate(small), t.translate(small), t.translate(small)
        assert shrunk[-3:] == [False, True, False]  # once, at the second small run in a row


@pytest.mark.parametrize("returns, message", [
    (lambda frames: [np.zeros((10, 10, 3), np.uint8) for _ in frames],
     r"returned a uint8 frame of shape \(10, 10, 3\)"),
    (lambda frames: [f.astype(np.float32) for f in frames], "returned a float32 frame"),
    (lambda frames: [], "returned 0 frames for 1"),
    (lambda frames: None, "must return a list of frames"),
])
def test_run_photos_checks_an_apps_translator_as_run_video_does(tmp_path, returns, message):
    """Every photo was written at 10x10 (or clipped from float, or [] raised IndexError): the run now ends with
    run_video's one-line error and writes nothing."""
    import cv2

    from cgan.runtime.photos import PhotoJob, run_photos

    album = tmp_path / "album"
    album.mkdir()
    for i in range(2):
        cv2.imwrite(str(album / f"p{i}.png"), np.full((24, 32, 3), 40 * i, np.uint8))

    class Translator_:
        def translate_batch(self, frames):
            return returns(frames)

    with pytest.raises(CganError, match=message):
        run_photos(PhotoJob(inputs=[album], output=tmp_path / "out", progress=False), translator=Translator_())
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").glob("*.png"))


def test_a_never_ending_generator_of_frames_is_read_as_the_run_goes():
    """FrameListSource read its whole input when made (list(frames)): a camera SDK's endless generator hung there,
    5000+ frames in, before run_video was even called. A list still gives its frame count (the progress bar's
    total); a generator gives frames one read at a time."""
    import itertools

    from cgan.runtime.sources import FrameListSource
    from cgan.runtime.video import VideoJob, run_video

    pulled, released = [], []

    def camera():
        try:
            for i in itertools.count():
                pulled.append(i)
                yield np.full((16, 16, 3), i % 256, np.uint8)
        finally:
            released.append(True)  # an SDK's device released

    src = FrameListSource(camera(), fps=1000, live=True)
    assert pulled == []  # nothing read when made

    class Same:
        def translate_batch(self, frames):
            return [f.copy() for f in frames]

    summary = run_video(VideoJob(inputs=[src], max_frames=5, display=False, progress=False), translator=Same())
    # (live: a frame that arrives while one is translated may be dropped as stale, so frames may be under 5)
    assert summary.frames + summary.dropped >= 5 and summary.frames >= 1 and len(pulled) < 1000
    assert released == [True]  # run_video closed the source, and the source its generator
    listed = FrameListSource([np.zeros((16, 16, 3), np.uint8)] * 3, fps=10)
    assert listed.frame_count == 3 and [listed.read() is not None for _ in range(4)] == [True, True, True, False]
    assert FrameListSource(iter([np.zeros((16, 16, 3), np.uint8)]), fps=10).frame_count == 0  # not known


def test_the_pipelines_bound_frames_by_what_the_translator_runs(export, tmp_path):
    """Translator.load(max_side=256) translates a 4200x4200 frame at 256x256, but run_photos and run_video
    refused it for the native size (16.8 MP limit), naming the CLI's --size to a Python caller."""
    import cv2

    from cgan.runtime.photos import PhotoJob, run_photos
    from cgan.runtime.sources import FrameListSource
    from cgan.runtime.video import VideoJob, run_video

    big = np.full((4200, 4200, 3), 120, np.uint8)
    with Translator.load(str(export), backend="ort-cpu", max_side=256) as t:
        assert t.model_size(4200, 4200) == (256, 256) and t.model_size(30, 41) == (32, 44)
        cv2.imwrite(str(tmp_path / "big.png"), big)
        s = run_photos(PhotoJob(inputs=[tmp_path / "big.png"], output=tmp_path / "o.png", progress=False),
                       translator=t)
        assert s.failed == [] and cv2.imread(str(tmp_path / "o.png")).shape == (4200, 4200, 3)
        v = run_video(VideoJob(inputs=[FrameListSource([big], fps=10)], output=str(tmp_path / "o.avi"),
                               display=False, progress=False), translator=t)
        assert v.frames == 1
    with Translator.load(str(export), backend="ort-cpu") as t:  # without max_side: refused, in both words
        with pytest.raises(CganError, match=r"the frames of frames are 4200x4200, over the 16.8 megapixels.*"
                                            r"--size \(VideoJob.size"):
            run_video(VideoJob(inputs=[FrameListSource([big], fps=10)], output=str(tmp_path / "p.avi"),
                               display=False, progress=False), translator=t)
        s = run_photos(PhotoJob(inputs=[tmp_path / "big.png"], output=tmp_path / "p.png", progress=False),
                       translator=t)
        assert len(s.failed) == 1 and "--size max:4096 (PhotoJob.size" in s.failed[0]["reason"]


def test_float_frames_just_outside_0_1(export):
    """1.0000001 was refused as 'spans [1, 1]: divide by 255' (and dividing a [0, 1] frame by 255 makes it black);
    half a level over is clipped now, and a real overshoot is told to clip, a 0..255 frame to divide."""
    with Translator.load(str(export), backend="ort-cpu") as t:
        one = np.full((16, 16, 3), np.nextafter(np.float32(1), np.float32(2)))
        assert np.array_equal(t.translate(one), t.translate(np.full((16, 16, 3), 255, np.uint8)))
        assert np.array_equal(t.translate(np.full((16, 16, 3), -1e-4, np.float32)),
                              t.translate(np.zeros((16, 16, 3), np.uint8)))
        with pytest.raises(CganError, match=r"spans \[-0.2, 1.18\]: clip it with np.clip\(frame, 0, 1\)"):
            t.translate(np.concatenate([np.full((8, 16, 3), -0.2), np.full((8, 16, 3), 1.18)]).astype(np.float32))
        with pytest.raises(CganError, match=r"spans \[0, 255\]: divide by 255"):
            t.translate(np.concatenate([np.zeros((8, 16, 3)), np.full((8, 16, 3), 255.0)]).astype(np.float32))
        with pytest.raises(CganError, match=r"spans \[-1, 1\]: a \[-1, 1\] frame becomes one with \(frame \+ 1\) / 2"):
            t.translate(np.concatenate([np.full((8, 16, 3), -1.0), np.ones((8, 16, 3))]).astype(np.float32))
        with pytest.raises(CganError, match=r"spans \[0, 1.6\]: rescale it to \[0, 1\]"):
            t.translate(np.concatenate([np.zeros((8, 16, 3)), np.full((8, 16, 3), 1.6)]).astype(np.float32))


@pytest.mark.parametrize("kwargs, meant", [
    ({"maxside": 512}, r"did you mean max_side= \(an argument of Translator.load\)\?"),
    ({"precison": "fp32"}, r"did you mean precision= \(an argument of Translator.load\)\?"),
    ({"threds": 2}, r"did you mean threads=\?"),
    ({"thread": 2, "max_size": 64}, r"did you mean max_side= \(an argument of Translator.load\) for 'max_size', "
                                    r"threads= for 'thread'\?"),
])
def test_a_misspelt_keyword_is_pointed_to_the_one_meant(export, kwargs, meant):
    """A typo of load's own max_side/precision reached the backend's option check, whose error listed only the
    backend's options."""
    with pytest.raises(CganError, match=meant):
        Translator.load(str(export), backend="ort-cpu", **kwargs)


@pytest.mark.parametrize("direct_url, want", [
    ('{"url": "file:///home/ann/cgan", "dir_info": {"editable": true}}', "pip install -e '/home/ann/cgan[cpu]'"),
    ('{"url": "file:///home/ann/my%20code/cgan", "dir_info": {}}', "pip install '/home/ann/my code/cgan[cpu]'"),
    ('{"url": "https://example.org/cgan-1.0.tar.gz", "archive_info": {}}', "pip install 'cgan[cpu]'"),
    ('{"url": "https://github.com/ann/cgan.git", "vcs_info": {"vcs": "git", "commit_id": "0123abc"}}',
     "pip install 'cgan[cpu] @ git+https://github.com/ann/cgan.git@0123abc'"),
    (None, None),  # a source tree run without installing: the tree itself, editable
])
def test_install_hints_name_the_folder_cgan_came_from(monkeypatch, direct_url, want):
    """cgan is not on a package index: 'pip install cgan[cpu]' in an error message left a user stuck ("No
    matching distribution found for cgan"). The hint now installs the extra from the clone cgan came from."""
    from importlib import metadata

    from cgan import _optional

    class Dist:
        def read_text(self, name):
            assert name == "direct_url.json"
            return direct_url

    monkeypatch.setattr(metadata, "distribution", lambda name: Dist())
    _optional._installed_from.cache_clear()
    try:
        got = _optional.pip_extra("cpu")
        if want is None:
            root = Path(_optional.__file__).resolve().parent.parent
            want = f"pip install -e '{root}[cpu]'"
        assert got == want
    finally:
        _optional._installed_from.cache_clear()


@pytest.mark.parametrize("fps", [1e-6, 0, -5, float("nan"), float("inf"), 5000, True])
def test_frame_list_source_takes_only_a_frame_rate(fps, caplog):
    """fps=1e-6 paced a live source 11 days a frame; 0, nan, inf and negative rates were taken without a word (a
    file-like source's rate only times the output, which falls back to the default rate, test_source_fps.py:
    a warning says so)."""
    from cgan.runtime.sources import FrameListSource

    with pytest.raises(CganError, match="a live FrameListSource needs a frame rate from 0.01 to 1000"):
        FrameListSource([], fps=fps, live=True)
    if fps is True:
        with pytest.raises(CganError, match=r"^FrameListSource's fps is the frames' rate, a number .* got fps=True$"):
            FrameListSource([], fps=fps)
        return
    with caplog.at_level(logging.WARNING):
        FrameListSource([], fps=fps, name="cam")
    said = [r.getMessage() for r in caplog.records]
    assert said == [f"warning: FrameListSource cam: fps={fps!r} is not a frame rate a video can have (0.01 to "
                    f"1000); its output is timed at the default rate"], said


@pytest.mark.parametrize("fps", ["abc", None, [25], object(), "1e999x"])
def test_frame_list_source_refuses_a_rate_that_is_no_number_in_one_line(fps):
    """A rate that is no number was a bare ValueError or TypeError from float(); a number written as text
    stays accepted."""
    from cgan.runtime.sources import FrameListSource

    with pytest.raises(CganError, match=r"^FrameListSource's fps is the frames' rate, a number of frames per "
                                        r"second, got fps="):
        FrameListSource([], fps=fps)
    assert FrameListSource([], fps="12.5").fps == 12.5


def test_a_source_that_gives_no_frames_is_said(tmp_path, caplog):
    """An empty source among several got no output file, without a word (the others' files were written)."""
    import logging

    from cgan.runtime.sources import FrameListSource
    from cgan.runtime.video import VideoJob, run_video

    class Same:
        def translate_batch(self, frames):
            return [f.copy() for f in frames]

    frames = [np.full((16, 16, 3), 40 * i, np.uint8) for i in range(3)]
    with caplog.at_level(logging.WARNING, logger="cgan"):
        run_video(VideoJob(inputs=[FrameListSource([], fps=10, name="empty"), FrameListSource(frames, fps=10)],
                           output=str(tmp_path / "e.avi"), display=False, progress=False), translator=Same())
    assert (tmp_path / "e_1.avi").exists() and not (tmp_path / "e_0.avi").exists()
    assert any("no frames of empty were written: e_0.avi is not made" in r.getMessage() for r in caplog.records)
