"""Cameras are asked for a mode: --capture, or the --size when it names one (OpenCV opens cameras at 640x480,
and a 720p run scaled that up); MJPG first, as USB cameras need for large sizes at full rate; the mode the
camera gave is said; files and streams refuse --capture."""
from __future__ import annotations

import logging

import numpy as np
import pytest

from _helpers_video import Invert, make_clip
from cgan._cli import run
from cgan.errors import CganError
from cgan.runtime import sources
from cgan.runtime.cli import cli
from cgan.runtime.sources import parse_capture
from cgan.runtime.video import VideoJob, run_video

cv2 = sources.cv2


class Webcam:
    """A cv2.VideoCapture stand-in for a camera with a fixed list of modes: it records what it is asked and, like
    V4L2, takes the nearest mode it has. Delivers `frames` frames, then ends."""

    MODES = [(640, 480, 30.0), (1280, 720, 30.0), (1920, 1080, 30.0), (1920, 1080, 60.0)]

    def __init__(self, frames: int = 3):
        self.calls: list[tuple[int, float]] = []
        self.frames = frames
        cam = self

        class Capture:
            def __init__(self, *args, **kwargs):
                self.asked = {cv2.CAP_PROP_FRAME_WIDTH: 640, cv2.CAP_PROP_FRAME_HEIGHT: 480, cv2.CAP_PROP_FPS: 30.0}
                self.left = cam.frames

            def isOpened(self):
                return True

            def set(self, prop, value):
                cam.calls.append((prop, value))
                if prop in self.asked:
                    self.asked[prop] = value
                return True

            @property
            def mode(self):
                """The nearest mode it has to the size asked, then to the rate asked."""
                w, h = self.asked[cv2.CAP_PROP_FRAME_WIDTH], self.asked[cv2.CAP_PROP_FRAME_HEIGHT]
                fps = self.asked[cv2.CAP_PROP_FPS]
                return min(cam.MODES, key=lambda m: (abs(m[0] * m[1] - w * h), abs(m[2] - fps)))

            def get(self, prop):
                return {cv2.CAP_PROP_FPS: self.mode[2], cv2.CAP_PROP_FRAME_WIDTH: self.mode[0],
                        cv2.CAP_PROP_FRAME_HEIGHT: self.mode[1]}.get(prop, 0.0)

            def read(self):
                if self.left <= 0:
                    return False, None
                self.left -= 1
                return True, np.full((int(self.mode[1]), int(self.mode[0]), 3), 90, np.uint8)

            def release(self):
                pass

        self.Capture = Capture


def job(**kw) -> VideoJob:
    return VideoJob(display=False, progress=False, handle_signals=False, reconnects=0, **kw)


@pytest.fixture
def webcam(monkeypatch):
    cam = Webcam()
    monkeypatch.setattr(sources.cv2, "VideoCapture", cam.Capture)
    return cam


def asked(cam: Webcam) -> list[tuple[str, float]]:
    names = {cv2.CAP_PROP_FOURCC: "fourcc", cv2.CAP_PROP_FRAME_WIDTH: "width", cv2.CAP_PROP_FRAME_HEIGHT: "height",
             cv2.CAP_PROP_FPS: "fps"}
    return [(names[p], v) for p, v in cam.calls]


def test_capture_asks_mjpg_then_the_mode_and_says_what_it_got(webcam, tmp_path, caplog):
    caplog.set_level(logging.INFO)
    s = run_video(job(inputs=[0], output=str(tmp_path / "o.mp4"), capture="1920x1080@60"), translator=Invert())
    assert asked(webcam) == [("fourcc", cv2.VideoWriter_fourcc(*"MJPG")), ("width", 1920), ("height", 1080),
                             ("fps", 60.0)]
    assert s.streams[0]["size"] == [1920, 1080]
    said = [r.getMessage() for r in caplog.records if r.getMessage().startswith("camera 0:")]
    assert said == ["camera 0: 1920x1080 at 60 fps"]


def test_the_nearest_mode_is_said_when_the_camera_has_not_the_one_asked(webcam, tmp_path, caplog):
    caplog.set_level(logging.INFO)
    run_video(job(inputs=[0], output=str(tmp_path / "o.mp4"), capture="1280x720@60"), translator=Invert())
    said = [r.getMessage() for r in caplog.records if r.getMessage().startswith("camera 0:")]
    assert said == ["camera 0: 1280x720 at 30 fps (asked 1280x720@60: the nearest mode it has)"]


@pytest.mark.parametrize("size, mode", [("720p", (1280, 720)), ("1080p", (1920, 1080)), ("800x600", (800, 600)),
                                        ("native", None), ("512", None), ("max:1024", None)])
def test_a_named_size_is_asked_of_the_camera(webcam, tmp_path, size, mode):
    """--size 720p used to scale the camera's default 640x480 up; a size that is no mode (native, a long
    side) leaves the camera as it is."""
    run_video(job(inputs=[0], output=str(tmp_path / "o.mp4"), size=size), translator=Invert())
    if mode is None:
        assert webcam.calls == []
    else:
        assert asked(webcam)[1:] == [("width", mode[0]), ("height", mode[1])]


def test_default_leaves_the_camera_alone(webcam, tmp_path):
    run_video(job(inputs=[0], output=str(tmp_path / "o.mp4"), size="720p", capture="default"), translator=Invert())
    assert webcam.calls == []


def test_capture_is_refused_for_files_and_checked(tmp_path, capsys):
    clip = make_clip(tmp_path / "in.mp4", 3)
    with pytest.raises(CganError, match="--capture applies to cameras"):
        run_video(job(inputs=[str(clip)], output=str(tmp_path / "o.mp4"), capture="720p"), translator=Invert())
    for bad in ("1280", "0x0", "1280x720@0", "1280x720@fast", "99999x720", "720p@500", ""):
        with pytest.raises(CganError, match="bad --capture"):
            VideoJob(inputs=[0], capture=bad)
    with pytest.raises(CganError, match="capture must be a str"):
        VideoJob(inputs=[0], capture=720)
    assert parse_capture("1080P@59.94") == (1920, 1080, 59.94) and parse_capture("default") is None
    code = run(cli, ["--input", str(clip), "--output", str(tmp_path / "o.mp4"), "--capture", "720p", "--no-display"])
    err = capsys.readouterr().err
    assert code == 2 and "--capture applies to cameras" in err and "Traceback" not in err
