"""Output codecs: H.264 through PyAV by default where it can (every player and browser plays it; OpenCV's own
writer has MPEG-4 part 2 and MJPG only), OpenCV's codecs on request or without PyAV; the H.264 writer keeps the
temp-file rules (made exclusively, refused when swapped, nothing half-written) and reports write errors."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cgan._cli import run
from cgan.errors import CganError
from cgan.runtime import pyav
from cgan.runtime.cli import cli
from cgan.runtime.sources import open_source
from cgan.runtime.video import VideoJob, VideoOutput, check_output, run_video

from _helpers_video import Invert, make_clip, mux_frames, pattern, probe

av = pytest.importorskip("av")
pytestmark = pytest.mark.skipif(not pyav.has_h264(), reason="this PyAV has no libx264")


def job(**kw) -> VideoJob:
    return VideoJob(display=False, progress=False, handle_signals=False, **kw)


def codec_of(path: Path) -> str:
    with av.open(str(path)) as c:
        return c.streams.video[0].codec_context.name


@pytest.mark.parametrize("ext, codec, stored", [(".mp4", "h264", "h264"), (".m4v", "h264", "h264"),
                                                (".mov", "h264", "h264"), (".mkv", "h264", "h264"),
                                                (".avi", "MJPG", "mjpeg")])
def test_auto_is_h264_except_for_avi(tmp_path, ext, codec, stored):
    clip = make_clip(tmp_path / "in.mp4", 12, (64, 48), fps=12)
    out = tmp_path / f"out{ext}"
    s = run_video(job(inputs=[str(clip)], output=str(out)), translator=Invert())
    assert s.streams[0]["codec"] == codec and codec_of(out) == stored
    n, fps, size = probe(out)
    assert (n, size) == (12, (64, 48)) and fps == pytest.approx(12, abs=0.01)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["in.mp4", out.name])


def test_h264_is_the_translation_and_smaller_than_mp4v(tmp_path):
    clip = make_clip(tmp_path / "in.mp4", 30, (320, 240), fps=25)
    h264, mp4v = tmp_path / "h.mp4", tmp_path / "m.mp4"
    run_video(job(inputs=[str(clip)], output=str(h264)), translator=Invert())
    run_video(job(inputs=[str(clip)], output=str(mp4v), codec="mp4v"), translator=Invert())
    assert codec_of(mp4v) == "mpeg4" and codec_of(h264) == "h264"
    src = open_source(str(h264))  # decoded by its BT.709 tags (OpenCV 4 alone would take it as BT.601)
    first = src.read()
    src.close()
    assert np.abs(first.astype(np.int16) - (255 - pattern(0, 320, 240).astype(np.int16))).mean() < 3
    assert h264.stat().st_size < mp4v.stat().st_size


def test_an_ntsc_rate_is_kept(tmp_path):
    clip = make_clip(tmp_path / "in.mp4", 10, (64, 48), fps=30000 / 1001)
    out = tmp_path / "out.mp4"
    run_video(job(inputs=[str(clip)], output=str(out)), translator=Invert())
    assert probe(out)[1] == pytest.approx(29.97, abs=0.01)


def test_mp4_files_start_with_their_index(tmp_path):
    """faststart: the moov box before the pictures, so a browser plays the file while it downloads."""
    clip = make_clip(tmp_path / "in.mp4", 6)
    out = tmp_path / "out.mp4"
    run_video(job(inputs=[str(clip)], output=str(out)), translator=Invert())
    head = out.read_bytes()
    assert 0 <= head.find(b"moov") < head.find(b"mdat")


def test_without_pyav_auto_is_mp4v_and_h264_is_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(pyav, "_av", lambda: None)
    clip = make_clip(tmp_path / "in.mp4", 6)
    out = tmp_path / "out.mp4"
    s = run_video(job(inputs=[str(clip)], output=str(out)), translator=Invert())
    assert s.streams[0]["codec"] == "mp4v" and probe(out)[0] == 6
    with pytest.raises(CganError, match="--codec h264 needs PyAV"):
        run_video(job(inputs=[str(clip)], output=str(tmp_path / "h.mp4"), codec="h264"), translator=Invert())
    assert not (tmp_path / "h.mp4").exists()


def test_a_write_error_is_reported_and_leaves_the_target_alone(tmp_path, monkeypatch):
    target = tmp_path / "keep.mp4"
    target.write_bytes(b"the previous good file")
    real = pyav.H264Writer.write

    def failing(self, frame):
        if self.frames == 3:  # as FFmpeg says it: naming the file it writes, the hidden temporary one
            self.error = OSError(28, "No space left on device", str(out.tmp))
            return
        real(self, frame)

    monkeypatch.setattr(pyav.H264Writer, "write", failing)
    out = VideoOutput(target, 12.0, codec="auto")
    for i in range(6):
        out.write(pattern(i))
    with pytest.raises(CganError, match="writing .*keep.mp4 failed: .*No space left on device") as e:
        out.finish()
    assert "\n" not in str(e.value) and ".partial" not in str(e.value), str(e.value)
    assert target.read_bytes() == b"the previous good file"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.mp4"]


def test_a_write_error_without_words_is_still_one_line(tmp_path, monkeypatch):
    def failing(self, frame):
        self.error = OSError()  # an error with an empty message (it made an IndexError)

    monkeypatch.setattr(pyav.H264Writer, "write", failing)
    out = VideoOutput(tmp_path / "o.mp4", 12.0, codec="auto")
    out.write(pattern(0))
    with pytest.raises(CganError, match=r"writing .*o.mp4 failed: OSError;"):
        out.finish()


def test_the_probe_uses_the_chosen_codec(tmp_path):
    assert check_output(tmp_path / "o.mp4", "auto") == "h264"
    assert check_output(tmp_path / "o.mp4") == "mp4v"  # the writer's own default: the container's OpenCV codec
    assert check_output(tmp_path / "o.mkv", "mjpg") == "MJPG"
    assert not [p for p in tmp_path.iterdir()]


def test_codec_is_checked_and_the_cli_takes_it(tmp_path, capsys):
    with pytest.raises(CganError, match="codec must be one of auto, h264, mp4v, mjpg"):
        VideoJob(inputs=["demo"], codec="x265")
    assert VideoJob(inputs=["demo"], codec="H264").codec == "h264"
    clip = make_clip(tmp_path / "in.mp4", 4)
    code = run(cli, ["--input", str(clip), "--output", str(tmp_path / "o.mp4"), "--no-display", "--no-progress",
                     "--backend", "ort-cpu", "--codec", "mp4v"])
    assert code == 0 and codec_of(tmp_path / "o.mp4") == "mpeg4", capsys.readouterr().err
    code = run(cli, ["--input", str(clip), "--output", str(tmp_path / "p.mp4"), "--codec", "vp9"])
    assert code == 2 and "'vp9' is not one of" in capsys.readouterr().err
    import cv2
    cv2.imwrite(str(tmp_path / "p.png"), np.zeros((8, 8, 3), np.uint8))
    code = run(cli, ["--input", str(tmp_path / "p.png"), "--output", str(tmp_path / "q.png"), "--codec", "h264"])
    assert code == 2 and "--codec applies to videos" in capsys.readouterr().err


#: saturated and everyday colours (BGR) where BT.601 and BT.709 decodes differ most: red, green, blue, orange,
#: grey, foliage
COLOURS = [(0, 0, 220), (0, 200, 0), (220, 0, 0), (40, 160, 230), (200, 200, 200), (30, 120, 60)]


def colour_bars(width: int = 384, height: int = 64) -> np.ndarray:
    img = np.zeros((height, width, 3), np.uint8)
    for k, c in enumerate(COLOURS):
        img[:, k * 64:(k + 1) * 64] = c
    return img


def as_players_show_it(path: Path) -> tuple[np.ndarray, tuple[int, ...]]:
    """The first frame decoded as BT.709 (what browsers and players take HD video without tags for, and what
    tagged video says), and the stream's (colorspace, primaries, transfer, range) tags."""
    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        cc = stream.codec_context
        frame = next(c.decode(stream))
        return (frame.reformat(format="bgr24", src_colorspace="itu709").to_ndarray(),
                (cc.colorspace, cc.color_primaries, cc.color_trc, cc.color_range))


