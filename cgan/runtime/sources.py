"""Video sources for cgan-video: camera index, device path, video file, rtsp/http URL, the packaged demo clip.

What a user types for `--input` is parsed by `parse_input` into an `InputSpec`; `open_source` opens it and
returns a `Source` (read frames one by one, know whether it is live). Live sources (cameras, devices, URLs)
are read as fast as they deliver and the pipeline drops stale frames; files are read completely, never dropped.

Live sources that stop delivering (cable pulled, network gone) are reopened a few times with backoff
(0.5 s, 1 s, 2 s, ...); after that the source ends and the pipeline finalizes its output normally.

No torch here. Every user mistake is a one-line `CganError` (missing camera, unreadable file, empty video).
"""
from __future__ import annotations

import hashlib
import logging
import math
import numbers
import os
import stat
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Protocol, runtime_checkable

import cv2
import numpy as np

from cgan import _codecs
from cgan._files import file_identity, written_over
from cgan._urls import SCHEME, redact_url, url_host
from cgan.errors import CganError, IntegrityError

log = logging.getLogger(__name__)

LIVE_URL_SCHEMES = ("rtsp", "rtsps", "rtmp", "rtmps", "http", "https", "udp", "tcp", "srt", "rtp")
DEMO = "demo"
#: OpenCV takes an int32 camera index (OpenCV also reads index + API × 100, e.g. 200 = V4L2 camera 0)
MAX_CAMERA_INDEX = 9999
#: frame rates a source may report and an output may be written at (OpenCV's writers refuse 0.001; inf hung them)
MIN_FPS, MAX_FPS = 0.01, 1000.0


def _not_video_major(major: int) -> bool:
    """Linux character devices that are surely no video source: memory devices (/dev/null, /dev/zero,
    /dev/urandom: major 1) and terminals (4, 5, 136-143). Others (video4linux's 81, a DVB adapter's dvr) are
    tried."""
    return major in (1, 4, 5) or 136 <= major <= 143


def demo_dir() -> Path:
    """The folder holding the packaged demo clip (cgan/data/demo)."""
    import cgan

    return Path(cgan.__file__).resolve().parent / "data" / "demo"


def demo_clip() -> Path:
    """The packaged demo clip (first *.mp4 in cgan/data/demo)."""
    clips = sorted(demo_dir().glob("*.mp4"))
    if not clips:
        raise CganError(f"the demo clip is missing from {demo_dir()}: reinstall cgan, or pass a video file "
                        f"with --input")
    return clips[0]


@dataclass(frozen=True)
class InputSpec:
    """What one `--input` names. kind: camera | device | url | file."""

    kind: str
    target: str | int
    text: str

    @property
    def live(self) -> bool:
        return self.kind in ("camera", "device", "url")

    @property
    def label(self) -> str:
        return {"camera": f"camera {self.target}", "device": f"device {self.target}",
                "url": f"stream {self.shown}", "file": f"file {self.target}"}[self.kind]

    @property
    def shown(self) -> str:
        """The target as printed in logs, errors and summaries: a URL's password replaced by ***."""
        return redact_url(str(self.target)) if self.kind == "url" else str(self.target)

    def __repr__(self) -> str:  # the dataclass repr printed a URL's password
        text = redact_url(self.text) if self.kind == "url" else self.text
        target = self.shown if isinstance(self.target, str) else self.target
        return f"InputSpec(kind={self.kind!r}, target={target!r}, text={text!r})"


def parse_input(text: str | int | os.PathLike) -> InputSpec:
    """Classify an --input value: `0` camera index, `/dev/video0` device, `rtsp://...` URL, `demo`, a file.

    A Python int (not a bool) is a camera index, 0..MAX_CAMERA_INDEX; a file name may start with `~` (expanded).
    Anything else (float, bytes, None, ...) is a one-line CganError, before anything is opened."""
    if isinstance(text, numbers.Integral) and not isinstance(text, (bool, np.bool_)):
        index = int(text)
        if not 0 <= index <= MAX_CAMERA_INDEX:  # cv2.VideoCapture(-1) crashed the process, 10**12 raised cv2.error
            raise CganError(f"camera index {index} is out of range: camera indices are 0..{MAX_CAMERA_INDEX}")
        return InputSpec("camera", index, str(index))
    if not isinstance(text, (str, os.PathLike)) or not isinstance(os.fspath(text), str):
        raise CganError(f"an input must be a camera index (an int 0..{MAX_CAMERA_INDEX}) or a str/path naming a "
                        f"device, video file, URL or 'demo'; got {_describe(text)}")
    s = os.fspath(text).strip()
    if not s:
        raise CganError("empty --input: pass a camera index (0), a device (/dev/video0), a video file, "
                        "an rtsp/http URL, or 'demo'")
    if s == DEMO:
        return InputSpec("file", str(demo_clip()), s)
    if s.isdecimal():
        if int(s) > MAX_CAMERA_INDEX:
            raise CganError(f"--input {s}: camera indices go up to {MAX_CAMERA_INDEX}; for a file named {s}, "
                            f"give ./{s}")
        return InputSpec("camera", int(s), s)
    scheme, sep, _ = s.partition("://")
    if sep:
        if scheme.lower() not in LIVE_URL_SCHEMES:
            what = f"URL scheme {scheme!r}" if SCHEME.fullmatch(scheme) else "text before ://"
            raise CganError(f"unsupported {what} in --input {redact_url(s)}: use one of "
                            f"{', '.join(LIVE_URL_SCHEMES)}")
        return InputSpec("url", s, s)
    path = os.path.expanduser(s)
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):
        mode = None  # missing (said when it is opened) or unreadable
    if mode is not None and (stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)):
        return InputSpec("file", path, s)  # refused when opened (refuse_pipe): a folder of videos leaves it out
    if mode is not None and stat.S_ISREG(mode):
        # a video file anywhere, /dev/shm or /dev/stdin redirected from a file included: read as a file (every
        # path under /dev/ was taken for a camera: frames dropped as stale, and the end replayed it for ever)
        return InputSpec("file", os.path.realpath(path) if s.startswith("/dev/") else path, s)
    if s.startswith("/dev/") or (mode is not None and stat.S_ISCHR(mode)):
        if mode is not None and not stat.S_ISCHR(mode):
            raise CganError(f"--input {s} is not a video file nor a capture device (a "
                            f"{'folder' if stat.S_ISDIR(mode) else 'block device'}); check `ls /dev/video*`")
        if mode is not None and sys.platform.startswith("linux") and _not_video_major(os.major(os.stat(path).st_rdev)):
            raise CganError(f"--input {s} is not a video capture device (a character device of another kind); "
                            f"check `ls /dev/video*`")
        return InputSpec("device", s, s)
    return InputSpec("file", path, s)


