"""The end-to-end row: a generated clip through the cgan-video pipeline (decode → translate → encode).

The clip is synthesized (the same smooth landscape as the inference rows, drifting sideways) and encoded with
cv2.VideoWriter (mp4v) into a temporary .mp4; `cgan.runtime.video.run_video` then decodes, translates and
encodes it to another temporary .mp4 (the default codec: H.264 with PyAV, else mp4v; `stages.codec` says
which). The row's fps is frames written / wall time of the whole run; `stages`
holds the pipeline's own per-stage fps (frames / busy seconds of that stage) and its capture→written latency.
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from cgan.benchmarks.report import empty_row


def write_clip(path: Path, height: int, width: int, frames: int, fps: float = 30.0) -> Path:
    """Encode `frames` synthetic BGR frames of height×width to `path` (mp4v)."""
    import cv2

    from cgan.benchmarks.bench import synthetic_frame

    base = synthetic_frame(height, width + frames * 2, seed=0)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    if not writer.isOpened():
        raise RuntimeError(f"cv2.VideoWriter cannot write mp4v to {path}")
    try:
        for i in range(frames):
            writer.write(np.ascontiguousarray(base[:, 2 * i:2 * i + width]))
    finally:
        writer.release()
    return path


def run_e2e(cfg: Any, prepared: Any, backend: str, precision: str,
            on_row: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """One row for `backend`/`precision` on a cfg.e2e_frames-frame clip of cfg.e2e_size."""
    from cgan.benchmarks.bench import _short, failed_status
    from cgan.benchmarks.runners import RUNTIME_NAMES, TranslatorRunner, runtime_availability, variant

    h, w = cfg.e2e_size
    row = empty_row(f"video:{backend}", precision, 1, h, w)
    source = prepared.export_folder or prepared.pair_folder
    try:
        base = variant(backend).base
        missing = prepared.unavailable(base)
        if missing:
            # the export failed (a CganError or a missing module, e.g. no GPU to build an engine on): the row
            # cannot run here, like every other row whose backend cannot, and says why
            ok, reason = runtime_availability(backend, prepared.pair_folder)
            broke = ok and prepared.export_broke  # (not lacking a library)
            row.update(status="error" if broke else "skipped", reason=reason if not ok else missing)
            return row
        ok, reason = runtime_availability(backend, source)
        if not ok:
            row.update(status="skipped", reason=reason)
            return row
        from cgan.runtime.video import VideoJob, run_video

        with tempfile.TemporaryDirectory(prefix="cgan-bench-e2e-") as tmp:
            clip = write_clip(Path(tmp) / "clip.mp4", h, w, cfg.e2e_frames)
            runner = TranslatorRunner(backend, source, prepared.gen, precision, cfg.threads)
            t0 = time.perf_counter()
            runner.build()
            row["build_s"] = time.perf_counter() - t0
            try:
                t0 = time.perf_counter()  # warm-up outside the timed pipeline (compiles, captures at this size)
                runner([np.zeros((h, w, 3), np.uint8)])
                runner.sync()
                row["first_call_s"] = time.perf_counter() - t0
                row["options"] = runner.options()
                job = VideoJob(inputs=[str(clip)], pair=str(source), direction=prepared.gen,
                               output=str(Path(tmp) / "out.mp4"), display=False, backend=RUNTIME_NAMES[base][0],
                               precision=precision, progress=False, handle_signals=False)
                summary = run_video(job, translator=runner.translator)
            finally:
                runner.close()
        s = summary.to_dict() if hasattr(summary, "to_dict") else dict(vars(summary))
        row.update(p50_ms=s.get("latency_p50_ms"), p99_ms=s.get("latency_p99_ms"), fps=s.get("fps"),
                   iters=s.get("frames"),
                   stages={k: s.get(k) for k in ("decode_fps", "translate_fps", "encode_fps", "fps", "frames",
                                                 "dropped", "seconds", "latency_p50_ms", "latency_p99_ms")})
        row["stages"]["codec"] = (s.get("streams") or [{}])[0].get("codec")  # what encode_fps encoded
        if not s.get("frames"):
            row.update(status="error", reason="the pipeline wrote no frames")
    except Exception as e:  # noqa: BLE001 - a failed row, not a failed run
        row.update(status=failed_status(e), reason=_short(e))
    finally:
        if on_row:
            on_row(row)
    return row
