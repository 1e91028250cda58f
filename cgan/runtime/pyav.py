"""What PyAV (FFmpeg's libraries; `av` comes with the [runtime], [cpu] and [gpu] extras) adds to OpenCV's video
I/O: H.264 files that every player and browser plays (OpenCV's writer has MPEG-4 part 2 and MJPG only), the
source's sound, and inputs OpenCV cannot decode. No torch.

- `H264Writer`: cv2.VideoWriter's interface over libx264 (CRF 20, preset superfast, yuv420p BT.709, tagged so;
  MP4/MOV written with the index first, "faststart", so a browser starts playing before it has the whole file).
- `FileSource`: video files OpenCV's FFmpeg cannot decode (AV1), read with PyAV instead; interlaced files,
  deinterlaced; mirrored ones (a display matrix OpenCV takes for a turn); and where this OpenCV does not convert
  by the colour tags (`opencv_manages_colour`), BT.709 files, and HDR ones tone mapped by cgan.runtime.hdr.
- `mux_sound`: the finished video remuxed with the first audio stream of its source file. Packets are copied,
  not re-encoded: no quality lost, no time spent; where the container refuses them (ADPCM or µ-law into .mp4,
  Opus into .mov) or few players play them from it (PCM in .mp4), `encode="aac"` decodes them and encodes AAC,
  placed by the frames' times; into .avi, which cannot place a sound, it is always encoded, as PCM with silence
  before a late start. The sound is cut to the frames written (--start/--end, --max-frames, Ctrl-C) and
  kept in step with the first frame.
"""
from __future__ import annotations

import bisect
import collections
import contextlib
import functools
import heapq
import itertools
import logging
import math
import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Iterator, NamedTuple

import numpy as np

from cgan._optional import optional_module

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SourceAudio:
    """A file's first audio stream: its codec, and where the file's first video frame starts (seconds)."""

    codec: str
    video_start: float


def _av() -> Any:
    return optional_module("av")


def available() -> bool:
    return _av() is not None



def has_h264() -> bool:
    """Whether this PyAV can encode H.264 (its wheels bundle libx264; a PyAV built on a system FFmpeg may not)."""
    av = _av()
    if av is None:
        return False
    try:
        av.codec.Codec("libx264", "w")
    except Exception:  # noqa: BLE001 - UnknownCodecError, or anything else: not available here
        return False
    return True


#: FFmpeg's numbers for BT.709 (AVColorSpace, AVColorPrimaries and AVColorTransferCharacteristic alike) and for
#: limited ("tv", 16-235) range
BT709, LIMITED_RANGE = 1, 1


