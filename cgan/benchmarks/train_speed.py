"""Training iterations per second: the official-style eager FP32 loop vs our fastest settings, same losses.

    python -m cgan.benchmarks.train_speed --json train_speed.json            # 256², batch 1, ngf 64, 9 blocks
    python -m cgan.benchmarks.train_speed --size 64 --ngf 8 --blocks 2 --json out.json   # tiny, CPU

Every row runs `cgan.trainer.train.CycleGAN.train_step` (both generator and discriminator updates, pools,
identity loss) on the same random input, after a warm-up (which also pays torch.compile), with device
synchronisation around the timed loop. On CUDA the rows are fp32 eager (baseline), bf16, bf16+channels_last,
bf16+channels_last+compile; on CPU fp32 eager and fp32+channels_last (compile/bf16 on request).

This module imports torch only inside functions, so `cgan-bench` can list it without torch.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import math
import platform
import time
from typing import Any

from cgan._files import write_json_atomic

#: (name, precision, channels_last, compile)
CUDA_ROWS = [("official-eager-fp32", "fp32", False, False), ("bf16", "bf16", False, False),
             ("bf16+channels_last", "bf16", True, False), ("bf16+channels_last+compile", "bf16", True, True)]
CPU_ROWS = [("official-eager-fp32", "fp32", False, False), ("fp32+channels_last", "fp32", True, False)]


def fastest_settings(rows: list[dict[str, Any]], seconds: float) -> tuple[dict[str, Any] | None, float]:
    """The measured row that trains the most steps in `seconds`, and that many steps. A compiled row pays its
    warm-up (the compilation) again out of `seconds`: a training run compiles anew, and a run too short to
    earn the compilation back trains eager; a compiled row that does not say its warm-up is left out (its cost
    is unknown). (None, 0.0) when no row trains a step in that time."""
    best, most = None, 0.0
    if not isinstance(seconds, (int, float)) or not math.isfinite(seconds) or seconds <= 0:
        return None, 0.0
    for row in rows:
        rate, warm = row.get("it_per_s"), row.get("warmup_s") if row.get("compile") else 0.0
        if "error" in row or not _finite(rate) or rate <= 0 or not _finite(warm) or warm < 0:
            continue
        steps = rate * max(0.0, seconds - warm)
        if steps > most:
            best, most = row, steps
    return best, most


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def settings_flags(row: dict[str, Any] | None) -> str:
    """cgan-train flags for a row of run_train_bench; with none, FP32 NCHW eager (the fastest measured on an H200
    for the embedded pair's networks, 2026-12-04)."""
    if row is None:
        return "--precision fp32"
    return (f"--precision {row.get('precision') or 'fp32'}" + (" --channels-last" if row.get("channels_last") else "")
            + (" --compile" if row.get("compile") else ""))


def run_train_bench(size: int = 256, ngf: int = 64, blocks: int = 9, batch: int = 1, device: str = "auto",
                    steps: int = 20, warmup: int = 5, rows: list[tuple[str, str, bool, bool]] | None = None,
                    threads: int | None = None) -> dict[str, Any]:
    """Time `steps` training iterations per configuration; returns {"rows": [...], "env": {...}}."""
    import torch

    from cgan.trainer.config import TrainConfig
    from cgan.trainer.train import CycleGAN, resolve_device

    if threads:
        torch.set_num_threads(threads)
    dev = resolve_device(device)
    if rows is None:
        rows = CUDA_ROWS if dev.type == "cuda" else CPU_ROWS
    gen = torch.Generator().manual_seed(0)
    real_x = torch.rand(batch, 3, size, size, generator=gen) * 2 - 1
    real_y = torch.rand(batch, 3, size, size, generator=gen) * 2 - 1
    if dev.type == "cuda":
        real_x, real_y = real_x.to(dev), real_y.to(dev)
        torch.backends.cudnn.benchmark = True

    def sync() -> None:
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)

    out = []
    baseline = None
    for name, precision, channels_last, compile_ in rows:
        cfg = TrainConfig(name="bench", size=size, load_size=size, ngf=ngf, blocks=blocks, batch_size=batch,
                          precision=precision, channels_last=channels_last, compile=compile_, device=str(dev))
        row = {"name": name, "precision": precision, "channels_last": channels_last, "compile": compile_}
        model = None
        try:
            t_warm = time.perf_counter()
            model = CycleGAN(cfg, dev)
            for _ in range(warmup):
                model.train_step(real_x, real_y)
            sync()
            warmup_s = time.perf_counter() - t_warm  # building the networks, the warm-up steps, compiling
            t0 = time.perf_counter()
            for _ in range(steps):
                model.train_step(real_x, real_y)
            sync()
            seconds = time.perf_counter() - t0
        except Exception as e:  # noqa: BLE001 - one configuration failing (compile, memory) ends only its row
            row["error"] = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"[:300]
            out.append(row)
        else:
            it_s = steps / seconds
            if not out:
                baseline = it_s  # the first row, eager FP32, is the baseline; if it failed there is none
            # four significant figures (rounded to 3 decimals, a CPU's 0.0534 it/s was 0.053: 1 % off), steps kept
            row.update(it_per_s=float(f"{it_s:.4g}"), ms_per_it=float(f"{1000 * seconds / steps:.4g}"),
                       speedup_vs_baseline=float(f"{it_s / baseline:.4g}") if baseline else None, steps=steps,
                       warmup_s=round(warmup_s, 2))
            out.append(row)
        del model
        if dev.type == "cuda":
            torch.cuda.empty_cache()
    env = {"device": torch.cuda.get_device_name(dev) if dev.type == "cuda" else f"cpu ({platform.processor() or platform.machine()})",
           "torch": str(torch.__version__), "threads": torch.get_num_threads(),
           "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
           "size": size, "ngf": ngf, "blocks": blocks, "batch": batch, "steps": steps, "warmup": warmup}
    return {"rows": out, "env": env}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--ngf", type=int, default=64)
    p.add_argument("--blocks", type=int, default=9)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--device", default="auto")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--json", dest="json_out", default=None, help="Write the result here (atomically).")
    a = p.parse_args(argv)
    for name, low in (("steps", 1), ("warmup", 0), ("size", 24), ("ngf", 1), ("blocks", 1), ("batch", 1)):
        if getattr(a, name) < low:
            p.error(f"--{name} must be at least {low}, got {getattr(a, name)}")
    result = run_train_bench(a.size, a.ngf, a.blocks, a.batch, a.device, a.steps, a.warmup, threads=a.threads)
    for r in result["rows"]:
        if "error" in r:
            print(f"{r['name']:<28} error: {r['error']}")
        else:
            x = f"x{r['speedup_vs_baseline']:.2f}" if r["speedup_vs_baseline"] else "x?"
            print(f"{r['name']:<28} {r['it_per_s']:>8.2f} it/s {r['ms_per_it']:>9.1f} ms/it  {x}")
    if a.json_out:
        write_json_atomic(a.json_out, result)
    else:
        print(json.dumps(result["env"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
