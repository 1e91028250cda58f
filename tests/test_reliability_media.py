"""Bad media and odd frames through the Translator and cgan-video, as docs/runtime.md and docs/video.md promise.

Random bytes named .mp4, zero-frame videos and a size change mid-stream are covered by tests/test_video_*.py
(see docs/RELIABILITY.md); here: extreme sizes, every input dtype/channel layout, NaN/out-of-range floats, and a
property-based test of the Translator's input checks (random shapes/dtypes/ranges -> a same-size BGR uint8
frame or a CganError, never another exception).
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from _helpers_runtime import make_export, make_pair
from cgan.errors import CganError
from cgan.runtime import Translator


@pytest.fixture(scope="module")
def translator(tmp_path_factory):
    root = tmp_path_factory.mktemp("rel_media")
    export = make_export(make_pair(root / "pair", blocks=1, ngf=4), root / "export")
    with Translator.load(str(export), backend="ort-cpu", threads=1) as t:
        yield t


def assert_frame(out, h, w):
    assert isinstance(out, np.ndarray) and out.dtype == np.uint8 and out.shape == (h, w, 3), \
        (getattr(out, "dtype", None), getattr(out, "shape", None))


def test_one_by_one_and_thin_frames(translator):
    for h, w in [(1, 1), (1, 37), (37, 1), (2, 3), (15, 17)]:
        assert_frame(translator.translate(np.full((h, w, 3), 99, np.uint8)), h, w)


def test_8191_square_frame_refused_over_max_pixels_and_downscaled_with_max_side(translator):
    big = np.zeros((8191, 8191, 3), np.uint8)
    big[::7, ::5] = 200
    with pytest.raises(CganError, match="max_pixels"):
        translator.translate(big)
    # the documented way through: max_side= downscales, the result is scaled back to the input size
    small = Translator(translator.model, translator.backend, max_side=64, max_pixels=8191 * 8191)
    out = small.translate(big)
    assert_frame(out, 8191, 8191)
    del out, big


@pytest.mark.parametrize("frame", [
    np.zeros((20, 24), np.uint8),                      # gray
    np.zeros((20, 24, 1), np.uint8),                   # gray with a channel axis
    np.zeros((20, 24, 4), np.uint8),                   # BGRA
    np.full((20, 24, 3), 65535, np.uint16),            # 16 bit
    np.full((20, 24), 1000, np.uint16),                # 16 bit gray
    np.full((20, 24, 3), 0.5, np.float32),
    np.linspace(0, 1, 20 * 24 * 3).reshape(20, 24, 3),  # float64 in [0, 1]
])
def test_supported_layouts_give_bgr(translator, frame):
    assert_frame(translator.translate(frame), 20, 24)


def test_16bit_scaled_like_8bit(translator):
    rng = np.random.default_rng(0)
    f8 = rng.integers(0, 256, (24, 24, 3), dtype=np.uint8)
    assert np.array_equal(translator.translate(f8.astype(np.uint16) * 257), translator.translate(f8))


@pytest.mark.parametrize("frame, words", [
    (np.full((16, 16, 3), np.nan, np.float32), "NaN"),
    (np.full((16, 16, 3), np.inf, np.float64), "NaN or infinite"),
    (np.full((16, 16, 3), 1.5, np.float32), "[0, 1]"),
    (np.full((16, 16, 3), -0.1, np.float32), "[0, 1]"),
    (np.full((16, 16, 3), 255.0, np.float32), "divide by 255"),
    (np.zeros((16, 16, 3), np.int32), "dtype"),
    (np.zeros((16, 16, 3), np.bool_), "dtype"),
    (np.zeros((16, 16, 3), np.complex64), "dtype"),
    (np.zeros((16, 16, 2), np.uint8), "shape"),
    (np.zeros((16, 16, 3, 1), np.uint8), "shape"),
    (np.zeros((0, 16, 3), np.uint8), "empty"),
    (np.zeros((16,), np.uint8), "shape"),
    ([[0, 0, 0]], "numpy array"),
    (None, "numpy array"),
])
def test_bad_frames_are_one_line_errors(translator, frame, words):
    with pytest.raises(CganError) as e:
        translator.translate(frame)
    assert words in str(e.value) and "\n" not in str(e.value)


_dtypes = st.sampled_from([np.uint8, np.uint16, np.int8, np.int16, np.int32, np.int64, np.float16, np.float32,
                           np.float64, np.bool_])
_shapes = st.one_of(hnp.array_shapes(min_dims=2, max_dims=2, min_side=0, max_side=40),
                    st.tuples(st.integers(0, 40), st.integers(0, 40), st.sampled_from([0, 1, 2, 3, 4, 5])),
                    hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=6))


@settings(max_examples=150, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_translate_property_same_size_bgr_or_cgan_error(translator, data):
    dtype = data.draw(_dtypes)
    shape = data.draw(_shapes)
    elements = None
    if np.dtype(dtype).kind == "f":
        elements = data.draw(st.sampled_from([
            st.floats(0, 1, width=16 if dtype == np.float16 else 32),
            st.floats(allow_nan=True, allow_infinity=True, width=16 if dtype == np.float16 else 32)]))
    frame = data.draw(hnp.arrays(dtype, shape, elements=elements))
    try:
        out = translator.translate(frame)
    except CganError as e:
        assert str(e) and "\n" not in str(e)
        return
    assert frame.ndim in (2, 3)
    assert_frame(out, frame.shape[0], frame.shape[1])


@settings(max_examples=25, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(n=st.integers(1, 3), h=st.integers(1, 40), w=st.integers(1, 40), other=st.booleans())
def test_translate_batch_property(translator, n, h, w, other):
    frames = [np.full((h, w, 3), 17 * i, np.uint8) for i in range(n)]
    if other:
        frames.append(np.zeros((h + 1, w, 3), np.uint8))
        with pytest.raises(CganError, match="one size"):
            translator.translate_batch(frames)
        return
    outs = translator.translate_batch(frames)
    assert len(outs) == n
    for o in outs:
        assert_frame(o, h, w)


def test_views_strides_and_byte_orders_give_the_same_result(translator):
    """Frames as numpy views (flipped, strided, Fortran order, read-only, channel slices of BGRA, big-endian
    16 bit and float, masked arrays) translate like their contiguous copies."""
    rng = np.random.default_rng(5)
    f = rng.integers(0, 256, (40, 30, 3), dtype=np.uint8)
    ro = f.copy()
    ro.setflags(write=False)
    views = {
        "flipped": f[:, ::-1], "strided": np.repeat(f, 2, axis=1)[:, ::2], "fortran": np.asfortranarray(f),
        "read-only": ro, "bgr-of-bgra": np.dstack([f, np.full((40, 30), 255, np.uint8)])[..., :3],
        "big-endian-16": (f.astype(np.uint16) * 257).astype(">u2"), "masked": np.ma.masked_array(f),
        "big-endian-float": (f / 255.0).astype(">f4"), "big-endian-double": (f / 255.0).astype(">f8"),
        "gray-view": f[..., 1][:, ::-1],
    }
    assert {v.dtype.isnative for k, v in views.items() if k.startswith("big-endian")} == {False}
    for name, v in views.items():
        want = translator.translate(np.ascontiguousarray(np.asarray(v)).astype(v.dtype.newbyteorder("=")))
        got = translator.translate(v)
        assert np.array_equal(got, want), name