def test_h264_outputs_are_bt709_and_say_so(tmp_path):
    """FFmpeg converts to YUV with BT.601's matrix unless told; untagged, players showed it as BT.709: green 200
    came out 167, red turned orange."""
    out = VideoOutput(tmp_path / "bars.mp4", 12.0, codec="auto")
    for _ in range(3):
        out.write(colour_bars())
    out.finish()
    shown, tags = as_players_show_it(tmp_path / "bars.mp4")
    assert tags == (1, 1, 1, 1)  # BT.709 matrix, primaries and transfer; limited range
    for k, c in enumerate(COLOURS):
        assert np.abs(shown[32, k * 64 + 32].astype(int) - c).max() <= 4, (c, shown[32, k * 64 + 32])


def test_the_tags_survive_the_sound(tmp_path):
    from test_video_sound import clip_with_sound

    out = tmp_path / "o.mp4"
    s = run_video(job(inputs=[str(clip_with_sound(tmp_path / "in.mp4"))], output=str(out)), translator=Invert())
    assert s.streams[0]["sound"] == "aac" and as_players_show_it(out)[1] == (1, 1, 1, 1)


@pytest.mark.parametrize("opencv_does_it", [False, True])
def test_bt709_files_are_read_by_their_tags(tmp_path, monkeypatch, opencv_does_it):
    """OpenCV 5 decodes by the colour tags; OpenCV 4 takes every file as BT.601 (green 200 of a BT.709 file read
    as 233), so there a tagged file is read by PyAV, which follows them."""
    if opencv_does_it and not pyav.opencv_manages_colour():
        pytest.skip("this OpenCV decodes every file as BT.601")
    monkeypatch.setattr(pyav, "opencv_manages_colour", lambda: opencv_does_it)
    out = VideoOutput(tmp_path / "bars.mp4", 12.0, codec="h264")
    for _ in range(3):
        out.write(colour_bars())
    out.finish()
    src = open_source(str(tmp_path / "bars.mp4"))
    frame = src.read()
    src.close()
    assert isinstance(src, pyav.FileSource) is not opencv_does_it
    for k, c in enumerate(COLOURS):
        assert np.abs(frame[32, k * 64 + 32].astype(int) - c).max() <= 4, (c, frame[32, k * 64 + 32])


