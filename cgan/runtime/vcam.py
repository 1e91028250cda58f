"""`--virtual-camera`: the translated frames as a webcam other programs (Zoom, Meet, OBS, a browser) can pick,
through pyvirtualcam: v4l2loopback on Linux (`sudo modprobe v4l2loopback`), OBS's virtual camera on Windows and
macOS. Optional: the vcam extra (pyvirtualcam). No torch."""
from __future__ import annotations

import logging
from typing import Any

import numpy as np

from cgan._optional import optional_module, pip_extra
from cgan.errors import CganError, first_line
from cgan.runtime.frames import even_size, fit_to

log = logging.getLogger(__name__)

DRIVER = ("a virtual camera driver: v4l2loopback on Linux (sudo modprobe v4l2loopback), OBS Studio's virtual "
          "camera on Windows and macOS")


def _module() -> Any:
    return optional_module("pyvirtualcam")


def check_available() -> None:
    """A one-line CganError, before anything is opened, when pyvirtualcam is not installed."""
    if _module() is None:
        raise CganError(f"--virtual-camera needs pyvirtualcam ({pip_extra('vcam')}) and {DRIVER}")


class VirtualCamera:
    """A virtual webcam opened on the first frame at that frame's size (even sides, as the drivers' YUV formats
    need; later frames of another size are resized to it). Frames from files are paced at `fps`, so the
    camera plays them in real time; live frames go out as they come."""

    def __init__(self, device: str | None, fps: float):
        self.device = None if device in (None, "auto") else device
        self.fps = fps
        self.cam: Any = None
        self.size: tuple[int, int] | None = None
        self.sent = 0

    def send(self, frame: np.ndarray, live: bool) -> None:
        if self.cam is None:
            self._open(frame)
        fitted = fit_to(frame, self.size)  # (outside the try: a wrong frame is a bug, not a camera gone)
        try:
            self.cam.send(fitted)
            self.sent += 1
            if not live:
                self.cam.sleep_until_next_frame()
        except (RuntimeError, OSError) as e:  # the device went away (v4l2loopback unloaded, OBS's camera stopped)
            log.debug("virtual camera send failed", exc_info=True)
            raise CganError(f"--virtual-camera stopped after {self.sent} frames: {first_line(e)}") from None

    def _open(self, frame: np.ndarray) -> None:
        pyvirtualcam = _module()
        w, h = even_size(frame.shape[1], frame.shape[0])
        try:
            self.cam = pyvirtualcam.Camera(width=w, height=h, fps=self.fps, fmt=pyvirtualcam.PixelFormat.BGR,
                                           device=self.device)
        except Exception as e:  # noqa: BLE001 - pyvirtualcam raises RuntimeError/ValueError with the driver's words
            raise CganError(f"--virtual-camera: {first_line(e)} (it needs {DRIVER})") from None
        self.size = (w, h)
        log.info("virtual camera %s: %dx%d at %g fps", getattr(self.cam, "device", self.device or ""), w, h,
                 self.fps)

    def close(self) -> None:
        if self.cam is not None:
            try:
                self.cam.close()
            finally:
                self.cam = None
