"""TensorRT backends: `tensorrt` (module `tensorrt`) and `tensorrt-rtx` (module `tensorrt_rtx`), same code.

They run the plain TensorRT plans an export folder lists (manifest kind "engine") after checking each plan's
JSON sidecar against this machine: flavour, TensorRT version, GPU compute capability, the ONNX graph it was
built from, and the optimization profiles (which frame sizes it accepts). A mismatch is a clear error that
says to rebuild the engine with `cgan-export ... --engine` on this machine — never a silent fallback.

Execution uses TensorRT 10's tensor API (set_input_shape, set_tensor_address, execute_async_v3) and cuda-python
for memory and streams (no torch): pinned host buffers, async copies on one stream, and per input shape a
CUDA graph capturing copy-in, the engine and copy-out (unless `cuda_graph=False`). Buffers are kept for the
last `MAX_SHAPES` batch shapes (several streams batched together change the shape from call to call; freeing
and allocating per switch would synchronize the device each time); a graph is replayed only while its shape
stays current, and a shape that comes back is bound again and recaptured after one plain run.

Sidecar (`G.fp16.trt.plan.json`), keys this module reads (aliases accepted where noted):
    flavour              "tensorrt" | "tensorrt-rtx"
    tensorrt_version     "10.12.0.36"                  (alias: trt_version, or version when it is a string)
    gpu_name             "NVIDIA H100 80GB HBM3"       (alias: gpu.name, gpu when a string); differs → warning
    compute_capability   "9.0"                         (alias: gpu.compute_capability, cc; list → any of them)
    version_compatible   bool, default false           (built with kVERSION_COMPATIBLE: same major suffices)
    hardware_compatible  bool, default false           (built for Ampere+: any cc >= 8.0)
    onnx_sha256          sha256 of the ONNX graph it was built from (must be in this export)
    profiles             [{"min": shape, "opt": shape, "max": shape}], shapes of the engine input tensor
"""
from __future__ import annotations

import functools
import importlib
import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from cgan._files import inside, name_slug, read_json, write_bytes_atomic
from cgan._optional import pip_extra
from cgan._versions import version_tuple
from cgan.errors import BackendUnavailable, CganError, IntegrityError, ShapeUnsupported
from cgan.runtime.backends.base import Backend, Model, ShapeCache, log, module_available
from cgan.runtime.backends import cuda as cudahelp
from cgan.runtime.frames import Buffers, bgr_to_nchw, nchw_to_bgr

IO_UINT8 = "bgr-hwc-uint8"


@dataclass(frozen=True)
class Environment:
    """What an engine must match here."""

    flavour: str
    tensorrt_version: str
    gpu_name: str
    compute_capability: str


def _cc_tuple(cc: Any) -> tuple[int, int]:
    if isinstance(cc, (list, tuple)) and len(cc) == 2 and all(isinstance(v, int) for v in cc):
        return int(cc[0]), int(cc[1])
    t = version_tuple(str(cc))
    if len(t) < 2:
        raise IntegrityError(f"engine sidecar has an unreadable compute capability {cc!r}; rebuild the engine")
    return t[0], t[1]


def sidecar_fields(side: dict[str, Any]) -> dict[str, Any]:
    """Normalise a sidecar's aliases to: flavour, tensorrt_version, gpu_name, compute_capabilities, ..."""
    if not isinstance(side, dict):
        raise IntegrityError("engine sidecar is not a JSON object; rebuild the engine")
    gpu = side.get("gpu")
    gpu = gpu if isinstance(gpu, dict) else ({"name": gpu} if isinstance(gpu, str) else {})
    version = side.get("tensorrt_version") or side.get("trt_version")
    if version is None and isinstance(side.get("version"), str):
        version = side["version"]
    cc = side.get("compute_capability", gpu.get("compute_capability", side.get("cc")))
    ccs = cc if isinstance(cc, list) and cc and not all(isinstance(v, int) for v in cc) else ([cc] if cc else [])
    return {
        "flavour": side.get("flavour") or side.get("flavor"),
        "tensorrt_version": version,
        "gpu_name": side.get("gpu_name") or gpu.get("name"),
        "compute_capabilities": [_cc_tuple(c) for c in ccs],
        "version_compatible": bool(side.get("version_compatible", False)),
        "hardware_compatible": bool(side.get("hardware_compatible", False)),
        "ahead_of_time": bool(gpu.get("ahead_of_time", False)),  # built for a compute capability, not a GPU
        "onnx_sha256": side.get("onnx_sha256") or (side.get("onnx") if isinstance(side.get("onnx"), dict) else {}).get("sha256"),
        "profiles": side.get("profiles") or [],
    }