def test_untagged_and_bt601_files_stay_with_opencv(tmp_path, monkeypatch):
    monkeypatch.setattr(pyav, "opencv_manages_colour", lambda: False)
    src = open_source(str(make_clip(tmp_path / "in.mp4", 3)))  # OpenCV's mp4v: BT.601, untagged
    src.close()
    assert not isinstance(src, pyav.FileSource)


def x264_settings(path: Path) -> str:
    """The settings libx264 wrote into the stream (its SEI text: '... crf=20.0 ...')."""
    data = path.read_bytes()
    at = data.find(b"x264 - core")
    assert at >= 0, "no x264 settings in the file"
    return data[at:data.index(b"\x00", at)].decode("ascii", "replace")


def test_crf_sets_the_h264_quality(tmp_path):
    """--crf reaches libx264: the file says so, and a lower value keeps more of the translation in a larger file
    (textured frames, where the quality shows)."""
    import cv2

    from cgan.runtime.sources import FrameListSource

    rng = np.random.default_rng(0)
    frames = [cv2.GaussianBlur(rng.integers(0, 256, (240, 320, 3), dtype=np.uint8), (5, 5), 1.0) for _ in range(6)]
    out = {}
    for crf in (None, 10, 40):
        out[crf] = tmp_path / f"o{crf}.mp4"
        s = run_video(job(inputs=[FrameListSource(frames, fps=12)], output=str(out[crf]), crf=crf),
                      translator=Invert())
        assert s.frames == 6 and s.streams[0]["codec"] == "h264"
    assert " crf=20.0 " in x264_settings(out[None]) and pyav.H264Writer.CRF == 20
    assert " crf=10.0 " in x264_settings(out[10]) and " crf=40.0 " in x264_settings(out[40])
    assert out[10].stat().st_size > 4 * out[40].stat().st_size

    def error(path: Path) -> float:
        src = open_source(str(path))
        frame = src.read()
        src.close()
        return float(np.abs(frame.astype(np.int16) - (255 - frames[0].astype(np.int16))).mean())

    assert error(out[10]) < 0.5 * error(out[40]), (error(out[10]), error(out[40]))


@pytest.mark.parametrize("crf", [-1, 52, 2.5, True, "18"])
def test_a_bad_crf_is_one_line(crf):
    with pytest.raises(CganError, match="crf must be an integer from 0 to 51"):
        VideoJob(inputs=["demo"], crf=crf)


