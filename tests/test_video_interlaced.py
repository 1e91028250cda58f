"""Interlaced video (camcorder AVCHD .mts, broadcast .ts, DVD MPEG-2): OpenCV 5.0's FFmpeg reader cannot convert
its frames and still answers each read with a buffer of noise, with no error. Such files are read with PyAV and
deinterlaced (FFmpeg's bwdif), every frame kept at its time."""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from cgan.runtime import pyav
from cgan.runtime.video import VideoJob, run_video

from _helpers_video import Invert, mux_frames

av = pytest.importorskip("av")

GREY, FLASH = 120, 12  # a flat grey clip with one white frame


def interlaced_clip(path: Path, codec: str, options: dict, frames: int = 25) -> Path:
    with av.open(str(path), "w") as out:
        s = out.add_stream(codec, rate=25, options=options)
        s.width, s.height, s.pix_fmt = 96, 64, "yuv420p"
        mux_frames(out, s, (av.VideoFrame.from_ndarray(np.full((64, 96, 3), 255 if i == FLASH else GREY, np.uint8),
                                                        format="bgr24").reformat(format="yuv420p")
                            for i in range(frames)))
    return path


CLIPS = [("cam.mts", "libx264", {"x264-params": "interlaced=1:tff=1"}),
         ("dvd.ts", "mpeg2video", {"flags": "+ildct+ilme"})]


def means(path: Path) -> list[float]:
    with av.open(str(path)) as c:
        return [float(f.to_ndarray(format="bgr24").mean()) for f in c.decode(video=0)]


@pytest.mark.parametrize("name, codec, options", CLIPS)
def test_interlaced_files_are_read_whole_and_deinterlaced(tmp_path, caplog, name, codec, options):
    try:
        src = interlaced_clip(tmp_path / name, codec, options)
    except av.FFmpegError:
        pytest.skip(f"this PyAV has no {codec} encoder")
    assert pyav.probe(src).interlaced is not None
    out = tmp_path / "out.mkv"
    with caplog.at_level(logging.INFO):
        s = run_video(VideoJob(inputs=[str(src)], output=str(out), display=False, progress=False,
                               handle_signals=False), translator=Invert())
    assert s.frames == 25 and any("deinterlaced" in r.getMessage() for r in caplog.records)
    got = means(out)
    assert len(got) == 25
    # Invert: grey 120 -> 135 and the flash -> 0, each in its place (noise gave means of 56-110 and lost the flash)
    assert all(abs(m - (255 - GREY)) < 4 for i, m in enumerate(got) if i != FLASH), got
    assert got[FLASH] < 10, got


def test_progressive_files_are_not_taken_for_interlaced(tmp_path):
    src = interlaced_clip(tmp_path / "p.mp4", "libx264", {})
    assert pyav.probe(src).interlaced is None