def sidecar_problems(side: dict[str, Any], env: Environment, onnx_sha256s: set[str] | None = None) -> list[str]:
    """Why an engine with this sidecar cannot run in `env` (empty list: it can). Pure: tested with fakes."""
    f = sidecar_fields(side)
    problems = []
    if f["flavour"] != env.flavour:
        problems.append(f"it is a {f['flavour'] or 'unknown'} engine, this backend is {env.flavour}")
    built, here = version_tuple(f["tensorrt_version"] or ""), version_tuple(env.tensorrt_version)
    if not built:
        problems.append("its sidecar does not say which TensorRT version built it")
    elif f["version_compatible"]:
        if built[:1] != here[:1] or here < built:
            problems.append(f"it was built with TensorRT {f['tensorrt_version']} (version-compatible), "
                            f"this is {env.tensorrt_version}")
    elif built[:3] != here[:3]:
        problems.append(f"it was built with TensorRT {f['tensorrt_version']}, this is {env.tensorrt_version}")
    cc_here = _cc_tuple(env.compute_capability)
    ccs = f["compute_capabilities"]
    if not ccs:
        problems.append("its sidecar does not say which GPU (compute capability) it was built for")
    elif f["hardware_compatible"]:
        if cc_here < (8, 0):
            problems.append(f"it was built for Ampere or newer (cc >= 8.0), this GPU is cc {env.compute_capability}")
    elif cc_here not in ccs:
        built_cc = ", ".join(f"{a}.{b}" for a, b in ccs)
        problems.append(f"it was built for compute capability {built_cc}, this GPU "
                        f"({env.gpu_name}) is {env.compute_capability}")
    if onnx_sha256s is not None and f["onnx_sha256"] and f["onnx_sha256"] not in onnx_sha256s:
        problems.append("it was built from an ONNX graph that is not the one in this export")
    return problems


def profile_for(profiles: list[dict[str, Any]], shape: tuple[int, ...]) -> int:
    """Index of the first optimization profile whose [min, max] holds `shape`; CganError if none does."""
    if not profiles:
        return 0
    for i, p in enumerate(profiles):
        lo, hi = tuple(p.get("min", ())), tuple(p.get("max", ()))
        if len(lo) == len(shape) == len(hi) and all(a <= s <= b for a, s, b in zip(lo, shape, hi)):
            return i
    ranges = "; ".join(f"{tuple(p.get('min', ()))}..{tuple(p.get('max', ()))}" for p in profiles)
    raise ShapeUnsupported(f"input shape {tuple(shape)} is outside the engine's profiles ({ranges}): use max_side=/"
                    f"resize='fit' to match, or rebuild with `cgan-export ... --engine` for this size")


def trt_object(make: Any, logger: Any, flavour: str) -> Any:
    """trt.Runtime(logger) or trt.Builder(logger): where TensorRT cannot start CUDA (a driver older than its CUDA)
    the bindings' factory returns nullptr, which pybind11 raised as a bare TypeError; now the backend is
    unavailable (`auto` goes on to the next), in one line."""
    try:
        return make(logger)
    except (TypeError, RuntimeError) as e:
        why = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        raise BackendUnavailable(f"{flavour} could not start on this GPU ({why}): its CUDA may need a newer NVIDIA "
                                 f"driver (nvidia-smi shows the driver's CUDA version)") from None


