"""Frame times: a variable-frame-rate file (phones record them) keeps each frame's time in an H.264 output, so the
pictures stay in step with the sound; a constant-rate input stays exactly constant; OpenCV's constant-rate
writers say how far the pictures drift."""
from __future__ import annotations

import logging
import math
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from cgan.runtime import pyav
from cgan.runtime.sources import open_source, parse_input
from cgan.runtime.video import VideoJob, run_video

from _helpers_video import Invert, make_clip, mux_frames, pattern, probe

av = pytest.importorskip("av")

MS = Fraction(1, 1000)
#: 1 s at 30 fps, 1 s at 15 fps, then 10 frames at 30 fps: as a phone records when the light drops and comes back
VFR_TIMES = [i / 30 for i in range(30)] + [1 + i / 15 for i in range(15)] + [2 + i / 30 for i in range(10)]
RATE = 16000


def vfr_clip(path: Path, times: list[float], sound: bool = True) -> Path:
    """A 64x48 H.264 clip whose frames are at `times` (seconds, in ms), with a 440 Hz AAC tone as long as they."""
    with av.open(str(path), "w") as out:
        v = out.add_stream("libx264", rate=30)
        v.width, v.height, v.pix_fmt = 64, 48, "yuv420p"
        v.codec_context.time_base = MS
        a = out.add_stream("aac", rate=RATE, layout="mono") if sound else None
        for i, t in enumerate(times):
            frame = av.VideoFrame.from_ndarray(pattern(i), format="bgr24")
            frame.pts, frame.time_base = round(t * 1000), MS
            for p in v.encode(frame):
                out.mux(p)
        if a is not None:
            total, k = int((times[-1] + 1 / 30) * RATE), 1024
            for s in range(0, total, k):
                n = np.arange(s, min(s + k, total))
                tone = (0.5 * np.sin(2 * np.pi * 440 * n / RATE)).astype(np.float32)[None, :]
                frame = av.AudioFrame.from_ndarray(tone, format="flt", layout="mono")
                frame.sample_rate, frame.pts = RATE, s
                for p in a.encode(frame):
                    out.mux(p)
        for s in ([a] if a is not None else []) + [v]:
            for p in s.encode(None):
                out.mux(p)
    return path


def frame_times(path: Path) -> list[float]:
    with av.open(str(path)) as c:
        return [float(f.time) for f in c.decode(video=0)]


def ends(path: Path) -> dict[str, float]:
    """{'video': seconds, 'audio': seconds}: where each stream's last packet ends."""
    found: dict[str, float] = {}
    with av.open(str(path)) as c:
        for s in c.streams:
            found[s.type] = max(float((p.pts + (p.duration or 0)) * p.time_base)
                                for p in c.demux(s) if p.pts is not None)
            c.seek(0)
    return found


def job(**kw) -> VideoJob:
    return VideoJob(display=False, progress=False, handle_signals=False, **kw)


def test_the_h264_writer_keeps_the_times_it_is_given(tmp_path):
    times = [0.0, 0.04, 0.08, 0.2, 0.5, 0.52]
    w = pyav.H264Writer(tmp_path / "o.mp4", 25.0, (64, 48))
    for i, t in enumerate(times):
        w.write(pattern(i), t)
    w.release()
    assert w.error is None and w.frames == 6
    assert frame_times(tmp_path / "o.mp4") == pytest.approx(times, abs=1e-5)
    assert w.seconds == pytest.approx(0.54)  # the last frame lasts as long as the one before it


def test_times_that_do_not_move_on_become_one_frame_later(tmp_path):
    """A source whose times are missing or stuck (0 for every frame, nan) is written at the nominal rate."""
    w = pyav.H264Writer(tmp_path / "o.mkv", 10.0, (64, 48))
    for i, t in enumerate([0.0, 0.0, None, math.nan, 0.35, 0.1]):
        w.write(pattern(i), t)
    w.release()
    assert frame_times(tmp_path / "o.mkv") == pytest.approx([0.0, 0.1, 0.2, 0.3, 0.35, 0.45], abs=1e-3)


