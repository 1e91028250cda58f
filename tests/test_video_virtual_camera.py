"""--virtual-camera: the translation sent to a virtual webcam through pyvirtualcam (here a fake module: no
v4l2loopback device on a CI machine), opened at the first frame's size, paced for files; a missing library or
driver is one line, before or at the first frame, and leaves no output."""
from __future__ import annotations

import sys
import types

import numpy as np
import pytest

from _helpers_video import Invert, make_clip, pattern
from cgan._cli import run
from cgan.errors import CganError
from cgan.runtime.cli import cli
from cgan.runtime.sources import FrameListSource
from cgan.runtime.video import VideoJob, run_video


class FakeCams:
    """A stand-in pyvirtualcam module recording the cameras made and the frames they got."""

    def __init__(self, refuse: str | None = None, lost_at: int | None = None):
        self.made: list = []
        fake = self
        self.module = types.ModuleType("pyvirtualcam")
        self.module.PixelFormat = types.SimpleNamespace(BGR="BGR", RGB="RGB")

        class Camera:
            def __init__(self, width, height, fps, *, fmt="RGB", device=None, **kw):
                if refuse:
                    raise RuntimeError(refuse)
                self.width, self.height, self.fps, self.fmt = width, height, fps, fmt
                self.device = device or "/dev/video9"
                self.frames: list[np.ndarray] = []
                self.paced = 0
                self.closed = False
                fake.made.append(self)

            def send(self, frame):
                assert frame.shape == (self.height, self.width, 3) and frame.flags.c_contiguous
                if lost_at is not None and len(self.frames) == lost_at:
                    raise RuntimeError("device went away\nmore detail")
                self.frames.append(frame.copy())

            def sleep_until_next_frame(self):
                self.paced += 1

            def close(self):
                self.closed = True

        self.module.Camera = Camera


def job(**kw) -> VideoJob:
    return VideoJob(display=False, progress=False, handle_signals=False, **kw)


def test_frames_go_to_the_virtual_camera_at_their_size_paced_for_a_file(tmp_path, monkeypatch):
    cams = FakeCams()
    monkeypatch.setitem(sys.modules, "pyvirtualcam", cams.module)
    clip = make_clip(tmp_path / "in.mp4", 5, (65, 47), fps=12)  # odd sides: sent at 64x46
    s = run_video(job(inputs=[str(clip)], virtual_camera="auto"), translator=Invert())
    assert s.frames == 5 and len(cams.made) == 1
    cam = cams.made[0]
    assert (cam.width, cam.height, cam.fps, cam.fmt, cam.device) == (64, 46, 12.0, "BGR", "/dev/video9")
    assert len(cam.frames) == 5 and cam.paced == 5 and cam.closed
    assert np.abs(cam.frames[0].astype(int) - (255 - pattern(0, 65, 47)[:46, :64].astype(int))).mean() < 12


def test_a_live_source_is_not_paced_and_the_device_is_passed(tmp_path, monkeypatch):
    cams = FakeCams()
    monkeypatch.setitem(sys.modules, "pyvirtualcam", cams.module)
    live = FrameListSource([pattern(i) for i in range(4)], fps=200, live=True, name="camera")
    run_video(job(inputs=[live], virtual_camera="/dev/video10", side_by_side=True), translator=Invert())
    cam = cams.made[0]
    assert cam.device == "/dev/video10" and cam.paced == 0 and (cam.width, cam.height) == (128, 48)
    assert 1 <= len(cam.frames) <= 4 and cam.closed


def test_no_pyvirtualcam_no_driver_and_several_inputs_are_one_line(tmp_path, monkeypatch, capsys):
    clip = make_clip(tmp_path / "in.mp4", 3)
    monkeypatch.setitem(sys.modules, "pyvirtualcam", None)  # import fails
    with pytest.raises(CganError, match="needs pyvirtualcam"):
        run_video(job(inputs=[str(clip)], virtual_camera="auto"), translator=Invert())
    monkeypatch.setitem(sys.modules, "pyvirtualcam", FakeCams(refuse="'v4l2loopback' backend: No v4l2 loopback "
                                                                     "device found\nmore detail").module)
    out = tmp_path / "o.mp4"
    code = run(cli, ["--input", str(clip), "--output", str(out), "--virtual-camera", "--no-display",
                     "--no-progress", "--backend", "ort-cpu"])
    err = capsys.readouterr().err
    assert code == 2 and "--virtual-camera: 'v4l2loopback' backend: No v4l2 loopback device found (it needs" in err
    assert "more detail" not in err and "Traceback" not in err
    assert not out.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    with pytest.raises(CganError, match="takes one --input"):
        run_video(job(inputs=[str(clip), str(clip)], virtual_camera="auto"), translator=Invert())
    with pytest.raises(CganError, match=r"\(virtual_camera\) takes no value, 'auto' or a device"):
        VideoJob(inputs=["demo"], virtual_camera=True)
    code = run(cli, ["--input", str(clip), "--virtual-camera=", "--no-display", "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and "--virtual-camera (virtual_camera) takes no value, 'auto' or a device such as" in err, err


def test_a_virtual_camera_alone_is_a_result(tmp_path, monkeypatch):
    """No window and no --output used to be refused as a run with no result; a virtual camera is one."""
    cams = FakeCams()
    monkeypatch.setitem(sys.modules, "pyvirtualcam", cams.module)
    clip = make_clip(tmp_path / "in.mp4", 2)
    s = run_video(VideoJob(inputs=[str(clip)], progress=False, handle_signals=False, virtual_camera="auto"),
                  translator=Invert())
    assert s.frames == 2 and len(cams.made[0].frames) == 2


def test_a_camera_lost_mid_run_is_one_line_and_the_output_so_far_is_kept(tmp_path, monkeypatch, capsys):
    """pyvirtualcam raises from send() when the device goes away (v4l2loopback unloaded, OBS's camera stopped):
    the run stops with one line naming how far it got, and the frames written to --output stay a playable file
    (it had ended in a traceback and the recording was removed)."""
    cams = FakeCams(lost_at=3)
    monkeypatch.setitem(sys.modules, "pyvirtualcam", cams.module)
    clip = make_clip(tmp_path / "in.mp4", 12, fps=200)
    out = tmp_path / "o.mp4"
    code = run(cli, ["--input", str(clip), "--output", str(out), "--virtual-camera", "--no-display",
                     "--no-progress", "--backend", "ort-cpu"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err and "more detail" not in err, err
    assert "--virtual-camera stopped after 3 frames: device went away; the frames before it are kept in" in err
    assert out.exists() and cams.made[0].closed
    import cv2
    cap = cv2.VideoCapture(str(out))
    n = 0
    while cap.read()[0]:
        n += 1
    cap.release()
    assert 3 <= n < 12, n
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "temporary file left behind"
