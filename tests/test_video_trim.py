"""--start/--end: a part of a video file translated, with its sound from the same time; both readers (OpenCV,
PyAV) seek near the start and read on to the exact frame; live sources, times past the end and bad times are one
line."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from cgan._cli import run
from cgan.errors import CganError
from cgan.runtime import pyav
from cgan.runtime.batch import run_video_folder
from cgan.runtime.cli import cli
from cgan.runtime.sources import CaptureSource, FrameListSource, Trimmed, parse_input, parse_time
from cgan.runtime.video import VideoJob, run_video

from _helpers_video import Invert, make_clip, probe, raw_h264

av = pytest.importorskip("av")


def job(**kw) -> VideoJob:
    return VideoJob(display=False, progress=False, handle_signals=False, **kw)


def numbered(i: int) -> np.ndarray:
    """Frame i (0..63): a bright column at x = i, which lossy coding keeps readable."""
    frame = np.full((48, 64, 3), 40, np.uint8)
    frame[:, i] = 230
    return frame


def frame_number(frame: np.ndarray) -> int:
    return int(frame.mean(axis=(0, 2)).argmax())


def numbered_clip(path: Path, n: int = 60, fps: float = 12.0) -> Path:
    import cv2

    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (64, 48))
    for i in range(n):
        w.write(numbered(i))
    w.release()
    return path


def read_all(source) -> list[tuple[int, float]]:
    got = []
    while (frame := source.read()) is not None:
        got.append((frame_number(frame), round(source.timestamp, 3)))
    source.close()
    return got


@pytest.mark.parametrize("text, seconds", [("90", 90.0), ("90.5", 90.5), ("1:30", 90.0), ("01:02:03.5", 3723.5),
                                           ("0:00:00", 0.0), (" 2:05 ", 125.0), (12, 12.0), (0.5, 0.5),
                                           ("١:٣٠", 90.0)])  # decimal digits of other scripts are numbers
def test_times_are_read_as_ffmpeg_writes_them(text, seconds):
    assert parse_time(text) == seconds


@pytest.mark.parametrize("text", ["1:75", "abc", "-5", "1::2", "1.5:30", "", "1:2:3:4", "1:60:00", "5s", "²:30",
                                  True, [1], math.nan, -1.0])
def test_a_bad_time_is_one_line(text):
    with pytest.raises(CganError, match="time"):
        parse_time(text)


def test_end_must_come_after_start():
    with pytest.raises(CganError, match="must come after start"):
        VideoJob(inputs=["demo"], start="0:05", end=3)
    with pytest.raises(CganError, match="must come after start"):
        VideoJob(inputs=["demo"], end=0)
    assert (VideoJob(inputs=["demo"], start="1:30", end="1:31.5").start, VideoJob(inputs=["demo"], end="2").end) \
        == (90.0, 2.0)


@pytest.mark.parametrize("reader", ["opencv", "pyav"])
@pytest.mark.parametrize("start, end, first, count", [(2.5, 4.0, 30, 18), (0.5, None, 6, 54), (0, 1.0, 0, 12),
                                                      (4.9, None, 59, 1)])
def test_both_readers_give_exactly_the_frames_from_start_to_end(tmp_path, reader, start, end, first, count):
    """A seek 2 s before the start (2.5 s: from 0.5 s), then frames read on: the first is the one at the start,
    whichever reader, and the frames stop before the end."""
    clip = numbered_clip(tmp_path / "in.mp4")
    spec = parse_input(str(clip))
    source = Trimmed(CaptureSource(spec) if reader == "opencv" else pyav.FileSource(spec), start, end)
    got = read_all(source)
    assert [n for n, _ in got] == list(range(first, first + count))
    assert [t for _, t in got] == pytest.approx([n / 12 for n, _ in got], abs=1e-3)  # the file's own times
    assert source.frame_count == count


def test_a_seek_that_lands_after_the_start_reads_from_the_beginning():
    """OpenCV takes a variable-rate file's time for a frame number at its average rate: its seek may land after
    the time asked. The frames are then read from the first."""
    class Overshooting(FrameListSource):
        timestamp = None

        def read(self):
            frame = super().read()
            self.timestamp = None if frame is None else (self._i - 1) / self.fps
            return frame

        def seek(self, t):
            self.seeks.append(t)
            self._i = min(int(t * self.fps) + 30, len(self._frames)) if t > 0 else 0  # 1 s -> 3.5 s

    src = Overshooting([numbered(i) for i in range(60)], fps=12)
    src.seeks = []
    got = read_all(Trimmed(src, 3.0))
    assert src.seeks == [1.0, 0.0] and got[0] == (36, 3.0) and len(got) == 24


def test_the_output_is_the_part_with_its_sound_from_the_start(tmp_path):
    """A tone from 1.5 s, cut from 1.0 s: the output's sound is silent for its first 0.5 s, then the tone (a sound
    taken from the file's start would be silent for 1.5 s); the output is 1.6 s long, video and sound."""
    from test_video_sound import RATE, clip_with_sound, sound_samples, streams

    src = clip_with_sound(tmp_path / "in.mp4", seconds=3.0, silent_until=1.5)
    out = tmp_path / "out.mp4"
    s = run_video(job(inputs=[str(src)], output=str(out), start=1.0, end=2.6), translator=Invert())
    assert s.frames == 40 and s.streams[0]["sound"] == "aac"  # 1.6 s at 25 fps
    assert probe(out)[0] == 40
    got = streams(out)
    assert got["video"] == pytest.approx(1.6, abs=0.01) and got["audio"] == pytest.approx(1.6, abs=0.07)
    sound = np.abs(sound_samples(out))
    assert sound[int(0.1 * RATE):int(0.4 * RATE)].mean() < 0.02 and sound[int(0.6 * RATE):int(1.4 * RATE)].mean() > 0.2


