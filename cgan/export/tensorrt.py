"""FP16 TensorRT / TensorRT-RTX engines from the FP16 ONNX graph (strongly typed), with a JSON sidecar.

One code path for both libraries (`tensorrt` and `tensorrt_rtx` share the Python API used here): parse the
ONNX file, create a *strongly typed* network (TensorRT 10.12+: NetworkDefinitionCreationFlag.STRONGLY_TYPED;
TensorRT 11 and RTX: always strongly typed, no FP16 builder flag), so the precision comes from the ONNX graph
(FP16 convs, FP32 InstanceNormalization) and never silently falls back to FP32. One optimization profile
(min/opt/max batch × height × width), a persisted timing cache per flavour and version in $CGAN_HOME, and a
plain plan file (no custom header: trtexec and Triton read it) beside `<plan>.json`. A build whose key
(ONNX sha256, profile, GPU, flavour and version, optimisation level) matches an existing plan+sidecar is skipped.

The library is imported lazily (`import_trt`); tests inject a fake module.
"""
from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from cgan._files import atomic_path, name_slug, read_json, sha256_file, write_bytes_atomic, write_json_atomic
from cgan._limits import MAX_PIXELS, MAX_SIDE
from cgan._optional import pip_extra
from cgan._versions import version_tuple
from cgan.errors import BackendUnavailable, CganError, IntegrityError
from cgan.pairs import cgan_home
from cgan.spec import ENGINE_FORMAT, FORMAT_VERSION

log = logging.getLogger(__name__)

#: flavour -> (import name, file tag, pip extra)
FLAVOURS = {"tensorrt": ("tensorrt", "trt", "tensorrt"),  # module, plan suffix, cgan extra
            "tensorrt-rtx": ("tensorrt_rtx", "trt-rtx", "tensorrt-rtx")}
#: the modules that provide each flavour: `tensorrt_rtx` comes from the tensorrt-rtx metapackage (an sdist); the
#: tensorrt-rtx-cu13-libs + -bindings wheels alone provide only `tensorrt_rtx_bindings`, the same API (and the
#: tensorrt-cuXX-libs + -bindings wheels `tensorrt_bindings`)
MODULES = {"tensorrt": ("tensorrt", "tensorrt_bindings"), "tensorrt-rtx": ("tensorrt_rtx", "tensorrt_rtx_bindings")}
MIN_TRT = (10, 12)
#: how an engine error says to do without engines (cgan-bench words it for its own options)
NO_ENGINE_HINT = "export without --engine"
MAX_WORKSPACE_GB = 1024  # the builder's scratch memory cap: more than any GPU has
DEFAULT_SHAPES = "256x256,720x1280,1080x1920"
DEFAULT_BATCH = "1,1,4"


# ---- profiles ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Profile:
    """One optimization profile: min/opt/max batch and min/opt/max (height, width)."""

    batch: tuple[int, int, int] = (1, 1, 4)
    shapes: tuple[tuple[int, int], tuple[int, int], tuple[int, int]] = ((256, 256), (720, 1280), (1080, 1920))

    def __post_init__(self) -> None:
        b, s = self.batch, self.shapes
        if len(b) != 3 or any(v < 1 for v in b) or not b[0] <= b[1] <= b[2]:
            raise CganError(f"batch min/opt/max must be positive and ordered, got {b}: e.g. --batch 1,1,4")
        if len(s) != 3:
            raise CganError("--shapes needs min,opt,max sizes, e.g. 256x256,720x1280,1080x1920")
        for h, w in s:
            if h < 16 or w < 16 or h % 4 or w % 4:
                raise CganError(f"profile size {h}x{w} must be at least 16x16 and a multiple of 4 (the runtime pads)")
            if h * w > MAX_PIXELS:  # (found out by TensorRT after the ONNX work: out of memory, 68 GB asked)
                raise CganError(f"profile size {h}x{w} is over the {MAX_SIDE}x{MAX_SIDE} pixels the runtime "
                                f"translates a frame at: give --shapes up to e.g. 2160x3840")
        for i in (0, 1):
            if not (s[i][0] <= s[i + 1][0] and s[i][1] <= s[i + 1][1]):
                raise CganError(f"--shapes must be ordered min <= opt <= max in height and width, got "
                                f"{format_shapes(s)}")

    def input_shapes(self, io: str = "nchw", channels: int = 3) -> list[tuple[int, ...]]:
        """Full (min, opt, max) shapes of the `input` tensor for this profile."""
        out = []
        for b, (h, w) in zip(self.batch, self.shapes):
            out.append((b, h, w, channels) if io == "bgr-hwc-uint8" else (b, channels, h, w))
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"batch": list(self.batch), "shapes": [list(s) for s in self.shapes],
                "text": {"shapes": format_shapes(self.shapes), "batch": ",".join(map(str, self.batch))}}


