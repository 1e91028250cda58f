#!/usr/bin/env python
"""Make the demo input clip: a slow "Ken Burns" pan/zoom over a few summer test photos with short crossfades.

    python scripts/make_demo_clip.py                       # -> cgan/data/demo/yosemite_summer.mp4 + ATTRIBUTION.txt
    python scripts/make_demo_clip.py --photos DIR --out /tmp/clip.mp4 --names a.jpg --names b.jpg

Deterministic: a fixed list of photo file names (testA of summer2winter_yosemite), fixed motion, fixed codec
(mp4v). The clip is small on purpose: the README's main job translates every frame on a 2-core CPU.
"""
from __future__ import annotations

import os
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import click
import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run from a checkout without installing

from cgan._cli import entry  # noqa: E402
from cgan._files import write_bytes_atomic  # noqa: E402
from cgan.errors import CganError  # noqa: E402

DEFAULT_PHOTOS = REPO.parent / "shared" / "datasets" / "summer2winter_yosemite" / "testA"
DEFAULT_OUT = REPO / "cgan" / "data" / "demo" / "yosemite_summer.mp4"
# Chosen by eye from testA for varied, calm scenes (meadow/lake, Half Dome, lake, waterfall, valley).
DEFAULT_NAMES = (
    "2011-08-11 15_32_10.jpg",
    "2012-06-14 16_55_30.jpg",
    "2013-08-13 13_07_51.jpg",
    "2015-03-02 07_32_00.jpg",
    "2015-08-26 16_44_51.jpg",
)
ATTRIBUTION = ("Demo clip made by scripts/make_demo_clip.py from photos of the CycleGAN summer2winter_yosemite "
               "data set, Zhu et al. 2017, photos from Flickr (collected by the CycleGAN authors; no explicit "
               "image licence). Photos used (testA, summer):\n")


@dataclass
class ClipOptions:
    photos: Path = DEFAULT_PHOTOS
    names: tuple[str, ...] = DEFAULT_NAMES
    out: Path = DEFAULT_OUT
    width: int = 384
    height: int = 256
    fps: float = 12.0
    frames_per_photo: int = 16   # including the crossfade into the next photo
    crossfade: int = 4           # frames shared by two neighbouring photos
    zoom: float = 1.15           # crop shrinks by this factor over a photo (slow zoom in or out)
    attribution: bool = True
    extra: dict = field(default_factory=dict)

    def frame_count(self) -> int:
        n = len(self.names)
        return n * self.frames_per_photo - (n - 1) * self.crossfade


def _ken_burns(img: np.ndarray, t: float, k: int, width: int, height: int, zoom: float) -> np.ndarray:
    """One frame of photo `k` at time t in [0, 1]: a crop of the output's aspect, sub-pixel smooth (warpAffine)."""
    h, w = img.shape[:2]
    aspect = width / height
    cw_max = min(w, h * aspect)                 # largest crop of the output's aspect
    cw0, cw1 = (cw_max, cw_max / zoom) if k % 2 == 0 else (cw_max / zoom, cw_max)   # zoom in, then out, ...
    e = 0.5 - 0.5 * np.cos(np.pi * t)           # ease in/out: no jerk at the crossfades
    cw = cw0 + (cw1 - cw0) * e
    ch = cw / aspect
    # pan: from one side to the other along the free axis (alternate direction per photo)
    fx = (0.15 + 0.7 * e) if k % 2 == 0 else (0.85 - 0.7 * e)
    x0 = (w - cw) * fx
    y0 = (h - ch) * 0.5
    s = cw / width
    m = np.array([[s, 0.0, x0 + 0.5 * s - 0.5], [0.0, s, y0 + 0.5 * s - 0.5]], dtype=np.float64)
    return cv2.warpAffine(img, m, (width, height), flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_REFLECT)


