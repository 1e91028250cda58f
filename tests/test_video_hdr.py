"""HDR video (HLG, an iPhone's default; PQ / HDR10) is tone mapped to the SDR pictures the generators know.

The clips here are made from a known SDR picture by the inverse of each step (written here, apart from
cgan.runtime.hdr): SDR display light -> BT.2020 -> nits with SDR white at 203 (BT.2408) -> PQ or HLG -> 10-bit
HEVC tagged as such. Read back, the picture must be the SDR one again, where OpenCV's own read is far off."""
from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np
import pytest

from cgan.runtime import hdr, pyav
from cgan.runtime.sources import CaptureSource, open_source, parse_input
from cgan.runtime.video import VideoJob, run_video

from _helpers_video import Invert, mux_frames

av = pytest.importorskip("av")

#: BT.2087: linear BT.709 RGB -> linear BT.2020 RGB
BT709_TO_2020 = np.array([[0.6274, 0.3293, 0.0433], [0.0691, 0.9195, 0.0114], [0.0164, 0.0880, 0.8956]])
TRC = {"HLG": 18, "PQ / HDR10": 16}
#: flat 16x16 patches (BGR): grey, skin, sky, foliage, red, light grey, dark, near black; then brighter ones
PATCHES = [(128, 128, 128), (150, 170, 215), (220, 170, 110), (60, 140, 70), (40, 40, 200), (200, 200, 200),
           (50, 60, 70), (12, 12, 12)]


