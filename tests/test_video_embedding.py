"""run_video / VideoJob / parse_input called from an embedding app (review findings): every mistake is a one-line
CganError naming the Python parameter, before anything is opened; `~` is expanded; the app's own signal handlers
stay in force; translator outputs are checked. Fake translators and 48x64 frames: no model is loaded."""
from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest

from cgan.errors import CganError
from cgan.runtime.sources import MAX_CAMERA_INDEX, FrameListSource, InputSpec, parse_input
from cgan.runtime.video import VideoJob, run_video

from _helpers_video import Invert, make_clip, pattern, probe


def frames(n: int = 3) -> list[np.ndarray]:
    return [pattern(i) for i in range(n)]  # 48x64 BGR uint8


def job(**kw) -> VideoJob:
    kw.setdefault("display", False)
    kw.setdefault("progress", False)
    kw.setdefault("handle_signals", False)
    return VideoJob(**kw)


@pytest.fixture
def no_capture(monkeypatch):
    """Fail the test if anything opens a camera (cv2.VideoCapture(-1) crashed the whole process)."""
    def never(*args, **kwargs):
        raise AssertionError(f"cv2.VideoCapture{args} was called")

    monkeypatch.setattr(cv2, "VideoCapture", never)


# ---- 1. camera indices and input types -----------------------------------------------------------------------
@pytest.mark.parametrize("bad", [-1, -5, MAX_CAMERA_INDEX + 1, 10 ** 12, np.int64(-1)])
def test_parse_input_refuses_out_of_range_camera_indices(no_capture, bad):
    with pytest.raises(CganError, match=f"camera index {int(bad)} is out of range"):
        parse_input(bad)


@pytest.mark.parametrize("bad", [True, False, np.bool_(True), 1.5, np.float64(0), None, b"clip.mp4", object()])
def test_parse_input_refuses_what_is_not_an_input(no_capture, bad):
    with pytest.raises(CganError, match="an input must be a camera index"):
        parse_input(bad)


def test_parse_input_takes_numpy_integers_as_camera_indices(no_capture):
    spec = parse_input(np.int64(3))
    assert spec == InputSpec("camera", 3, "3") and type(spec.target) is int
    assert parse_input(0).target == 0 and parse_input(MAX_CAMERA_INDEX).target == MAX_CAMERA_INDEX


@pytest.mark.parametrize("bad, needle", [([-1], "out of range"), ([10 ** 12], "out of range"),
                                         ([True], "got bool True"), ([1.5], "got float 1.5"),
                                         ([np.float64(0)], "got float64"), ([None], "got NoneType"),
                                         ([b"x.mp4"], "got bytes")])
def test_run_video_refuses_bad_inputs_before_opening_anything(no_capture, bad, needle):
    with pytest.raises(CganError, match=needle):
        run_video(job(inputs=bad), translator=Invert())


# ---- 2. the job is checked up front ---------------------------------------------------------------------------
@pytest.mark.parametrize("inputs", [
    lambda: [(f for f in frames())],       # a generator of frames as one input
    lambda: [frames()],                    # a list of frames as one input
    lambda: [np.stack(frames())],          # an array of frames as one input
    lambda: frames(),                      # the frames themselves as the inputs
    lambda: np.stack(frames()),            # an array as the inputs
])
def test_frames_in_memory_are_refused_with_what_to_do(no_capture, inputs):
    with pytest.raises(CganError, match=r"FrameListSource\(frames, fps=\.\.\.\)"):
        run_video(job(inputs=inputs()), translator=Invert())


def test_one_input_or_any_iterable_of_inputs(tmp_path):
    clip = make_clip(tmp_path / "in.mp4", 3)
    assert VideoJob(inputs=str(clip)).inputs == (str(clip),)  # was iterated per character
    assert VideoJob(inputs=clip).inputs == (clip,)
    assert VideoJob(inputs=0).inputs == (0,)
    src = FrameListSource(frames())
    assert VideoJob(inputs=src).inputs == (src,)
    s = run_video(job(inputs=str(clip), output=str(tmp_path / "a.mp4")), translator=Invert())
    assert s.frames == 3 and probe(tmp_path / "a.mp4")[0] == 3
    gen = (FrameListSource(frames(2)) for _ in range(2))  # had no len()
    s = run_video(job(inputs=gen, output=str(tmp_path / "b.mp4")), translator=Invert())
    assert s.frames == 4 and len(s.outputs) == 2


def test_sources_are_checked(no_capture):
    src = FrameListSource(frames())
    with pytest.raises(CganError, match=r"inputs\[1\] is the same source object"):
        job(inputs=[src, src])

    class Half:
        def read(self):
            return None

    with pytest.raises(CganError, match=r"inputs\[0\] \(Half\) is not a complete source: it lacks close, live"):
        job(inputs=[Half()])
    with pytest.raises(CganError, match="inputs is empty"):
        run_video(job(inputs=[]), translator=Invert())


