"""Photo metadata: EXIF data and ICC profiles copied into translated photos, made true of them (orientation,
pixel size, no thumbnail of the untranslated photo); "color" keeps only the profile, "none" nothing; what a
format cannot hold is said once and the photo is still written. Checked with Pillow, an independent reader."""
from __future__ import annotations

import functools
import io
import logging
import struct
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cgan._cli import run
from cgan._codecs import codec_works
from cgan._images import exif_for_copy, exif_orientation
from cgan.errors import CganError
from cgan.runtime import photos
from cgan.runtime.cli import cli
from cgan.runtime.photos import PhotoJob, read_photo_with_metadata, run_photos

from _helpers_video import Invert, make_clip, pattern

Image = pytest.importorskip("PIL.Image")
ImageOps = pytest.importorskip("PIL.ImageOps")
ImageCms = pytest.importorskip("PIL.ImageCms")
ExifTags = pytest.importorskip("PIL.ExifTags")
pytestmark = pytest.mark.skipif(not photos.CAN_COPY_METADATA, reason="this OpenCV cannot copy photo metadata")

ORIENTATION, EXIF_IFD, MAKE, DATE_ORIGINAL, PIXEL_X, PIXEL_Y = 0x0112, 0x8769, 0x010F, 0x9003, 0xA002, 0xA003
THUMB_OFFSET, THUMB_LENGTH = 0x0201, 0x0202


def exif_blob(order: str = ">", orientation: int = 6, size: tuple[int, int] = (40, 24)) -> bytes:
    """A camera's EXIF (a TIFF structure): IFD0 with Make, Orientation and the Exif IFD; the Exif IFD with
    DateTimeOriginal and the pixel size (X as LONG, Y as SHORT); IFD1 pointing at a thumbnail."""
    make, date, thumb = b"Nikon\x00", b"2024:07:01 12:00:00\x00", b"\xff\xd8THUMBNAIL\xff\xd9"
    ifd0 = 8
    exif_ifd = ifd0 + 2 + 3 * 12 + 4
    ifd1 = exif_ifd + 2 + 3 * 12 + 4
    data = ifd1 + 2 + 2 * 12 + 4
    make_at, date_at, thumb_at = data, data + len(make), data + len(make) + len(date)

    def entry(tag, typ, count, value):
        if typ == 3:
            return struct.pack(order + "HHIHH", tag, typ, count, value, 0)
        return struct.pack(order + "HHII", tag, typ, count, value)

    b = (b"MM\x00*" if order == ">" else b"II*\x00") + struct.pack(order + "I", ifd0)
    b += struct.pack(order + "H", 3) + entry(MAKE, 2, len(make), make_at) + entry(ORIENTATION, 3, 1, orientation) \
        + entry(EXIF_IFD, 4, 1, exif_ifd) + struct.pack(order + "I", ifd1)
    b += struct.pack(order + "H", 3) + entry(DATE_ORIGINAL, 2, len(date), date_at) \
        + entry(PIXEL_X, 4, 1, size[0]) + entry(PIXEL_Y, 3, 1, size[1]) + struct.pack(order + "I", 0)
    b += struct.pack(order + "H", 2) + entry(THUMB_OFFSET, 4, 1, thumb_at) + entry(THUMB_LENGTH, 4, 1, len(thumb)) \
        + struct.pack(order + "I", 0)
    b += make + date + thumb
    return b


@functools.cache
def icc_profile(n: int = 0) -> bytes:
    """Little CMS's sRGB profile (libpng checks the profiles it reads), padded to `n` bytes when asked (made once:
    its header holds the time it was made)."""
    icc = bytearray(ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes())
    if n > len(icc):
        icc += bytes(n - len(icc))
        icc[0:4] = n.to_bytes(4, "big")
    return bytes(icc)


def save(path: Path, rgb: np.ndarray, exif: bytes | None = None, icc: bytes | None = None, **kw) -> Path:
    """A photo written by Pillow (an independent writer) with EXIF and an ICC profile."""
    fmt = {".jpg": "JPEG", ".png": "PNG", ".webp": "WEBP"}[path.suffix]
    opts = dict(kw)
    if exif is not None:
        opts["exif"] = (b"Exif\x00\x00" + exif) if fmt == "JPEG" else exif
    if icc is not None:
        opts["icc_profile"] = icc
    if fmt == "WEBP":
        opts.setdefault("lossless", True)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgb).save(path, fmt, **opts)
    return path


def shown(path: Path) -> np.ndarray:
    """What a viewer shows: the pixels turned by their EXIF orientation (Pillow's exif_transpose), as RGB."""
    with Image.open(path) as im:
        return np.asarray(ImageOps.exif_transpose(im).convert("RGB")).astype(np.int16)


def exif_of(path: Path):
    with Image.open(path) as im:
        return im.getexif(), im.info.get("icc_profile")


def translate(src: Path, dst: Path, metadata: str = "all", **kw) -> photos.PhotoSummary:
    return run_photos(PhotoJob(inputs=[src], output=dst, metadata=metadata, progress=False, **kw),
                      translator=Invert())


@pytest.mark.parametrize("src_ext", [".jpg", ".png", ".webp"])
@pytest.mark.parametrize("dst_ext", [".jpg", ".png", ".webp"])
def test_exif_and_profile_are_copied_and_made_true(tmp_path, src_ext, dst_ext):
    rgb = pattern(3, 40, 24)[:, :, ::-1].copy()  # stored 40 wide, 24 high; orientation 6 shows it 24 x 40
    icc = icc_profile()
    src = save(tmp_path / f"in{src_ext}", rgb, exif_blob(size=(40, 24)), icc)
    dst = tmp_path / f"out{dst_ext}"
    assert translate(src, dst).photos == 1
    exif, got_icc = exif_of(dst)
    assert got_icc == icc
    assert exif.get(ORIENTATION) in (1, 6) and exif.get(MAKE) == "Nikon"
    sub = exif.get_ifd(EXIF_IFD)
    assert sub.get(DATE_ORIGINAL) == "2024:07:01 12:00:00"
    with Image.open(dst) as im:
        assert (sub.get(PIXEL_X), sub.get(PIXEL_Y)) == im.size  # the stored pixels' size
    assert not exif.get_ifd(ExifTags.IFD.IFD1)  # no IFD1: the thumbnail of the untranslated photo is gone
    # a viewer shows the output turned as it showed the input, translated (Invert: 255 - x, lossy formats aside)
    before, after = shown(src), shown(dst)
    assert before.shape == after.shape == (40, 24, 3)
    assert np.abs((255 - before) - after).mean() < 8


