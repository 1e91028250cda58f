"""cgan-video's photo side, from the QA pass of 2026-12-03."""
from __future__ import annotations

import logging

import cv2
import numpy as np

from cgan.runtime.photos import PhotoJob, run_photos

from _helpers_video import Invert

QUIET = dict(progress=False, handle_signals=False)


class Counting(Invert):
    calls = 0

    def translate_batch(self, frames):
        Counting.calls += 1
        return super().translate_batch(frames)


def test_transparency_into_a_format_without_it_is_warned(tmp_path, caplog):
    """An RGBA PNG into .jpg lost its alpha without a word, and what lay under its transparent pixels showed."""
    for name in ("a.png", "b.png"):
        rgba = np.dstack([np.full((16, 24, 3), 90, np.uint8), np.r_[np.zeros((8, 24)), np.full((8, 24), 255)]
                          .astype(np.uint8)])
        cv2.imwrite(str(tmp_path / name), rgba)
    with caplog.at_level(logging.WARNING):
        s = run_photos(PhotoJob(inputs=[str(tmp_path / "a.png"), str(tmp_path / "b.png")], output=str(tmp_path / "o"),
                                **QUIET), translator=Invert())
    assert s.photos == 2 and not s.failed
    assert not any("transparency" in r.getMessage() for r in caplog.records)  # (into a folder: .png kept)
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        s = run_photos(PhotoJob(inputs=[str(tmp_path / "a.png")], output=str(tmp_path / "a.jpg"), **QUIET),
                       translator=Invert())
    said = [r.getMessage() for r in caplog.records if "without transparency" in r.getMessage()]
    assert s.photos == 1 and len(said) == 1 and ".jpg is written without transparency" in said[0], said
    assert "write .png, .webp" in said[0] and ".tif" in said[0]
    # a GIF could hold 1-bit transparency, but OpenCV's writer keeps none: said so (it said '.gif holds no
    # transparency', which is not true of GIF; QA)
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        run_photos(PhotoJob(inputs=[str(tmp_path / "a.png")], output=str(tmp_path / "a.gif"), **QUIET),
                   translator=Invert())
    said = [r.getMessage() for r in caplog.records if "transparency" in r.getMessage()]
    assert len(said) == 1 and ".gif is written without transparency" in said[0], said


def test_a_photo_too_large_for_its_output_format_is_refused_before_its_translation(tmp_path, caplog):
    """A 70000x1 PNG into .jpg (at most 65535 a side) was translated (7 s here) and then refused."""
    cv2.imwrite(str(tmp_path / "w.png"), np.full((1, 70000, 3), 100, np.uint8))
    cv2.imwrite(str(tmp_path / "s.png"), np.full((8, 9000, 3), 100, np.uint8))
    Counting.calls = 0
    s = run_photos(PhotoJob(inputs=[str(tmp_path / "w.png")], output=str(tmp_path / "w.jpg"), **QUIET),
                   translator=Counting())
    assert s.photos == 0 and "too large for .jpg (at most 65535" in s.failed[0]["reason"]
    # --side-by-side doubles the width: 2 x 9000 is over WebP's 16383
    s = run_photos(PhotoJob(inputs=[str(tmp_path / "s.png")], output=str(tmp_path / "s.webp"), side_by_side=True,
                            **QUIET), translator=Counting())
    assert s.photos == 0 and "18000x8 is too large for .webp" in s.failed[0]["reason"]
    assert Counting.calls == 0


def test_photojob_takes_numpys_bools_as_videojob_does(tmp_path):
    """docs/video.md: 'PhotoJob checks its fields as VideoJob does'; numpy's True was refused by PhotoJob
    ('progress must be True or False, got bool np.True_') and taken by VideoJob."""
    import pytest

    from cgan.errors import CganError

    job = PhotoJob(inputs=[str(tmp_path)], output=str(tmp_path / "o"), progress=np.True_, side_by_side=np.False_,
                   handle_signals=np.False_)
    assert job.progress is True and job.side_by_side is False and job.handle_signals is False
    with pytest.raises(CganError, match="progress must be True or False, got"):
        PhotoJob(inputs=[str(tmp_path)], output=str(tmp_path / "o"), progress=1)
