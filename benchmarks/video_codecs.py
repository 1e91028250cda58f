"""Output codecs on this machine: encode fps and file size of the writers cgan-video uses (OpenCV's mp4v and
MJPG, PyAV's libx264 H.264 at cgan's default CRF and at each --crfs value), on the demo clip's 64 real frames
scaled to 720p (1280x720).

    python benchmarks/video_codecs.py --json benchmarks/results/video-codecs-cpu-DATE.json [--crfs 14,18,23,28]
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2

from cgan._files import write_bytes_atomic
from cgan.runtime import pyav
from cgan.runtime.sources import demo_clip
from cgan.runtime.video import _open_writer


def _psnr(path: Path, frames: list) -> float:
    """Mean PSNR (dB) of the file's decoded frames against the frames written."""
    cap = cv2.VideoCapture(str(path))
    values = []
    for f in frames:
        ok, got = cap.read()
        if not ok:
            break
        values.append(cv2.PSNR(f, got))
    cap.release()
    assert len(values) == len(frames), f"{path}: {len(values)} of {len(frames)} frames decode"
    return round(sum(values) / len(values), 2)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", required=True)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--crfs", default="", help="more H.264 rows at these CRFs (cgan-video --crf), e.g. 14,18,23,28")
    args = ap.parse_args()
    crfs = [int(c) for c in args.crfs.split(",") if c.strip()]
    cap = cv2.VideoCapture(str(demo_clip()))
    frames = []
    while True:
        ok, f = cap.read()
        if not ok:
            break
        frames.append(cv2.resize(f, (1280, 720), interpolation=cv2.INTER_CUBIC))
    cap.release()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        writers = [("mp4v", ".mp4", None), ("MJPG", ".avi", None), ("h264", ".mp4", None)]
        writers += [("h264", ".mp4", crf) for crf in crfs if crf != pyav.H264Writer.CRF]
        for codec, ext, crf in writers:
            fps, size = [], 0
            for r in range(args.repeats):
                path = Path(tmp) / f"{codec}{crf}-{r}{ext}"
                t0 = time.perf_counter()
                w = _open_writer(path, codec, 12.0, (1280, 720), crf)
                for f in frames:
                    w.write(f)
                w.release()
                fps.append(round(len(frames) / (time.perf_counter() - t0), 1))
                size = path.stat().st_size
                assert getattr(w, "error", None) is None
            row = {"codec": codec, "container": ext, "encode_fps": fps, "bytes": size, "psnr_db": _psnr(path, frames)}
            if codec == "h264":
                row["crf"] = pyav.H264Writer.CRF if crf is None else crf
            rows.append(row)
    record = {
        "what": "encode speed and size of cgan-video's output writers: the demo clip's 64 frames scaled to 1280x720, "
                "written at 12 fps (OpenCV VideoWriter for mp4v/MJPG, PyAV libx264 at cgan's CRF and preset for "
                "h264); encode_fps includes opening and closing the file; psnr_db: decoded frames vs written",
        "h264_settings": {"crf": pyav.H264Writer.CRF, "preset": pyav.H264Writer.PRESET},
        "command": f"python benchmarks/video_codecs.py --json {args.json}" + (f" --crfs {args.crfs}" if crfs else ""),
        "machine": f"{platform.machine()}, {len(os.sched_getaffinity(0))} cores, no GPU used",
        "versions": {"python": platform.python_version(), "opencv": cv2.__version__,
                     "pyav": getattr(pyav._av(), "__version__", None)},
        "date": datetime.date.today().isoformat(),
        "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                                 text=True).stdout.strip(),
        "frames": len(frames), "rows": rows,
    }
    write_bytes_atomic(args.json, (json.dumps(record, indent=1) + "\n").encode())  # (no half-written result)
    print(json.dumps(record, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
