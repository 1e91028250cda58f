"""A Python source's `fps` is whatever the caller set: inf made cv2.VideoWriter spin forever (SIGTERM could not
end it), 1e6 and 0.001 failed with advice about the codec. An unusable frame rate is now "unknown", and the
output is written at the default rate, as for a stream that reports none."""
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