def render_frames(images: list[np.ndarray], opts: ClipOptions) -> list[np.ndarray]:
    """All frames (BGR uint8) of the clip for already loaded photos."""
    n, fpp, xf = len(images), opts.frames_per_photo, opts.crossfade
    if n < 1 or fpp < 2 or not 0 <= xf < fpp:
        raise CganError(f"need ≥ 1 photo, frames_per_photo ≥ 2 and 0 ≤ crossfade < frames_per_photo "
                        f"(got {n}, {fpp}, {xf})")
    step = fpp - xf
    total = opts.frame_count()
    frames = []
    for i in range(total):
        layers = []
        for k in range(n):
            local = i - k * step
            if 0 <= local < fpp:
                weight = 1.0
                if k > 0 and local < xf:                    # fading in
                    weight = (local + 1) / (xf + 1)
                layers.append((k, local / (fpp - 1), weight))
        if len(layers) == 1:
            k, t, _ = layers[0]
            frames.append(_ken_burns(images[k], t, k, opts.width, opts.height, opts.zoom))
        else:
            (ka, ta, _), (kb, tb, wb) = layers[0], layers[1]
            a = _ken_burns(images[ka], ta, ka, opts.width, opts.height, opts.zoom).astype(np.float32)
            b = _ken_burns(images[kb], tb, kb, opts.width, opts.height, opts.zoom).astype(np.float32)
            frames.append(np.clip(a * (1 - wb) + b * wb + 0.5, 0, 255).astype(np.uint8))
    return frames


def make_clip(opts: ClipOptions) -> Path:
    """Write the clip (and ATTRIBUTION.txt beside it) atomically; return the clip's path."""
    if opts.width % 4 or opts.height % 4:
        raise CganError(f"clip size {opts.width}x{opts.height} must be a multiple of 4 (the generator needs it)")
    images = []
    for name in opts.names:
        p = Path(opts.photos) / name
        img = cv2.imread(str(p), cv2.IMREAD_COLOR)
        if img is None:
            raise CganError(f"cannot read photo {p}; pass --photos pointing at summer2winter_yosemite/testA")
        images.append(img)
    frames = render_frames(images, opts)
    out = Path(opts.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    # cv2 picks the container from the extension, so the temp file keeps .mp4; renamed only when complete.
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.stem}.", suffix=".mp4")
    os.close(fd)
    try:
        writer = cv2.VideoWriter(tmp, cv2.VideoWriter_fourcc(*"mp4v"), opts.fps, (opts.width, opts.height))
        if not writer.isOpened():
            raise CganError("OpenCV cannot write mp4v .mp4 here; install opencv-python-headless with FFmpeg")
        for f in frames:
            writer.write(f)
        writer.release()
        os.chmod(tmp, 0o644)
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    if opts.attribution:
        text = ATTRIBUTION + "".join(f"- {n}\n" for n in opts.names)
        text += (f"\nClip: {len(frames)} frames, {opts.width}x{opts.height}, {opts.fps:g} fps, mp4v; "
                 f"{opts.frames_per_photo} frames per photo, {opts.crossfade}-frame crossfades.\n")
        write_bytes_atomic(out.parent / "ATTRIBUTION.txt", text.encode())
    return out


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--photos", type=click.Path(path_type=Path), default=DEFAULT_PHOTOS, show_default=True,
              help="folder with the summer photos (summer2winter_yosemite/testA)")
@click.option("--names", multiple=True, help="photo file names, in order (default: the fixed demo list)")
@click.option("--out", type=click.Path(path_type=Path), default=DEFAULT_OUT, show_default=True)
@click.option("--size", default="384x256", show_default=True, help="WIDTHxHEIGHT, multiples of 4")
@click.option("--fps", type=float, default=12.0, show_default=True)
@click.option("--frames-per-photo", type=int, default=16, show_default=True)
@click.option("--crossfade", type=int, default=4, show_default=True)
def cli(photos: Path, names: tuple[str, ...], out: Path, size: str, fps: float, frames_per_photo: int,
        crossfade: int) -> None:
    """Make the demo clip from a fixed list of summer photos."""
    try:
        w, h = (int(v) for v in size.lower().split("x"))
    except ValueError:
        raise CganError(f"--size {size!r} is not WIDTHxHEIGHT, e.g. 384x256") from None
    opts = ClipOptions(photos=photos, names=tuple(names) or DEFAULT_NAMES, out=out, width=w, height=h, fps=fps,
                       frames_per_photo=frames_per_photo, crossfade=crossfade)
    path = make_clip(opts)
    click.echo(f"wrote {path} ({opts.frame_count()} frames, {path.stat().st_size / 1e6:.2f} MB)")


main = entry(cli)

if __name__ == "__main__":
    main()
