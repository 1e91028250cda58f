"""Photo metadata on real photos: what dropping an ICC profile does to how a photo is shown, and what copying
EXIF data and profiles (cgan-video --metadata) costs and keeps. Needs Pillow (with [cpu]) as the independent
reader; the translation is the identity, so the figures are the photo pipeline's own.

    python benchmarks/photo_metadata.py ../shared/datasets/summer2winter_yosemite/testA \\
        ../shared/datasets/summer2winter_yosemite/testB --json benchmarks/results/photo-metadata-cpu-DATE.json
"""
from __future__ import annotations

import argparse
import collections
import datetime
import io
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageCms

from cgan._files import write_bytes_atomic
from cgan.runtime.photos import PhotoJob, find_photos, run_photos


class Identity:
    """A translator that returns its frames: the run's time is reading, checking and writing."""

    def translate_batch(self, frames):
        return list(frames)


def shown_error(path: Path) -> tuple[str, float] | None:
    """(profile description, mean |sRGB shown with the profile - the stored values shown as sRGB|, 0..255) for a
    photo with an ICC profile: how far off a copy written without its profile is shown."""
    with Image.open(path) as im:
        icc = im.info.get("icc_profile")
        if not icc:
            return None
        rgb = im.convert("RGB")
        profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        srgb = ImageCms.profileToProfile(rgb, profile, ImageCms.createProfile("sRGB"), outputMode="RGB")
    err = np.abs(np.asarray(srgb, np.int16) - np.asarray(rgb, np.int16)).mean()
    return ImageCms.getProfileDescription(profile).strip(), float(err)


def kept(src: Path, dst: Path) -> tuple[bool, bool, bool]:
    """(profile equal, EXIF present when the input had it, shown the same way up) for one translated copy."""
    with Image.open(src) as a, Image.open(dst) as b:
        icc = a.info.get("icc_profile") == b.info.get("icc_profile")
        exif = bool(a.getexif()) <= bool(b.getexif())
        up = a.getexif().get(0x0112, 1) in (1, None) or b.getexif().get(0x0112, 1) in (1, None)
        sa = (a.size[::-1] if a.getexif().get(0x0112, 1) in (5, 6, 7, 8) else a.size)
        sb = (b.size[::-1] if b.getexif().get(0x0112, 1) in (5, 6, 7, 8) else b.size)
    return icc, exif, up and sa == sb


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folders", nargs="+")
    ap.add_argument("--json", required=True)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    photos = [p for p, _, _ in find_photos(args.folders)]
    errors: dict[str, list[float]] = collections.defaultdict(list)
    n_exif = 0
    for p in photos:
        found = shown_error(p)
        if found:
            errors[found[0]].append(found[1])
        with Image.open(p) as im:
            n_exif += bool(im.getexif())
    profiles = {name: {"photos": len(v), "mean_error": round(float(np.mean(v)), 2),
                       "max_error": round(float(np.max(v)), 2), "photos_error_over_2": int(sum(e > 2 for e in v))}
                for name, v in sorted(errors.items(), key=lambda kv: -len(kv[1]))}
    runs: dict[str, list[float]] = {"all": [], "none": []}
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.repeats):
            for mode in runs:
                seconds = 0.0
                for k, folder in enumerate(args.folders):  # one run each: two folders may hold the same names
                    out = Path(tmp) / f"{mode}{r}-{k}"
                    s = run_photos(PhotoJob(inputs=[folder], output=out, metadata=mode, progress=False,
                                            io_threads=1), translator=Identity())
                    assert s.photos == len(find_photos([folder])) and not s.failed, s.format()
                    seconds += s.seconds
                    if r == 0 and mode == "all":
                        results += [kept(p, out / rel) for p, rel, _ in find_photos([folder])]
                runs[mode].append(round(seconds, 3))
    checks = {"profiles_equal": sum(r[0] for r in results), "exif_kept": sum(r[1] for r in results),
              "shown_same_way_up": sum(r[2] for r in results)}
    record = {
        "what": "ICC profiles and EXIF data of real photos: the display error a copy without its profile has, and "
                "cgan-video photo mode with --metadata all vs none (identity translator, io_threads 1)",
        "command": "python benchmarks/photo_metadata.py " + " ".join(args.folders) + f" --json {args.json}",
        "machine": f"{platform.machine()}, {len(os.sched_getaffinity(0))} cores, no GPU used",
        "versions": {"python": platform.python_version(), "opencv": cv2.__version__,
                     "pillow": Image.__version__},
        "date": datetime.date.today().isoformat(),
        "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                                 text=True).stdout.strip(),
        "photos": len(photos), "photos_with_icc": sum(len(v) for v in errors.values()), "photos_with_exif": n_exif,
        "shown_error_without_profile": profiles,
        "shown_error_note": "mean |pixel shown through the photo's profile - stored value shown as sRGB|, 0..255, "
                            "per photo, then averaged over the photos with that profile",
        "run_seconds": runs, "copied_with_metadata_all": checks,
    }
    write_bytes_atomic(args.json, (json.dumps(record, indent=1) + "\n").encode())  # (no half-written result)
    print(json.dumps(record, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
