"""cgan-bench as a library: rows of backend × resolution × precision × batch, each against the official baseline.

    from cgan.benchmarks.bench import BenchConfig, run_bench
    result = run_bench(BenchConfig(backends=("ort-cpu",), sizes=((256, 256),), precisions=("fp32",), batches=(1,)))

Every row times one call that turns `batch` host BGR uint8 frames into host BGR uint8 frames (see runners.py):
`warmup` untimed calls, then `iters` timed calls (or as many as fit in `seconds`), each
`perf_counter` → call → device synchronize → `perf_counter`. Latencies are per call; fps = batch / mean latency.
Each run also times the official eager FP32 baseline at every (size, batch), and each row's speedup is its fps
over the baseline's fps at the same size and batch, measured in the same run. Accuracy is the row's output
against the exact FP32 PyTorch output (TF32 off) on the same smooth synthetic image, in 8-bit levels.
"""
from __future__ import annotations

import dataclasses
import hashlib
import logging
import math
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from cgan._limits import MAX_PIXELS, MAX_SIDE, max_threads
from cgan.benchmarks import sol
from cgan.runtime.frames import MIN_SIDE as FRAME_MIN_SIDE, MULTIPLE as FRAME_MULTIPLE
from cgan.benchmarks.checks import MAX_BATCH, check_batch, check_int, check_seconds
from cgan.benchmarks.report import RESULT_FORMAT, RESULT_VERSION, empty_row
from cgan.benchmarks.runners import (BACKENDS, CPU_BACKENDS, GPU_BACKENDS, MemoryProbe, OfficialBaseline, Runner,
                                     TranslatorRunner, _device_used_mb, _rss_mb, backend_device,
                                     runtime_availability, variant)
from cgan.benchmarks.variants import expand
from cgan.errors import BackendUnavailable, CganError, IntegrityError, ShapeUnsupported
from cgan.spec import GeneratorSpec, PairSpec

log = logging.getLogger("cgan.bench")

#: Named sizes, height × width. 480p is 480×856: 854 rounded up to the generator's multiple of 4.
SIZE_ALIASES: dict[str, tuple[int, int]] = {
    "256": (256, 256), "256p": (256, 256), "480p": (480, 856), "720p": (720, 1280), "1080p": (1080, 1920),
}
DEFAULT_SIZES = ((256, 256), (480, 856), (720, 1280), (1080, 1920))
PRECISIONS = ("fp32", "fp16")
BASELINE = "baseline"
#: The smallest side a row may have: the runtime's (cgan.runtime.frames.MIN_SIDE, 16). The generator alone takes
#: 8 (its first 7x7 convolution reflection-pads by 3, then two stride-2 convolutions quarter the side and every
#: residual block reflection-pads by 1), but the runtime pads sides under 16 before its generator and crops back,
#: so a Translator row at 8 or 12 would compute something else than the reference (~75 levels of "error").
MIN_SIDE = FRAME_MIN_SIDE
#: sides must be multiples of this (two stride-2 downsamplings, undone by two stride-2 transposed convolutions)
SIZE_MULTIPLE = FRAME_MULTIPLE


# ---- parsing (shared with the CLI) ---------------------------------------------------------------------
def parse_size(text: str, multiple: int = SIZE_MULTIPLE, min_side: int = MIN_SIDE) -> tuple[int, int]:
    """'720p' | '256' | 'HxW' (height first, e.g. 480x856) -> (height, width), both multiples of `multiple` and
    at least `min_side`."""
    t = str(text).strip().lower()
    if t in SIZE_ALIASES:
        return SIZE_ALIASES[t]
    m = re.fullmatch(r"(\d+)\s*[x×]\s*(\d+)", t)
    if not m:
        raise CganError(f"bad size {text!r}: use HEIGHTxWIDTH (e.g. 480x856) or one of {', '.join(SIZE_ALIASES)}")
    h, w = int(m.group(1)), int(m.group(2))
    if h * w > MAX_PIXELS:  # (first: the hint below named a size refused for this)
        raise CganError(f"bad size {text!r}: over the {MAX_SIDE}x{MAX_SIDE} pixels a frame may have")
    if h < min_side or w < min_side or h % multiple or w % multiple:
        def fix(v: int) -> int:
            return max(min_side, round(v / multiple) * multiple)

        hint = f"{fix(h)}x{fix(w)}"
        raise CganError(f"bad size {text!r}: height and width must be multiples of {multiple} and at least "
                        f"{min_side} (try {hint})")
    return h, w


def parse_list(text: str | None) -> list[str]:
    return [p.strip() for p in str(text or "").split(",") if p.strip()]


def parse_sizes(text: str) -> tuple[tuple[int, int], ...]:
    sizes = tuple(dict.fromkeys(parse_size(p) for p in parse_list(text)))  # (256,256x256: one size, measured once)
    if not sizes:
        raise CganError("--sizes is empty: give e.g. 256x256,720p")
    return sizes