def test_an_avif_output_gets_the_profile_and_exif(tmp_path):
    if not codec_works(".avif"):
        pytest.skip("this OpenCV has no AVIF codec")
    src = save(tmp_path / "in.jpg", pattern(3, 40, 24)[:, :, ::-1].copy(), exif_blob(), icc_profile())
    dst = tmp_path / "out.avif"
    assert translate(src, dst).photos == 1
    exif, icc = exif_of(dst)
    assert icc == icc_profile() and exif.get(MAKE) == "Nikon" and exif.get(ORIENTATION) == 1
    assert shown(dst).shape == shown(src).shape == (40, 24, 3)


def test_color_keeps_only_the_profile_and_none_keeps_nothing(tmp_path):
    src = save(tmp_path / "in.jpg", pattern(1, 32, 20), exif_blob(orientation=1), icc_profile())
    translate(src, tmp_path / "color.jpg", metadata="color")
    translate(src, tmp_path / "none.jpg", metadata="none")
    exif, icc = exif_of(tmp_path / "color.jpg")
    assert icc == icc_profile() and not dict(exif)
    exif, icc = exif_of(tmp_path / "none.jpg")
    assert icc is None and not dict(exif)


def test_orientation_is_kept_when_opencv_left_the_pixels_as_stored(tmp_path, monkeypatch):
    """A decoder that does not turn (an older OpenCV, some formats): the output keeps the tag, so a viewer turns
    it as it turned the input."""
    src = save(tmp_path / "in.png", pattern(5, 40, 24)[:, :, ::-1].copy(), exif_blob())
    real = cv2.imdecodeWithMetadata
    monkeypatch.setattr(cv2, "imdecodeWithMetadata",
                        lambda data, flags: real(data, flags | cv2.IMREAD_IGNORE_ORIENTATION))
    dst = tmp_path / "out.png"
    translate(src, dst)
    assert exif_of(dst)[0].get(ORIENTATION) == 6
    assert shown(dst).shape == shown(src).shape == (40, 24, 3)
    assert np.abs((255 - shown(src)) - shown(dst)).max() == 0


def test_pixel_size_follows_size_and_side_by_side(tmp_path):
    src = save(tmp_path / "in.png", pattern(2, 64, 32), exif_blob(orientation=1, size=(64, 32)))
    dst = tmp_path / "out.png"
    translate(src, dst, size="32", side_by_side=True)
    sub = exif_of(dst)[0].get_ifd(EXIF_IFD)
    with Image.open(dst) as im:
        assert im.size == (64, 16) and (sub.get(PIXEL_X), sub.get(PIXEL_Y)) == (64, 16)


def test_formats_without_metadata_are_written_and_said_once(tmp_path, caplog):
    for i in range(3):
        save(tmp_path / "in" / f"{i}.png", pattern(i, 16, 16), exif_blob(orientation=1), icc_profile())
    caplog.set_level(logging.WARNING)
    for ext in (".bmp", ".tif"):
        out = tmp_path / ext[1:]
        out.mkdir()
        for i in range(3):  # an output name per photo in another format: the folder run keeps formats, so by hand
            assert translate(tmp_path / "in" / f"{i}.png", out / f"{i}{ext}").photos == 1
    said = [r.getMessage() for r in caplog.records if "written without EXIF" in r.getMessage()]
    assert said and all("said once" in m for m in said)


def test_one_run_says_each_left_out_thing_once(tmp_path, caplog):
    d = tmp_path / "in"
    for i in range(3):
        save(d / f"{i}.png", pattern(i, 16, 16), exif_blob(orientation=1), icc_profile(70_000))
    caplog.set_level(logging.WARNING)
    summary = run_photos(PhotoJob(inputs=[d], output=tmp_path / "o", progress=False), translator=Invert())
    assert summary.photos == 3
    said = [r.getMessage() for r in caplog.records]
    assert not [m for m in said if "ICC" in m]  # PNG holds a large profile
    for i in range(3):
        assert exif_of(tmp_path / "o" / f"{i}.png")[1] == icc_profile(70_000)


def test_a_profile_too_large_for_a_jpeg_is_left_out_with_a_warning(tmp_path, caplog):
    big = icc_profile(70_000)  # over one APP2 segment, which is all OpenCV writes
    src = save(tmp_path / "in.png", pattern(1, 16, 16), exif_blob(orientation=1), big)
    caplog.set_level(logging.WARNING)
    assert translate(src, tmp_path / "out.jpg").photos == 1
    exif, icc = exif_of(tmp_path / "out.jpg")
    assert icc is None and exif.get(MAKE) == "Nikon"
    assert any("ICC profile over" in r.getMessage() for r in caplog.records)
    assert translate(src, tmp_path / "out.webp").photos == 1 and exif_of(tmp_path / "out.webp")[1] == big


def test_exif_cut_short_is_left_out_and_the_photo_written(tmp_path, caplog):
    # Pillow writes what it is given: an EXIF whose first IFD runs past the end of the data
    src = save(tmp_path / "in.png", pattern(1, 16, 16), exif_blob(orientation=1)[:20], icc_profile())
    caplog.set_level(logging.WARNING)
    assert translate(src, tmp_path / "out.png").photos == 1
    exif, icc = exif_of(tmp_path / "out.png")
    assert not dict(exif) and icc == icc_profile()


def test_an_opencv_without_metadata_support_says_so_once_and_writes_the_photos(tmp_path, monkeypatch, caplog):
    src = save(tmp_path / "in.jpg", pattern(1, 16, 16), exif_blob(orientation=1), icc_profile())
    monkeypatch.setattr(photos, "CAN_COPY_METADATA", False)
    caplog.set_level(logging.WARNING)
    assert translate(src, tmp_path / "out.jpg").photos == 1
    assert exif_of(tmp_path / "out.jpg") == (exif_of(tmp_path / "out.jpg")[0], None)
    assert sum("cannot copy photo metadata" in r.getMessage() for r in caplog.records) == 1
    caplog.clear()
    translate(src, tmp_path / "out2.jpg", metadata="none")
    assert not caplog.records


def test_read_photo_with_metadata_gives_what_it_found(tmp_path):
    src = save(tmp_path / "in.jpg", pattern(1, 40, 24), exif_blob(), icc_profile())
    img, alpha, meta = read_photo_with_metadata(src)
    assert img.shape == (40, 24, 3) and alpha is None
    assert meta.icc == icc_profile() and exif_orientation(meta.exif) == 6 and meta.upright
    assert not read_photo_with_metadata(src, "none")[2]
    assert read_photo_with_metadata(src, "color")[2].exif is None


