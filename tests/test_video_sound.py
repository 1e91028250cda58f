"""A video file's sound copied into its translation (PyAV remux: packets copied, cut to the frames written, in
step with the first frame; encoded as AAC where the container refuses them); --no-sound, clips without sound,
sound that cannot be copied and a missing PyAV all still give the video."""
from __future__ import annotations

import logging
from fractions import Fraction
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from cgan._cli import run
from cgan.runtime import pyav as audio
from cgan.runtime.cli import cli
from cgan.runtime.video import VideoJob, run_video

from _helpers_video import Invert, make_clip, probe

av = pytest.importorskip("av")

RATE = 16000


def clip_with_sound(path: Path, seconds: float = 2.0, fps: int = 25, video_start: int = 0,
                    silent_until: float = 0.0, sound_seconds: float | None = None) -> Path:
    """A 64x48 mpeg4 clip with an AAC 440 Hz tone (silence before `silent_until` seconds); its first frame at
    `video_start` frame times (the sound starts at 0)."""
    with av.open(str(path), "w") as out:
        v = out.add_stream("mpeg4", rate=fps)
        v.width, v.height, v.pix_fmt = 64, 48, "yuv420p"
        a = out.add_stream("aac", rate=RATE, layout="mono")
        for i in range(int(seconds * fps)):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), i * 5 % 255, np.uint8), format="bgr24")
            frame.pts = video_start + i
            for p in v.encode(frame):
                out.mux(p)
        t, total = 0, int((seconds + video_start / fps if sound_seconds is None else sound_seconds) * RATE)
        while t < total:
            k = min(a.frame_size or 1024, total - t)
            n = np.arange(t, t + k)
            tone = np.where(n / RATE >= silent_until, 0.5 * np.sin(2 * np.pi * 440 * n / RATE), 0.0)
            frame = av.AudioFrame.from_ndarray(tone.astype(np.float32)[None, :], format="flt", layout="mono")
            frame.sample_rate, frame.pts = RATE, t
            for p in a.encode(frame):
                out.mux(p)
            t += k
        for s in (a, v):
            for p in s.encode(None):
                out.mux(p)
    return path


def streams(path: Path) -> dict[str, float]:
    """{'video': seconds, 'audio': seconds} of a file's streams (by their packets' times)."""
    found: dict[str, float] = {}
    with av.open(str(path)) as c:
        for s in c.streams:
            end = 0.0
            for p in c.demux(s):
                if p.pts is not None:
                    end = max(end, float((p.pts + (p.duration or 0)) * p.time_base))
            found[s.type] = end
            c.seek(0)
    return found


def sound_samples(path: Path) -> np.ndarray:
    with av.open(str(path)) as c:
        return np.concatenate([f.to_ndarray().reshape(-1) for f in c.decode(audio=0)])


def job(**kw) -> VideoJob:
    return VideoJob(display=False, progress=False, handle_signals=False, **kw)


#: the sound an AAC source gets in each container: copied, but for .avi (see test_avi_sound_is_pcm_in_step)
WRITTEN_AAC = {".mp4": "aac", ".mov": "aac", ".mkv": "aac", ".avi": "pcm_s16le (from aac)"}


def test_the_sound_is_copied_whole(tmp_path):
    src = clip_with_sound(tmp_path / "in.mp4")
    out = tmp_path / "out.mp4"
    s = run_video(job(inputs=[str(src)], output=str(out)), translator=Invert())
    assert s.frames == 50 and s.streams[0]["sound"] == "aac"
    got = streams(out)
    assert got["video"] == pytest.approx(2.0, abs=0.05) and got["audio"] == pytest.approx(2.0, abs=0.1)
    assert probe(out)[0] == 50
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "a temporary file was left"


@pytest.mark.parametrize("ext", [".avi", ".mkv", ".mov"])
def test_the_sound_goes_into_every_container(tmp_path, ext):
    src = clip_with_sound(tmp_path / "in.mp4", seconds=1.0)
    out = tmp_path / f"out{ext}"
    s = run_video(job(inputs=[str(src)], output=str(out)), translator=Invert())
    assert s.streams[0]["sound"] == WRITTEN_AAC[ext] and streams(out)["audio"] == pytest.approx(1.0, abs=0.1)


@pytest.mark.parametrize("ext", [".mkv", ".mp4", ".mov", ".avi"])
def test_a_file_with_sound_keeps_its_frame_rate_in_the_header(tmp_path, ext):
    """The remux with the sound copied the H.264 writer's 90 kHz codec rate: Matroska then declared frames of
    11 us, read as 30000 fps and 60000 frames (and a false 'damaged file' warning when read again)."""
    src = clip_with_sound(tmp_path / "in.mp4", seconds=2.0, fps=12)
    out = tmp_path / f"out{ext}"
    s = run_video(job(inputs=[str(src)], output=str(out)), translator=Invert())
    assert s.frames == 24 and s.streams[0]["sound"] == WRITTEN_AAC[ext]
    count, fps, _ = probe(out)
    assert fps == pytest.approx(12.0, abs=0.01) and count == 24
    with av.open(str(out)) as c:
        assert c.streams.video[0].average_rate == 12


