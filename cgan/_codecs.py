"""Which photo formats are read here: the list every OpenCV build decodes (IMAGE_EXTS) and those only some builds
have a codec for (AVIF: the OpenCV 5 wheels have libavif), checked once a process by encoding and decoding a
tiny image. The trainer, cgan-eval and cgan-video's photo mode read the same formats through `reads`. No torch."""
from __future__ import annotations

import functools
import os

from cgan._files import IMAGE_EXTS

#: formats read (and written) only where this OpenCV has their codec
OPTIONAL_EXTS = (".avif",)


@functools.cache
def codec_works(ext: str) -> bool:
    """Whether this OpenCV encodes and decodes `ext` (a tiny image through both, once a process)."""
    import cv2
    import numpy as np

    try:
        ok, buf = cv2.imencode(ext, np.full((8, 8, 3), 128, np.uint8))
        return bool(ok) and cv2.imdecode(buf, cv2.IMREAD_COLOR) is not None
    except cv2.error:
        return False


def reads(ext: str) -> bool:
    """Whether photos with extension `ext` (".jpg", ".AVIF", ...) are read here."""
    ext = ext.lower()
    return ext in IMAGE_EXTS or (ext in OPTIONAL_EXTS and codec_works(ext))


def quiet_opencv(level: str = "ERROR") -> None:
    """Lower OpenCV's and FFmpeg's logging (they print WARN lines on stderr for every failed open).

    FFmpeg reads OPENCV_FFMPEG_LOGLEVEL when OpenCV first uses it, so call this before opening anything.
    """
    import cv2

    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", {"SILENT": "-8", "ERROR": "16", "WARNING": "24"}[level])
    try:
        levels = {"SILENT": cv2.utils.logging.LOG_LEVEL_SILENT, "ERROR": cv2.utils.logging.LOG_LEVEL_ERROR,
                  "WARNING": cv2.utils.logging.LOG_LEVEL_WARNING}
        cv2.utils.logging.setLogLevel(levels[level])
    except AttributeError:  # very old OpenCV builds
        pass