# ---- exif_for_copy on its own ---------------------------------------------------------------------------------
@pytest.mark.parametrize("order", ["<", ">"])
def test_exif_for_copy_sets_orientation_size_and_unlinks_the_thumbnail(order):
    src = exif_blob(order, orientation=8, size=(4000, 3000))
    out = exif_for_copy(src, (1500, 2000), upright=True)
    assert len(out) == len(src) and exif_orientation(out) == 1
    exif = Image.Exif()
    exif.load(out)
    assert exif.get(MAKE) == "Nikon" and not exif.get_ifd(ExifTags.IFD.IFD1)
    assert (exif.get_ifd(EXIF_IFD)[PIXEL_X], exif.get_ifd(EXIF_IFD)[PIXEL_Y]) == (1500, 2000)
    assert exif_orientation(exif_for_copy(src, (1, 1), upright=False)) == 8
    assert exif_for_copy(b"Exif\x00\x00" + src, (1, 1), upright=True) == exif_for_copy(src, (1, 1), upright=True)


def test_exif_for_copy_leaves_a_short_pixel_size_that_cannot_hold_the_new_one():
    out = exif_for_copy(exif_blob(size=(40, 24)), (70000, 70000), upright=True)
    exif = Image.Exif()
    exif.load(out)
    assert (exif.get_ifd(EXIF_IFD)[PIXEL_X], exif.get_ifd(EXIF_IFD)[PIXEL_Y]) == (70000, 24)  # SHORT: 16 bits


@pytest.mark.parametrize("data", [b"", b"MM\x00*", b"II*\x00\x08\x00\x00\x00", b"JUNKJUNKJUNK",
                                  b"MM\x00*\xff\xff\xff\xff\x00\x00", exif_blob()[:30], exif_blob()[:49]])
def test_exif_for_copy_refuses_what_is_not_whole_exif(data):
    assert exif_for_copy(data, (1, 1), upright=True) is None


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300), st.integers(0, 2**32), st.booleans())
def test_exif_for_copy_never_raises_nor_changes_the_length(data, side, upright):
    for blob in (data, b"MM\x00*\x00\x00\x00\x08" + data, b"II*\x00\x08\x00\x00\x00" + data):
        out = exif_for_copy(blob, (side, side), upright)
        assert out is None or len(out) == len(blob.removeprefix(b"Exif\x00\x00"))


# ---- the CLI --------------------------------------------------------------------------------------------------
def test_cli_metadata_choice_and_video_inputs(tmp_path, capsys):
    src = save(tmp_path / "in.jpg", pattern(1, 16, 16), exif_blob(orientation=1), icc_profile())
    code = run(cli, ["--input", str(src), "--output", str(tmp_path / "o.jpg"), "--metadata", "color",
                     "--backend", "ort-cpu", "--no-progress"])
    assert code == 0, capsys.readouterr().err
    exif, icc = exif_of(tmp_path / "o.jpg")
    assert icc == icc_profile() and not dict(exif)
    code = run(cli, ["--input", str(src), "--output", str(tmp_path / "p.jpg"), "--metadata", "some"])
    assert code == 2 and "'some' is not one of" in capsys.readouterr().err
    clip = make_clip(tmp_path / "clip.mp4", 2)
    code = run(cli, ["--input", str(clip), "--output", str(tmp_path / "o.mp4"), "--metadata", "none"])
    err = capsys.readouterr().err
    assert code == 2 and "--metadata applies to photos" in err and "Traceback" not in err


def test_photojob_metadata_is_checked():
    with pytest.raises(CganError, match="metadata must be one of all, color, none"):
        PhotoJob(inputs=["x.jpg"], metadata="yes")
    with pytest.raises(CganError, match="metadata must be one of"):
        PhotoJob(inputs=["x.jpg"], metadata=True)


def pillow_avif(path: Path, rgb: np.ndarray, orientation: int = 1) -> Path:
    """An AVIF written by Pillow (libavif): its EXIF orientation becomes the 'irot'/'imir' boxes viewers apply."""
    if not codec_works(".avif"):
        pytest.skip("this OpenCV has no AVIF codec")
    from PIL import features

    if not features.check("avif"):
        pytest.skip("this Pillow writes no AVIF")
    Image.fromarray(rgb).save(path, "AVIF", exif=b"Exif\x00\x00" + exif_blob(orientation=orientation),
                              icc_profile=icc_profile(), quality=100)
    return path


@pytest.mark.parametrize("orientation", range(1, 9))
def test_an_avif_is_turned_as_viewers_turn_it_and_keeps_its_metadata(tmp_path, orientation):
    """OpenCV 5.0 decodes an AVIF as stored and reads none of its metadata (it writes both): the turns and
    mirrors of its boxes are applied as Pillow (libavif) shows the file, and its profile and EXIF are copied."""
    src = pillow_avif(tmp_path / "in.avif", pattern(3, 40, 24)[:, :, ::-1].copy(), orientation)
    img, _, meta = read_photo_with_metadata(src)
    assert img.shape == shown(src).shape and np.abs(img[:, :, ::-1] - shown(src)).mean() < 2
    assert meta.icc == icc_profile() and meta.exif is not None and meta.upright
    dst = tmp_path / "out.jpg"
    assert translate(src, dst).photos == 1
    exif, icc = exif_of(dst)
    assert icc == icc_profile() and exif.get(MAKE) == "Nikon" and exif.get(ORIENTATION) in (None, 1)
    assert np.abs((255 - shown(src)) - shown(dst)).mean() < 8  # shown as the input was, translated


def test_an_avif_cgan_wrote_keeps_its_metadata_through_another_run(tmp_path):
    if not codec_works(".avif"):
        pytest.skip("this OpenCV has no AVIF codec")
    src = save(tmp_path / "in.jpg", pattern(3, 40, 24)[:, :, ::-1].copy(), exif_blob(), icc_profile())
    translate(src, tmp_path / "a.avif")
    translate(tmp_path / "a.avif", tmp_path / "b.jpg")
    exif, icc = exif_of(tmp_path / "b.jpg")
    assert icc == icc_profile() and exif.get(MAKE) == "Nikon" and exif.get(ORIENTATION) == 1
    assert np.abs(shown(src) - shown(tmp_path / "b.jpg")).mean() < 8  # inverted twice
    _, _, meta = read_photo_with_metadata(tmp_path / "a.avif", "color")
    assert meta.icc == icc_profile() and meta.exif is None
    _, _, meta = read_photo_with_metadata(tmp_path / "a.avif", "none")
    assert not meta


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_heif_image_never_raises_on_cut_or_damaged_files(data):
    """Whatever the bytes (a file cut short, a damaged box), the reader gives what it can and never raises."""
    from cgan._images import heif_image

    blob = bytearray(avif_sample())
    cut = data.draw(st.integers(0, len(blob)))
    for _ in range(data.draw(st.integers(0, 8))):
        blob[data.draw(st.integers(0, len(blob) - 1))] = data.draw(st.integers(0, 255))
    got = heif_image(bytes(blob[:cut]))
    assert got.exif is None or got.exif[:4] in (b"II*\x00", b"MM\x00*")