def test_the_sound_of_a_matroska_file_goes_into_an_mp4(tmp_path):
    """Matroska gives some packets no decode time: they must still be copied (the first ones hold the key
    frame of the video and the start of the sound)."""
    src = clip_with_sound(tmp_path / "in.mkv", seconds=1.0)
    out = tmp_path / "out.mp4"
    s = run_video(job(inputs=[str(src)], output=str(out)), translator=Invert())
    assert s.streams[0]["sound"] == "aac" and probe(out)[0] == 25
    assert streams(out)["audio"] == pytest.approx(1.0, abs=0.1)
    mkv = tmp_path / "out.mkv"
    s = run_video(job(inputs=[str(out)], output=str(mkv)), translator=Invert())  # and back, H.264 with B-frames
    assert s.streams[0]["sound"] == "aac" and probe(mkv)[0] == 25


def test_the_sound_is_cut_to_the_frames_written(tmp_path):
    src = clip_with_sound(tmp_path / "in.mp4")
    out = tmp_path / "out.mp4"
    s = run_video(job(inputs=[str(src)], output=str(out), max_frames=10), translator=Invert())
    assert s.frames == 10
    assert streams(out)["audio"] == pytest.approx(0.4, abs=0.07)  # 10 frames at 25 fps, AAC packets of 64 ms


def test_the_sound_stays_in_step_with_the_first_frame(tmp_path):
    """The first frame is at 0.48 s and the tone starts there: the output's sound must start with the tone,
    not with the 0.48 s of silence before the first picture."""
    src = clip_with_sound(tmp_path / "in.mp4", seconds=1.0, video_start=12, silent_until=0.48)
    out = tmp_path / "out.mp4"
    s = run_video(job(inputs=[str(src)], output=str(out)), translator=Invert())
    assert s.streams[0]["sound"] == "aac"
    head = sound_samples(out)[int(0.1 * RATE):int(0.3 * RATE)]
    assert np.abs(head).mean() > 0.1, "the output's sound starts with the silence before the first picture"


def test_no_sound_and_clips_without_sound_give_the_video_alone(tmp_path, caplog):
    src = clip_with_sound(tmp_path / "in.mp4", seconds=1.0)
    caplog.set_level(logging.INFO)
    out = tmp_path / "quiet.mp4"
    s = run_video(job(inputs=[str(src)], output=str(out), sound=False), translator=Invert())
    assert s.streams[0]["sound"] is None and set(streams(out)) == {"video"}
    silent = make_clip(tmp_path / "silent.mp4", 8)
    out2 = tmp_path / "out2.mp4"
    s = run_video(job(inputs=[str(silent)], output=str(out2)), translator=Invert())
    assert s.streams[0]["sound"] is None and set(streams(out2)) == {"video"} and probe(out2)[0] == 8
    assert not [r for r in caplog.records if "sound" in r.getMessage()]


def test_an_audio_stream_without_sound_adds_nothing(tmp_path, caplog):
    src = clip_with_sound(tmp_path / "in.mkv", seconds=1.0, sound_seconds=0.0)
    out = tmp_path / "out.mp4"
    s = run_video(job(inputs=[str(src)], output=str(out)), translator=Invert())
    assert s.streams[0]["sound"] is None and set(streams(out)) == {"video"} and probe(out)[0] == 25
    assert not [r for r in caplog.records if "sound" in r.getMessage()]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_sound_that_cannot_be_copied_leaves_the_video_and_a_warning(tmp_path, monkeypatch, caplog):
    src = clip_with_sound(tmp_path / "in.mp4", seconds=1.0)

    def broken(video, source, out, seconds, found, encode=None, tags=None):
        Path(out).write_bytes(b"half a file")
        raise av.FFmpegError(22, "Invalid argument", str(out))  # FFmpeg names the file: the temp file's name

    monkeypatch.setattr(audio, "mux_sound", broken)
    out = tmp_path / "out.mp4"
    s = run_video(job(inputs=[str(src)], output=str(out)), translator=Invert())
    assert s.streams[0]["sound"] is None and probe(out)[0] == 25 and set(streams(out)) == {"video"}
    said = [r.getMessage() for r in caplog.records if "could not be copied" in r.getMessage()]
    assert len(said) == 1 and "the sound (aac)" in said[0] and "written without sound" in said[0]
    assert ".partial-" not in said[0], said[0]  # the temp file's name is not shown: the output's is
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "a temporary file was left"


