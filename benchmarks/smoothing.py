"""`cgan-video --smooth` on the embedded pair: flicker it removes and ghosts it must not leave, for the smoother
as it is and as it was (weighted by the input change alone, before 2026-12-02), measured in the same run on the
same translated frames.

Clips (made here, nothing downloaded):
  demo        the demo clip's 64 frames (gentle camera motion across real test photos, crossfades between them)
  still       the demo clip's first frame 16 times, each with its own sensor noise (sigma 2 levels): flicker
              alone, where smoothing is for
  moving disk a dark disk moving 6 px per frame across a flat background (160x96): the output left behind it
  cut         8 frames of one summer test photo, then 8 of another whose brightness differs less than the
              scene-cut level (from ../shared/datasets/summer2winter_yosemite when it is there; else left out)
  pan         a 320x224 window sliding 2 px per frame across the demo clip's first frame (24 frames): camera
              motion, where a generator's flicker is largest; `aligned_change` is mean |out_t - out_{t-1}| with
              out_{t-1} shifted by the known motion (flicker under motion, which the flicker index cannot see),
              `sharpness` the mean |Laplacian| against the raw output's
  letterbox cut  the cut clip's photos between black bars (the picture half the frame's height)

    python benchmarks/smoothing.py --json benchmarks/results/smoothing-cpu-DATE.json [--backend ort-cpu]
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import time
from pathlib import Path

import cv2
import numpy as np

from cgan._files import write_bytes_atomic
from cgan.runtime import Translator
from cgan.runtime.smooth import TemporalSmoother, flicker_index
from cgan.runtime.sources import demo_clip

#: the smoother before 2026-12-02: no output gate, cuts by the mean input change only
BEFORE = dict(out_threshold=1e12, scene_cut_share=1.0)  # (no gate: the smoother takes finite values only)
#: two summer test photos whose 224x160 corners differ by 29.9 gray levels on average: under the scene-cut level
CUT_PHOTOS = Path(__file__).resolve().parents[1].parent / "shared/datasets/summer2winter_yosemite/testA"
CUT_PAIR = ("2011-07-11 23_18_31.jpg", "2011-07-05 10_40_51.jpg")
PAN_STEP = 2  # px per frame of the pan clip (content moves left: frame t's x is frame t-1's x + PAN_STEP)


def _frames() -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(demo_clip()))
    frames = []
    while (got := cap.read())[0]:
        frames.append(got[1])
    cap.release()
    return frames


def _gray(img: np.ndarray) -> np.ndarray:
    return cv2.GaussianBlur(cv2.cvtColor(img, cv2.COLOR_BGR2GRAY), (5, 5), 0).astype(np.float32)


def _clips(demo: list[np.ndarray]) -> dict[str, list[np.ndarray]]:
    rng = np.random.default_rng(1)
    still = [np.clip(demo[0] + rng.normal(0, 2.0, demo[0].shape), 0, 255).astype(np.uint8) for _ in range(16)]
    disk = []
    for k in range(16):
        f = np.zeros((96, 160, 3), np.uint8)
        f[:] = (0, 150, 0)
        cv2.circle(f, (20 + 6 * k, 48), 18, (20, 20, 20), -1)
        disk.append(f)
    clips = {"demo": demo, "still": still, "moving disk": disk}
    clips["pan"] = [demo[0][16:240, PAN_STEP * k:PAN_STEP * k + 320] for k in range(24)]
    photos = [cv2.imread(str(CUT_PHOTOS / name)) for name in CUT_PAIR]
    if all(p is not None for p in photos):
        clips["cut"] = [photos[0][:160, :224]] * 8 + [photos[1][:160, :224]] * 8
        boxed = []
        for photo in photos:
            f = np.zeros((160, 224, 3), np.uint8)
            f[40:120] = photo[40:120, :224]
            boxed.append(f)
        clips["letterbox cut"] = [boxed[0]] * 8 + [boxed[1]] * 8
    return clips


def _aligned_change(frames: list[np.ndarray]) -> float:
    """mean |out_t - out_{t-1}| with out_{t-1} shifted by the pan's PAN_STEP px (8 px margins left out)."""
    m, s = 8, PAN_STEP
    return float(np.mean([np.abs(frames[t][m:-m, m:-m - s].astype(np.float32) - frames[t - 1][m:-m, m + s:-m]).mean()
                          for t in range(1, len(frames))]))


