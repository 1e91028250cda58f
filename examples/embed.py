"""Embed cgan's runtime in your own program: translate one picture with every CPU backend that can run it here.

    python examples/embed.py                          # a synthetic frame, the embedded summer2winter pair
    cgan-export summer2winter --out exports/s2w --no-parity    # an export folder to compare with (optional)
    python examples/embed.py photo.jpg --export exports/s2w   # ... and that export on ort-cpu too

The embedded pair runs on ort-cpu (its in-pair ONNX graphs; `pip install -e ".[runtime]"`, no torch) and, with
torch installed (`.[cpu]`), on torch too. Writes <out>/<label>.png next to <out>/input.png, prints each run's
latency and how far each result is from the first.
"""
from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import cv2
import numpy as np

from cgan.errors import CganError
from cgan.runtime import Translator, available_backends


def synthetic_frame(h: int = 256, w: int = 384) -> np.ndarray:
    """A sky/grass-ish gradient, so the example needs no image file."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    sky = np.stack([230 - 0.3 * y, 180 - 0.2 * y, 120 + 0.1 * x / w * 50], axis=-1)
    grass = np.stack([40 + 0 * y, 140 - 0.1 * (y - h / 2), 60 + 0 * y], axis=-1)
    return np.where((y > h / 2)[..., None], grass, sky).clip(0, 255).astype(np.uint8)


def run(source: str, backend: str, frame: np.ndarray, out: Path, label: str,
        direction: str | None = None) -> tuple[np.ndarray, str]:
    with Translator.load(source, direction, backend=backend) as t:  # resolve, pick direction + backend, activate
        t.translate(frame)                                          # warm-up (first call sets up buffers)
        start = time.perf_counter()
        result = t.translate(frame)                                 # BGR uint8 in, BGR uint8 out, same size
        ms = (time.perf_counter() - start) * 1e3
        print(f"{label:14s} {t.info.precision} {t.info.device}  {t.info.direction}  {ms:7.1f} ms  "
              f"from {t.info.folder}")
        direction = t.info.direction
    cv2.imwrite(str(out / f"{label}.png"), result)
    return result, direction


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("image", nargs="?", help="a picture to translate (default: a synthetic frame)")
    ap.add_argument("--pair", default="summer2winter", help="pair name or folder (default: the embedded pair)")
    ap.add_argument("--direction", help="G or F, or a name such as winter2summer (default: the pair's own)")
    ap.add_argument("--export", help="an export folder (cgan-export) to run with ort-cpu too, same direction")
    ap.add_argument("--out", default="embed-out", help="where to write the pictures")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    if args.image and not Path(args.image).is_file():
        raise SystemExit(f"{args.image} is not a file: pass a picture (jpg, png, ...) or nothing for a synthetic frame")
    frame = cv2.imread(args.image, cv2.IMREAD_COLOR) if args.image else synthetic_frame()
    if frame is None:
        raise SystemExit(f"cannot read {args.image} as a picture")
    out = Path(args.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise SystemExit(f"cannot write pictures to --out {out}: {e.strerror or e}; pass another folder") from None
    cv2.imwrite(str(out / "input.png"), frame)

    try:
        here = available_backends(args.pair, args.direction)        # {backend: (ok, why not)} for this pair
        if args.export:
            available_backends(args.export)                         # a wrong folder is said before any work
        runs = [(args.pair, b, b) for b in ("ort-cpu", "torch") if here[b][0]]
        for b in ("ort-cpu", "torch"):
            if not here[b][0]:
                print(f"{b} cannot run {args.pair} here: {here[b][1]}")
        if not runs:
            raise SystemExit(f"no CPU backend can run {args.pair} here: pip install -e '.[runtime]'")
        results = []
        for source, backend, label in runs:
            result, direction = run(source, backend, frame, out, label, args.direction)
            results.append((label, result))
        if args.export:                                              # the same direction as the pair's runs
            results.append(("export-ort-cpu", run(args.export, "ort-cpu", frame, out, "export-ort-cpu",
                                                  direction)[0]))
    except CganError as e:                                          # a user mistake: one line, what to do
        raise SystemExit(f"embed.py: {e}") from None
    first_label, first = results[0]
    for label, result in results[1:]:
        print(f"{label} vs {first_label}: max difference {int(np.abs(result.astype(int) - first).max())} (of 255)")


if __name__ == "__main__":
    main()
