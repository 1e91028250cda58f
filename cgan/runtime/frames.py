"""Frames in and out of a generator (numpy + OpenCV, no torch).

What `Translator.translate` accepts, and what it does with it:

| input                          | handling                                                               |
|--------------------------------|------------------------------------------------------------------------|
| uint8 HxWx3 (BGR)              | as is                                                                  |
| uint8 HxW or HxWx1 (grayscale) | replicated to BGR; the output is BGR HxWx3                              |
| uint8 HxWx4 (BGRA)             | alpha dropped; the output is BGR HxWx3 (alpha is not translated)        |
| uint16 (either byte order)     | scaled to 8 bit (round(x / 257)), then as above                         |
| float16/32/64 (either order)   | accepted only in [0, 1] (scaled by 255 and rounded); NaN/inf → error    |
| anything else / 0 pixels       | CganError                                                              |
| more than `max_pixels`         | CganError (default 4096·4096; raise it with `max_pixels=`)              |

Geometry: the generator needs height and width that are multiples of 4 and larger than its reflection padding.
`resize="pad"` (default) pads the bottom/right edge by reflection up to the next multiple of 4 and crops the
result back; sides shorter than `MIN_SIDE` (16 px, e.g. a 1×1 frame) are first padded by edge replication.
`resize="fit"` resizes to the nearest multiple of 4 instead and resizes the result back. `max_side` (optional)
downscales larger frames first (keeping the aspect ratio) and upscales the result back to the input size.

The generator-side conversions (`bgr_to_nchw`, `nchw_to_bgr`) write into caller-owned buffers, so a backend
keeps one set of buffers per shape and allocates nothing per frame in steady state.
"""
from __future__ import annotations

import math
import numbers
from typing import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from cgan._limits import MAX_PIXELS
from cgan.errors import CganError

MULTIPLE = 4
MIN_SIDE = 16                      # > the 7x7 conv's reflection pad 3 at full size and pad 1 at 1/4 size
DEFAULT_MAX_PIXELS = MAX_PIXELS   # 4096², ~16.8 MP: larger frames are refused (activations would need many GB)
RESIZE_POLICIES = ("pad", "fit")


def frame_size(frame: object) -> tuple[int, int]:
    """(height, width) of a frame `to_bgr` takes, checking its type and shape without converting anything (a
    frame refused for its size must not be converted first: a huge float frame would need gigabytes)."""
    if not isinstance(frame, np.ndarray):
        raise CganError(f"a frame must be a numpy array (HxWx3 BGR uint8), got {type(frame).__name__}")
    if frame.ndim not in (2, 3) or (frame.ndim == 3 and frame.shape[2] not in (1, 3, 4)):
        raise CganError(f"a frame must be HxW (gray), HxWx3 (BGR) or HxWx4 (BGRA), got shape {frame.shape}")
    if frame.shape[0] == 0 or frame.shape[1] == 0:
        raise CganError(f"the frame is empty (shape {frame.shape}): check the source that produced it")
    return int(frame.shape[0]), int(frame.shape[1])


def to_bgr(frame: object) -> np.ndarray:
    """Any supported frame (see the module table) as a C-contiguous uint8 HxWx3 BGR array."""
    frame_size(frame)
    if isinstance(frame, np.ma.MaskedArray):  # its checks skip masked cells, the conversion reads them all
        if np.ma.getmaskarray(frame).any():  # (a NaN under the mask reached the model as an undefined byte)
            raise CganError("the frame is a masked array with masked pixels, which a model cannot leave out: "
                            "fill them first (frame.filled(0))")
        frame = frame.data
    if frame.ndim == 3 and frame.shape[2] == 1:
        frame = frame[:, :, 0]
    frame = _to_uint8(frame)
    if frame.ndim == 2:
        return cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
    if frame.shape[2] == 4:
        return cv2.cvtColor(frame, cv2.COLOR_BGRA2BGR)
    return np.ascontiguousarray(frame)


#: how far outside [0, 1] a float frame may reach and still be taken (clipped): half a uint8 level, which rounds to
#: 0 or 255 anyway (1.0000001 from float arithmetic was refused as "spans [1, 1]")
FLOAT_SLACK = 0.5 / 255