def parse_backends(names: list[str] | tuple[str, ...], device: str) -> tuple[str, ...]:
    """Backend names -> row-set labels. 'all' = every backend for `device` (cuda: GPU backends; cpu: CPU
    backends); 'none' = no backend; 'torch' = torch-cuda or torch-cpu by `device`; `NAME+opt+opt` variants
    (e.g. torch-cuda+compile+graph) and presets (torch-steps), see cgan.benchmarks.variants."""
    groups = {"all": GPU_BACKENDS if device == "cuda" else CPU_BACKENDS, "none": ()}
    return expand(names, BACKENDS, device, groups)


def parse_e2e_backend(name: str, device: str) -> str:
    """--e2e-backend: exactly one backend or variant (no preset, no 'all')."""
    got = parse_backends([name], device)
    if len(got) != 1:
        raise CganError(f"--e2e-backend takes one backend or variant (e.g. torch-cuda+compile+graph), "
                        f"not {name!r}")
    return got[0]


def default_e2e_backend(backends: tuple[str, ...]) -> str:
    """The first backend asked for that is not torch on the CPU (else the first one, else ort-cpu)."""
    return next((b for b in backends if variant(b).base != "torch-cpu"), backends[0] if backends else "ort-cpu")


def e2e_precision_for(backend: str, precisions: tuple[str, ...]) -> str:
    """The clip row's precision: its own backend decides (a CPU backend on a GPU machine runs fp32; its fp16
    is refused), a GPU backend takes the last precision asked for."""
    return precisions[-1] if backend_device(backend) == "cuda" else "fp32"


def parse_choices(names: list[str], valid: tuple[str, ...], what: str) -> tuple[str, ...]:
    """`names` checked against `valid` (case folded, repeats dropped); "both" stands for both of two choices."""
    out = []
    for n in names:
        if n.lower() == "both" and len(valid) == 2:
            out += valid
            continue
        if n.lower() not in valid:
            raise CganError(f"unknown {what} {n!r}: use one or more of {', '.join(valid)}")
        out.append(n.lower())
    if not out:
        raise CganError(f"no {what} given: use one or more of {', '.join(valid)}")
    return tuple(dict.fromkeys(out))


def parse_batches(text: str) -> tuple[int, ...]:
    try:
        out = tuple(int(p) for p in parse_list(text))
    except ValueError:
        raise CganError(f"bad --batch {text!r}: use positive integers, e.g. 1,4") from None
    if not out or any(b < 1 or b > MAX_BATCH for b in out):
        raise CganError(f"bad --batch {text!r}: use integers 1..{MAX_BATCH}, e.g. 1,4")
    return tuple(dict.fromkeys(out))


def _torch_threads() -> int | None:
    import sys

    torch = sys.modules.get("torch")
    return torch.get_num_threads() if torch is not None else None


def default_device() -> str:
    try:
        import torch
    except ImportError:
        return "cpu"
    return "cuda" if torch.cuda.is_available() else "cpu"


# ---- statistics ----------------------------------------------------------------------------------------
def latency_stats(samples_ms: list[float] | np.ndarray) -> dict[str, float]:
    """p50/p90/p99/max/mean of per-call latencies (ms); percentiles interpolate linearly (numpy's default)."""
    a = np.asarray(samples_ms, dtype=np.float64)
    if a.size == 0:
        raise ValueError("no latency samples")
    p50, p90, p99 = np.percentile(a, [50, 90, 99])
    return {"p50_ms": float(p50), "p90_ms": float(p90), "p99_ms": float(p99), "max_ms": float(a.max()),
            "mean_ms": float(a.mean()), "iters": int(a.size)}


def fps_from(batch: int, mean_ms: float) -> float | None:
    return batch / (mean_ms / 1e3) if mean_ms and mean_ms > 0 else None


def speedup(fps: float | None, baseline_fps: float | None) -> float | None:
    """How many times faster than the baseline (same size, batch, run); None if either is missing."""
    if not fps or not baseline_fps:
        return None
    return fps / baseline_fps


def accuracy(reference: list[np.ndarray], outputs: list[np.ndarray]) -> tuple[float, float | None]:
    """(max abs error, PSNR dB) of uint8 outputs against float references in [0, 255]; PSNR None if identical."""
    if len(reference) != len(outputs):
        raise IntegrityError(f"backend returned {len(outputs)} frames for {len(reference)} inputs")
    se, n, worst = 0.0, 0, 0.0
    for ref, out in zip(reference, outputs):
        out = np.asarray(out)
        if out.shape != ref.shape:
            raise IntegrityError(f"backend returned a frame of shape {out.shape}, expected {ref.shape}")
        d = out.astype(np.float64) - ref.astype(np.float64)
        se += float(np.square(d).sum())
        n += d.size
        worst = max(worst, float(np.abs(d).max()))
    mse = se / n
    return worst, (10.0 * math.log10(255.0 ** 2 / mse) if mse > 0 else None)


