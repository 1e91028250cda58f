"""Video files OpenCV's FFmpeg cannot decode (AV1: the OpenCV wheels have no decoder for it) are read with PyAV:
same frames, same turning by the display matrix, sound copied; what neither can read keeps its one-line error."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from cgan.errors import IntegrityError
from cgan.runtime import pyav, sources
from cgan.runtime.sources import open_source
from cgan.runtime.video import VideoJob, run_video

from _helpers_video import (DISPLAY_MATRICES, Invert, make_clip, mux_frames, pattern, probe, raw_h264,
                            with_display_matrix)

av = pytest.importorskip("av")


def job(**kw) -> VideoJob:
    return VideoJob(display=False, progress=False, handle_signals=False, **kw)


def av1_clip(path: Path, n: int = 8, sound: bool = True) -> Path:
    """An AV1 clip (SVT-AV1) of pattern frames at 12 fps, with an AAC tone."""
    try:
        av.codec.Codec("libsvtav1", "w")
    except Exception:  # noqa: BLE001
        pytest.skip("this PyAV has no AV1 encoder")
    with av.open(str(path), "w") as out:
        v = out.add_stream("libsvtav1", rate=12, options={"preset": "12"})
        v.width, v.height, v.pix_fmt = 64, 48, "yuv420p"
        a = out.add_stream("aac", rate=16000, layout="mono") if sound else None
        for i in range(n):
            for p in v.encode(av.VideoFrame.from_ndarray(pattern(i), format="bgr24")):
                out.mux(p)
        if a is not None:
            t = 0
            while t < n * 16000 // 12:
                samples = 0.3 * np.sin(np.arange(t, t + 1024) / 16000 * 2 * np.pi * 440)
                frame = av.AudioFrame.from_ndarray(samples.astype(np.float32)[None, :], format="flt", layout="mono")
                frame.sample_rate, frame.pts = 16000, t
                for p in a.encode(frame):
                    out.mux(p)
                t += 1024
            for p in a.encode(None):
                out.mux(p)
        for p in v.encode(None):
            out.mux(p)
    return path


def test_an_av1_file_is_translated_with_its_sound(tmp_path):
    clip = av1_clip(tmp_path / "in.mp4")
    out = tmp_path / "out.mp4"
    s = run_video(job(inputs=[str(clip)], output=str(out)), translator=Invert())
    assert s.frames == 8 and s.streams[0]["size"] == [64, 48] and s.streams[0]["sound"] == "aac"
    assert probe(out)[0] == 8
    cap = cv2.VideoCapture(str(out))
    _, first = cap.read()
    cap.release()
    assert np.abs(first.astype(np.int16) - (255 - pattern(0).astype(np.int16))).mean() < 12


def test_the_fallback_gives_opencvs_frames_turned_as_opencv_turns_them(tmp_path, monkeypatch):
    """A file OpenCV reads, forced through the PyAV path: the same frames, and a portrait phone clip (rotation
    in its track header) turned the same way."""
    clip = make_clip(tmp_path / "in.mp4", 6, (64, 48))
    turned = with_display_matrix(clip, tmp_path / "portrait.mp4", DISPLAY_MATRICES["quarter clockwise"])
    for path in (clip, turned):
        expected = []
        cap = cv2.VideoCapture(str(path))
        while True:
            ok, f = cap.read()
            if not ok:
                break
            expected.append(f)
        cap.release()

        def refuse(*a, **k):
            raise IntegrityError("OpenCV cannot decode it (forced)")

        monkeypatch.setattr(sources, "CaptureSource", refuse)
        src = open_source(str(path))
        monkeypatch.undo()
        assert isinstance(src, pyav.FileSource) and not src.live and src.fps == pytest.approx(12.0)
        got = []
        while (f := src.read()) is not None:
            got.append(f)
        src.close()
        assert len(got) == len(expected) == 6
        for a, b in zip(got, expected):
            assert a.shape == b.shape and np.abs(a.astype(np.int16) - b.astype(np.int16)).mean() < 2


def test_what_neither_can_read_keeps_its_error(tmp_path, monkeypatch):
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8)
    with pytest.raises(IntegrityError, match="cannot decode|no decodable frames"):
        open_source(str(junk))
    clip = av1_clip(tmp_path / "in.mkv", sound=False)
    if cv2.VideoCapture(str(clip)).read()[0]:
        pytest.skip("this OpenCV decodes AV1 itself")
    monkeypatch.setattr(pyav, "_av", lambda: None)  # no PyAV: OpenCV's one-line error, as before
    with pytest.raises(IntegrityError, match="no decodable frames|cannot decode"):
        open_source(str(clip))


@pytest.mark.parametrize("transfer, said", [(18, "HLG"), (16, "PQ / HDR10"), (1, None)])
def test_hdr_video_left_unmapped_is_said_to_need_tone_mapping(tmp_path, caplog, monkeypatch, transfer, said):
    """An iPhone records HLG HDR by default: read without tone mapping its pictures are flat and pale, so a run
    that could not tone map it says so (with the ffmpeg line that converts it); SDR (BT.709) says nothing."""
    try:
        av.codec.Codec("libx265", "w")
    except Exception:  # noqa: BLE001
        pytest.skip("this PyAV has no HEVC encoder")
    clip = tmp_path / "in.mp4"
    with av.open(str(clip), "w") as out:
        s = out.add_stream("libx265", rate=12, options={"x265-params": "log-level=none"})
        s.width, s.height, s.pix_fmt = 64, 48, "yuv420p10le"
        s.codec_context.color_trc = transfer
        s.codec_context.color_primaries = 9 if said else 1
        s.codec_context.colorspace = 9 if said else 1
        for i in range(3):
            frame = av.VideoFrame.from_ndarray(pattern(i), format="bgr24").reformat(format="yuv420p10le")
            for p in s.encode(frame):
                out.mux(p)
        for p in s.encode(None):
            out.mux(p)
    # made SDR (tests/test_video_hdr.py) unless neither OpenCV nor cgan's tone mapping can read it: then warned
    monkeypatch.setattr(pyav, "opencv_manages_colour", lambda: False)
    monkeypatch.setattr(pyav, "open_file_source", lambda spec, hdr=None: None)
    s = run_video(job(inputs=[str(clip)], output=str(tmp_path / "out.mp4")), translator=Invert())
    assert s.frames == 3
    warned = [r.getMessage() for r in caplog.records if "HDR" in r.getMessage()]
    if said:
        assert len(warned) == 1 and f"HDR video ({said})" in warned[0] and "tonemap" in warned[0]
    else:
        assert not warned


@pytest.mark.parametrize("ext", [".mkv", ".mp4", ".mov"])
def test_the_main_video_stream_is_translated_not_a_cover_picture_before_it(tmp_path, ext):
    """A file whose first video stream is a one-frame cover or thumbnail and the video second: OpenCV reads the
    first stream, so the output was that one picture. The longest video stream is read instead (FFmpeg's best
    pick follows the default disposition, which MP4 and MOV give their first track: it chose the thumbnail)."""
    clip = tmp_path / f"covered{ext}"
    with av.open(str(clip), "w") as out:
        cover = out.add_stream("mjpeg", rate=1)
        cover.width, cover.height, cover.pix_fmt = 32, 24, "yuvj420p"
        video = out.add_stream("mpeg4", rate=12)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        mux_frames(out, cover, [av.VideoFrame.from_ndarray(np.full((24, 32, 3), 30, np.uint8), format="bgr24")
                                .reformat(format="yuvj420p")])
        mux_frames(out, video, [av.VideoFrame.from_ndarray(pattern(i), format="bgr24") for i in range(12)])
    info = pyav.probe(clip)
    assert (info.video, info.videos) == (1, 2)
    src = open_source(str(clip))
    assert isinstance(src, pyav.FileSource)
    got = []
    while (f := src.read()) is not None:
        got.append(f)
    src.close()
    assert len(got) == 12 and got[0].shape == (48, 64, 3)
    out = tmp_path / "out.mp4"
    s = run_video(job(inputs=[str(clip)], output=str(out)), translator=Invert())
    assert s.frames == 12 and probe(out)[0] == 12 and probe(out)[2] == (64, 48)


def test_a_second_camera_angle_as_long_as_the_default_is_not_the_main_one(tmp_path):
    """The longest-stream rule (for a thumbnail track first) let a rear camera with one frame more, or a second
    angle at a higher rate, beat the default track players show."""
    clip = tmp_path / "angles.mp4"
    with av.open(str(clip), "w") as out:
        front = out.add_stream("mpeg4", rate=10)
        front.width, front.height, front.pix_fmt = 64, 48, "yuv420p"
        rear = out.add_stream("mpeg4", rate=20)
        rear.width, rear.height, rear.pix_fmt = 32, 24, "yuv420p"
        mux_frames(out, front, [av.VideoFrame.from_ndarray(pattern(i), format="bgr24") for i in range(20)])
        mux_frames(out, rear, [av.VideoFrame.from_ndarray(pattern(i, 32, 24), format="bgr24") for i in range(41)])
    with av.open(str(clip)) as c:
        assert pyav.main_video(c).index == c.streams.best("video").index == 0


@pytest.mark.parametrize("pix_fmt, matrix", [("yuv420p10le", 1), ("yuv420p10le", 2), ("yuv420p12le", 6)])
def test_video_of_more_than_8_bits_is_read_without_a_tint(tmp_path, pix_fmt, matrix):
    """OpenCV reads 10- and 12-bit 4:2:0 video with green 2 levels low on every grey (a magenta cast, in the
    output too; QA): such video is read with PyAV, which converts it exactly. Neutral greys stay neutral."""
    path = tmp_path / f"grey.{pix_fmt}.mkv"
    greys = (20, 128, 240)
    with av.open(str(path), "w") as out:
        s = out.add_stream("ffv1", rate=10)
        s.width, s.height, s.pix_fmt = 64, 48, pix_fmt
        s.codec_context.colorspace = matrix
        for i, g in enumerate(greys):
            y = np.full((48, 64), 16 + round(219 * g / 255), np.uint8)
            frame = av.VideoFrame.from_ndarray(np.stack([y, np.full_like(y, 128), np.full_like(y, 128)]),
                                               format="yuv444p").reformat(format=pix_fmt)
            frame.pts = i
            for p in s.encode(frame):
                out.mux(p)
        for p in s.encode(None):
            out.mux(p)
    assert pyav.probe(path).bits == int(pix_fmt[7:9])
    src = open_source(str(path))
    try:
        got = [src.read() for _ in greys]
    finally:
        src.close()
    for g, frame in zip(greys, got):
        b, gr, r = frame.reshape(-1, 3).mean(0)
        assert abs(gr - b) < 0.5 and abs(gr - r) < 0.5 and abs(gr - g) <= 1.5, (g, b, gr, r)


def test_a_raw_h264_stream_keeps_the_rate_its_headers_declare(tmp_path, caplog):
    """A raw .h264 (Raspberry Pi cameras, DVRs) has no container and no frame times: FFmpeg's demuxer assumes
    25 fps, and a 10 fps recording was written at 25 (2.5x fast; a --start inside it was refused as past its
    end). Its own headers (the SPS's timing) declare 10: it is read at that."""
    import logging

    path = raw_h264(tmp_path / "cam.h264", [pattern(i) for i in range(10)], 10)
    assert pyav.probe(path).raw_rate == 10
    with caplog.at_level(logging.INFO):
        run_video(job(inputs=[str(path)], output=str(tmp_path / "o.mp4")), translator=Invert())
        cut = run_video(job(inputs=[str(path)], output=str(tmp_path / "cut.mp4"), start="0.5"), translator=Invert())
    assert any("read at the 10 fps its headers declare" in r.getMessage() for r in caplog.records)
    frames, fps, _ = probe(tmp_path / "o.mp4")
    assert frames == 10 and abs(fps - 10) < 0.01
    assert cut.frames == 5
    assert pyav.probe(tmp_path / "o.mp4").raw_rate is None  # (a container's times are read as they are)