def test_one_repeated_time_does_not_shift_the_rest_of_the_clip(tmp_path):
    """Times 0, 0.1, 0.2, 0.2, 0.3 ...: the repeat went one frame later (0.3), so 0.3 was not later either and
    went to 0.4, and every frame after it was 0.1 s late, out of step with the sound."""
    w = pyav.H264Writer(tmp_path / "o.mkv", 10.0, (64, 48))
    for i, t in enumerate([0.0, 0.1, 0.2, 0.2, 0.3, 0.4, 0.5]):
        w.write(pattern(i), t)
    w.release()
    got = frame_times(tmp_path / "o.mkv")
    assert got[:4] == pytest.approx([0.0, 0.1, 0.2, 0.3], abs=1e-3)
    assert got[4:] == pytest.approx([0.3, 0.4, 0.5], abs=2e-3) and got[4] > got[3]


def test_a_jump_back_is_a_break_not_a_flash(tmp_path):
    """Two recordings joined (a spliced MPEG-TS): the times start again from 0. Each later frame was put 1 ms after
    the one before (the rule for a repeated time), and the second half played in a flash; now the frames keep
    their spacing after the last one written. Stuck times still go one frame on."""
    w = pyav.H264Writer(tmp_path / "o.mkv", 10.0, (64, 48))
    for i, t in enumerate([0.0, 0.1, 0.2, 0.3, 0.0, 0.1, 0.2, 0.2, 0.3]):
        w.write(pattern(i), t)
    w.release()
    got = frame_times(tmp_path / "o.mkv")
    assert got[:7] == pytest.approx([0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6], abs=1e-3)
    assert got[7] == pytest.approx(0.7, abs=1e-3) and got[8] == pytest.approx(0.701, abs=1e-3)


@pytest.mark.parametrize("ext", [".mp4", ".mkv", ".mov"])
def test_a_variable_rate_file_keeps_its_times_and_its_sound(tmp_path, ext):
    src = vfr_clip(tmp_path / "phone.mp4", VFR_TIMES)
    out = tmp_path / f"winter{ext}"
    s = run_video(job(inputs=[str(src)], output=str(out)), translator=Invert())
    assert s.frames == len(VFR_TIMES) and s.streams[0]["codec"] == "h264" and s.streams[0]["sound"] == "aac"
    assert frame_times(out) == pytest.approx(VFR_TIMES, abs=1.5e-3)
    got, want = ends(out), ends(src)
    assert got["audio"] == pytest.approx(want["audio"], abs=0.07)  # the whole tone: the video is as long as before
    assert abs(got["audio"] - got["video"]) < 0.07


#: 1 s at 30 fps, then the rate halves for the last 6 frames (the light dropped as the clip ended)
SLOWER_AT_THE_END = [i / 30 for i in range(30)] + [1 + i / 15 for i in range(6)]


def duration(path: Path) -> float:
    with av.open(str(path)) as c:
        return c.duration / 1e6


def schedule(steps: list[tuple[int, float]]) -> list[float]:
    """Frame times for (frames, rate) runs one after another."""
    times, t = [], 0.0
    for n, rate in steps:
        for _ in range(n):
            times.append(t)
            t += 1 / rate
    return times


#: the rate changes near the end, where the encoder's B-frame delay (and the decode times) are out of step with
#: the start: slower for 4 or 6 frames, faster for 4, slower over a long stretch; and a constant rate
ENDINGS = {"constant": schedule([(20, 12)]), "slower": SLOWER_AT_THE_END, "slower-4": schedule([(41, 30), (4, 15)]),
           "faster-4": schedule([(41, 30), (4, 60)]), "long": schedule([(100, 15), (100, 30), (100, 15), (50, 30)])}


