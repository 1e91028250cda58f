"""Photo mode and multi-frame images: an animated PNG/WebP/AVIF or a TIFF of several pages is translated as its
first frame or page, and a warning says so (the output silently held one still frame)."""
from __future__ import annotations

import logging

import cv2
import numpy as np
import pytest

from cgan._images import frames_in
from cgan.runtime.photos import PhotoJob, run_photos

from _helpers_video import Invert

QUIET = dict(progress=False, handle_signals=False)
FRAMES = [np.full((16, 24, 3), 40 * i + 20, np.uint8) for i in range(3)]


def _animated(path, frames=FRAMES):
    anim = cv2.Animation()
    anim.frames, anim.durations = frames, [100] * len(frames)
    if not cv2.imwriteanimation(str(path), anim):
        pytest.skip(f"this OpenCV cannot write animated {path.suffix}")


def _warnings(caplog):
    return [r.getMessage() for r in caplog.records if "only the first was translated" in r.getMessage()]


@pytest.mark.parametrize("ext", [".webp", ".png"])
def test_an_animated_image_is_translated_as_its_first_frame_with_a_warning(tmp_path, caplog, ext):
    if not hasattr(cv2, "imwriteanimation"):
        pytest.skip("this OpenCV has no animation API")
    src = tmp_path / f"anim{ext}"
    _animated(src)
    with caplog.at_level(logging.WARNING):
        s = run_photos(PhotoJob(inputs=[str(src)], output=str(tmp_path / f"o{ext}"), **QUIET), translator=Invert())
    assert s.photos == 1 and not s.failed
    said = _warnings(caplog)
    assert len(said) == 1 and "an animated image of 3 frames" in said[0] and src.name in said[0], said
    out = cv2.imread(str(tmp_path / f"o{ext}"))
    assert out is not None and abs(int(out[0, 0, 0]) - (255 - 20)) <= 2  # the first frame, translated


def test_a_tiff_of_several_pages_is_said(tmp_path, caplog):
    cv2.imwritemulti(str(tmp_path / "scan.tif"), FRAMES)
    with caplog.at_level(logging.WARNING):
        s = run_photos(PhotoJob(inputs=[str(tmp_path / "scan.tif")], output=str(tmp_path / "o.png"), **QUIET),
                       translator=Invert())
    assert s.photos == 1
    said = _warnings(caplog)
    assert len(said) == 1 and "a TIFF of 3 pages" in said[0], said


def test_still_images_say_nothing(tmp_path, caplog):
    (tmp_path / "in").mkdir()
    for name in ("a.png", "b.webp", "c.tif", "d.jpg"):
        cv2.imwrite(str(tmp_path / "in" / name), FRAMES[0])
    with caplog.at_level(logging.WARNING):
        s = run_photos(PhotoJob(inputs=[str(tmp_path / "in")], output=str(tmp_path / "out"), **QUIET),
                       translator=Invert())
    assert s.photos == 4 and _warnings(caplog) == []


def test_frames_in_reads_headers_only():
    ok, png = cv2.imencode(".png", FRAMES[0])
    assert frames_in(png.tobytes()) == 1 and frames_in(b"not an image") == 1
    # an APNG's acTL chunk (frames 5) before its IDAT
    import struct
    import zlib

    b = png.tobytes()
    actl = struct.pack(">II", 5, 0)
    chunk = struct.pack(">I", 8) + b"acTL" + actl + struct.pack(">I", zlib.crc32(b"acTL" + actl))
    assert frames_in(b[:33] + chunk + b[33:]) == 5
    webp = b"RIFF" + bytes(4) + b"WEBP" + b"VP8X" + bytes(4) + bytes([0x02]) + bytes(40)
    assert frames_in(webp) is None and frames_in(webp[:20] + bytes([0x10]) + webp[21:]) == 1
    avis = struct.pack(">I", 24) + b"ftypavis" + bytes(4) + b"avifmif1" + bytes(16)
    avif = struct.pack(">I", 24) + b"ftypavif" + bytes(4) + b"avifmif1" + bytes(16)
    assert frames_in(avis) is None and frames_in(avif) == 1