def rebuild_hint(model: Model | None) -> str:
    command = model.export_command("--engine") if model is not None else "cgan-export NAME --engine"
    return f"rebuild it here with `{command}`"


class TensorRTBackend(Backend):
    name = "tensorrt"
    module = "tensorrt"
    # the importable names of the library, tried in order: the tensorrt-cuXX-bindings + -libs wheels alone (no
    # `tensorrt` front package) provide tensorrt_bindings, the same API
    modules: tuple[str, ...] = ("tensorrt", "tensorrt_bindings")
    flavour = "tensorrt"
    devices = ("cuda",)
    #: engine_host_code=True: let TensorRT run the host code a version-compatible plan embeds (its lean runtime);
    #: off by default, whatever the plan's sidecar says (see _activate_impl)
    options = ("cuda_graph", "engine_host_code")
    capture_graphs = True  # capture one CUDA graph per input shape (opt out: cuda_graph=False)

    @classmethod
    def _trt(cls) -> Any:
        for name in cls.modules:
            try:
                return importlib.import_module(name)
            except ImportError:
                continue
        raise BackendUnavailable(f"{cls.module} is not installed: {pip_extra(cls.name)}")

    @classmethod
    @functools.lru_cache(maxsize=2)
    def environment(cls) -> Environment:
        trt = cls._trt()
        gpu, cc = cudahelp.device_properties(0)
        return Environment(cls.flavour, str(trt.__version__), gpu, cc)

    @classmethod
    def engines(cls, model: Model, precision: str | None = None) -> list[dict[str, Any]]:
        """This flavour's engines, uint8 pre/post engines first (pre/post on the GPU, 4x fewer bytes over PCIe)."""
        recs = [r for r in model.find("engine", precision)
                if (r.get("flavour") or cls._sidecar_flavour(model, r)) == cls.flavour]
        return sorted(recs, key=lambda r: r.get("io", "nchw") != IO_UINT8)

    @staticmethod
    def _sidecar(model: Model, rec: dict[str, Any]) -> dict[str, Any]:
        name = rec.get("sidecar") or (rec.get("path", "") + ".json")
        return read_json(inside(model.folder, name, "manifest.json"), "engine sidecar")

    @classmethod
    def _sidecar_flavour(cls, model: Model, rec: dict[str, Any]) -> str | None:
        try:
            return sidecar_fields(cls._sidecar(model, rec))["flavour"]
        except CganError:
            return None

    @classmethod
    def check(cls, model=None, precision=None, device=None):
        if not any(module_available(m) for m in cls.modules):
            return False, f"{cls.module} is not installed: {pip_extra(cls.name)}"
        if not (module_available("cuda.bindings") or module_available("cuda.cudart")):
            return False, "cuda-python is not installed: pip install 'cuda-python>=12.6'"
        if cudahelp.gpu_count() == 0:
            return False, cudahelp.no_gpu_reason()
        if (problem := cudahelp.cuda_python_problem()) is not None:
            return False, problem
        if model is None:
            return True, ""
        if model.kind != "export":
            return False, f"TensorRT needs an export folder with an engine: run `{model.export_command('--engine')}`"
        recs = cls.engines(model, precision)
        if not recs:
            return False, (f"{model.folder} has no {cls.flavour} engine for {model.direction}"
                           f"{' in ' + precision if precision else ''}: {rebuild_hint(model)}")
        try:
            env = cls.environment()
        except CganError as e:
            return False, str(e)
        onnx = {r.get("sha256") for r in model.find("onnx")}
        reasons = []
        for rec in recs:
            try:
                problems = sidecar_problems(cls._sidecar(model, rec), env, onnx or None)
            except CganError as e:
                problems = [str(e)]
            if not problems:
                return True, ""
            reasons.append(f"{rec.get('path')}: " + "; ".join(problems))
        return False, " | ".join(reasons) + f": {rebuild_hint(model)}"

    # ---- lifecycle ---------------------------------------------------------------------------------------
    def _activate_impl(self) -> None:
        trt = self._trt()
        env = self.environment()
        onnx = {r.get("sha256") for r in self.model.find("onnx")} or None
        rec = None
        for cand in self.engines(self.model, self.precision):
            if not sidecar_problems(self._sidecar(self.model, cand), env, onnx):
                rec = cand
                break
        if rec is None:
            ok, reason = self.check(self.model, self.precision, self.device)
            raise BackendUnavailable(f"no usable {self.flavour} engine: {reason}")
        fields = sidecar_fields(self._sidecar(self.model, rec))
        self.record, self.profiles = rec, fields["profiles"]
        self.io = rec.get("io", "nchw")
        if fields["gpu_name"] and fields["gpu_name"] != env.gpu_name and not fields["ahead_of_time"]:
            log.warning("%s was built on %s, running on %s (same compute capability): rebuild for best speed",
                        rec.get("path"), fields["gpu_name"], env.gpu_name)
        plan = self.model.path(rec).read_bytes()
        self.logger = trt.Logger(trt.Logger.WARNING)
        self.runtime = trt_object(trt.Runtime, self.logger, self.flavour)
        if fields["version_compatible"]:
            # such a plan embeds TensorRT's lean runtime: host code that runs in this process, which TensorRT
            # loads only when allowed. The sidecar that says so travels with a shared export, so it cannot be
            # what allows it: cgan never builds such plans, and runs one only when the app says it trusts it.
            if not self.opts.get("engine_host_code"):
                raise IntegrityError(f"{rec.get('path')} is a version-compatible plan: it embeds TensorRT's lean "
                                     f"runtime, code that would run in this process. cgan does not build such "
                                     f"plans: {rebuild_hint(self.model)}; or, for a plan you built yourself, "
                                     f"load it with engine_host_code=True")
            self.runtime.engine_host_code_allowed = True
        self.engine = self.runtime.deserialize_cuda_engine(plan)
        if self.engine is None:
            raise IntegrityError(f"TensorRT could not deserialize {rec.get('path')}: {rebuild_hint(self.model)}")
        self.native_graphs = False  # TensorRT-RTX's own CUDA graphs (its runtime config), instead of ours
        self.context = self.runtime_config = self.runtime_cache = None
        try:
            self.context = self._create_context(trt, rec)
            names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
            inputs = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
            outputs = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT]
            if len(inputs) != 1 or len(outputs) != 1:
                raise IntegrityError(f"{rec.get('path')} has inputs {inputs} and outputs {outputs}; expected one "
                                     f"each")
            self.input_name, self.output_name = inputs[0], outputs[0]
            self.in_dtype = np.dtype(trt.nptype(self.engine.get_tensor_dtype(self.input_name)))
            self.out_dtype = np.dtype(trt.nptype(self.engine.get_tensor_dtype(self.output_name)))
            self.stream = cudahelp.Stream()
        except BaseException:
            self._release()  # (in order: left to the garbage collector, the cache could go before the context)
            raise
        self.cuda_graph = bool(self.opts.get("cuda_graph", self.capture_graphs)) and not self.native_graphs
        self.buffers = Buffers()
        self.slots = ShapeCache(drop=lambda key, slot, free=self._free_slot: free(slot))  # batch shape -> its buffers
        self.current: tuple[int, ...] | None = None
        log.debug("tensorrt: %s (%s, %s -> %s)", rec.get("path"), self.io, self.in_dtype, self.out_dtype)

    def _create_context(self, trt: Any, rec: dict[str, Any]) -> Any:
        return self.engine.create_execution_context()

    def _slot(self, key: tuple[int, ...]) -> dict[str, Any]:
        """Device + pinned buffers for one batch shape, bound to the context (the last MAX_SHAPES shapes keep
        theirs); the context is re-bound whenever the shape differs from the previous call's."""
        slot = self.slots.get(key)
        if slot is None:
            n, h, w, _ = key
            shape = key if self.io == IO_UINT8 else (n, 3, h, w)
            profile = profile_for(self.profiles, shape)  # a shape no profile takes fails before anything is freed
            self.slots.make_room()
            if self.current not in self.slots:
                self.current = None  # its buffers were freed: that shape, made again, binds again
            slot = self.slots.put(key, self._new_slot(key, shape, profile))
        if key != self.current:
            self.current = None  # until the binding below succeeds
            if slot["graph"] is not None:  # captured while another shape's state was set: recapture, never replay
                slot["graph"].free()
                slot["graph"] = None
            slot["warm"] = False
            self._bind(slot)
            self.current = key
        return slot

    def _new_slot(self, key: tuple[int, ...], shape: tuple[int, ...], profile: int) -> dict[str, Any]:
        slot: dict[str, Any] = {"shape": shape, "profile": profile, "graph": None, "warm": False,
                                "out": np.empty(key, np.uint8)}
        try:
            slot["h_in"] = cudahelp.PinnedArray(shape, self.in_dtype)
            slot["h_out"] = cudahelp.PinnedArray(shape, self.out_dtype)
            slot["d_in"] = cudahelp.DeviceBuffer(int(np.prod(shape)) * self.in_dtype.itemsize)
            slot["d_out"] = cudahelp.DeviceBuffer(int(np.prod(shape)) * self.out_dtype.itemsize)
        except BaseException:
            self._free_slot(slot)  # what was allocated before the failure
            raise
        return slot

    def _bind(self, slot: dict[str, Any]) -> None:
        """Point the execution context at this slot: profile, input shape, buffer addresses."""
        shape = slot["shape"]
        if self.engine.num_optimization_profiles > 1:
            self.context.set_optimization_profile_async(slot["profile"], self.stream.ptr)
        if not self.context.set_input_shape(self.input_name, shape):
            raise ShapeUnsupported(f"TensorRT refused input shape {shape}: {rebuild_hint(self.model)} for this size")
        out_shape = tuple(self.context.get_tensor_shape(self.output_name))
        if out_shape != shape:
            raise IntegrityError(f"engine output shape {out_shape} differs from input {shape}; rebuild the engine")
        self.context.set_tensor_address(self.input_name, slot["d_in"].ptr)
        self.context.set_tensor_address(self.output_name, slot["d_out"].ptr)

    def _capturable(self) -> bool:
        """What TensorRT says of capturing this context's work on our stream (10.x and RTX:
        is_stream_capturable); True when the library cannot say (capture failures are handled anyway)."""
        ask = getattr(self.context, "is_stream_capturable", None)
        return True if ask is None else bool(ask(self.stream.ptr))

    def _enqueue(self, slot: dict[str, Any]) -> None:
        cudahelp.copy_htod_async(slot["d_in"], slot["h_in"], self.stream)
        if not self.context.execute_async_v3(self.stream.ptr):
            raise CganError("TensorRT execution failed (see the log above); check the GPU with nvidia-smi")
        cudahelp.copy_dtoh_async(slot["h_out"], slot["d_out"], self.stream)

    def _infer_impl(self, batch: np.ndarray) -> np.ndarray:
        slot = self._slot(batch.shape)
        h_in, h_out = slot["h_in"].array, slot["h_out"].array
        if self.io == IO_UINT8:
            np.copyto(h_in, batch)
        else:
            bgr_to_nchw(batch, h_in)
        if slot["graph"] is not None:
            slot["graph"].launch()
        elif self.cuda_graph and slot.get("warm") and not self._capturable():
            self.cuda_graph = False  # (TensorRT-RTX: an engine built without user-allocated memory, for one)
            log.warning("%s: TensorRT says this engine cannot be captured on this stream; running without CUDA "
                        "graphs", self.name)
            self._enqueue(slot)
        elif self.cuda_graph and slot.get("warm"):
            graph = cudahelp.Graph(self.stream)
            try:
                graph.begin()
                self._enqueue(slot)  # captured, not run
                graph.end()
            except BaseException as e:
                # Leave capture mode (whatever failed: a stream left capturing breaks every later call), then
                # run without graphs from now on (same engine, same precision); only our own errors are absorbed.
                graph.abort()
                if not isinstance(e, CganError):
                    raise
                self.cuda_graph = False
                log.warning("%s: CUDA graph capture failed (%s); running without CUDA graphs", self.name, e)
                self._enqueue(slot)
            else:
                slot["graph"] = graph
                graph.launch()
        else:
            self._enqueue(slot)  # the first run per shape lets TensorRT settle shape-dependent state
            slot["warm"] = True
        self.stream.synchronize()
        if self.io == IO_UINT8:  # into host memory the caller may keep: pinned memory is freed with its slot
            np.copyto(slot["out"], h_out)
            return slot["out"]
        y = self.buffers.get("y", h_out.shape, np.float32)
        np.copyto(y, h_out)  # float16/float32 -> float32 scratch (nchw_to_bgr works in place)
        return nchw_to_bgr(y, slot["out"])

    @staticmethod
    def _free_slot(slot: dict[str, Any]) -> None:
        if slot.get("graph") is not None:
            slot["graph"].free()
        for k in ("h_in", "h_out", "d_in", "d_out"):
            if k in slot:
                slot[k].free()

    def _free_slots(self) -> None:
        self.slots.clear()
        self.current = None

    def _deactivate_impl(self) -> None:
        try:
            try:
                self.stream.synchronize()
            finally:
                try:
                    self._free_slots()
                finally:
                    self.stream.free()
        finally:
            self._save_caches()
            self._release()

    def _release(self) -> None:
        """Drop TensorRT's objects, each before what it was made from: the context, then the runtime config and
        cache it was made with (TensorRT-RTX: they must outlive it), then the engine that made them, the runtime
        last."""
        for name in ("context", "runtime_config", "runtime_cache", "engine", "runtime"):
            setattr(self, name, None)

    def _save_caches(self) -> None:
        """Save what a flavour keeps beside its execution context (never fails the close)."""