@pytest.mark.parametrize("ext", [".mp4", ".mkv", ".mov"])
@pytest.mark.parametrize("ending", list(ENDINGS))
def test_the_file_lasts_until_its_last_frame_ends(tmp_path, ext, ending):
    """Each frame lasts until the next, the last as long as the one before: the file is as long as the writer
    says. MP4/MOV time samples in decode order (B-frames come before the frame they follow), so a rate change
    near the end used to leave the file short of its last picture (1.3 s for 1.4 s in "slower"; Matroska
    1.366 s)."""
    times = ENDINGS[ending]
    out = tmp_path / f"o{ext}"
    w = pyav.H264Writer(out, 12.0 if ending == "constant" else 30.0, (64, 48))
    for i, t in enumerate(times):
        w.write(pattern(i), t)
    w.release()
    end = times[-1] + (times[-1] - times[-2])
    assert w.error is None and w.seconds == pytest.approx(end, abs=1e-4)
    assert frame_times(out) == pytest.approx(times, abs=1e-3)  # Matroska keeps milliseconds
    assert duration(out) == pytest.approx(end, abs=2e-3)
    if ending == "constant":
        assert probe(out) == (20, pytest.approx(12, abs=0.01), (64, 48))
    if ending != "slower":
        return
    # and with its sound muxed in, cut to that length: the source's own, whose file says its last frame lasts
    # 1/30 s (the stream's rate), not the 1/15 s of the frame before it
    src = vfr_clip(tmp_path / "phone.mp4", times)
    end = ends(src)["video"]
    assert end == pytest.approx(times[-1] + 1 / 30, abs=1e-3)
    out = tmp_path / f"winter{ext}"
    s = run_video(job(inputs=[str(src)], output=str(out)), translator=Invert())
    assert s.streams[0]["sound"] == "aac" and frame_times(out) == pytest.approx(times, abs=1.5e-3)
    assert duration(out) == pytest.approx(end, abs=0.03)  # AAC packets are 64 ms here: the sound's last one decides
    if ext == ".mkv":  # where each frame's own duration is stored (MP4 keeps the decode order's)
        assert ends(out)["video"] == pytest.approx(end, abs=2e-3)


def test_a_variable_rate_matroska_output_is_not_taken_for_a_short_one(tmp_path):
    """OpenCV counts a Matroska file's frames from its length and nominal rate: 9 for these 10 frames. The
    writer's own errors, not that count, say whether frames were lost."""
    times = [0.0, 0.067, 0.133, 0.2, 0.217, 0.283, 0.483, 0.683, 0.7, 0.717]
    src = vfr_clip(tmp_path / "phone.mp4", times, sound=False)
    s = run_video(job(inputs=[str(src)], output=str(tmp_path / "o.mkv")), translator=Invert())
    assert s.frames == 10 and frame_times(tmp_path / "o.mkv") == pytest.approx(times, abs=1.5e-3)


def test_the_pyav_reader_gives_the_times_too(tmp_path):
    src = pyav.FileSource(parse_input(str(vfr_clip(tmp_path / "phone.mp4", VFR_TIMES, sound=False))))
    got = []
    while src.read() is not None:
        got.append(src.timestamp)
    src.close()
    assert got == pytest.approx(VFR_TIMES, abs=1e-3)


def test_a_constant_rate_input_stays_exactly_constant(tmp_path, caplog):
    src = make_clip(tmp_path / "in.mp4", 30, fps=24000 / 1001)
    out = tmp_path / "out.mp4"
    with caplog.at_level(logging.WARNING):
        run_video(job(inputs=[str(src)], output=str(out), codec="h264"), translator=Invert())
    with av.open(str(src)) as c:
        rate = c.streams.video[0].average_rate  # OpenCV's writer made 23.976 fps 2997/125
    with av.open(str(out)) as c:
        stream = c.streams.video[0]
        pts = [f.pts for f in c.decode(stream)]
        assert stream.average_rate == rate
    step = pts[1] - pts[0]
    assert pts == [i * step for i in range(30)]
    assert probe(out)[:2] == (30, pytest.approx(24000 / 1001, abs=1e-3))
    assert "variable frame rate" not in caplog.text