def test_no_room_for_the_second_temp_file_keeps_the_video(tmp_path, monkeypatch, caplog):
    """The folder fills up (or is made read-only) between the video and the sound: the video is still given its
    name, the sound is said to be missing."""
    from cgan.runtime import video

    src = clip_with_sound(tmp_path / "in.mp4", seconds=1.0)
    real, made = video._exclusive_temp, []

    def second_fails(*args):
        made.append(args)
        if len(made) == 3:  # the probe, the video, then the video with sound
            raise OSError(28, "No space left on device")
        return real(*args)

    monkeypatch.setattr(video, "_exclusive_temp", second_fails)
    out = tmp_path / "out.mp4"
    s = run_video(job(inputs=[str(src)], output=str(out)), translator=Invert())
    assert len(made) == 3 and s.streams[0]["sound"] is None and probe(out)[0] == 25
    assert any("No space left on device" in r.getMessage() for r in caplog.records)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_without_pyav_the_video_is_written_and_that_is_said(tmp_path, monkeypatch, caplog):
    src = clip_with_sound(tmp_path / "in.mp4", seconds=1.0)
    monkeypatch.setattr(audio, "_av", lambda: None)
    caplog.set_level(logging.INFO)
    out = tmp_path / "out.mp4"
    s = run_video(job(inputs=[str(src)], output=str(out)), translator=Invert())
    assert s.streams[0]["sound"] is None and probe(out)[0] == 25
    assert any("PyAV is not installed" in r.getMessage() for r in caplog.records)


def test_cli_sound_flags(tmp_path, capsys):
    src = clip_with_sound(tmp_path / "in.mp4", seconds=0.5)
    code = run(cli, ["--input", str(src), "--output", str(tmp_path / "o.mkv"), "--no-display", "--no-progress",
                     "--backend", "ort-cpu", "--no-sound"])
    assert code == 0 and set(streams(tmp_path / "o.mkv")) == {"video"}, capsys.readouterr().err
    photo = tmp_path / "p.png"
    import cv2
    cv2.imwrite(str(photo), np.zeros((8, 8, 3), np.uint8))
    code = run(cli, ["--input", str(photo), "--output", str(tmp_path / "q.png"), "--sound", "--no-progress"])
    assert code == 2 and "--sound applies to videos" in capsys.readouterr().err
    code = run(cli, ["--input", str(photo), "--output", str(tmp_path / "q.png"), "--no-sound", "--no-progress",
                     "--backend", "ort-cpu"])
    assert code == 0, capsys.readouterr().err


def clip_with_other_sound(path: Path, codec: str, seconds: float = 2.0, fps: int = 25,
                          silent_until: float = 0.0) -> Path:
    """A 64x48 mpeg4 clip with a 440 Hz stereo tone in `codec` (pcm_s16le in .avi, opus in .mkv: codecs .mp4 and
    .mov cannot hold as they are), silent before `silent_until` seconds."""
    with av.open(str(path), "w") as out:
        v = out.add_stream("mpeg4", rate=fps)
        v.width, v.height, v.pix_fmt = 64, 48, "yuv420p"
        a = out.add_stream(codec, rate=48000, layout="stereo")
        for i in range(int(seconds * fps)):
            for p in v.encode(av.VideoFrame.from_ndarray(np.full((48, 64, 3), i * 5 % 255, np.uint8), format="bgr24")):
                out.mux(p)
        to_codec = av.AudioResampler(format=a.codec_context.format.name, layout="stereo", rate=48000)
        t, total, k = 0, int(seconds * 48000), a.codec_context.frame_size or 1024
        while t < total:
            n = np.arange(t, min(t + k, total))
            tone = np.where(n / 48000 >= silent_until, 0.5 * np.sin(2 * np.pi * 440 * n / 48000), 0.0)
            frame = av.AudioFrame.from_ndarray(np.stack([tone, tone]).astype(np.float32), format="fltp",
                                               layout="stereo")
            frame.sample_rate, frame.pts = 48000, t
            for part in to_codec.resample(frame):
                for p in a.encode(part):
                    out.mux(p)
            t += len(n)
        for s in (a, v):
            for p in s.encode(None):
                out.mux(p)
    return path