class TensorRTRTXBackend(TensorRTBackend):
    """TensorRT for RTX: the same code against the `tensorrt_rtx` module and `tensorrt-rtx` engines."""

    name = "tensorrt-rtx"
    module = "tensorrt_rtx"
    # `tensorrt_rtx` comes from the tensorrt-rtx metapackage; the -libs + -bindings wheels alone give the same
    # API as `tensorrt_rtx_bindings`
    modules = ("tensorrt_rtx", "tensorrt_rtx_bindings")
    flavour = "tensorrt-rtx"
    # TensorRT-RTX compiles shape-specialised kernels just in time (lazily, in the background): a graph captured
    # on the second call would freeze the generic fallback kernels, and RTX documents stream capture only for
    # engines built for user-allocated memory. So never our own capture when RTX captures its own graphs
    # (1.2+, see _create_context); with an older RTX, only when asked (cuda_graph=True).
    capture_graphs = False

    def _create_context(self, trt: Any, rec: dict[str, Any]) -> Any:
        """The context from a runtime config (RTX >= 1.0): the kernels RTX compiles just in time are kept in a
        runtime cache on disk between runs (the first frames of a new run are not slow again), and, unless
        cuda_graph=False, RTX captures its own CUDA graphs (1.2+: WHOLE_GRAPH_CAPTURE, made for its
        shape-specialised kernels), so ours are not used."""
        self.runtime_config = self.runtime_cache = self.runtime_cache_file = None
        make_config = getattr(self.engine, "create_runtime_config", None)
        if make_config is None:
            return super()._create_context(trt, rec)
        self.runtime_config = config = make_config()
        self._open_runtime_cache(config, rec)
        strategy = getattr(trt, "CudaGraphStrategy", None)
        if strategy is not None:
            self.native_graphs = bool(self.opts.get("cuda_graph", True))
            config.cuda_graph_strategy = strategy.WHOLE_GRAPH_CAPTURE if self.native_graphs else strategy.DISABLED
        return self.engine.create_execution_context(config)

    def _open_runtime_cache(self, config: Any, rec: dict[str, Any]) -> None:
        from cgan.pairs import cgan_home

        env = self.environment()
        name = (f"{str(rec.get('sha256') or 'unknown')[:16]}-{env.tensorrt_version}-cc{env.compute_capability}-"
                f"{name_slug(env.gpu_name)}")
        try:  # (no home folder in a container: Path.home() raises; an unreadable $CGAN_HOME)
            self.runtime_cache_file = cgan_home() / "trt-rtx-runtime-cache" / f"{name}.bin"
            found = self.runtime_cache_file.is_file()
        except (OSError, RuntimeError) as e:
            log.warning("%s: no runtime cache (%s); kernels are compiled on every run", self.name, e)
            self.runtime_cache_file, found = None, False
        cache = config.create_runtime_cache()
        self.runtime_cache_loaded = b""
        if found:
            try:
                data = self.runtime_cache_file.read_bytes()
                ok = cache.deserialize(data)  # checked against this GPU, driver and library by RTX itself
            except Exception as e:  # noqa: BLE001 - an unreadable or refused cache only costs compile time
                data, ok = b"", False
                log.debug("runtime cache %s: %s", self.runtime_cache_file, e)
            if ok:
                self.runtime_cache_loaded = data
            else:
                log.warning("%s: runtime cache %s was refused; compiling kernels again (it is rewritten at close)",
                            self.name, self.runtime_cache_file)
                cache.reset()
        if config.set_runtime_cache(cache) is False:
            log.warning("%s: TensorRT-RTX refused a runtime cache; kernels are compiled on every run", self.name)
            self.runtime_cache_file = None
        self.runtime_cache = cache

    def _save_caches(self) -> None:
        """Save the runtime cache when this run compiled kernels it did not have (never fails the close)."""
        cache, path = getattr(self, "runtime_cache", None), getattr(self, "runtime_cache_file", None)
        if cache is None or path is None:
            return
        try:
            data = memoryview(cache.serialize()).tobytes()
            if data and data != self.runtime_cache_loaded:
                path.parent.mkdir(parents=True, exist_ok=True)
                write_bytes_atomic(path, data, sync_dir=False)
        except Exception as e:  # noqa: BLE001 - an unwritable $CGAN_HOME: the next run compiles again
            log.warning("%s: could not save the runtime cache %s (%s); the next run compiles kernels again",
                        self.name, path, e)

    @classmethod
    def check(cls, model=None, precision=None, device=None):
        ok, reason = TensorRTBackend.check.__func__(cls, None, precision, device)  # library, cuda-python, a GPU
        if ok and (unsupported := cls._unsupported_gpu()):
            return False, unsupported
        return TensorRTBackend.check.__func__(cls, model, precision, device) if ok else (ok, reason)

    @classmethod
    def _unsupported_gpu(cls) -> str | None:
        """TensorRT-RTX runs on the compute capabilities its ComputeCapability enum names (1.7: SM75, SM80,
        SM86, SM89, SM120, SM121); the data-center H100/H200 (9.0) are not among them, and no rebuild helps."""
        try:
            env, trt = cls.environment(), cls._trt()
        except CganError as e:
            return str(e)
        enum = getattr(trt, "ComputeCapability", None)
        targets = sorted((n for n in dir(enum) if re.fullmatch(r"SM\d+", n)), key=lambda n: int(n[2:])) if enum else []
        major, minor = _cc_tuple(env.compute_capability)
        if not targets or f"SM{major}{minor}" in targets:
            return None
        return (f"TensorRT-RTX {env.tensorrt_version} does not run on {env.gpu_name} (compute capability "
                f"{env.compute_capability}; it supports {', '.join(targets)}): use the tensorrt or ort-cuda backend")