def test_a_constant_rate_writer_says_how_far_the_pictures_drift(tmp_path, caplog):
    src = vfr_clip(tmp_path / "phone.mp4", VFR_TIMES, sound=False)
    with caplog.at_level(logging.WARNING):
        s = run_video(job(inputs=[str(src)], output=str(tmp_path / "o.avi")), translator=Invert())
    assert s.frames == len(VFR_TIMES) and probe(tmp_path / "o.avi")[0] == len(VFR_TIMES)  # no frame dropped
    warned = [r.getMessage() for r in caplog.records if "variable frame rate" in r.getMessage()]
    assert len(warned) == 1 and "MJPG" in warned[0] and "--codec h264" in warned[0]
    # 55 frames in 2.33 s play at 23.6 fps: the 30th frame (1 s in the source) is shown at 1.27 s
    drift = float(warned[0].split("up to ")[1].split(" s")[0])
    assert 0.2 < drift < 0.4


def test_opencv_files_report_their_frame_times(tmp_path):
    src = open_source(str(vfr_clip(tmp_path / "phone.mp4", VFR_TIMES, sound=False)))
    got = []
    while src.read() is not None:
        got.append(src.timestamp)
    src.close()
    assert got == pytest.approx(VFR_TIMES, abs=1e-3)


def test_a_variable_rate_matroska_input_is_not_said_to_be_damaged(tmp_path, caplog):
    """OpenCV counts 18 + 6 frames of 1 s at 12 fps and 1 s at 6 fps as 23 (length x average rate) in a Matroska
    file: reading it whole said 'decoding stopped after 18 of 23 frames (damaged file?)'."""
    import logging

    times = [i / 12 for i in range(12)] + [1 + i / 6 for i in range(6)]
    mkv = tmp_path / "vfr.mkv"
    run_video(job(inputs=[str(vfr_clip(tmp_path / "phone.mp4", times, sound=False))], output=str(mkv)),
              translator=Invert())
    with caplog.at_level(logging.WARNING):
        s = run_video(job(inputs=[str(mkv)], output=str(tmp_path / "again.mp4")), translator=Invert())
    assert s.frames == 18 and not [r for r in caplog.records if "damaged" in r.getMessage()]


def test_a_high_speed_matroska_clip_read_whole_is_not_said_to_be_damaged(tmp_path, caplog):
    """A 2000 fps clip in Matroska (its millisecond times repeat; a rate over 1000 is not taken as one): OpenCV
    estimates 8 frames of its 6, and without a rate the run said 'decoding stopped after 6 of 8 frames (a damaged
    file?)' and exited 1 (QA). Where the file's packets end tells it was read whole."""
    import logging

    path = tmp_path / "hs2000.mkv"
    with av.open(str(path), "w") as c:
        v = c.add_stream("ffv1", rate=2000)
        v.width, v.height, v.pix_fmt = 64, 48, "yuv420p"
        mux_frames(c, v, [av.VideoFrame.from_ndarray(pattern(i), format="bgr24") for i in range(6)])
    with caplog.at_level(logging.WARNING):
        s = run_video(job(inputs=[str(path)], output=str(tmp_path / "o.mkv")), translator=Invert())
    assert s.frames == 6 and not s.incomplete and not [r for r in caplog.records if "damaged" in r.getMessage()]


def _long_sound_mkv(path: Path, frames: int = 10, sound_s: float = 3.0) -> Path:
    """`frames` pictures at 10 fps (1 s) and `sound_s` seconds of sound: a clip whose container length is its
    sound's."""
    with av.open(str(path), "w") as c:
        v = c.add_stream("libx264", rate=10)
        v.width, v.height, v.pix_fmt = 64, 48, "yuv420p"
        a = c.add_stream("aac", rate=48000, layout="stereo")
        mux_frames(c, v, [av.VideoFrame.from_ndarray(pattern(i), format="bgr24") for i in range(frames)])
        for k in range(0, int(48000 * sound_s), 1024):
            fr = av.AudioFrame.from_ndarray(np.zeros((2, 1024), np.float32), format="fltp", layout="stereo")
            fr.sample_rate, fr.pts = 48000, k
            for p in a.encode(fr):
                c.mux(p)
        for p in a.encode(None):
            c.mux(p)
    return path


