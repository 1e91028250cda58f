"""HDR video (HLG, PQ / HDR10 in BT.2020) tone mapped to the SDR BT.709 pictures the generators were trained on.

An iPhone records HLG by default. Read as SDR, its values come out flat and pale and its colours muted (BT.2020
primaries shown as BT.709), and the translation shows it. `ToneMap` turns a decoded frame's 16-bit non-linear
BT.2020 RGB into 8-bit BT.709 BGR, display-referred (as BT.2408 maps HDR to SDR):

1. the transfer undone to display light in nits: PQ's EOTF (SMPTE ST 2084), or HLG's inverse OETF and its OOTF
   for a 1000-nit display (system gamma 1.2, on the BT.2020 luminance);
2. HDR reference white (203 nits, BT.2408) made SDR white, 1.0; BT.2020 primaries to BT.709 (out-of-gamut
   colours clipped at 0);
3. highlights above `KNEE` (of SDR white) rolled off smoothly towards 1.0 on each pixel's largest channel, so the
   hue is kept and nothing clips hard (the curve has slope 1 at the knee and never reaches 1.0);
4. encoded for an SDR display (BT.1886: the 2.4 power undone), 8 bits.

Numpy and OpenCV only (no torch, no PyAV: the caller decodes). 40-48 ms a 720p frame on the 2-core VM. Used
where OpenCV does not make HDR SDR itself (OpenCV 4; OpenCV 5 does: cgan.runtime.pyav.opencv_manages_colour).
"""
from __future__ import annotations

import functools

import cv2
import numpy as np

#: SMPTE ST 2084 (PQ) constants
_M1, _M2 = 2610 / 16384, 2523 / 4096 * 128
_C1, _C2, _C3 = 3424 / 4096, 2413 / 4096 * 32, 2392 / 4096 * 32
#: ARIB STD-B67 / BT.2100 HLG constants
_A = 0.17883277
_B = 1 - 4 * _A
_C = 0.5 - _A * np.log(4 * _A)
HLG_PEAK_NITS = 1000.0  # the display HLG's OOTF is applied for (its nominal peak; system gamma 1.2)
HLG_GAMMA = 1.2
REFERENCE_WHITE_NITS = 203.0  # BT.2408: HDR reference (diffuse) white, shown as SDR white
KNEE = 0.75  # of SDR white (linear): where the highlight roll-off starts
#: BT.2020 luminance weights (HLG's OOTF) and the BT.2020 -> BT.709 primaries matrix (linear light, BT.2087)
_Y2020 = np.array([0.2627, 0.6780, 0.0593], np.float32)
_BT2020_TO_709 = np.array([[1.6604910, -0.5876411, -0.0728499],
                           [-0.1245505, 1.1328999, -0.0083494],
                           [-0.0181508, -0.1005789, 1.1186297]], np.float32)
TRANSFERS = ("HLG", "PQ / HDR10")  # as cgan.runtime.pyav.HDR_TRANSFERS names them
_LUT_BITS = 12  # the decoded 16-bit values are looked up by their top 12 bits (sources have 10 or 12)


def pq_to_nits(signal: np.ndarray) -> np.ndarray:
    """PQ's EOTF: non-linear signal 0..1 -> display light in nits (0..10000)."""
    e = np.power(np.clip(signal, 0.0, 1.0), 1 / _M2)
    return 10000.0 * np.power(np.maximum(e - _C1, 0.0) / (_C2 - _C3 * e), 1 / _M1)


def hlg_to_scene(signal: np.ndarray) -> np.ndarray:
    """HLG's inverse OETF: non-linear signal 0..1 -> scene light 0..1."""
    s = np.clip(signal, 0.0, 1.0)
    return np.where(s <= 0.5, s * s / 3.0, (np.exp((s - _C) / _A) + _B) / 12.0)


def roll_off(m: np.ndarray) -> np.ndarray:
    """The highlight curve on linear light relative to SDR white: identity up to KNEE, then an exponential
    approach to 1.0 with slope 1 at the knee (monotonic, never clipping)."""
    room = 1.0 - KNEE
    return np.where(m <= KNEE, m, KNEE + room * (1.0 - np.exp(-(m - KNEE) / room)))


_OUT_LEVELS = 1 << 20  # linear light quantized this finely for the encoding look-up (8-bit code 1 is 1.7e-6)


@functools.lru_cache(maxsize=1)
def _encoded() -> np.ndarray:
    """8-bit SDR codes of linear light 0..1 in _OUT_LEVELS steps: BT.1886's 2.4 power undone (a look-up is 5x
    faster than the power on each value)."""
    return np.round(255.0 * np.power(np.linspace(0.0, 1.0, _OUT_LEVELS), 1 / 2.4)).astype(np.uint8)


class ToneMap:
    """`tm(rgb16)`: a frame's 16-bit non-linear BT.2020 RGB (HxWx3 uint16, full range, as FFmpeg converts the
    decoded YUV) -> 8-bit BT.709 BGR for an SDR display. `transfer`: "HLG" or "PQ / HDR10"."""

    def __init__(self, transfer: str):
        if transfer not in TRANSFERS:
            raise ValueError(f"no tone mapping for transfer {transfer!r}; known: {', '.join(TRANSFERS)}")
        self.transfer = transfer
        levels = (np.arange(1 << _LUT_BITS, dtype=np.float64) + 0.5) / (1 << _LUT_BITS)
        if transfer == "HLG":
            self._lut = hlg_to_scene(levels).astype(np.float32)  # the OOTF needs the luminance: in __call__
        else:
            self._lut = (pq_to_nits(levels) / REFERENCE_WHITE_NITS).astype(np.float32)

    def __call__(self, rgb16: np.ndarray) -> np.ndarray:
        if rgb16.dtype != np.uint16 or rgb16.ndim != 3 or rgb16.shape[2] != 3:
            raise ValueError(f"ToneMap takes HxWx3 uint16 RGB, got {rgb16.dtype} {rgb16.shape}")
        light = self._lut[rgb16 >> (16 - _LUT_BITS)]  # linear, BT.2020 primaries
        # Every later step scales a pixel's three channels alike, so one gain per pixel does them all: HLG's OOTF
        # (on the scene luminance) and the highlight roll-off (on the largest channel, after the primaries).
        gain = None
        if self.transfer == "HLG":
            ys = np.maximum(cv2.transform(light, _Y2020[None, :]).reshape(light.shape[:2]), 1e-6)  # scene luminance
            gain = np.power(ys, np.float32(HLG_GAMMA - 1.0)) * np.float32(HLG_PEAK_NITS / REFERENCE_WHITE_NITS)
        light = cv2.transform(light, _BT2020_TO_709).reshape(light.shape)
        np.maximum(light, 0.0, out=light)  # colours outside BT.709: clipped at 0
        m = np.maximum(np.maximum(light[..., 0], light[..., 1]), light[..., 2])
        if gain is not None:
            m *= gain
        scale = np.where(m > KNEE, roll_off(m) / np.maximum(m, 1e-6), np.float32(1.0)).astype(np.float32)
        if gain is not None:
            scale *= gain
        light *= scale[..., None]
        np.minimum(light, 1.0, out=light)
        codes = _encoded()[(light * np.float32(_OUT_LEVELS - 1) + np.float32(0.5)).astype(np.int32)]
        return np.ascontiguousarray(codes[:, :, ::-1])