def _describe(value: object) -> str:
    """`value` for an error message: its type, and its repr when that is short (never a whole frame)."""
    kind = type(value).__name__
    if isinstance(value, np.ndarray):
        return f"a numpy array of shape {value.shape}"
    text = repr(value)
    return kind if len(text) > 40 or text.startswith("<") else f"{kind} {text}"


@runtime_checkable
class Source(Protocol):
    """A frame source. `read()` returns the next frame (BGR uint8; any frame `Translator.translate` takes is
    converted), or None at the end. A file source may also have `timestamp`: the time (seconds) in the file of
    the frame read last, which an H.264 output keeps (a variable frame rate stays in step with the sound),
    `ended_at`: once read() gave None at the file's end, the time its last frame stops being shown (None: not
    known; the output then shows it as long as the frame before it), `tone_mapped_by`: who makes its HDR
    pictures SDR ("OpenCV" or "cgan"; None: SDR, or HDR read as it is), and `cut_short`: why it ended before its
    end (a decode error, a connection that could not be resumed, a live stream gone), else None."""

    name: str
    live: bool
    fps: float              # frames per second the source claims (0 if unknown)
    frame_count: int        # frames in a file (0 if unknown / live)

    def read(self) -> np.ndarray | None: ...

    def close(self) -> None: ...


#: an app embedding the runtime quiets OpenCV's own log lines with this (docs/video.md); it lives in cgan._codecs,
#: which the trainer shares
quiet_opencv = _codecs.quiet_opencv


def _detailed(frame: np.ndarray) -> bool:
    """Whether a picture has detail enough to tell two recordings apart (not a flat or near-flat one)."""
    small = frame[::8, ::8]
    return small.size > 0 and float(small.std()) > 4.0


def _digest(frame: np.ndarray) -> bytes:
    return hashlib.blake2b(np.ascontiguousarray(frame).tobytes(), digest_size=16).digest()


def _as_bgr(frame: np.ndarray) -> np.ndarray:
    if frame.ndim == 2:
        return cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
    if frame.shape[2] == 4:
        return cv2.cvtColor(frame, cv2.COLOR_BGRA2BGR)
    return frame


#: --capture's named modes (16:9, as webcams offer them)
CAPTURE_NAMED = {"360p": (640, 360), "480p": (640, 480), "540p": (960, 540), "720p": (1280, 720),
                 "1080p": (1920, 1080), "1440p": (2560, 1440), "2160p": (3840, 2160), "4k": (3840, 2160)}
MAX_CAPTURE_FPS = 240


def parse_capture(text: str | None) -> tuple[int, int, float | None] | None:
    """--capture: 'WxH', 'WxH@FPS', '720p', '1080p@60' -> (width, height, fps or None); None or 'default' ->
    None (the camera's own mode). One-line CganError otherwise."""
    if text is None or (isinstance(text, str) and text.strip().lower() == "default"):
        return None
    if not isinstance(text, str):
        raise CganError(f"capture must be a str such as '1280x720@30', '1080p' or 'default', got {_describe(text)}")
    mode, _, rate = text.strip().lower().partition("@")
    w = h = fps = None
    if mode in CAPTURE_NAMED:
        w, h = CAPTURE_NAMED[mode]
    elif "x" in mode:
        a, _, b = mode.partition("x")
        if a.isdecimal() and b.isdecimal() and 16 <= int(a) <= 8192 and 16 <= int(b) <= 8192:
            w, h = int(a), int(b)
    if rate:
        try:
            fps = float(rate)
        except ValueError:
            fps = None
        if fps is None or not 1 <= fps <= MAX_CAPTURE_FPS:
            w = None
    if w is None:
        raise CganError(f"bad --capture {text!r}: use WxH or WxH@FPS (e.g. 1280x720@30, sides 16..8192, fps "
                        f"1..{MAX_CAPTURE_FPS}), {', '.join(CAPTURE_NAMED)} (e.g. 1080p@60), or default")
    return w, h, fps