# ---- realistic synthetic input ------------------------------------------------------------------------
def synthetic_frame(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A smooth, natural-looking BGR uint8 landscape (sky gradient, sun, layered hills, soft texture), not noise.

    `seed` shifts the scene a little, so the frames of a batch differ like consecutive video frames.
    """
    rng = np.random.default_rng(seed)
    y = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None]
    x = np.linspace(0.0, 1.0, width, dtype=np.float32)[None, :] + 0.01 * seed
    rgb = np.empty((height, width, 3), np.float32)
    # sky: blue at the top to pale near the horizon
    for c, (top, bottom) in enumerate(((70, 200), (130, 220), (210, 235))):
        rgb[..., c] = top + (bottom - top) * y
    # sun: a soft disc
    d2 = ((x - 0.75) * width / height) ** 2 + (y - 0.2) ** 2
    sun = np.exp(-d2 / 0.004)
    rgb += sun[..., None] * np.array([255, 230, 160], np.float32) * 0.6
    # three hill layers, far (bluish) to near (green/brown), with smooth sinusoidal ridges
    layers = (((0.55, 0.05), (110, 140, 150)), ((0.68, 0.07), (70, 120, 60)), ((0.82, 0.06), (90, 80, 40)))
    for i, ((base, amp), color) in enumerate(layers):
        ph = rng.uniform(0, 2 * np.pi, 3)
        ridge = base + amp * (np.sin(2 * np.pi * (1.3 * x) + ph[0]) + 0.5 * np.sin(2 * np.pi * 3.1 * x + ph[1])
                              + 0.25 * np.sin(2 * np.pi * 7.7 * x + ph[2]))
        mask = 1.0 / (1.0 + np.exp(-(y - ridge) * height / 3.0))  # anti-aliased edge
        shade = 0.85 + 0.15 * np.sin(2 * np.pi * (5 * x + 3 * y) + i)  # gentle texture
        rgb = rgb * (1 - mask[..., None]) + (mask * shade)[..., None] * np.array(color, np.float32)
    return np.ascontiguousarray(np.clip(rgb, 0, 255).astype(np.uint8)[..., ::-1])


# ---- configuration -------------------------------------------------------------------------------------
@dataclass
class BenchConfig:
    """Everything one `cgan-bench` run does; the CLI fills this in one to one."""

    source: str | None = None          # pair/export name or folder; None = random-weight standard generator
    direction: str | None = None       # G/F/summer2winter...; None = the first the source holds
    blocks: int = 9                    # random generator only
    ngf: int = 64                      # random generator only
    backends: tuple[str, ...] = ("all",)
    sizes: tuple[tuple[int, int], ...] = DEFAULT_SIZES
    precisions: tuple[str, ...] = PRECISIONS
    batches: tuple[int, ...] = (1, 4)
    warmup: int = 3
    iters: int = 20
    seconds: float | None = None       # time each row for this long instead of `iters` calls
    device: str | None = None          # cuda | cpu for the baseline and 'all'; None = cuda if available
    threads: int | None = None         # CPU threads for the baseline and CPU backends; None = their default
    baseline: bool = True
    e2e: bool = False                  # also the end-to-end video row
    e2e_frames: int = 48
    e2e_size: tuple[int, int] = (720, 1280)
    workdir: str | None = None         # where the random pair and exports are cached; None = $CGAN_HOME/bench
    rebuild: bool = False              # re-create cached pair/export
    e2e_backend: str | None = None     # None = the first GPU backend asked for (cpu: ort-cpu)
    export_options: dict[str, Any] = field(default_factory=dict)
    note: str | None = None            # free text kept in the result (where/why this run was made)
    budget_s: float | None = None      # rows that would start after this many seconds of the run are skipped

    def __post_init__(self) -> None:
        check_int(self.warmup, "--warmup", 0, 1_000_000)  # (a typo of 20 digits ran for ever)
        check_int(self.iters, "--iters", 1, 1_000_000)
        # NaN and infinity pass every `x <= 0` test, and a row timed for --seconds inf never ends
        self.seconds = check_seconds(self.seconds, "--seconds")
        if self.threads is not None:
            check_int(self.threads, "--threads", 1, max_threads())
        self.budget_s = check_seconds(self.budget_s, "--budget")
        if self.device not in (None, "cpu", "cuda"):
            raise CganError(f"unknown device {self.device!r}: use cuda or cpu")
        if not self.batches:
            raise CganError("no --batch given: use e.g. 1,4")
        for b in self.batches:
            check_batch(b)
        if not self.sizes:
            raise CganError("--sizes is empty: give e.g. 256x256,720p")
        for h, w in (*self.sizes, *([self.e2e_size] if self.e2e else [])):
            parse_size(f"{h}x{w}")  # the same limits as the command line (Python callers pass tuples)
        if self.e2e:
            check_int(self.e2e_frames, "--e2e-frames", 1, 100_000)
        if self.source is None:  # the random generator: 1..64 blocks, ngf 1..1024, one line otherwise
            GeneratorSpec(blocks=self.blocks, ngf=self.ngf)

    def public(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["sizes"] = [list(s) for s in self.sizes]
        d["e2e_size"] = list(self.e2e_size)
        if self.source is not None:  # a pair's own architecture is in the result's spec; these were not used
            d["blocks"] = d["ngf"] = None
        return d


# ---- model preparation ---------------------------------------------------------------------------------
@dataclass
class Prepared:
    pair_folder: Path
    export_folder: Path | None
    gen: str
    spec: GeneratorSpec
    name: str
    info: dict[str, Any]
    export_error: str | None = None
    export_broke: bool = False  # the last export tried failed for another reason than a library or GPU missing
    engine_error: str | None = None  # the export's TensorRT engines failed (the ONNX-only export may stand)

    def unavailable(self, backend: str) -> str | None:
        """Why `backend` cannot run for want of its export (None: the export it needs is there)."""
        if backend.startswith("torch"):
            return None
        if backend.startswith("tensorrt") and self.engine_error:
            return self.engine_error
        return None if self.export_folder is not None else (self.export_error or "no export folder")


def check_before_work(cfg: BenchConfig) -> None:
    """What would stop the run after it has started writing --json (and exporting): the direction, a CUDA
    device asked for and not here, an unwritable workdir. Said in one line before any work."""
    from cgan._files import ensure_writable_dir
    from cgan.pairs import PAIR_JSON, load_pair, resolve

    if cfg.source is None:
        PairSpec(GeneratorSpec(blocks=cfg.blocks, ngf=cfg.ngf), "bench", "random").resolve_direction(
            cfg.direction, ("G",))
    else:
        r = resolve(cfg.source)
        folder = r.folder / "pair" if r.kind == "export" else r.folder
        if (folder / PAIR_JSON).is_file():  # (a broken one is said, as before, when the run loads it)
            pair = load_pair(folder)  # its weights' hashes too: a corrupt pair replaced the previous --json
            pair.spec.resolve_direction(cfg.direction or r.direction, tuple(pair.generators))
    if cfg.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise CganError("--device cuda: torch has no CUDA device here (a CPU build of torch, or no GPU); use "
                            "--device cpu")
    ensure_writable_dir(_workdir(cfg), "the benchmark's --workdir")


def _workdir(cfg: BenchConfig) -> Path:
    from cgan.pairs import cgan_home

    return Path(cfg.workdir) if cfg.workdir else cgan_home() / "bench"


def random_folder(cfg: BenchConfig) -> Path:
    """Where the cache keeps the random pair of cfg's --blocks and --ngf."""
    return _workdir(cfg) / f"random-b{cfg.blocks}-ngf{cfg.ngf}"


def random_pair(folder: Path, blocks: int, ngf: int, seed: int = 0, rebuild: bool = False) -> Path:
    """A single-direction (G only) pair with the paper's random initialisation: fine for speed."""
    from cgan.pairs import PAIR_JSON

    if (folder / PAIR_JSON).is_file() and not rebuild:
        return folder
    import torch

    from cgan.trainer.networks import build_generator
    from cgan.trainer.weights import save_pair

    spec = GeneratorSpec(blocks=blocks, ngf=ngf)
    gen = torch.Generator().manual_seed(seed)
    net = build_generator(spec, init=False)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d)):
                m.weight.normal_(0.0, 0.02, generator=gen)
                m.bias.zero_()
    return save_pair(folder, PairSpec(spec, "bench", "random"), {"G": net.state_dict()},
                     provenance={"source": "cgan-bench random init", "seed": seed})


