"""A flat --parity-image (a 1x1 PNG, a constant frame) made the parity check fail with max error 1.45 and "report
a bug": instance norm over a flat image amplifies rounding noise. Such an image is refused as a parity input; one
flat in any colour channel too (a solid red: its spread across channels passed the check, and parity failed).
A 1x300 line is cropped to one pixel's worth: flat too."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from cgan.errors import CganError
from cgan.export.parity import MIN_PHOTO_STD, parity_frames


@pytest.mark.parametrize("img", [np.full((1, 1, 3), 128, np.uint8), np.full((64, 64, 3), 30, np.uint8),
                                 np.dstack([np.full((40, 40), v, np.uint8) for v in (10, 11, 12)]),
                                 np.dstack([np.full((40, 40), v, np.uint8) for v in (10, 50, 200)]),  # solid red
                                 np.random.default_rng(1).integers(0, 256, (1, 300, 3), dtype=np.uint8)])  # a line
def test_flat_images_are_refused(tmp_path, img):
    p = tmp_path / "flat.png"
    cv2.imwrite(str(p), img)
    with pytest.raises(CganError, match="nearly uniform"):
        parity_frames(((32, 32),), p)


def test_a_photo_like_image_is_taken(tmp_path):
    rng = np.random.default_rng(0)
    img = cv2.GaussianBlur(rng.integers(0, 256, (80, 120, 3), dtype=np.uint8), (5, 5), 0)
    p = tmp_path / "photo.png"
    cv2.imwrite(str(p), img)
    frames, label = parity_frames(((32, 48),), p)
    assert frames[0].shape == (32, 48, 3) and label.startswith("photo.png (sha256 ") and frames[0].std() >= MIN_PHOTO_STD