def _sharpness(frames: list[np.ndarray]) -> float:
    return float(np.mean([np.abs(cv2.Laplacian(cv2.cvtColor(f, cv2.COLOR_BGR2GRAY), cv2.CV_32F)).mean()
                          for f in frames[3:]]))


def _smoothed(frames, outs, **kw):
    sm = TemporalSmoother(**kw)
    t0 = time.perf_counter()
    res = [sm(i, o) for i, o in zip(frames, outs)]
    return res, (time.perf_counter() - t0) / len(frames) * 1e3


def _row(name: str, frames, outs, **kw) -> dict:
    res, ms = _smoothed(frames, outs, **kw)
    row = {"flicker_index": round(flicker_index(frames, res), 3), "ms_per_frame": round(ms, 2),
           "mean_abs_vs_raw": round(float(np.mean([np.abs(a.astype(np.float32) - b).mean()
                                                    for a, b in zip(res, outs)])), 2)}
    if name == "moving disk":  # 30 px behind the disk: plain background in the input by then
        row["trail_behind_disk"] = [round(float(np.abs(res[k].astype(np.float32) - outs[k])[30:66, 20 + 6 * k - 48:
                                                                                               20 + 6 * k - 18].mean()), 2)
                                    for k in (8, 12)]
    if name == "pan":
        row["aligned_change"] = round(_aligned_change(res), 2)
        row["sharpness"] = round(_sharpness(res) / _sharpness(outs), 3)
    if name.endswith("cut"):  # the frames after the cut, against the raw translation of the new scene
        row["after_cut_vs_raw"] = [round(float(np.abs(res[k].astype(np.float32) - outs[k]).mean()), 2)
                                   for k in (8, 9, 12)]
    return row


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", required=True)
    ap.add_argument("--backend", default="ort-cpu")
    args = ap.parse_args()
    clips = _clips(_frames())
    results = {}
    with Translator.load("summer2winter", backend=args.backend) as tr:
        for name, frames in clips.items():
            outs = [tr.translate(f) for f in frames]
            entry = {"frames": len(frames), "size": [frames[0].shape[1], frames[0].shape[0]],
                     "raw": {"flicker_index": round(flicker_index(frames, outs), 3)}}
            if name == "pan":
                entry["raw"]["aligned_change"] = round(_aligned_change(outs), 2)
            if name.endswith("cut"):
                entry["mean_gray_change_at_cut"] = round(float(np.abs(_gray(frames[8]) - _gray(frames[7])).mean()), 1)
            for label, kw in (("smooth", {}), ("smooth_flow", {"flow": True}), ("smooth_before", BEFORE),
                              ("smooth_flow_before", {**BEFORE, "flow": True})):
                entry[label] = _row(name, frames, outs, **kw)
            results[name] = entry
    record = {
        "what": "cgan-video --smooth (and --smooth-flow) with the embedded summer2winter pair: flicker index "
                "(mean |out_t - out_t-1| / mean |in_t - in_t-1|, lower is steadier) raw and smoothed; "
                "mean |smoothed - raw| (gray levels); ms per frame of the smoother alone; trail_behind_disk and "
                "after_cut_vs_raw: ghosts (gray levels off the raw translation); pan: aligned_change, mean "
                "|out_t - out_t-1 shifted by the known motion| (flicker under camera motion), and sharpness "
                "against the raw output. '_before': the smoother weighted by the input change alone (no output "
                "gate, cuts by the mean change only), as before 2026-12-02",
        "defaults": {k: getattr(TemporalSmoother(), k) for k in ("strength", "threshold", "out_threshold",
                                                               "scene_cut", "scene_cut_share")},
        "command": f"python benchmarks/smoothing.py --json {args.json} --backend {args.backend}",
        "machine": f"{platform.machine()}, {len(os.sched_getaffinity(0))} cores, no GPU used",
        "versions": {"python": platform.python_version(), "opencv": cv2.__version__, "numpy": np.__version__},
        "date": datetime.date.today().isoformat(),
        "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                                 text=True).stdout.strip(),
        "clips": results,
    }
    write_bytes_atomic(args.json, (json.dumps(record, indent=1) + "\n").encode())  # (no half-written result)
    print(json.dumps(record, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