def _find_export_pair() -> Callable[..., Path]:
    """The exporter's entry point (a function: tests put a fake in its place)."""
    from cgan.export import export_pair

    return export_pair


def prepare(cfg: BenchConfig, backends: tuple[str, ...], e2e_backend: str | None = None) -> Prepared:
    """Find or make the pair and (if any backend, or the end-to-end row's `e2e_backend`, needs one) its export
    folder, cached under the workdir."""
    from cgan.pairs import load_pair, resolve

    work = _workdir(cfg)
    info: dict[str, Any] = {}
    export_folder = None
    if cfg.source is None:
        pair_folder = random_folder(cfg)
        t0 = time.perf_counter()
        random_pair(pair_folder, cfg.blocks, cfg.ngf, rebuild=cfg.rebuild)
        info["pair_s"] = round(time.perf_counter() - t0, 3)
        direction = None
    else:
        r = resolve(cfg.source)
        direction = cfg.direction or r.direction
        if r.kind == "export":
            export_folder = r.folder
            pair_folder = r.folder / "pair"
        else:
            pair_folder = r.folder
    pair = load_pair(pair_folder)
    gen = pair.spec.resolve_direction(cfg.direction or direction, pair.generators)
    name = pair.spec.direction_name(gen) if cfg.source else f"random b{cfg.blocks} ngf{cfg.ngf}"
    info.update(source=str(cfg.source or pair_folder), pair_folder=str(pair_folder), generator=gen,
                direction=pair.spec.direction_name(gen), spec=pair.spec.generator.to_dict())
    prepared = Prepared(pair_folder, export_folder, gen, pair.spec.generator, name, info)
    e2e = (e2e_backend or cfg.e2e_backend or default_e2e_backend(backends)) if cfg.e2e else "torch-cpu"
    needs_export = any(not b.startswith("torch") for b in (*backends, e2e))
    if export_folder is None and needs_export:
        engine = any(b.startswith("tensorrt") for b in (*backends, e2e))
        opts: dict[str, Any] = {"fp16": engine or "fp16" in cfg.precisions,
                                "with_prepost": "cuda" in {backend_device(b) for b in backends}, "engine": engine}
        if engine:  # the engines' optimisation profile must cover every size and batch of this run
            sizes = [*cfg.sizes, *([cfg.e2e_size] if cfg.e2e else [])]
            lo = (min(h for h, _ in sizes), min(w for _, w in sizes))
            hi = (max(h for h, _ in sizes), max(w for _, w in sizes))
            opt = (720, 1280) if lo[0] <= 720 <= hi[0] and lo[1] <= 1280 <= hi[1] else hi
            opts["shapes"] = ",".join(f"{h}x{w}" for h, w in (lo, opt, hi))
            opts["batch"] = f"1,1,{max(cfg.batches)}"
        opts.update(cfg.export_options)
        _export(cfg, prepared, pair, work, opts)
        if prepared.export_folder is None and engine:  # no engines here (no GPU, no TensorRT): the ONNX backends
            prepared.engine_error = _engine_reason(prepared.export_error)  # still run, from an export without
            prepared.export_error = None                                    # engines
            _export(cfg, prepared, pair, work, {k: v for k, v in opts.items() if k not in ENGINE_OPTIONS})
            info["export"]["engine_error"] = prepared.engine_error
    return prepared