class CaptureSource:
    """A cv2.VideoCapture source (file, camera, device or URL) with reconnect for live sources. `capture`
    (cameras and devices): the mode (width, height, fps or None) asked of the camera at every open."""

    def __init__(self, spec: InputSpec, reconnects: int = 3, backoff: float = 0.5,
                 stop: threading.Event | None = None, capture: tuple[int, int, float | None] | None = None):
        self.spec = spec
        self.capture = capture if spec.kind in ("camera", "device") else None
        self.name = spec.label
        self.live = spec.live
        self.reconnects = reconnects
        self.backoff = backoff
        self.stop = stop or threading.Event()
        self.reconnected = 0
        self.replayed = False  # a "live" URL found to be a recorded video replayed from its start (_reconnect)
        self.frames_read = 0
        self.timestamp: float | None = None  # of the frame read last, for files (see Source)
        self.ended_at: float | None = None  # where a file's last frame stops being shown, read to its end (Source)
        self._ends: Any = False  # the file's pyav.stream_ends, once asked (False: not yet)
        self._seeked = False
        self.tone_mapped_by: str | None = None  # "OpenCV" when OpenCV makes this HDR file SDR (see open_source)
        self.cut_short: str | None = None  # why it ended before its end (Source)
        self._pending: np.ndarray | None = None
        # a live HLS stream comes a segment (2-10 s of frames) at a time, decoded at once: handed on as they
        # come, all but the newest frame of each burst were dropped (1 frame in 25 kept with a model 6x faster
        # than the stream); they are handed on at their own times instead (_pace)
        self._paced = self.live and spec.kind == "url" and _is_playlist(str(spec.target))
        self._anchor: tuple[float, float] | None = None  # (clock, stream time) the pacing counts from
        # the file as opened: its ends and its sound are read again by its path, which may then name another file
        self.identity = file_identity(spec.target) if spec.kind == "file" else None
        self.cap = self._open()
        self.fps = known_fps(self.cap.get(cv2.CAP_PROP_FPS))
        n = self.cap.get(cv2.CAP_PROP_FRAME_COUNT)
        if spec.kind == "url" and n and n > 0:
            # a URL with a length is a recorded video (a file served over http, a VOD): read it like a file,
            # every frame and no reopening at its end (which replayed it from the start, forever)
            self.live = False
            log.debug("%s has %d frames: read as a file, not a live stream", self.name, int(n))
        self.frame_count = int(n) if (not self.live and n and n > 0) else 0
        # Read the first frame now, so a busy camera or an empty / corrupt file fails here, before any work.
        ok, frame = self.cap.read()
        if not ok or frame is None:
            self.cap.release()
            raise self._no_first_frame()
        self._pending = _as_bgr(frame)
        self._pending_t = self._time()
        # a live http(s) URL's first picture: a reconnect that starts with it again is a recorded video replayed
        # (a file served without a length). Not for rtsp & co., nor a flat picture (a black night camera, a slate)
        self._first_digest = _digest(frame) if (
            self.live and spec.kind == "url" and str(spec.target).lower().startswith(("http://", "https://"))
            and _detailed(frame)) else None
        if self.capture is not None:
            w, h, fps = self.capture
            asked = f"{w}x{h}" + (f"@{fps:g}" if fps else "")
            got = f"{frame.shape[1]}x{frame.shape[0]}" + (f" at {self.fps:g} fps" if self.fps else "")
            same = frame.shape[1] == w and frame.shape[0] == h and (not fps or abs(self.fps - fps) < 0.5)
            log.info("%s: %s%s", self.name, got, "" if same else f" (asked {asked}: the nearest mode it has)")

    def _open(self) -> cv2.VideoCapture:
        spec = self.spec
        if spec.kind == "file":
            p = Path(spec.target)
            if not p.exists():
                raise CganError(f"input file not found: {p}")
            if p.is_dir():
                raise CganError(f"input {p} is a folder: pass a video file")
            if not os.access(p, os.R_OK):
                raise CganError(f"input file {p} is not readable (permissions)")
            if p.stat().st_size == 0:
                raise IntegrityError(f"input file {p} is empty (0 bytes): not a video")
            cap = cv2.VideoCapture(str(p), cv2.CAP_FFMPEG)
            if not cap.isOpened():
                from cgan.runtime import pyav

                info = pyav.probe(p)
                if info.videos == 0 and info.audio is not None:  # (re-encoding, the advice below, cannot help)
                    raise IntegrityError(f"{p} has no video stream, only sound ({info.audio.codec}): nothing to "
                                         f"translate")
                raise IntegrityError(f"cannot decode {p}: no video frames, corrupt, or not a format this "
                                     f"OpenCV/FFmpeg reads; re-encode it (e.g. `ffmpeg -i IN -c:v libx264 out.mp4`)")
            return cap
        if spec.kind == "camera":
            cap = cv2.VideoCapture(int(spec.target))
            if not cap.isOpened():
                raise CganError(f"no camera at index {spec.target} (missing, or no permission to open it); "
                                f"check `ls /dev/video*` and pass --input with another index or a device path")
            return self._ask_mode(cap)
        if spec.kind == "device":
            if not Path(spec.target).exists():
                raise CganError(f"capture device {spec.target} does not exist; check `ls /dev/video*`")
            cap = cv2.VideoCapture(str(spec.target))
            if not cap.isOpened():
                raise CganError(f"cannot open capture device {spec.target}: busy (used by another program?) "
                                f"or no permission (add yourself to the 'video' group)")
            return self._ask_mode(cap)
        # bounded open/read waits, so a stalled stream reaches the reconnect logic in seconds, not FFmpeg's ~30 s;
        # FFmpeg's host name lookup has no timeout (and a Ctrl-C waited for it), so it is looked up here first
        host = url_host(str(spec.target))
        dns = look_up(host, URL_TIMEOUT_MS / 1000, self.stop) if host and not _proxied(str(spec.target), host) else None
        if dns == "slow":
            raise CganError(f"cannot open stream {spec.shown}: its host {host} was not found within "
                            f"{URL_TIMEOUT_MS / 1000:g} s (the name server does not answer); check the network, or "
                            f"give the camera's address instead of its name")
        t0 = time.perf_counter()
        cap = cv2.VideoCapture(str(spec.target), cv2.CAP_FFMPEG,
                               [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, URL_TIMEOUT_MS, cv2.CAP_PROP_READ_TIMEOUT_MSEC,
                                URL_TIMEOUT_MS])
        if not cap.isOpened():
            if time.perf_counter() - t0 >= 0.9 * URL_TIMEOUT_MS / 1000:  # (FFmpeg says which only in its log)
                raise CganError(f"cannot open stream {spec.shown}: no video from it within {URL_TIMEOUT_MS / 1000:g} "
                                f"s (the server or camera does not answer, or sends nothing); check it with "
                                f"`ffprobe {spec.shown}`")
            if dns == "unknown":
                raise CganError(f"cannot open stream {spec.shown}: no host is named {host} (the name does not "
                                f"resolve); check the URL's spelling")
            raise CganError(f"cannot open stream {spec.shown}: unreachable, wrong URL or credentials, or what it "
                            f"sends is not a video FFmpeg can open (an MP4 cut short before its index?); check it "
                            f"with `ffprobe {spec.shown}`")
        return cap

    def _ask_mode(self, cap: cv2.VideoCapture) -> cv2.VideoCapture:
        """Ask the camera for `capture` (the driver takes the nearest mode it has). MJPG first: USB cameras give
        sizes over 640x480 at full rate only compressed (uncompressed 1080p fits USB 2 at about 5 fps)."""
        if self.capture is not None:
            w, h, fps = self.capture
            cap.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter_fourcc(*"MJPG"))
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, w)
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, h)
            if fps:
                cap.set(cv2.CAP_PROP_FPS, fps)
        return cap

    def _no_first_frame(self) -> CganError:
        spec = self.spec
        if spec.kind == "file":
            return IntegrityError(f"{spec.target} has no decodable frames (zero-frame or corrupt video); "
                                  f"re-encode it or pass another file")
        if spec.kind in ("camera", "device"):
            return CganError(f"{spec.label} opened but delivered no frame: busy (another program is using "
                             f"it?) or not a video capture device")
        return CganError(f"stream {spec.shown} opened but delivered no frame; check it with `ffprobe`")

    def read(self) -> np.ndarray | None:
        if self._pending is not None:
            frame, self._pending = self._pending, None
            self.frames_read += 1
            self.timestamp = self._pending_t
            if self._paced:
                self._pace()
            return frame
        if self.cap is None:
            return None
        ok, frame = self.cap.read()
        if ok and frame is not None:
            self.frames_read += 1
            self.timestamp = self._time()
            if self._paced:
                self._pace()
            return _as_bgr(frame)
        if not self.live:
            if ends_written_over(self):  # what was read after it: another video
                return None
            ends = self._stream_ends if self.spec.kind == "file" else None
            if stopped_early(self, self.frame_count, ends, self._seeked):
                if self.spec.kind == "url":  # a recorded video over the network: the connection may have dropped
                    frame = self._resume()
                    if frame is not None:
                        return frame
                # a decode error ends OpenCV's reading like the end of the file does: say it was not the end
                say_cut_short(self, self.frame_count, self._seeked, self.spec.kind == "url")
            else:
                self.ended_at = self._last_frame_end()
            return None
        return self._reconnect()

    def _resume(self) -> np.ndarray | None:
        """A recorded video read over the network that stopped before its end (a dropped connection, a server
        restarted): reopen it `reconnects` times with doubling waits, go to the last frame read (a seek, where the
        server allows one; else from the start) and give the frame after it; None if it cannot be had."""
        last = self.timestamp
        if last is None or not math.isfinite(last):
            return None
        half = 0.5 / known_fps(self.fps) if known_fps(self.fps) else 0.02
        doing = (f"stopped after {self.frames_read} of {self.frame_count} frames ({clock(last)}); reopening it to "
                 f"go on from there")
        for attempt in range(self.reconnects):
            if not self._wait_before(attempt, doing):
                return None
            for seek in (True, False):  # a seek that lands past the frame after `last`: from the start instead
                self.cap.release()
                try:
                    self.cap = self._open()
                except CganError:
                    break
                if seek:
                    self.cap.set(cv2.CAP_PROP_POS_MSEC, max(0.0, last - 1.0) * 1000.0)  # a key frame before it
                got = self._frame_after(last, half)
                if got is None:
                    break  # dropped again: the next attempt
                t, frame = got
                if t > last + 3 * half and seek:
                    continue
                self.reconnected += 1
                self.frames_read += 1
                self.timestamp = t
                return _as_bgr(frame)
        return None

    def _frame_after(self, last: float, half: float) -> tuple[float, np.ndarray] | None:
        """(time, frame) of the first frame read whose time is past `last`; None when reading stops first."""
        while not self.stop.is_set():
            ok, frame = self.cap.read()
            if not ok or frame is None:
                return None
            t = self._time()
            if t is not None and t > last + half:
                return t, frame
        return None

    def _stream_ends(self) -> Any:
        """The file's pyav.StreamEnds (None: PyAV cannot tell, or not a file), read once."""
        if self._ends is False:
            self._ends = file_ends(self)
        return self._ends

    def _last_frame_end(self) -> float | None:
        """Where the frame read last stops being shown, when it is the file's last frame and the file says how
        long that one lasts (a GIF's last picture often stays for seconds); None otherwise."""
        last, fps = self.timestamp, known_fps(self.fps)
        if last is None or not math.isfinite(last):
            return None
        ends = self._stream_ends()
        if ends is None or not ends.last_shown or abs(last - ends.video_last) > max(0.5 / fps if fps else 0, 0.005):
            return None
        return last + ends.last_shown

    def seek(self, t: float) -> None:
        """Go to the time `t` (seconds) of a file: the next read gives the frame there, or one shortly before (OpenCV
        takes a variable-rate file's time for a frame number at its average rate)."""
        self._pending = None
        self._seeked = t > 0  # frames_read no longer counts from the first frame (the damaged-file check is off)
        self.frames_read = 0
        self.cap.set(cv2.CAP_PROP_POS_MSEC, t * 1000.0)

    def _pace(self) -> None:
        """Hand the frame just read on at its time in the stream, as a player shows it: wait until the clock has
        moved on from the frame that set it as far as the stream's time has. A frame late (the stream stalled, a
        slow download) or too far ahead (its times jumped) sets the clock again, so latency never builds up."""
        t = self.cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0 if self.cap is not None else float("nan")
        now = time.perf_counter()
        if not math.isfinite(t):
            self._anchor = None
            return
        if self._anchor is not None:
            ahead = self._anchor[0] + (t - self._anchor[1]) - now
            if 0.0 < ahead <= PACE_MAX_AHEAD_S:
                self.stop.wait(ahead)
                return
        self._anchor = (now, t)

    def _time(self) -> float | None:
        """The time in the file of the frame just read (OpenCV's, from the stream's start); None for live sources,
        whose frames are timed by when they arrive."""
        return None if self.live else self.cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0

    def _wait_before(self, attempt: int, doing: str) -> bool:
        """Wait before reopening attempt `attempt` (0-based) of `reconnects`: doubling from `backoff`, at most
        MAX_RECONNECT_WAIT_S each (so a large `reconnects` keeps a camera feed retrying), said as '<name> <doing>
        in <wait> s (k/n)'. False when the run stopped meanwhile."""
        if self.stop.is_set():  # (a read that failed because the run is stopping: nothing to announce)
            return False
        wait = min(self.backoff * 2.0 ** min(attempt, 30), MAX_RECONNECT_WAIT_S)
        log.warning("%s %s in %.1f s (%d/%d)", self.name, doing, wait, attempt + 1, self.reconnects)
        return not self.stop.wait(wait)

    def _reconnect(self) -> np.ndarray | None:
        """Reopen a live source that stopped delivering: `reconnects` tries with doubling waits (at most
        MAX_RECONNECT_WAIT_S each, so a large `reconnects` keeps a camera feed retrying), then give up."""
        for attempt in range(self.reconnects):
            if not self._wait_before(attempt, "stopped delivering frames; reconnecting"):
                return None
            self.cap.release()
            try:
                self.cap = self._open()
            except CganError:
                continue
            ok, frame = self.cap.read()
            self._anchor = None  # (a reopened stream's times start again)
            if ok and frame is not None:
                if self._first_digest is not None and _digest(frame) == self._first_digest:
                    # a video file served without a length (MPEG-TS, MPEG-PS, raw H.264 over http) is read as a
                    # live stream; at its end each reconnect replayed it from the start, for ever
                    log.warning("%s started again from its first picture: a recorded video, not a live stream; "
                                "it ends here (to translate every frame of it, download it and pass the file)",
                                self.name)
                    self.replayed = True
                    break
                self.reconnected += 1
                return _as_bgr(frame)
        else:
            self.cut_short = f"gone after {self.reconnects} reconnect attempts"
            log.warning("%s is %s; ending it", self.name, self.cut_short)
        self.cap.release()
        self.cap = None
        return None

    def close(self) -> None:
        if self.cap is not None:
            self.cap.release()
            self.cap = None


