"""The threaded video pipeline behind `cgan-video`: capture -> translate -> write/show (no torch).

    capture thread (one per input) --q(bounded)--> translate thread --q(bounded)--> main thread: write + show

* Files are read completely: the capture queue blocks when full, nothing is dropped; a tqdm bar shows fps/ETA.
* Live sources (camera, device, URL) never wait: when the translator is slower than the source, the oldest
  queued frame is dropped (queue of 1), so latency stays bounded; dropped frames are counted.
* Several inputs are batched through one model: each translate step takes the newest frame of every stream
  that has one, groups them by size and calls `translate_batch` once per size.
* A frame whose size differs from its stream's first frame is resized to that first size (counted in
  `resized`), so the writer never restarts and the output keeps one size.
* SIGINT / SIGTERM (and q / ESC in the window) stop the threads and finalize the output: it is written to a
  hidden temporary file beside the target and renamed when the writer is released, so the target name only
  ever holds a playable video. On an error the temporary file is removed.

`run_video(VideoJob(...)) -> VideoSummary` is everything the CLI does. The translator is duck-typed: any object
with `translate_batch(list_of_bgr_frames) -> list_of_bgr_frames` works (pass it as `translator=`).
"""
from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import numbers
import os
import queue
import signal
import stat
import sys
import tempfile
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

import cv2
import numpy as np

from cgan._files import IMAGE_EXTS, _umask, file_identity, nearest_existing, replace_synced, temp_prefix
from cgan.errors import CganError, Terminated
from cgan.runtime.frames import DEFAULT_MAX_PIXELS, MULTIPLE, even_size, fit_to, model_size_of, round_up, to_bgr
from cgan.runtime.smooth import FlickerMeter, TemporalSmoother
from cgan.runtime.sources import CAPTURE_NAMED, CaptureSource, Source, Trimmed, _describe, foreign, known_fps, \
    open_source, parse_capture, parse_input, parse_time

log = logging.getLogger(__name__)
_READ_BACK = cv2.VideoCapture  # the decoder that checks finished files (held apart from sources' capture)

# Containers this OpenCV build (FFmpeg backend) writes, and the codec used for each (checked at startup).
MP4_NAMES = (".mp4", ".m4v")  # outputs written as MP4 (ISO BMFF, not QuickTime)
CODECS = {".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".mkv": "mp4v", ".avi": "MJPG"}
MAX_CRF = 51  # libx264's 8-bit range of --crf: 0 lossless .. 51 smallest
#: VideoJob.codec / --codec: auto is H.264 (PyAV's libx264) for .mp4 .m4v .mov .mkv when PyAV has it, else the
#: container's OpenCV codec above; mp4v and mjpg are OpenCV's writer
CODEC_CHOICES = ("auto", "h264", "mp4v", "mjpg")
#: extensions taken for video files in a folder: what OpenCV's and PyAV's FFmpeg commonly read
VIDEO_EXTS = frozenset(CODECS) | {".webm", ".ts", ".mts", ".m2ts", ".3gp", ".mpg", ".mpeg", ".wmv", ".flv",
                                  ".ogv", ".mxf", ".dv", ".gif"}  # (an animated GIF is read as a video)
H264 = "h264"
NAMED_SIZES = {"360p": 360, "480p": 480, "540p": 540, "720p": 720, "1080p": 1080, "1440p": 1440, "2160p": 2160,
               "4k": 2160}
DEFAULT_FPS = 25.0
DRIFT_WARN_S = 0.1  # a constant-rate output of a variable-rate file: how far off a frame may be unwarned (and a frame)
MAX_LONG_SIDE = 16384  # --size N: the longest side a resized frame may have
MIN_SIDE = 8  # --size: the shortest side a size may give
PACKET_COUNT_MAX_BYTES = 2 << 30  # OpenCV writers' files up to this size have their frames counted (finish)
HOLD_LAST_MAX_S = 60.0  # the longest a file's last frame is shown past its time (a GIF's last picture: ended_at)
JOIN_TIMEOUT_S = 5.0  # how long the end of a run waits for its threads (a hung camera read) before finalizing
SMOOTH_WORKERS = 0  # --smooth with several inputs: at most this many smoothing threads (0: one per CPU core)
_END = object()


# ---- job and summary -------------------------------------------------------------------------------------
@dataclass
class VideoJob:
    """Everything `cgan-video` can do, as one object. See docs/video.md.

    Checked when made and again by `run_video` (one-line CganError naming the field): `inputs` may be one input
    (a str, path, camera index or source object) or any iterable of them, kept as a tuple."""

    inputs: Sequence[Any] = ("0",)        # --input values (str/path/int camera index) or Source objects
    pair: str = "summer2winter"           # pair name, pair folder or export folder
    direction: str | None = None          # G/F/summer2winter/winter2summer (default: the pair's first)
    output: str | os.PathLike | None = None
    display: bool | None = None           # None = show a window when this OpenCV has a GUI and a display
    side_by_side: bool = False            # write/show input | output next to each other
    fps_overlay: bool = False             # draw the running fps on the frame
    size: str = "native"                  # native, 720p, 1080p, WxH, N (long side), or max:N (shrink only larger)
    max_frames: int | None = None         # per input
    # files: translate from `start` up to `end` (seconds, or "[HH:]MM:SS[.ms]" as ffmpeg's -ss/-to; None: the
    # file's start/end); the output holds that part, with its sound
    start: float | str | None = None
    end: float | str | None = None
    backend: str = "auto"
    precision: str | None = None
    compile: bool = False                 # torch backend: torch.compile (compiles on the first frame)
    compile_mode: str | None = None       # torch.compile's mode, with compile (None: the backend's default)
    cuda_graphs: bool | None = None       # None = the backend's default (torch: off; ort-cuda, tensorrt: on)
    smooth: bool = False
    smooth_strength: float = 0.8
    smooth_flow: bool = False
    progress: bool = True                 # tqdm bar for file inputs (stderr)
    sound: bool = True                    # copy a video file's sound into its output (needs PyAV: `av`)
    codec: str = "auto"                   # auto (H.264 via PyAV where it can), h264, mp4v, mjpg
    crf: int | None = None                # H.264 quality: 0 (lossless) .. 51 (smallest); None: H264Writer.CRF (20)
    # cameras and devices: the mode asked of them, 'WxH[@FPS]', '720p[@FPS]' or 'default' (their own); None:
    # the --size when it names a size (720p, WxH), else their own
    capture: str | None = None
    # the translation as a virtual webcam (pyvirtualcam): "auto" (the first free one) or a device; one input only
    virtual_camera: str | None = None
    reconnects: int = 3                   # live sources: reopen attempts (backoff 0.5 s, 1 s, 2 s, ...)
    queue_size: int = 4                   # capture queue depth for files (live sources use 1)
    # SIGINT/SIGTERM end the run cleanly, with summary.ended "interrupted"/"terminated" (main thread only).
    # None: each signal for which the app has not installed a Python handler of its own; True: both (the CLI)
    handle_signals: bool | None = None
    on_frame: Any = None                  # library only: called as on_frame(stream, input, output) per frame

    def __post_init__(self) -> None:
        self.inputs = _as_inputs(self.inputs)
        for i, value in enumerate(self.inputs):
            _check_input(i, value, self.inputs[:i])
        for name in ("side_by_side", "fps_overlay", "compile", "smooth", "smooth_flow", "progress", "sound"):
            _check_bool(name, getattr(self, name))
        for name in ("display", "cuda_graphs", "handle_signals"):
            _check_bool(name, getattr(self, name), none_ok=True)
        if not isinstance(self.pair, (str, os.PathLike)):
            raise CganError(f"pair must be a pair name or a pair/export folder (str or path), got "
                            f"{_describe(self.pair)}")
        for name, none_ok in (("direction", True), ("size", False), ("backend", False), ("precision", True)):
            value = getattr(self, name)
            if not (isinstance(value, str) or (value is None and none_ok)):
                hint = (" (e.g. 'native', '720p', '1280x720', or '512' for the long side)" if name == "size" else "")
                raise CganError(f"{name} must be a str{' or None' if none_ok else ''}{hint}, got {_describe(value)}")
        if self.output is not None and (not isinstance(self.output, (str, os.PathLike))
                                        or not isinstance(os.fspath(self.output), str)
                                        or not os.fspath(self.output).strip()):
            raise CganError(f"output must be a video file name (str or path, e.g. 'out.mp4') or None, got "
                            f"{_describe(self.output)}")
        if not isinstance(self.codec, str) or self.codec.lower() not in CODEC_CHOICES:
            raise CganError(f"codec must be one of {', '.join(CODEC_CHOICES)}, got {_describe(self.codec)}")
        self.codec = self.codec.lower()
        parse_capture(self.capture)
        if self.virtual_camera is not None and (not isinstance(self.virtual_camera, str)
                                                or not self.virtual_camera.strip()):
            raise CganError(f"--virtual-camera (virtual_camera) takes no value, 'auto' or a device such as "
                            f"/dev/video10 (None: no virtual camera), got {_describe(self.virtual_camera)}")
        self.max_frames = _checked_int("max_frames", self.max_frames, 1, none_ok=True)
        self.crf = _checked_int("crf", self.crf, 0, none_ok=True, high=MAX_CRF)
        self.start = None if self.start is None else parse_time(self.start, "start")
        self.end = None if self.end is None else parse_time(self.end, "end")
        if self.end is not None and self.end <= (self.start or 0.0):
            raise CganError(f"end ({self.end:g} s) must come after start ({self.start or 0:g} s)")
        self.reconnects = _checked_int("reconnects", self.reconnects, 0)
        self.queue_size = _checked_int("queue_size", self.queue_size, 1)
        strength = self.smooth_strength
        if (not isinstance(strength, numbers.Real) or isinstance(strength, (bool, np.bool_))
                or not 0.0 <= float(strength) < 1.0):
            raise CganError(f"smooth_strength must be a number in [0, 1), got {_describe(strength)}")
        self.smooth_strength = float(strength)
        self.smooth = self.smooth or self.smooth_flow  # flow is a kind of smoothing (it did nothing alone)
        check_compile_mode(self)
        if self.on_frame is not None and not callable(self.on_frame):
            raise CganError(f"on_frame must be a function on_frame(stream, input, output) or None, got "
                            f"{_describe(self.on_frame)}")


def _as_inputs(inputs: Any) -> tuple[Any, ...]:
    """`VideoJob.inputs` as a tuple: one input (str, path, camera index, source object) or an iterable of them."""
    if isinstance(inputs, (str, os.PathLike, numbers.Integral)) or isinstance(inputs, Source):
        return (inputs,)
    if isinstance(inputs, np.ndarray) or not isinstance(inputs, Iterable) or isinstance(inputs, (bytes, bytearray)):
        raise CganError(f"inputs must be a list of inputs (camera indices, str/paths, source objects), got "
                        f"{_describe(inputs)}; for frames in memory pass inputs=[FrameListSource(frames, fps=...)] "
                        f"(cgan.runtime.sources)")
    return tuple(inputs)


def _check_input(i: int, value: Any, before: Sequence[Any]) -> None:
    """One-line CganError for an input run_video cannot open, before anything is opened."""
    if isinstance(value, (str, os.PathLike, numbers.Integral)) and not isinstance(value, (bool, np.bool_)):
        parse_input(value)  # a bad camera index, URL scheme or path type, said now
        return
    if isinstance(value, Source) and callable(value.read) and callable(value.close):
        if any(value is other for other in before):
            raise CganError(f"inputs[{i}] is the same source object as an earlier input: two threads would read "
                            f"it; open the source twice or pass it once")
        return
    if isinstance(value, (np.ndarray, list, tuple, Iterator)) and not hasattr(value, "read"):
        what = _describe(value) if isinstance(value, np.ndarray) else f"a {type(value).__name__}"
        raise CganError(f"inputs[{i}] is {what}, not a source: wrap frames in memory as "
                        f"FrameListSource(frames, fps=...) (cgan.runtime.sources), one per stream")
    if hasattr(value, "read"):
        missing = [a for a in ("read", "close", "live", "fps", "frame_count", "name") if not hasattr(value, a)]
        raise CganError(f"inputs[{i}] ({type(value).__name__}) is not a complete source: it lacks "
                        f"{', '.join(missing) or 'a callable read() or close()'} (see cgan.runtime.sources.Source)")
    raise CganError(f"inputs[{i}] must be a camera index (an int), a str/path (device, video file, URL, 'demo') "
                    f"or a source object (see cgan.runtime.sources.Source), got {_describe(value)}")


def check_compile_mode(job: Any) -> None:
    """A job's compile_mode: None, or one of the torch backend's modes, and only with compile=True (one line)."""
    from cgan.runtime.backends.torch_backend import COMPILE_MODES

    mode = job.compile_mode
    if mode is None:
        return
    if not isinstance(mode, str) or mode not in COMPILE_MODES:
        raise CganError(f"compile_mode must be one of {', '.join(COMPILE_MODES)} (or None), got {_describe(mode)}")
    if not job.compile:
        raise CganError(f"compile_mode={mode!r} needs compile=True (cgan-video: --compile-mode implies --compile)")


def _check_bool(name: str, value: Any, none_ok: bool = False) -> None:
    if not (isinstance(value, (bool, np.bool_)) or (value is None and none_ok)):
        raise CganError(f"{name} must be True or False{' (or None)' if none_ok else ''}, got {_describe(value)}")


def _checked_int(name: str, value: Any, low: int, none_ok: bool = False, high: int | None = None) -> int | None:
    if value is None and none_ok:
        return None
    if (isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_)) and value >= low
            and (high is None or value <= high)):
        return int(value)
    bounds = f">= {low}" if high is None else f"from {low} to {high}"
    raise CganError(f"{name} must be an integer {bounds}{' (or None)' if none_ok else ''}, got {_describe(value)}")