#: cgan-export options that only shape the TensorRT engines
ENGINE_OPTIONS = ("engine", "shapes", "batch", "trt_flavour", "trt_target", "opt_level", "workspace_gb")


def _engine_reason(error: str | None) -> str:
    """The reason a TensorRT row gives when its engines could not be built."""
    return "no TensorRT engine: " + (error or "export failed").replace("export failed: ", "", 1)


def _cache_lock(folder: Path) -> Any:
    from cgan._locks import folder_lock

    return folder_lock(folder, f"another cgan-bench is preparing {folder}; waiting for it")


def _export(cfg: BenchConfig, prepared: Prepared, pair: Any, work: Path, opts: dict[str, Any]) -> None:
    """The export `opts` describe, from the workdir's cache or made now; its folder (or the error) goes into
    `prepared`."""
    info = prepared.info
    key = hashlib.sha256(repr((sorted(pair.files[prepared.gen].items()), sorted(opts.items()))).encode()
                         ).hexdigest()[:12]
    out = work / "exports" / f"{prepared.pair_folder.name}-{key}"
    prepared.export_broke = False  # (an engine export that failed is retried without engines)
    try:
        # one cgan-bench at a time makes an export of the cache (two runs sharing a --workdir: the second removed
        # the first's half-made export under it); the exporter takes the same lock again inside
        with _cache_lock(out):
            if (out / "manifest.json").is_file() and not cfg.rebuild:
                info["export"] = {"folder": str(out), "cached": True, "options": opts}
                prepared.export_folder = out
                return
            export_pair = _find_export_pair()
            if out.exists():  # a stale or half-made export in our own cache
                import shutil

                shutil.rmtree(out)
            t0 = time.perf_counter()
            export_pair(prepared.pair_folder, out, **opts)
        info["export"] = {"folder": str(out), "cached": False, "options": opts,
                          "export_s": round(time.perf_counter() - t0, 3)}
        prepared.export_folder = out
    except (CganError, ImportError) as e:
        from cgan._cli import missing_extra

        if isinstance(e, BackendUnavailable) and opts.get("engine"):  # the exporter's alternative names its own
            e = e.instead("leave the tensorrt backends out of --backends")  # --engine, no option of this command

        missing = missing_extra(e, "the export") if isinstance(e, ModuleNotFoundError) else None
        prepared.export_error = f"export failed: {missing or e}"  # (the extra named: 'No module named onnx')
        # what cannot run here skips the rows that need the export; any other failure (a folder refused, a
        # disk full, a parity check failed) makes them errors, which fail the run (it exited 0)
        prepared.export_broke = not isinstance(e, (BackendUnavailable, ImportError))
        info["export"] = {"error": prepared.export_error, "options": opts}


# ---- measuring -----------------------------------------------------------------------------------------
class ExportFailed(Exception):
    """The export a row needs failed for another reason than what this machine lacks: the row is an error."""


def failed_status(e: BaseException) -> str:
    """The status of a row that could not be measured: 'skipped' for what cannot run here (no library, no GPU,
    a backend refusing), 'error' (which fails the run) for a corrupt or replaced model file (IntegrityError) or a
    crash."""
    if isinstance(e, IntegrityError):
        return "error"
    return "skipped" if isinstance(e, (BackendUnavailable, CganError, ImportError)) else "error"