def _to_uint8(frame: np.ndarray) -> np.ndarray:
    dt = frame.dtype
    if not dt.isnative and dt.kind in "uf":  # big-endian 16-bit or float (FITS, some camera SDKs)
        frame = frame.astype(dt.newbyteorder("="))
        dt = frame.dtype
    if dt == np.uint8:
        return frame
    if dt == np.uint16:
        return ((frame.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
    if dt in (np.float32, np.float64, np.float16):
        if not np.isfinite(frame).all():
            raise CganError("the frame contains NaN or infinite values: pass uint8 BGR or floats in [0, 1]")
        lo, hi = float(frame.min()), float(frame.max())
        if lo < -FLOAT_SLACK or hi > 1.0 + FLOAT_SLACK:
            if lo < -0.5:  # (tanh, Normalize(0.5, 0.5))
                advice = "a [-1, 1] frame becomes one with (frame + 1) / 2"
            elif hi > 2.0:
                advice = "divide by 255 or pass uint8"
            elif lo > -0.25 and hi < 1.25:  # (a cubic resize of a 0-to-1 step overshoots by up to 0.2)
                advice = "clip it with np.clip(frame, 0, 1) (a cubic resize overshoots a little) or pass uint8"
            else:
                advice = "rescale it to [0, 1] or pass uint8"
            raise CganError(f"float frames must be in [0, 1], this one spans [{lo:g}, {hi:g}]: {advice}")
        return np.rint(np.clip(frame.astype(np.float32), 0.0, 1.0) * 255.0).astype(np.uint8)
    raise CganError(f"unsupported frame dtype {dt}: pass uint8 (or uint16, or float in [0, 1])")


def check_pixels(height: int, width: int, max_pixels: int, given: tuple[int, int] | None = None) -> None:
    """Refuse a model input of height x width over max_pixels (per frame); `given`: the (height, width) the
    caller passed, when padding or max_side made the model's size differ."""
    if height * width > max_pixels:
        size = f"{width}x{height}"
        if given is not None and given != (height, width):
            size = f"{given[1]}x{given[0]} (the model would see {size})"
        raise CganError(f"frame {size} has {height * width} pixels, over the limit of {max_pixels}: "
                        f"use max_side= to downscale, or raise max_pixels= if you have the memory")


def even_size(width: int, height: int) -> tuple[int, int]:
    """The size 4:2:0 video (encoders, virtual camera drivers) holds a width x height frame at: each side cut to
    an even number, at least 2."""
    return max(2, width & ~1), max(2, height & ~1)


def fit_to(frame: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """`frame` at `size` (width, height), contiguous: as it is, without its odd last row/column (even_size of it),
    or resized (INTER_AREA) when it is another size altogether (a source that changed size)."""
    h, w = frame.shape[:2]
    if (w, h) != size:
        if even_size(w, h) == size:
            frame = frame[:size[1], :size[0]]
        else:
            frame = cv2.resize(frame, size, interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(frame)


def round_up(n: int, multiple: int = MULTIPLE) -> int:
    return -(-n // multiple) * multiple


def model_size_of(translator: object) -> Callable[[int, int], tuple[int, int]]:
    """(height, width) -> the size a frame runs at through `translator`: its `model_size` (a Translator's max_side
    shrinks it), else the size padded to multiples of 4 (an app's own translator); what the video and photo
    pipelines check max_pixels against."""
    size = getattr(translator, "model_size", None)
    return size if callable(size) else (lambda h, w: (round_up(h), round_up(w)))


@dataclass(frozen=True)
class Geometry:
    """How one input size maps to the size the generator sees, and back."""

    height: int                 # input frame
    width: int
    scaled: tuple[int, int]     # (h, w) after max_side / fit resizing (== input size when none)
    padded: tuple[int, int]     # (h, w) the generator sees: multiples of MULTIPLE, >= MIN_SIDE

    @property
    def resized(self) -> bool:
        return self.scaled != (self.height, self.width)


def plan(height: int, width: int, resize: str = "pad", max_side: int | None = None) -> Geometry:
    """The geometry for a frame of height×width under a resize policy."""
    if resize not in RESIZE_POLICIES:
        raise CganError(f"unknown resize policy {resize!r}: use one of {', '.join(RESIZE_POLICIES)}")
    h, w = height, width
    if max_side is not None:
        if isinstance(max_side, bool) or not isinstance(max_side, numbers.Integral):
            raise CganError(f"max_side must be an integer number of pixels, got {max_side!r}")
        max_side = int(max_side)
        if max_side < MIN_SIDE:
            raise CganError(f"max_side must be at least {MIN_SIDE}, got {max_side}")
        if max(h, w) > max_side:
            s = max_side / max(h, w)
            h, w = max(1, round(h * s)), max(1, round(w * s))
    if resize == "fit":
        h, w = (max(MIN_SIDE, round(v / MULTIPLE) * MULTIPLE) for v in (h, w))
        return Geometry(height, width, (h, w), (h, w))
    return Geometry(height, width, (h, w), (max(MIN_SIDE, round_up(h)), max(MIN_SIDE, round_up(w))))


def pad_into(frame: np.ndarray, dst: np.ndarray) -> None:
    """Copy HxWx3 `frame` into the top-left of `dst` (Hp×Wp×3) and fill the rest: reflection where the side
    is long enough, edge replication for sides shorter than MIN_SIDE."""
    h, w = frame.shape[:2]
    hp, wp = dst.shape[:2]
    if (h, w) == (hp, wp):
        np.copyto(dst, frame)
        return
    if h >= MIN_SIDE and w >= MIN_SIDE:
        cv2.copyMakeBorder(frame, 0, hp - h, 0, wp - w, cv2.BORDER_REFLECT_101, dst=dst)
        return
    # tiny side(s): replicate the tiny axis, reflect the other (pad < side there); two passes, rare path
    tmp = cv2.copyMakeBorder(frame, 0, hp - h if h < MIN_SIDE else 0, 0, wp - w if w < MIN_SIDE else 0,
                             cv2.BORDER_REPLICATE)
    cv2.copyMakeBorder(tmp, 0, hp - tmp.shape[0], 0, wp - tmp.shape[1], cv2.BORDER_REFLECT_101, dst=dst)


#: the fixed 0/1 pattern a flat frame gets (see dither_if_flat); one per size, small cache
_DITHER: dict[tuple[int, int], np.ndarray] = {}


def dither_if_flat(img: np.ndarray) -> bool:
    """Add a fixed ±1 pattern to a uint8 HxWx3 frame in place if it is perfectly flat (one colour); True if it was.

    InstanceNorm divides a flat frame's zero variance by ~0, so float rounding noise decides the output: every
    backend gave a different image for a black frame (fades, lens caps, a camera warming up), unlike the same
    frame with one level of sensor noise. With the pattern, a flat frame behaves like that nearly flat frame on
    every backend. Cost on other frames: a look at the first, middle and last rows (about 30 µs at 720p); a frame
    whose three rows are one colour gets a full look (about 1 ms for a grey one such as a nearly black fade, a few
    ms for a coloured one)."""
    first = img[0, 0]
    h = img.shape[0]
    if not all((img[y] == first).all() for y in (0, h // 2, h - 1)):  # letterboxed films: black first rows
        return False
    if first[0] == first[1] == first[2]:  # grey (black, white): OpenCV's min/max of all bytes, no allocation
        lo, hi, _, _ = cv2.minMaxLoc(img.reshape(img.shape[0], -1))
        if lo != hi:
            return False
    elif not (img[::7, ::7] == first).all() or not (img == first).all():
        return False
    key = img.shape[:2]
    pattern = _DITHER.get(key)
    if pattern is None:
        if len(_DITHER) >= 8:
            _DITHER.clear()
        pattern = _DITHER[key] = np.random.default_rng(0x5EED).integers(0, 2, key, dtype=np.uint8)
    for c in range(img.shape[2]):
        if first[c] == 255:
            np.subtract(img[..., c], pattern, out=img[..., c])
        else:
            np.add(img[..., c], pattern, out=img[..., c])
    return True


def bgr_to_nchw(frames: np.ndarray, out: np.ndarray) -> np.ndarray:
    """uint8 (N,H,W,3) BGR -> `out` (N,3,H,W) float RGB in [-1, 1] (x/127.5 - 1), no allocation."""
    np.multiply(frames[..., ::-1].transpose(0, 3, 1, 2), 1.0 / 127.5, out=out, casting="unsafe")
    np.subtract(out, 1.0, out=out)
    return out


def nchw_to_bgr(y: np.ndarray, out: np.ndarray) -> np.ndarray:
    """(N,3,H,W) float RGB in [-1, 1] -> `out` uint8 (N,H,W,3) BGR: (y+1)·127.5, round, clamp. Modifies `y`."""
    if y.dtype != np.float32:
        y = y.astype(np.float32)
    np.add(y, 1.0, out=y)
    np.multiply(y, 127.5, out=y)
    np.rint(y, out=y)
    # NaN (a broken or overflowing model) -> 0, deterministically and without numpy's cast warning
    np.nan_to_num(y, copy=False, nan=0.0, posinf=255.0, neginf=0.0)
    np.clip(y, 0.0, 255.0, out=y)
    np.copyto(out, y.transpose(0, 2, 3, 1)[..., ::-1], casting="unsafe")
    return out


class Buffers:
    """Arrays reused per shape (one small cache; a video stream has one shape, so it is hit every frame). Emptied
    when it holds `keep` x 4 arrays or one more would take it past `max_bytes` (photos of many sizes)."""

    MAX_BYTES = 256 << 20

    def __init__(self, keep: int = 4, max_bytes: int = MAX_BYTES):
        self._cache: dict[tuple, np.ndarray] = {}
        self._keep = keep
        self._max_bytes = max_bytes
        self._bytes = 0

    def get(self, tag: str, shape: tuple[int, ...], dtype) -> np.ndarray:
        key = (tag, tuple(shape), np.dtype(dtype).str)
        buf = self._cache.get(key)
        if buf is None:
            nbytes = math.prod(shape) * np.dtype(dtype).itemsize
            if len(self._cache) >= self._keep * 4 or self._bytes + nbytes > self._max_bytes:
                self.clear()
            buf = self._cache[key] = np.empty(shape, dtype)
            self._bytes += buf.nbytes
        return buf

    def clear(self) -> None:
        self._cache.clear()
        self._bytes = 0
