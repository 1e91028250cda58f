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
    vp8x = b"VP8X" + (10).to_bytes(4, "little") + bytes([0x02]) + bytes(9)
    anmf = b"ANMF" + (3).to_bytes(4, "little") + bytes(4)  # an odd size: the chunk is padded to an even one
    body = b"WEBP" + vp8x + anmf * 3
    webp = b"RIFF" + len(body).to_bytes(4, "little") + body
    assert frames_in(webp) == 3 and frames_in(webp[:20] + bytes([0x10]) + webp[21:]) == 1  # not flagged animated
    assert frames_in(webp[:-3 * len(anmf)]) == 1  # flagged, but no frame chunk
    forged = b"RIFF" + (2**32 - 1).to_bytes(4, "little") + body  # a RIFF size past the data: read to its end
    assert frames_in(forged) == 3
    # a GIF of two 1x1 images (no colour tables), and a TIFF chain that loops back to its first page
    image = b"\x2c" + bytes(8) + b"\x00" + b"\x02" + b"\x01\x00" + b"\x00"
    gif = b"GIF89a" + bytes(7) + b"\x21\xf9\x04" + bytes(4) + b"\x00" + image * 2 + b"\x3b"
    assert frames_in(gif) == 2 and frames_in(gif[:13] + image + b"\x3b") == 1
    ifd = (0).to_bytes(2, "little") + (8).to_bytes(4, "little")  # no entries, next IFD: itself
    assert frames_in(b"II*\x00" + (8).to_bytes(4, "little") + ifd) == 1
    two = b"II*\x00" + (8).to_bytes(4, "little") + (0).to_bytes(2, "little") + (14).to_bytes(4, "little") \
        + (0).to_bytes(2, "little") + (0).to_bytes(4, "little")
    assert frames_in(two) == 2 and frames_in(np.frombuffer(two, np.uint8)) == 2
    avis = struct.pack(">I", 24) + b"ftypavis" + bytes(4) + b"avifmif1" + bytes(16)
    avif = struct.pack(">I", 24) + b"ftypavif" + bytes(4) + b"avifmif1" + bytes(16)
    assert frames_in(avis) is None and frames_in(avif) == 1


def _tiff_chain(kinds: list[int | None], big: bool = False, tag: int = 254) -> bytes:
    """A TIFF (or BigTIFF) of one IFD per entry of `kinds`: None, an IFD with no entries; else one SHORT entry
    `tag` (NewSubfileType 254 or SubfileType 255) of that value, and ImageWidth after it (tags are sorted)."""
    import struct

    o = "<"
    count, off, entry = ("Q", "Q", "HHQQ") if big else ("H", "I", "HHII")
    head = b"II+\x00" + struct.pack("<HHQ", 8, 0, 16) if big else b"II*\x00" + struct.pack("<I", 8)
    at, ifds = len(head), []
    for i, kind in enumerate(kinds):
        rows = [] if kind is None else [struct.pack(o + entry, tag, 3, 1, kind), struct.pack(o + entry, 256, 3, 1, 4)]
        size = struct.calcsize(o + count) + sum(map(len, rows)) + struct.calcsize(o + off)
        nxt = 0 if i == len(kinds) - 1 else at + size
        ifds.append(struct.pack(o + count, len(rows)) + b"".join(rows) + struct.pack(o + off, nxt))
        at += size
    return head + b"".join(ifds)


def test_thumbnails_and_masks_of_a_tiff_are_not_pages():
    """A camera's or scanner's TIFF with a reduced-resolution copy after its image is one picture (it was said to
    be 'a TIFF of 2 pages; only the first was translated'); a transparency mask is not a page either."""
    assert frames_in(_tiff_chain([None, None])) == 2  # (the helper's chain is read)
    assert frames_in(_tiff_chain([0, 1])) == 1  # the image, then its thumbnail
    assert frames_in(_tiff_chain([0, 1, 1, 1])) == 1  # a pyramid
    assert frames_in(_tiff_chain([2, 0, 4, 2])) == 3  # pages (bit 1: "one page of many") and a mask among them
    assert frames_in(_tiff_chain([0, 5, 0], big=True)) == 2  # BigTIFF: a reduced-resolution mask left out
    assert frames_in(_tiff_chain([1, 3], tag=255)) == 2  # old SubfileType: 1 full resolution, 3 a page...
    assert frames_in(_tiff_chain([1, 2, 3], tag=255)) == 2  # ...2 reduced resolution


def test_a_file_name_that_is_not_utf8_is_no_trouble(tmp_path, caplog):
    """cv2.imcount on such a name (surrogate escapes) crashed the process; frames are counted from the bytes."""
    import os

    folder = os.path.join(os.fsencode(tmp_path), b"in")
    os.mkdir(folder)
    cv2.imwritemulti(str(tmp_path / "multi.tif"), FRAMES)
    cv2.imwrite(str(tmp_path / "still.tif"), FRAMES[0])
    for src, name in (("multi.tif", b"multi\xfe.tif"), ("still.tif", b"still\xfb.tif")):
        os.rename(tmp_path / src, os.path.join(folder, name))
    with caplog.at_level(logging.WARNING):
        s = run_photos(PhotoJob(inputs=[os.fsdecode(folder)], output=str(tmp_path / "out"), **QUIET),
                       translator=Invert())
    assert s.photos == 2 and not s.failed
    said = _warnings(caplog)
    assert len(said) == 1 and "a TIFF of 3 pages" in said[0], said


def test_a_heif_of_several_images_is_said(tmp_path, caplog):
    pillow_heif = pytest.importorskip("pillow_heif")
    heif = pillow_heif.from_bytes(mode="RGB", size=(24, 16), data=bytes([30]) * (24 * 16 * 3))
    heif.add_frombytes(mode="RGB", size=(24, 16), data=bytes([200]) * (24 * 16 * 3))
    try:
        heif.save(str(tmp_path / "burst.heic"), quality=90)
    except Exception as e:  # noqa: BLE001 - a pillow-heif without an HEVC encoder
        pytest.skip(f"this pillow-heif cannot write HEIC: {e}")
    with caplog.at_level(logging.WARNING):
        s = run_photos(PhotoJob(inputs=[str(tmp_path / "burst.heic")], output=str(tmp_path / "o.png"), **QUIET),
                       translator=Invert())
    assert s.photos == 1 and not s.failed
    said = [r.getMessage() for r in caplog.records if "only its primary image was translated" in r.getMessage()]
    assert len(said) == 1 and "a HEIF file of 2 images" in said[0], said
