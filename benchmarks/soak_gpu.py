"""GPU soak: 100,000 720p frames through one Translator; checks that GPU and host memory stay flat.

Run on a GPU machine (not part of the CPU test suite):

    python benchmarks/soak_gpu.py --pair summer2winter --backend auto --frames 100000 --out soak_gpu.json

Every `--every` frames it samples: the process's GPU memory (NVML / nvidia-smi for this pid, else the
device's used memory via cuda-python or torch), resident host memory (RSS), and the running fps. After a
warm-up (`--warmup` frames, default 1000) memory must not grow by more than `--max-growth` (default 5%) and
`--max-growth-mib` (default 64 MiB) for GPU memory, the same fraction for RSS. Writes one JSON object to
--out and exits 1 when memory was not flat (2 on a usage error).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time


def rss_bytes() -> int:
    try:
        import psutil

        return psutil.Process(os.getpid()).memory_info().rss
    except ImportError:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class GpuMemory:
    """This process's GPU memory in bytes (best available probe); `how` names the probe."""

    def __init__(self, device: int = 0):
        self.device, self.how = device, None
        try:
            import pynvml

            pynvml.nvmlInit()
            self._nvml, self._handle = pynvml, pynvml.nvmlDeviceGetHandleByIndex(device)
            self.how = "nvml-process"
            return
        except Exception:  # noqa: BLE001 - optional probe
            self._nvml = None
        if shutil.which("nvidia-smi"):
            self.how = "nvidia-smi-process"
        else:
            self.how = "device-used"

    def __call__(self) -> int | None:
        pid = os.getpid()
        if self._nvml is not None:
            for p in self._nvml.nvmlDeviceGetComputeRunningProcesses(self._handle):
                if p.pid == pid:
                    return int(p.usedGpuMemory or 0)
            return self._device_used()
        if self.how == "nvidia-smi-process":
            try:
                out = subprocess.run(["nvidia-smi", "--query-compute-apps=pid,used_memory",
                                      "--format=csv,noheader,nounits"], capture_output=True, text=True,
                                     timeout=10).stdout
                for line in out.splitlines():
                    parts = [x.strip() for x in line.split(",")]
                    if len(parts) == 2 and parts[0] == str(pid) and parts[1].isdigit():
                        return int(parts[1]) << 20
            except (OSError, subprocess.SubprocessError):
                pass
        return self._device_used()

    def _device_used(self) -> int | None:
        try:
            from cuda.bindings import runtime as cudart  # cuda-python >= 12.6
        except ImportError:
            try:
                from cuda import cudart
            except ImportError:
                cudart = None
        if cudart is not None:
            try:
                err, free, total = cudart.cudaMemGetInfo()
                if int(err) == 0:
                    return int(total - free)
            except Exception:  # noqa: BLE001 - no driver / no device
                pass
        if "torch" in sys.modules:
            import torch

            if torch.cuda.is_available():
                free, total = torch.cuda.mem_get_info(self.device)
                return int(total - free)
        return None  # no GPU probe here (e.g. a CPU smoke run): GPU memory is reported as not measured


def parse_size(text: str) -> tuple[int, int]:
    w, _, h = text.lower().partition("x")
    return int(w), int(h)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pair", default="summer2winter", help="pair name, pair folder or export folder")
    ap.add_argument("--backend", default="auto")
    ap.add_argument("--precision", default=None)
    ap.add_argument("--frames", type=int, default=100_000)
    ap.add_argument("--warmup", type=int, default=1000)
    ap.add_argument("--every", type=int, default=500, help="sample memory every N frames")
    ap.add_argument("--size", default="1280x720", help="WxH of the synthetic frames")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--max-growth", type=float, default=0.05)
    ap.add_argument("--max-growth-mib", type=float, default=64.0)
    ap.add_argument("--out", default="soak_gpu.json")
    a = ap.parse_args(argv)
    if a.frames <= a.warmup or a.every < 1 or a.batch < 1:
        print("error: --frames must exceed --warmup; --every and --batch must be >= 1", file=sys.stderr)
        return 2

    import numpy as np

    from cgan.errors import CganError
    from cgan.runtime import Translator

    w, h = parse_size(a.size)
    rng = np.random.default_rng(0)
    base_frames = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for _ in range(4)]
    gpu = GpuMemory()
    samples, t_start = [], time.perf_counter()
    try:
        t = Translator.load(a.pair, backend=a.backend, precision=a.precision)
    except CganError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    with t:
        done, last_t, last_done = 0, time.perf_counter(), 0
        while done < a.frames:
            k = min(a.batch, a.frames - done)
            batch = [base_frames[(done + i) % 4] for i in range(k)]
            outs = t.translate_batch(batch)
            assert len(outs) == k and outs[0].shape == (h, w, 3)
            prev, done = done, done + k
            if done // a.every != prev // a.every or done == a.frames:
                now = time.perf_counter()
                samples.append({"frame": done, "t": round(now - t_start, 3), "gpu_bytes": gpu(),
                                "rss_bytes": rss_bytes(), "fps": round((done - last_done) / (now - last_t), 2)})
                last_t, last_done = now, done
                print(f"{done:>7} frames  gpu {(samples[-1]['gpu_bytes'] or 0) / 2**20:8.1f} MiB  "
                      f"rss {samples[-1]['rss_bytes'] / 2**20:8.1f} MiB  {samples[-1]['fps']:7.1f} fps", flush=True)
        info = t.info.as_dict()
    after = [s for s in samples if s["frame"] >= a.warmup] or samples
    verdict = {}
    for key, mib_cap in (("gpu_bytes", a.max_growth_mib), ("rss_bytes", None)):
        vals = [s[key] for s in after if s[key] is not None]
        if not vals:
            verdict[key] = {"measured": False}
            continue
        grow = max(vals) - vals[0]
        frac = grow / max(vals[0], 1)
        ok = frac <= a.max_growth and (mib_cap is None or grow <= mib_cap * 2**20)
        verdict[key] = {"measured": True, "base": vals[0], "max": max(vals), "end": vals[-1],
                        "growth_bytes": grow, "growth_fraction": round(frac, 5), "flat": ok}
    flat = all(v.get("flat", True) for v in verdict.values())
    seconds = time.perf_counter() - t_start
    result = {"kind": "cgan.soak-gpu", "version": 1, "translator": info, "frames": a.frames,
              "size": [w, h], "batch": a.batch, "warmup": a.warmup, "seconds": round(seconds, 2),
              "fps": round(a.frames / seconds, 2), "gpu_probe": gpu.how, "memory": verdict, "flat": flat,
              "limits": {"max_growth": a.max_growth, "max_growth_mib": a.max_growth_mib},
              "host": {"python": platform.python_version(), "machine": platform.node()}, "samples": samples}
    from cgan._files import write_bytes_atomic

    write_bytes_atomic(a.out, (json.dumps(result, indent=2) + "\n").encode())  # (no half-written result)
    print(f"{'flat' if flat else 'NOT FLAT'}: {a.frames} frames in {seconds:.0f} s; wrote {a.out}")
    return 0 if flat else 1


if __name__ == "__main__":
    sys.exit(main())