def refuse_pipe(spec: InputSpec) -> None:
    """A one-line CganError for a FIFO, a socket or a pipe as standard input, before anything opens it (a FIFO
    with no writer hung the run in its probe; one being written was taken for a file of 0 bytes)."""
    if spec.kind != "file":
        return
    try:
        mode = os.stat(spec.target).st_mode
    except (OSError, ValueError):
        return
    if stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode):
        stdin = " (standard input)" if spec.text.startswith("/dev/std") else ""
        raise CganError(f"--input {spec.text} is a pipe{stdin}: video is read from files, cameras, capture devices "
                        f"and URLs; save it to a file first (or serve it over http / rtsp)")


def open_source(text: str | int | os.PathLike | InputSpec, reconnects: int = 3, backoff: float = 0.5,
                stop: threading.Event | None = None, capture: tuple[int, int, float | None] | None = None) -> Source:
    """Open what `--input` names; raise a one-line CganError if it cannot deliver a first frame. `capture`: the
    mode asked of a camera or device (parse_capture). With PyAV, files are read by their colour tags: by OpenCV
    where it does so (OpenCV 5), else by PyAV (OpenCV 4 takes BT.709 files as BT.601, and HDR values as SDR ones:
    HDR is tone mapped by cgan.runtime.hdr); video of more than 8 bits (OpenCV tints 10-bit 4:2:0 magenta),
    interlaced files (deinterlaced), mirrored ones (a display matrix
    with a mirroring, which OpenCV turns instead) and files OpenCV cannot decode (AV1: the OpenCV wheels have no
    decoder for it) are read by PyAV when PyAV can."""
    spec = text if isinstance(text, InputSpec) else parse_input(text)
    refuse_pipe(spec)
    hdr = None
    if spec.kind == "file" and Path(spec.target).is_file():
        from cgan.runtime import pyav

        info = pyav.probe(spec.target)  # empty without PyAV
        hdr, video = info.hdr, info.video
        if video != 0:  # OpenCV reads the first video stream: here a cover picture or thumbnail before the video
            source = pyav.open_file_source(spec, hdr, deinterlace=info.interlaced is not None, video=video)
            if source is not None:
                log.info("%s has %d video streams: the main one (#%d, %s, %s frames) is translated, not the first",
                         spec.target, info.videos, video + 1, source.codec, source.frame_count or "?")
                return source
            log.warning("warning: %s has %d video streams and PyAV cannot read its main one (#%d): the first is "
                        "translated", spec.target, info.videos, video + 1)
        if info.interlaced is not None:  # OpenCV 5.0 gives garbled pictures of it ("cannot convert interlaced")
            source = pyav.open_file_source(spec, hdr, deinterlace=True)
            if source is not None:
                log.info("%s is interlaced video (%s): read with PyAV and deinterlaced (FFmpeg's bwdif)",
                         spec.target, info.interlaced)
                return source
            log.warning("warning: %s is interlaced video and PyAV cannot read it: OpenCV may give garbled "
                        "pictures of it", spec.target)
        if info.mirrored:  # OpenCV reads the rotation angle of a display matrix only
            source = pyav.open_file_source(spec, hdr)
            if source is not None:
                log.info("%s: its display matrix mirrors the picture (a front camera's): read with PyAV, which "
                         "shows it mirrored as players do (OpenCV would turn it instead)", spec.target)
                return source
            log.warning("warning: %s is stored mirrored and PyAV cannot read it: OpenCV turns it instead of "
                        "mirroring it", spec.target)
        if info.raw_rate is not None:
            source = pyav.open_file_source(spec, hdr, rate=info.raw_rate)
            if source is not None:
                log.info("%s is a raw %s stream, without frame times: read at the %g fps its headers declare",
                         spec.target, source.codec, float(info.raw_rate))
                return source
        if info.bits > 8 and hdr is None:
            # OpenCV 5.1 reads 10- and 12-bit 4:2:0 video with green 2 levels low on every grey (a magenta
            # cast; measured on H.264, HEVC and FFV1); PyAV converts it exactly
            source = pyav.open_file_source(spec, None)
            if source is not None:
                log.debug("%s: %d-bit video, read with PyAV (OpenCV tints it)", spec.target, info.bits)
                return source
        if (hdr is not None or info.matrix in pyav.TAGGED_NOT_601) and not pyav.opencv_manages_colour():
            source = pyav.open_file_source(spec, hdr)
            if source is not None:
                if hdr is not None:
                    log.info("%s is HDR video (%s): tone mapped to SDR BT.709 (cgan.runtime.hdr)", spec.target, hdr)
                else:
                    log.debug("%s: read with PyAV, by its colour tags (this OpenCV decodes it as BT.601)",
                              spec.target)
                return source
    try:
        source = CaptureSource(spec, reconnects=reconnects, backoff=backoff, stop=stop, capture=capture)
    except IntegrityError:
        if spec.kind != "file":
            raise
        from cgan.runtime import pyav

        source = pyav.open_file_source(spec, hdr)
        if source is None:
            raise
        log.info("%s: OpenCV cannot decode its %s video; read with PyAV%s", spec.target, source.codec,
                 f", HDR ({hdr}) tone mapped to SDR" if hdr else "")
        return source
    if hdr is not None and pyav.opencv_manages_colour():
        source.tone_mapped_by = "OpenCV"
        log.info("%s is HDR video (%s): converted to SDR by OpenCV's FFmpeg", spec.target, hdr)
    return source


