"""Unaligned image folders (trainA = domain X, trainB = domain Y) and the official preprocessing.

Every random choice of an item (which Y image goes with which X image, crop offsets, flips) is a pure
function of (seed, epoch, position in the epoch). A resumed run therefore sees exactly the batches it would
have seen without stopping, whatever the number of DataLoader workers.

Images are read with OpenCV (IMREAD_UNCHANGED, so 16-bit PNG/TIFF keep their depth until we scale them):
grayscale, gray+alpha, RGBA and 16-bit images become 8-bit RGB (alpha is dropped). Images smaller than the
crop are *upscaled* (bicubic, aspect kept) so their shorter side equals the crop size.
"""
from __future__ import annotations

import errno
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from cgan._codecs import reads
from cgan._images import bomb_size
from cgan._limits import MAX_DECODE_PIXELS, MAX_PIXELS, MAX_SIDE
from cgan.errors import CganError

log = logging.getLogger(__name__)


# ---- reading ------------------------------------------------------------------------------------------
def read_rgb(path: str | os.PathLike, too_large: list[Path] | None = None) -> np.ndarray | None:
    """An image file as HxWx3 uint8 RGB, or None if it is not a decodable image (or declares more than
    MAX_DECODE_PIXELS pixels: it is not decoded, a warning names it, and it is added to `too_large`)."""
    try:
        data = np.fromfile(str(path), dtype=np.uint8)
    except OSError:
        return None
    if data.size == 0:
        return None
    size = bomb_size(data)
    if size is not None:
        log.warning("warning: %s declares %dx%d pixels, over the %d-megapixel limit for training photos: skipped",
                    path, size[0], size[1], MAX_DECODE_PIXELS // 10**6)
        if too_large is not None:
            too_large.append(Path(path))
        return None
    try:
        img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    except cv2.error:  # e.g. a tiny PNG whose header claims 100000x100000 (over CV_IO_MAX_IMAGE_PIXELS) raises
        return None
    if img is None or img.size == 0:
        return None
    if img.dtype == np.uint16:
        img = ((img.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
    elif img.dtype in (np.float16, np.float32, np.float64):
        img = (np.clip(img, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    elif img.dtype != np.uint8:
        return None
    if img.ndim == 2:
        return cv2.cvtColor(img, cv2.COLOR_GRAY2RGB)
    channels = img.shape[2]
    if channels == 1:
        return cv2.cvtColor(img[:, :, 0], cv2.COLOR_GRAY2RGB)
    if channels == 2:  # gray + alpha
        return cv2.cvtColor(np.ascontiguousarray(img[:, :, 0]), cv2.COLOR_GRAY2RGB)
    if channels == 4:
        return cv2.cvtColor(img, cv2.COLOR_BGRA2RGB)
    if channels == 3:
        return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    return None


def _has_images(folder: Path) -> bool:
    try:
        return any(reads(f.suffix) for f in folder.iterdir())
    except OSError:  # unreadable, a symlink loop
        return False


def _sub_folder_with_images(p: Path) -> Path | None:
    return next((d for d in sorted(p.iterdir()) if d.is_dir() and not d.name.startswith(".") and _has_images(d)),
                None)


def _refuse_sub_folder(p: Path, what: str, state: str) -> None:
    """Sub-folders are not read: when one holds images, say so (with a README beside it too)."""
    sub = _sub_folder_with_images(p)
    if sub is not None:
        raise CganError(f"{what} folder {p} {state} (sub-folders are not read), but {sub} has some: point the "
                        f"domain's option (--data-a/--data-b) at the folder of images")


def list_images(folder: str | os.PathLike, what: str, check: bool = True,
                transform: "Transform | None" = None) -> list[Path]:
    """Readable images in `folder` (sorted). Other and corrupt files are skipped with one warning. With
    `transform`, a photo it would refuse (too large once preprocessed) is refused now, not when a step of the
    run, hours in maybe, first samples it."""
    p = Path(folder)
    if p.is_file():
        raise CganError(f"{what}: {p} is a file; give the folder of images (--data DIR with trainA/trainB, or "
                        f"--data-a/--data-b)")
    if not p.is_dir():
        raise CganError(f"{what} folder {p} does not exist; give a folder of images (--data DIR with trainA/trainB, "
                        f"or --data-a/--data-b)")
    try:
        entries = [f for f in p.iterdir() if not f.name.startswith(".")]
        files = sorted(f for f in entries if f.is_file())
        dangling = sorted(f for f in entries if f.is_symlink() and not f.exists())  # (is_file() is False for them)
    except OSError as e:  # a folder this user cannot list (a CganError: the run folder made for it is removed)
        raise CganError(f"{what} folder {p} cannot be read ({e.strerror or e}); give a folder you can read, or "
                        f"fix its permissions") from None
    if not files and not dangling:
        _refuse_sub_folder(p, what, "holds no images itself")
        raise CganError(f"{what} folder {p} is empty; put the domain's training images there")
    if check and len(files) >= 200:  # every photo is decoded once: minutes for thousands of large ones
        log.info("checking the %d files of %s (%s) once, before training", len(files), what, p)
    good: list[Path] = []
    not_read: list[Path] = []
    broken: list[Path] = []
    too_large: list[Path] = []
    unreadable: list[tuple[Path, OSError]] = []  # files that cannot be opened (permissions, I/O): not corrupt
    for f in files:
        if not reads(f.suffix):
            not_read.append(f)
            continue
        if check:
            try:
                with open(f, "rb"):
                    pass
            except OSError as e:
                unreadable.append((f, e))
                continue
        img = read_rgb(f, too_large) if check else None
        if check and img is None:
            if not too_large or too_large[-1] != f:
                broken.append(f)
            continue
        if img is not None and transform is not None:
            try:
                transform.check_size(*img.shape[:2])
            except CganError as e:
                raise CganError(f"training image {f}: {e}") from None
        good.append(f)
    skipped = _skipped(not_read, broken, too_large, unreadable, dangling)
    if not good:
        _refuse_sub_folder(p, what, f"has no readable images ({len(files) + len(dangling)} other files)")
        raise CganError(f"{what} folder {p} has no readable images: {skipped}")
    if skipped:
        n = len(not_read) + len(broken) + len(too_large) + len(unreadable) + len(dangling)
        log.warning("warning: %s: skipped %d of %d files: %s", what, n, len(files) + len(dangling), skipped)
    sub = _sub_folder_with_images(p) if check else None
    if sub is not None:  # (the official repo's make_dataset walks sub-folders too: its run would train on them)
        log.warning("warning: %s: the images in sub-folders such as %s are not used (only the folder's own "
                    "images are); move them up to train on them", what, sub)
    return good


def _skipped(not_read: list[Path], broken: list[Path], too_large: Sequence[Path] = (),
             unreadable: Sequence[tuple[Path, OSError]] = (), dangling: Sequence[Path] = ()) -> str:
    """What was skipped and why ("" for nothing), by kind: a file type not read (a .gif, notes: convert or
    ignore; HEIC: convert), a photo that did not decode (corrupt, cut short: replace it), one over the pixel limit
    (shrink it), one that cannot be opened (permissions: not corrupt) and a link to nothing."""
    def names(fs: Sequence[Path]) -> str:
        return ", ".join(repr(f.name) for f in fs[:3]) + (", ..." if len(fs) > 3 else "")
    parts = []
    if too_large:
        parts.append(f"{len(too_large)} over the {MAX_DECODE_PIXELS // 10**6}-megapixel limit ({names(too_large)}; "
                     f"shrink them)")
    if unreadable:
        e = unreadable[0][1]
        fix = "fix their permissions" if e.errno in (errno.EACCES, errno.EPERM) else "check the disk or share"
        parts.append(f"{len(unreadable)} could not be opened ({e.strerror or type(e).__name__}: "
                     f"{names([f for f, _ in unreadable])}; {fix})")
    if broken:
        parts.append(f"{len(broken)} could not be decoded, corrupt or cut short? ({names(broken)})")
    if dangling:
        parts.append(f"{len(dangling)} links to files that do not exist ({names(dangling)})")
    if not_read:
        heic = any(f.suffix.lower() in (".heic", ".heif") for f in not_read)
        parts.append(f"{len(not_read)} not of a photo type read here ({names(not_read)}; photos are "
                     f"jpg/png/bmp/tif/webp/ppm" + ("; convert HEIC photos to JPEG first" if heic else "") + ")")
    return "; ".join(parts)


def resolve_folders(data: str | None, data_a: str | None, data_b: str | None) -> tuple[str, str]:
    """--data DIR (DIR/trainA, DIR/trainB) or --data-a/--data-b → two absolute folder paths."""
    if data_a or data_b:
        if data:  # which one was meant? (--data was passed over, silently)
            raise CganError("give either --data DIR (holding trainA and trainB) or --data-a and --data-b, not both")
        if not (data_a and data_b):
            raise CganError("give both --data-a and --data-b (or --data DIR holding trainA and trainB)")
        return _absolute(data_a, "--data-a"), _absolute(data_b, "--data-b")
    if not data:
        raise CganError("no training data: give --data DIR (holding trainA and trainB) or --data-a/--data-b")
    root = Path(data)
    if root.is_file():
        raise CganError(f"--data {root} is a file; give the folder that holds trainA and trainB")
    if not root.is_dir():
        raise CganError(f"data folder {root} does not exist")
    return _absolute(str(root / "trainA"), "--data"), _absolute(str(root / "trainB"), "--data")


def _absolute(folder: str, given: str) -> str:
    try:
        return str(Path(folder).resolve())
    except (RuntimeError, OSError) as e:  # a symbolic link loop (RuntimeError before Python 3.13), ELOOP
        raise CganError(f"{given}: {folder} cannot be resolved ({e}): a symbolic link loop? give the folder of "
                        f"images itself") from None


# ---- preprocessing (official `get_transform`) ---------------------------------------------------------
def _resize(img: np.ndarray, w: int, h: int) -> np.ndarray:
    """`img` (uint8) resized to w x h as the official repo does: PIL's bicubic (a = -0.5, antialiased when
    shrinking). OpenCV's INTER_CUBIC (a = -0.75, no antialiasing) differed by 0.8 levels on average and up to 14
    on a 256-pixel photo enlarged to 286. Pillow comes with matplotlib (the cpu/gpu extras); without it, OpenCV:
    bicubic enlarging, area averaging shrinking."""
    if (img.shape[1], img.shape[0]) == (w, h):
        return img
    try:
        from PIL import Image
    except ImportError:
        shrink = w * h < img.shape[0] * img.shape[1]
        return cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC)
    return np.array(Image.fromarray(img).resize((w, h), Image.Resampling.BICUBIC))


def _multiple_of_4_size(h: int, w: int, min_side: int = 4) -> tuple[int, int]:
    """(height, width) rounded to multiples of 4, and at least `min_side` (the discriminator needs a few pixels)."""
    low = max(4, -(-min_side // 4) * 4)
    return max(low, int(round(h / 4)) * 4), max(low, int(round(w / 4)) * 4)


def _check_pixels(height: int, width: int, preprocess: str) -> None:
    """--preprocess none / scale_width keep (or scale to the width) a photo's own shape: refuse one that would be
    a network input over the largest frame cgan handles (one step would need tens of GB)."""
    if height * width > MAX_PIXELS:
        raise CganError(f"it is {width}x{height} after --preprocess {preprocess}, over {MAX_SIDE}x{MAX_SIDE} pixels: "
                        f"shrink or remove it, or use --preprocess resize_and_crop / crop")


@dataclass(frozen=True)
class Transform:
    preprocess: str = "resize_and_crop"
    load_size: int = 286
    size: int = 256
    flip: bool = True
    min_side: int = 4  # none / scale_width: smaller images are enlarged to this (TrainConfig.min_size)

    def check_size(self, h: int, w: int) -> None:
        """Refuse a photo of h x w pixels that this transform would make a network input over the largest frame
        (--preprocess none / scale_width keep or scale a photo's shape; the crops cannot be too large)."""
        p = self.preprocess
        if p in ("scale_width", "scale_width_and_crop"):
            h, w = int(max(self.load_size * h / w, self.size)), self.load_size
            _check_pixels(h, w, p)
        elif p == "none":
            _check_pixels(h, w, p)
        if p in ("none", "scale_width"):
            _check_pixels(*_multiple_of_4_size(h, w, self.min_side), p)

    def __call__(self, img: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        """Preprocess one HxWx3 uint8 image; rng None = deterministic (center crop, no flip) for samples."""
        p = self.preprocess
        if p == "resize_and_crop":
            img = _resize(img, self.load_size, self.load_size)
        elif p in ("scale_width", "scale_width_and_crop"):
            h, w = img.shape[:2]
            height = int(max(self.load_size * h / w, self.size))
            _check_pixels(height, self.load_size, p)  # a very tall photo scaled to the width: before allocating
            img = _resize(img, self.load_size, height)
        elif p == "none":
            _check_pixels(*img.shape[:2], p)
        if p in ("resize_and_crop", "crop", "scale_width_and_crop"):
            img = self._crop(img, rng)
        else:  # (a thin strip's short side is enlarged to min_side: checked at the size it becomes)
            h, w = _multiple_of_4_size(*img.shape[:2], self.min_side)
            _check_pixels(h, w, p)
            img = _resize(img, w, h)
        if self.flip and rng is not None and rng.random() < 0.5:
            img = img[:, ::-1]
        return np.ascontiguousarray(img)

    def _crop(self, img: np.ndarray, rng: np.random.Generator | None) -> np.ndarray:
        h, w = img.shape[:2]
        s = self.size
        if min(h, w) < s:
            # too small for the crop: the crop of the photo upscaled so its shorter side is the crop size, i.e. a
            # square of the shorter side, upscaled alone (upscaling the whole photo first allocated 9.4 GB for
            # a 3000x1 photo and a 1024 crop)
            m = min(h, w)
            if rng is None:
                y, x = (h - m) // 2, (w - m) // 2
            else:
                y, x = int(rng.integers(0, h - m + 1)), int(rng.integers(0, w - m + 1))
            return _resize(img[y:y + m, x:x + m], s, s)
        if rng is None:
            y, x = (h - s) // 2, (w - s) // 2
        else:
            y, x = int(rng.integers(0, h - s + 1)), int(rng.integers(0, w - s + 1))
        return img[y:y + s, x:x + s]


def to_tensor(img: np.ndarray) -> torch.Tensor:
    """HxWx3 uint8 RGB → 3xHxW float32 in [-1, 1] (a batch NxHxWx3 → Nx3xHxW). The generator's input as the
    trainer feeds it; cgan-eval uses it too."""
    order = (0, 3, 1, 2) if img.ndim == 4 else (2, 0, 1)
    return torch.from_numpy(np.ascontiguousarray(img)).permute(*order).float().div_(127.5).sub_(1.0)


def to_uint8(t: torch.Tensor) -> np.ndarray:
    """3xHxW in [-1, 1] → HxWx3 uint8 RGB (a batch Nx3xHxW → NxHxWx3): (y + 1)·127.5, rounded."""
    order = (0, 2, 3, 1) if t.ndim == 4 else (1, 2, 0)
    return ((t.detach().float().clamp(-1, 1) + 1) * 127.5).round().byte().permute(*order).cpu().numpy()


class DataError(CganError):
    """A training image that fails when a step needs it (removed, damaged, or too large once preprocessed):
    the run saves what it trained and says how to go on."""


# ---- dataset and sampler ------------------------------------------------------------------------------
class UnalignedDataset(Dataset):
    """Items are keyed by (epoch, position, index in X, index in Y) from `ResumableSampler`."""

    def __init__(self, files_x: list[Path], files_y: list[Path], transform: Transform, seed: int = 0):
        self.files = {"X": [str(f) for f in files_x], "Y": [str(f) for f in files_y]}
        self.transform = transform
        self.seed = seed

    def __len__(self) -> int:  # the official dataset length: max(|A|, |B|)
        return max(len(self.files["X"]), len(self.files["Y"]))

    def load(self, domain: str, index: int, rng: np.random.Generator | None) -> torch.Tensor:
        path = self.files[domain][index]
        img = read_rgb(path)
        if img is None:
            raise DataError(f"cannot read training image {path} (removed or corrupted while training?)")
        try:
            return to_tensor(self.transform(img, rng))
        except CganError as e:
            raise DataError(f"training image {path}: {e}") from None

    def __getitem__(self, key: tuple[int, int, int, int]) -> dict[str, torch.Tensor | int]:
        epoch, pos, ix, iy = key
        rx = np.random.default_rng([self.seed, epoch, pos, 0])
        ry = np.random.default_rng([self.seed, epoch, pos, 1])
        return {"X": self.load("X", ix, rx), "Y": self.load("Y", iy, ry), "pos": pos}

    def sample_images(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The first image of each domain, preprocessed deterministically (for the sample grids)."""
        return self.load("X", 0, None), self.load("Y", 0, None)


class ResumableSampler(Sampler):
    """Shuffles like the official loader (X by a permutation, Y at random) and shards like DistributedSampler.

    `set_epoch(epoch, start)` picks the epoch's order and skips the first `start` items of this rank, so a
    resumed run continues mid-epoch with exactly the items it would have seen.
    """

    def __init__(self, n_x: int, n_y: int, seed: int = 0, rank: int = 0, world: int = 1):
        self.n_x, self.n_y, self.seed, self.rank, self.world = n_x, n_y, seed, rank, world
        self.n = max(n_x, n_y)
        self.per_rank = self.n // world if world > 1 else self.n
        if self.per_rank < 1:
            raise CganError(f"only {self.n} images for {world} processes: use fewer GPUs or more images")
        self.epoch, self.start = 0, 0

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        self.epoch, self.start = epoch, start

    def order(self, epoch: int) -> list[tuple[int, int, int, int]]:
        g = torch.Generator().manual_seed((self.seed * 1_000_003 + epoch) % 2**63)  # any --seed (< 2**63)
        perm = torch.randperm(self.n, generator=g)
        iy = torch.randint(self.n_y, (self.n,), generator=g)
        mine = perm[self.rank::self.world][:self.per_rank].tolist()
        return [(epoch, p, p % self.n_x, int(iy[p])) for p in mine]

    def __len__(self) -> int:
        return max(0, self.per_rank - self.start)

    def __iter__(self) -> Iterator[tuple[int, int, int, int]]:
        return iter(self.order(self.epoch)[self.start:])