@functools.cache
def avif_sample() -> bytes:
    if not codec_works(".avif"):
        pytest.skip("this OpenCV has no AVIF codec")
    ok, enc = cv2.imencodeWithMetadata(".avif", pattern(3, 40, 24), [cv2.IMAGE_METADATA_EXIF, cv2.IMAGE_METADATA_ICCP],
                                       [np.frombuffer(exif_blob(), np.uint8), np.frombuffer(icc_profile(), np.uint8)])
    assert ok
    return enc.tobytes()


def rgba_sticker(solid: bool = False) -> np.ndarray:
    """24x40 RGBA: a gradient (or one colour: the shape only in alpha) under an alpha that fades left to right and
    is cut out in the top-left corner."""
    rgba = np.zeros((24, 40, 4), np.uint8)
    if solid:
        rgba[..., :3] = (200, 60, 30)
    else:
        rgba[..., 0], rgba[..., 1] = np.linspace(0, 255, 40)[None, :], np.linspace(0, 255, 24)[:, None]
        rgba[..., 2] = 90
    rgba[..., 3] = np.linspace(255, 40, 40)[None, :].astype(np.uint8)
    rgba[:6, :9, 3] = 0
    return rgba


def shown_rgba(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(ImageOps.exif_transpose(im).convert("RGBA")).astype(np.int16)


@pytest.mark.parametrize("fmt", ["webp-lossless", "webp-lossy", "avif"])
@pytest.mark.parametrize("orientation", [1, 3, 6])
@pytest.mark.parametrize("solid", [False, True])
def test_webp_and_avif_transparency_is_kept_and_turned_as_shown(tmp_path, fmt, orientation, solid):
    """A WebP's or AVIF's alpha was dropped (only a PNG's was read). It is now read, turned as the photo is shown
    (EXIF orientation; an AVIF's irot/imir boxes) and written into formats that hold it: checked against Pillow's
    display of the file, also for one colour under a shaped alpha, where the colours cannot tell the turn."""
    ext = ".avif" if fmt == "avif" else ".webp"
    if not codec_works(ext):
        pytest.skip(f"this OpenCV has no {ext} codec")
    from PIL import features

    if fmt == "avif" and not features.check("avif"):
        pytest.skip("this Pillow writes no AVIF")
    src = tmp_path / f"in{ext}"
    options = {"webp-lossless": dict(lossless=True), "webp-lossy": dict(quality=90), "avif": dict(quality=100)}[fmt]
    Image.fromarray(rgba_sticker(solid)).save(src, "AVIF" if fmt == "avif" else "WEBP",
                                              exif=b"Exif\x00\x00" + exif_blob(orientation=orientation), **options)
    want = shown_rgba(src)
    img, alpha, _ = read_photo_with_metadata(src)
    assert alpha is not None and alpha.shape == img.shape[:2] == want.shape[:2]
    assert np.abs(alpha - want[..., 3]).max() <= 2
    assert translate(src, tmp_path / "out.png").photos == 1
    out = shown_rgba(tmp_path / "out.png")
    assert np.abs(out[..., 3] - want[..., 3]).max() <= 2  # the transparency, where it was shown
    assert np.abs((255 - want[..., :3]) - out[..., :3]).mean() < 3  # and the colours translated (Invert)


def tiff_rgba(path: Path, pixels: np.ndarray, extra: int | None) -> Path:
    """An uncompressed little-endian RGBA TIFF of `pixels` (uint8 or uint16, RGBA order), with ExtraSamples
    `extra` (None: no tag, as OpenCV writes RGBA), written by hand: Pillow writes neither 16-bit RGBA nor the
    other ExtraSamples values."""
    h, w, _ = pixels.shape
    data = pixels.astype(pixels.dtype.newbyteorder("<")).tobytes()
    entries = [(256, 3, 1, w), (257, 3, 1, h), (258, 3, 4, -1), (259, 3, 1, 1), (262, 3, 1, 2), (273, 4, 1, -2),
               (277, 3, 1, 4), (278, 3, 1, h), (279, 4, 1, len(data)), (284, 3, 1, 1)]
    entries += [(338, 3, 1, extra)] if extra is not None else []
    bits_at = 8 + 2 + 12 * len(entries) + 4
    out = b"II*\x00" + struct.pack("<IH", 8, len(entries))
    for tag, typ, count, value in sorted(entries):
        value = {-1: bits_at, -2: bits_at + 8}.get(value, value)
        out += struct.pack("<HHIHH", tag, typ, count, value, 0) if typ == 3 and count == 1 else \
            struct.pack("<HHII", tag, typ, count, value)
    path.write_bytes(out + struct.pack("<I4H", 0, *[pixels.dtype.itemsize * 8] * 4) + data)
    return path


def straight_close(got_rgb: np.ndarray, want_rgb: np.ndarray, alpha: np.ndarray) -> bool:
    """Colours equal where alpha > 0, within what dividing a premultiplied 8-bit value by the alpha leaves."""
    slack = np.ceil(255.0 / (2.0 * np.maximum(alpha.astype(np.float64), 1.0)))[..., None] + 1
    diff = np.abs(got_rgb.astype(int) - want_rgb.astype(int))
    return bool(np.all((diff <= slack) | (alpha[..., None] == 0)))


@pytest.mark.parametrize("orientation", [1, 3, 6])
@pytest.mark.parametrize("solid", [False, True])
def test_tiff_transparency_is_kept_turned_and_its_colours_straight(tmp_path, orientation, solid):
    """A TIFF's alpha was dropped without a word (a TIFF output could hold it), and OpenCV gives the colours of
    an unassociated alpha premultiplied (libtiff's RGBA reader): the alpha is read, turned by the Orientation tag
    as the photo is shown, and the colours divided again, so the translation sees what a viewer composites."""
    src = tmp_path / "in.tif"
    Image.fromarray(rgba_sticker(solid)).save(src, "TIFF", tiffinfo={274: orientation})  # ExtraSamples 2
    # as TIFF viewers show it (Pillow's exif_transpose leaves a TIFF's own Orientation tag alone)
    want = {1: lambda a: a, 3: lambda a: a[::-1, ::-1], 6: lambda a: np.rot90(a, -1)}[orientation](
        rgba_sticker(solid)).astype(np.int16)
    img, alpha, _ = read_photo_with_metadata(src)
    assert alpha is not None and alpha.shape == img.shape[:2] == want.shape[:2]
    assert np.array_equal(alpha, want[..., 3])
    assert straight_close(img[..., ::-1], want[..., :3], alpha)
    assert translate(src, tmp_path / "out.tif").photos == 1
    out = shown_rgba(tmp_path / "out.tif")
    assert np.array_equal(out[..., 3], want[..., 3])
    assert straight_close(out[..., :3], 255 - want[..., :3], want[..., 3])


@pytest.mark.parametrize("orientation", [3, 6])
def test_a_black_logo_tiffs_alpha_is_turned_once(tmp_path, orientation):
    """Black under a shaped alpha looks the same turned or not: its alpha, already turned by the decoder, was
    turned a second time."""
    a = np.zeros((16, 24), np.uint8)
    a[2:6, 1:12] = 255
    Image.fromarray(np.dstack([np.zeros((16, 24, 3), np.uint8), a])).save(tmp_path / "k.tif",
                                                                           tiffinfo={274: orientation})
    img, alpha, _ = read_photo_with_metadata(tmp_path / "k.tif")
    assert np.array_equal(alpha, a[::-1, ::-1] if orientation == 3 else np.rot90(a, -1))


@pytest.mark.parametrize("bits", [8, 16])
@pytest.mark.parametrize("extra", [None, 0, 1, 2])
def test_every_kind_of_tiff_alpha_gives_straight_colours(tmp_path, bits, extra):
    """No ExtraSamples (OpenCV's own RGBA TIFFs) or 0: straight as stored; 1 (associated): stored premultiplied;
    2 (unassociated): stored straight, premultiplied by OpenCV's decoder. 8- and 16-bit."""
    rgba = rgba_sticker()
    stored = rgba.copy()
    if extra == 1:
        stored[..., :3] = np.round(rgba[..., :3] * (rgba[..., 3:] / 255.0)).astype(np.uint8)
    pixels = stored.astype(np.uint16) * 257 if bits == 16 else stored
    img, alpha, _ = read_photo_with_metadata(tiff_rgba(tmp_path / "in.tif", pixels, extra))
    assert alpha is not None and np.array_equal(alpha, rgba[..., 3])
    assert straight_close(img[..., ::-1], rgba[..., :3], alpha)


def test_a_gray_tiffs_and_a_bigtiffs_lost_alpha_is_said(tmp_path, caplog):
    Image.fromarray(rgba_sticker()[..., [0, 3]], "LA").save(tmp_path / "gray.tif")
    with caplog.at_level(logging.WARNING):
        img, alpha, _ = read_photo_with_metadata(tmp_path / "gray.tif")
    assert alpha is None and any("no alpha for a gray TIFF" in r.getMessage() for r in caplog.records)
    try:
        Image.fromarray(rgba_sticker()).save(tmp_path / "big.tif", big_tiff=True)
    except (TypeError, ValueError, OSError):
        pytest.skip("this Pillow writes no BigTIFF")
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        img, alpha, _ = read_photo_with_metadata(tmp_path / "big.tif")
    assert alpha is None and any("a BigTIFF's is not read" in r.getMessage() for r in caplog.records)


def test_transparency_goes_into_an_avif_output(tmp_path):
    if not codec_works(".avif"):
        pytest.skip("this OpenCV has no AVIF codec")
    src = tmp_path / "in.png"
    cv2.imwrite(str(src), cv2.cvtColor(rgba_sticker(), cv2.COLOR_RGBA2BGRA))
    assert translate(src, tmp_path / "out.avif").photos == 1
    out = cv2.imread(str(tmp_path / "out.avif"), cv2.IMREAD_UNCHANGED)
    assert out.shape == (24, 40, 4) and np.abs(out[..., 3].astype(int) - rgba_sticker()[..., 3]).max() <= 2


@pytest.mark.parametrize("depth", [8, 10, 12])
def test_a_deep_avif_keeps_its_transparency(tmp_path, depth):
    """A 10- or 12-bit AVIF decodes to 16-bit samples of that depth (not 65535-scaled): its alpha is scaled by the
    depth its boxes declare (it was dropped without a word)."""
    if not codec_works(".avif") or not hasattr(cv2, "IMWRITE_AVIF_DEPTH"):
        pytest.skip("this OpenCV has no AVIF codec")
    from cgan._images import heif_image

    bgra = cv2.cvtColor(rgba_sticker(), cv2.COLOR_RGBA2BGRA)
    if depth > 8:
        bgra = (bgra.astype(np.uint32) * ((1 << depth) - 1) // 255).astype(np.uint16)
    src = tmp_path / "in.avif"
    assert cv2.imwrite(str(src), bgra, [cv2.IMWRITE_AVIF_DEPTH, depth, cv2.IMWRITE_AVIF_QUALITY, 100])
    info = heif_image(src.read_bytes())
    assert info.has_alpha and info.depth == depth
    _, alpha, _ = read_photo_with_metadata(src)
    assert alpha is not None and np.abs(alpha.astype(int) - rgba_sticker()[..., 3]).max() <= 2


XMP_SAMPLE = (b'<?xpacket begin="\xef\xbb\xbf" id="W5M0MpCehiHzreSzNTczkc9d"?>'
              b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
              b'<rdf:Description rdf:about="" xmlns:xmp="http://ns.adobe.com/xap/1.0/" '
              b'xmlns:tiff="http://ns.adobe.com/tiff/1.0/" xmlns:exif="http://ns.adobe.com/exif/1.0/" '
              b'xmlns:crs="http://ns.adobe.com/camera-raw-settings/1.0/" xmlns:dc="http://purl.org/dc/elements/1.1/" '
              b'xmlns:hdrgm="http://ns.adobe.com/hdr-gain-map/1.0/" xmlns:GContainer="http://ns.google.com/photos/1.0/'
              b'container/" xmp:Rating="4" tiff:Orientation="6" exif:PixelXDimension="4000" crs:CropTop="0.1" '
              b'hdrgm:Version="1.0"><exif:PixelYDimension>3000</exif:PixelYDimension>'
              b'<dc:subject><rdf:Bag><rdf:li>yosemite</rdf:li><rdf:li>summer</rdf:li></rdf:Bag></dc:subject>'
              b'<dc:title><rdf:Alt><rdf:li xml:lang="x-default">Half Dome</rdf:li></rdf:Alt></dc:title>'
              b'<crs:ToneCurve><rdf:Seq><rdf:li>0, 0</rdf:li></rdf:Seq></crs:ToneCurve>'
              b'<GContainer:Directory><rdf:Seq><rdf:li rdf:parseType="Resource"/></rdf:Seq></GContainer:Directory>'
              b'</rdf:Description></rdf:RDF></x:xmpmeta><?xpacket end="w"?>')


def xmp_facts(packet: bytes) -> dict:
    """What a reader takes from an XMP packet: every property by namespace URI and name (attributes and elements),
    with its text or its list items."""
    import xml.etree.ElementTree as ET

    root = ET.fromstring(packet.strip(b"\x00 \n"))
    facts = {}
    for desc in root.iter("{http://www.w3.org/1999/02/22-rdf-syntax-ns#}Description"):
        facts.update({k: v for k, v in desc.attrib.items() if not k.endswith("}about")})
        for child in desc:
            items = [li.text for li in child.iter("{http://www.w3.org/1999/02/22-rdf-syntax-ns#}li")]
            facts[child.tag] = items or child.text
    return facts


def test_xmp_for_copy_keeps_what_describes_the_photo_and_makes_the_rest_true():
    from cgan._xmp import xmp_for_copy

    got = xmp_facts(xmp_for_copy(XMP_SAMPLE, (640, 480)))
    assert got == {"{http://ns.adobe.com/xap/1.0/}Rating": "4", "{http://ns.adobe.com/tiff/1.0/}Orientation": "1",
                   "{http://ns.adobe.com/exif/1.0/}PixelXDimension": "640",
                   "{http://ns.adobe.com/exif/1.0/}PixelYDimension": "480",
                   "{http://purl.org/dc/elements/1.1/}subject": ["yosemite", "summer"],
                   "{http://purl.org/dc/elements/1.1/}title": ["Half Dome"]}
    kept = xmp_facts(xmp_for_copy(XMP_SAMPLE, (640, 480), upright=False))
    assert kept["{http://ns.adobe.com/tiff/1.0/}Orientation"] == "6"  # the pixels were left as stored
    assert xmp_for_copy(b"<not xml", (1, 1)) is None and xmp_for_copy(b"<a/>", (1, 1)) is None


@pytest.mark.parametrize("src_ext", [".jpg", ".png", ".webp", ".avif"])
@pytest.mark.parametrize("dst_ext", [".jpg", ".png", ".webp", ".avif"])
def test_xmp_is_copied_and_made_true(tmp_path, src_ext, dst_ext):
    """Written by Pillow (an independent writer) into each format, read back by Pillow from each output: the
    keywords, title and rating are there, the orientation and size are the output's, develop settings and gain
    map descriptions are gone. (OpenCV 5.0 gives a JPEG's XMP with its segment header and reads no AVIF XMP; it
    writes a JPEG's without the header and a PNG's with bytes from past the packet.)"""
    for ext in (src_ext, dst_ext):
        if not codec_works(ext):
            pytest.skip(f"this OpenCV has no {ext} codec")
    from PIL import features

    if ".avif" in (src_ext, dst_ext) and not features.check("avif"):
        pytest.skip("this Pillow has no AVIF")
    src = tmp_path / f"in{src_ext}"
    fmt = {".jpg": "JPEG", ".png": "PNG", ".webp": "WEBP", ".avif": "AVIF"}[src_ext]
    options = {"xmp": XMP_SAMPLE}
    if fmt == "PNG":  # Pillow writes a PNG's XMP as the iTXt chunk Adobe names
        from PIL.PngImagePlugin import PngInfo

        options = {"pnginfo": PngInfo()}
        options["pnginfo"].add_itxt("XML:com.adobe.xmp", XMP_SAMPLE.decode("utf-8"))
    Image.fromarray(pattern(3, 40, 24)[:, :, ::-1].copy()).save(src, fmt, **options)
    assert photos.read_photo_with_metadata(src)[2].xmp, "the source's XMP is not read"
    dst = tmp_path / f"out{dst_ext}"
    assert translate(src, dst).photos == 1
    with Image.open(dst) as im:
        packet = im.info.get("xmp") or im.info.get("XML:com.adobe.xmp")
        size = im.size
    assert packet, "no XMP in the output"
    got = xmp_facts(packet.encode() if isinstance(packet, str) else packet)
    assert got["{http://purl.org/dc/elements/1.1/}subject"] == ["yosemite", "summer"]
    assert got["{http://purl.org/dc/elements/1.1/}title"] == ["Half Dome"]
    assert got["{http://ns.adobe.com/xap/1.0/}Rating"] == "4"
    assert got["{http://ns.adobe.com/tiff/1.0/}Orientation"] == "1"
    assert (got["{http://ns.adobe.com/exif/1.0/}PixelXDimension"],
            got["{http://ns.adobe.com/exif/1.0/}PixelYDimension"]) == (str(size[0]), str(size[1]))
    assert not [k for k in got if "camera-raw" in k or "gain-map" in k or "container" in k]


def test_xmp_goes_only_with_all(tmp_path):
    src = tmp_path / "in.jpg"
    Image.fromarray(pattern(3, 40, 24)).save(src, "JPEG", xmp=XMP_SAMPLE)
    for mode in ("color", "none"):
        translate(src, tmp_path / f"{mode}.png", metadata=mode)
        with Image.open(tmp_path / f"{mode}.png") as im:
            assert "XML:com.adobe.xmp" not in im.info and "xmp" not in im.info


def test_unreadable_xmp_is_left_out_and_said_once(tmp_path, caplog):
    import logging

    for i in range(2):
        Image.fromarray(pattern(i, 40, 24)).save(tmp_path / f"in{i}.jpg", "JPEG", xmp=b"<x:xmpmeta broken")
    with caplog.at_level(logging.WARNING):
        s = run_photos(PhotoJob(inputs=[tmp_path / "in0.jpg", tmp_path / "in1.jpg"], output=tmp_path / "out",
                                progress=False), translator=Invert())
    assert s.photos == 2 and sum("not XMP this can read" in r.getMessage() for r in caplog.records) == 1


@pytest.mark.parametrize("ext", [".jpg", ".png", ".webp", ".avif"])
def test_the_xmp_written_is_exactly_the_packet(ext):
    """Byte for byte, as a reader sees it: OpenCV 5.0's PNG chunk had 6 bytes from past the packet's end (a 704-byte
    packet came out 710), its JPEG segment no namespace header."""
    if not codec_works(ext):
        pytest.skip(f"this OpenCV has no {ext} codec")
    import io

    from cgan._images import heif_image
    from cgan._xmp import xmp_for_copy

    want = xmp_for_copy(XMP_SAMPLE, (40, 24))
    data = photos.encode_photo(pattern(1, 40, 24), ext, photos.PhotoMeta(xmp=XMP_SAMPLE))
    if ext == ".avif":
        assert heif_image(data).xmp == want
        return
    with Image.open(io.BytesIO(data)) as im:
        got = im.info.get("xmp") or im.info.get("XML:com.adobe.xmp")
    assert (got.encode("utf-8") if isinstance(got, str) else got) == want


def test_a_compressed_png_xmp_chunk_is_read(tmp_path):
    from PIL.PngImagePlugin import PngInfo

    from cgan._xmp import png_xmp

    info = PngInfo()
    info.add_itxt("XML:com.adobe.xmp", XMP_SAMPLE.decode("utf-8"), zip=True)
    Image.fromarray(pattern(1, 40, 24)).save(tmp_path / "z.png", "PNG", pnginfo=info)
    assert png_xmp((tmp_path / "z.png").read_bytes()) == XMP_SAMPLE


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_xmp_readers_never_raise_on_damaged_input(data):
    """A cut or damaged JPEG/PNG, or a damaged packet: the readers give what they can, the copy is None or XML."""
    import io

    from cgan._xmp import jpeg_xmp, png_xmp, xmp_for_copy

    which = data.draw(st.sampled_from(["JPEG", "PNG", "packet"]))
    if which == "packet":
        blob = bytearray(XMP_SAMPLE)
    else:
        buf = io.BytesIO()
        Image.fromarray(pattern(1, 16, 8)).save(buf, which, **({"xmp": XMP_SAMPLE} if which == "JPEG" else {}))
        blob = bytearray(buf.getvalue())
    for _ in range(data.draw(st.integers(0, 6))):
        blob[data.draw(st.integers(0, len(blob) - 1))] = data.draw(st.integers(0, 255))
    blob = bytes(blob[:data.draw(st.integers(0, len(blob)))])
    if which == "packet":
        out = xmp_for_copy(blob, (16, 8))
        assert out is None or b"xmpmeta" in out or b"RDF" in out
    else:
        jpeg_xmp(blob), png_xmp(blob)


def xmp_packet(description: bytes, extra_ns: bytes = b"") -> bytes:
    return (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"'
            + extra_ns + b">" + description + b"</rdf:RDF></x:xmpmeta>")


def test_xmp_packets_real_writers_make_are_read_right():
    """UTF-16 (with or without a BOM), a Latin-1 declaration, stray bytes after the packet (OpenCV 5.0's PNG chunks),
    a default namespace, and descriptions nested in a property (Photoshop's xmpMM:Pantry describes placed files:
    only the photo's own orientation changes)."""
    from cgan._xmp import xmp_for_copy

    want = xmp_facts(xmp_for_copy(XMP_SAMPLE, (640, 480)))
    for encoding in ("utf-16", "utf-16-le", "utf-16-be"):
        assert xmp_facts(xmp_for_copy(XMP_SAMPLE.decode("utf-8").encode(encoding), (640, 480))) == want, encoding
    assert xmp_facts(xmp_for_copy(XMP_SAMPLE + b"\xb0ik0w\x7f", (640, 480))) == want
    latin = b'<?xml version="1.0" encoding="ISO-8859-1"?>' + xmp_packet(
        b'<rdf:Description xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:creator>Jos\xe9</dc:creator>'
        b'</rdf:Description>')
    assert xmp_facts(xmp_for_copy(latin, (1, 1))) == {"{http://purl.org/dc/elements/1.1/}creator": "Jos\u00e9"}
    default = xmp_packet(b'<rdf:Description xmlns="http://ns.adobe.com/xap/1.0/" '
                         b'xmlns:xmp="http://ns.adobe.com/xap/1.0/" xmp:Rating="4"/>')
    assert xmp_facts(xmp_for_copy(default, (1, 1))) == {"{http://ns.adobe.com/xap/1.0/}Rating": "4"}
    pantry = xmp_packet(b'<rdf:Description xmlns:xmpMM="http://ns.adobe.com/xap/1.0/mm/" '
                        b'xmlns:tiff="http://ns.adobe.com/tiff/1.0/" tiff:Orientation="6"><xmpMM:Pantry><rdf:Bag>'
                        b'<rdf:li><rdf:Description tiff:Orientation="8"/></rdf:li></rdf:Bag></xmpMM:Pantry>'
                        b'</rdf:Description>')
    out = xmp_for_copy(pantry, (1, 1))
    assert out.count(b'tiff:Orientation="1"') == 1 and out.count(b'tiff:Orientation="8"') == 1


def test_xmp_leaves_elementtree_s_prefixes_alone():
    """ElementTree's prefix registry is the whole process's: writer threads changing it under each other made
    packets with two namespaces on one prefix. The copy is written with its own prefixes and changes nothing."""
    import xml.etree.ElementTree as ET

    from cgan._xmp import xmp_for_copy

    before = dict(ET._namespace_map)
    swapped = XMP_SAMPLE.replace(b'xmlns:xmp="http://ns.adobe.com/xap/1.0/"', b'xmlns:xmp="http://example.com/x"')
    assert xmp_for_copy(XMP_SAMPLE, (1, 1)) and xmp_for_copy(swapped, (1, 1))
    assert ET._namespace_map == before


def test_a_hostile_xmp_is_left_out_and_the_run_goes_on(tmp_path, caplog):
    """3000 nested elements (the writer would run out of recursion: it stopped the whole run), and a 200 KB PNG
    whose compressed XMP inflates to 200 MB (held in memory for nothing): both left out with a warning."""
    import logging
    import zlib

    from cgan._xmp import png_xmp

    deep = xmp_packet(b"<a>" * 3000 + b"</a>" * 3000)
    Image.fromarray(pattern(1, 40, 24)).save(tmp_path / "deep.jpg", "JPEG", xmp=deep)
    Image.fromarray(pattern(2, 40, 24)).save(tmp_path / "fine.jpg", "JPEG", xmp=XMP_SAMPLE)
    bomb = b"XML:com.adobe.xmp\x00\x01\x00\x00\x00" + zlib.compress(b" " * (200 << 20), 9)
    png = io.BytesIO()
    Image.fromarray(pattern(3, 40, 24)).save(png, "PNG")
    data = png.getvalue()
    chunk = len(bomb).to_bytes(4, "big") + b"iTXt" + bomb + zlib.crc32(b"iTXt" + bomb).to_bytes(4, "big")
    (tmp_path / "bomb.png").write_bytes(data[:33] + chunk + data[33:])
    assert png_xmp((tmp_path / "bomb.png").read_bytes()) is None
    with caplog.at_level(logging.WARNING):
        s = run_photos(PhotoJob(inputs=[tmp_path / "deep.jpg", tmp_path / "fine.jpg", tmp_path / "bomb.png"],
                                output=tmp_path / "out", progress=False), translator=Invert())
    assert s.photos == 3 and sum("not XMP this can read" in r.getMessage() for r in caplog.records) == 1
    with Image.open(tmp_path / "out" / "fine.jpg") as im:
        assert b"Half Dome" in im.info["xmp"]


@pytest.mark.parametrize("order", [">", "<"])
@pytest.mark.parametrize("dst_ext", [".jpg", ".png", ".webp"])
def test_a_tiffs_profile_exif_and_xmp_are_copied(tmp_path, order, dst_ext):
    """OpenCV reads no TIFF's metadata: a TIFF from a raw converter or a scanner (Adobe RGB, ProPhoto) lost its
    profile and EXIF data without a word. Its orientation is turned once: OpenCV 5.1 turns TIFFs even when asked
    not to, so both decodes looked the same and the pixels were taken as stored; the tag 6 was kept on upright
    pixels and viewers turned them again. Written by Pillow (EXIF tags in IFD0 with an Exif sub-IFD, the profile
    and an XMP packet as TIFF tags; Pillow 12 writes a TIFF's GPS sub-IFD pointing at the pixels, so none here),
    read back by Pillow."""
    rgb = pattern(3, 40, 24)[:, :, ::-1].copy()
    exif = Image.Exif()
    exif.load(exif_blob(order, orientation=6))
    exif[700] = XMP_SAMPLE  # (Pillow writes the TIFF tags it is given with the EXIF data)
    src = tmp_path / "scan.tif"
    Image.fromarray(rgb).save(src, "TIFF", exif=exif, icc_profile=icc_profile(),
                              **({"byteorder": order} if order == "<" else {}))
    dst = tmp_path / f"out{dst_ext}"
    assert translate(src, dst).photos == 1
    got, icc = exif_of(dst)
    assert icc == icc_profile()
    assert got.get(MAKE) == "Nikon" and got.get(ORIENTATION) == 1  # (OpenCV turned the pixels upright)
    assert got.get_ifd(EXIF_IFD).get(DATE_ORIGINAL) == "2024:07:01 12:00:00"
    assert not got.get(0x0111) and not got.get(0x0103)  # no strip offsets, no compression: not the TIFF's pixels
    with Image.open(dst) as im:
        assert (got.get_ifd(EXIF_IFD).get(PIXEL_X), got.get_ifd(EXIF_IFD).get(PIXEL_Y)) == im.size
        packet = im.info.get("xmp") or im.info.get("XML:com.adobe.xmp")
    assert xmp_facts(packet.encode() if isinstance(packet, str) else packet)[
        "{http://purl.org/dc/elements/1.1/}subject"] == ["yosemite", "summer"]
    # shown as the TIFF is: its stored pixels turned once by orientation 6. This compared against Pillow's reading
    # turned again, and Pillow 13 turns a TIFF as it opens it: the output, shown turned twice, passed
    before = np.rot90(rgb.astype(np.int16), -1)
    after = shown(dst)
    assert before.shape == after.shape == (40, 24, 3)
    assert np.abs((255 - before) - after).mean() < 8
    assert translate(src, tmp_path / f"bare{dst_ext}", metadata="color").photos == 1
    got, icc = exif_of(tmp_path / f"bare{dst_ext}")
    assert icc == icc_profile() and got.get(MAKE) is None
    assert translate(src, tmp_path / f"none{dst_ext}", metadata="none").photos == 1
    assert exif_of(tmp_path / f"none{dst_ext}")[1] is None  # (the profile went along with "none" too)


def test_a_huge_tiff_description_does_not_take_the_exif_with_it(tmp_path):
    """An ImageJ or OME-TIFF keeps megabytes of text in ImageDescription: in the rebuilt EXIF it made it too large
    for a JPEG, and the camera, date and GPS were left out with it."""
    exif = Image.Exif()
    exif.load(exif_blob(">", orientation=1))
    exif[0x010E] = "x" * 200_000  # ImageDescription
    src = tmp_path / "ome.tif"
    Image.fromarray(pattern(3, 40, 24)[:, :, ::-1].copy()).save(src, "TIFF", exif=exif)
    assert translate(src, tmp_path / "out.jpg").photos == 1
    got, _ = exif_of(tmp_path / "out.jpg")
    assert got.get(MAKE) == "Nikon" and got.get_ifd(EXIF_IFD).get(DATE_ORIGINAL) == "2024:07:01 12:00:00"
    assert got.get(0x010E) is None


def test_tiff_metadata_never_raises_on_damaged_files():
    from cgan._images import tiff_metadata

    buf = io.BytesIO()
    exif = Image.Exif()
    exif.load(exif_blob(">"))
    Image.fromarray(pattern(1, 8, 8)).save(buf, "TIFF", exif=exif, icc_profile=icc_profile())
    good = buf.getvalue()
    assert tiff_metadata(good).icc == icc_profile()
    rng = np.random.default_rng(0)
    for n in range(300):
        bad = bytearray(good)
        if n % 2:
            bad = bad[:int(rng.integers(4, len(good)))]
        for at in rng.integers(4, len(bad), 8):
            bad[at] = int(rng.integers(0, 256))
        tiff_metadata(bytes(bad))  # any result, never an exception


@pytest.mark.parametrize("space", [b"GRAY", b"CMYK"])
def test_a_gray_or_cmyk_profile_is_not_put_on_the_rgb_translation(tmp_path, caplog, space):
    """A black-and-white export's gray profile (or a print JPEG's CMYK one) on the RGB output made an invalid file:
    libpng refuses an RGB PNG with a gray profile, colour managers cannot build a transform."""
    icc = bytearray(icc_profile())
    icc[16:20] = space
    src = save(tmp_path / "bw.jpg", pattern(2, 40, 24)[:, :, ::-1].copy(), exif_blob(orientation=1), bytes(icc))
    caplog.set_level(logging.WARNING)
    for ext in (".png", ".jpg"):
        assert translate(src, tmp_path / f"out{ext}").photos == 1
        got, got_icc = exif_of(tmp_path / f"out{ext}")
        assert got_icc is None and got.get(MAKE) == "Nikon"  # the rest of the metadata goes along
    said = [r.message for r in caplog.records if "ICC profile does not describe" in r.message]
    assert len(said) == 2 and space.decode() in said[0]