MAX_RECONNECT_WAIT_S = 30.0  # the longest wait between two reopen attempts (they double from `backoff`)
URL_TIMEOUT_MS = 5000  # open and read timeout of network streams
#: a live HLS stream's frames are handed on at their own times (see CaptureSource._pace), up to this far ahead of
#: the frame that set the clock: more is a jump in its times (a new stream), and the clock is set again
PACE_MAX_AHEAD_S = 12.0


def _proxied(url: str, host: str) -> bool:
    """Whether FFmpeg fetches `url` through a proxy (http_proxy/https_proxy, not bypassed by no_proxy): the proxy
    looks the host up then, which this machine may not be able to do."""
    import urllib.request

    scheme = url.partition("://")[0].lower()
    if scheme not in ("http", "https"):
        return False
    try:
        return bool(urllib.request.getproxies().get(scheme)) and not urllib.request.proxy_bypass(host)
    except (OSError, ValueError):
        return False


def foreign(source: Any) -> bool:
    """Whether `source` is an app's own (not one of cgan's, which return a new array per frame): it may fill one
    buffer again on every read(), as camera SDKs do, so frames kept past the next read must be copies."""
    return not type(source).__module__.startswith("cgan.")


def file_ends(src: Any) -> Any:
    """The pyav.StreamEnds of a file source's file (CaptureSource, pyav.FileSource); None: PyAV cannot tell, not a
    file, or not the file opened (replaced; a new time alone is a touch)."""
    now = file_identity(src.spec.target) if src.spec.kind == "file" else None
    if now is None or now[:3] != (src.identity or ())[:3]:
        return None
    from cgan.runtime import pyav

    return pyav.stream_ends(src.spec.target)