@dataclass
class VideoSummary:
    """What a run did; stage fps are frames / busy seconds of that stage, `fps` is frames / wall time.

    Latency is capture -> written/shown for live sources; files are read ahead on purpose, so for them it
    counts from when the translate stage takes the frame. `resized` counts frames whose size changed
    mid-stream (resized to the stream's first size).
    """

    frames: int = 0
    dropped: int = 0
    resized: int = 0
    latency_p50_ms: float = 0.0
    latency_p99_ms: float = 0.0
    decode_fps: float = 0.0
    translate_fps: float = 0.0
    smooth_fps: float = 0.0               # --smooth's own stage (0: not smoothed)
    encode_fps: float = 0.0
    fps: float = 0.0
    seconds: float = 0.0
    ended: str = "end"                    # end | max-frames | quit | interrupted | terminated
    outputs: list[str] = field(default_factory=list)
    streams: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def format(self) -> str:
        lines = [
            f"frames {self.frames}  dropped {self.dropped}  size-changed {self.resized}  ({self.ended}, "
            f"{self.seconds:.1f} s)",
            f"latency p50 {self.latency_p50_ms:.1f} ms  p99 {self.latency_p99_ms:.1f} ms (capture -> written)",
            f"fps: pipeline {self.fps:.1f} | decode {self.decode_fps:.1f}  translate {self.translate_fps:.1f}  "
            + (f"smooth {self.smooth_fps:.1f}  " if self.smooth_fps else "") + f"encode {self.encode_fps:.1f}",
        ]
        for st in self.streams:
            f = st.get("flicker")
            if f:
                change = f"{(f['smoothed'] / f['raw'] - 1) * 100:+.0f} %" if f["raw"] > 0 else "n/a"
                name = f"{st['input']}: " if len(self.streams) > 1 else ""
                lines.append(f"{name}flicker index {f['raw']:.3f} raw -> {f['smoothed']:.3f} smoothed ({change}; "
                             f"output change per unit of input change, lower is steadier)")
        lines += [f"CUT SHORT {st['input']}: {st['cut_short']}" for st in self.streams if st.get("cut_short")]
        lines += [f"wrote {p}" for p in self.outputs]
        return "\n".join(lines)

    @property
    def incomplete(self) -> list[dict[str, Any]]:
        """The streams of recorded videos (not live) that ended before their end: their outputs lack the rest
        (cgan-video then exits 1)."""
        return [st for st in self.streams if st.get("cut_short") and not st.get("live")]


# ---- sizes, outputs, display -----------------------------------------------------------------------------
def _even(x: float) -> int:
    return max(2, int(round(x / 2.0)) * 2)


def parse_size(text: str | None) -> tuple[str, Any]:
    """'native' | '720p' | '1280x720' | '640' (long side) | 'max:3840' (long side at most 3840: larger frames
    shrink, smaller ones stay as they are) -> (kind, value); one-line CganError otherwise."""
    s = (text or "native").strip().lower()
    if s == "native":
        return ("native", None)
    if s.startswith("max:"):
        n = s[4:].strip()
        if not n.isdecimal() or not MIN_SIDE <= int(n) <= MAX_LONG_SIDE:
            raise CganError(f"bad --size {text!r}: max: takes the longest side in pixels, {MIN_SIDE}..{MAX_LONG_SIDE} "
                            f"(e.g. max:3840)")
        return ("max", int(n))
    if s in NAMED_SIZES:
        return ("height", NAMED_SIZES[s])
    if "x" in s:
        w, _, h = s.partition("x")
        if w.isdecimal() and h.isdecimal() and min(int(w), int(h)) < MIN_SIDE:
            raise CganError(f"--size {text}: each side must be at least {MIN_SIDE} pixels (e.g. 64x48)")
        if w.isdecimal() and h.isdecimal():
            padded = round_up(int(w)) * round_up(int(h))  # as the network sees it
            if padded > DEFAULT_MAX_PIXELS:
                raise CganError(f"--size {text} is {padded / 1e6:.1f} megapixels padded to multiples of {MULTIPLE}, "
                                f"over the {DEFAULT_MAX_PIXELS / 1e6:.1f} a frame may have; choose a smaller size")
            return ("exact", (int(w), int(h)))
    elif s.isdecimal():
        if int(s) < MIN_SIDE:
            raise CganError(f"--size {text}: the long side must be at least {MIN_SIDE} pixels (e.g. 512)")
        if int(s) > MAX_LONG_SIDE:
            raise CganError(f"--size {text}: a long side over {MAX_LONG_SIDE} pixels is not supported; "
                            f"choose a smaller size")
        return ("long", int(s))
    raise CganError(f"bad --size {text!r}: use native, {', '.join(NAMED_SIZES)}, WxH (e.g. 1280x720), a number "
                    f"for the long side (e.g. 512) or max:N (shrink only what is larger, e.g. max:3840)")


def target_size(width: int, height: int, size: tuple[str, Any], even: bool = True) -> tuple[int, int]:
    """The (width, height) frames of a width x height source are resized to: even sides (what video codecs need)
    where the size is scaled, or with `even` False (a photo) the nearest whole pixels."""
    kind, v = size
    side = _even if even else (lambda x: max(1, int(round(x))))
    if kind == "native":
        return width, height
    if kind == "exact":
        return v
    if kind == "height":
        return side(width * v / height), side(v)
    if kind == "max" and max(width, height) <= v:
        return width, height
    scale = v / max(width, height)
    return side(width * scale), side(height * scale)


def output_paths(output: str | os.PathLike | None, n: int) -> list[Path | None]:
    """One output per input: out.mp4 for one input; out_0.mp4, out_1.mp4, ... for several."""
    if output is None:
        return [None] * n
    p = Path(os.path.expanduser(os.fspath(output)))  # "~/out.mp4" made a folder named "~" in the current one
    if n == 1:
        return [p]
    return [p.with_name(f"{p.stem}_{i}{p.suffix}") for i in range(n)]


def output_codec(path: Path, codec: str | None = None) -> str:
    """The codec `path` is written with: "h264" (PyAV) or an OpenCV FOURCC. `codec`: a CODEC_CHOICES value, or
    None for the container's OpenCV codec (the writer's own default)."""
    from cgan.runtime import pyav

    ext = path.suffix.lower()
    choice = (codec or CODECS.get(ext, "")).lower()
    if choice == "auto":
        return H264 if ext != ".avi" and pyav.has_h264() else CODECS.get(ext, "")
    if choice == H264 and ext == ".avi":  # (PyAV wrote a 600 fps AVI of mostly empty frames, out of order)
        raise CganError(f"--codec h264 does not go into .avi ({path.name}): AVI has no place for H.264's frame "
                        f"times; write .mp4, .mkv or .mov, or use --codec mjpg for .avi")
    if choice == "mjpg" and ext in (".mp4", ".m4v"):  # (OpenCV tagged it mp4v, which players then misread)
        raise CganError(f"--codec mjpg does not go into {ext} ({path.name}): MP4 has no tag for Motion JPEG; write "
                        f".avi, .mkv or .mov, or use --codec h264 or mp4v for {ext}")
    if choice == H264 and not pyav.has_h264():
        raise CganError("--codec h264 needs PyAV with libx264 (pip install av; it comes with cgan[runtime]); "
                        "or pass --codec mp4v")
    return {"mjpg": "MJPG"}.get(choice, choice)


def crf_refusal(path: Path, fourcc: str, codec: str | None, others: str = "") -> str:
    """Why --crf cannot apply to `path`, written as `fourcc` (not H.264) for --codec `codec`, and what to do;
    `others`: what more outputs share that (a folder of videos)."""
    from cgan.runtime import pyav

    chosen = codec not in (None, "auto")
    if not chosen and path.suffix.lower() != ".avi" and not pyav.has_h264():
        return (f"--crf sets H.264's quality, and H.264 needs PyAV with libx264, which is missing here: "
                f"{path.name}{others} would be written as {fourcc}; pip install av (cgan[runtime] has it), or leave "
                f"--crf out")
    why = f"--codec {codec}" if chosen else f"OpenCV's {fourcc} for {path.suffix.lower()}"
    fix = ("write .mp4/.mkv/.mov with --codec auto or h264" if pyav.has_h264()
           else "install PyAV (pip install av) and write .mp4/.mkv/.mov")
    return (f"--crf sets H.264's quality, but {path.name}{others} is written as {fourcc} ({why}); {fix}, or leave "
            f"--crf out")


