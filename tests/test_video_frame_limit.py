"""cgan-video refuses frames over the frame limit in its own words: a 4200x4200 video said "use max_side= …, or
raise max_pixels=" (Python arguments cgan-video does not have), and --size 4095x4097 passed its check (16.78 MP)
but is 4096x4100 once padded for the network (16.79 MP), so it failed only after the model and input were open,
naming a size nobody typed."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from _helpers_video import Invert
from cgan._cli import run
from cgan.errors import CganError
from cgan.runtime.frames import DEFAULT_MAX_PIXELS
from cgan.runtime.sources import FrameListSource
from cgan.runtime.video import VideoJob, parse_size, run_video


class Limited(Invert):
    def __init__(self, max_pixels: int = DEFAULT_MAX_PIXELS):
        super().__init__()
        self.max_pixels = max_pixels


def _job(src, out, size="native"):
    return VideoJob(inputs=[src], output=str(out), display=False, progress=False, handle_signals=False, size=size)


def test_size_is_checked_as_the_network_sees_it():
    with pytest.raises(CganError, match="padded to multiples of 4"):
        parse_size("4095x4097")
    assert parse_size("4096x4096") == ("exact", (4096, 4096))


def test_native_frames_over_the_limit_name_the_cli_option(tmp_path):
    big = np.zeros((4100, 4100, 3), np.uint8)
    with pytest.raises(CganError, match="choose a smaller --size") as e:
        run_video(_job(FrameListSource([big]), tmp_path / "o.mp4"), translator=Limited())
    assert "max_side" not in str(e.value) and "4100x4100" in str(e.value)
    assert not (tmp_path / "o.mp4").exists()


def test_a_translator_with_a_raised_limit_takes_them(tmp_path):
    big = np.zeros((4100, 4100, 3), np.uint8)
    s = run_video(_job(FrameListSource([big]), tmp_path / "o.avi"), translator=Limited(5000 * 5000))
    assert s.frames == 1
    # a translator that says nothing about its limit is not second-guessed for native frames
    assert run_video(_job(FrameListSource([big]), tmp_path / "p.avi"), translator=Invert()).frames == 1


def test_a_size_that_makes_frames_too_large(tmp_path):
    small = np.zeros((48, 64, 3), np.uint8)
    with pytest.raises(CganError, match=r"--size \(VideoJob.size\) makes the 64x48 frames of frames 16000x12000"):
        run_video(_job(FrameListSource([small]), tmp_path / "o.mp4", size="16000"), translator=Limited())


def test_cgan_video_on_a_4200_square_video_is_one_line(tmp_path, capsys):
    from cgan.runtime.cli import cli

    clip = tmp_path / "big.avi"
    w = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"MJPG"), 5, (4200, 4200))
    assert w.isOpened()
    w.write(np.full((4200, 4200, 3), 90, np.uint8))
    w.release()
    code = run(cli, ["--input", str(clip), "--output", str(tmp_path / "o.mp4"), "--no-display", "--backend", "ort-cpu"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert "--size" in last and "max_side" not in last and "4200x4200" in last
    assert not (tmp_path / "o.mp4").exists()