def scene() -> np.ndarray:
    img = np.zeros((32, 64, 3), np.uint8)
    for k, bgr in enumerate(PATCHES):
        img[(k // 4) * 16:(k // 4) * 16 + 16, (k % 4) * 16:(k % 4) * 16 + 16] = bgr
    return img


def interiors(img: np.ndarray) -> np.ndarray:
    """The patches less a 2-pixel border (where 4:2:0 chroma mixes neighbours), as (patches, pixels, 3)."""
    return np.stack([img[(k // 4) * 16 + 2:(k // 4) * 16 + 14, (k % 4) * 16 + 2:(k % 4) * 16 + 14].reshape(-1, 3)
                     for k in range(len(PATCHES))])


def hdr_signal(bgr: np.ndarray, transfer: str, white_nits: float = 203.0) -> np.ndarray:
    """SDR BGR (uint8) -> the 16-bit non-linear BT.2020 RGB an HDR camera would have recorded for it."""
    display = (bgr[..., ::-1].astype(np.float64) / 255.0) ** 2.4  # BT.1886 display light, SDR white = 1
    nits = (display @ BT709_TO_2020.T) * white_nits
    if transfer == "PQ / HDR10":
        m1, m2, c1, c2, c3 = 2610 / 16384, 2523 / 32, 3424 / 4096, 2413 / 128, 2392 / 128
        y = np.power(nits / 10000.0, m1)
        signal = np.power((c1 + c2 * y) / (1 + c3 * y), m2)
    else:  # HLG: the OOTF undone for a 1000-nit display, then the OETF
        yd = np.maximum(nits @ np.array([0.2627, 0.6780, 0.0593]), 1e-9)
        ys = (yd / 1000.0) ** (1 / 1.2)
        e = nits / (1000.0 * ys[..., None] ** 0.2)
        a, b = 0.17883277, 1 - 4 * 0.17883277
        c = 0.5 - a * np.log(4 * a)
        signal = np.where(e <= 1 / 12, np.sqrt(3 * e), a * np.log(np.maximum(12 * e - b, 1e-9)) + c)
    return np.round(np.clip(signal, 0, 1) * 65535).astype(np.uint16)


def hdr_clip(path: Path, rgb16: np.ndarray, transfer: str, frames: int = 3) -> Path:
    try:
        av.codec.Codec("libx265", "w")
    except Exception:  # noqa: BLE001
        pytest.skip("this PyAV has no HEVC encoder")
    h, w = rgb16.shape[:2]
    with av.open(str(path), "w") as out:
        s = out.add_stream("libx265", rate=12, options={"x265-params": "log-level=none:lossless=1"})
        s.width, s.height, s.pix_fmt = w, h, "yuv420p10le"
        s.codec_context.color_trc = TRC[transfer]
        s.codec_context.color_primaries = s.codec_context.colorspace = 9  # BT.2020
        picture = av.VideoFrame.from_ndarray(rgb16, format="rgb48le").reformat(format="yuv420p10le",
                                                                             dst_colorspace="bt2020")
        mux_frames(out, s, [picture] * frames)
    return path


def first_frame(source) -> np.ndarray:
    frame = source.read()
    source.close()
    return frame


@pytest.mark.parametrize("transfer", hdr.TRANSFERS)
def test_an_hdr_file_reads_back_as_its_sdr_picture(tmp_path, transfer):
    sdr = scene()
    clip = hdr_clip(tmp_path / "hdr.mp4", hdr_signal(sdr, transfer), transfer)
    want = interiors(sdr).astype(int)
    ours = pyav.FileSource(parse_input(str(clip)), transfer)
    got = interiors(first_frame(ours)).astype(int)
    assert np.abs(got - want).max() <= 4, np.abs(got - want).max(axis=(1, 2))
    # whichever makes it SDR here (OpenCV 5 does it itself, OpenCV 4 does not: then ours)
    got = interiors(first_frame(open_source(str(clip)))).astype(int)
    assert np.abs(got - want).mean() <= 3 and np.abs(got - want).max() <= 10
    # its values taken as SDR (what OpenCV 4 and PyAV's own conversion give): far off, most of all in colour
    with av.open(str(clip)) as c:
        plain = interiors(next(c.decode(video=0)).to_ndarray(format="bgr24")).astype(int)
    assert np.abs(plain - want).mean() > 12


@pytest.mark.parametrize("opencv_does_it", [False, True])
def test_the_reader_is_chosen_by_what_opencv_does(tmp_path, monkeypatch, caplog, opencv_does_it):
    clip = hdr_clip(tmp_path / "hdr.mp4", hdr_signal(scene(), "HLG"), "HLG")
    monkeypatch.setattr(pyav, "opencv_manages_colour", lambda: opencv_does_it)
    with caplog.at_level(logging.INFO):
        src = open_source(str(clip))
    src.close()
    if opencv_does_it:
        assert isinstance(src, CaptureSource) and src.tone_mapped_by == "OpenCV"
        assert "converted to SDR by OpenCV" in caplog.text
    else:
        assert isinstance(src, pyav.FileSource) and src.tone_mapped_by == "cgan"
        assert isinstance(src._tonemap, hdr.ToneMap)
        assert "tone mapped to SDR BT.709" in caplog.text


def test_the_check_of_opencv_says_what_opencv_does(tmp_path):
    """pyav.opencv_manages_colour() (a 16x16 reference-white frame) against OpenCV's read of a real scene."""
    sdr = scene()
    clip = hdr_clip(tmp_path / "hdr.mp4", hdr_signal(sdr, "HLG"), "HLG")
    cap = cv2.VideoCapture(str(clip), cv2.CAP_FFMPEG)
    ok, frame = cap.read()
    cap.release()
    assert ok
    close = np.abs(interiors(frame).astype(int) - interiors(sdr).astype(int)).mean() < 5
    assert pyav.opencv_manages_colour() == close, cv2.__version__


@pytest.mark.parametrize("transfer", hdr.TRANSFERS)
def test_highlights_roll_off_in_order_and_keep_their_hue(transfer):
    tm = hdr.ToneMap(transfer)
    grey = np.full((1, 1, 3), 200, np.uint8)
    levels = [tm(hdr_signal(grey, transfer, nits))[0, 0, 0] for nits in (203, 400, 600, 1000)]
    assert levels[0] < levels[1] < levels[2] < levels[3] <= 255, levels  # brighter stays brighter, none clipped
    orange = np.array([[[60, 150, 240]]], np.uint8)  # BGR
    hot = tm(hdr_signal(orange, transfer, 800.0))[0, 0].astype(int)
    assert hot[2] > hot[1] > hot[0] and hot[2] <= 255  # still orange: red > green > blue


def test_reference_values():
    assert float(hdr.pq_to_nits(np.array(0.5806))) == pytest.approx(203, abs=0.5)  # BT.2408's PQ 58 %
    white = {t: hdr.ToneMap(t)(np.full((2, 2, 3), round(s * 65535), np.uint16))[0, 0]
             for t, s in (("HLG", 0.75), ("PQ / HDR10", 0.5806))}  # HDR reference white in each
    assert (white["HLG"] == white["PQ / HDR10"]).all() and white["HLG"][0] >= 240
    ramp = np.repeat(np.linspace(0, 65535, 512).astype(np.uint16)[None, :, None], 3, axis=2)
    for t in hdr.TRANSFERS:
        out = hdr.ToneMap(t)(ramp)[0, :, 0].astype(int)
        assert out[0] == 0 and out[-1] == 255 and (np.diff(out) >= 0).all()
    with pytest.raises(ValueError, match="no tone mapping"):
        hdr.ToneMap("gamma 2.2")


@pytest.mark.parametrize("opencv_does_it", [False, True])
def test_a_run_says_it_made_hdr_sdr_and_does_not_warn(tmp_path, monkeypatch, caplog, opencv_does_it):
    if opencv_does_it and not pyav.opencv_manages_colour():
        pytest.skip(f"OpenCV {cv2.__version__} reads HDR values as SDR ones")
    monkeypatch.setattr(pyav, "opencv_manages_colour", lambda: opencv_does_it)
    clip = hdr_clip(tmp_path / "hdr.mp4", hdr_signal(scene(), "HLG"), "HLG", frames=4)
    with caplog.at_level(logging.INFO):
        s = run_video(VideoJob(inputs=[str(clip)], output=str(tmp_path / "o.mp4"), display=False, progress=False,
                               handle_signals=False), translator=Invert())
    assert s.frames == 4
    said = [r for r in caplog.records if "HDR" in r.getMessage()]
    assert len(said) == 1 and said[0].levelno == logging.INFO and "to SDR" in said[0].getMessage()
    src = open_source(str(tmp_path / "o.mp4"))  # by its BT.709 tags, whichever OpenCV
    frame = src.read()
    src.close()
    err = np.abs(interiors(frame).astype(int) - (255 - interiors(scene()).astype(int)))
    assert err.mean() <= 4 and err.max() <= 14  # through H.264 at CRF 20 too