def time_calls(runner: Runner | Callable[[list[np.ndarray]], Any], frames: list[np.ndarray], warmup: int,
               iters: int, seconds: float | None = None,
               sync: Callable[[], None] | None = None, info: dict[str, Any] | None = None) -> list[float]:
    """Per-call latencies in ms: `warmup` untimed calls, then `iters` calls (or until `seconds` have passed).
    `info`, when given, receives `warmup_s`: the seconds the untimed calls took."""
    sync = sync or getattr(runner, "sync", None) or (lambda: None)
    t0 = time.perf_counter()
    for _ in range(warmup):
        runner(frames)
    sync()
    if info is not None:
        info["warmup_s"] = time.perf_counter() - t0
    samples: list[float] = []
    start = time.perf_counter()
    while True:
        t0 = time.perf_counter()
        runner(frames)
        sync()
        samples.append((time.perf_counter() - t0) * 1e3)
        if seconds is None:
            if len(samples) >= iters:
                break
        elif time.perf_counter() - start >= seconds and len(samples) >= 2:
            break
    return samples


def _finish_row(row: dict[str, Any], samples: list[float], spec: GeneratorSpec, peak: float | None,
                baseline_fps: float | None) -> None:
    row.update(latency_stats(samples))
    row["fps"] = fps_from(row["batch"], row["mean_ms"])
    row["tflops"] = sol.achieved_tflops(spec, row["height"], row["width"], row["batch"], row["mean_ms"] / 1e3)
    row["pct_of_peak"] = sol.pct_of_peak(row["tflops"], peak)
    row["speedup_vs_baseline"] = speedup(row["fps"], baseline_fps)


def _short(e: BaseException) -> str:
    msg = str(e).strip().splitlines()[0] if str(e).strip() else ""
    return f"{type(e).__name__}: {msg}"[:300] if not isinstance(e, CganError) else msg[:300]


_clock = time.perf_counter  # the --budget clock (tests replace it)


def _budget_spent(cfg: BenchConfig, deadline: float | None) -> str | None:
    """The skip reason once the run's --budget is spent (a row that has started always finishes)."""
    if deadline is None or _clock() < deadline:
        return None
    return f"--budget {cfg.budget_s:g} s was spent before this row started"


def _measure_runner(make: Callable[[], Runner], label: tuple[str, str], cfg: BenchConfig, sizes, frames_by_size,
                    refs_by_size, spec, peak, baseline_fps: dict, on_row,
                    deadline: float | None = None) -> list[dict[str, Any]]:
    """Build one runner, then time it at every size × batch (one session serves all shapes, as in video use)."""
    name, precision = label
    rows: list[dict[str, Any]] = []
    runner = None
    build_s = None
    rss0, gpu0 = _rss_mb(), _device_used_mb()
    try:
        spent = _budget_spent(cfg, deadline)
        if spent:
            raise CganError(spent)
        runner = make()
        t0 = time.perf_counter()
        runner.build()
        build_s = time.perf_counter() - t0
    except Exception as e:  # noqa: BLE001 - every failure becomes a row, the run goes on
        status = failed_status(e)
        for (h, w) in sizes:
            for b in cfg.batches:
                row = empty_row(name, precision, b, h, w)
                row.update(status=status, reason=_short(e))
                rows.append(row)
                on_row(row)
        return rows
    try:
        for (h, w) in sizes:
            for b in cfg.batches:
                row = empty_row(name, precision, b, h, w)
                spent = _budget_spent(cfg, deadline)
                if spent:
                    row.update(status="skipped", reason=spent)
                    rows.append(row)
                    on_row(row)
                    continue
                row["build_s"] = build_s
                frames = frames_by_size[(h, w)][:b]
                probe = MemoryProbe(runner.device, runner.torch_based, rss0, gpu0)
                refs = refs_by_size[(h, w)][:b]
                try:
                    probe.start()
                    # The first call at a shape does its lazy work (torch.compile compiles for this size,
                    # CUDA graphs are captured, cuDNN/ORT pick algorithms): timed on its own as first_call_s,
                    # like the warm-up calls after it (warmup_s) never part of the latencies.
                    t0 = time.perf_counter()
                    out = runner(frames)
                    runner.sync()
                    row["first_call_s"] = time.perf_counter() - t0
                    row["options"] = runner.options() if hasattr(runner, "options") else None
                    first = accuracy(refs, out)
                    probe.pause()  # (the timed calls run without the memory sampler)
                    samples = time_calls(runner, frames, cfg.warmup, cfg.iters, cfg.seconds, info=row)
                    probe.resume()
                    # the timed calls take another path than the first (a replayed CUDA graph, a compiled
                    # kernel): check that path too and report the worse of the two
                    out = runner(frames)
                    runner.sync()
                    steady = accuracy(refs, out)
                    row["max_abs_err"] = max(first[0], steady[0])
                    psnrs = [p for p in (first[1], steady[1]) if p is not None]
                    row["psnr_db"] = min(psnrs) if psnrs else None
                    row["peak_mem_mb"], row["peak_mem_source"] = probe.stop()
                    _finish_row(row, samples, spec, peak, baseline_fps.get((h, w, b)))
                except Exception as e:  # noqa: BLE001
                    probe.stop_quietly()
                    # a backend that is not there, or a shape its model cannot take (outside a TensorRT
                    # engine's profiles), is 'skipped'; a failure while measuring (wrong output, an execution
                    # error, out of memory) is an error that fails the run
                    row.update(status="skipped" if isinstance(e, (BackendUnavailable, ShapeUnsupported)) else "error",
                               reason=_short(e))
                rows.append(row)
                on_row(row)
    finally:
        runner.__exit__(None, None, None)
    return rows