@pytest.mark.parametrize("field, value", [
    ("max_frames", "2"), ("max_frames", 2.5), ("max_frames", 0), ("max_frames", True),
    ("size", 720), ("size", None),
    ("smooth_strength", "a"), ("smooth_strength", 1.5), ("smooth_strength", float("nan")), ("smooth_strength", True),
    ("output", b"out.mp4"), ("output", 5), ("output", ""),
    ("reconnects", -1), ("reconnects", 1.5), ("queue_size", 0), ("queue_size", -3),
    ("side_by_side", "yes"), ("display", 1), ("progress", None), ("handle_signals", "no"),
    ("on_frame", 5), ("pair", 3), ("backend", None), ("direction", 1),
])
def test_job_fields_are_checked_and_named(field, value):
    with pytest.raises(CganError, match=f"^{field} must be") as e:
        job(inputs=[FrameListSource(frames())], **{field: value})
    assert "\n" not in str(e.value)


def test_fields_set_after_the_job_was_made_are_checked_by_run_video(tmp_path):
    j = job(inputs=[FrameListSource(frames())], output=str(tmp_path / "o.mp4"))
    j.max_frames = "2"
    with pytest.raises(CganError, match="^max_frames must be an integer >= 1"):
        run_video(j, translator=Invert())
    j.max_frames, j.inputs = 2, "nope.mp4"
    with pytest.raises(CganError, match="input file not found: nope.mp4"):  # was "d", the first character
        run_video(j, translator=Invert())
    assert not (tmp_path / "o.mp4").exists()
    j = job(inputs=[FrameListSource(frames())], output=str(tmp_path / "o.mp4"), max_frames=np.int64(2))
    assert run_video(j, translator=Invert()).frames == 2


class Returns:
    """A fake translator whose translate_batch returns make(frames)."""

    def __init__(self, make):
        self.make = make

    def translate_batch(self, frames):
        return self.make(frames)


@pytest.mark.parametrize("translator, needle", [
    (Returns(lambda fs: []), "returned 0 frames for 1: it must return one frame per input frame"),
    (Returns(lambda fs: [np.zeros((10, 10), np.float32) for _ in fs]), "a float32 frame of shape (10, 10)"),
    (Returns(lambda fs: [f.astype(np.float32) / 255 for f in fs]), "a float32 frame of shape (48, 64, 3)"),
    (Returns(lambda fs: [f[:24] for f in fs]), "a uint8 frame of shape (24, 64, 3)"),
    (Returns(lambda fs: [None for _ in fs]), "returned NoneType None"),
    (Returns(lambda fs: None), "must return a list of frames, got NoneType"),
    (object(), "translator must have a translate_batch(frames) method"),
])
def test_translator_outputs_are_checked(tmp_path, translator, needle):
    out = tmp_path / "o.mp4"
    with pytest.raises(CganError) as e:
        run_video(job(inputs=[FrameListSource(frames())], output=str(out)), translator=translator)
    assert needle in str(e.value) and "\n" not in str(e.value)
    assert sorted(os.listdir(tmp_path)) == [], "an output or a partial file was left behind"


def test_a_translator_may_return_a_stacked_array(tmp_path):
    s = run_video(job(inputs=[FrameListSource(frames())]), translator=Returns(lambda fs: 255 - np.stack(fs)))
    assert s.frames == 3


# ---- 3. ~ in paths --------------------------------------------------------------------------------------------
def test_tilde_in_output_and_input_is_the_home_folder(tmp_path, monkeypatch):
    home, cwd = tmp_path / "home", tmp_path / "cwd"
    home.mkdir()
    cwd.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(cwd)
    make_clip(home / "in.mp4", 3)
    s = run_video(job(inputs=["~/in.mp4"], output="~/sub/out.mp4"), translator=Invert())
    assert s.outputs == [str(home / "sub" / "out.mp4")] and probe(home / "sub" / "out.mp4")[0] == 3
    assert list(cwd.iterdir()) == [], "a folder named ~ was made in the current folder"
    assert parse_input("~/in.mp4").target == str(home / "in.mp4")