def stopped_early(src: Any, count: int, ends: Any, seeked: bool) -> bool:
    """Whether a file source's reading (CaptureSource, pyav.FileSource) ended before the file's end: fewer frames
    than the `count` it declares, and the last one read (`src.timestamp`) more than two frames before its length.
    OpenCV estimates the count of a Matroska, MPEG-TS or variable-rate file from its length and average rate; the
    last frame's time tells such a file's end (a variable rate, a start in the middle of a GOP, sound longer than
    the pictures) from frames lost, and where the packets end (`ends()`: pyav.StreamEnds, None where PyAV cannot
    tell; `ends` None: not a file) tells a file cut short. After a `seeked` start the frames read no longer count
    from the first (the times still tell: a file cut short was translated to its cut without a word)."""
    if not count or (not seeked and src.frames_read >= 0.98 * count):
        return False
    fps, last = known_fps(src.fps), src.timestamp
    if last is None or not math.isfinite(last):
        return True
    if fps and last + 2.0 / fps >= 0.98 * count / fps:
        return False
    found = ends() if ends is not None else None
    if found is None:
        return True
    # two frames; without a rate (over 1000 fps: a 2000 fps Matroska clip, its 1 ms times repeating, was said to
    # be damaged) two of Matroska's millisecond ticks
    step = 2.0 / fps if fps else 0.002
    # frames there that did not decode, or a file that ends before the length it declares (cut short)
    return last + step < found.video_last or found.media_last + step + 0.5 < 0.98 * found.declared


def say_cut_short(src: Any, count: int, seeked: bool, url: bool = False) -> None:
    """Set a file source's cut_short after stopped_early said so, with a warning."""
    fps = known_fps(src.fps)
    where = (f"at {src.timestamp:.2f} s" + (f" of {count / fps:.2f} s" if fps else "")
             if seeked and src.timestamp is not None else f"after {src.frames_read} of {count} frames")
    src.cut_short = f"decoding stopped {where} ({'a connection that could not be resumed, or ' * url}a damaged file?)"
    log.warning("%s: %s; the output ends there", src.name, src.cut_short)


def ends_written_over(src: Any) -> bool:
    """At the end of a file source's frames (CaptureSource, pyav.FileSource): whether its file was written over,
    or was still being written, while it was read (cgan._files.written_over); if so, the source's cut_short says
    it, with a warning."""
    whole = bool(src.frame_count) and src.frames_read >= 0.98 * src.frame_count
    if not written_over(src.spec.target, src.identity, whole):
        return False
    src.cut_short = (f"the file changed while it was read (written over, or still being written), "
                     f"{src.frames_read} frames in: the output ends there; translate it again")
    log.warning("%s: %s", src.name, src.cut_short)
    return True


def look_up(host: str, timeout: float, stop: threading.Event | None = None) -> str | None:
    """Look `host` up, on a thread of its own (getaddrinfo cannot be interrupted): None when it resolves (or is
    an address, or the lookup failed for another reason: FFmpeg finds out), "unknown" when no such name
    exists, "slow" when no answer came within `timeout` s (or `stop` was set meanwhile)."""
    import ipaddress
    import socket

    try:
        ipaddress.ip_address(host)
        return None
    except ValueError:
        pass
    answer: list[str | None] = []
    done = threading.Event()

    def lookup() -> None:
        try:
            socket.getaddrinfo(host, None)
            answer.append(None)
        except socket.gaierror as e:
            unknown = {socket.EAI_NONAME, getattr(socket, "EAI_NODATA", socket.EAI_NONAME)}
            answer.append("unknown" if e.errno in unknown else None)
        except (OSError, UnicodeError, ValueError):  # e.g. a label over 63 characters
            answer.append(None)
        finally:
            done.set()

    threading.Thread(target=lookup, name=f"cgan-dns-{host}", daemon=True).start()
    deadline = time.monotonic() + timeout
    while not done.wait(min(0.1, max(0.0, deadline - time.monotonic()))):  # (a Ctrl-C interrupts the wait)
        if time.monotonic() >= deadline or stop is not None and stop.is_set():
            return "slow"
    return answer[0] if answer else None