def _open_writer(path: Path, codec: str, fps: float, size: tuple[int, int], crf: int | None = None,
                 sar: Any = None) -> Any:
    """A writer with cv2.VideoWriter's interface for `codec` (see output_codec); `crf`: H.264's quality; `sar`:
    the pixels' shape when not square (H.264 only: OpenCV's writers have no place for it)."""
    if codec == H264:
        from cgan.runtime import pyav

        return pyav.H264Writer(path, fps, size, crf, sar)
    # QuickTime's tag for Motion JPEG is 'jpeg' (given MJPG, OpenCV's FFmpeg falls back to it, printing two lines)
    fourcc = "jpeg" if codec == "MJPG" and path.suffix.lower() == ".mov" else codec
    return cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, size)


def check_output(path: Path, codec: str | None = None, crf: int | None = None) -> str:
    """Check the container is writable here (extension -> codec, folder writable, a `crf` only for H.264); return
    the codec (output_codec: "h264" or the OpenCV FOURCC)."""
    if path.is_dir():
        raise CganError(f"--output {path} is a folder: pass a file name such as {path / 'out.mp4'}")
    ext = path.suffix.lower()
    if ext in IMAGE_EXTS:
        raise CganError(f"--output {path} names a photo, and the input is no photo by its name (.jpg, .png, ...) but "
                        f"a video, camera or stream (an animated GIF is read as a video): name a video file such as "
                        f"{path.with_suffix('.mp4')}")
    if ext not in CODECS:
        names = {H264: "H.264", "mp4v": "MPEG-4", "MJPG": "Motion JPEG"}  # as --codec (default auto) writes each
        try:
            written = {e: output_codec(Path("out" + e), codec or "auto") for e in CODECS}
        except CganError:  # --codec h264 without PyAV's libx264: said once the container is right
            written = dict(CODECS)
        have = ", ".join(f"{e} ({names.get(c, c)})" for e, c in written.items())
        raise CganError(f"cannot write {path}: unknown container {ext or '(no extension)'!r}; use one of {have}")
    folder = path.parent if str(path.parent) else Path(".")
    # a folder still to be made is made by the first frame's writer: a run refused before it leaves none
    existing = nearest_existing(folder)
    if not existing.is_dir():
        raise CganError(f"cannot create output folder {folder}: {existing} is not a folder; choose a writable path")
    if not os.access(existing, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise CganError(f"output path {path} is not writable; choose another --output")
    try:  # os.access says yes to root everywhere, but /proc, a read-only mount or a full disk still refuse
        probe, probe_id = _exclusive_temp(existing, f".cgan-probe-{os.getpid()}-", ext)
    except OSError as e:
        raise CganError(f"output path {path} is not writable ({e.strerror or e} in {existing}); choose another "
                        f"--output") from None
    try:
        fourcc = output_codec(path, codec)
        if crf is not None and fourcc != H264:
            raise CganError(crf_refusal(path, fourcc, codec))
        w = _open_writer(probe, fourcc, DEFAULT_FPS, (64, 64), crf)
        ok = w.isOpened()
        if ok:
            w.write(np.zeros((64, 64, 3), np.uint8))
        w.release()
        ok = ok and getattr(w, "error", None) is None
        swapped = _replaced(probe, probe_id)
    finally:
        _remove_own(probe, probe_id)
    if not ok:  # (first: a writer that fails to open removes its file, which is not someone else's doing)
        raise CganError(f"this {'PyAV' if fourcc == H264 else 'OpenCV build'} cannot write {ext} with codec "
                        f"{fourcc} to {folder}; use .mp4 (mp4v) or .avi (MJPG)")
    if swapped:
        raise CganError(f"the probe file {probe} {swapped} while it was written: someone else can write in "
                        f"{existing}; write --output to a folder only you can write to")
    return fourcc


def _not_an_input(path: Path, inputs: list[Any]) -> None:
    """Refuse an output that is one of the input files: the run would replace the source with its translation."""
    for value in inputs:
        if not isinstance(value, (str, os.PathLike)):
            continue
        try:
            spec = parse_input(value)
        except CganError:
            continue  # reported when the input is opened
        if spec.kind == "file" and _same_file(path, Path(spec.target)):
            raise CganError(f"--output {path} is the input {spec.target}: the run would replace it with its "
                            f"translation; choose another output name")


class _RemuxError(Exception):
    """A remux of a finished video that failed (VideoOutput._remux): `text`, one line naming the output, not the
    temp file; `cause`, what was raised."""

    def __init__(self, text: str, cause: BaseException):
        super().__init__(text)
        self.text, self.cause = text, cause


def _exclusive_temp(folder: Path, prefix: str, suffix: str) -> tuple[Path, tuple[int, int]]:
    """A new empty file in `folder` with an unpredictable name, made by us alone (O_EXCL, mode 0600, never
    through a link), and its (device, inode): for cv2.VideoWriter, which opens its file by name. The old fixed
    names (.out.partial-PID.mp4) let another user of a shared folder plant a link there and have it written to."""
    fd, name = tempfile.mkstemp(prefix=temp_prefix(prefix, suffix), suffix=suffix, dir=folder)
    try:
        st = os.fstat(fd)
    finally:
        os.close(fd)
    return Path(name), (st.st_dev, st.st_ino)


def _replaced(path: Path, ident: tuple[int, int]) -> str | None:
    """None while `path` is still the regular file `_exclusive_temp` made; else what happened to it, in words."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return "was removed"
    if stat.S_ISLNK(st.st_mode):
        return "was replaced by a link"
    if not stat.S_ISREG(st.st_mode) or (st.st_dev, st.st_ino) != ident:
        return "was replaced by another file"
    return None


def _remove_own(path: Path, ident: tuple[int, int]) -> None:
    """Remove our temporary file; whatever someone else put under its name is left alone."""
    if not _replaced(path, ident):
        with contextlib.suppress(OSError):
            path.unlink()


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


class VideoOutput:
    """A writer (cv2.VideoWriter, or PyAV's H.264 writer with its interface) opened on the first frame, writing to
    a hidden temp file renamed on `finish()` (after the source's sound is remuxed in, when asked).

    The temp file (`.STEM.partial-PID-RANDOM.EXT` beside the output, made exclusively, mode 0600) must still be
    the file made for it when the writer opens it and when it is renamed: one replaced by a link or another file
    (someone else writing in the folder) is refused, and the output is left as it was."""

    def __init__(self, path: Path, fps: float, sound_from: tuple[Any, ...] | None = None,
                 codec: str | None = None, source_name: str | None = None, crf: int | None = None,
                 sar: Any = None):
        self.path = path
        self.sar = sar  # the source's pixel shape when not square (anamorphic video), kept by the H.264 writer
        self.crf = crf  # H.264's quality (None: the writer's default)
        self.source_name = source_name  # what the drift warning calls the input
        # (video file, its pyav.SourceAudio[, its file_identity when opened]): the sound that goes into the output
        self.sound_from = sound_from
        self.sound: str | None = None  # the sound codec copied, once finished
        self.found = file_identity(path)  # what stood at `path` when the run began (another writer's: finish)
        self.fourcc = output_codec(path, codec)  # "h264" (PyAV) or an OpenCV FOURCC
        self.fps = known_fps(fps) or DEFAULT_FPS
        self.tmp: Path | None = None  # made with the writer, on the first frame (_exclusive_temp)
        self._tmp_id: tuple[int, int] = (-1, -1)
        self.writer: cv2.VideoWriter | None = None
        self.size: tuple[int, int] | None = None
        self.frames = 0
        self.t_first: float | None = None
        self.t_source0: float | None = None  # the first frame's time in its source file
        self.timed = False  # frames were written at their source times (the H.264 writer)
        self.writer_seconds = 0.0  # the timed writer's length, kept when it is released
        self.drift = 0.0  # the largest distance of a frame from its source time (constant-rate writers)
        self._drift_at = 0
        self._drift_given: float | None = None  # the source time given with the previous frame (constant-rate)
        self._drift_shift = 0.0  # seconds added to the source times since they went back (two recordings joined)
        self._last_frame: np.ndarray | None = None  # the frame written last, for hold_last
        self._last_at: float | None = None  # its time in the source, from the first frame's (seconds)

    def write(self, frame: np.ndarray, t_capture: float | None = None, t_source: float | None = None) -> None:
        """Append a frame at its time, so the file plays as the source did:
        - `t_source` (files): the frame's time in its source (seconds). The H.264 writer keeps it, so a variable
          frame rate (phones record one) stays in step with the sound; OpenCV's writers have one constant rate,
          and a warning says how far the pictures drift from the source's times.
        - `t_capture` (live sources, whose stale frames are dropped): the H.264 writer writes the frame once at
          its capture time (a frame holds until the next); OpenCV's writers repeat it to fill the time since the
          previous one at the file's fps (at most one second of repeats per frame, so a long outage does not
          become a long still)."""
        repeats, at = 1, None
        if t_source is not None and math.isfinite(t_source):
            if self.t_source0 is None:
                self.t_source0 = t_source
            at = t_source - self.t_source0
        if t_capture is not None:
            if self.t_first is None:
                self.t_first = t_capture
            at = t_capture - self.t_first if at is None else at
            due = int(round((t_capture - self.t_first) * self.fps)) + 1  # frames the file should hold by now
            repeats = max(1, min(due - self.frames, int(self.fps)))
        h, w = frame.shape[:2]
        if self.writer is None:
            # The codecs store 4:2:0 chroma, so an odd width or height would be cut silently by the encoder:
            # crop the last row/column ourselves and say so once; the summary reports the size written.
            ew, eh = even_size(w, h)
            if (ew, eh) != (w, h):
                log.info("%s: %dx%d frames are written as %dx%d (the codec needs even sizes)", self.path.name,
                         w, h, ew, eh)
            self.size = (ew, eh)
            folder = self.path.parent
            try:
                folder.mkdir(parents=True, exist_ok=True)  # see check_output
            except OSError as e:
                raise CganError(f"cannot create output folder {folder}: {e.strerror or e}; choose a "
                                f"writable path") from None
            try:
                self.tmp, self._tmp_id = self._new_partial()
            except OSError as e:
                raise CganError(f"cannot write in output folder {folder}: {e.strerror or e}; choose a writable "
                                f"path") from None
            if self.sar is not None and self.fourcc != H264:
                log.warning("warning: %s: the input's pixels are not square (%s:%s, anamorphic video) and %s files "
                            "cannot say so: the picture will look squeezed; write H.264 (--codec auto or h264 into "
                            ".mp4/.mkv/.mov)", self.path.name, self.sar.numerator, self.sar.denominator, self.fourcc)
            self.writer = _open_writer(self.tmp, self.fourcc, self.fps, (ew, eh), self.crf, self.sar)
            if not self.writer.isOpened():
                self.abort()
                raise CganError(f"cannot open a {self.fourcc} writer for {self.path} at {ew}x{eh}, "
                                f"{self.fps:g} fps (the container worked in a 64x64 probe): try a smaller --size, a "
                                f"shorter file name, or the other container (.mp4 mp4v / .avi MJPG)")
            self._check_tmp()
        frame = fit_to(frame, self.size)
        if at is not None and getattr(self.writer, "keeps_times", False):
            self.writer.write(frame, at)
            self.timed = True
            self.frames += 1
            return
        if at is not None and t_capture is None:
            self._note_drift(at)
        for _ in range(repeats):
            self.writer.write(frame)
        self.frames += repeats
        self._last_frame, self._last_at = frame, at

    def hold_last(self, t_source: float) -> None:
        """Show the last frame written until `t_source`, where it stops being shown in its file (a GIF's last
        picture often stays for seconds; without this it lasts as long as the one before it), at most
        HOLD_LAST_MAX_S. The H.264 writer gives it that duration; OpenCV's constant-rate writers repeat it for its
        own duration beyond one frame (not up to the source's length: a variable rate's drift would become a
        frozen tail)."""
        if self.writer is None or self.t_source0 is None or not math.isfinite(t_source):
            return
        end = t_source - self.t_source0
        if self.timed:
            self.writer.hold_last(end, HOLD_LAST_MAX_S)
        elif self._last_frame is not None and self._last_at is not None:
            shown = min(end - self._last_at, HOLD_LAST_MAX_S)
            for _ in range(round(shown * self.fps) - 1):
                self.writer.write(self._last_frame)
                self.frames += 1

    @property
    def seconds(self) -> float:
        """The length of the video written (the sound is cut to it)."""
        return self.writer_seconds if self.timed else self.frames / self.fps

    def _note_drift(self, at: float) -> None:
        """For a constant-rate writer given source times: keep the largest distance of a frame from its time in
        the source (warned of in finish). A time more than a frame before the one given before (two recordings
        joined) is a break, as in the H.264 writer: the frames after it are measured from where they are written
        (the joined clip's second recording was said to be 1 s away from its times)."""
        if self._drift_given is not None and at < self._drift_given - 1.0 / self.fps:
            self._drift_shift = self.frames / self.fps - at
        self._drift_given = at
        drift = abs(self.frames / self.fps - (at + self._drift_shift))
        if drift > self.drift:
            self.drift, self._drift_at = drift, self.frames

    def _warn_drift(self) -> None:
        if self.drift > max(1.0 / self.fps, DRIFT_WARN_S):
            log.warning("warning: %s has a variable frame rate, and the %s writer has one constant rate: pictures are "
                        "up to %.2f s away from their times in the source and its sound (frame %d); --codec h264 "
                        "keeps the source's times", self.source_name or "the input", self.fourcc, self.drift,
                        self._drift_at)

    def finish(self) -> Path | None:
        """Release the writer, check that the file plays back with every frame, then give it its final name;
        None if no frames. cv2.VideoWriter reports no write errors (disk full, size limits), so a file that
        does not read back is removed and reported instead of replacing the target."""
        error = None
        if self.writer is not None:
            self.writer.release()
            error = getattr(self.writer, "error", None)  # PyAV's writer keeps what went wrong; OpenCV's says nothing
            self.writer_seconds = getattr(self.writer, "seconds", 0.0)
            self.writer = None
        if self.frames == 0 or self.tmp is None:
            self.abort()
            log.warning("no frames of %s were written: %s is not made", self.source_name or "the input", self.path.name)
            return None
        if error is not None:
            self.abort()
            why = (str(error).strip().splitlines() or [type(error).__name__])[-1]
            why = why.replace(str(self.tmp), self.path.name)[:200]  # the output's name, not the temp file's
            raise CganError(f"writing {self.path} failed: {why}; {self.path} "
                            f"was left as it was")
        self._check_tmp()
        readable, count = _read_back(self.tmp)
        if readable and not self.timed and self.tmp.stat().st_size <= PACKET_COUNT_MAX_BYTES:
            # OpenCV's writers report no write errors, and an AVI's header (rewritten at release) or a Matroska
            # file's length still declared every frame of a file a full disk or a size limit had cut short (17
            # of 20 frames played): the frames the container holds are counted too (one packet a frame; with
            # PyAV, which the extras install; it reads the file's packets at about 200 MB/s, so not for huge ones)
            from cgan.runtime.pyav import video_packets

            held = video_packets(self.tmp)
            count = held if held is not None and held < self.frames else count
        if not readable or self._short(count):
            _remove_own(self.tmp, self._tmp_id)
            got = f"{count} of {self.frames} frames" if readable else "an unreadable file"
            raise CganError(f"writing {self.path} failed ({got} after release: disk full or a file size "
                            f"limit?); {self.path} was left as it was")
        self._warn_drift()
        # OpenCV's mp4v writer encodes BT.601 and says nothing: players then guess, and take an HD file for BT.709
        # (a slight colour shift). The remux that adds the sound tags it; without one, a remux of its own does
        from cgan.runtime.pyav import BT601_TAGS

        tags = BT601_TAGS if self.fourcc == "mp4v" else None
        if self.sound_from is not None:
            self._add_sound(tags)
        if tags is not None and self.sound is None:
            self._tag_colours(tags)
        self._give_normal_mode()
        self._check_tmp()
        if file_identity(self.path) != self.found:  # (two runs with one --output: the last one's file stood)
            log.warning("warning: %s was written by another program while this run translated; it is replaced by "
                        "this run's output", self.path)
        replace_synced(self.tmp, self.path)
        return self.path

    def _short(self, count: int) -> bool:
        """Whether a read-back frame count (0: not declared) says frames are missing. A file written at its
        source's times is not checked so: OpenCV estimates the count of a Matroska file from its length and
        nominal rate, which a variable rate makes wrong, and PyAV's writer reports its own errors."""
        return not self.timed and 0 < count < self.frames

    def _new_partial(self) -> tuple[Path, tuple[int, int]]:
        """A new temp file beside the output (.STEM.partial-PID-RANDOM.EXT) and its identity (_exclusive_temp)."""
        return _exclusive_temp(self.path.parent, f".{self.path.stem}.partial-{os.getpid()}-", self.path.suffix)

    def _remux(self, write: Callable[[Path], int], unreadable: str) -> bool:
        """Remux the finished video into a second temp file beside it with `write(tmp)` (how many packets of what
        it adds went in: 0 adds nothing), check that it reads back whole, and let it take the first one's place;
        False when there was nothing to add. A failure removes the second file and raises _RemuxError
        (`unreadable`: the words for a file that does not read back)."""
        tmp, ident = None, (-1, -1)
        try:
            tmp, ident = self._new_partial()
            if write(tmp) == 0:
                _remove_own(tmp, ident)
                return False
            what = _replaced(tmp, ident)
            readable, count = _read_back(tmp) if what is None else (False, 0)
            if what is not None or not readable or self._short(count):
                raise OSError(what or unreadable)
        except Exception as e:  # noqa: BLE001 - PyAV raises its own errors; the caller keeps the video as it is
            text = str(e).strip().splitlines()[-1][:200] if str(e).strip() else type(e).__name__
            if tmp is not None:
                _remove_own(tmp, ident)
                text = text.replace(str(tmp), self.path.name)  # FFmpeg names the temp file
            raise _RemuxError(text, e) from e
        except BaseException:  # Ctrl-C (an app's KeyboardInterrupt): the second file goes too, then the interrupt
            if tmp is not None:
                _remove_own(tmp, ident)
            raise
        _remove_own(self.tmp, self._tmp_id)
        self.tmp, self._tmp_id = tmp, ident
        return True

    def _tag_colours(self, tags: dict[str, int]) -> None:
        """Remux the video with its colour description set to `tags` (packets copied); without PyAV, or should
        that fail, it stays untagged (said at debug level)."""
        from cgan.runtime import pyav

        if not pyav.available():
            return
        try:
            self._remux(lambda tmp: pyav.tag_colours(self.tmp, tmp, tags), "the tagged video did not read back")
        except _RemuxError as e:
            log.debug("%s: left untagged (%s)", self.path, e.text)

    def _add_sound(self, tags: dict[str, int] | None = None) -> None:
        """Remux the finished video with the sound of `sound_from` (and the colour description `tags`, if given)
        into a second temp file, which then takes the first one's place (_remux). The sound's packets are copied;
        packets the container refuses (ADPCM or µ-law in .mp4, Opus in .mov, timestamps out of order) are decoded
        and encoded as AAC instead, and that is said. Some are
        encoded before a copy is tried: PCM for .mp4, which takes it but few players play it from there, and every
        sound for .avi, which cannot say where a copied sound starts (written as PCM, silence before a late start).
        The video stays as it is (and a warning says why) when nothing works."""
        from cgan.runtime import pyav

        source, found, *opened = self.sound_from
        identity = opened[0] if opened else None
        now = file_identity(source) if identity is not None else None
        if identity is not None and (now is None or now[:3] != identity[:3]):  # (its sound is read by its path;
            #                                                                        a new time alone: `touch`)
            log.warning("warning: %s was replaced, deleted or written over while it was translated: its sound is not "
                        "copied (it would not be the sound of the pictures read)", source)
            return
        # the sound from the output's first frame on (a --start cuts it later in the file)
        found = dataclasses.replace(found, video_start=found.video_start + (self.t_source0 or 0.0))
        suffix = self.path.suffix.lower()
        # encoded before a copy is tried (a copy follows if that fails): AVI has no start time for a sound nor an
        # encoder delay (a copied sound that starts after the first picture played that much early, AAC's priming
        # 21 ms late); PCM goes into .mp4 as it is (FFmpeg writes ISO 23003-5 'ipcm'), and browsers and most players
        # then play the picture without its sound (.mov and .mkv keep PCM as it is)
        first = (pyav.AVI_SOUND_CODEC if suffix == ".avi" else
                 pyav.SOUND_CODEC if suffix in MP4_NAMES and found.codec.startswith("pcm_") else None)
        encoded_so = "written as 16-bit PCM" if first == pyav.AVI_SOUND_CODEC else "encoded as AAC"
        encode = first
        why, copy_error, first_error = "", "", ""
        while True:
            try:
                if not self._remux(lambda tmp: pyav.mux_sound(self.tmp, source, tmp, self.seconds, found,
                                                              encode=encode, tags=tags),
                                   "the video with sound did not read back"):
                    return  # an audio stream with no sound where the frames are: nothing to add
            except _RemuxError as failed:  # the video without sound is kept
                e, why = failed.cause, failed.text
                # refused by the container (PyAV's ValueError naming the codec, FFmpeg's EINVAL from the muxer),
                # not a full disk or an unreadable folder (OSError): encoded as AAC it may go in
                if encode is None and first is None and isinstance(e, ValueError) and not isinstance(e, OSError):
                    encode, copy_error = pyav.SOUND_CODEC, why
                    continue
                if encode is not None and first is not None and not isinstance(e, OSError):
                    encode, first_error = None, why
                    continue
                break
            self.sound = f"{encode} (from {found.codec})" if encode and encode != found.codec else found.codec
            if first_error and first == pyav.AVI_SOUND_CODEC:
                log.warning("warning: %s: its sound (%s) could not be written as PCM (%s): copied as it is, and AVI "
                            "cannot say where a sound starts, so it may play early or late (write .mp4, .mov or "
                            ".mkv)", self.path, found.codec, first_error)
            elif first_error:
                log.warning("warning: %s: its sound (%s) could not be encoded as AAC (%s): copied as it is, and PCM "
                            "in %s plays in few players (write .mov or .mkv)", self.path, found.codec, first_error,
                            self.path.suffix)
            elif encode and first == pyav.AVI_SOUND_CODEC:
                log.info("%s: its sound (%s) written as 16-bit PCM, placed by its times (AVI cannot say where a "
                         "copied sound starts)", self.path.name, found.codec)
            elif encode and not copy_error:
                log.info("%s: its sound (%s) encoded as AAC: PCM in %s plays in few players (.mov and .mkv keep "
                         "it as it is)", self.path.name, found.codec, self.path.suffix)
            elif encode:
                log.info("%s: its sound (%s) could not be copied into %s as it is (%s): encoded as AAC",
                         self.path.name, found.codec, self.path.suffix, copy_error)
            return
        what = f"could not be {encoded_so} ({first_error}) nor copied ({why})" if first_error else \
            f"could not be {encoded_so} ({why})" if first else \
            f"could not be copied ({copy_error}) nor encoded as AAC ({why})" if encode else \
            f"could not be copied ({why})"
        log.warning("warning: %s: the sound (%s) %s; written without sound (.mkv takes most sound codecs as they are)",
                    self.path, found.codec, what)

    def _check_tmp(self, what: str | None = None) -> None:
        """Refuse to go on with a temp file that is no longer the one made for this output (see the class)."""
        what = what or _replaced(self.tmp, self._tmp_id)
        if what:
            if self.writer is not None:
                self.writer.release()
                self.writer = None
            raise CganError(f"the temporary file {self.tmp} {what} while {self.path} was written: someone else "
                            f"can write in {self.path.parent}; {self.path} was left as it was; write to a folder "
                            f"only you can write to")

    def _give_normal_mode(self) -> None:
        """The mode a new file gets (0666 less the umask), as outputs had before the temp file was made 0600;
        set through a descriptor that cannot follow a link, on the file made for it only."""
        if not hasattr(os, "fchmod"):
            return
        try:
            fd = os.open(self.tmp, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
        except OSError:
            self._check_tmp()  # a link put there since (O_NOFOLLOW); anything else is a plain OSError
            raise
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode) or (st.st_dev, st.st_ino) != self._tmp_id:
                self._check_tmp("was replaced by another file")
            os.fchmod(fd, 0o666 & ~_umask())
        finally:
            os.close(fd)

    def abort(self) -> None:
        if self.writer is not None:
            self.writer.release()
            self.writer = None
        if self.tmp is not None:
            _remove_own(self.tmp, self._tmp_id)


def _read_back(path: Path) -> tuple[bool, int]:
    """(whether a finished video's first frame decodes, the frame count its container declares, 0 unknown)."""
    cap = _READ_BACK(str(path))
    try:
        readable = bool(cap.isOpened() and cap.read()[0])
        return readable, int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0) if readable else 0
    finally:
        cap.release()


def gui_problem() -> str | None:
    """Why cv2.imshow cannot work here (None if it can)."""
    info = cv2.getBuildInformation()
    i = info.find("GUI:")
    if i >= 0 and info[i:i + 60].split("\n")[0].split(":", 1)[1].strip().upper() == "NONE":
        return ("this OpenCV build has no GUI (opencv-python-headless); install opencv-python instead "
                "(`pip uninstall -y opencv-python-headless opencv-python && pip install opencv-python`: both share "
                "the cv2 folder) or use --no-display with --output FILE")
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return "no display to show a window on ($DISPLAY is not set); use --no-display with --output FILE"
    display = os.environ.get("DISPLAY")
    if sys.platform.startswith("linux") and display and not os.environ.get("WAYLAND_DISPLAY") \
            and not x_server_answers(display):
        # OpenCV's Qt window aborted the process there (SIGABRT: "could not connect to display"), leaving a
        # half-written temp file and no output
        return (f"no X server answers at DISPLAY={display} (an ssh session without -X, a closed desktop?); use "
                f"--no-display with --output FILE, or fix $DISPLAY")
    return None


def x_server_answers(display: str, tcp_base: int = 6000, timeout: float = 1.0) -> bool:
    """Whether an X server takes connections at `display` ([host]:N[.screen]): its Unix socket (the file, or
    Linux's abstract one) for a local display, TCP port tcp_base + N for a remote one (ssh -X: localhost:10).
    True when `display` is not in that form (it cannot be told; the window may try)."""
    import re
    import socket

    m = re.fullmatch(r"(?P<host>[A-Za-z0-9.\-]*|\[[0-9a-fA-F:]+\]|unix):(?P<num>\d+)(?:\.\d+)?", display.strip())
    if m is None:
        return True
    host, num = m.group("host"), int(m.group("num"))
    if host in ("", "unix"):
        targets = [(socket.AF_UNIX, f"/tmp/.X11-unix/X{num}"), (socket.AF_UNIX, f"\0/tmp/.X11-unix/X{num}")]
    else:
        targets = [(None, (host.strip("[]"), tcp_base + num))]
    for family, address in targets:
        try:
            if family is None:
                socket.create_connection(address, timeout=timeout).close()
            else:
                with socket.socket(family, socket.SOCK_STREAM) as sock:
                    sock.settimeout(timeout)
                    sock.connect(address)
            return True
        except (OSError, ValueError):
            continue
    return False


# ---- the pipeline ----------------------------------------------------------------------------------------
class _Stream:
    def __init__(self, idx: int, source: Source, size: tuple[str, Any], smoother: TemporalSmoother | None,
                 out: VideoOutput | None, queue_size: int, max_pixels: int | None = DEFAULT_MAX_PIXELS,
                 model_size: Callable[[int, int], tuple[int, int]] | None = None):
        self.idx = idx
        self.max_pixels = max_pixels  # the translator's limit for native frames (None: not known, not checked)
        self.model_size = model_size or model_size_of(None)  # the size the translator runs a frame at
        self.source = source
        # a source of the app's own may fill one buffer again on every read(): its frames are copied, else the
        # frames queued ahead of translation all became the latest one (a Trimmed one copies them itself)
        self.foreign = foreign(source)
        self.live = bool(source.live)
        self.size = size
        self.target: tuple[int, int] | None = None
        self.first_size: tuple[int, int] | None = None
        self.smoother = smoother
        # with --smooth: the flicker index of the raw and of the smoothed output (every 4th pixel of every 4th row)
        self.flicker = (FlickerMeter(step=FLICKER_STEP), FlickerMeter(step=FLICKER_STEP)) if smoother else None
        self.out = out
        self.q: queue.Queue = queue.Queue(maxsize=1 if self.live else max(1, queue_size))
        self.read = 0
        self.ended_at: float | None = None  # a file read to its end: where its last frame stops being shown
        self.dropped = 0       # stale frames dropped at capture (capture thread)
        self.dropped_out = 0   # stale translated frames dropped before writing (writer thread)
        self.resized = 0
        self.written = 0
        self.decode_busy = 0.0
        self.thread: threading.Thread | None = None
        # Who closes the source: the main thread, unless the capture thread is still inside read() when the
        # run is over; then that thread does, as soon as the read returns (see close_source / capture_exited).
        self._owner = threading.Lock()
        self._capture_exited = False
        self._close_on_exit = False

    def capture_exited(self) -> None:
        """Called by the capture thread as it ends: close the source if the run has already handed it over."""
        with self._owner:
            self._capture_exited = True
            close = self._close_on_exit
        if close:
            _close_quietly(self.source)
            log.info("%s: the read that outlived the run returned; the source is released", self.source.name)

    def close_source(self) -> None:
        """Close the source now, or, while the capture thread is still inside read() (a hung camera or stream
        that OpenCV cannot interrupt), leave that to the thread: it releases the source when the read returns.
        Never waits and never closes a source another thread is reading."""
        with self._owner:
            busy = self.thread is not None and self.thread.is_alive() and not self._capture_exited
            self._close_on_exit = busy
        if busy:
            log.warning("%s is still inside read() %g s after the run ended; it is released when that read "
                        "returns", self.source.name, JOIN_TIMEOUT_S)
        else:  # (an error closing it is logged: it replaced the run's own outcome, a finished file's or an error's)
            _close_quietly(self.source)

    def _check_pixels(self, w: int, h: int) -> None:
        """Refuse a target size over the frame limit, as the network sees it (padded to multiples of 4), before a
        resize allocates the huge frames, in the words of cgan-video's options (the translator's own error
        names its Python arguments). A translator with a larger `max_pixels` takes larger native frames."""
        tw, th = self.target
        ph, pw = self.model_size(th, tw)
        native = (tw, th) == (w, h)
        limit = self.max_pixels if self.max_pixels is not None else DEFAULT_MAX_PIXELS
        if pw * ph <= limit or (native and self.max_pixels is None):
            return
        what = (f"the frames of {self.source.name} are {w}x{h}" if native
                else f"--size (VideoJob.size) makes the {w}x{h} frames of {self.source.name} {tw}x{th}")
        padded = f" ({pw}x{ph} as the model runs them)" if (pw, ph) != (tw, th) else ""
        raise CganError(f"{what}{padded}, over the {limit / 1e6:.1f} megapixels a frame may have: choose a "
                        f"smaller --size (VideoJob.size; e.g. 2160p, or 3840 for the long side)")

    def prepare(self, frame: np.ndarray) -> np.ndarray:
        """Resize to the stream's target size; a frame whose size changed mid-stream goes to the first size. A
        Python source's gray, BGRA, uint16 or float frames become BGR uint8 here, as the translator takes them (the
        side-by-side view and the writer need BGR uint8)."""
        raw = frame
        frame = to_bgr(frame)  # as is (no copy) for the BGR uint8 frames OpenCV reads
        h, w = frame.shape[:2]
        if self.target is None:
            self.first_size = (w, h)
            self.target = target_size(w, h, self.size)
            self._check_pixels(w, h)
            if self.out is not None and self.out.sar is not None and self.target != (w, h):
                # non-square pixels, and a size that changes the frame's shape (--size WxH): the picture is shown
                # as the source was when the pixels change shape by as much
                from fractions import Fraction

                sar = self.out.sar * Fraction(w * self.target[1], h * self.target[0])
                self.out.sar = None if sar == 1 else sar
            if self.target != (w, h):
                log.debug("%s: %dx%d resized to %dx%d", self.source.name, w, h, *self.target)
        elif (w, h) != self.first_size:
            self.resized += 1
            if self.resized == 1:
                log.warning("%s changed size mid-stream (%dx%d -> %dx%d); resizing to the first size %dx%d",
                            self.source.name, *self.first_size, w, h, *self.target)
        if (w, h) != self.target:
            return np.ascontiguousarray(cv2.resize(frame, self.target, interpolation=cv2.INTER_AREA))
        out = np.ascontiguousarray(frame)
        return out.copy() if self.foreign and np.may_share_memory(out, raw) else out


class _Pipeline:
    def __init__(self, job: VideoJob, translator: Any, streams: list[_Stream]):
        self.job = job
        self.translator = translator
        self.streams = streams
        self.stop = threading.Event()
        self.ready = threading.Event()
        self.translating: threading.Thread | None = None  # the translate thread, once started
        self.out_q: queue.Queue = queue.Queue(maxsize=max(2, len(streams) * 2))
        # with --smooth, translated frames go through their own stage (threads between translate and write): the
        # smoother's CPU time (31 ms a 720p frame on a shared 2-core host) overlaps the next frame's translation.
        # Several inputs share out SMOOTH_WORKERS threads (OpenCV and numpy release the GIL), stream i going to
        # worker i % n: each stream's frames stay in order through one worker.
        smoothed = sum(st.smoother is not None for st in streams)
        n = min(smoothed, SMOOTH_WORKERS or os.cpu_count() or 1)
        self.smooth_qs: list[queue.Queue] = [queue.Queue(maxsize=max(2, -(-len(streams) // n) * 2))
                                             for _ in range(n)]
        self.smooth_left = n  # workers still running: the last one to end passes the end marker on
        self.smooth_lock = threading.Lock()
        self.errors: list[BaseException] = []
        self.translate_busy = 0.0
        self.translated = 0
        self.smooth_stats = [[0.0, 0] for _ in range(n)]  # per worker: seconds busy, frames smoothed
        self.encode_busy = 0.0
        # the newest 100,000 latencies (p50/p99 over them): bounded memory on runs that last for hours
        self.latencies: deque[float] = deque(maxlen=100_000)
        self.ended = "end"
        self.signals = 0  # SIGINT/SIGTERM received (see _signals)
        self.vcam: Any = None  # a VirtualCamera (--virtual-camera) the shown frames also go to
        self.vcam_lost: CganError | None = None  # why the virtual camera stopped taking frames mid-run

    # -- capture (one thread per input) --
    def _capture(self, st: _Stream) -> None:
        try:
            while not self.stop.is_set():
                if self.job.max_frames is not None and st.read >= self.job.max_frames:
                    break
                t0 = time.perf_counter()
                frame = st.source.read()
                if frame is None:
                    st.ended_at = None if st.live else _source_end(st.source)
                    break
                frame = st.prepare(frame)
                t1 = time.perf_counter()
                st.decode_busy += t1 - t0
                item = (st.read, t1, frame, None if st.live else _source_time(st.source))
                st.read += 1
                if st.live:
                    while True:
                        try:
                            st.q.put_nowait(item)
                            break
                        except queue.Full:
                            with contextlib.suppress(queue.Empty):
                                st.q.get_nowait()
                                st.dropped += 1
                else:
                    self._put(st.q, item)
                self.ready.set()
        except BaseException as e:  # noqa: BLE001 - handed to the main thread
            self.errors.append(e)
            self.stop.set()
        finally:
            # The end marker waits for room like a frame does (at most one translate step): the last frame of a
            # live source is not stale at the end of the stream. _put gives up once the pipeline is stopping.
            try:
                self._put(st.q, _END)
                self.ready.set()
            finally:
                st.capture_exited()

    def _put(self, q: queue.Queue, item: Any) -> None:
        while not self.stop.is_set():
            try:
                q.put(item, timeout=0.05)
                return
            except queue.Full:
                continue

    def _newest(self, item: Any, pending: deque, q: queue.Queue | None = None) -> Any:
        """The newest translated frame of `item`'s live stream among those waiting (in `pending` and in the
        queue `q`, the output queue by default); the older ones are dropped. Everything else stays in `pending`, in
        order."""
        waiting = list(pending)
        with contextlib.suppress(queue.Empty):
            while True:
                waiting.append((self.out_q if q is None else q).get_nowait())
        pending.clear()
        for other in waiting:
            if other is not _END and other[0] is item[0]:
                item[0].dropped_out += 1
                item = other
            else:
                pending.append(other)
        return item

    # -- translate (one thread for all inputs) --
    def _translate(self) -> None:
        active = list(self.streams)
        try:
            while active and not self.stop.is_set():
                self.ready.clear()
                batch = []
                for st in list(active):
                    try:
                        item = st.q.get_nowait()
                    except queue.Empty:
                        continue
                    if item is _END:
                        active.remove(st)
                    else:
                        batch.append((st, item))
                if not batch:
                    if active:
                        self.ready.wait(0.05)
                    continue
                t0 = time.perf_counter()
                groups: dict[tuple[int, ...], list] = {}
                for st, item in batch:
                    groups.setdefault(item[2].shape, []).append((st, item))
                results = []
                for group in groups.values():
                    frames = [item[2] for _, item in group]
                    outs = _checked_outputs(self.translator.translate_batch(frames), frames)
                    results += [(st, item, out) for (st, item), out in zip(group, outs)]
                self.translate_busy += time.perf_counter() - t0
                self.translated += len(results)
                qs = self.smooth_qs
                for st, (seq, t_cap, frame, t_src), out in results:
                    # files are read ahead on purpose: their latency starts when translation takes the frame
                    self._put(qs[st.idx % len(qs)] if qs else self.out_q,
                              (st, seq, t_cap if st.live else t0, frame, out, t_src))
        except BaseException as e:  # noqa: BLE001 - handed to the main thread
            self.errors.append(e)
            self.stop.set()
        finally:
            for q in self.smooth_qs or [self.out_q]:
                self._put(q, _END)

    # -- smooth (--smooth: every translated frame of a stream in order, through the worker of that stream) --
    def _smooth(self, worker: int) -> None:
        q, stats = self.smooth_qs[worker], self.smooth_stats[worker]
        pending: deque = deque()  # items taken from q ahead of their turn (see _newest)
        try:
            while not self.stop.is_set():
                if pending:
                    item = pending.popleft()
                else:
                    try:
                        item = q.get(timeout=0.05)
                    except queue.Empty:
                        continue
                if item is not _END and item[0].live:
                    # when smoothing is the slow stage (--smooth-flow at HD on a CPU), stale live frames are
                    # dropped here too: they queued before it, and latency grew to 3-4 smoothing times
                    item = self._newest(item, pending, q)
                if item is _END:
                    break
                st, seq, t_cap, frame, out, t_src = item
                if st.smoother is not None:
                    t0 = time.perf_counter()
                    st.flicker[0].update(frame, out)
                    out = st.smoother(frame, out)
                    st.flicker[1].update(frame, out)
                    stats[0] += time.perf_counter() - t0
                    stats[1] += 1
                self._put(self.out_q, (st, seq, t_cap, frame, out, t_src))
        except BaseException as e:  # noqa: BLE001 - handed to the main thread
            self.errors.append(e)
            self.stop.set()
        finally:
            with self.smooth_lock:
                self.smooth_left -= 1
                last = self.smooth_left == 0
            if last:
                self._put(self.out_q, _END)

    def smooth_fps(self) -> float:
        """The smoothing stage's rate: its workers' rates together (each its frames over its busy seconds)."""
        return sum(n / busy for busy, n in self.smooth_stats if busy > 0)

    # -- write / show (main thread) --
    def run(self, display: bool, bar: Any) -> None:
        threads = [threading.Thread(target=self._capture, args=(st,), name=f"cgan-capture-{st.idx}", daemon=True)
                   for st in self.streams]
        for st, t in zip(self.streams, threads):
            st.thread = t
        translate = self.translating = threading.Thread(target=self._translate, name="cgan-translate", daemon=True)
        smooth = [threading.Thread(target=self._smooth, args=(i,), name=f"cgan-smooth-{i}", daemon=True)
                  for i in range(len(self.smooth_qs))]
        stages = [translate, *smooth]
        feeders = smooth or [translate]  # the stage that feeds out_q
        for t in (*threads, *stages):
            t.start()
        recent = [deque(maxlen=30) for _ in self.streams]  # per stream: each window/file shows its own rate
        pending: deque = deque()  # items taken from out_q ahead of their turn (see _newest)
        try:
            while True:
                if self.stop.is_set():
                    break
                if pending:
                    item = pending.popleft()
                else:
                    try:
                        item = self.out_q.get(timeout=0.05)
                    except queue.Empty:
                        if not any(t.is_alive() for t in feeders) and self.out_q.empty():
                            break
                        continue
                if item is not _END and item[0].live:
                    # when writing/showing is the bottleneck, stale live frames are dropped here too
                    item = self._newest(item, pending)
                if item is _END:
                    break
                st, seq, t_cap, frame, out, t_src = item
                t0 = time.perf_counter()
                shown = np.hstack([frame, out]) if self.job.side_by_side else out
                times = recent[st.idx]
                times.append(t0)
                if self.job.fps_overlay and len(times) > 1:
                    fps = (len(times) - 1) / max(times[-1] - times[0], 1e-9)
                    shown = shown.copy() if shown is out else shown
                    _overlay(shown, f"{fps:5.1f} fps")
                if self.job.on_frame is not None:
                    self.job.on_frame(st.idx, frame, shown)
                if st.out is not None:
                    st.out.write(shown, t_cap if st.live else None, t_src)
                if self.vcam is not None and self.vcam_lost is None:
                    try:
                        self.vcam.send(shown, st.live)
                    except CganError as e:
                        if not self.vcam.sent:  # no camera to be had: the run fails, nothing is kept
                            raise
                        self.vcam_lost = e  # the device went away: the run stops, its outputs are kept (run_video)
                        self.stop.set()
                if display:
                    window = f"cgan-video {st.idx}" if len(self.streams) > 1 else "cgan-video"
                    cv2.imshow(window, shown)
                    key = cv2.waitKey(1) & 0xFF
                    if key in (ord("q"), 27) or _window_closed(window):
                        self.ended = "quit"
                        self.stop.set()
                t1 = time.perf_counter()
                self.encode_busy += t1 - t0
                self.latencies.append(t1 - t_cap)
                st.written += 1
                if bar is not None:
                    bar.update(1)
        finally:
            self.stop.set()
            # one deadline for all threads: a hung read() costs at most JOIN_TIMEOUT_S in all, however many
            # inputs hang; such a thread is left to finish alone and releases its own source (_Stream.close_source)
            deadline = time.monotonic() + JOIN_TIMEOUT_S
            for t in (*stages, *threads):
                t.join(timeout=max(0.0, deadline - time.monotonic()))


def _source_time(source: Source) -> float | None:
    """The time (seconds) in its file of the frame `source` returned last: its `timestamp`, which file sources
    have (None for sources without one, as a Python user's may be)."""
    t = getattr(source, "timestamp", None)
    try:
        return None if t is None else float(t)
    except (TypeError, ValueError):
        return None


def _source_end(source: Source) -> float | None:
    """Where (seconds in its file) the last frame of a file `source` read to its end stops being shown: its
    `ended_at` (None where it has none)."""
    t = getattr(source, "ended_at", None)
    try:
        return None if t is None else float(t)
    except (TypeError, ValueError):
        return None


def _checked_outputs(outs: Any, frames: list[np.ndarray]) -> list[np.ndarray]:
    """The translator's frames for `frames`, checked: one BGR uint8 frame of the same size per input frame (the
    writer, the side-by-side view and the smoother need them so; a wrong one failed later inside OpenCV)."""
    try:
        outs = list(outs)
    except TypeError:
        raise CganError(f"the translator's translate_batch must return a list of frames, got "
                        f"{_describe(outs)}") from None
    if len(outs) != len(frames):
        raise CganError(f"the translator's translate_batch returned {len(outs)} frames for {len(frames)}: it must "
                        f"return one frame per input frame")
    for out, frame in zip(outs, frames):
        if not (isinstance(out, np.ndarray) and out.dtype == np.uint8 and out.shape == frame.shape):
            got = (f"a {out.dtype} frame of shape {out.shape}" if isinstance(out, np.ndarray)
                   else _describe(out))
            raise CganError(f"the translator's translate_batch returned {got} for a frame of shape {frame.shape}: "
                            f"it must return BGR uint8 frames of the input's size")
    return outs


def _close_quietly(source: Source) -> None:
    """Close a source after the run is over (from its capture thread, or at the run's end): an error closing it
    is logged, not raised over the run's own outcome."""
    try:
        source.close()
    except Exception as e:  # noqa: BLE001 - logged; the run has already ended
        log.warning("%s: closing it failed: %s", source.name, e)


def _overlay(img: np.ndarray, text: str) -> None:
    scale = max(0.4, img.shape[0] / 720)
    org = (int(10 * scale), int(30 * scale))
    cv2.putText(img, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), max(1, int(4 * scale)), cv2.LINE_AA)
    cv2.putText(img, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), max(1, int(2 * scale)),
                cv2.LINE_AA)


def _handled_signals(mode: bool | None) -> tuple[int, ...]:
    """The signals run_video handles for `VideoJob.handle_signals`: none outside the main thread (Python allows
    handlers only there) or with False; SIGINT and SIGTERM with True; with None each one whose handler is still
    Python's default (or SIG_IGN), so an embedding app's own handler stays in force. Never one whose handler was
    set outside Python (a C program embedding Python, a library that set it as it loaded: `getsignal` gives None):
    Python could not put it back (restoring it raised TypeError and lost the finished output), so it is left to
    that handler. Read once per run, before run_video installs handlers of its own."""
    if mode is False or threading.current_thread() is not threading.main_thread():
        return ()
    sigs = []
    for s in (signal.SIGINT, signal.SIGTERM):
        handler = signal.getsignal(s)
        if handler is None:
            log.log(logging.WARNING if mode else logging.DEBUG, "warning: %s has a handler set outside Python, "
                    "which Python cannot put back: left to it during the run", signal.Signals(s).name)
        elif mode or not _app_handler(handler):
            sigs.append(s)
    return tuple(sigs)


def _app_handler(handler: Any) -> bool:
    # (a folder of videos' own handler between videos is not an app's: each video's run handles the signal)
    return callable(handler) and handler is not signal.default_int_handler and not getattr(handler, "cgan_folder",
                                                                                             False)


@contextlib.contextmanager
def _signals(pipe_holder: dict, sigs: tuple[int, ...]):
    """`sigs` (of _handled_signals: SIGINT, SIGTERM or fewer) set the pipeline's stop flag (a second SIGINT raises
    KeyboardInterrupt)."""
    if not sigs:
        yield
        return

    def handler(signum, _frame):
        pipe = pipe_holder.get("pipe")
        if pipe is None or pipe.stop.is_set() and pipe.signals:
            raise Terminated if signum == signal.SIGTERM else KeyboardInterrupt
        pipe.signals += 1
        if not pipe.stop.is_set():  # a run already ending (q/ESC, end of input, an error) keeps its reason
            pipe.ended = "interrupted" if signum == signal.SIGINT else "terminated"
        pipe.stop.set()

    old = {s: signal.signal(s, handler) for s in sigs}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


#: cgan-video flag -> (backend option, the backends that take it)
BACKEND_FLAGS: dict[str, tuple[str, tuple[str, ...]]] = {
    "--compile": ("compile", ("torch",)),
    "--compile-mode": ("compile_mode", ("torch",)),
    "--cuda-graphs": ("cuda_graph", ("torch", "ort-cuda", "tensorrt", "tensorrt-rtx")),
}


def backend_options(job: VideoJob) -> dict[str, Any]:
    """The job's backend flags as Translator.load options; one-line CganError when the chosen backend does not
    take one (with `auto` the backend is not known yet, so these flags need an explicit --backend)."""
    asked = {}
    if job.compile_mode is not None:  # (which implies --compile: the line names the flag given)
        asked["--compile-mode"] = job.compile_mode
    if job.compile:
        asked["--compile"] = True
    if job.cuda_graphs is not None:
        asked["--cuda-graphs"] = bool(job.cuda_graphs)
    from cgan.runtime.registry import BACKENDS

    opts = {}
    for flag, value in asked.items():
        key, backends = BACKEND_FLAGS[flag]
        shown = flag if value or flag != "--cuda-graphs" else "--no-cuda-graphs"
        if job.backend not in backends and (job.backend == "auto" or job.backend in BACKENDS):
            which = "auto may pick a backend without it" if job.backend == "auto" else f"not {job.backend}"
            names = backends[0] if len(backends) == 1 else f"one of {', '.join(backends)}"
            raise CganError(f"{shown} needs --backend {names} ({which})")
        opts[key] = value
    return opts


def load_translator(job: VideoJob) -> Any:
    """Translator.load for the job's pair/direction/backend/precision and backend flags (unknown backend -> list
    the valid ones)."""
    try:
        from cgan.runtime import BACKENDS, Translator
    except ImportError as e:
        raise CganError(f"the cgan runtime translator cannot be imported ({e}); reinstall cgan") from None

    if job.backend != "auto" and job.backend not in BACKENDS:
        raise CganError(f"unknown backend {job.backend!r}: choose auto, {', '.join(BACKENDS)}")
    opts = backend_options(job)
    return Translator.load(job.pair, direction=job.direction, backend=job.backend, precision=job.precision, **opts)


def _window_closed(name: str) -> bool:
    """True once the user closed the window with its close button (imshow would otherwise reopen it)."""
    try:
        return cv2.getWindowProperty(name, cv2.WND_PROP_VISIBLE) < 1
    except cv2.error:
        return False


def _percentile_ms(values: Any, q: float) -> float:
    return float(np.percentile(np.asarray(values), q) * 1000.0) if values else 0.0


@contextlib.contextmanager
def _signals_deferred(sigs: tuple[int, ...]):
    """Hold `sigs` (of _handled_signals) back while the outputs are finalized (release, check, rename): a signal
    that arrives meanwhile is only recorded, then raised again once the previous handlers are back in force. A
    SIGTERM whose handler is the default (which kills the process) is raised as Terminated instead, as SIGINT's
    default handler raises KeyboardInterrupt: the run ends 'terminated' with its summary (the process was
    killed after the rename: no summary, no --json). (Handlers, not a signal mask: any thread of the process may
    receive a process-directed signal.)"""
    if not sigs:
        yield
        return
    pending: list[int] = []
    old = {sig: signal.signal(sig, lambda signum, frame: pending.append(signum)) for sig in sigs}
    try:
        yield
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)
        for sig in pending:
            if sig == signal.SIGTERM and old[sig] == signal.SIG_DFL:
                raise Terminated
            signal.raise_signal(sig)


def run_video(job: VideoJob, translator: Any = None) -> VideoSummary:
    """Run the pipeline for `job`; return its summary. `translator`: anything with translate_batch (optional)."""
    if not isinstance(job, VideoJob):
        raise CganError(f"run_video takes a VideoJob, got {_describe(job)}")
    job = dataclasses.replace(job)  # checked again (fields may have been set after it was made); inputs a tuple
    if not job.inputs:
        raise CganError("inputs is empty: pass at least one camera index, device, video file, URL, 'demo' or "
                        "source object")
    if translator is not None and not callable(getattr(translator, "translate_batch", None)):
        raise CganError(f"translator must have a translate_batch(frames) method (e.g. a cgan.runtime.Translator), "
                        f"got {_describe(translator)}")
    if translator is None:
        backend_options(job)  # --compile / --cuda-graphs that the backend cannot take: fail before opening inputs
    size = parse_size(job.size)
    capture = parse_capture(job.capture)
    if capture is not None and not any(
            isinstance(v, (str, os.PathLike, numbers.Integral)) and parse_input(v).kind in ("camera", "device")
            for v in job.inputs):
        raise CganError("--capture applies to cameras and capture devices (--input 0, /dev/video0); leave it out for "
                        "files and streams")
    if job.virtual_camera is not None:
        if len(job.inputs) > 1:
            raise CganError("--virtual-camera takes one --input (a virtual camera shows one stream)")
        from cgan.runtime import vcam

        vcam.check_available()
    if job.crf is not None and job.output is None:
        raise CganError("--crf sets the quality of the --output video, and there is no --output: add one or leave "
                        "--crf out")
    given = None if job.output is None else Path(os.path.expanduser(os.fspath(job.output)))
    if given is not None and (os.fspath(job.output).endswith(("/", os.sep)) or given.is_dir()):
        many = (f" (with {len(job.inputs)} inputs out.mp4 becomes out_0.mp4, out_1.mp4, ...)"
                if len(job.inputs) > 1 else "")
        raise CganError(f"--output {job.output} names a folder: pass a file name such as {given / 'out.mp4'}{many}")
    outs = output_paths(job.output, len(job.inputs))
    for p in outs:
        if p is not None:
            _not_an_input(p, job.inputs)
            check_output(p, job.codec, job.crf)
    if job.display:
        problem = gui_problem()
        if problem:
            raise CganError(f"--display: {problem}")
    display = job.display if job.display is not None else gui_problem() is None
    smoother_args = dict(strength=job.smooth_strength, flow=job.smooth_flow)  # checked by VideoJob
    signals = _handled_signals(job.handle_signals)  # now, before run_video's own handlers are in force

    opened: list[Source] = []
    own_translator = translator is None
    summary = VideoSummary()
    holder: dict[str, _Pipeline] = {}
    streams: list[_Stream] = []
    pipe = None
    t_start = None
    try:
        for value in job.inputs:
            if isinstance(value, (str, os.PathLike, numbers.Integral)):  # checked by VideoJob
                spec = parse_input(value)
                opened.append(open_source(spec, reconnects=job.reconnects,
                                          capture=_capture_mode(job.capture, capture, spec, size)))
            else:
                opened.append(value)
            if job.start is not None or job.end is not None:
                opened.append(_trimmed(opened.pop(), job.start or 0.0, job.end))
        if own_translator:
            translator = load_translator(job)  # first: an unknown pair or backend is the mistake to report
        if job.output is None and not display and job.on_frame is None and job.virtual_camera is None:
            if job.display is None:  # e.g. `cgan-video --input 0` on a headless machine: a run with no result
                raise CganError(f"nothing would be shown or written: {gui_problem()}")
            log.info("--no-display and no --output: frames are translated, neither shown nor written (a speed check)")
        for i, (src, out_path) in enumerate(zip(opened, outs)):
            sound, sar = _probe_file(src, job.sound)
            out = (VideoOutput(out_path, src.fps, sound, job.codec, src.name, job.crf, sar) if out_path is not None
                   else None)
            smoother = TemporalSmoother(**smoother_args) if job.smooth else None
            limit = getattr(translator, "max_pixels", None)
            streams.append(_Stream(i, src, size, smoother, out, job.queue_size, limit, model_size_of(translator)))
        pipe = _Pipeline(job, translator, streams)
        if job.virtual_camera is not None:
            from cgan.runtime.vcam import VirtualCamera

            pipe.vcam = VirtualCamera(job.virtual_camera, known_fps(streams[0].source.fps) or DEFAULT_FPS)
        holder["pipe"] = pipe
        for st in streams:
            source = st.source.inner if isinstance(st.source, Trimmed) else st.source
            if isinstance(source, CaptureSource):
                source.stop = pipe.stop
        bar = _progress_bar(job, streams)
        t_start = time.perf_counter()
        try:
            with _signals(holder, signals):
                pipe.run(display, bar)
        finally:
            if bar is not None:
                bar.close()
            if display:
                with contextlib.suppress(cv2.error):
                    cv2.destroyAllWindows()
        seconds = time.perf_counter() - t_start
        if pipe.errors:
            raise pipe.errors[0]
        with _signals_deferred(signals):  # a Ctrl-C now must not cost the finished file
            failed: list[CganError] = []
            for st in streams:
                if st.out is not None:
                    if pipe.ended == "end" and st.ended_at is not None:
                        st.out.hold_last(st.ended_at)
                    try:
                        path = st.out.finish()
                    except CganError as e:  # the others are finished still (one output's full disk took them all)
                        failed.append(e)
                        continue
                    if path is not None:
                        summary.outputs.append(str(path))
            if failed:
                kept = f"; written: {', '.join(summary.outputs)}" if summary.outputs else ""
                more = f" (and {len(failed) - 1} more output{'s' * (len(failed) > 2)})" if len(failed) > 1 else ""
                raise CganError(f"{failed[0]}{more}{kept}")
        if pipe.vcam_lost is not None:
            kept = f"; the frames before it are kept in {', '.join(summary.outputs)}" if summary.outputs else ""
            raise CganError(f"{pipe.vcam_lost}{kept}")
        if pipe.ended == "end" and job.max_frames is not None and all(
                st.read >= job.max_frames for st in streams):
            pipe.ended = "max-frames"
        _fill_summary(summary, pipe, streams, seconds)
        return summary
    except KeyboardInterrupt as e:
        # a second Ctrl-C forces the stop (e.g. while a hung camera is waited for): the frames written so far
        # still make a playable file, so keep it; only a file that does not read back is removed. The summary
        # of what was done rides on the exception (`e.summary`; cgan-video prints it, --json too).
        with _signals_deferred(signals):
            for st in streams:
                if st.out is not None:
                    try:
                        path = st.out.finish()
                    except Exception:  # noqa: BLE001 - the interrupt is what gets reported
                        st.out.abort()
                    else:
                        if path is not None:
                            summary.outputs.append(str(path))
            if pipe is not None and t_start is not None:
                try:
                    _fill_summary(summary, pipe, streams, time.perf_counter() - t_start)
                except Exception:  # noqa: BLE001 - the interrupt is what gets reported
                    log.debug("no summary of the forced stop", exc_info=True)
                else:
                    summary.ended = "terminated" if isinstance(e, Terminated) else "interrupted"
                    e.summary = summary
        raise
    except BaseException:
        for st in streams:
            if st.out is not None:
                st.out.abort()
        raise
    finally:
        if pipe is not None and pipe.vcam is not None:
            with contextlib.suppress(Exception):  # the run's own outcome is what gets reported
                pipe.vcam.close()
        for st in streams:
            st.close_source()  # now, or by its capture thread when a hung read() returns
        for src in opened[len(streams):]:
            _close_quietly(src)
        if own_translator and translator is not None and hasattr(translator, "close"):
            if pipe is not None and pipe.translating is not None and pipe.translating.is_alive():
                # still inside one long inference (a first --compile frame: a minute) after the join's deadline:
                # close() would wait for it (the translator's lock), so the run did not return for all of it
                threading.Thread(target=translator.close, name="cgan-close-translator", daemon=True).start()
            else:
                translator.close()


def _progress_bar(job: VideoJob, streams: list[_Stream]) -> Any:
    if not job.progress or any(st.live for st in streams):
        return None
    from tqdm import tqdm

    counts = [st.source.frame_count for st in streams]
    if job.max_frames is not None:
        counts = [min(c, job.max_frames) if c else job.max_frames for c in counts]
    total = sum(counts) if all(counts) else None
    return tqdm(total=total, unit="frame", desc="cgan-video", dynamic_ncols=True, file=sys.stderr, leave=False)


def _capture_mode(given: str | None, capture: tuple[int, int, float | None] | None, spec: Any,
                  size: tuple[str, Any]) -> tuple[int, int, float | None] | None:
    """The mode asked of a camera or device: --capture (`given`, parsed as `capture`; 'default': none), else the
    --size when it names a size (a camera left at OpenCV's default 640x480 and scaled up to 720p would look soft),
    else none (the camera's own)."""
    if spec.kind not in ("camera", "device"):
        return None
    if given is not None:
        return capture
    if size[0] == "exact":
        return size[1][0], size[1][1], None
    if size[0] == "height":
        return next(((w, h, None) for w, h in CAPTURE_NAMED.values() if h == size[1]),
                    (round(size[1] * 16 / 9 / 2) * 2, size[1], None))
    return None


def _trimmed(source: Any, start: float, end: float | None) -> Trimmed:
    """`source` cut to [start, end) (--start/--end); a one-line error for a live one (closed first)."""
    if source.live:
        source.close()
        raise CganError(f"--start/--end cut video files; {source.name} is live (leave them out, or record it first)")
    try:
        return Trimmed(source, start, end)
    except BaseException:
        source.close()
        raise


def _probe_file(src: Any, sound: bool) -> tuple[tuple[str, Any] | None, Any]:
    """For a local video file (cameras, streams and frames in memory have neither): warn when it is HDR (an
    iPhone's default since 2020) and open_source could not make it SDR (neither this OpenCV nor PyAV: its values
    read as SDR ones give flat, pale pictures), and return ((file, its sound) for the output when `sound` is asked
    and it has some, else None; its pixel shape when not square, else None). pyav.probe reads the file once for
    open_source and this."""
    spec = getattr(src, "spec", None)
    if getattr(spec, "kind", None) != "file":
        return None, None
    from cgan.runtime import pyav

    if not pyav.available():
        if sound:
            log.info("%s: its sound (if any) is not copied: PyAV is not installed (pip install av)", spec.shown)
        return None, None
    info = pyav.probe(spec.target)
    if info.hdr and getattr(src, "tone_mapped_by", None) is None:  # tone mapped unless PyAV could not decode it
        log.warning("warning: %s is HDR video (%s): it is read without tone mapping, so the translation will look "
                    "flat and pale; convert it to SDR first, e.g. ffmpeg -i IN -vf zscale=t=linear:npl=100,"
                    "format=gbrpf32le,tonemap=hable,zscale=p=bt709:t=bt709:m=bt709:r=tv,format=yuv420p OUT.mp4",
                    spec.target, info.hdr)
    return ((str(spec.target), info.audio, getattr(src, "identity", None)) if sound and info.audio is not None
            else None), info.sar


FLICKER_STEP = 4  # the summary's flicker index samples every 4th pixel of every 4th row (about 1 ms at 720p)


def _flicker(st: _Stream) -> dict[str, float] | None:
    """{'raw': index, 'smoothed': index} of a stream smoothed over at least two frames, else None."""
    if st.flicker is None or not st.flicker[0].pairs or st.flicker[0].in_change <= 0:
        return None
    return {"raw": round(st.flicker[0].value, 3), "smoothed": round(st.flicker[1].value, 3)}


def _replayed_short(st: _Stream) -> str | None:
    """A recorded video served without a length (MPEG-TS over http) is read as a live stream until a reconnect
    replays it: its dropped frames are missing from the output, which is said as a cut short video's (exit 1;
    it had exited 0 with 4 of its 500 frames written)."""
    dropped = st.dropped + st.dropped_out
    if not getattr(st.source, "replayed", False) or not dropped:
        return None
    return (f"a recorded video served without a length, read as a live stream: {dropped} of its {st.read} frames "
            f"dropped; download it and pass the file to translate every frame")


def _fill_summary(s: VideoSummary, pipe: _Pipeline, streams: list[_Stream], seconds: float) -> None:
    s.frames = sum(st.written for st in streams)
    s.dropped = sum(st.dropped + st.dropped_out for st in streams)
    s.resized = sum(st.resized for st in streams)
    s.latency_p50_ms = _percentile_ms(pipe.latencies, 50)
    s.latency_p99_ms = _percentile_ms(pipe.latencies, 99)
    # each input decodes on its own thread, so the stage's rate is their rates together (as smooth_fps)
    s.decode_fps = sum(st.read / st.decode_busy for st in streams if st.decode_busy > 0)
    s.translate_fps = pipe.translated / pipe.translate_busy if pipe.translate_busy > 0 else 0.0
    s.smooth_fps = pipe.smooth_fps()
    s.encode_fps = s.frames / pipe.encode_busy if pipe.encode_busy > 0 else 0.0
    s.fps = s.frames / seconds if seconds > 0 else 0.0
    s.seconds = seconds
    s.ended = pipe.ended
    s.streams = [{"input": st.source.name, "live": st.live and not getattr(st.source, "replayed", False),
                  "read": st.read, "written": st.written, "reconnected": getattr(st.source, "reconnected", 0),
                  "dropped": st.dropped + st.dropped_out, "resized": st.resized,
                  # the size written (even, side by side twice as wide), else the size translated
                  "size": list(st.out.size if st.out is not None and st.out.size else st.target or ()),
                  "output": str(st.out.path) if st.out is not None and st.out.frames else None,
                  "codec": st.out.fourcc if st.out is not None else None,
                  "sound": st.out.sound if st.out is not None else None,
                  "flicker": _flicker(st),
                  # why the input ended before its end (a decode error, a connection lost for good), else None
                  "cut_short": getattr(st.source, "cut_short", None) or _replayed_short(st)}
                 for st in streams]