# ---- 4. signals and OpenCV logging: the app's settings are left alone -----------------------------------------
def test_an_apps_own_sigint_handler_stays_in_force_during_the_run():
    def app_handler(signum, frame):
        pass

    seen = []
    old = signal.signal(signal.SIGINT, app_handler)
    try:
        on_frame = lambda *a: seen.append(signal.getsignal(signal.SIGINT))  # noqa: E731
        run_video(VideoJob(inputs=[FrameListSource(frames(2))], display=False, progress=False, on_frame=on_frame),
                  translator=Invert())
        assert seen and all(h is app_handler for h in seen)  # the default (handle_signals=None) leaves it
        seen.clear()
        run_video(job(inputs=[FrameListSource(frames(2))], on_frame=on_frame, handle_signals=True),
                  translator=Invert())
        assert seen and all(h is not app_handler for h in seen)  # True takes over (the CLI)
        assert signal.getsignal(signal.SIGINT) is app_handler  # and gives it back
    finally:
        signal.signal(signal.SIGINT, old)


def test_default_handlers_are_still_taken_over_by_default():
    """A plain script (Python's default SIGINT handler) still gets a clean 'interrupted' end by default."""
    seen = []
    old = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        run_video(VideoJob(inputs=[FrameListSource(frames(2))], display=False, progress=False,
                           on_frame=lambda *a: seen.append(signal.getsignal(signal.SIGINT))), translator=Invert())
    finally:
        signal.signal(signal.SIGINT, old)
    assert seen and all(callable(h) and h is not signal.default_int_handler for h in seen)


@pytest.mark.parametrize("handle", [True, None])
def test_a_handler_set_outside_python_is_left_to_itself(monkeypatch, caplog, handle):
    """A C program embedding Python (or a library that set it as it loaded) has a SIGTERM handler Python reports
    as None and cannot put back: the run took it over, then restoring it raised TypeError at the end, the
    finished output was lost and SIGTERM stayed swallowed for good. Now it is left alone (said, with True)."""
    import logging

    from cgan.runtime import video

    real_get, real_set, touched = signal.getsignal, signal.signal, []
    monkeypatch.setattr(video.signal, "getsignal", lambda s: None if s == signal.SIGTERM else real_get(s))
    monkeypatch.setattr(video.signal, "signal", lambda s, h: touched.append(s) or real_set(s, h))
    with caplog.at_level(logging.DEBUG):
        s = run_video(job(inputs=[FrameListSource(frames(2))], handle_signals=handle), translator=Invert())
    assert s.frames == 2 and signal.SIGTERM not in touched
    said = [r for r in caplog.records if "set outside Python" in r.getMessage()]
    assert len(said) == 1 and said[0].levelno == (logging.WARNING if handle else logging.DEBUG)


def test_run_video_from_a_worker_thread_leaves_signals_alone():
    before = signal.getsignal(signal.SIGINT)
    result = {}

    def work():
        try:
            result["frames"] = run_video(job(inputs=[FrameListSource(frames(2))], handle_signals=True),
                                         translator=Invert()).frames
        except BaseException as e:  # noqa: BLE001 - reported below
            result["error"] = repr(e)

    t = threading.Thread(target=work)
    t.start()
    t.join(60)
    assert result == {"frames": 2} and signal.getsignal(signal.SIGINT) is before


def test_the_cli_still_handles_signals(monkeypatch):
    from cgan._cli import run
    from cgan.runtime import cli as video_cli
    from cgan.runtime.video import VideoSummary

    jobs = []
    monkeypatch.setattr(video_cli, "run_video", lambda j: jobs.append(j) or VideoSummary())
    assert run(video_cli.cli, ["--input", "demo", "--no-display"]) == 0
    assert jobs[0].handle_signals is True


def test_the_library_leaves_opencv_logging_alone(monkeypatch):
    monkeypatch.delenv("OPENCV_FFMPEG_LOGLEVEL", raising=False)
    level = cv2.utils.logging.getLogLevel()
    run_video(job(inputs=[FrameListSource(frames(2))]), translator=Invert())
    assert cv2.utils.logging.getLogLevel() == level and "OPENCV_FFMPEG_LOGLEVEL" not in os.environ


def test_a_single_path_object_is_one_input(tmp_path):
    clip = make_clip(tmp_path / "in.mp4", 2)
    assert run_video(job(inputs=Path(clip)), translator=Invert()).frames == 2


def test_an_apps_own_ctrl_c_reaches_it_with_the_runs_summary(tmp_path):
    """handle_signals=False: Python's own SIGINT handler raises KeyboardInterrupt in the run; the app gets it with
    what was done as its `summary`, and the frames written so far are a playable file."""
    clip = make_clip(tmp_path / "in.mp4", 400)

    out = tmp_path / "o.mp4"
    timer = threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGINT))
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt) as e:
            run_video(job(inputs=[str(clip)], output=str(out), handle_signals=False), translator=Invert(delay=0.02))
    finally:
        timer.cancel()
    summary = e.value.summary
    assert summary.ended == "interrupted" and summary.outputs == [str(out)]
    assert 0 < summary.frames < 400 and probe(out)[0] == summary.frames
