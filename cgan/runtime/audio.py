"""The sound of a video file, copied into its translation: OpenCV's VideoWriter writes pictures only, so the
finished video is remuxed with the source's first audio stream by PyAV (FFmpeg's libraries; `av` comes with
the [runtime], [cpu] and [gpu] extras). Packets are copied, not re-encoded: no quality lost, no time spent.
The sound is cut to the frames written (--max-frames, Ctrl-C) and kept in step with the first frame. No torch.
"""
from __future__ import annotations

import heapq
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SourceAudio:
    """A file's first audio stream: its codec, and where the file's first video frame starts (seconds)."""

    codec: str
    video_start: float


def _av() -> Any:
    try:
        import av
    except ImportError:
        return None
    return av


def available() -> bool:
    return _av() is not None


def probe(path: str | os.PathLike) -> SourceAudio | None:
    """The audio `path` has to copy; None when it has none, or PyAV cannot open it (say why at debug level)."""
    av = _av()
    if av is None:
        return None
    try:
        with av.open(os.fspath(path), "r") as c:
            if not c.streams.audio:
                return None
            video = c.streams.video[0] if c.streams.video else None
            start = 0.0
            if video is not None and video.start_time is not None and video.time_base is not None:
                start = float(video.start_time * video.time_base)
            return SourceAudio(c.streams.audio[0].codec_context.name.removesuffix("float"), start)  # mp3float
    except (av.FFmpegError, OSError, ValueError) as e:
        log.debug("no sound read from %s: %s", path, e)
        return None


def _timed(packets: Iterator[Any], order: int) -> Iterator[tuple[float, int, int, Any]]:
    """(seconds, stream order, sequence, packet) for muxable packets (flush packets without a dts dropped)."""
    for i, p in enumerate(packets):
        if p.dts is None or p.time_base is None:
            continue
        yield float((p.dts if p.pts is None else p.pts) * p.time_base), order, i, p


def mux(video: Path, source: str | os.PathLike, out: Path, seconds: float, audio: SourceAudio) -> None:
    """Write `out`: every packet of `video` (the translation, one video stream) and the packets of `source`'s
    first audio stream that fall within `seconds` of its first video frame, shifted by that frame's start.
    Raises PyAV's errors (an audio codec the container cannot hold, a broken file) for the caller to handle."""
    av = _av()
    with av.open(str(video), "r") as vin, av.open(os.fspath(source), "r") as ain, \
            av.open(str(out), "w", format=_format(out)) as dst:
        v_in, a_in = vin.streams.video[0], ain.streams.audio[0]
        v_out = dst.add_stream_from_template(v_in)
        a_out = dst.add_stream_from_template(a_in)
        shift = round(audio.video_start / a_in.time_base) if a_in.time_base else 0

        def sound() -> Iterator[Any]:
            for p in ain.demux(a_in):
                if p.dts is None:
                    continue
                t = float(((p.pts if p.pts is not None else p.dts) - shift) * a_in.time_base)
                if t < -1e-6:
                    continue  # before the first picture
                if t >= seconds:
                    return  # after the last frame written
                p.pts = None if p.pts is None else p.pts - shift
                p.dts -= shift
                yield p

        for _, order, _, p in heapq.merge(_timed(vin.demux(v_in), 0), _timed(sound(), 1)):
            p.stream = a_out if order else v_out
            dst.mux(p)


def _format(path: Path) -> str | None:
    """The muxer for an output name (the temp names keep the target's extension; PyAV would guess the same)."""
    return {".m4v": "mp4", ".mov": "mov", ".mp4": "mp4", ".mkv": "matroska", ".avi": "avi"}.get(path.suffix.lower())
