"""Which photo formats are read here: the list every OpenCV build decodes (IMAGE_EXTS) and those only some builds
have a codec for (AVIF: the OpenCV 5 wheels have libavif), checked once a process by encoding and decoding a
tiny image. The trainer, cgan-eval and cgan-video's photo mode read the same formats through `reads`. No torch."""
from __future__ import annotations

import functools

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