def _is_playlist(url: str) -> bool:
    """Whether a URL names an HLS playlist (.m3u8, .m3u; its query left out)."""
    from urllib.parse import urlsplit

    try:
        return urlsplit(url).path.lower().endswith((".m3u8", ".m3u"))
    except ValueError:
        return False


def known_fps(fps: object) -> float:
    """`fps` if it is a frame rate a video can have (MIN_FPS..MAX_FPS), else 0.0 (unknown): what OpenCV reports
    for a stream without one (0, 90000, nan), or a Python source's `fps` (inf made cv2.VideoWriter spin forever)."""
    try:
        f = float(fps)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return 0.0
    return f if MIN_FPS <= f <= MAX_FPS else 0.0


class FrameListSource:
    """Frames from memory (tests, Python users): a file-like source unless `live` (then paced at `fps`).

    `frames`: a sequence (a list, an array of frames: its length is the frame count) or any iterable, read one
    frame per `read()` (a generator that never ends, an SDK's queue: never read ahead, never held)."""

    def __init__(self, frames, fps: float = 25.0, live: bool = False, name: str = "frames"):
        # a live source is paced at its rate (1e-6: 11 days a frame; nan, inf, 0: not paced at all); a file-like
        # source's rate only times its output, where one outside MIN_FPS..MAX_FPS is written at the default rate,
        # with a warning (it was silent); what is not a number at all is a mistake either way (it was a bare
        # ValueError or TypeError from float())
        if live and (known_fps(fps) == 0.0 or isinstance(fps, bool)):
            raise CganError(f"a live FrameListSource needs a frame rate from {MIN_FPS:g} to {MAX_FPS:g} to be "
                            f"paced at, got fps={fps!r}")
        try:
            rate = float(fps) if not isinstance(fps, bool) else None
        except (TypeError, ValueError, OverflowError):
            rate = None
        if rate is None:
            raise CganError(f"FrameListSource's fps is the frames' rate, a number of frames per second, got "
                            f"fps={fps!r}")
        if known_fps(rate) == 0.0:
            log.warning("warning: FrameListSource %s: fps=%r is not a frame rate a video can have (%g to %g); its "
                        "output is timed at the default rate", name, fps, MIN_FPS, MAX_FPS)
        sized = hasattr(frames, "__len__") and hasattr(frames, "__getitem__")
        self._frames = list(frames) if sized else []  # (the frames themselves are not copied)
        self._stream = None if sized else iter(frames)
        self._i = 0
        self.fps = rate
        self.live = live
        self.name = name
        self.frame_count = len(self._frames) if sized and not live else 0  # 0: not known
        self._next_t: float | None = None

    def read(self) -> np.ndarray | None:
        if self._stream is not None:
            frame = next(self._stream, None)
        else:
            frame = self._frames[self._i] if self._i < len(self._frames) else None
        if frame is None:
            return None
        if self.live and self.fps > 0:
            now = time.perf_counter()
            if self._next_t is not None and now < self._next_t:
                time.sleep(self._next_t - now)
            self._next_t = max(now, self._next_t or now) + 1.0 / self.fps
        self._i += 1
        return frame

    def close(self) -> None:
        """Close a generator given as the frames (its `finally` releases what it holds: a camera SDK's device)."""
        close = getattr(self._stream, "close", None)
        if callable(close):
            close()


def parse_time(value: object, what: str = "time") -> float:
    """Seconds from a time as ffmpeg and players write it: 90, 90.5, 1:30, 01:02:03.5 (or a number). One-line
    CganError otherwise."""
    if isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_)):
        try:
            seconds = float(value)
        except OverflowError:
            seconds = math.inf
    elif isinstance(value, str) and value.strip():
        parts = value.strip().split(":")
        try:
            if len(parts) > 3 or any(not p or not p.replace(".", "", 1).isdecimal() for p in parts) \
                    or any("." in p for p in parts[:-1]) or any(int(p) >= 60 for p in parts[1:-1]) \
                    or (len(parts) > 1 and float(parts[-1]) >= 60):
                raise ValueError
            seconds = sum(float(p) * 60 ** k for k, p in enumerate(reversed(parts)))
        except ValueError:
            raise CganError(f"{what} {value!r} is not a time: give seconds (90, 12.5) or [HH:]MM:SS[.ms] "
                            f"(1:30, 01:02:03.5)") from None
    else:
        raise CganError(f"{what} must be a time in seconds or [HH:]MM:SS, got {_describe(value)}")
    if not math.isfinite(seconds) or seconds < 0:
        raise CganError(f"{what} must be a finite time of 0 or more, got {value!r}")
    return seconds


def clock(seconds: float) -> str:
    """A time as players show it, to the millisecond where it has them: 1:30.0, 0:01.083, 1:02:03.5."""
    m, s = divmod(round(seconds, 3), 60)  # rounded first: 59.9996 s is 1:00.0, not 0:60.0
    h, m = divmod(int(m), 60)
    text = f"{s:06.3f}".rstrip("0")
    text += "0" if text.endswith(".") else ""
    return f"{h}:{m:02d}:{text}" if h else f"{m}:{text}"


