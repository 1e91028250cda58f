"""A photo smaller than the crop was upscaled whole before cropping: a 3000x1 photo with `--preprocess crop
--size 1024` asked OpenCV for 9.4 GB (a traceback, or swap). Only the square that the crop takes is upscaled."""
from __future__ import annotations

import tracemalloc

import numpy as np

from cgan.trainer.data import Transform


def test_a_thin_photo_is_cropped_without_upscaling_all_of_it():
    thin = np.full((1, 3000, 3), 128, np.uint8)
    t = Transform("crop", size=1024, flip=False)
    tracemalloc.start()
    try:
        out = t(thin, np.random.default_rng(0))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert out.shape == (1024, 1024, 3) and (out == 128).all()
    assert peak < 64 << 20, f"{peak / 2**20:.0f} MiB for one 1024x1024 crop"


def test_the_crop_of_a_small_photo_is_a_square_of_its_shorter_side_upscaled():
    # columns numbered 0..39: the crop spans 10 consecutive columns of the original, upscaled to 20x20
    img = np.repeat(np.repeat(np.arange(40, dtype=np.uint8)[None, :, None], 10, 0), 3, 2) * 5
    t = Transform("crop", size=20, flip=False)
    for seed in range(5):
        out = t(img, np.random.default_rng(seed))
        assert out.shape == (20, 20, 3)
        cols = out[0, :, 0].astype(int) // 5
        assert cols.max() - cols.min() <= 10 and (np.diff(cols) >= 0).all()
    centre = t(img, None)  # samples: the centre square
    assert abs(int(centre[0, 10, 0]) // 5 - 20) <= 1


def test_a_strip_enlarged_past_the_frame_limit_is_refused_at_the_size_it_becomes():
    """--preprocess none enlarges a short side to min_side (24 for the default discriminator) after the pixel
    check: a 3 x 1,000,000 strip (3 MP) became a 24 x 1,000,000 input (24 MP, over the 4096x4096 limit) and took
    minutes of CPU per step; a 1 x 16M one would run out of memory."""
    import pytest

    from cgan.errors import CganError

    strip = np.zeros((3, 1_000_000, 3), np.uint8)
    with pytest.raises(CganError, match="1000000x24 after --preprocess none"):
        Transform("none", min_side=24)(strip)
    assert Transform("none", min_side=24)(np.zeros((3, 4000, 3), np.uint8)).shape == (24, 4000, 3)