def test_crf_is_refused_where_it_would_do_nothing(tmp_path, capsys):
    clip = make_clip(tmp_path / "in.mp4", 4)
    for output, codec, said in ((tmp_path / "o.avi", "auto", "written as MJPG"),
                                (tmp_path / "o.mp4", "mp4v", "written as mp4v"),
                                (None, "auto", "there is no --output")):
        with pytest.raises(CganError, match=said):
            run_video(job(inputs=[str(clip)], output=output and str(output), codec=codec, crf=18),
                      translator=Invert())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4"]
    base = ["--input", str(clip), "--no-display", "--no-progress", "--backend", "ort-cpu"]
    assert run(cli, base + ["--output", str(tmp_path / "o.mp4"), "--crf", "60"]) == 2
    assert "0<=x<=51" in capsys.readouterr().err
    assert run(cli, base + ["--output", str(tmp_path / "o.avi"), "--crf", "18"]) == 2
    err = capsys.readouterr().err
    assert "--crf sets H.264's quality" in err and "Traceback" not in err
    assert run(cli, base + ["--output", str(tmp_path / "o.mp4"), "--crf", "18"]) == 0
    assert " crf=18.0 " in x264_settings(tmp_path / "o.mp4")
    import cv2
    cv2.imwrite(str(tmp_path / "p.png"), np.zeros((8, 8, 3), np.uint8))
    assert run(cli, ["--input", str(tmp_path / "p.png"), "--output", str(tmp_path / "q.png"), "--crf", "18"]) == 2
    assert "--crf applies to videos" in capsys.readouterr().err


def test_without_pyav_crf_says_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setattr(pyav, "has_h264", lambda: False)
    with pytest.raises(CganError, match=r"H.264 needs PyAV with libx264, which is missing here: o.mp4 would be "
                                        r"written as mp4v; pip install av"):
        check_output(tmp_path / "o.mp4", "auto", 18)
    with pytest.raises(CganError, match=r"o.avi is written as MJPG \(OpenCV's MJPG for .avi\); install PyAV"):
        check_output(tmp_path / "o.avi", "auto", 18)
    with pytest.raises(CganError, match=r"o.mp4 is written as mp4v \(--codec mp4v\); install PyAV"):
        check_output(tmp_path / "o.mp4", "mp4v", 18)
    monkeypatch.undo()
    with pytest.raises(CganError, match=r"a.avi is written as mp4v \(--codec mp4v\); write .mp4/.mkv/.mov with "
                                        r"--codec auto or h264, or leave --crf out"):
        check_output(tmp_path / "a.avi", "mp4v", 18)


@pytest.mark.parametrize("ext", [".mp4", ".mkv"])
def test_mp4v_outputs_are_tagged_bt601(tmp_path, ext):
    """OpenCV's mp4v writer encodes BT.601 and wrote no colour tags: players guessed, and took an HD file for
    BT.709. The output is remuxed tagged BT.601 (SMPTE 170M, limited range), every frame kept."""
    av = pytest.importorskip("av")
    clip = make_clip(tmp_path / "in.mp4", 6, (64, 48))
    out = tmp_path / f"o{ext}"
    s = run_video(job(inputs=[str(clip)], output=str(out), codec="mp4v"), translator=Invert())
    assert s.frames == 6 and probe(out)[0] == 6
    with av.open(str(out)) as c:
        cc = c.streams.video[0].codec_context
        assert (cc.name, cc.colorspace, cc.color_primaries, cc.color_trc) == ("mpeg4", 6, 6, 6)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["in.mp4", out.name])


def test_an_mp4v_output_with_sound_is_tagged_in_the_same_remux(tmp_path, monkeypatch):
    """The remux that adds the sound sets the colour tags too: no second copy of the file."""
    av = pytest.importorskip("av")
    from test_video_sound import clip_with_sound

    tagged_alone = []
    monkeypatch.setattr(pyav, "tag_colours", lambda *a: tagged_alone.append(a))
    out = tmp_path / "o.mp4"
    s = run_video(job(inputs=[str(clip_with_sound(tmp_path / "in.mp4", seconds=1.0))], output=str(out),
                      codec="mp4v"), translator=Invert())
    assert s.streams[0]["sound"] == "aac" and not tagged_alone
    with av.open(str(out)) as c:
        assert c.streams.video[0].codec_context.colorspace == 6 and [st.type for st in c.streams] == ["video", "audio"]