def run_bench(cfg: BenchConfig, on_row: Callable[[dict[str, Any]], None] | None = None,
              checkpoint: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Run every row of `cfg`; return the result dict (see report.RESULT_SCHEMA). Rows that cannot run are
    kept with status 'skipped' (and the reason), rows that fail with status 'error'.

    `checkpoint(result)`, when given, gets the result so far (`"complete": False`) after every row, so a run
    that is killed (a device lease that ends, `timeout`) still leaves the rows it finished."""
    from cgan.benchmarks.env import collect_env

    t_start = time.perf_counter()
    deadline = _clock() + cfg.budget_s if cfg.budget_s else None
    user_on_row = on_row or (lambda row: None)
    done: list[dict[str, Any]] = []
    partial: dict[str, Any] = {}

    def on_row(row: dict[str, Any]) -> None:
        done.append(row)
        user_on_row(row)
        if checkpoint is not None and partial:
            checkpoint({**partial, "rows": list(done)})

    device = cfg.device or default_device()
    backends = parse_backends(cfg.backends, device)
    if not backends and not cfg.baseline and not cfg.e2e:
        raise CganError("nothing to measure: --backends none with --no-baseline; name a backend or keep the baseline")
    precisions = parse_choices(list(cfg.precisions), PRECISIONS, "precision")
    e2e_backend = None
    if cfg.e2e:
        e2e_backend = parse_e2e_backend(cfg.e2e_backend, device) if cfg.e2e_backend else default_e2e_backend(backends)
    env = collect_env()
    peak = sol.peak_fp16_tflops(env.get("gpu")) if device == "cuda" or any(
        backend_device(b) == "cuda" for b in backends) else None
    env["peak_fp16_tflops"] = peak
    config = {**cfg.public(), "device": device, "backends": list(backends),
              "backend_options": {b: variant(b).opts for b in (*backends, *([e2e_backend] * cfg.e2e))},
              "precisions": list(precisions)}
    partial.update({"format": RESULT_FORMAT, "version": RESULT_VERSION, "kind": "inference", "complete": False,
                    "env": env, "config": config})
    if checkpoint is not None:  # at once: a run stopped while exporting left the previous run's file, "complete"
        checkpoint({**partial, "rows": []})
    prepared = prepare(cfg, backends, e2e_backend)
    config.update({"model": prepared.name, **prepared.info})
    frames_by_size, refs_by_size = {}, {}
    nmax = max(cfg.batches)
    for (h, w) in cfg.sizes:
        frames_by_size[(h, w)] = [synthetic_frame(h, w, seed=i) for i in range(nmax)]

    # The FP32 reference and the baseline come from the same eager model.
    rows: list[dict[str, Any]] = []
    baseline_fps: dict[tuple[int, int, int], float] = {}
    ref_runner = OfficialBaseline(prepared.pair_folder, prepared.gen, device, cfg.threads)
    with ref_runner:
        for (h, w) in cfg.sizes:
            refs_by_size[(h, w)] = [ref_runner.forward_float([f])[0] for f in frames_by_size[(h, w)]]
    if cfg.baseline:
        base_rows = _measure_runner(lambda: OfficialBaseline(prepared.pair_folder, prepared.gen, device,
                                                             cfg.threads),
                                    (BASELINE, "fp32"), cfg, cfg.sizes, frames_by_size, refs_by_size,
                                    prepared.spec, peak if device == "cuda" else None, {}, on_row, deadline)
        for r in base_rows:
            if r["status"] == "ok":
                baseline_fps[(r["height"], r["width"], r["batch"])] = r["fps"]
                r["speedup_vs_baseline"] = 1.0
        rows.extend(base_rows)

    for name in backends:
        for precision in precisions:
            source = prepared.export_folder or prepared.pair_folder

            def make(name=name, precision=precision, source=source) -> Runner:
                # (asked inside the row's build: a corrupt export's IntegrityError makes its rows errors)
                reason = prepared.unavailable(variant(name).base)
                if reason is None:
                    ok, why = runtime_availability(name, source)
                    reason = None if ok else why
                if reason and prepared.export_broke:
                    raise ExportFailed(reason)
                if reason:
                    raise BackendUnavailable(reason)
                return TranslatorRunner(name, source, prepared.gen, precision, cfg.threads)

            row_peak = peak if backend_device(name) == "cuda" else None
            rows.extend(_measure_runner(make, (name, precision), cfg, cfg.sizes, frames_by_size, refs_by_size,
                                        prepared.spec, row_peak, baseline_fps, on_row, deadline))

    if cfg.e2e:
        from cgan.benchmarks.e2e import run_e2e

        e2e_precision = e2e_precision_for(e2e_backend, precisions)
        spent = _budget_spent(cfg, deadline)
        if spent:
            row = empty_row(f"video:{e2e_backend}", e2e_precision, 1, *cfg.e2e_size)
            row.update(status="skipped", reason=spent)
            on_row(row)
        else:
            row = run_e2e(cfg, prepared, e2e_backend, e2e_precision, on_row)
            row["speedup_vs_baseline"] = speedup(row["fps"], baseline_fps.get((*cfg.e2e_size, 1)))
        rows.append(row)

    env["torch_threads"] = _torch_threads()
    config["seconds_total"] = round(time.perf_counter() - t_start, 3)
    return {**partial, "complete": True, "rows": rows}


# ---- training speed --------------------------------------------------------------------------------------
def run_train(options: dict[str, Any]) -> dict[str, Any]:
    """The trainer's speed (`cgan.benchmarks.train_speed.run_train_bench`) as a cgan.bench result.

    options: iters, warmup, batch, size, blocks, ngf, device, threads. One row per training configuration the
    trainer times (eager FP32 baseline first, then its faster settings); fps = training images/s, p50 = mean
    milliseconds per iteration, speedup = vs the trainer's eager FP32 row of the same run.
    """
    from cgan.benchmarks.env import collect_env
    from cgan.benchmarks.train_speed import run_train_bench

    kwargs = train_options(options)
    raw = run_train_bench(**kwargs)
    rows = [train_row(r, kwargs["batch"], kwargs["size"]) for r in raw["rows"]]
    return {"format": RESULT_FORMAT, "version": RESULT_VERSION, "kind": "train", "complete": True,
            "env": collect_env(), "config": {"options": kwargs, "trainer_env": raw.get("env", {})}, "rows": rows}


#: run_train's options when not given (None); a given value is checked, never replaced (`--size 0` used to
#: run at 256x256 through `size or 256`)
TRAIN_DEFAULTS = {"size": 256, "ngf": 64, "blocks": 9, "batch": 1, "device": "auto", "iters": 20, "warmup": 5,
                  "threads": None}


def train_options(options: dict[str, Any]) -> dict[str, Any]:
    """run_train's options (cgan-bench train's names) -> run_train_bench's keyword arguments, every value
    checked up front with a one-line CganError naming the option (before torch is imported)."""
    o = {k: (options.get(k) if options.get(k) is not None else d) for k, d in TRAIN_DEFAULTS.items()}
    check_int(o["iters"], "--iters", 1, 1_000_000)
    check_int(o["warmup"], "--warmup", 0, 1_000_000)
    check_batch(o["batch"])
    if o["threads"] is not None:
        check_int(o["threads"], "--threads", 1, max_threads())
    if o["device"] not in ("auto", "cpu", "cuda"):
        raise CganError(f"unknown --device {o['device']!r}: use cuda or cpu")
    from cgan.trainer.config import TrainConfig

    min_size = TrainConfig(name="bench").min_size
    check_int(o["size"], "--size", min_size, MAX_SIDE,
              hint=f" (the discriminator needs at least {min_size}; the generator a multiple of 4)")
    if o["size"] % SIZE_MULTIPLE:
        fixed = max(min_size, round(o["size"] / SIZE_MULTIPLE) * SIZE_MULTIPLE)
        raise CganError(f"--size must be a multiple of {SIZE_MULTIPLE} (the generator downsamples twice), got "
                        f"{o['size']}: try {fixed}")
    GeneratorSpec(blocks=o["blocks"], ngf=o["ngf"])  # --blocks 1..64, --ngf 1..1024
    # the trainer's own checks of what is left (one line too), before any configuration starts
    TrainConfig(name="bench", size=o["size"], load_size=o["size"], ngf=o["ngf"], blocks=o["blocks"],
                batch_size=o["batch"], threads=o["threads"], device=o["device"])
    return dict(size=o["size"], ngf=o["ngf"], blocks=o["blocks"], batch=o["batch"], device=o["device"],
                steps=o["iters"], warmup=o["warmup"], threads=o["threads"])


def train_row(r: dict[str, Any], batch: int, size: int) -> dict[str, Any]:
    """One row of run_train_bench ({name, precision, channels_last, compile, it_per_s, ms_per_it,
    speedup_vs_baseline}) as a bench row: backend `train:<name>`, fps = images/s."""
    prec = "fp32" if r["precision"] == "fp32" else "mixed"
    row = empty_row(f"train:{r['name']}", prec, batch, size, size)
    if "error" in r:  # that configuration failed; the others were still measured
        row.update(status="error", reason=r["error"])
        return row
    row["fps"] = float(r["it_per_s"]) * batch
    row["mean_ms"] = row["p50_ms"] = float(r["ms_per_it"])
    row["iters"] = r.get("steps")
    sp = r.get("speedup_vs_baseline")
    row["speedup_vs_baseline"] = float(sp) if sp is not None else None
    row["stages"] = {k: r[k] for k in ("precision", "channels_last", "compile", "it_per_s")}
    if r.get("warmup_s") is not None:  # building the networks and the warm-up steps (a compilation included)
        row["warmup_s"] = float(r["warmup_s"])
    return row
