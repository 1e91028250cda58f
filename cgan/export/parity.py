"""Built-in verification: ONNX Runtime (CPU) vs the PyTorch generator on realistic images, at two sizes.

Realistic, not noise: generators behave differently on smooth photos than on white noise (instance norm
statistics, FP16 rounding), so the default input is a synthetic "photo" (sky-like gradient, blurred shapes,
fine texture) or a real photo given with --parity-image. Thresholds (issue 4):
FP32 max abs error <= 1e-4 vs PyTorch; FP16 PSNR >= 40 dB vs the FP32 graph; the uint8 pre/post variant
matches its float counterpart (same precision) within 1 LSB for >= 99% of values.

ONNX Runtime's CPU provider has few FP16 kernels: it casts around the ones it lacks and computes them in FP32,
so on a CPU the FP16 graph's figure can be optimistic (for the embedded pair it mostly proves that FP16
*weights* are harmless). The FP16 *arithmetic* a GPU does is therefore emulated too (`fp16_emulated_forward`: FP16 weights, every layer's input and output rounded to FP16, FP32
accumulation as on tensor cores) and must also reach 40 dB — it catches activations that overflow FP16.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from cgan._files import sha256_file
from cgan.errors import CganError, IntegrityError
from cgan.export.prepost import bgr_to_nchw, nchw_to_bgr

DEFAULT_SIZES = ((64, 96), (128, 192))


@dataclass(frozen=True)
class Thresholds:
    fp32_max_abs: float = 1e-4
    fp16_min_psnr_db: float = 40.0
    prepost_min_within_1lsb: float = 0.99

    def to_dict(self) -> dict[str, float]:
        return {"fp32_max_abs": self.fp32_max_abs, "fp16_min_psnr_db": self.fp16_min_psnr_db,
                "prepost_min_within_1lsb": self.prepost_min_within_1lsb}


def synthetic_photo(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A smooth natural-looking BGR uint8 image: vertical sky/ground gradient, blurred blobs, fine texture."""
    import cv2

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    t = yy / max(height - 1, 1)
    top, bottom = rng.uniform(120, 230, 3), rng.uniform(20, 140, 3)
    img = (1 - t)[..., None] * top + t[..., None] * bottom
    img += (xx / max(width - 1, 1))[..., None] * rng.uniform(-30, 30, 3)
    shapes = np.zeros_like(img)
    for _ in range(6):
        cy, cx = rng.uniform(0, height), rng.uniform(0, width)
        ry, rx = rng.uniform(0.08, 0.3) * height, rng.uniform(0.08, 0.3) * width
        mask = (((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2) <= 1.0
        shapes[mask] = rng.uniform(-80, 80, 3)
    sigma = max(height, width) / 40.0
    img += cv2.GaussianBlur(shapes, (0, 0), sigma)
    img += cv2.GaussianBlur(rng.normal(0, 12, img.shape).astype(np.float32), (0, 0), 0.8)
    return np.clip(img, 0, 255).astype(np.uint8)


#: the least pixel standard deviation (0..255 scale) a parity photo may have; real photos have 30-70
MIN_PHOTO_STD = 4.0


def photo(path: str | os.PathLike, height: int, width: int) -> np.ndarray:
    """A real photo, centre-cropped to the aspect ratio and resized to height×width (BGR uint8)."""
    import cv2

    p = Path(path)
    try:
        img = cv2.imread(str(p), cv2.IMREAD_COLOR) if p.is_file() else None
    except cv2.error:  # a header claiming a huge image (over CV_IO_MAX_IMAGE_PIXELS) raises instead of None
        img = None
    if img is None:
        raise CganError(f"cannot read parity image {p}: pass a readable JPEG/PNG photo")
    h, w = img.shape[:2]
    scale = min(h / height, w / width)
    ch, cw = int(round(height * scale)), int(round(width * scale))
    y0, x0 = (h - ch) // 2, (w - cw) // 2
    out = cv2.resize(img[y0:y0 + ch, x0:x0 + cw], (width, height), interpolation=cv2.INTER_AREA)
    # per colour channel: a solid red (10, 50, 200) varies across channels only, and failed the check (1.38)
    std = float(out.reshape(-1, 3).std(axis=0).min())
    if std < MIN_PHOTO_STD:
        # instance norm divides by each channel's spread: over a flat image it amplifies rounding noise, and the
        # check failed with "report a bug" (max error 1.45 for a 1x1 PNG) for no fault of the export
        raise CganError(f"parity image {p} is nearly uniform (a colour channel's standard deviation {std:.1f}, "
                        f"under {MIN_PHOTO_STD:g}): it cannot judge an export; pass a photo")
    return out


def psnr(a: np.ndarray, b: np.ndarray, peak_to_peak: float = 2.0) -> float:
    """PSNR in dB (inf for identical arrays); peak_to_peak 2 for values in [-1, 1], 255 for uint8 images."""
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        raise CganError(f"PSNR needs arrays of one shape, got {a.shape} and {b.shape}")
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return math.inf if mse == 0 else 10.0 * math.log10(peak_to_peak ** 2 / mse)


def session(model: str | os.PathLike | bytes) -> Any:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    src = model if isinstance(model, bytes) else str(model)
    return ort.InferenceSession(src, opts, providers=["CPUExecutionProvider"])


def _run(sess: Any, x: np.ndarray) -> np.ndarray:
    inp = sess.get_inputs()[0]
    if inp.type == "tensor(float16)":
        x = x.astype(np.float16)
    return sess.run(None, {inp.name: x})[0]


def fp16_emulated_forward(net: Any, x: Any) -> np.ndarray:
    """`net(x)` as FP16 storage would give it: weights, the input and every module's output rounded to FP16
    (each layer's, and each residual block's sum), arithmetic in FP32. Values beyond FP16's range become inf,
    as they would on a GPU."""
    import copy

    import torch

    emu = copy.deepcopy(net).float().eval()
    with torch.no_grad():
        for p in emu.parameters():
            p.copy_(p.half().float())

    def hook(_m: Any, _inp: Any, out: Any) -> Any:
        return out.half().float()

    for m in emu.modules():  # composite modules too: a residual block's `x + conv_block(x)` is an FP16 tensor
        m.register_forward_hook(hook)
    with torch.no_grad():
        return emu(x.half().float()).float().cpu().numpy()


def check_generator(net: Any, variants: dict[str, Path], frames: list[np.ndarray],
                    thresholds: Thresholds | None = None) -> dict[str, Any]:
    """Figures for one generator. `variants` maps 'fp32'/'fp16'/'fp32.prepost'/'fp16.prepost' to ONNX files;
    `frames` are BGR uint8 images (H, W multiples of 4). Returns figures with a `failures` list."""
    import torch

    thresholds = thresholds or Thresholds()
    sessions = {k: session(v) for k, v in variants.items()}
    fig: dict[str, Any] = {}
    failures: list[str] = []
    worst: dict[str, float] = {}
    broken: list[str] = []  # outputs with NaN or infinite values (max() and PSNR would pass them over)
    gray = next(m for m in net.modules() if isinstance(m, torch.nn.Conv2d)).in_channels == 1
    for frame in frames:
        if gray:  # a 1-channel generator is checked on the same photos in grayscale
            frame = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)[..., None]
        batch = frame[None]
        x = bgr_to_nchw(batch)
        with torch.no_grad():
            ref = net(torch.from_numpy(x)).numpy()
        outs = {k: _run(s, batch if k.endswith("prepost") else x) for k, s in sessions.items()}
        broken += [k for k, v in (("PyTorch", ref), *outs.items()) if k not in broken and
                   not np.isfinite(v).all()]
        if "fp32" in outs:
            err = float(np.abs(outs["fp32"].astype(np.float32) - ref).max())
            worst["fp32_max_abs"] = max(worst.get("fp32_max_abs", 0.0), err)
        if "fp16" in outs:
            emulated = fp16_emulated_forward(net, torch.from_numpy(x))
            worst["fp16_emulated_psnr_db"] = min(worst.get("fp16_emulated_psnr_db", math.inf),
                                                 psnr(emulated, ref) if np.isfinite(emulated).all() else -math.inf)
            base = outs.get("fp32", ref)
            worst["fp16_psnr_db"] = min(worst.get("fp16_psnr_db", math.inf), psnr(outs["fp16"], base))
            worst["fp16_max_abs"] = max(worst.get("fp16_max_abs", 0.0),
                                        float(np.abs(outs["fp16"].astype(np.float32) - base).max()))
        for prec in ("fp32", "fp16"):
            key = f"{prec}.prepost"
            if key not in outs:
                continue
            counterpart = outs.get(prec, ref)
            diff = np.abs(outs[key].astype(np.int16) - nchw_to_bgr(counterpart).astype(np.int16))
            worst[f"{key}_max_lsb"] = max(worst.get(f"{key}_max_lsb", 0), int(diff.max()))
            worst[f"{key}_within_1lsb"] = min(worst.get(f"{key}_within_1lsb", 1.0), float((diff <= 1).mean()))
    fig.update({k: (round(v, 3) if k.endswith("_db") and math.isfinite(v) else v) for k, v in worst.items()})
    if "PyTorch" in broken:
        failures.append(f"{BROKEN_WEIGHTS} NaN or infinite values: its weights are broken")
    failures += [f"the {k.replace('.', ' ')} ONNX graph gives NaN or infinite values" for k in broken
                 if k != "PyTorch"]
    if fig.get("fp32_max_abs", 0.0) > thresholds.fp32_max_abs:
        failures.append(f"FP32 max abs error {fig['fp32_max_abs']:.3g} > {thresholds.fp32_max_abs:g}")
    if fig.get("fp16_psnr_db", math.inf) < thresholds.fp16_min_psnr_db:
        failures.append(f"FP16 PSNR {fig['fp16_psnr_db']:.1f} dB < {thresholds.fp16_min_psnr_db:g} dB")
    if fig.get("fp16_emulated_psnr_db", math.inf) < thresholds.fp16_min_psnr_db:
        failures.append(f"emulated FP16 arithmetic PSNR {fig['fp16_emulated_psnr_db']:.1f} dB < "
                        f"{thresholds.fp16_min_psnr_db:g} dB (activations overflow or lose precision in FP16)")
    for prec in ("fp32", "fp16"):
        within = fig.get(f"{prec}.prepost_within_1lsb")
        if within is not None and within < thresholds.prepost_min_within_1lsb:
            failures.append(f"{prec} pre/post graph within 1 LSB for only {within:.1%} of values")
    for key in ("fp16_psnr_db", "fp16_emulated_psnr_db"):
        if math.isinf(fig.get(key, 0.0)):
            fig[key] = None  # identical outputs (or -inf: overflow, already a failure); JSON has no infinity
    fig["failures"] = failures
    return fig


def parity_frames(sizes: tuple[tuple[int, int], ...] = DEFAULT_SIZES,
                  image: str | os.PathLike | None = None) -> tuple[list[np.ndarray], str]:
    for h, w in sizes:
        if h % 4 or w % 4 or h < 16 or w < 16:
            raise CganError(f"parity size {h}x{w} must be at least 16x16 and a multiple of 4")
    if image is not None:  # named by its content too: another photo of the same name is another check
        frames = [photo(image, h, w) for h, w in sizes]
        return frames, f"{Path(image).name} (sha256 {sha256_file(image)[:16]})"
    return [synthetic_photo(h, w, seed=i) for i, (h, w) in enumerate(sizes)], "synthetic"


BROKEN_WEIGHTS = "the PyTorch generator itself gives"


def raise_on_failure(figures: dict[str, Any]) -> None:
    failures = [(gen, msg) for gen, fig in figures.get("generators", {}).items() for msg in fig["failures"]]
    bad = [f"{gen}: {msg}" for gen, msg in failures]
    if bad:
        # broken weights are no export's fault: another --pad-mode cannot help there
        weights = any(m.startswith(BROKEN_WEIGHTS) for _, m in failures)
        only_fp16 = all("FP16" in m or m.startswith(("the fp16 ", "fp16 ")) for _, m in failures)
        if weights:
            fix = "re-create the pair from a checkpoint whose weights are finite (a diverged run's are not)"
        elif only_fp16:  # the FP32 graphs are right: these weights do not fit half precision
            fix = "these weights do not run in FP16 (FP32 passed): export with --no-fp16 and run them in FP32"
        else:
            fix = "re-export with another --pad-mode/--no-simplify, or report a bug"

        raise IntegrityError("parity check failed (" + "; ".join(bad) + f"); nothing was written under final "
                             f"names; {fix}")