def test_max_frames_counts_from_the_start(tmp_path):
    clip = numbered_clip(tmp_path / "in.mp4")
    out = tmp_path / "out.mp4"
    s = run_video(job(inputs=[str(clip)], output=str(out), start=2.0, max_frames=6), translator=Invert())
    assert s.frames == 6 and probe(out)[0] == 6


def test_a_start_past_the_end_a_live_source_and_photos_are_one_line(tmp_path, capsys):
    clip = numbered_clip(tmp_path / "in.mp4")
    base = ["--input", str(clip), "--output", str(tmp_path / "o.mp4"), "--no-display", "--no-progress",
            "--backend", "ort-cpu"]
    assert run(cli, base + ["--start", "0:09"]) == 2
    err = capsys.readouterr().err
    assert "--start 0:09.0 is at or after the end of" in err and "(it lasts about 0:05.0)" in err
    assert "Traceback" not in err
    assert run(cli, base + ["--start", "1:10", "--end", "1:05"]) == 2
    assert "must come after start" in capsys.readouterr().err
    assert run(cli, base + ["--start", "one minute"]) == 2
    assert "is not a time" in capsys.readouterr().err
    assert run(cli, base + ["--start", "0:01", "--end", "0:09"]) == 0  # an end past the end: to the end
    assert probe(tmp_path / "o.mp4")[0] == 48
    (tmp_path / "o.mp4").unlink()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4"]
    with pytest.raises(CganError, match="--start/--end cut video files; camera is live"):
        run_video(job(inputs=[FrameListSource([numbered(0)] * 3, live=True, name="camera")], start=1),
                  translator=Invert())
    import cv2
    cv2.imwrite(str(tmp_path / "p.png"), numbered(0))
    assert run(cli, ["--input", str(tmp_path / "p.png"), "--output", str(tmp_path / "q.png"), "--start", "1"]) == 2
    assert "--start applies to videos" in capsys.readouterr().err


def test_a_folder_cut_skips_the_videos_too_short(tmp_path):
    folder = tmp_path / "clips"
    folder.mkdir()
    make_clip(folder / "short.mp4", 12, fps=12)  # 1 s
    numbered_clip(folder / "long.mp4")  # 5 s
    s = run_video_folder(folder, tmp_path / "out", translator=Invert(), start=2.0, end=3.0, display=False,
                         progress=False, handle_signals=False)
    assert [Path(v["input"]).name for v in s.videos] == ["long.mp4"] and s.videos[0]["frames"] == 12
    assert len(s.failed) == 1 and "is at or after the end of" in s.failed[0]["error"]


@pytest.mark.parametrize("reader", ["opencv", "pyav"])
def test_a_start_near_the_end_of_a_variable_rate_file_is_found(tmp_path, reader):
    """5 s at 50 fps then 5 s at 10 fps: OpenCV takes 9.5 s for frame 9.5 x 30 (the average rate), past the last
    frame, and its seek gives nothing; the file is then read from its start. Both readers give the frame at 9.5 s."""
    from test_video_timing import vfr_clip

    times = [i / 50 for i in range(250)] + [5 + i / 10 for i in range(50)]
    clip = vfr_clip(tmp_path / "phone.mp4", times, sound=False)
    spec = parse_input(str(clip))
    source = Trimmed(CaptureSource(spec) if reader == "opencv" else pyav.FileSource(spec), 9.5)
    got = []
    while source.read() is not None:
        got.append(round(source.timestamp, 3))
    source.close()
    assert got == pytest.approx([9.5, 9.6, 9.7, 9.8, 9.9], abs=2e-3)


