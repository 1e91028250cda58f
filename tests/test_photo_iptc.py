"""IPTC-IIM (captions, keywords, credit, copyright in a JPEG's APP13 "Photoshop 3.0" segment) copied into a
translated JPEG without the preview of the untranslated photo and Photoshop's other image resources, with the IPTC
digest kept true; other formats are written without it and that is said once. Checked with Pillow, an independent
reader of APP13."""
from __future__ import annotations

import hashlib
import io
import logging
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cgan import _iptc
from cgan.runtime import photos
from cgan.runtime.photos import PhotoJob, run_photos

from _helpers_video import Invert, pattern

Image = pytest.importorskip("PIL.Image")
IptcImagePlugin = pytest.importorskip("PIL.IptcImagePlugin")
pytestmark = pytest.mark.skipif(not photos.CAN_COPY_METADATA, reason="this OpenCV cannot copy photo metadata")

THUMBNAIL, RESOLUTION = 0x040C, 0x03ED


def dataset(rec: int, num: int, value: bytes) -> bytes:
    if len(value) < 0x8000:
        return bytes((0x1C, rec, num)) + len(value).to_bytes(2, "big") + value
    return bytes((0x1C, rec, num, 0x80, 0x04)) + len(value).to_bytes(4, "big") + value


CAPTION = "Half Dome at dawn — Yosemite".encode()
RECORD = (dataset(1, 90, b"\x1b%G") + dataset(2, 0, b"\x00\x04") + dataset(2, 120, CAPTION)
          + dataset(2, 25, b"winter") + dataset(2, 25, b"Yosemite") + dataset(2, 116, b"(c) 2026 A. Photographer")
          + dataset(2, 200, b"\x00\x0b") + dataset(2, 202, b"\xff\xd8SUMMER PREVIEW" * 100)
          + dataset(7, 10, b"\x00") + dataset(8, 10, b"OBJECT DATA"))


def resource(rid: int, data: bytes, name: bytes = b"") -> bytes:
    pascal = bytes((len(name),)) + name
    pascal += b"\x00" * (len(pascal) & 1)
    return b"8BIM" + rid.to_bytes(2, "big") + pascal + len(data).to_bytes(4, "big") + data + b"\x00" * (len(data) & 1)


def irb(record: bytes = RECORD, digest: bytes | None = None) -> bytes:
    return (resource(RESOLUTION, b"\x00\x48\x00\x00\x00\x01\x00\x01" * 2, b"res") + resource(0x0404, record)
            + (resource(0x0425, digest) if digest is not None else b"") + resource(THUMBNAIL, b"\xff\xd8THUMB"))


def jpeg_with_app13(path: Path, resources: bytes, split: int | None = None) -> Path:
    """A Pillow JPEG with `resources` in APP13 "Photoshop 3.0" segments (split every `split` bytes, as Photoshop
    does for more than one segment holds) right after its APP0."""
    buf = io.BytesIO()
    Image.fromarray(pattern(3, 40, 24)).save(buf, "JPEG", quality=95)
    jpeg = buf.getvalue()
    parts = [resources[i:i + split] for i in range(0, len(resources), split)] if split else [resources]
    segments = b"".join(b"\xff\xed" + (2 + 14 + len(p)).to_bytes(2, "big") + b"Photoshop 3.0\x00" + p for p in parts)
    at = 4 + int.from_bytes(jpeg[4:6], "big")  # after SOI and APP0
    path.write_bytes(jpeg[:at] + segments + jpeg[at:])
    return path


def translate(src: Path, dst: Path, metadata: str = "all") -> photos.PhotoSummary:
    return run_photos(PhotoJob(inputs=[src], output=dst, metadata=metadata, progress=False), translator=Invert())


def pillow_iptc(path: Path) -> tuple[dict, dict | None]:
    with Image.open(path) as im:
        return dict(im.info.get("photoshop") or {}), IptcImagePlugin.getiptcinfo(im)


@pytest.mark.parametrize("digest", ["matching", "stale", None])
def test_iptc_is_copied_without_the_preview_and_the_digest_kept_true(tmp_path, digest):
    given_digest = {"matching": hashlib.md5(RECORD).digest(), "stale": b"\x11" * 16, None: None}[digest]
    src = jpeg_with_app13(tmp_path / "in.jpg", irb(digest=given_digest))
    resources, iptc = pillow_iptc(src)
    assert iptc[(2, 120)] == CAPTION and (2, 202) in iptc and THUMBNAIL in resources  # the photo as made
    # and as Photoshop writes more than a segment holds: split over several (Pillow reads each on its own)
    split = jpeg_with_app13(tmp_path / "split.jpg", irb(digest=given_digest), split=700)
    translate(split, tmp_path / "out.jpg")
    resources, iptc = pillow_iptc(tmp_path / "out.jpg")
    assert iptc[(2, 120)] == CAPTION and iptc[(2, 25)] == [b"winter", b"Yosemite"]
    assert iptc[(1, 90)] == b"\x1b%G" and iptc[(2, 116)] == b"(c) 2026 A. Photographer"
    assert not [k for k in iptc if k[0] >= 7 or k in ((2, 200), (2, 202))], "the preview or object data went along"
    assert set(resources) == ({0x0404, 0x0425} if digest else {0x0404}), "Photoshop's other resources went along"
    if digest == "matching":
        assert resources[0x0425] == hashlib.md5(resources[0x0404]).digest() != given_digest
    elif digest == "stale":
        assert resources[0x0425] == given_digest


