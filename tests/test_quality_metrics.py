"""FID / KID / PSNR math and the sample grid (numpy only, synthetic data)."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from cgan.benchmarks.quality import (fid_from_features, frechet_distance, kid_from_features, make_grid,
                                     polynomial_mmd2_unbiased, save_grid_png)
from cgan.errors import CganError
from cgan.export.parity import psnr


def _feats(seed: int, n: int = 200, d: int = 16, shift: float = 0.0) -> np.ndarray:
    """Samples of one fixed correlated Gaussian (mixing matrix from seed 99), drawn with `seed`, plus `shift`."""
    mix = np.random.default_rng(99).normal(size=(d, d)) / np.sqrt(d)
    return np.random.default_rng(seed).normal(size=(n, d)) @ mix + shift


def _direct_fid(f1: np.ndarray, f2: np.ndarray) -> float:
    """Independent reference: Tr((S1 S2)^½) as Σ sqrt of the (real, non-negative) eigenvalues of S1 @ S2."""
    mu1, mu2 = f1.mean(0), f2.mean(0)
    s1, s2 = np.cov(f1, rowvar=False), np.cov(f2, rowvar=False)
    ev = np.linalg.eigvals(s1 @ s2)
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.sqrt(np.clip(ev.real, 0, None)).sum())


def test_fid_of_identical_sets_is_zero():
    f = _feats(0)
    assert abs(fid_from_features(f, f)) < 1e-6


def test_fid_of_shifted_set_is_the_squared_shift():
    f = _feats(1)
    shift = np.zeros(f.shape[1])
    shift[3] = 2.0
    # same covariance, means 2 apart along one axis -> FID = 4
    assert fid_from_features(f, f + shift) == pytest.approx(4.0, rel=1e-6)


def test_fid_matches_direct_computation():
    a, b = _feats(2), _feats(3, shift=0.3) * 1.5
    assert fid_from_features(a, b) == pytest.approx(_direct_fid(a, b), rel=1e-6)
    assert fid_from_features(a, b) > 1.0


def test_frechet_distance_closed_form_for_diagonal_gaussians():
    s1, s2 = np.diag([1.0, 4.0, 9.0]), np.diag([4.0, 1.0, 1.0])
    mu1, mu2 = np.zeros(3), np.array([1.0, 0.0, 2.0])
    # diagonal: Σ (sqrt(a) - sqrt(b))² + |Δμ|²
    want = 5.0 + (1 - 2) ** 2 + (2 - 1) ** 2 + (3 - 1) ** 2
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(want, rel=1e-9)


def test_fid_rejects_mismatched_inputs():
    with pytest.raises(CganError):
        frechet_distance(np.zeros(3), np.eye(3), np.zeros(4), np.eye(4))
    with pytest.raises(CganError):
        fid_from_features(np.zeros((1, 4)), np.zeros((5, 4)))


def _direct_mmd2(x: np.ndarray, y: np.ndarray) -> float:
    d = x.shape[1]
    k = lambda a, b: (a @ b / d + 1.0) ** 3  # noqa: E731
    m, n = len(x), len(y)
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(n)) / (m * n)
    return float(xx + yy - 2 * xy)


def test_polynomial_mmd_matches_direct_loop():
    x, y = _feats(4, n=12, d=5), _feats(5, n=9, d=5, shift=0.5)
    assert polynomial_mmd2_unbiased(x, y) == pytest.approx(_direct_mmd2(x, y), rel=1e-9)


def test_kid_full_subset_equals_mmd_and_detects_shift():
    x, y = _feats(6, n=30, d=8), _feats(7, n=30, d=8)
    mean, std = kid_from_features(x, y, subsets=3, subset_size=30)
    assert mean == pytest.approx(polynomial_mmd2_unbiased(x, y), rel=1e-9)  # a full subset is a permutation
    assert std == pytest.approx(0.0, abs=1e-12)
    a = _feats(9, n=300, d=8)
    same, _ = kid_from_features(a, _feats(10, n=300, d=8), subsets=10, subset_size=200)
    shifted, _ = kid_from_features(a, _feats(10, n=300, d=8, shift=1.0), subsets=10, subset_size=200)
    assert shifted > 1.0 and abs(same) < 0.05 * shifted


def test_psnr_known_values():
    a = np.zeros((4, 4), np.uint8)
    b = a.copy()
    assert psnr(a, b, peak_to_peak=255.0) == float("inf")
    b[0, 0] = 16  # mse = 256/16 = 16 -> 10 log10(255² / 16)
    assert psnr(a, b, peak_to_peak=255.0) == pytest.approx(10 * np.log10(255.0 ** 2 / 16), rel=1e-12)
    assert psnr(np.zeros(8), np.full(8, 0.02), peak_to_peak=2.0) == pytest.approx(20 * np.log10(2 / 0.02))
    with pytest.raises(CganError):
        psnr(np.zeros(3), np.zeros(4))


def _tiles(n: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (40, 40, 3), dtype=np.uint8) for _ in range(n)]


def test_grid_shape_and_placement():
    rows = [_tiles(3, s) for s in range(2)]
    grid = make_grid(rows, ["a", "b"], tile=32, gap=4, label_width=50)
    assert grid.shape == (2 * 32 + 3 * 4, 50 + 3 * 32 + 4 * 4, 3) and grid.dtype == np.uint8
    want = cv2.resize(rows[1][2], (32, 32), interpolation=cv2.INTER_AREA)
    y, x = 4 + 1 * 36, 50 + 4 + 2 * 36
    assert np.array_equal(grid[y:y + 32, x:x + 32], want)
    with pytest.raises(CganError):
        make_grid([_tiles(2, 0), _tiles(3, 1)], ["a", "b"])


def test_grid_png_respects_size_budget(tmp_path):
    rows = [_tiles(4, s) for s in range(6)]
    out = tmp_path / "grid.png"
    info = save_grid_png(rows, list("abcdef"), out, max_bytes=200_000, tile=192)
    assert out.stat().st_size == info["bytes"] <= 200_000
    assert info["tile"] < 192  # random noise does not compress: it had to shrink
    img = cv2.imread(str(out))
    assert img.shape[:2] == tuple(info["shape"][:2])
    with pytest.raises(CganError):
        save_grid_png(rows, list("abcdef"), tmp_path / "no.png", max_bytes=1000)
    assert not (tmp_path / "no.png").exists()
