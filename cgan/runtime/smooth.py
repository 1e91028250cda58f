"""Flicker reduction for translated video, and a flicker metric (no torch).

A CycleGAN translates each frame on its own, so tiny input changes (sensor noise, compression) can make the
output shimmer. `TemporalSmoother` blends each new output with the previous (smoothed) output, per pixel,
weighted by how little the *input* changed at that pixel and how little the output changed around it:

    d      = |blur(gray(in_t)) - blur(gray(in_{t-1}))|            (optionally after optical-flow warping)
    e      = max over channels |blur(out_t - out'_{t-1})|
    w      = strength * clip(1 - d / threshold, 0, 1) * clip(1 - e / out_threshold, 0, 1)
    out'_t = w * out'_{t-1} + (1 - w) * out_t

Static regions (d ~ 0) get temporal smoothing (an exponential moving average over ~1/(1-strength) frames);
pixels where the input moved (d >= threshold) take the new output unchanged, and so do pixels whose output
changed coherently over their neighbourhood (e >= out_threshold): flicker is fine-grained and mostly cancels
in the blur, while content does not -- the halo a generator paints around a moving object, whose input pixels
did not change, and a cut to a scene of the same brightness. So moving objects leave no ghost trail. With
`flow=True` the previous frame is first warped onto the current one with DIS optical flow, so a camera pan is
"static" too and gets smoothed, wherever the warped frame matches the new one better than the unwarped (DIS
follows noise on flat areas, and flow under half a pixel counts as none). A
scene cut (a large mean input change, or most of the picture changed, bars around it of any flat colour and
black areas left out; tested on the frames before and, with flow, after warping) resets the history.

`flicker_index(inputs, outputs)` = mean |out_t - out_{t-1}| / mean |in_t - in_{t-1}| over a clip: how much the
output changes per unit of input change (lower = steadier; a perfect per-pixel copy of the input scores 1).
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Iterable

import cv2
import numpy as np


MIN_FLOW_SIDE = 32  # frames (or their flow-sized copy) thinner than this are smoothed without optical flow
LETTERBOX_LEVEL = 16  # gray level (blurred) at or under which a pixel may be a black bar, not picture
_LEVELS = np.arange(256, dtype=np.float64)


BLUR_RADIUS = 2  # of _gray's 5x5 Gaussian


def _gray(frame: np.ndarray) -> np.ndarray:
    g = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY) if frame.ndim == 3 else frame
    return cv2.GaussianBlur(g, (2 * BLUR_RADIUS + 1,) * 2, 0)


BAR_FLAT = 3  # gray levels (blurred) a bar's row or column may vary by, within and between the two frames
BAR_COLOURS = 4  # gray levels the two bars of a pair may differ by


def _static_bars(g: np.ndarray, prev_g: np.ndarray) -> tuple[int, int, int, int]:
    """Rows at the top and bottom and columns at the left and right that are one flat colour, the same in both
    frames: letterbox, pillarbox or passe-partout bars of any colour (black, gray, white), which never change
    and are no part of the picture. Bars come in pairs of one colour and about one thickness (above and below,
    left and right): a flat sky over a pan, or an overcast sky over snow, is the same in both frames too, but
    is no bar (taken for one, the rest of a busy frame counted double and every frame was a cut).
    (top, bottom, left, right) counts."""
    counts = []
    for axis in (1, 0):  # per row (reduce along x), then per column (numpy's: 20x OpenCV's reduce here)
        lo = np.minimum(g.min(axis=axis), prev_g.min(axis=axis))
        hi = np.maximum(g.max(axis=axis), prev_g.max(axis=axis))
        flat = (hi.astype(np.int16) - lo) <= BAR_FLAT  # flat in both frames, and the same in both
        first, last = (int(np.argmin(flat)), int(np.argmin(flat[::-1]))) if not flat.all() else (0, 0)
        colours = abs((int(lo[0]) + int(hi[0])) - (int(lo[-1]) + int(hi[-1]))) / 2
        if first == 0 or last == 0 or colours > BAR_COLOURS or abs(first - last) > max(4, max(first, last) // 10):
            counts += [0, 0]  # a flat frame, no pair of bars, two of different colours or thicknesses
        else:  # (+2: the rows the 5x5 blur mixed from bar and picture, which the flatness test leaves out)
            counts += [first + BLUR_RADIUS, last + BLUR_RADIUS]
    return counts[0], counts[1], counts[2], counts[3]


@dataclass
class TemporalSmoother:
    """Per-stream flicker reduction; call it with (input frame, translated frame) in order.

    strength: weight of the history in fully static regions (0 = off, 0.8 default, < 1).
    threshold: input change (gray levels, 0..255) at which a pixel fully follows the new output.
    out_threshold: change of the output (levels, blurred over 5x5 pixels) at which a pixel fully follows the new
        output: content, not flicker.
    flow: warp the history with DIS optical flow first (smooths camera pans too; costs a few ms per frame).
    min_flow: flow under this many pixels counts as none (noise on flat areas, not motion).
    scene_cut: mean input change (gray levels) above which the history is dropped; so is it when more than
        `scene_cut_share` of the picture's pixels changed by `threshold` or more; with flow, the warped frames must
        still differ by half as much.
    """

    strength: float = 0.8
    threshold: float = 12.0
    out_threshold: float = 24.0
    flow: bool = False
    scene_cut: float = 40.0
    scene_cut_share: float = 0.6
    flow_long_side: int = 320
    min_flow: float = 0.5
    _prev_gray: np.ndarray | None = field(default=None, init=False, repr=False)
    _prev_out: np.ndarray | None = field(default=None, init=False, repr=False)
    _dis: object = field(default=None, init=False, repr=False)
    _grid: tuple | None = field(default=None, init=False, repr=False)
    _lut: np.ndarray | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        for name in ("strength", "threshold", "out_threshold", "scene_cut", "scene_cut_share", "flow_long_side",
                     "min_flow"):  # a NaN threshold failed on the first frame; a string with a bare TypeError
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
                    or not np.isfinite(value):
                raise ValueError(f"smoothing {name} must be a finite number, got {value!r}")
        if not 0.0 <= self.strength < 1.0:
            raise ValueError(f"smoothing strength must be in [0, 1), got {self.strength}")
        if self.threshold <= 0 or self.out_threshold <= 0:
            raise ValueError(f"smoothing thresholds must be > 0, got {self.threshold} and {self.out_threshold}")
        if not self.min_flow >= 0:
            raise ValueError(f"min_flow must be >= 0 pixels, got {self.min_flow}")
        if self.scene_cut <= 0 or not 0 < self.scene_cut_share <= 1:  # (<= 0 made every frame a cut: no smoothing)
            raise ValueError(f"scene_cut must be > 0 gray levels and scene_cut_share in (0, 1], got "
                             f"{self.scene_cut} and {self.scene_cut_share}")
        if self.flow_long_side < MIN_FLOW_SIDE:
            raise ValueError(f"flow_long_side must be at least {MIN_FLOW_SIDE} pixels, got {self.flow_long_side}")

    def reset(self) -> None:
        self._prev_gray = None
        self._prev_out = None

    def __call__(self, inp: np.ndarray, out: np.ndarray) -> np.ndarray:
        if inp.dtype != np.uint8 or out.dtype != np.uint8:
            raise ValueError(f"the smoother takes uint8 frames (0..255), got {inp.dtype} input and {out.dtype} output")
        g = _gray(inp)
        prev_g, prev_out = self._prev_gray, self._prev_out
        if prev_g is None or prev_g.shape != g.shape or prev_out.shape != out.shape or self.strength == 0:
            self._prev_gray, self._prev_out = g, out.astype(np.float32)
            return out
        d = cv2.absdiff(g, prev_g)
        cut = self._is_cut(d, g, prev_g)
        warped = self._warp(g, prev_g, prev_out) if self.flow else None
        if warped is not None:
            warped_g, warped_out = warped
            warped_d = cv2.absdiff(g, warped_g)
            # a pan changes every pixel too: a cut only if the warped frames still differ by half the levels (the
            # warp makes an old scene look like the new one: a cut's 50 levels and 71 % fell to 35 and 64 %)
            cut = cut and self._is_cut(warped_d, g, warped_g, 0.5)
            # the warped history only where it matches the input better, by a gray level or more: on flat areas
            # DIS follows noise (about 1 px on a plain gradient) and resampling along it blurs and shimmers
            better = cv2.compare(cv2.add(warped_d, 1), d, cv2.CMP_LT) > 0
            d = np.where(better, warped_d, d)
            prev_out = np.where(better[..., None] if prev_out.ndim == 3 else better, warped_out, prev_out)
        if cut:
            self._prev_gray, self._prev_out = g, out.astype(np.float32)
            return out
        if self._lut is None:  # the input gate per gray-level change (d is uint8): one table look-up per pixel
            self._lut = (self.strength * np.clip(1.0 - np.arange(256, dtype=np.float32) / self.threshold, 0.0, 1.0)
                         ).astype(np.float32)
        w = cv2.LUT(d, self._lut)
        res = out.astype(np.float32)
        delta = prev_out - res
        change = cv2.GaussianBlur(delta, (5, 5), 0)  # zero-mean flicker cancels, content stays
        np.abs(change, out=change)
        if change.ndim == 3:  # the largest channel's (per-channel planes: numpy's max over channels is 15x slower,
            planes = cv2.split(change)  # OpenCV's reduce over rows of 3 values 1.4x)
            change = functools.reduce(cv2.max, planes[1:], planes[0])
        w *= np.clip(1.0 - change * (1.0 / self.out_threshold), 0.0, 1.0)
        if out.ndim == 3:  # w on every channel: OpenCV's multiply by a merged weight is 3-5x numpy's broadcast
            cv2.multiply(delta, cv2.merge([w] * out.shape[2]), dst=delta)
        else:
            delta *= w
        res += delta
        self._prev_gray, self._prev_out = g, res
        # rounded and saturated to uint8 (res is in 0..255: abs does nothing); OpenCV drops a 1-channel axis
        return cv2.convertScaleAbs(res).reshape(out.shape)

    def _is_cut(self, d: np.ndarray, g: np.ndarray, prev_g: np.ndarray, level: float = 1.0) -> bool:
        """A scene cut: a large mean change, or most of the picture changed by `threshold` or more. The share
        counts the picture only, pixels brighter than black (LETTERBOX_LEVEL) in either frame, when they are over
        a quarter of the frame: letterbox or pillarbox bars never change, and a cut between two wide scenes used
        to change 52 % of the whole frame, under the 60 % that resets. `level` scales both limits."""
        hist = cv2.calcHist([d], [0], None, [256], [0, 256]).ravel()
        if float(hist @ _LEVELS) / d.size > self.scene_cut * level:
            return True
        changed = float(hist[int(np.ceil(self.threshold)):].sum())  # (none over 255)
        limit = self.scene_cut_share * level
        if changed / d.size > limit:
            return True
        if changed / d.size * 4 <= limit:  # not a cut even if the picture were the least it may be, a quarter
            return False
        top, bottom, left, right = _static_bars(g, prev_g)
        inner = cv2.max(g, prev_g)[top:g.shape[0] - bottom, left:g.shape[1] - right]
        picture = cv2.countNonZero(cv2.compare(inner, LETTERBOX_LEVEL, cv2.CMP_GT)) if inner.size else 0
        area = picture if picture > d.size // 4 else inner.size if inner.size > d.size // 4 else d.size
        return changed / area > limit

    def _warp(self, g: np.ndarray, prev_g: np.ndarray,
              prev_out: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """Warp the previous gray frame and output onto the current frame (DIS flow at reduced size); None for a
        frame too small or thin for flow (smoothed as without it: a 1x1 frame's OpenCV arithmetic, which takes a
        1x1 array for a scalar, raised a ValueError in the flow's steps)."""
        h, w = g.shape
        scale = min(1.0, self.flow_long_side / max(h, w))
        sw, sh = max(8, round(w * scale)), max(8, round(h * scale))
        if min(h, w, sw, sh) < MIN_FLOW_SIDE:  # DIS fails on tiny or very thin frames; no flow to find there
            return None
        small_cur = cv2.resize(g, (sw, sh), interpolation=cv2.INTER_AREA) if scale < 1 else g
        small_prev = cv2.resize(prev_g, (sw, sh), interpolation=cv2.INTER_AREA) if scale < 1 else prev_g
        if self._dis is None:
            self._dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST)
        flow = self._dis.calc(small_cur, small_prev, None)  # cur(x) ~ prev(x + flow(x))
        if scale < 1:  # in full-size pixels; x and y scale apart (the small size was rounded per axis)
            flow[..., 0] *= np.float32(w / sw)
            flow[..., 1] *= np.float32(h / sh)
        # DIS follows sensor noise on flat areas (0.75 px at the 95th percentile on a still sky): resampling the
        # history along it every frame blurred still scenes and made them flicker more than without flow
        flow[cv2.magnitude(flow[..., 0], flow[..., 1]) < self.min_flow] = 0
        if scale < 1:
            flow = cv2.resize(flow, (w, h), interpolation=cv2.INTER_LINEAR)
        if self._grid is None or self._grid[0].shape != (h, w):  # pixel coordinates, made once per size
            self._grid = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
        gx, gy = self._grid
        mx, my = gx + flow[..., 0], gy + flow[..., 1]
        warped_g = cv2.remap(prev_g, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        warped_out = cv2.remap(prev_out, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        return warped_g, warped_out


@dataclass
class FlickerMeter:
    """Streaming flicker index: feed (input, output) frame pairs in order, read `.value`. `step` > 1 measures
    every step-th pixel of every step-th row only (the pipeline's live figure: a regular sample of the same
    per-pixel changes, at 1/step² of the cost)."""

    out_change: float = 0.0
    in_change: float = 0.0
    pairs: int = 0
    step: int = 1
    _prev: tuple[np.ndarray, np.ndarray] | None = field(default=None, repr=False)

    def update(self, inp: np.ndarray, out: np.ndarray) -> None:
        if self.step > 1:
            inp, out = inp[::self.step, ::self.step], out[::self.step, ::self.step]
        i, o = _frame(inp), _frame(out)
        if self._prev is not None and self._prev[0].shape == i.shape and self._prev[1].shape == o.shape:
            self.in_change += _mean_abs_change(i, self._prev[0])
            self.out_change += _mean_abs_change(o, self._prev[1])
            self.pairs += 1
        self._prev = (i, o)

    @property
    def output_change(self) -> float:
        """Mean |out_t - out_{t-1}| per frame step (gray levels)."""
        return self.out_change / self.pairs if self.pairs else 0.0

    @property
    def value(self) -> float:
        if not self.pairs:
            raise ValueError("the flicker index needs at least two frames")
        return self.out_change / max(self.in_change, 1e-6)


def _frame(img: np.ndarray) -> np.ndarray:
    """A frame as the meter keeps it, always a copy (a caller may fill the same buffer with the next frame): uint8
    as it is (OpenCV's exact |a - b| then works on it: 7x faster than in float), anything else as float32."""
    return np.array(img, order="C", copy=True) if img.dtype == np.uint8 else img.astype(np.float32)


def _mean_abs_change(a: np.ndarray, b: np.ndarray) -> float:
    """mean |a - b| over every value (uint8: exact, by OpenCV; float: numpy)."""
    if a.dtype == np.uint8 and b.dtype == np.uint8 and a.ndim <= 3 and (a.ndim < 3 or a.shape[2] <= 4):
        means = cv2.mean(cv2.absdiff(a, b))
        channels = a.shape[2] if a.ndim == 3 else 1
        return float(sum(means[:channels]) / channels)
    return float(np.abs(a.astype(np.float32) - b.astype(np.float32)).mean())


def flicker_index(inputs: Iterable[np.ndarray], outputs: Iterable[np.ndarray]) -> float:
    """mean |out_t - out_{t-1}| / mean |in_t - in_{t-1}| over a clip (lower = less flicker)."""
    meter = FlickerMeter()
    for i, o in zip(inputs, outputs, strict=True):
        meter.update(i, o)
    return meter.value
