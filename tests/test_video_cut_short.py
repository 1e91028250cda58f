"""A video file cut short (a download that stopped, a copy to a full disk) is said to be (`cut_short`, the
summary's CUT SHORT, exit 1) however it is read: by PyAV (10-bit video), as an AVI (whose length FFmpeg estimates
from the data there), and from a --start that seeks. Each of these ended with exit 0 and no word."""
from __future__ import annotations

from pathlib import Path

import pytest

from cgan.runtime import pyav
from cgan.runtime.sources import open_source, parse_input
from cgan.runtime.video import VideoJob, run_video

from _helpers_video import Invert, make_clip, mux_frames, pattern

av = pytest.importorskip("av")


def cut(path: Path, share: float) -> Path:
    """The first `share` of `path`'s bytes, as a download cut short leaves them."""
    data = path.read_bytes()
    out = path.with_name(f"cut_{path.name}")
    out.write_bytes(data[: int(len(data) * share)])
    return out


def read_whole(path: Path) -> tuple[int, object]:
    src = open_source(parse_input(str(path)))
    try:
        n = 0
        while src.read() is not None:
            n += 1
        return n, src
    finally:
        src.close()


def ten_bit_mp4(path: Path, frames: int = 240) -> Path:
    """H.264 High 10, index first (cameras and drones write such files; PyAV reads them, not OpenCV)."""
    with av.open(str(path), "w", options={"movflags": "+faststart"}) as out:
        s = out.add_stream("libx264", rate=12)
        s.width, s.height, s.pix_fmt = 64, 48, "yuv420p10le"
        mux_frames(out, s, (av.VideoFrame.from_ndarray(pattern(i), format="bgr24").reformat(format="yuv420p10le")
                            for i in range(frames)))
    return path


def test_a_ten_bit_file_cut_short_is_said_to_be(tmp_path):
    whole = ten_bit_mp4(tmp_path / "ten.mp4")
    n, src = read_whole(whole)
    assert isinstance(src, pyav.FileSource) and n == 240 and src.cut_short is None
    n, src = read_whole(cut(whole, 0.6))
    assert isinstance(src, pyav.FileSource) and 0 < n < 200
    assert src.cut_short == f"decoding stopped after {n} of 240 frames (a damaged file?)"


def test_an_avi_cut_at_half_is_said_to_be(tmp_path):
    """FFmpeg took the half's length for the file's (5 s of 10); the AVI header's 120 frames are the file's."""
    whole = make_clip(tmp_path / "c.avi", 120, fps=12.0, fourcc="MJPG")
    n, src = read_whole(whole)
    assert n == 120 and src.cut_short is None
    n, src = read_whole(cut(whole, 0.5))
    assert 0 < n < 100 and src.cut_short == f"decoding stopped after {n} of 120 frames (a damaged file?)"


def test_a_file_cut_short_is_said_to_be_after_a_start_that_seeks(tmp_path):
    whole = tmp_path / "fast.mp4"
    w = pyav.H264Writer(str(whole), 12.0, (64, 48))
    for i in range(240):
        w.write(pattern(i), i / 12)
    w.release()
    assert w.error is None
    damaged = cut(whole, 0.6)

    def run(path: Path) -> dict:
        s = run_video(VideoJob(inputs=[str(path)], output=str(tmp_path / "out.mp4"), start=3.0, display=False,
                               progress=False, handle_signals=False), translator=Invert())
        return s.streams[0]

    assert run(whole)["cut_short"] is None
    stream = run(damaged)
    assert stream["cut_short"].startswith("decoding stopped at ") and stream["cut_short"].endswith(
        " of 20.00 s (a damaged file?)"), stream
    assert 0 < stream["read"] < 17 * 12