class H264Writer:
    """cv2.VideoWriter's interface (isOpened, write, release) over PyAV's libx264. As cv2's writer, it does not
    raise while writing: the first error is kept in `error` and the rest of the frames are dropped, for the
    caller to report once the file is closed.

    Unlike cv2's writer it keeps a frame's time when given one (`write(frame, t)`, seconds from the first frame):
    a phone's variable-frame-rate clip stays in step with its sound. Times are kept to the tick (at least
    1/90,000 s, a whole number of ticks per frame at the nominal `fps`, so a constant-rate input comes out exactly
    constant); a time not after the previous frame's (a source without times) is that frame's plus one frame, and
    a frame whose time moved on from the one given before, but not past the frame written before it, follows that
    frame by a millisecond (so a single repeated time does not shift the rest of the clip); a time more than a frame
    before the one given before (two recordings joined) is a break: the frames after it keep their spacing, one
    frame after the last one written.

    Each frame lasts until the next one's time (the last as long as the one before it), and the file says so:
    the encoder's packets are muxed once the next frame's time is known, with that duration. With B-frames the
    MP4/MOV muxer times samples in decode order, so a rate that changes near the end left the file up to a few
    frames short of its last picture; its last sample is given the rest of the time."""

    CRF, PRESET = 20, "superfast"  # the default quality (cgan-video --crf) and speed
    TICKS_PER_SECOND = 90_000  # the least; MPEG's clock
    TIMES_KEPT = 1024  # frame times kept for the packets still in the encoder (libx264 holds a few dozen at most)
    keeps_times = True

    def __init__(self, path: str | os.PathLike, fps: float, size: tuple[int, int], crf: int | None = None,
                 sar: Fraction | None = None):
        self.error: Exception | None = None
        self.crf = self.CRF if crf is None else crf  # libx264's constant rate factor: 0 lossless .. 51 smallest
        self.frames = 0
        self._container: Any = None
        rate = Fraction(fps).limit_denominator(1001)
        per = -(-self.TICKS_PER_SECOND // rate.numerator)  # ticks per rate.numerator-th of a second, rounded up
        self._tick = Fraction(1, rate.numerator * per)
        self._frame_ticks = rate.denominator * per  # one frame at the nominal rate
        self._last: int | None = None  # the previous frame's pts, in ticks
        self._given: int | None = None  # the latest time given with a frame, in ticks
        self._shift = 0  # ticks added to the times given since a jump back (see write)
        self._last_step = self._frame_ticks  # the previous frame's duration: the last frame's is taken as the same
        self._times: list[int] = []  # the latest frames' pts, increasing: a packet lasts until the next one's
        self._held: collections.deque[Any] = collections.deque()  # packets waiting for their duration, in order
        self._flushed = False  # the encoder gave up the frames it held (release)
        self._decode_order_timed = _format(Path(path)) in ("mp4", "mov")  # sample durations from decode times
        self._first: tuple[int | None, int | None] | None = None  # the first packet's (pts, dts)
        try:
            self._container = _open_output(Path(path))
            self._stream = self._container.add_stream(
                "libx264", rate=rate, options={"crf": str(self.crf), "preset": self.PRESET})
            self._stream.width, self._stream.height = size
            self._stream.pix_fmt = "yuv420p"
            context = self._stream.codec_context
            # x264's frame threads (PyAV's default asks for slice threads, which x264 splits each frame into):
            # on the 2-core VM 106 vs 88 fps at 720p superfast, +2 % bytes; they scale with the cores, as the encoder
            # had to keep up with a GPU's 164 fps at 720p (benchmarks/video_codecs.py)
            context.thread_type = "FRAME"
            context.time_base = self._tick
            # BT.709, said in the stream: players take untagged HD video as BT.709, and FFmpeg's default conversion
            # is BT.601's matrix, which they then showed with greens 16 % dark and reds turned orange
            context.colorspace = context.color_primaries = context.color_trc = BT709
            context.color_range = LIMITED_RANGE
            if sar is not None:  # non-square pixels, as the source's: players show the picture at its shape
                context.sample_aspect_ratio = sar
        except Exception as e:  # noqa: BLE001 - as cv2.VideoWriter: not opened, and why
            self.error = e
            self._close()

    @property
    def seconds(self) -> float:
        """The length of what was written: the last frame's time plus its duration (the one before it)."""
        return 0.0 if self._last is None else float((self._last + self._last_step) * self._tick)

    def isOpened(self) -> bool:  # noqa: N802 - cv2.VideoWriter's name
        return self._container is not None and self.error is None

    def write(self, frame: np.ndarray, t: float | None = None) -> None:
        if not self.isOpened():
            return
        try:
            pts = 0 if self._last is None else self._last + self._frame_ticks
            if t is not None and math.isfinite(t):
                raw = round(Fraction(t) / self._tick)
                timed = raw + self._shift
                if self._last is None or timed > self._last:
                    pts = timed
                elif self._given is not None and raw < self._given - self._frame_ticks:
                    # a jump back of more than a frame (two recordings joined, a clock reset): a break, after
                    # which the frames keep their spacing from here (at 1 ms apart, the rest of a spliced clip
                    # played in a flash)
                    self._shift += pts - timed
                elif self._given is not None and raw > self._given:
                    # the source moved on, but not past the frame before, which a repeated time put one frame
                    # later: this one follows it a millisecond later, and the next frames keep their own times (each
                    # was put a frame later than the one before, and a single repeat shifted the rest of the clip)
                    pts = self._last + max(1, round(Fraction(1, 1000) / self._tick))  # (a millisecond: Matroska's)
                self._given = raw
            picture = _av().VideoFrame.from_ndarray(frame, format="bgr24").reformat(
                format="yuv420p", dst_colorspace="itu709", **_accurate())
            picture.pts, picture.time_base = pts, self._tick
            self._times.append(pts)
            if len(self._times) > 2 * self.TIMES_KEPT:  # a day-long recording must not keep them all
                del self._times[:self.TIMES_KEPT]
            if self._last is not None:
                self._last_step = pts - self._last
            self._last = pts
            self._held.extend(self._stream.encode(picture))
            self._mux_timed()
            self.frames += 1
        except Exception as e:  # noqa: BLE001 - e.g. the disk is full: kept, reported after release
            self.error = e

    def hold_last(self, t: float, most: float) -> None:
        """Show the last frame written until `t` (seconds, on the clock of the times given with the frames), at
        most `most` seconds, rather than as long as the frame before it. Before release."""
        if self._last is None or not math.isfinite(t):
            return
        stop = round(Fraction(t) / self._tick) + self._shift
        if stop > self._last:
            self._last_step = min(stop - self._last, round(Fraction(most) / self._tick))

    def release(self) -> None:
        if self._container is None:
            return
        if self.error is None:
            try:
                # the frames the encoder still holds, once: a Ctrl-C (an app's KeyboardInterrupt) while they were
                # muxed left the flush half done; the release made again then flushed again ("End of file") and
                # the whole video was thrown away. Now it goes on where it was.
                if not self._flushed:
                    held = self._stream.encode(None)
                    self._flushed = True
                    self._held.extend(held)
                self._mux_timed(end=True)
            except Exception as e:  # noqa: BLE001
                self.error = e
        self._close()

    def _mux_timed(self, end: bool = False) -> None:
        """Mux the held packets, in order, whose frame's duration is known: up to the next frame's time (at the
        `end`, the last frame lasts as long as the one before it, and all go)."""
        while self._held:
            packet = self._held[0]
            at = len(self._times) if packet.pts is None else bisect.bisect_right(self._times, packet.pts)
            if packet.pts is None:
                pass  # (libx264 times every packet) muxed as it came
            elif at < len(self._times):
                packet.duration = self._times[at] - packet.pts
            elif end:
                packet.duration = self._last_step
            else:
                return  # the latest frame's: its duration comes with the next frame
            if self._first is None:
                self._first = (packet.pts, packet.dts)
            if end and len(self._held) == 1 and self._decode_order_timed and None not in (packet.dts, *self._first):
                # MP4/MOV time the track by its decode times too: the samples' durations are the steps between
                # them, so the track fell short of the last frame's end by however much the B-frame delay grew
                # since the start. The last sample in decode order makes it up (at a constant rate it is the
                # step before it), and lasts at least as long as the last frame when it is that frame.
                stop = self._last + self._last_step
                need = stop - self._first[0] - (packet.dts - self._first[1])
                packet.duration = max(need, self._last_step if packet.pts == self._last else 1)
            self._container.mux(self._held.popleft())

    def _close(self) -> None:
        if self._container is not None:
            try:
                self._container.close()
            except Exception as e:  # noqa: BLE001 - writing the index (faststart) can fail too
                self.error = self.error or e
            self._container = None


class FileSource:
    """A video file read with PyAV: files OpenCV's FFmpeg cannot decode (AV1: the OpenCV wheels have no AV1
    decoder; PyAV's have dav1d), and HDR files, tone mapped (`hdr`: the transfer, see cgan.runtime.hdr; OpenCV
    gives their values as if SDR). The Source interface of cgan.runtime.sources (read, close, name, live, fps,
    frame_count, timestamp) and its `spec`; frames are turned and mirrored as the file's display matrix says, as
    players show them (display_orientation)."""

    live = False

    def __init__(self, spec: Any, hdr: str | None = None, deinterlace: bool = False, video: int = 0,
                 rate: float | None = None):
        av = _av()
        self.spec, self.name = spec, spec.label
        self.deinterlace = deinterlace  # interlaced video: FFmpeg's bwdif makes one whole frame of each
        self._tonemap = None
        if hdr is not None:
            from cgan.runtime.hdr import ToneMap

            self._tonemap = ToneMap(hdr)
        self.tone_mapped_by = "cgan" if hdr is not None else None  # as CaptureSource's (see Source)
        self.cut_short: str | None = None  # why it ended before its end (see Source)
        self.frames_read = 0
        self.timestamp: float | None = None  # of the frame read last (see cgan.runtime.sources.Source)
        self.ended_at: float | None = None  # where the last frame's showing ends, once read to the end (Source)
        self._shown: float | None = None  # how long the frame read last is shown (its duration; None: not said)
        self._ended = False  # decoding reached the end of the stream (not a decode error)
        self._seeked = False  # frames_read no longer counts from the first frame (see sources.stopped_early)
        from cgan._files import file_identity

        self.identity = file_identity(spec.target)  # the file as opened (its sound is read again by its path)
        self._container = av.open(os.fspath(spec.target), "r")
        try:
            stream = self._container.streams.video[video]  # `video`: which video stream (SourceInfo.video)
            stream.thread_type = "AUTO"  # frame and slice threads: dav1d is slow on one core
            rate = rate or stream.average_rate or stream.guessed_rate
            self.fps = float(rate) if rate else 0.0
            self.frame_count = int(stream.frames or 0)
            # the count a file cut short is checked against: the one the container declares, else (Matroska,
            # MPEG-TS) its length at its rate, as OpenCV estimates it
            length = self._container.duration / 1_000_000 if self._container.duration else 0.0
            self._declared = self.frame_count or round(length * self.fps)
            self.codec = _codec_name(stream)
            self._stream = stream
            # times from the stream's start, as OpenCV gives them (an MPEG-TS file may start at 1.4 s)
            self._t0 = float(stream.start_time * stream.time_base) if stream.start_time and stream.time_base else 0.0
            self._frames = self._decoded()
            self._pending = self._next()
            if self._pending is None:
                raise ValueError("no decodable frames")
        except BaseException:
            self._container.close()
            raise

    def _decoded(self) -> Iterator[Any]:
        """The stream's frames, through FFmpeg's bwdif deinterlacer (one frame out per frame in, times kept) when
        `deinterlace` (a graph that cannot be set up leaves them as decoded, with a warning)."""
        av = _av()
        frames = self._container.decode(self._stream)
        graph = None
        if self.deinterlace:
            try:
                graph = av.filter.Graph()
                chain = [graph.add_buffer(template=self._stream), graph.add("bwdif", DEINTERLACE),
                         graph.add("buffersink")]
                chain[0].link_to(chain[1])
                chain[1].link_to(chain[2])
                graph.configure()
            except (av.FFmpegError, ValueError, TypeError) as e:
                log.warning("%s: interlaced, and FFmpeg's deinterlacer could not be set up (%s): its fields are "
                            "translated woven", self.name, str(e).strip()[:200])
                graph = None
        if graph is None:
            yield from frames
            return

        def drained() -> Iterator[Any]:
            while True:
                try:
                    yield graph.pull()
                except (av.BlockingIOError, av.EOFError):
                    return

        for frame in frames:
            graph.push(frame)
            yield from drained()
        graph.push(None)
        yield from drained()

    def _next(self) -> tuple[np.ndarray, float | None, float | None] | None:
        """(picture, time, how long it is shown) of the next frame; None at the end."""
        try:
            frame = next(self._frames)
        except StopIteration:
            self._ended = True
            return None
        except _av().FFmpegError as e:  # a decode error ends the file, as it does for OpenCV
            self.cut_short = f"decoding stopped after {self.frames_read} frames ({str(e).strip()[:200]})"
            log.warning("%s: %s; the output ends there", self.name, self.cut_short)
            return None
        if self._tonemap is not None:  # 16-bit RGB, BT.2020's matrix whatever the file says (some say nothing)
            img = self._tonemap(frame.reformat(format="rgb48le", src_colorspace="bt2020").to_ndarray())
        else:
            img = frame.to_ndarray(format="bgr24")
        t = None if frame.time is None else frame.time - self._t0
        shown = frame.duration * frame.time_base if frame.duration and frame.time_base else None
        return oriented(img, frame_orientation(frame)), t, None if shown is None else float(shown)

    def read(self) -> np.ndarray | None:
        got, self._pending = (self._pending, None) if self._pending is not None else (self._next(), None)
        if got is None:
            from cgan.runtime import sources

            if self.cut_short is None and sources.ends_written_over(self):  # (as CaptureSource says it)
                return None
            if self._ended and self.cut_short is None:  # the packets ran out: the file's end, or where it was cut
                if sources.stopped_early(self, self._declared, lambda: sources.file_ends(self), self._seeked):
                    sources.say_cut_short(self, self._declared, self._seeked)
                    self._ended = False
                    return None
            if self._ended and self.timestamp is not None and self._shown is not None:
                self.ended_at = self.timestamp + self._shown
            return None
        self.frames_read += 1
        frame, self.timestamp, self._shown = got
        return frame

    def seek(self, t: float) -> None:
        """Go to the time `t` (seconds from the stream's start): the next read gives the key frame at or before it
        (read on to reach `t` exactly)."""
        stream = self._stream
        self._container.seek(round((t + self._t0) / stream.time_base), stream=stream, backward=True)
        self._frames = self._decoded()
        self._pending = None
        self._seeked = t > 0

    def close(self) -> None:
        if self._container is not None:
            self._container.close()
            self._container = None
            self._frames = iter(())


#: (transpose, mirror left-right, flip upside down), applied in that order: how a decoded frame is shown
Orientation = tuple[bool, bool, bool]
UPRIGHT: Orientation = (False, False, False)


def display_orientation(matrix: Any) -> Orientation:
    """How to show a frame whose display matrix is `matrix` (FFmpeg's AV_FRAME_DATA_DISPLAYMATRIX: 9 integers,
    row-vector convention, (x', y') = (a x + c y, b x + d y) in the frame's own pixel coordinates, y down), snapped
    to the nearest of the eight quarter turns and mirrorings. Players show phones' portrait clips turned and
    front cameras' mirrored clips mirrored; OpenCV, and PyAV's `frame.rotation`, read a rotation angle only, so
    a mirrored matrix comes out turned 180 degrees (left-right mirror) or not at all (upside down)."""
    a, b, c, d = (int(matrix[k]) for k in (0, 1, 3, 4))
    if abs(a) + abs(d) >= abs(b) + abs(c):  # x' from x: no transpose
        return False, a < 0, d < 0
    return True, c < 0, b < 0  # x' from y, y' from x


def oriented(img: np.ndarray, how: Orientation) -> np.ndarray:
    """`img` (H, W[, C]) shown as `how` (display_orientation) says."""
    if how == UPRIGHT:
        return img
    transpose, mirror, flip = how
    if transpose:
        img = img.swapaxes(0, 1)
    if mirror:
        img = img[:, ::-1]
    if flip:
        img = img[::-1]
    return np.ascontiguousarray(img)


def frame_orientation(frame: Any) -> Orientation:
    """How to show a decoded PyAV frame, from its display matrix (none: upright)."""
    try:
        data = frame.side_data.get(_av().sidedata.sidedata.Type.DISPLAYMATRIX)
    except (AttributeError, KeyError, TypeError):
        data = None
    if data is None:
        turns = round((getattr(frame, "rotation", 0) or 0) / 90) % 4  # counter-clockwise degrees
        return {0: UPRIGHT, 1: (True, False, True), 2: (False, True, True), 3: (True, True, False)}[turns]
    return display_orientation(np.frombuffer(bytes(data), dtype="=i4", count=9))


def open_file_source(spec: Any, hdr: str | None = None, deinterlace: bool = False,
                     video: int = 0, rate: float | None = None) -> FileSource | None:
    """A FileSource for `spec` (a file InputSpec; `hdr`: tone map from that transfer; `deinterlace`: an interlaced
    file; `video`: which of its video streams; `rate`: its frame rate, where the file's own is a guess: a raw
    stream's, see SourceInfo.raw_rate), or None when PyAV is missing or cannot decode it."""
    av = _av()
    if av is None:
        return None
    try:
        return FileSource(spec, hdr, deinterlace, video, rate)
    except (av.FFmpegError, OSError, ValueError, IndexError) as e:
        log.debug("PyAV cannot read %s either: %s", spec.target, e)
        return None


#: FFmpeg's YUV matrices (AVColorSpace) that OpenCV 4 decodes wrongly: it takes every file as BT.601 (5, 6) or untagged
#: (2); BT.709 is every HD phone's and camera's, BT.2020 (9, 10) HDR's
TAGGED_NOT_601 = {1, 9, 10}
#: FFmpeg's transfer characteristics of HDR video (AVColorTransferCharacteristic)
HDR_TRANSFERS = {16: "PQ / HDR10", 18: "HLG"}
#: FFmpeg's field orders (AVFieldOrder) of interlaced video: TT, BB, TB, BT (0 unknown, 1 progressive)
INTERLACED_FIELD_ORDERS = {2: "top field first", 3: "bottom field first", 4: "top field first", 5: "bottom field first"}
#: the deinterlacer for them: one frame out per frame in (its times kept), only the frames flagged interlaced
DEINTERLACE = "mode=send_frame:parity=auto:deint=interlaced"


@dataclass(frozen=True)
class SourceInfo:
    """What PyAV reads of a video file, once: the HDR transfer its first video stream declares ("HLG",
    "PQ / HDR10"; None for SDR or unknown -- OpenCV reads HDR video without tone mapping, so its pictures come out
    flat and pale) and its first audio stream (None: no sound)."""

    hdr: str | None = None
    audio: SourceAudio | None = None
    matrix: int = 0  # the video's YUV matrix tag (FFmpeg's AVColorSpace: 1 BT.709, 5/6 BT.601, 9 BT.2020, 2 none)
    interlaced: str | None = None  # the field order of interlaced video (INTERLACED_FIELD_ORDERS), else None
    mirrored: bool = False  # its display matrix mirrors the picture (front cameras), which OpenCV turns instead
    video: int = 0  # which video stream is the file's video (FFmpeg's best: a cover picture first is not), 0: first
    videos: int = 1  # how many video streams it has
    sar: Fraction | None = None  # its pixels' shape when not square (anamorphic video: 4:3 pixels shown 16:9)
    bits: int = 8  # bits per sample of its pixel format (10: yuv420p10le, most HDR and some SDR video)
    #: a raw H.264/HEVC stream's frame rate as its own headers declare it (VUI timing), where FFmpeg's demuxer,
    #: which has no times to read, assumes another (25 fps: a 10 fps camera's .h264 played 2.5x fast); else None
    raw_rate: Fraction | None = None


def probe(path: str | os.PathLike) -> SourceInfo:
    """SourceInfo of a video file; empty without PyAV, or when PyAV cannot open it (why: at debug level). Read
    once per file version (opening a source and its output both ask)."""
    if _av() is None:
        return SourceInfo()
    try:
        st = os.stat(path)
    except OSError:
        return SourceInfo()
    return _probe(os.fspath(path), st.st_mtime_ns, st.st_size)


@functools.lru_cache(maxsize=16)
def _probe(path: str, _mtime_ns: int, _size: int) -> SourceInfo:
    av = _av()
    try:
        with av.open(os.fspath(path), "r") as c:
            videos = list(c.streams.video)
            video = main_video(c)
            hdr = HDR_TRANSFERS.get(int(video.codec_context.color_trc or 0)) if video is not None else None
            matrix = int(video.codec_context.colorspace or 0) if video is not None else 0
            interlaced = (INTERLACED_FIELD_ORDERS.get(int(getattr(video.codec_context, "field_order", 0) or 0))
                          if video is not None else None)
            audio = None
            if c.streams.audio:
                start = 0.0
                if video is not None and video.start_time is not None and video.time_base is not None:
                    start = float(video.start_time * video.time_base)
                audio = SourceAudio(_codec_name(c.streams.audio[0]), start)
            turn = _first_orientation(c, video) if video is not None else UPRIGHT
            sar = _sar(video) if video is not None else None
            if sar is not None and turn[0]:  # a quarter turn shows the pixels turned too: their shape inverts
                sar = 1 / sar
            return SourceInfo(hdr, audio, matrix, interlaced, sum(turn) % 2 == 1,
                              videos.index(video) if video is not None else 0, len(videos), sar, _bits(video),
                              _raw_rate(c, video))
    except (av.FFmpegError, OSError, ValueError, TypeError) as e:
        log.debug("nothing read from %s by PyAV: %s", path, e)
        return SourceInfo()


class StreamEnds(NamedTuple):
    """Where a file's streams end (stream_ends), in seconds from the video's first frame."""

    video_last: float  # where the main video stream's last frame starts
    media_last: float  # where the last packet of any stream starts
    declared: float  # the length the file declares
    last_shown: float | None  # how long the video's last frame is shown (its packet's duration; None: not said)


def stream_ends(path: str | os.PathLike) -> StreamEnds | None:
    """Where `path`'s streams end (StreamEnds), read from the packets (not decoded): the length OpenCV counts
    frames by may be the sound's, or an estimate, or a header's of a file cut short. None when PyAV cannot
    tell."""
    av = _av()
    if av is None:
        return None
    try:
        with av.open(os.fspath(path), "r") as c:
            video = main_video(c)
            if video is None or not video.time_base or not c.duration:
                return None
            first = video.start_time
            # (AV_TIME_BASE) a long or large file: only its last seconds are read; the seek is to a time on the
            # file's own clock, which starts at its start time (a broadcast TS: an hour in, and all was read)
            if c.duration > 20 * 1_000_000 or os.path.getsize(path) > 64 << 20:
                with contextlib.suppress(av.FFmpegError):
                    c.seek((c.start_time or 0) + max(0, c.duration - 10 * 1_000_000), backward=True)
            video_last = media_last = last_shown = None
            for packet in c.demux():
                t = packet.pts if packet.pts is not None else packet.dts
                if t is None or packet.stream.time_base is None or getattr(packet, "is_discard", False):
                    continue  # (an edit list's cut: not shown)
                at = float(t * packet.stream.time_base)
                media_last = at if media_last is None else max(media_last, at)
                if packet.stream is video:
                    if video_last is None or at >= video_last:
                        video_last = at
                        last_shown = float(packet.duration * video.time_base) if packet.duration else None
                    if first is None:
                        first = t
            if video_last is None or first is None:
                return None
            zero = float(first * video.time_base)
            start = float(c.start_time / 1_000_000) if c.start_time is not None else zero
            declared = c.duration / 1_000_000 + start - zero
            rate = video.average_rate or video.guessed_rate
            if c.format.name == "avi" and video.frames and rate:
                # FFmpeg estimates an AVI's length from the data there (a download cut at half said its half);
                # the header's frame count is the file's (an AVI has no edit list to show fewer)
                declared = max(declared, video.frames / float(rate))
            return StreamEnds(video_last - zero, media_last - zero, declared, last_shown)
    except (av.FFmpegError, OSError, ValueError, TypeError):
        return None


def video_packets(path: str | os.PathLike) -> int | None:
    """How many packets with data the file's first video stream holds, read from the container without decoding
    (a cut-short packet at the end still counts); None when PyAV cannot tell."""
    av = _av()
    if av is None:
        return None
    try:
        with av.open(os.fspath(path), "r") as c:
            if not c.streams.video:
                return None
            count = 0
            try:
                for packet in c.demux(c.streams.video[0]):
                    count += packet.size > 0
            except av.FFmpegError:
                pass  # (a damaged end: what was read before it counts)
            return count
    except (av.FFmpegError, OSError, ValueError, TypeError):
        return None


def _sar(video: Any) -> Fraction | None:
    """The sample (pixel) aspect ratio of `video` when it is not square; None for square or unknown pixels."""
    try:
        sar = video.sample_aspect_ratio or video.codec_context.sample_aspect_ratio
    except AttributeError:
        return None
    try:
        sar = Fraction(sar) if sar else None
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    return sar if sar is not None and sar > 0 and sar != 1 and Fraction(1, 100) < sar < 100 else None


def main_video(container: Any) -> Any:
    """The file's video stream: FFmpeg's pick (the default track, as players show it) unless that is a cover
    picture or a thumbnail, then the longest video (see below). OpenCV reads the first, which can be a one-frame
    thumbnail or cover before the video. None without a video stream."""
    videos = list(container.streams.video)
    if len(videos) <= 1:
        return videos[0] if videos else None
    try:
        best = container.streams.best("video")
    except (AttributeError, ValueError, TypeError):
        best = None
    # FFmpeg's pick follows the default disposition first, which MP4 and MOV give their first track: a one-frame
    # thumbnail track before the video was translated alone. Its pick stands unless it is a cover picture or a
    # thumbnail (one frame, or under half as long as the longest video): a second camera angle or a dash cam's
    # rear view, as long as the default, is not the main one.
    if best not in videos:
        best = videos[0]
    seconds = {s: _seconds_of(s) for s in videos if not _is_cover(s) and (s.frames or 2) > 1}
    if not seconds:
        return best
    longest = max(seconds, key=lambda s: (seconds[s], s is best))
    return longest if best not in seconds or seconds[best] < 0.5 * seconds[longest] else best


def _is_cover(stream: Any) -> bool:
    """A cover picture or thumbnail stored as a video stream (disposition attached_pic)."""
    try:
        return bool(stream.disposition & _av().stream.Disposition.attached_pic)
    except (AttributeError, TypeError):
        return False


def _seconds_of(stream: Any) -> float:
    """How long `stream` lasts: its duration, else its frame count over its rate; 0 unknown."""
    try:
        if stream.duration and stream.time_base:
            return float(stream.duration * stream.time_base)
        if stream.frames and stream.average_rate:
            return float(stream.frames / stream.average_rate)
    except (AttributeError, TypeError, ValueError, ZeroDivisionError):
        pass
    return 0.0


def _first_orientation(container: Any, video: Any) -> Orientation:
    """How the first frame of `video` is shown (frame_orientation); mirrored when an odd number of its parts
    mirror, where a transpose counts as one (the display matrix's determinant is negative). Only decoded frames
    carry the matrix in PyAV; a first frame that cannot be decoded says nothing (upright)."""
    av = _av()
    try:
        for frame in container.decode(video):
            return frame_orientation(frame)
    except (av.FFmpegError, ValueError, TypeError) as e:
        log.debug("no first frame decoded to read its display matrix: %s", e)
    return UPRIGHT


@functools.lru_cache(maxsize=1)
def opencv_manages_colour() -> bool:
    """Whether this OpenCV converts video by its colour tags. OpenCV 5's FFmpeg reader does: BT.709 video (phones,
    cameras, our H.264) with BT.709's matrix, and HDR made SDR (HLG's reference white comes out white). OpenCV 4's
    takes every file as BT.601 (green 200 of a BT.709 file read as 233) and HLG and PQ values as SDR ones (flat,
    pale, muted). Found out once, on a 16x16 HLG frame at reference white written here (lossless FFV1): 255 when
    converted, 191 when not."""
    import tempfile

    import cv2

    av = _av()
    if av is None:
        return False
    try:
        with tempfile.TemporaryDirectory(prefix="cgan-hdr-") as folder:
            path = os.path.join(folder, "white.mkv")
            with av.open(path, "w") as out:
                s = out.add_stream("ffv1", rate=1)
                s.width = s.height = 16
                s.pix_fmt = "yuv420p10le"
                s.codec_context.color_trc, s.codec_context.color_primaries, s.codec_context.colorspace = 18, 9, 9
                white = np.full((16, 16, 3), round(0.75 * 65535), np.uint16)  # HLG 75 %: reference white
                frame = av.VideoFrame.from_ndarray(white, format="rgb48le").reformat(format="yuv420p10le",
                                                                                    dst_colorspace="bt2020")
                frame.pts = 0
                for packet in [*s.encode(frame), *s.encode(None)]:
                    out.mux(packet)
            cap = cv2.VideoCapture(path, cv2.CAP_FFMPEG)
            try:
                ok, got = cap.read()
            finally:
                cap.release()
        return bool(ok) and float(got.mean()) > 230
    except Exception as e:  # noqa: BLE001 - cannot tell: cgan's own tone mapping is used
        log.debug("the HDR check of OpenCV failed: %s", e)
        return False


#: FFmpeg's demuxers of raw video streams: no container, no frame times (their rate option defaults to 25 fps)
RAW_VIDEO_FORMATS = {"h264", "hevc"}


def _raw_rate(container: Any, video: Any) -> Fraction | None:
    """SourceInfo.raw_rate: the rate a raw stream's headers declare, when the demuxer's differs from it."""
    from cgan.runtime.sources import known_fps

    if video is None or not set(container.format.name.split(",")) & RAW_VIDEO_FORMATS:
        return None
    declared = video.codec_context.framerate
    if not declared or not known_fps(float(declared)) or declared == video.average_rate:
        return None
    return Fraction(declared)


def _bits(video: Any) -> int:
    """Bits per sample of a video stream's pixel format (8 when it names none PyAV knows)."""
    try:
        return max(c.bits for c in _av().VideoFormat(video.codec_context.pix_fmt).components)
    except (AttributeError, TypeError, ValueError):  # (no stream, no format yet: an unknown codec)
        return 8


def _codec_name(stream: Any) -> str:
    """The format's name ("av1", "mp3"), not the decoder's ("libdav1d", "mp3float"); "unknown" for a stream this
    FFmpeg has no decoder for (PyAV gives it no codec context: an AttributeError, which crashed every run of a
    file whose sound FFmpeg does not know, --no-sound too)."""
    ctx = stream.codec_context
    codec = getattr(ctx, "codec", None) if ctx is not None else None
    if codec is None:
        return "unknown"
    return getattr(codec, "canonical_name", None) or codec.name


def _timed(packets: Iterator[Any], order: int) -> Iterator[tuple[float, int, int, Any]]:
    """(decode time in seconds, stream order, sequence, packet) for the packets of one stream, in their order
    (the merge keeps each stream's order; the times only interleave the streams). Empty packets -- the flush
    packets demux ends with -- are dropped; Matroska gives some packets no decode time: their presentation time
    stands in."""
    for i, p in enumerate(packets):
        t = p.dts if p.dts is not None else p.pts
        if p.size == 0 or t is None or p.time_base is None:
            continue
        yield float(t * p.time_base), order, i, p


SOUND_CODEC, SOUND_BIT_RATE = "aac", 192_000  # a sound a container cannot hold as it is is encoded so (per stereo)
#: the sound of an .avi output, always encoded: AVI has no start time for a stream (a sound that starts after the
#: first picture played that much early) and no edit list for an encoder's delay (AAC's 1024 samples of priming
#: played 21 ms late); PCM has none, and silence put before a late sound keeps it in place
AVI_SOUND_CODEC = "pcm_s16le"
PCM_MAX_CHANNELS = 7  # channels kept as PCM (6.1); more are mixed to 5.1 (PyAV 18 crashes on 8 planar)
SOUND_SEEK_BACK_S = 2.0  # an encoded sound from a --start deeper than twice this is sought this far before it
#: a sound whose times go back by more than this (two recordings joined, an MPEG-TS clock that wrapped) goes on
#: where it was, as the pictures do after a jump back (H264Writer): the next recording's sound follows the last
SOUND_BREAK_S = 0.25


def _goes_on(placed: int, expected: int | None, back: int) -> int:
    """How far to move a sound time `placed` so that it goes on at `expected` (where the sound before it ends),
    when it lies more than `back` before it (a break, see SOUND_BREAK_S); 0 otherwise. One unit throughout
    (ticks of the stream's time base, or samples)."""
    return expected - placed if expected is not None and back and placed < expected - back else 0


def mux_sound(video: Path, source: str | os.PathLike, out: Path, seconds: float, audio: SourceAudio,
              encode: str | None = None, tags: dict[str, int] | None = None) -> int:
    """Write `out`: every packet of `video` (the translation, one video stream) and the sound of `source`'s first
    audio stream within `seconds` of its first video frame, shifted by that frame's start; return how many sound
    packets went in. The packets are copied, or with `encode` (a codec: SOUND_CODEC for packets the container
    refuses, ADPCM or µ-law in .mp4, Opus in .mov; AVI_SOUND_CODEC for .avi) decoded, placed by their times, cut to
    the sample and encoded so. `tags`: the video's colour description, as for tag_colours. Raises PyAV's errors
    (a codec the container cannot hold, a broken file) for the caller to handle."""
    av = _av()
    with av.open(str(video), "r") as vin, av.open(os.fspath(source), "r") as ain, \
            _open_output(out) as dst:
        v_in, a_in = vin.streams.video[0], ain.streams.audio[0]
        v_out = _copied_video(dst, v_in, tags)
        if encode:
            return _mux_encoded(dst, vin, v_in, v_out, ain, a_in, seconds, audio.video_start, encode)
        a_out = dst.add_stream_from_template(a_in)
        shift = round(audio.video_start / a_in.time_base) if a_in.time_base else 0
        back = round(SOUND_BREAK_S / a_in.time_base) if a_in.time_base else 0

        def sound() -> Iterator[Any]:
            nonlocal shift
            end = None  # where the previous packet copied ends (its pts plus duration, less `shift`)
            for p in ain.demux(a_in):
                if p.size == 0 or (p.pts is None and p.dts is None):
                    continue
                raw = p.pts if p.pts is not None else p.dts
                shift -= _goes_on(raw - shift, end, back)  # (the muxer refused a sound going back)
                t = float((raw - shift) * a_in.time_base)
                if t < -1e-6:
                    continue  # before the first picture
                if t >= seconds:
                    return  # after the last frame written
                p.pts = None if p.pts is None else p.pts - shift
                p.dts = None if p.dts is None else p.dts - shift
                end = raw - shift + (p.duration or 0)
                yield p

        return _interleave(dst, vin.demux(v_in), v_out, sound(), a_out)


#: the colour tags of what OpenCV's FFmpeg writer encodes (mp4v): BT.601 (SMPTE 170M) limited range, written
#: untagged, so players guessed (an HD file as BT.709: a slight colour shift)
BT601_TAGS = {"colorspace": 6, "color_primaries": 6, "color_trc": 6, "color_range": 1}


def tag_colours(video: Path, out: Path, tags: dict[str, int]) -> int:
    """Write `out`: the packets of `video`'s one video stream copied, its colour description set to `tags`
    (FFmpeg's AVColorSpace, AVColorPrimaries, AVColorTransferCharacteristic, AVColorRange values); return how many
    packets went in. Raises PyAV's errors for the caller to handle."""
    av = _av()
    with av.open(str(video), "r") as vin, _open_output(out) as dst:
        v_in = vin.streams.video[0]
        v_out = _copied_video(dst, v_in, tags)
        count = 0
        for packet in vin.demux(v_in):
            if packet.size == 0:
                continue
            packet.stream = v_out
            dst.mux(packet)
            count += 1
        return count


def _copied_video(dst: Any, v_in: Any, tags: dict[str, int] | None) -> Any:
    """The stream of `dst` that `v_in`'s packets are copied into: at the rate the frames have, not the writer's
    codec rate (H264Writer's is its 90 kHz tick: Matroska wrote a DefaultDuration of 11 us, read as 30000 fps and
    60000 frames), with the colour description `tags` if given."""
    v_out = dst.add_stream_from_template(v_in, **({"framerate": v_in.average_rate} if v_in.average_rate else {}))
    for name, value in (tags or {}).items():
        setattr(v_out.codec_context, name, value)
    return v_out


def _interleave(dst: Any, video: Iterator[Any], v_out: Any, sound: Iterator[Any], a_out: Any) -> int:
    """Mux the `video` and `sound` packets into `dst` in time order (each stream's own order kept); return how
    many sound packets went in."""
    count = 0
    for _, order, _, p in heapq.merge(_timed(video, 0), _timed(sound, 1)):
        p.stream = a_out if order else v_out
        dst.mux(p)
        count += order
    return count


#: the sample rates AAC has (the encoder is asked for the nearest)
AAC_RATES = (96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000)


def _mux_encoded(dst: Any, vin: Any, v_in: Any, v_out: Any, ain: Any, a_in: Any, seconds: float,
                 start: float, codec: str) -> int:
    """mux_sound's `encode`: the sound from `start` (seconds in the source) for `seconds`, decoded, placed by the
    decoded frames' times (a late start, a gap or an overlap is kept as it was, as silence or dropped samples),
    cut to the sample, encoded as `codec` (AAC at the nearest AAC sample rate, PCM at the source's) and
    interleaved with the video by time. A packet that does not decode is passed over."""
    av = _av()
    source_rate = int(a_in.codec_context.sample_rate or 48000)
    rate = min(AAC_RATES, key=lambda r: abs(r - source_rate)) if codec == "aac" else source_rate
    source_layout = a_in.codec_context.layout
    if codec == "aac" or source_layout.nb_channels <= 2:
        channels = 1 if source_layout.nb_channels == 1 else 2  # AAC here: more are mixed to stereo
        layout = "mono" if channels == 1 else "stereo"  # (an unnamed "2 channels" layout too)
    elif source_layout.nb_channels <= PCM_MAX_CHANNELS:  # PCM keeps every channel (a camera's 5.1 into .avi)
        channels, layout = source_layout.nb_channels, source_layout.name
    else:  # PyAV 18 crashes (a segfault) on planar frames of 8 channels: 7.1 is mixed to 5.1
        channels, layout = 6, "5.1"
    a_out = dst.add_stream(codec, rate=rate, layout=layout)
    if codec == "aac":
        a_out.codec_context.bit_rate = SOUND_BIT_RATE * channels // 2
    resample = av.AudioResampler(format="fltp", layout=layout, rate=rate)
    sample_format = a_out.codec_context.format.name  # fltp for AAC, s16 for 16-bit PCM
    to_codec = None if sample_format == "fltp" else av.AudioResampler(format=sample_format, layout=layout, rate=rate)
    fifo = av.AudioFifo()
    total = round(seconds * rate)  # samples to write
    jump = rate // 50  # 20 ms: a frame this far from where the samples before it end starts anew there
    back = round(SOUND_BREAK_S * rate)  # a frame this far before where the samples before it end: a break

    def frame_of(samples: np.ndarray) -> Any:
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(samples, dtype=np.float32), format="fltp",
                                           layout=layout)
        frame.sample_rate = rate
        return frame

    def decoded() -> Iterator[Any]:
        if start > 2 * SOUND_SEEK_BACK_S and a_in.time_base:  # (a --start deep in the file: not decoded from 0)
            try:
                ain.seek(round((start - SOUND_SEEK_BACK_S) / a_in.time_base), stream=a_in, backward=True)
            except av.FFmpegError:
                pass
        for packet in ain.demux(a_in):
            try:
                yield from packet.decode()
            except av.FFmpegError:  # a damaged packet: its time is silence (placed by the next frame's time)
                continue

    def pcm() -> Iterator[Any]:
        """The source's sound as fltp frames at `rate`, from `start` for `total` samples, times from 0."""
        written, at = 0, None  # samples given out so far; where the next resampled sample belongs
        shift = 0  # samples added to the times since they went back (a break: the sound goes on where it was)
        for frame in decoded():
            if frame.time is not None:
                want = round((frame.time - start) * rate) + shift
                moved = _goes_on(want, at, back)
                shift, want = shift + moved, want + moved
                if at is None or abs(want - at) > jump:
                    at = want
            if at is None:
                continue
            for part in resample.resample(frame):
                if at >= total:
                    return  # the rest starts after the last frame (a sound that starts there adds nothing)
                samples = part.to_ndarray()
                if at > written and written < total:  # the sound starts later, or a gap: silence till then
                    fill = min(at, total) - written
                    yield frame_of(np.zeros((channels, fill), np.float32))
                    written += fill
                lo, hi = max(at, written), min(at + samples.shape[1], total)
                if hi > lo:
                    yield frame_of(samples[:, lo - at:hi - at])
                    written = hi
                at += samples.shape[1]
            if written >= total:
                return

    def packets() -> Iterator[Any]:
        size = a_out.codec_context.frame_size or 1024
        at = 0
        for frame in itertools.chain(pcm(), [None]):
            if frame is not None:
                fifo.write(frame)
            while fifo.samples >= size or (frame is None and fifo.samples):
                chunk = fifo.read(min(size, fifo.samples))
                chunk.pts, chunk.time_base = at, Fraction(1, rate)
                at += chunk.samples
                for part in ([chunk] if to_codec is None else to_codec.resample(chunk)):
                    yield from a_out.encode(part)
        for part in ([] if to_codec is None else to_codec.resample(None)):
            yield from a_out.encode(part)
        yield from a_out.encode(None)

    return _interleave(dst, vin.demux(v_in), v_out, packets(), a_out)


@functools.lru_cache(maxsize=1)
def _accurate() -> dict[str, Any]:
    """reformat's option for exact rounding (swscale's ACCURATE_RND): without it BGR to YUV came out 1-2 levels low
    in luma and 1 in chroma (gray 50, 128, 200 as Y 58, 125, 187 and Cr 127: every output about 2 levels dark, a
    slight cyan cast), with it exact (59, 126, 188, 128). Nothing on a PyAV without the flag. Looked up once: it is
    asked for every frame written (callers must not change the dict)."""
    flag = getattr(getattr(_av().video.reformatter, "Interpolation", None), "ACCURATE_RND", None)
    return {} if flag is None else {"interpolation": flag}


def _open_output(path: Path) -> Any:
    """An output container for `path` (MP4/MOV with the index first: playable while it downloads)."""
    fmt = _format(path)
    return _av().open(str(path), "w", format=fmt, options={"movflags": "+faststart"} if fmt in ("mp4", "mov") else {})


def _format(path: Path) -> str | None:
    """The muxer for an output name (the temp names keep the target's extension; PyAV would guess the same)."""
    return {".m4v": "mp4", ".mov": "mov", ".mp4": "mp4", ".mkv": "matroska", ".avi": "avi"}.get(path.suffix.lower())