def _anamorphic(path: Path, n: int = 4) -> Path:
    """A 64x48 clip of 4:3 pixels (shown 16:9), as DV, HDV and some broadcast captures are."""
    import av
    from fractions import Fraction

    with av.open(str(path), "w") as out:
        s = out.add_stream("libx264", rate=10)
        s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
        s.codec_context.sample_aspect_ratio = Fraction(4, 3)
        mux_frames(out, s, [av.VideoFrame.from_ndarray(pattern(i), format="bgr24") for i in range(n)])
    return path


@pytest.mark.parametrize("ext,size,stored", [(".mp4", None, (64, 48)), (".mkv", "96", (96, 72)),
                                             (".mp4", "96x54", (96, 54))])
def test_non_square_pixels_are_kept(tmp_path, ext, size, stored):
    """Anamorphic video (4:3 pixels shown 16:9) came out with square pixels: squeezed to 4:3."""
    import av
    from fractions import Fraction

    if not pyav.has_h264():
        pytest.skip("no H.264 writer here")
    src = _anamorphic(tmp_path / "dv.mkv")
    out = tmp_path / f"o{ext}"
    run_video(VideoJob(inputs=[str(src)], output=str(out), size=size or "native", display=False, progress=False,
                       handle_signals=False), translator=Invert())
    with av.open(str(out)) as c:
        v = c.streams.video[0]
        shown = Fraction(v.width, v.height) * (v.sample_aspect_ratio or 1)
        assert (v.width, v.height) == stored and shown == Fraction(16, 9)  # as the source is shown
        # (an exact size already made it 16:9: its pixels are square, where keeping 4:3 showed it 64:27)
        assert v.sample_aspect_ratio in ((None, 0, 1) if size == "96x54" else (Fraction(4, 3),))


def test_non_square_pixels_turn_with_a_quarter_turned_clip(tmp_path):
    """A phone clip turned 90° whose pixels are 4:3: shown 48 wide, 85.3 high; kept at 4:3 after the turn, the
    output showed square."""
    import av
    from fractions import Fraction

    from _helpers_video import DISPLAY_MATRICES, with_display_matrix

    if not pyav.has_h264():
        pytest.skip("no H.264 writer here")
    clip = with_display_matrix(_anamorphic(tmp_path / "dv.mp4"), tmp_path / "turned.mp4",
                               DISPLAY_MATRICES["quarter clockwise"])
    run_video(VideoJob(inputs=[str(clip)], output=str(tmp_path / "o.mp4"), display=False, progress=False,
                       handle_signals=False), translator=Invert())
    with av.open(str(tmp_path / "o.mp4")) as c:
        v = c.streams.video[0]
        assert (v.width, v.height, v.sample_aspect_ratio) == (48, 64, Fraction(3, 4))  # shown 36 x 64: 48 x 85.3


def test_non_square_pixels_in_a_writer_that_cannot_say_so_are_warned_about(tmp_path, caplog):
    src = _anamorphic(tmp_path / "dv.mkv")
    with caplog.at_level("WARNING"):
        run_video(VideoJob(inputs=[str(src)], output=str(tmp_path / "o.mp4"), codec="mp4v", display=False,
                           progress=False, handle_signals=False), translator=Invert())
    assert any("pixels are not square (4:3" in r.getMessage() for r in caplog.records)


def test_h264_outputs_are_not_darker_than_their_frames(tmp_path):
    """swscale's default rounding made BGR to YUV 1-2 levels low (gray 50/128/200 as Y 58/125/187, Cr 127): every
    H.264 output was about 2 levels dark with a slight cyan cast. Lossless (--crf 0) it is now exact."""
    import av

    if not pyav.has_h264():
        pytest.skip("no H.264 writer here")
    w = pyav.H264Writer(tmp_path / "o.mkv", 10.0, (32, 32), crf=0)
    for g in (50, 128, 200):
        w.write(np.full((32, 32, 3), g, np.uint8))
    w.release()
    assert w.error is None
    with av.open(str(tmp_path / "o.mkv")) as c:
        yuv = [(int(a[0, 0]), int(a[32, 0]), int(a[40, 0])) for a in (f.to_ndarray() for f in c.decode(video=0))]
    assert yuv == [(59, 128, 128), (126, 128, 128), (188, 128, 128)]  # BT.709 limited range, exactly