class Trimmed:
    """A file source cut to the frames from `start` up to `end` (seconds in the file; None: its end), as
    cgan-video --start/--end: it seeks near `start` where the source can (`seek(t)`), then reads on to the first
    frame at or after it. Its timestamps are the file's, so an output keeps the frames' times and the sound from
    `start` (see cgan.runtime.video.VideoOutput). A source whose frames have no times, or times that do not move
    on (OpenCV gives 0 for every frame of a raw .h264 file), is read from its start and timed by its frame rate.
    Everything else is the source's."""

    SEEK_BACK_S = 2.0  # seek this far before `start` and read on: a variable-rate file's seek can land after it

    def __init__(self, inner: Any, start: float = 0.0, end: float | None = None):
        self.inner, self.start, self.end = inner, start, end
        self.live = False
        # an app's own source may fill one buffer again on every read() (camera SDKs do): the frames read ahead
        # (two, to see whether times move on) and those queued behind this one are copies (see foreign)
        self._copy = foreign(inner)
        self.ended_at: float | None = None  # where the last frame read stops being shown (see Source)
        self._t: float | None = None
        self._done = False
        self._fps = known_fps(getattr(inner, "fps", 0.0))
        self._eps = 0.25 / self._fps if self._fps else 1e-3  # a frame within a quarter frame of a time is at it
        self._index = 0  # frames read from the inner source since its start (the clock of untimed sources)
        self._untimed = False
        self._stream: Iterator[tuple[np.ndarray, float | None]] = iter(())
        self._pending = self._first()
        count, length = int(getattr(inner, "frame_count", 0) or 0), self._length()
        if length is not None:  # the frames at k / fps in [start, end): an estimate for the progress bar
            last = length if end is None else min(end, length)
            count = max(1, math.ceil(last * self._fps - 0.25) - math.ceil(self.start * self._fps - 0.25))
        self.frame_count = count

    def __getattr__(self, name: str) -> Any:
        return getattr(self.__dict__["inner"], name)

    def _time(self) -> float | None:
        if self._untimed:
            return (self._index - 1) / self._fps
        t = getattr(self.inner, "timestamp", None)
        return t if t is not None and math.isfinite(t) else None

    def _read(self) -> tuple[np.ndarray, float | None] | None:
        frame = self.inner.read()
        if frame is None:
            return None
        self._index += 1
        return (np.array(frame) if self._copy else frame), self._time()

    def _seek(self, t: float) -> bool:
        try:
            self.inner.seek(t)
        except Exception as e:  # noqa: BLE001 - e.g. a raw stream PyAV cannot seek in: read on instead
            log.debug("%s: cannot seek to %.3f s (%s); reading on", self.inner.name, t, e)
            return False
        return True

    def _first(self) -> tuple[np.ndarray, float | None] | None:
        head = [g for g in (self._read(), self._read()) if g is not None]  # do its times move on?
        times = [t for _, t in head]
        if None in times or (len(times) == 2 and times[1] <= times[0]):
            if not self._fps:
                raise CganError(f"{self.inner.name}: its frames have neither times nor a frame rate, so "
                                f"--start/--end cannot cut it")
            self._untimed = True
            head = [(frame, i / self._fps) for i, (frame, _) in enumerate(head)]
        frames = self._frames(head)
        back = max(self.start - self.SEEK_BACK_S, 0.0)
        if (not self._untimed and head and back > head[-1][1] and callable(getattr(self.inner, "seek", None))
                and self._seek(back)):
            got = self._read()
            if got is None and self._length() is not None and self.start > self._length() + 1.0:
                self._past_the_end(None)  # (a second past what the file says: not worth reading it through)
            for step in (10.0, 60.0, 600.0, math.inf):
                if got is not None and got[1] is not None and got[1] <= self.start + self._eps:
                    break
                # landed after `start`, or past the end (OpenCV takes a variable-rate file's time for a frame
                # number at its average rate): seek further back, at last to the beginning
                if not self._seek(max(back - step, 0.0)):
                    raise CganError(f"cannot find --start {clock(self.start)} in {self.inner.name}: seeking "
                                    f"failed; cut the part out first (ffmpeg -ss ... -to ...)")
                got = self._read()
                if back - step <= 0:
                    break
            frames = self._frames([got] if got is not None else [])
        self._stream = frames  # what read() goes on with (the head's second frame may still be in it)
        last = None
        for got in frames:
            if got[1] is None:
                raise CganError(f"{self.inner.name}: its frames have no times, so --start/--end cannot cut it")
            if got[1] >= self.start - self._eps:
                if self.end is not None and got[1] >= self.end - self._eps:
                    at = (f"its frame at {clock(got[1])} is within a quarter frame of --end, where the output "
                          f"stops" if got[1] < self.end else f"the next is at {clock(got[1])}")
                    raise CganError(f"no frame of {self.inner.name} lies between --start {clock(self.start)} and "
                                    f"--end {clock(self.end)} ({at}): widen them")
                return got
            last = got[1]
        self._past_the_end(last)

    def _length(self) -> float | None:
        """The file's length from its frame count and rate (None when either is unknown)."""
        count = int(getattr(self.inner, "frame_count", 0) or 0)
        return count / self._fps if count and self._fps else None

    def _past_the_end(self, last: float | None) -> None:
        length = self._length()
        end = (f" (its last frame is at {clock(last)})" if last is not None
               else f" (it lasts about {clock(length)})" if length is not None else "")
        raise CganError(f"--start {clock(self.start)} is at or after the end of {self.inner.name}{end}: give an "
                        f"earlier --start")

    def _frames(self, head: list) -> Iterator[tuple[np.ndarray, float | None]]:
        yield from head
        while (got := self._read()) is not None:
            yield got

    @property
    def timestamp(self) -> float | None:
        return self._t

    def read(self) -> np.ndarray | None:
        if self._done:
            return None
        got, self._pending = (self._pending, None) if self._pending is not None else (next(self._stream, None), None)
        if got is None or (self.end is not None and got[1] is not None and got[1] >= self.end - self._eps):
            # the last frame is shown until the next one, or --end, or as long as the file says it is
            after = got[1] if got is not None else None if self._untimed else getattr(self.inner, "ended_at", None)
            if self._t is not None and after is not None and after > self._t:
                self.ended_at = after if self.end is None else min(after, self.end)
            self._t, self._done = None, True
            return None
        frame, self._t = got
        return frame

    def close(self) -> None:
        self.inner.close()
