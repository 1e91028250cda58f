"""Clips whose track header turns or mirrors the picture (phones' portrait clips, front cameras' mirrored ones) are
translated as players show them. OpenCV reads a rotation angle only: a mirrored clip came out turned 180 degrees
(left-right mirror) or not turned at all (upside down); such clips are read with PyAV, which applies the whole
display matrix."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from cgan.runtime import pyav
from cgan.runtime.sources import open_source
from cgan.runtime.video import VideoJob, run_video

from _helpers_video import DISPLAY_MATRICES, Invert, with_display_matrix

pytest.importorskip("av")

#: what a player shows of an upright picture `img` under each display matrix
SHOWN = {"quarter clockwise": lambda img: np.rot90(img, -1), "quarter counter-clockwise": lambda img: np.rot90(img, 1),
         "half turn": lambda img: np.rot90(img, 2), "mirrored": lambda img: img[:, ::-1],
         "upside down": lambda img: img[::-1], "transposed": lambda img: img.swapaxes(0, 1),
         "anti-transposed": lambda img: np.rot90(img, 2).swapaxes(0, 1)}
MIRRORED = {"mirrored", "upside down", "transposed", "anti-transposed"}


def corner_frame(width: int = 64, height: int = 48) -> np.ndarray:
    """A picture none of the eight turns and mirrorings leaves alike: gradients across and down, a white corner
    at the top left."""
    img = np.zeros((height, width, 3), np.uint8)
    img[:, :, 2] = np.linspace(0, 250, width)[None, :]
    img[:, :, 1] = np.linspace(0, 250, height)[:, None]
    img[:10, :10] = 255
    return img


def corner_clip(path: Path, frames: int = 4) -> Path:
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 12, (64, 48))
    for _ in range(frames):
        w.write(corner_frame())
    w.release()
    return path


def close(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean()) < 8


def test_the_eight_orientations_are_told_apart():
    img = corner_frame()
    shown = {name: f(img) for name, f in SHOWN.items()} | {"upright": img}
    for name, a in shown.items():
        assert sum(close(a, b) for b in shown.values()) == 1, name


@pytest.mark.parametrize("name", sorted(DISPLAY_MATRICES))
def test_display_orientation_is_what_a_player_shows(name):
    a, b, c, d = DISPLAY_MATRICES[name]
    how = pyav.display_orientation([a << 16, b << 16, 0, c << 16, d << 16, 0, 0, 0, 1 << 30])
    img = corner_frame()
    assert np.array_equal(pyav.oriented(img, how), SHOWN[name](img))
    assert (sum(how) % 2 == 1) == (name in MIRRORED)


@pytest.mark.parametrize("name", sorted(DISPLAY_MATRICES))
def test_a_turned_or_mirrored_clip_is_read_as_a_player_shows_it(tmp_path, name):
    clip = with_display_matrix(corner_clip(tmp_path / "in.mp4"), tmp_path / "shown.mp4", DISPLAY_MATRICES[name])
    assert pyav.probe(clip).mirrored == (name in MIRRORED)
    src = open_source(str(clip))
    try:
        frames = []
        while (f := src.read()) is not None:
            frames.append(f)
    finally:
        src.close()
    assert len(frames) == 4
    expected = SHOWN[name](corner_frame())
    assert all(close(f, expected) for f in frames), name
    if name in MIRRORED:
        assert isinstance(src, pyav.FileSource)  # OpenCV would have turned it


def test_a_front_cameras_mirrored_clip_is_translated_mirrored(tmp_path):
    clip = with_display_matrix(corner_clip(tmp_path / "in.mp4"), tmp_path / "selfie.mp4",
                               DISPLAY_MATRICES["mirrored"])
    out = tmp_path / "out.mp4"
    s = run_video(VideoJob(inputs=[str(clip)], output=str(out), display=False, progress=False,
                           handle_signals=False), translator=Invert())
    assert s.frames == 4
    cap = cv2.VideoCapture(str(out))
    _, first = cap.read()
    cap.release()
    assert close(first, 255 - corner_frame()[:, ::-1])  # mirrored, not turned upside down, and written so