def test_a_source_without_times_is_timed_by_its_rate_and_not_seeked():
    """No timestamps (or times that never move on: OpenCV gives 0.0 for every frame of a raw .h264 file): the
    frames are counted from the start at the source's rate; a seek would lose the count, so none is made."""
    class Untimed(FrameListSource):
        def __init__(self, *a, stuck=False, **kw):
            super().__init__(*a, **kw)
            self.seeks, self.timestamp = [], (0.0 if stuck else None)

        def seek(self, t):
            self.seeks.append(t)
            self._i = int(t * self.fps)

    for stuck in (False, True):
        src = Untimed([numbered(i) for i in range(64)], fps=12, stuck=stuck)
        got = read_all(Trimmed(src, 5.0))
        assert src.seeks == [] and got[0] == (60, 5.0) and len(got) == 4
    with pytest.raises(CganError, match="neither times nor a frame rate"):
        Trimmed(Untimed([numbered(0)] * 3, fps=0), 1.0)


def test_a_raw_h264_file_is_cut_by_its_rate(tmp_path):
    """A raw H.264 stream has no container times (OpenCV says 0.0 for each frame): each reader cuts it by the rate
    it has for it, the 25 fps FFmpeg assumes (--start 1 is its 26th frame) unless given the rate its headers
    declare, as open_source gives PyAV's reader (test_video_pyav_source.py)."""
    raw = raw_h264(tmp_path / "cam.h264", [numbered(i) for i in range(48)], 12)
    for make in (CaptureSource, pyav.FileSource, lambda spec: pyav.FileSource(spec, rate=12)):
        source = make(parse_input(str(raw)))
        fps = source.fps
        got = read_all(Trimmed(source, 1.0, 1.5))
        assert [n for n, _ in got] == list(range(round(fps), round(1.5 * fps))), (make, fps)


def test_a_range_without_a_frame_is_one_line(tmp_path):
    clip = numbered_clip(tmp_path / "in.mp4")  # frames every 1/12 s: none in [1.03, 1.06)
    with pytest.raises(CganError, match=r"no frame of .* lies between --start 0:01.03 and --end 0:01.06 \(the next "
                                        r"is at 0:01.083\): widen them"):
        run_video(job(inputs=[str(clip)], output=str(tmp_path / "o.mp4"), start=1.03, end=1.06), translator=Invert())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4"]
    # a frame inside the range but within a quarter frame of --end: said so (it read 'the next is at 0:01.0',
    # inside the range given)
    with pytest.raises(CganError, match=r"between --start 0:01.0 and --end 0:01.01 \(its frame at 0:01.0 is within "
                                        r"a quarter frame of --end, where the output stops\): widen them"):
        run_video(job(inputs=[str(clip)], output=str(tmp_path / "o.mp4"), start=1.0, end=1.01), translator=Invert())


def test_clock_and_huge_times():
    from cgan.runtime.sources import clock

    assert [clock(t) for t in (0, 59.97, 59.9996, 1.0833, 90.5, 3599.9996, 3723.5)] == \
        ["0:00.0", "0:59.97", "1:00.0", "0:01.083", "1:30.5", "1:00:00.0", "1:02:03.5"]
    with pytest.raises(CganError, match="finite time"):
        parse_time(10 ** 400)


class Seekable(FrameListSource):
    """Frames at i / fps with their times; seek(t) lands `late` frames after t (OpenCV on a variable-rate file),
    and past the last frame gives nothing. Counts its reads."""

    def __init__(self, n: int, fps: float = 12.0, late: int = 0):
        super().__init__([numbered(i % 64) for i in range(n)], fps=fps)
        self.late, self.seeks, self.reads, self.timestamp = late, [], 0, None

    def read(self):
        frame = super().read()
        self.reads += frame is not None
        self.timestamp = None if frame is None else (self._i - 1) / self.fps
        return frame

    def seek(self, t):
        self.seeks.append(t)
        self._i = min(round(t * self.fps) + (self.late if t > 0 else 0), len(self._frames))


def test_a_start_far_past_the_end_is_said_without_reading_the_file():
    src = Seekable(1200)  # 100 s
    with pytest.raises(CganError, match=r"--start 3:20.0 is at or after the end of frames \(it lasts about 1:40.0\)"):
        Trimmed(src, 200.0)
    assert src.reads == 2 and src.seeks == [198.0]  # the two first frames, then one seek: no read through


def test_a_late_seek_steps_back_before_reading_from_the_beginning():
    """Seeks that land 2.5 s late: 10 s further back is early enough; the file is not read from its start."""
    src = Seekable(12 * 120, late=30)
    got = read_all(Trimmed(src, 60.0, 61.0))
    assert src.seeks == [58.0, 48.0]
    assert [t for _, t in got] == pytest.approx([60 + i / 12 for i in range(12)], abs=1e-3)
    assert src.reads < 12 * 20


def test_the_frame_count_estimate_counts_the_frames_in_the_range():
    assert Trimmed(Seekable(100, fps=10), 5.0, 5.35).frame_count == 4  # 5.0, 5.1, 5.2, 5.3
    assert Trimmed(Seekable(60), 2.5, 4.0).frame_count == 18
