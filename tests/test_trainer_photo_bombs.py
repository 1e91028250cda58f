"""A training folder from elsewhere may hold a decompression bomb: a 250 KB PNG declaring 16000x16000 pixels took
1.2 GB to decode, per loader worker. Photos declaring more than MAX_DECODE_PIXELS are skipped, named in a
warning, without being decoded; the header reading agrees with OpenCV on real PNG and JPEG files."""
from __future__ import annotations

import logging
import struct
import zlib

import cv2
import numpy as np
import pytest

from cgan._images import declared_size
from cgan.trainer import data


def _forged_png(path, width, height):
    ok, enc = cv2.imencode(".png", np.zeros((4, 4, 3), np.uint8))
    b = bytearray(enc.tobytes())
    b[16:24] = struct.pack(">II", width, height)
    b[29:33] = struct.pack(">I", zlib.crc32(bytes(b[12:29])))  # a valid IHDR: libpng would believe it
    path.write_bytes(bytes(b))


def test_a_photo_declaring_too_many_pixels_is_not_decoded(tmp_path, monkeypatch, caplog):
    bomb = tmp_path / "bomb.png"
    _forged_png(bomb, 20000, 16000)
    decoded = []
    real = cv2.imdecode
    monkeypatch.setattr(data.cv2, "imdecode", lambda *a: decoded.append(1) or real(*a))
    with caplog.at_level(logging.WARNING, logger=data.log.name):
        assert data.read_rgb(bomb) is None
    assert not decoded
    assert "bomb.png declares 20000x16000 pixels, over the 134-megapixel limit" in caplog.text


@pytest.mark.parametrize("ext,params", [
    (".png", []), (".jpg", []), (".jpg", [cv2.IMWRITE_JPEG_PROGRESSIVE, 1]), (".tif", []),
    (".tiff", [cv2.IMWRITE_TIFF_COMPRESSION, 1]), (".webp", [cv2.IMWRITE_WEBP_QUALITY, 80]),
    (".webp", [cv2.IMWRITE_WEBP_QUALITY, 101]), (".bmp", []),
])
def test_declared_sizes_match_opencv(ext, params):
    img = np.random.default_rng(1).integers(0, 256, (37, 53, 3), np.uint8)
    ok, enc = cv2.imencode(ext, img, params)
    assert declared_size(enc) == (53, 37)
    assert declared_size(enc.tobytes()) == (53, 37)


def test_other_formats_and_broken_headers_are_left_to_opencv():
    ok, ppm = cv2.imencode(".ppm", np.zeros((4, 4, 3), np.uint8))
    assert declared_size(ppm) is None
    assert declared_size(b"\xff\xd8\xff") is None  # cut short
    assert declared_size(b"\xff\xd8\x00\x00\x00\x00\x00\x00\x00\x00") is None  # no marker where one goes


def test_a_photo_within_the_limit_is_read(tmp_path):
    f = tmp_path / "ok.jpg"
    cv2.imwrite(str(f), np.full((40, 60, 3), 128, np.uint8))
    assert data.read_rgb(f).shape == (40, 60, 3)


CHECK = """
import struct, sys, zlib
import cgan.trainer.cli  # sets OpenCV's limit before OpenCV loads
import cv2, numpy as np
ok, enc = cv2.imencode(".png", np.zeros((4, 4, 3), np.uint8))
b = bytearray(enc.tobytes())
b[16:24] = struct.pack(">II", 20000, 16000)
b[29:33] = struct.pack(">I", zlib.crc32(bytes(b[12:29])))
try:
    cv2.imdecode(np.frombuffer(bytes(b), np.uint8), cv2.IMREAD_UNCHANGED)
    print("decoder ran")
except cv2.error:
    print("refused by size")
"""


@pytest.mark.parametrize("preset,want", [(None, "refused by size"), (str(1 << 30), "decoder ran")])
def test_cgan_train_sets_opencvs_limit_for_every_format(preset, want):
    """Formats declared_size does not read (PPM/PGM): OpenCV's own limit, lowered by cgan-train before OpenCV
    loads, stops those bombs (and the loader workers inherit it; shown here on a PNG decoded by OpenCV directly).
    A limit the user set wins."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "OPENCV_IO_MAX_IMAGE_PIXELS"}
    if preset:
        env["OPENCV_IO_MAX_IMAGE_PIXELS"] = preset
    p = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, env=env, timeout=120)
    assert p.stdout.strip() == want, p.stderr[-500:]


def test_declared_sizes_of_headers_opencv_does_not_write():
    """WebP's extended (VP8X) header, as animated or EXIF-carrying WebP files have, and the OS/2 BMP header."""
    import struct

    vp8x = b"RIFF" + struct.pack("<I", 30) + b"WEBP" + b"VP8X" + struct.pack("<I", 10) + b"\x00" * 4
    vp8x += (20000 - 1).to_bytes(3, "little") + (16000 - 1).to_bytes(3, "little")
    assert declared_size(vp8x) == (20000, 16000)
    core = b"BM" + b"\x00" * 12 + struct.pack("<IHH", 12, 30000, 20000) + b"\x00" * 8
    assert declared_size(core) == (30000, 20000)
    top_down = b"BM" + b"\x00" * 12 + struct.pack("<Iii", 40, 640, -480) + b"\x00" * 8
    assert declared_size(top_down) == (640, 480)


def test_a_folders_summary_counts_photos_over_the_limit_apart_from_corrupt_ones(tmp_path, caplog):
    """The summary said '2 could not be decoded, corrupt or cut short?' of a valid photo over the limit too,
    advising to replace a file that only needs shrinking."""
    folder = tmp_path / "trainA"
    folder.mkdir()
    _forged_png(folder / "bomb.png", 20000, 16000)
    (folder / "bad.jpg").write_bytes(b"\xff\xd8\xff\xe0 not a jpeg")
    cv2.imwrite(str(folder / "ok.png"), np.zeros((40, 40, 3), np.uint8))
    with caplog.at_level(logging.WARNING, logger=data.log.name):
        assert [f.name for f in data.list_images(folder, "X", check=True)] == ["ok.png"]
    said = [r.getMessage() for r in caplog.records if "skipped 2 of 3 files" in r.getMessage()]
    assert said and "1 over the 134-megapixel limit ('bomb.png'; shrink them)" in said[0], caplog.text
    assert "1 could not be decoded, corrupt or cut short? ('bad.jpg')" in said[0]


def test_images_in_sub_folders_beside_the_folders_own_are_said_to_be_unused(tmp_path, caplog):
    """The official repo walks sub-folders; cgan reads a folder's own images, and left the others out silently
    when the folder had some of its own (it refused only a folder with none)."""
    folder = tmp_path / "trainA"
    (folder / "more").mkdir(parents=True)
    cv2.imwrite(str(folder / "ok.png"), np.zeros((40, 40, 3), np.uint8))
    cv2.imwrite(str(folder / "more" / "also.png"), np.zeros((40, 40, 3), np.uint8))
    with caplog.at_level(logging.WARNING, logger=data.log.name):
        assert [f.name for f in data.list_images(folder, "X", check=True)] == ["ok.png"]
    assert f"images in sub-folders such as {folder / 'more'} are not used" in caplog.text