def test_iptc_goes_only_with_all_and_only_into_jpegs(tmp_path, caplog):
    src = jpeg_with_app13(tmp_path / "in.jpg", irb())
    for mode in ("color", "none"):
        translate(src, tmp_path / f"{mode}.jpg", metadata=mode)
        assert pillow_iptc(tmp_path / f"{mode}.jpg") == ({}, None)
    with caplog.at_level(logging.WARNING):
        s = translate(src, tmp_path / "out.png")
    assert s.photos == 1 and "photoshop" not in Image.open(tmp_path / "out.png").info
    said = [r.getMessage() for r in caplog.records if "IPTC" in r.getMessage()]
    assert len(said) == 1 and "JPEG outputs only" in said[0]


def test_damaged_iptc_is_left_out_and_said_and_a_photo_without_it_writes_none(tmp_path, caplog):
    bad = jpeg_with_app13(tmp_path / "bad.jpg", irb(record=RECORD[:40] + b"\x00\x02" + RECORD[40:]))
    with caplog.at_level(logging.WARNING):
        s = translate(bad, tmp_path / "bad_out.jpg")
    assert s.photos == 1 and pillow_iptc(tmp_path / "bad_out.jpg") == ({}, None)
    assert sum("not IPTC-IIM this can read" in r.getMessage() for r in caplog.records) == 1
    only_res = jpeg_with_app13(tmp_path / "res.jpg", resource(RESOLUTION, b"\x00" * 16))  # Photoshop data, no IPTC
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        translate(only_res, tmp_path / "res_out.png")
        translate(only_res, tmp_path / "res_out.jpg")
    assert pillow_iptc(tmp_path / "res_out.jpg") == ({}, None) and not caplog.records


def test_a_record_of_previews_only_writes_no_segment(tmp_path):
    src = jpeg_with_app13(tmp_path / "in.jpg", irb(record=dataset(2, 202, b"\xff\xd8x") + dataset(8, 10, b"y")))
    translate(src, tmp_path / "out.jpg")
    assert b"Photoshop 3.0" not in (tmp_path / "out.jpg").read_bytes()


def test_iptc_for_copy_round_trips_extended_datasets():
    long_caption = b"x" * 40000  # over 32767 bytes: an extended dataset
    record = dataset(2, 120, long_caption) + dataset(2, 5, b"title") + b"\x00\x00"  # trailing padding allowed
    out = _iptc.iptc_for_copy(resource(0x0404, record))
    found = dict(_iptc.resources(out))
    assert _iptc.datasets(found[0x0404]) == [(2, 120, long_caption), (2, 5, b"title")]
    assert _iptc.iptc_for_copy(resource(0x0404, b"\x1c\x02")) is None  # cut short
    assert _iptc.iptc_for_copy(resource(0x0403, b"abc")) == b""  # no IPTC record


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_the_iptc_reader_never_raises_on_damaged_input(data):
    buf = io.BytesIO()
    Image.fromarray(pattern(1, 16, 8)).save(buf, "JPEG")
    jpeg = buf.getvalue()
    blob = bytearray(jpeg[:20] + b"\xff\xed" + (16 + len(irb())).to_bytes(2, "big") + b"Photoshop 3.0\x00" + irb()
                     + jpeg[20:])
    for _ in range(data.draw(st.integers(0, 8))):
        blob[data.draw(st.integers(0, len(blob) - 1))] = data.draw(st.integers(0, 255))
    blob = bytes(blob[:data.draw(st.integers(0, len(blob)))])
    found = _iptc.jpeg_photoshop(blob)
    if found is not None:
        out = _iptc.iptc_for_copy(found)
        assert out is None or out == b"" or out.startswith(b"8BIM\x04\x04")


def test_iptc_over_one_segment_goes_on_in_the_next_as_photoshop_writes_it(tmp_path, caplog):
    """A 70 KB caption (an extended dataset) does not fit one APP13 segment: written over consecutive ones,
    which readers join (it was left out with advice to write .png, which takes no IPTC)."""
    caption = ("winter " * 10000).encode()
    src = jpeg_with_app13(tmp_path / "in.jpg", irb(record=dataset(2, 120, caption) + dataset(2, 25, b"snow")),
                          split=60000)
    with caplog.at_level(logging.WARNING):
        translate(src, tmp_path / "out.jpg")
    assert not caplog.records
    data = (tmp_path / "out.jpg").read_bytes()
    segments, i = [], 2  # the APP13 segments, by hand
    while data[i] == 0xFF and data[i + 1] != 0xDA:
        length = int.from_bytes(data[i + 2:i + 4], "big")
        if data[i + 1] == 0xED:
            segments.append(data[i + 4:i + 2 + length])
        i += 2 + length
    assert len(segments) == 2 and all(s.startswith(b"Photoshop 3.0\x00") for s in segments)
    joined = b"".join(s[14:] for s in segments)
    assert _iptc.datasets(dict(_iptc.resources(joined))[0x0404]) == [(2, 120, caption), (2, 25, b"snow")]
