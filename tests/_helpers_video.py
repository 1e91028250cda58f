"""Shared helpers for the cgan-video tests: synthetic clips, fake translators, frame counting."""
from __future__ import annotations

import contextlib
import functools
import http.server
import threading
import time
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np


def mux_frames(out, stream, frames) -> None:
    """Encode PyAV video `frames` into `stream` of container `out`, the i-th at pts i, then flush the encoder."""
    for i, frame in enumerate(frames):
        frame.pts = i
        for packet in stream.encode(frame):
            out.mux(packet)
    for packet in stream.encode(None):
        out.mux(packet)


def pattern(i: int, width: int = 64, height: int = 48) -> np.ndarray:
    """Frame i of a synthetic clip: a gradient with a moving bright bar (deterministic)."""
    x = np.linspace(0, 160, width, dtype=np.float32)[None, :].repeat(height, 0)
    img = np.stack([x, x[::-1, ::-1] * 0.5 + 40, np.full_like(x, 90)], axis=-1)
    col = (i * 3) % width
    img[:, col:col + 4] = 230
    return img.astype(np.uint8)


def make_clip(path: Path, frames: int, size: tuple[int, int] = (64, 48), fps: float = 12.0,
              fourcc: str = "mp4v") -> Path:
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, size)
    assert w.isOpened(), f"this OpenCV cannot write {path}"
    for i in range(frames):
        w.write(pattern(i, *size))
    w.release()
    return path


#: display matrices of an MP4 track header (16.16 fixed point, w 2.30), row-vector convention, y down
DISPLAY_MATRICES = {"quarter clockwise": (0, 1, -1, 0), "quarter counter-clockwise": (0, -1, 1, 0),
                    "half turn": (-1, 0, 0, -1), "mirrored": (-1, 0, 0, 1), "upside down": (1, 0, 0, -1),
                    "transposed": (0, 1, 1, 0), "anti-transposed": (0, -1, -1, 0)}


def raw_h264(path: Path, frames: list[np.ndarray], fps: int) -> Path:
    """A raw H.264 stream (no container, no frame times; its SPS declares `fps`), as Raspberry Pi cameras and
    DVRs write. Needs PyAV."""
    import av

    with av.open(str(path), "w", format="h264") as out:
        s = out.add_stream("libx264", rate=fps)
        s.width, s.height, s.pix_fmt = frames[0].shape[1], frames[0].shape[0], "yuv420p"
        mux_frames(out, s, [av.VideoFrame.from_ndarray(f, format="bgr24") for f in frames])
    return path


def with_display_matrix(clip: Path, out: Path, abcd: tuple[int, int, int, int]) -> Path:
    """`clip` (an MP4 OpenCV wrote: one version-0 track header) copied to `out` with the display matrix whose
    2x2 part is `abcd` (DISPLAY_MATRICES), as a phone writes a portrait or a front camera's mirrored clip."""
    import struct

    data = bytearray(clip.read_bytes())
    i = data.find(b"tkhd")
    assert i > 0 and data[i + 4] == 0  # a version-0 track header, as OpenCV writes it
    at = i + 4 + 4 + 20 + 8 + 8  # after version/flags, 5 fields, 8 reserved, layer/group/volume/reserved
    assert struct.unpack(">9i", data[at:at + 36])[0] == 1 << 16  # the identity matrix is where expected
    a, b, c, d = (v << 16 for v in abcd)
    data[at:at + 36] = struct.pack(">9i", a, b, 0, c, d, 0, 0, 0, 1 << 30)  # players place it; FFmpeg ignores x, y
    out.write_bytes(bytes(data))
    return out


def probe(path: Path) -> tuple[int, float, tuple[int, int]]:
    """(decodable frames, fps, (width, height)) of a video file."""
    cap = cv2.VideoCapture(str(path))
    assert cap.isOpened(), f"{path} does not open"
    n = 0
    size = (0, 0)
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        size = (frame.shape[1], frame.shape[0])
        n += 1
    fps = cap.get(cv2.CAP_PROP_FPS)
    cap.release()
    return n, fps, size


class Invert:
    """A fake translator: colour inversion, optionally slow; records the batches it saw."""

    def __init__(self, delay: float = 0.0):
        self.delay = delay
        self.batches: list[list[tuple[int, ...]]] = []
        self.lock = threading.Lock()

    def translate_batch(self, frames):
        with self.lock:
            self.batches.append([f.shape for f in frames])
        if self.delay:
            time.sleep(self.delay)
        return [255 - f for f in frames]

    def translate(self, frame):
        return self.translate_batch([frame])[0]


class Broken:
    """A translator that fails on the n-th batch."""

    def __init__(self, after: int = 3):
        self.after = after
        self.calls = 0

    def translate_batch(self, frames):
        self.calls += 1
        if self.calls > self.after:
            raise RuntimeError("inference exploded")
        return [255 - f for f in frames]


def as_live_streams(monkeypatch) -> None:
    """Local clips opened as URLs stand in for live streams: hide their length, as FFmpeg reports none for a
    live stream (a URL with a length is read as a recorded video, see CaptureSource)."""
    real = cv2.VideoCapture

    class NoLength:  # a wrapper: Python subclasses of cv2.VideoCapture crash the garbage collector
        def __init__(self, *args, **kwargs):
            self._cap = real(*args, **kwargs)

        def get(self, prop):
            return -1.0 if prop == cv2.CAP_PROP_FRAME_COUNT else self._cap.get(prop)

        def __getattr__(self, name):
            return getattr(self._cap, name)

    monkeypatch.setattr(cv2, "VideoCapture", NoLength)


@contextlib.contextmanager
def serve_folder(folder: Path) -> Iterator[str]:
    """A quiet HTTP server for `folder` on 127.0.0.1 (a port of its own) while the block runs; yields its URL."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    handler.log_message = lambda *a, **k: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
