"""What a Python source gives is whatever its author set. Its `fps`: inf made cv2.VideoWriter spin forever
(SIGTERM could not end it), 1e6 and 0.001 failed with advice about the codec; an unusable rate is now "unknown"
and the output is written at the default rate, as for a stream that reports none. Its frames: gray, BGRA, uint16
and float frames (which the translator takes) broke the side-by-side view and the writer; they become BGR uint8
as the pipeline reads them."""
from __future__ import annotations

import math

import pytest

from _helpers_video import Invert, pattern, probe
from cgan.runtime.sources import MAX_FPS, MIN_FPS, FrameListSource, known_fps
from cgan.runtime.video import DEFAULT_FPS, VideoJob, run_video


@pytest.mark.parametrize("fps,want", [(30, 30.0), (0.5, 0.5), (MIN_FPS, MIN_FPS), (MAX_FPS, MAX_FPS),
                                      (math.inf, 0.0), (-math.inf, 0.0), (math.nan, 0.0), (1e6, 0.0),
                                      (0.001, 0.0), (0, 0.0), (-5, 0.0), (None, 0.0), ("x", 0.0), (90000.0, 0.0)])
def test_known_fps(fps, want):
    assert known_fps(fps) == want


@pytest.mark.timeout(120)
@pytest.mark.parametrize("fps", [math.inf, 1e6, 0.001, math.nan])
@pytest.mark.parametrize("ext", [".mp4", ".avi"])
def test_a_source_with_an_unusable_fps_is_written_at_the_default_rate(tmp_path, fps, ext):
    out = tmp_path / f"out{ext}"
    src = FrameListSource([pattern(i) for i in range(6)], fps=fps)
    s = run_video(VideoJob(inputs=[src], output=str(out), display=False, progress=False, handle_signals=False),
                  translator=Invert())
    assert s.frames == 6
    frames, got_fps, size = probe(out)
    assert frames == 6 and size == (64, 48) and abs(got_fps - DEFAULT_FPS) < 0.01


def test_a_slow_timelapse_rate_is_kept(tmp_path):
    out = tmp_path / "out.mp4"
    src = FrameListSource([pattern(i) for i in range(3)], fps=0.5)
    run_video(VideoJob(inputs=[src], output=str(out), display=False, progress=False, handle_signals=False),
              translator=Invert())
    assert abs(probe(out)[1] - 0.5) < 0.01


@pytest.mark.parametrize("kind", ["gray", "bgra", "float", "uint16"])
@pytest.mark.parametrize("side_by_side", [False, True])
def test_a_python_source_may_give_any_frame_the_translator_takes(tmp_path, kind, side_by_side):
    """Gray frames with side_by_side were a ValueError from np.hstack, float frames a cv2.error from the writer."""
    import numpy as np

    base = [pattern(i) for i in range(3)]
    frames = {"gray": [f[..., 1] for f in base], "bgra": [np.dstack([f, np.full(f.shape[:2], 255, np.uint8)])
                                                           for f in base],
              "float": [f / 255.0 for f in base], "uint16": [f.astype(np.uint16) * 257 for f in base]}[kind]
    out = tmp_path / "out.avi"
    s = run_video(VideoJob(inputs=[FrameListSource(frames, fps=10)], output=str(out), display=False,
                           progress=False, handle_signals=False, side_by_side=side_by_side), translator=Invert())
    assert s.frames == 3
    n, _, size = probe(out)
    assert n == 3 and size == ((128 if side_by_side else 64), 48)