def test_sound_longer_than_the_pictures_is_not_a_damaged_file_but_a_cut_one_is(tmp_path, caplog):
    """OpenCV counts frames from the container's length, here the sound's: 1 s of pictures with 3 s of sound said
    'decoding stopped after 10 of 30 frames (damaged file?)'. The packets say where the pictures end; a file cut
    short (its header declares more than its packets hold) is still said to be."""
    import logging

    clip = _long_sound_mkv(tmp_path / "long.mkv")
    with caplog.at_level(logging.WARNING):
        s = run_video(job(inputs=[str(clip)], output=str(tmp_path / "o.mp4")), translator=Invert())
    assert s.frames == 10 and not [r for r in caplog.records if "damaged" in r.getMessage()]
    assert not s.incomplete and s.streams[0]["cut_short"] is None
    full = _long_sound_mkv(tmp_path / "full.mkv", frames=30, sound_s=3.0).read_bytes()
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(full[:len(full) // 2])
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        s = run_video(job(inputs=[str(cut)], output=str(tmp_path / "o2.mp4")), translator=Invert())
    assert 0 < s.frames < 30 and [r for r in caplog.records if "damaged" in r.getMessage()]
    # said in the summary and its JSON too (a script saw exit 0 and "ended": "end" only)
    assert s.incomplete == s.streams and "decoding stopped after" in s.streams[0]["cut_short"]
    assert f"CUT SHORT {s.streams[0]['input']}: decoding stopped" in s.format()


def test_cgan_video_exits_1_for_a_video_translated_in_part(tmp_path, capsys):
    """A cut recording was written in part with exit 0: a script could not tell. Exit 1 now, the output kept."""
    from cgan._cli import run
    from cgan.runtime.cli import cli

    full = _long_sound_mkv(tmp_path / "full.mkv", frames=30, sound_s=3.0).read_bytes()
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(full[:len(full) // 2])
    code = run(cli, ["--input", str(cut), "--output", str(tmp_path / "o.mp4"), "--no-display", "--no-progress",
                     "--backend", "ort-cpu", "--size", "64x48"])
    out = capsys.readouterr().out
    assert code == 1 and "CUT SHORT" in out and (tmp_path / "o.mp4").stat().st_size > 0, out


def held_gif(path: Path, delays_ms: list[int]) -> Path:
    """A 64x48 GIF whose frames are shown for `delays_ms` each (its last picture held, as GIFs often do)."""
    from PIL import Image

    frames = [Image.fromarray(pattern(i)[:, :, ::-1].copy()) for i in range(len(delays_ms))]
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=delays_ms, loop=0)
    return path


GIF_DELAYS = [100, 100, 100, 2000]  # 0.3 s of motion, then the last picture for 2 s: 2.3 s in all


@pytest.mark.parametrize("ext,codec", [(".mp4", "h264"), (".mkv", "h264"), (".avi", "MJPG")])
def test_the_last_frame_lasts_as_long_as_its_file_says(tmp_path, ext, codec):
    """A GIF's last picture held for 2 s came out as long as the frame before it (0.1 s): the 2.3 s GIF lasted
    0.4 s. The file says how long its last frame is shown, and the output shows it that long (OpenCV's
    constant-rate writers repeat it)."""
    gif = held_gif(tmp_path / "held.gif", GIF_DELAYS)
    out = tmp_path / f"o{ext}"
    s = run_video(job(inputs=[str(gif)], output=str(out), codec=codec), translator=Invert())
    assert s.frames == len(GIF_DELAYS) and s.streams[0]["codec"] == codec
    if codec == "h264":
        assert frame_times(out) == pytest.approx([0.0, 0.1, 0.2, 0.3], abs=1e-3)
        assert duration(out) == pytest.approx(2.3, abs=2e-3)
        if ext == ".mkv":  # each frame's own duration is stored (MP4 keeps the decode order's)
            assert ends(out)["video"] == pytest.approx(2.3, abs=2e-3)
    else:  # one constant rate (the GIF's average): the last picture is repeated for its own 2 s, not to the
        # source's length (a variable rate's drift made a frozen tail of 145 frames that way)
        n, fps, _ = probe(out)
        assert n == 4 + round(2.0 * fps) - 1


def test_a_constant_rate_writer_holds_the_last_frame_for_its_own_duration_only(tmp_path):
    """1 s at 30 fps then 1 s at 5 fps into Matroska MJPG (OpenCV says 30 fps, the nominal rate): the last frame,
    held to the source's length, became a 145-frame frozen tail; it lasts its own duration."""
    times = [i / 30 for i in range(30)] + [1 + i / 5 for i in range(5)]
    src = vfr_clip(tmp_path / "vfr.mp4", times, sound=False)
    out = tmp_path / "o.mkv"
    run_video(job(inputs=[str(src)], output=str(out), codec="mjpg"), translator=Invert())
    assert probe(out)[0] == len(times)  # the last frame's own duration is 1/30 s in this file: nothing added


def test_an_early_stop_keeps_the_last_frame_as_long_as_the_one_before_it(tmp_path):
    """--max-frames stops before the file's end: the held last picture is not the last one written."""
    gif = held_gif(tmp_path / "held.gif", GIF_DELAYS)
    out = tmp_path / "o.mkv"
    run_video(job(inputs=[str(gif)], output=str(out), codec="h264", max_frames=3), translator=Invert())
    assert ends(out)["video"] == pytest.approx(0.3, abs=2e-3)


@pytest.mark.parametrize("reader", ["opencv", "pyav"])
def test_sources_say_where_their_last_frame_ends(tmp_path, reader):
    from cgan.runtime.sources import Trimmed

    spec = parse_input(str(held_gif(tmp_path / "held.gif", GIF_DELAYS)))

    def opened():
        return pyav.FileSource(spec) if reader == "pyav" else open_source(spec)

    def read_all(src):
        times = []
        while src.read() is not None:
            times.append(src.timestamp)
        assert src.read() is None
        return times

    src = opened()
    assert src.ended_at is None
    assert read_all(src) == pytest.approx([0.0, 0.1, 0.2, 0.3], abs=1e-3)
    assert src.ended_at == pytest.approx(2.3, abs=1e-3)
    src.close()
    # cut by --end: shown until --end
    for end in (1.0, 0.5):
        src = Trimmed(opened(), start=0.0, end=end)
        assert read_all(src) == pytest.approx([0.0, 0.1, 0.2, 0.3], abs=1e-3)
        assert src.ended_at == pytest.approx(end, abs=1e-3), end
        src.close()
    src = Trimmed(opened(), start=0.2)  # from a later start, read to the end
    assert read_all(src)[-1] == pytest.approx(0.3, abs=1e-3) and src.ended_at == pytest.approx(2.3, abs=1e-3)
    src.close()


def test_a_file_that_does_not_say_how_long_its_last_frame_lasts_keeps_the_step_before(tmp_path):
    w = pyav.H264Writer(tmp_path / "o.mkv", 10.0, (64, 48))
    for i, t in enumerate([0.0, 0.1, 0.2]):
        w.write(pattern(i), t)
    w.hold_last(0.25, 60.0)  # earlier than the step before: shown until then
    w.release()
    assert w.seconds == pytest.approx(0.25) and ends(tmp_path / "o.mkv")["video"] == pytest.approx(0.25, abs=2e-3)
    w = pyav.H264Writer(tmp_path / "p.mkv", 10.0, (64, 48))
    for i, t in enumerate([0.0, 0.1, 0.2]):
        w.write(pattern(i), t)
    w.hold_last(0.1, 60.0)  # not after the last frame: ignored
    w.hold_last(math.nan, 60.0)
    w.release()
    assert w.seconds == pytest.approx(0.3)
    w = pyav.H264Writer(tmp_path / "q.mkv", 10.0, (64, 48))
    w.write(pattern(0), 0.0)
    w.hold_last(3600.0, 60.0)  # at most `most`
    w.release()
    assert w.seconds == pytest.approx(60.0)
