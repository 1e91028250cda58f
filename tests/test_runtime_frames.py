"""Frame conversion, geometry and pre/post-processing of cgan.runtime.frames (numpy only, fast)."""
from __future__ import annotations

import numpy as np
import pytest

from cgan.errors import CganError
from cgan.runtime import frames as fr

rng = np.random.default_rng(0)


def test_to_bgr_uint8_passthrough_and_gray_bgra():
    bgr = rng.integers(0, 256, (5, 7, 3), dtype=np.uint8)
    assert np.array_equal(fr.to_bgr(bgr), bgr)
    gray = rng.integers(0, 256, (5, 7), dtype=np.uint8)
    out = fr.to_bgr(gray)
    assert out.shape == (5, 7, 3) and all(np.array_equal(out[..., c], gray) for c in range(3))
    assert np.array_equal(fr.to_bgr(gray[..., None]), out)
    bgra = np.concatenate([bgr, rng.integers(0, 256, (5, 7, 1), dtype=np.uint8)], axis=2)
    assert np.array_equal(fr.to_bgr(bgra), bgr)


def test_to_bgr_uint16_and_float_scaling():
    x16 = np.array([[0, 257, 65535, 128 * 257]], dtype=np.uint16)
    assert fr.to_bgr(x16)[0, :, 0].tolist() == [0, 1, 255, 128]
    xf = np.array([[0.0, 1.0, 0.5, 1 / 255]], dtype=np.float32)
    assert fr.to_bgr(xf)[0, :, 0].tolist() == [0, 255, 128, 1]


@pytest.mark.parametrize("bad, words", [
    (np.full((4, 4, 3), np.nan, np.float32), "NaN"),
    (np.full((4, 4, 3), 2.0, np.float32), "[0, 1]"),
    (np.full((4, 4, 3), -0.5, np.float64), "[0, 1]"),
    (np.zeros((4, 4, 3), bool), "dtype"),
    (np.zeros((4, 4, 3), np.int32), "dtype"),
    (np.zeros((0, 4, 3), np.uint8), "empty"),
    (np.zeros((4, 0), np.uint8), "empty"),
    (np.zeros((4, 4, 2), np.uint8), "HxW"),
    (np.zeros((2, 4, 4, 3), np.uint8), "HxW"),
    ([[1, 2], [3, 4]], "numpy array"),
])
def test_to_bgr_rejects(bad, words):
    with pytest.raises(CganError, match=None) as e:
        fr.to_bgr(bad)
    assert words in str(e.value) and "\n" not in str(e.value)


def test_plan_pad_fit_maxside_tiny():
    g = fr.plan(37, 53)
    assert g.scaled == (37, 53) and g.padded == (40, 56) and not g.resized
    assert fr.plan(1, 1).padded == (fr.MIN_SIDE, fr.MIN_SIDE)
    assert fr.plan(5, 100).padded == (16, 100)
    f = fr.plan(37, 53, "fit")
    assert f.scaled == f.padded == (36, 52) and f.resized
    m = fr.plan(1000, 500, "pad", max_side=256)
    assert m.scaled == (256, 128) and m.padded == (256, 128) and m.resized
    with pytest.raises(CganError, match="resize policy"):
        fr.plan(8, 8, "stretch")
    with pytest.raises(CganError, match="max_side"):
        fr.plan(8, 8, "pad", max_side=3)


def test_check_pixels():
    fr.check_pixels(100, 100, 10_000)
    with pytest.raises(CganError, match="max_side"):
        fr.check_pixels(101, 100, 10_000)


def test_pad_into_reflects_and_replicates():
    x = rng.integers(0, 256, (37, 53, 3), dtype=np.uint8)
    dst = np.empty((40, 56, 3), np.uint8)
    fr.pad_into(x, dst)
    assert np.array_equal(dst, np.pad(x, ((0, 3), (0, 3), (0, 0)), mode="reflect"))
    tiny = rng.integers(0, 256, (1, 1, 3), dtype=np.uint8)
    dst = np.empty((16, 16, 3), np.uint8)
    fr.pad_into(tiny, dst)
    assert (dst == tiny[0, 0]).all()
    thin = rng.integers(0, 256, (3, 30, 3), dtype=np.uint8)
    dst = np.empty((16, 32, 3), np.uint8)
    fr.pad_into(thin, dst)
    assert np.array_equal(dst, np.pad(np.pad(thin, ((0, 13), (0, 0), (0, 0)), mode="edge"),
                                      ((0, 0), (0, 2), (0, 0)), mode="reflect"))


def test_pre_post_match_reference_formulas():
    x = rng.integers(0, 256, (2, 8, 12, 3), dtype=np.uint8)
    nchw = fr.bgr_to_nchw(x, np.empty((2, 3, 8, 12), np.float32))
    ref = x[..., ::-1].transpose(0, 3, 1, 2).astype(np.float32) / 127.5 - 1.0
    np.testing.assert_allclose(nchw, ref, atol=1e-6)
    back = fr.nchw_to_bgr(nchw.copy(), np.empty_like(x))
    assert np.array_equal(back, x)  # exact round trip of the 256 levels
    y = np.array([-2.0, -1.0, 0.0, 0.999, 5.0, np.float32(-1 + 0.6 / 127.5)], np.float32).reshape(1, 1, 1, 6)
    y = np.repeat(y, 3, axis=1)
    out = fr.nchw_to_bgr(y, np.empty((1, 1, 6, 3), np.uint8))
    assert out[0, 0, :, 0].tolist() == [0, 0, 128, 255, 255, 1]


def test_buffers_reuse_per_shape():
    b = fr.Buffers()
    a1 = b.get("x", (2, 3), np.float32)
    assert b.get("x", (2, 3), np.float32) is a1
    assert b.get("x", (2, 4), np.float32) is not a1
    assert b.get("x", (2, 3), np.uint8) is not a1


def test_masked_arrays_with_masked_pixels_are_refused_and_others_are_their_data():
    """A float masked array's checks skipped its masked cells while the conversion read them: a NaN under the mask
    reached the model as an undefined byte (with numpy's cast warning), 300.0 was clipped to 255 without a word."""
    data = np.full((6, 8, 3), 0.5, np.float32)
    data[3, 3, 0] = np.nan
    masked = np.ma.masked_array(data, mask=np.isnan(data))
    with pytest.raises(CganError, match=r"^the frame is a masked array with masked pixels.*frame\.filled\(0\)\)$"):
        fr.to_bgr(masked)
    clean = np.ma.masked_array(np.full((6, 8, 3), 0.5, np.float32), mask=False)
    assert np.array_equal(fr.to_bgr(clean), fr.to_bgr(clean.data))
    with pytest.raises(CganError, match="float frames must be in"):
        fr.to_bgr(np.ma.masked_array(np.full((6, 8, 3), 300.0, np.float32), mask=False))
