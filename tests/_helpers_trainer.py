"""Tiny synthetic data and configs for the trainer tests (no real photos needed)."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from cgan.trainer.config import TrainConfig


def make_images(folder: Path, n: int, color: tuple[int, int, int], seed: int, size: tuple[int, int] = (40, 44),
                shape: str = "circle") -> Path:
    """n PNGs of a colored shape on a dark background, at random places (structure to learn, not noise)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    h, w = size
    for i in range(n):
        img = np.full((h, w, 3), 25, np.uint8)
        cx, cy, r = int(rng.integers(10, w - 10)), int(rng.integers(10, h - 10)), int(rng.integers(5, 9))
        if shape == "circle":
            cv2.circle(img, (cx, cy), r, color, -1)
        else:
            cv2.rectangle(img, (cx - r, cy - r), (cx + r, cy + r), color, -1)
        cv2.imwrite(str(folder / f"img {i:02d}.png"), img)
    return folder


def make_dataset(root: Path, n_x: int = 4, n_y: int = 3) -> Path:
    make_images(root / "trainA", n_x, (40, 200, 60), seed=1, shape="circle")
    make_images(root / "trainB", n_y, (200, 60, 40), seed=2, shape="square")
    return root


def tiny_config(root: Path, out: Path, **kw) -> TrainConfig:
    base = dict(data_a=str(root / "trainA"), data_b=str(root / "trainB"), out=str(out), name="run",
                preprocess="resize_and_crop", load_size=36, size=32, blocks=1, ngf=4, ndf=4, n_layers_d=2,
                epochs=1, epochs_decay=1, workers=0, device="cpu", log_every=2, tensorboard=False, seed=3)
    base.update(kw)
    return TrainConfig(**base)