def format_shapes(shapes) -> str:
    return ",".join(f"{h}x{w}" for h, w in shapes)


def parse_shapes(text: str, option: str = "--shapes") -> tuple[tuple[int, int], ...]:
    """'256x256,720x1280,1080x1920' -> min/opt/max (height, width); one size means min=opt=max."""
    sizes = []
    for part in str(text).replace(" ", "").split(","):
        h, sep, w = part.lower().partition("x")
        if not sep or not h.isdecimal() or not w.isdecimal():
            raise CganError(f"bad size {part!r} in {option} {text!r}: use HEIGHTxWIDTH, e.g. 720x1280")
        sizes.append((int(h), int(w)))
    if len(sizes) == 1:
        sizes *= 3
    if len(sizes) != 3:
        raise CganError(f"--shapes needs 1 or 3 sizes (min,opt,max), got {len(sizes)} in {text!r}")
    return tuple(sizes)


def parse_batch(text: str) -> tuple[int, int, int]:
    """'1,1,4' -> (1, 1, 4); one number means min=opt=max."""
    parts = str(text).replace(" ", "").split(",")
    if not all(p.isdecimal() for p in parts) or len(parts) not in (1, 3):
        raise CganError(f"--batch must be N or MIN,OPT,MAX positive integers, got {text!r}")
    vals = [int(p) for p in parts]
    return tuple(vals * 3 if len(vals) == 1 else vals)


def make_profile(shapes: str = DEFAULT_SHAPES, batch: str = DEFAULT_BATCH) -> Profile:
    return Profile(parse_batch(batch), parse_shapes(shapes))


# ---- library and GPU -----------------------------------------------------------------------------------
def import_trt(flavour: str = "auto", aot: bool = False) -> tuple[Any, str]:
    """Import tensorrt / tensorrt_rtx (auto: tensorrt first). Returns (module, flavour). aot: for a build ahead of
    time (no GPU needed), which the error message says."""
    import importlib

    if flavour not in ("auto", *FLAVOURS):
        raise CganError(f"unknown --trt-flavour {flavour!r}: use tensorrt, tensorrt-rtx or auto")
    tried = list(FLAVOURS) if flavour == "auto" else [flavour]
    for name in tried:
        for module in MODULES[name]:
            try:
                return importlib.import_module(module), name
            except ImportError:
                continue
    extras = " or ".join(f"`{pip_extra(FLAVOURS[n][2])}`" for n in tried)
    what = " / ".join(FLAVOURS[n][0] for n in tried)
    where = "(no GPU needed to build ahead of time)" if aot else "on a machine with an NVIDIA GPU"
    raise BackendUnavailable(f"{what} is not installed: {extras} {where}", alternative=NO_ENGINE_HINT)


def network_flags(trt: Any, flavour: str) -> tuple[int, str]:
    """Creation flags for a strongly typed network and how strong typing was obtained."""
    ver = (version_tuple(getattr(trt, "__version__", "0")) + (0, 0, 0))[:3]
    flag_enum = getattr(trt, "NetworkDefinitionCreationFlag", None)
    has_flag = flag_enum is not None and hasattr(flag_enum, "STRONGLY_TYPED")
    if flavour == "tensorrt" and ver[:2] < MIN_TRT and ver[0] < 11:
        raise BackendUnavailable(f"TensorRT {trt.__version__} is too old: cgan needs >= "
                                 f"{'.'.join(map(str, MIN_TRT))} for strongly typed FP16 engines; "
                                 f"`{pip_extra(FLAVOURS['tensorrt'][2]).replace('pip install', 'pip install -U', 1)}`")
    if flavour == "tensorrt" and ver[0] < 11:
        if not has_flag:
            raise BackendUnavailable(f"TensorRT {trt.__version__} has no STRONGLY_TYPED network flag; upgrade it")
        return 1 << int(flag_enum.STRONGLY_TYPED), "flag"
    # TensorRT 11 and TensorRT-RTX are always strongly typed; pass the flag where it still exists (harmless).
    return (1 << int(flag_enum.STRONGLY_TYPED), "flag") if has_flag else (0, "implicit")