@pytest.mark.parametrize("src_name, codec, out_ext", [("cam.avi", "pcm_s16le", ".mp4"), ("web.mkv", "opus", ".mov")])
def test_a_sound_the_container_cannot_hold_is_encoded_as_aac(tmp_path, caplog, src_name, codec, out_ext):
    """PCM from an .avi into .mp4, Opus into .mov: the muxer refuses the packets (the output had no sound, with a
    warning); they are decoded and encoded as AAC, cut to the frames written, and an info line says so."""
    import logging

    src = clip_with_other_sound(tmp_path / src_name, codec)
    out = tmp_path / f"out{out_ext}"
    with caplog.at_level(logging.INFO):
        s = run_video(job(inputs=[str(src)], output=str(out), max_frames=30), translator=Invert())
    assert s.frames == 30 and s.streams[0]["sound"] == f"aac (from {codec})"
    assert sum("encoded as AAC" in r.getMessage() for r in caplog.records) == 1
    got = streams(out)
    assert got["video"] == pytest.approx(1.2, abs=0.01) and got["audio"] == pytest.approx(1.2, abs=0.05)
    with av.open(str(out)) as c:
        assert c.streams.audio[0].codec_context.name == "aac" and c.streams.audio[0].rate == 48000
    sound = sound_samples(out)
    assert np.sqrt(np.mean(sound[len(sound) // 8:-len(sound) // 8] ** 2)) == pytest.approx(0.5 / np.sqrt(2), rel=0.1)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "a temporary file was left"


@pytest.mark.parametrize("out_ext, written", [(".mp4", "aac (from pcm_s16le)"), (".m4v", "aac (from pcm_s16le)"),
                                              (".mov", "pcm_s16le"), (".mkv", "pcm_s16le")])
def test_pcm_is_encoded_as_aac_for_mp4_only(tmp_path, caplog, out_ext, written):
    """PCM from a camera's .mov went into .mp4 as it is (FFmpeg takes the packets), which browsers and most
    players do not play: it is encoded as AAC, with an info line saying why; .mov and .mkv keep it as it is."""
    import logging

    src = clip_with_other_sound(tmp_path / "cam.mov", "pcm_s16le", seconds=1.0)
    out = tmp_path / f"out{out_ext}"
    with caplog.at_level(logging.INFO):
        s = run_video(job(inputs=[str(src)], output=str(out)), translator=Invert())
    assert s.frames == 25 and s.streams[0]["sound"] == written
    with av.open(str(out)) as c:
        assert c.streams.audio[0].codec_context.name == written.split()[0]
    said = [r.getMessage() for r in caplog.records if "encoded as AAC" in r.getMessage()]
    assert len(said) == (written != "pcm_s16le") and all("plays in few players" in m for m in said)
    assert streams(out)["audio"] == pytest.approx(1.0, abs=0.05)


@pytest.mark.parametrize("out_ext", [".mp4", ".avi"])
def test_a_sound_that_cannot_be_encoded_first_is_copied_with_a_warning(tmp_path, monkeypatch, caplog, out_ext):
    """Encoding first is a choice, not a need -- PCM for .mp4 (few players play it there), every sound for .avi
    (AVI cannot place a copied one): when it fails the sound is copied as it is (as before), and a warning says
    what that costs."""
    import logging

    if out_ext == ".mp4":
        src, sound, words = clip_with_other_sound(tmp_path / "cam.mov", "pcm_s24le", seconds=1.0), "pcm_s24le", \
            "copied as it is"
    else:
        src, sound, words = clip_with_sound(tmp_path / "in.mp4", seconds=1.0), "aac", "may play early or late"
    real = audio.mux_sound

    def no_encoder(video, source, out, seconds, found, encode=None, tags=None):
        if encode:
            raise ValueError("no encoder here")
        return real(video, source, out, seconds, found)

    monkeypatch.setattr(audio, "mux_sound", no_encoder)
    out = tmp_path / f"out{out_ext}"
    with caplog.at_level(logging.INFO):
        s = run_video(job(inputs=[str(src)], output=str(out)), translator=Invert())
    assert s.streams[0]["sound"] == sound and streams(out)["audio"] == pytest.approx(1.0, abs=0.1)
    said = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(said) == 1 and "no encoder here" in said[0] and words in said[0]


def test_an_encoded_sound_starts_with_the_cut(tmp_path):
    """--start 1.0 on PCM that is silent until 1.5 s: the encoded sound is silent for 0.5 s, then the tone."""
    src = clip_with_other_sound(tmp_path / "cam.avi", "pcm_s16le", seconds=3.0, silent_until=1.5)
    out = tmp_path / "out.mp4"
    s = run_video(job(inputs=[str(src)], output=str(out), start=1.0, end=2.6), translator=Invert())
    assert s.frames == 40 and s.streams[0]["sound"] == "aac (from pcm_s16le)"
    sound = np.abs(sound_samples(out).reshape(-1))
    rate = 48000 * 2  # interleaved stereo as decoded (fltp planes concatenated per frame: any order, same level)
    assert sound[int(0.1 * rate):int(0.4 * rate)].mean() < 0.02 and sound[int(0.6 * rate):int(1.4 * rate)].mean() > 0.2


def burst_clip(path: Path, codec: str = "pcm_s16le", seconds: float = 3.0, audio_start: float = 0.0,
               gap: tuple[float, float] | None = None, bursts: tuple[float, ...] = (1.0, 2.0),
               layout: str = "stereo", rate: int = 48000) -> Path:
    """A 64x48 mpeg4 clip at 25 fps whose sound starts at `audio_start` and is silent but for 20 ms 1 kHz bursts
    at `bursts` (seconds in the file), with no sound packets in `gap`: where a sound lands can be read back."""
    with av.open(str(path), "w") as out:
        v = out.add_stream("mpeg4", rate=25)
        v.width, v.height, v.pix_fmt = 64, 48, "yuv420p"
        a = out.add_stream(codec, rate=rate, layout=layout)
        to_codec = av.AudioResampler(format=a.codec_context.format.name, layout=layout, rate=rate)
        packets = []
        for i in range(int(seconds * 25)):
            packets += v.encode(av.VideoFrame.from_ndarray(np.full((48, 64, 3), i * 5 % 255, np.uint8),
                                                           format="bgr24"))
        packets += v.encode(None)
        t, k = round(audio_start * rate), a.codec_context.frame_size or 1024
        channels = a.codec_context.layout.nb_channels
        while t < seconds * rate:
            ts = np.arange(t, t + k) / rate
            x = sum(np.where((ts >= b) & (ts < b + 0.02), 0.5 * np.sin(2 * np.pi * 1000 * (ts - b)), 0.0)
                    for b in bursts)
            if gap is None or not gap[0] <= t / rate < gap[1]:
                frame = av.AudioFrame.from_ndarray(np.repeat(x[None, :], channels, 0).astype(np.float32),
                                                   format="fltp", layout=layout)
                frame.sample_rate, frame.pts, frame.time_base = rate, t, Fraction(1, rate)
                for part in to_codec.resample(frame):
                    packets += a.encode(part)
            t += k
        packets += a.encode(None)
        for p in sorted(packets, key=lambda p: float(p.dts * p.time_base) if p.dts is not None else 0.0):
            out.mux(p)
    return path


def burst_times(path: Path) -> list[float]:
    """Where the bursts of burst_clip start in a file's decoded sound (seconds, by the frames' times)."""
    found, last = [], -1.0
    with av.open(str(path)) as c:
        for frame in c.decode(audio=0):
            loud = np.flatnonzero(np.abs(frame.to_ndarray()[0]) > 0.1)
            for i in loud:
                t = float(frame.time) + i / frame.sample_rate
                if t - last > 0.1:
                    found.append(round(t, 3))
                last = t if loud.size else last
    return found


@pytest.mark.parametrize("case, src_name, codec, out_ext, options, start", [
    ("sound starting after the picture", "web.mkv", "opus", ".mov", dict(audio_start=0.5), None),
    ("a gap before --start", "web.mkv", "opus", ".mov", dict(gap=(0.2, 0.4)), 1.0),
    ("ADPCM (refused by PyAV's stream template)", "cam.avi", "adpcm_ima_wav", ".mp4", {}, None),
])
def test_an_encoded_sound_stays_in_step(tmp_path, case, src_name, codec, out_ext, options, start):
    """Encoded as AAC, the sound is placed by its frames' times, where a player puts it in the source: a late start
    stays late and a gap stays a gap (they moved everything after them earlier); ADPCM, which PyAV refuses with a
    ValueError rather than FFmpeg's EINVAL, is encoded too (it came out silent)."""
    src = burst_clip(tmp_path / src_name, codec, bursts=(1.0, 2.0), **options)
    heard = burst_times(src)
    assert heard == pytest.approx([1.0, 2.0], abs=0.005) or src_name.endswith(".avi"), heard
    out = tmp_path / f"out{out_ext}"
    s = run_video(job(inputs=[str(src)], output=str(out), start=start), translator=Invert())
    assert s.streams[0]["sound"] == f"aac (from {codec})", case
    want = [t - (start or 0.0) for t in heard if t >= (start or 0.0)]
    assert burst_times(out) == pytest.approx(want, abs=0.005), case


def onsets(path: Path) -> list[float]:
    """Where the bursts of burst_clip start in a file's sound, by its samples counted from the first (what a
    player of a container that cannot place a sound, AVI, plays), any sample format."""
    with av.open(str(path)) as c:
        a = c.streams.audio[0]
        rate = a.codec_context.sample_rate
        mono = av.AudioResampler(format="flt", layout="mono", rate=rate)
        x = np.concatenate([part.to_ndarray().reshape(-1) for f in c.decode(a) for part in mono.resample(f)])
    loud = np.flatnonzero(np.abs(x) > 0.1)
    return [round(float(i) / rate, 4) for k, i in enumerate(loud) if k == 0 or i - loud[k - 1] > rate // 10]


@pytest.mark.parametrize("src_name, codec, options", [
    ("late.mp4", "aac", dict(audio_start=0.5)),  # copied, it played 0.48 s early
    ("web.mkv", "opus", dict(audio_start=0.5)),  # encoded as AAC, its priming played it 21 ms late
    ("cam.avi", "pcm_s16le", {}),
])
def test_avi_sound_is_pcm_in_step(tmp_path, src_name, codec, options):
    """AVI cannot say where a sound starts nor how many samples an encoder put before it: a sound is written
    into .avi as PCM, placed by its times (silence before a late start), so the bursts at 1 s and 2 s are heard
    at 1 s and 2 s of the output."""
    src = burst_clip(tmp_path / src_name, codec, bursts=(1.0, 2.0), **options)
    out = tmp_path / "out.avi"
    s = run_video(job(inputs=[str(src)], output=str(out)), translator=Invert())
    assert s.streams[0]["sound"] == ("pcm_s16le" if codec == "pcm_s16le" else f"pcm_s16le (from {codec})")
    assert onsets(out) == pytest.approx([1.0, 2.0], abs=0.005)
    with av.open(str(out)) as c:
        assert c.streams.audio[0].codec_context.name == "pcm_s16le"
        first = next(p for p in c.demux(c.streams.video[0]) if p.pts is not None)
        assert first.pts == 0  # the pictures start at 0 too


def test_avi_sound_keeps_every_channel(tmp_path):
    """PCM in .avi holds any number of channels: a 5.1 sound stays 5.1 (it was mixed down to stereo)."""
    src = burst_clip(tmp_path / "s51.mkv", "ac3", seconds=2.0, layout="5.1", bursts=(1.0,))
    out = tmp_path / "out.avi"
    s = run_video(job(inputs=[str(src)], output=str(out)), translator=Invert())
    assert s.streams[0]["sound"] == "pcm_s16le (from ac3)"
    with av.open(str(out)) as c:
        assert c.streams.audio[0].codec_context.layout.nb_channels == 6
    assert onsets(out) == pytest.approx([1.0], abs=0.005)


@pytest.mark.parametrize("ext", [".avi", ".mp4"])
def test_a_sound_that_starts_after_the_last_frame_adds_nothing(tmp_path, ext):
    """The sound starts at 2 s, the output stops at 1 s: no track of silence (an encoded sound filled the whole
    output with it, which every .avi now is)."""
    src = burst_clip(tmp_path / "late.mkv", "pcm_s16le", seconds=3.0, audio_start=2.0, bursts=(2.5,))
    out = tmp_path / f"out{ext}"
    s = run_video(job(inputs=[str(src)], output=str(out), max_frames=25), translator=Invert())
    assert s.frames == 25 and s.streams[0]["sound"] is None
    with av.open(str(out)) as c:
        assert [st.type for st in c.streams] == ["video"]


def test_a_7_1_sound_into_avi_is_mixed_to_5_1(tmp_path):
    """PyAV 18 crashes the process (a segfault) on planar frames of 8 channels: a 7.1 sound into .avi, kept as it
    was, took the whole run down with it. It is mixed to 5.1 instead (run in a child process: a crash is a
    failure here, not the end of the test run)."""
    src = tmp_path / "s71.mkv"  # made with packed samples: PyAV's planar frames of 8 channels are what crashes
    with av.open(str(src), "w") as c:
        v = c.add_stream("mpeg4", rate=25)
        v.width, v.height, v.pix_fmt = 64, 48, "yuv420p"
        a = c.add_stream("pcm_s16le", rate=48000, layout="7.1")
        packets = [p for i in range(38) for p in v.encode(
            av.VideoFrame.from_ndarray(np.full((48, 64, 3), i * 5, np.uint8), format="bgr24"))] + v.encode(None)
        for t in range(0, 72000, 1024):
            ts = np.arange(t, t + 1024) / 48000
            x = np.where((ts >= 1.0) & (ts < 1.02), 0.5 * np.sin(2 * np.pi * 1000 * (ts - 1.0)), 0.0)
            pcm = (np.repeat(x[:, None], 8, 1) * 32767).astype(np.int16).reshape(1, -1)
            frame = av.AudioFrame.from_ndarray(pcm, format="s16", layout="7.1")
            frame.sample_rate, frame.pts, frame.time_base = 48000, t, Fraction(1, 48000)
            packets += a.encode(frame)
        packets += a.encode(None)
        for p in sorted(packets, key=lambda p: float(p.dts * p.time_base) if p.dts is not None else 0.0):
            c.mux(p)
    out = tmp_path / "out.avi"
    code = ("import sys; sys.path.insert(0, sys.argv[3]); from _helpers_video import Invert; "
            "from cgan.runtime.video import VideoJob, run_video; "
            "s = run_video(VideoJob(inputs=[sys.argv[1]], output=sys.argv[2], display=False, progress=False, "
            "handle_signals=False), translator=Invert()); print(s.streams[0]['sound'])")
    p = subprocess.run([sys.executable, "-c", code, str(src), str(out), str(Path(__file__).parent)],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0 and p.stdout.strip() == "pcm_s16le", (p.returncode, p.stderr[-1500:])
    with av.open(str(out)) as c:
        assert c.streams.audio[0].codec_context.layout.nb_channels == 6
    assert onsets(out) == pytest.approx([1.0], abs=0.005)


def test_an_input_replaced_or_written_over_while_read(tmp_path, caplog):
    """The sound is read again by the input's path when the output is finalized, and so were the file's ends: a
    file put in the input's place mid-run gave the output the new file's sound, exit 0; one written over in place
    by a shorter clip ended the output early, exit 0, as if it were the end."""
    import os

    src = clip_with_sound(tmp_path / "in.mp4")
    other = clip_with_sound(tmp_path / "other.mp4", seconds=1.0)

    def replace_at_10(stream, frame, out):
        if not hasattr(replace_at_10, "done") and os.path.exists(other):
            replace_at_10.done = True
            os.replace(other, src)  # a rename: the file opened is still read whole

    out = tmp_path / "out.mp4"
    with caplog.at_level(logging.WARNING):
        s = run_video(job(inputs=[str(src)], output=str(out), on_frame=replace_at_10), translator=Invert())
    assert s.frames == 50 and s.streams[0]["cut_short"] is None  # the pictures: all of the opened file's
    assert s.streams[0]["sound"] is None and "audio" not in streams(out)
    assert "was replaced, deleted or written over while it was translated: its sound is not copied" in caplog.text

    src = clip_with_sound(tmp_path / "in2.mp4", seconds=4.0)
    short = clip_with_sound(tmp_path / "short.mp4", seconds=1.0).read_bytes()

    def overwrite(stream, frame, out):
        if not hasattr(overwrite, "done"):
            overwrite.done = True
            with open(src, "r+b") as f:  # in place: the same file, another length
                f.write(short)
                f.truncate()

    caplog.clear()
    with caplog.at_level(logging.WARNING):
        s = run_video(job(inputs=[str(src)], output=str(tmp_path / "out2.mp4"), on_frame=overwrite),
                      translator=Invert())
    # (this small file was read ahead before it changed; a large one ended early: what was read is unknown)
    assert "changed while it was read" in (s.streams[0]["cut_short"] or ""), s.streams
    assert s.incomplete  # cgan-video exits 1

    # a new time alone (`touch`, a sync client, rsync -t) on a file read whole: neither cut short nor without sound
    src = clip_with_sound(tmp_path / "in3.mp4")

    def touch(stream, frame, out):
        if not hasattr(touch, "done"):
            touch.done = True
            os.utime(src, (1e9, 1e9))

    s = run_video(job(inputs=[str(src)], output=str(tmp_path / "out3.mp4"), on_frame=touch), translator=Invert())
    assert s.streams[0]["cut_short"] is None and s.streams[0]["sound"] == "aac" and not s.incomplete


def test_a_file_written_over_is_cut_short_when_pyav_reads_it(tmp_path):
    """PyAV's reader (BT.709 files on OpenCV 4, AV1, interlaced, mirrored) did not check the file at its end: a
    file written over while read ended the output early, exit 0."""
    from cgan.runtime.sources import parse_input

    src = clip_with_sound(tmp_path / "in.mp4", seconds=4.0)
    short = clip_with_sound(tmp_path / "short.mp4", seconds=1.0).read_bytes()
    reader = audio.open_file_source(parse_input(str(src)))  # as open_source picks it for a BT.709 file
    assert type(reader).__name__ == "FileSource"

    def overwrite(stream, frame, out):
        if not hasattr(overwrite, "done"):
            overwrite.done = True
            with open(src, "r+b") as f:
                f.write(short)
                f.truncate()

    s = run_video(job(inputs=[reader], output=str(tmp_path / "o.mp4"), on_frame=overwrite), translator=Invert())
    assert "changed while it was read" in (s.streams[0]["cut_short"] or ""), s.streams
    assert s.incomplete


def test_another_writer_of_the_same_output_is_said(tmp_path, caplog):
    """Two runs with one --output: each ended with 'wrote …' and the last rename won, without a word."""
    out = tmp_path / "out.mp4"
    out.write_bytes(b"an earlier run's file")  # there when the run began: replaced without a warning
    src = make_clip(tmp_path / "in.mp4", 12)

    def other_writer(stream, frame, output):
        if not hasattr(other_writer, "done"):
            other_writer.done = True
            out.write_bytes(b"the other run's file, finished meanwhile")

    with caplog.at_level(logging.WARNING):
        s = run_video(job(inputs=[str(src)], output=str(out), on_frame=other_writer), translator=Invert())
    assert s.frames == 12 and probe(out)[0] == 12
    assert "was written by another program while this run translated" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        run_video(job(inputs=[str(src)], output=str(out)), translator=Invert())
    assert "another program" not in caplog.text


def _recording(path: Path, tone: float, grey: int, fps: int = 10, seconds: float = 1.0) -> bytes:
    """An MPEG-TS recording: H.264 frames of one grey and an AAC tone, both from time 0."""
    with av.open(str(path), "w", format="mpegts") as out:
        v = out.add_stream("libx264", rate=fps)
        v.width, v.height, v.pix_fmt = 64, 48, "yuv420p"
        a = out.add_stream("aac", rate=RATE, layout="mono")
        for i in range(int(seconds * fps)):
            for p in v.encode(av.VideoFrame.from_ndarray(np.full((48, 64, 3), grey, np.uint8), format="bgr24")):
                out.mux(p)
        for p in v.encode(None):
            out.mux(p)
        for t in range(0, int(seconds * RATE), 1024):
            x = (0.3 * np.sin(2 * np.pi * tone * np.arange(t, t + 1024) / RATE)).astype(np.float32)[None]
            frame = av.AudioFrame.from_ndarray(x, format="fltp", layout="mono")
            frame.sample_rate, frame.pts = RATE, t
            for p in a.encode(frame):
                out.mux(p)
        for p in a.encode(None):
            out.mux(p)
    return path.read_bytes()


@pytest.mark.parametrize("ext, codec", [(".mp4", None), (".mkv", None), (".avi", None), (".mp4", "mp4v")])
def test_the_sound_of_two_joined_recordings_follows_their_pictures(tmp_path, caplog, ext, codec):
    """Two recordings joined (`cat a.ts b.ts`: the times go back at the join): the pictures go on after the first
    recording's, and so does the sound now. The second recording's sound was dropped (1.0 s of sound under 2.0 s
    of picture, exit 0, no warning), the copy refused by the muxer ('Invalid argument ... returned 22'), and the
    .avi run warned of a variable frame rate 1 s off."""
    joined = tmp_path / "joined.ts"
    joined.write_bytes(_recording(tmp_path / "a.ts", 440, 60) + _recording(tmp_path / "b.ts", 1500, 200))
    out = tmp_path / f"out{ext}"
    with caplog.at_level(logging.INFO):
        s = run_video(job(inputs=[str(joined)], output=str(out), **({"codec": codec} if codec else {})),
                      translator=Invert())
    assert s.frames == 20 and [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
    assert not any("returned 22" in r.getMessage() for r in caplog.records)
    found = streams(out)
    assert abs(found["video"] - 2.0) < 0.02 and abs(found["audio"] - 2.0) < 0.06, found
    x = sound_samples(out).astype(np.float64)  # (mono, as the source)
    with av.open(str(out)) as c:
        rate = c.streams.audio[0].rate

    def tone(seconds: float) -> float:
        part = x[int(seconds * rate):int((seconds + 0.2) * rate)]
        return float(np.fft.rfftfreq(part.size, 1 / rate)[np.abs(np.fft.rfft(part)).argmax()])

    assert abs(tone(0.4) - 440) < 20 and abs(tone(1.4) - 1500) < 20, (tone(0.4), tone(1.4))


@pytest.mark.parametrize("sound", [True, False])
def test_a_sound_ffmpeg_does_not_know_leaves_the_video_translated_without_it(tmp_path, sound, caplog):
    """A Matroska file whose audio codec this FFmpeg has no decoder for: PyAV gives its stream no codec context,
    and reading the codec's name crashed every run of the file (an AttributeError traceback, nothing written),
    --no-sound too. The video is translated; with --sound the output says it has no sound."""
    data = bytearray(clip_with_sound(tmp_path / "src.mkv", seconds=1.0).read_bytes())
    at = data.find(b"A_AAC")
    assert at > 0
    data[at:at + 5] = b"A_XYZ"  # (a codec id FFmpeg does not know)
    odd = tmp_path / "odd.mkv"
    odd.write_bytes(bytes(data))
    assert audio.probe(odd).audio.codec == "unknown"
    s = run_video(VideoJob(inputs=[str(odd)], output=str(tmp_path / "o.mp4"), sound=sound, display=False,
                           progress=False, handle_signals=False), translator=Invert())
    assert s.frames == 25 and s.streams[0]["sound"] is None and probe(tmp_path / "o.mp4")[0] == 25
    assert ("written without sound" in caplog.text) == sound


def test_ctrl_c_while_the_sound_is_remuxed_leaves_no_temp_file(tmp_path, monkeypatch):
    """A KeyboardInterrupt (an app's Ctrl-C handler, handle_signals=False) while the finished video was remuxed
    with its sound: the output was kept, but the remux's own `.partial-...` file stayed beside it."""
    src = clip_with_sound(tmp_path / "src.mp4")
    real, pressed = audio._interleave, []

    def interleave(dst, video, v_out, sound, a_out):
        def sound_then_ctrl_c():
            for k, packet in enumerate(sound):
                if k == 10 and not pressed:  # (once: the run then finishes the output again, whole)
                    pressed.append(True)
                    raise KeyboardInterrupt
                yield packet
        return real(dst, video, v_out, sound_then_ctrl_c(), a_out)

    monkeypatch.setattr(audio, "_interleave", interleave)
    out = tmp_path / "out.mp4"
    with pytest.raises(KeyboardInterrupt) as e:
        run_video(VideoJob(inputs=[str(src)], output=str(out), display=False, progress=False,
                           handle_signals=False), translator=Invert())
    assert e.value.summary.outputs == [str(out)] and probe(out)[0] == 50
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4", "src.mp4"]


def test_ctrl_c_while_the_h264_encoder_is_flushed_keeps_the_video(tmp_path, monkeypatch):
    """A KeyboardInterrupt while the H.264 writer muxed the frames its encoder gave up at release: the run
    finishes the output again, whose release flushed the encoder a second time ("End of file"), and the whole
    video was thrown away without a word (outputs []). The flush goes on where it was."""
    src = make_clip(tmp_path / "src.avi", 30, fourcc="MJPG")
    real, pressed = audio.H264Writer._mux_timed, []

    def mux_timed(self, end=False):
        if end and not pressed and self.frames == 30:  # (the output's writer, not check_output's test one)
            pressed.append(True)
            raise KeyboardInterrupt
        return real(self, end)

    monkeypatch.setattr(audio.H264Writer, "_mux_timed", mux_timed)
    out = tmp_path / "out.mp4"
    with pytest.raises(KeyboardInterrupt) as e:
        run_video(VideoJob(inputs=[str(src)], output=str(out), display=False, progress=False,
                           handle_signals=False), translator=Invert())
    assert pressed and e.value.summary.outputs == [str(out)] and probe(out)[0] == 30