def gpu_info() -> dict[str, Any]:
    """Name and compute capability of CUDA device 0: from torch when it has CUDA, else from nvidia-smi (a CPU-only
    torch next to TensorRT and a GPU is a valid install: `cgan[cpu]` plus `cgan[tensorrt]`)."""
    try:
        import torch

        if torch.cuda.is_available():
            props = torch.cuda.get_device_properties(0)
            return {"name": props.name, "compute_capability": f"{props.major}.{props.minor}"}
    except ImportError:  # pragma: no cover - export always has torch
        pass
    smi = _nvidia_smi_gpu()
    if smi is not None:
        return smi
    raise BackendUnavailable("no CUDA GPU is visible: build engines on the machine (GPU model) that will run "
                             "them", alternative=NO_ENGINE_HINT)


def _nvidia_smi_gpu() -> dict[str, Any] | None:
    """CUDA device 0 as nvidia-smi sees it (honouring CUDA_VISIBLE_DEVICES); None without a GPU or nvidia-smi."""
    import os
    import shutil
    import subprocess

    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    first = visible.split(",")[0].strip() if visible is not None else "0"
    if not first or first.startswith("-") or shutil.which("nvidia-smi") is None:
        return None
    try:
        res = subprocess.run(["nvidia-smi", "-i", first, "--query-gpu=name,compute_cap", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return None
    line = res.stdout.strip().splitlines()[0] if res.returncode == 0 and res.stdout.strip() else ""
    name, _, cc = (part.strip() for part in line.rpartition(","))
    if not name or not re.fullmatch(r"\d+\.\d+", cc):
        return None
    return {"name": name, "compute_capability": cc}


def parse_target(text: str) -> tuple[int, int]:
    """'8.9', 'sm89', 'SM_120', '12.0' -> (major, minor)."""
    t = str(text).strip().lower().replace("_", "").removeprefix("sm")
    if "." in t:
        major, _, minor = t.partition(".")
    elif len(t) in (2, 3):  # sm89 -> 8.9, sm120 -> 12.0
        major, minor = t[:-1], t[-1:]
    else:
        major, minor = "", ""
    if not (major.isdecimal() and minor.isdecimal() and len(minor) == 1 and 3 <= int(major) <= 20):
        raise CganError(f"bad --trt-target {text!r}: give a compute capability, e.g. 8.9, 12.0 or sm89")
    return int(major), int(minor)


def aot_target(trt: Any, flavour: str, target: str) -> tuple[dict[str, Any], Any]:
    """Ahead-of-time build for a GPU that is not here (TensorRT-RTX only): the `gpu` record for the key and the
    sidecar, and the library's ComputeCapability value to set on the builder config."""
    major, minor = parse_target(target)
    if flavour != "tensorrt-rtx":
        raise CganError("--trt-target builds ahead of time for a GPU that is not here, which only TensorRT-RTX "
                        "can do: add --trt-flavour tensorrt-rtx, or build on the target GPU without --trt-target")
    enum = getattr(trt, "ComputeCapability", None)
    value = getattr(enum, f"SM{major}{minor}", None) if enum is not None else None
    if value is None:
        valid = sorted((n for n in dir(enum) if re.fullmatch(r"SM\d+", n)), key=lambda n: int(n[2:])) if enum else []
        raise CganError(f"{flavour} {getattr(trt, '__version__', '?')} cannot build for compute capability "
                        f"{major}.{minor}: it targets {', '.join(valid) or 'none ahead of time'}")
    gpu = {"name": f"any GPU of compute capability {major}.{minor} (built ahead of time)",
           "compute_capability": f"{major}.{minor}", "ahead_of_time": True}
    return gpu, value


def resolve_build(flavour: str, target: str | None, opt_level: int, workspace_gb: float | None,
                  trt_module: Any = None, gpu: dict[str, Any] | None = None
                  ) -> tuple[Any, str, dict[str, Any], Any, tuple[int, str]]:
    """Check a build's options, import the library, and find the GPU it is for: (trt, flavour, gpu record,
    ComputeCapability to set or None, network_flags). Everything an engine build can refuse is refused here, before any
    file is written (`cgan-export --engine` calls it first, so a refusal leaves the export untouched)."""
    if not 0 <= int(opt_level) <= 5:
        raise CganError(f"--opt-level must be 0..5, got {opt_level}")
    # (nan fails both tests; inf and 1e12 overflowed the builder's byte count, with a traceback, once the ONNX
    # graphs and parity were done)
    if workspace_gb is not None and not 0 < workspace_gb <= MAX_WORKSPACE_GB:
        raise CganError(f"--workspace-gb must be a number of GB in (0, {MAX_WORKSPACE_GB}], got {workspace_gb}")
    if target:
        if flavour not in ("auto", "tensorrt-rtx"):
            aot_target(None, flavour, target)  # raises: only TensorRT-RTX builds ahead of time
        parse_target(target)
    if trt_module is not None:
        trt, flavour = trt_module, ("tensorrt" if flavour == "auto" else flavour)
    else:
        trt, flavour = import_trt("tensorrt-rtx" if target and flavour == "auto" else flavour, aot=bool(target))
    flags = network_flags(trt, flavour)
    target_cc = None
    if target:
        gpu, target_cc = aot_target(trt, flavour, target)
    gpu = gpu or gpu_info()
    require_fast_fp16(gpu)
    if flavour == "tensorrt-rtx" and target_cc is None:
        require_rtx_runs_on(trt, gpu)
        # Left alone, TensorRT-RTX builds for 8.6/8.9/12.0 (never Turing's 7.5, even on a Turing GPU), while the
        # sidecar names this GPU alone: build for the GPU in this machine, what the sidecar says
        target_cc = getattr(getattr(trt, "ComputeCapability", None), "CURRENT", None)
    return trt, flavour, gpu, target_cc, flags


def require_rtx_runs_on(trt: Any, gpu: dict[str, Any]) -> None:
    """Refuse to build a TensorRT-RTX engine for this GPU when TensorRT-RTX cannot run engines on it (1.7 names
    SM75, SM80, SM86, SM89, SM120, SM121; not the H100/H200's 9.0): the runtime would refuse the engine."""
    enum = getattr(trt, "ComputeCapability", None)
    targets = sorted((n for n in dir(enum) if re.fullmatch(r"SM\d+", n)), key=lambda n: int(n[2:])) if enum else []
    major, minor = (int(v) for v in str(gpu["compute_capability"]).split(".")[:2])
    if targets and f"SM{major}{minor}" not in targets:
        raise CganError(f"TensorRT-RTX {getattr(trt, '__version__', '?')} cannot run engines on {gpu['name']} "
                        f"(compute capability {major}.{minor}; it supports {', '.join(targets)}): install TensorRT "
                        f"({pip_extra('tensorrt')}), or build for another GPU with --trt-target")


def require_fast_fp16(gpu: dict[str, Any]) -> None:
    """Refuse GPUs without fast FP16 (never build a slow or silently FP32 engine)."""
    major, minor = (int(v) for v in str(gpu["compute_capability"]).split(".")[:2])
    if (major, minor) >= (7, 0) or (major, minor) in {(5, 3), (6, 0), (6, 2)}:
        return
    raise CganError(f"GPU {gpu['name']} (compute capability {major}.{minor}) has no fast FP16: cgan builds FP16 "
                    f"engines only; use the FP32 ONNX with the ort-cuda backend instead")


# ---- keys, names, cache --------------------------------------------------------------------------------
def engine_path(onnx_path: Path, flavour: str) -> Path:
    """G.fp16.onnx -> G.fp16.trt.plan (TensorRT) or G.fp16.trt-rtx.plan (TensorRT-RTX)."""
    return onnx_path.with_name(onnx_path.name[: -len(".onnx")] + f".{FLAVOURS[flavour][1]}.plan")


def sidecar_path(plan: Path) -> Path:
    return plan.with_name(plan.name + ".json")


def build_key(onnx_sha256: str, profile: Profile, gpu: dict[str, Any], flavour: str, version: str,
              opt_level: int, workspace_gb: float | None = None, targets: str | None = None) -> str:
    """What decides an engine: a plan built with another of these is built again (the workspace cap changes the
    tactics TensorRT may choose, and the sidecar records it; `targets`: the GPUs a TensorRT-RTX plan is compiled
    for, "current" for this one: a plan of the library's default set, from before, is built again)."""
    blob = json.dumps({"onnx": onnx_sha256, "batch": list(profile.batch), "shapes": [list(s) for s in profile.shapes],
                       "gpu": gpu["name"], "cc": str(gpu["compute_capability"]), "flavour": flavour,
                       "version": str(version), "opt_level": int(opt_level),
                       **({"workspace_gb": float(workspace_gb)} if workspace_gb is not None else {}),
                       **({"targets": targets} if targets is not None else {})},
                      sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def timing_cache_path(flavour: str, version: str, gpu: dict[str, Any] | None = None) -> Path:
    """Timing caches are specific to a TensorRT version and a GPU: the file name carries both."""
    name = f"trt-timing-cache-{flavour}-{version}"
    if gpu:
        name += f"-cc{gpu.get('compute_capability')}-{name_slug(str(gpu.get('name', '')))}"
    return cgan_home() / name


def existing_engine(plan: Path, key: str) -> dict[str, Any] | None:
    """The sidecar of a plan built with the same key and still intact, else None."""
    side = sidecar_path(plan)
    if not plan.is_file() or not side.is_file():
        return None
    try:
        meta = read_json(side, "engine sidecar")
    except CganError:
        return None
    if not isinstance(meta, dict) or meta.get("format") != ENGINE_FORMAT or meta.get("key") != key:
        return None
    plan_rec = meta.get("plan") or {}
    if plan_rec.get("bytes") != plan.stat().st_size or plan_rec.get("sha256") != sha256_file(plan):
        return None
    return meta


# ---- build ---------------------------------------------------------------------------------------------
def _parse(trt: Any, network: Any, logger: Any, onnx_path: Path) -> Any:
    """Parse into `network`; returns the parser, which owns the weights the network points to: keep it alive
    until the engine is built."""
    parser = trt.OnnxParser(network, logger)
    if parser.parse_from_file(str(onnx_path)):
        return parser
    errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
    text = "; ".join(e.splitlines()[0] for e in errors if e) or "unknown parser error"
    hint = ""
    if "pad" in text.lower() or "reflect" in text.lower():
        hint = " This TensorRT rejects reflection padding: re-export with `--pad-mode slice`."
    raise IntegrityError(f"TensorRT could not parse {onnx_path.name}: {text}.{hint}")


def _input_channels(network: Any, io: str) -> int:
    """The channel count of the parsed network's input (NCHW, or NHWC for the uint8 pre/post graph)."""
    shape = tuple(network.get_input(0).shape)
    return int(shape[3] if io == "bgr-hwc-uint8" else shape[1])


def onnx_cgan_metadata(onnx_path: str | Path) -> dict[str, Any]:
    """The generator an exported ONNX file holds, from its `cgan.*` metadata (spec, generator, direction,
    precision, io, weights_sha256; JSON values decoded); {} for a graph without it."""
    import onnx

    keep = ("spec", "generator", "direction", "precision", "io", "weights_sha256")
    found: dict[str, Any] = {}
    try:
        props = onnx.load(str(onnx_path), load_external_data=False).metadata_props
    except Exception as e:  # noqa: BLE001 - (the parser that builds the engine judges the file; this only labels it)
        log.debug("no cgan metadata read from %s: %s", onnx_path, e)
        return found
    for prop in props:
        key = prop.key.removeprefix("cgan.")
        if prop.key.startswith("cgan.") and key in keep:
            try:
                found[key] = json.loads(prop.value) if prop.value[:1] in "{[" else prop.value
            except json.JSONDecodeError:
                found[key] = prop.value
    return found


def build_engine(onnx_path: str | Path, profile: Profile, *, io: str = "nchw", flavour: str = "auto",
                 opt_level: int = 3, workspace_gb: float | None = None, plan_path: Path | None = None,
                 cgan_version: str = "", trt_module: Any = None, gpu: dict[str, Any] | None = None,
                 force: bool = False, clock: Callable[[], float] = time.perf_counter,
                 target: str | None = None) -> dict[str, Any]:
    """Build (or reuse) the engine for one FP16 ONNX file; returns its sidecar dict (plus 'skipped').
    target: a compute capability ('8.9') to build for ahead of time, without that GPU (TensorRT-RTX only)."""
    onnx_path = Path(onnx_path)
    trt, flavour, gpu, target_cc, (flags, typing_mode) = resolve_build(flavour, target, opt_level, workspace_gb,
                                                                       trt_module, gpu)
    version = str(trt.__version__)
    plan = plan_path or engine_path(onnx_path, flavour)
    onnx_sha = sha256_file(onnx_path)
    current = flavour == "tensorrt-rtx" and not target and target_cc is not None  # (ComputeCapability.CURRENT)
    key = build_key(onnx_sha, profile, gpu, flavour, version, opt_level, workspace_gb, "current" if current else None)
    if not force and (meta := existing_engine(plan, key)) is not None:
        log.info("%s: up to date (same ONNX, shapes, GPU and %s %s), skipped", plan.name, flavour, version)
        return {**meta, "skipped": True}

    t0 = clock()
    logger = trt.Logger(trt.Logger.WARNING)
    try:
        builder = trt.Builder(logger)
    except (TypeError, RuntimeError) as e:  # (no CUDA for it: pybind11's "factory function returned nullptr")
        raise BackendUnavailable(f"{flavour} could not start on this GPU ({str(e).strip()[:200]}): its CUDA may "
                                 f"need a newer NVIDIA driver (nvidia-smi shows the driver's CUDA version)",
                                 alternative=NO_ENGINE_HINT) from None
    network = builder.create_network(flags)
    parser = _parse(trt, network, logger, onnx_path)  # must outlive build_serialized_network (owns weights)
    config = builder.create_builder_config()
    if workspace_gb is not None:  # else the library's default: the GPU's memory (64 GiB ahead of time)
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_gb * (1 << 30)))
    config.builder_optimization_level = int(opt_level)
    if target_cc is not None:
        config.num_compute_capabilities = 1
        config.set_compute_capability(target_cc, 0)
    opt_profile = builder.create_optimization_profile()
    channels = _input_channels(network, io)  # 3, or 1 for a grayscale generator
    in_name, out_name = network.get_input(0).name, network.get_output(0).name  # ours: "input", "output"
    opt_profile.set_shape(in_name, *profile.input_shapes(io, channels))
    config.add_optimization_profile(opt_profile)

    cache_file = timing_cache_path(flavour, version, gpu)
    # TensorRT-RTX compiles its kernels just in time and ignores timing caches ("The timing cache will not be
    # used!", seen with 1.7): none is read or written for it
    has_cache_api = hasattr(config, "create_timing_cache") and flavour != "tensorrt-rtx"
    cache_bytes = b""
    if has_cache_api:
        cache_bytes = cache_file.read_bytes() if cache_file.is_file() else b""
        try:
            cache = config.create_timing_cache(cache_bytes)
            accepted = cache is not None and config.set_timing_cache(cache, False) is not False
        except Exception as e:  # a corrupt cache file must not stop the build
            log.warning("timing cache %s unusable (%s); starting an empty one", cache_file, e)
            accepted = False
        if not accepted:
            if cache_bytes:
                log.warning("timing cache %s was refused; starting an empty one", cache_file)
            cache_bytes = b""  # a cold build after all
            config.set_timing_cache(config.create_timing_cache(b""), False)
    serialized = builder.build_serialized_network(network, config)
    del parser
    if serialized is None:
        raise IntegrityError(f"{flavour} {version} failed to build an engine from {onnx_path.name} "
                             f"(see the TensorRT log above); try a smaller --shapes max or --batch max, or more (or no) --workspace-gb")
    with atomic_path(plan) as tmp:
        tmp.write_bytes(memoryview(serialized).tobytes())
    if has_cache_api:
        write_bytes_atomic(cache_file, memoryview(config.get_timing_cache().serialize()).tobytes())
    seconds = clock() - t0
    meta = {
        "format": ENGINE_FORMAT, "version": FORMAT_VERSION, "key": key,
        "flavour": flavour, "trt_version": version, "strongly_typed": typing_mode,
        "gpu": {"name": gpu["name"], "compute_capability": str(gpu["compute_capability"]),
                **({"ahead_of_time": True} if gpu.get("ahead_of_time") else {})},
        "profiles": [{**profile.to_dict(), **dict(zip(("min", "opt", "max"),
                                                      (list(x) for x in profile.input_shapes(io, channels))))}],
        "onnx_sha256": onnx_sha, "io": io, "input_name": in_name, "output_name": out_name,
        "precision": "fp16", "opt_level": int(opt_level), "workspace_gb": None if workspace_gb is None else float(workspace_gb),
        "onnx": {"path": onnx_path.name, "sha256": onnx_sha},
        "plan": {"path": plan.name, "sha256": sha256_file(plan), "bytes": plan.stat().st_size},
        "timing_cache": str(cache_file) if has_cache_api else None,
        "timing_cache_bytes_in": len(cache_bytes),  # > 0: tactic timings reused, the build time is not a cold one
        "build_seconds": round(seconds, 3), "cgan_version": cgan_version,
        # what the engine computes (the ONNX's cgan.* metadata): a plan copied out of its export still says so
        "cgan": onnx_cgan_metadata(onnx_path),
    }
    write_json_atomic(sidecar_path(plan), meta)
    log.info("%s: built in %.1f s with %s %s on %s", plan.name, seconds, flavour, version, gpu["name"])
    return {**meta, "skipped": False}
