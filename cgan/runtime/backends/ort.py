"""ONNX Runtime backends: `ort-cpu` (CPU provider, FP32 graph) and `ort-cuda` (CUDA provider, FP16 graph).

Both run an export folder (ONNX files listed in manifest.json), or a pair folder's in-pair FP32 graph, which
reads the pair's own weights (the embedded pair has them; `cgan-export PAIR --in-pair` writes them). Inputs and
outputs are bound once per shape (IO binding to OrtValues that stay alive), so steady-state inference
allocates nothing in cgan's code.

`ort-cuda` prefers the export's `G.fp16.prepost.onnx` (uint8 BGR NHWC in and out: pre/post-processing runs on
the GPU and only bytes cross PCIe), runs cuDNN's exhaustive algorithm search, and captures a CUDA graph per
input shape (`gpu_graph_id`) unless `cuda_graph=False`. The output reaches one host array per shape, reused:
with CUDA graphs it stays bound on the device (a replayed graph writes where it was captured) and is copied
into that array with libcudart's cudaMemcpy through ctypes (onnxruntime's Python API has no device-to-host copy
into an existing array: `OrtValue.numpy()` allocates, and `onnxruntime.copy_tensors` only knows the transfers of
EPs registered as plugin libraries); without graphs the output is bound to that host array and onnxruntime
copies into it. Like every backend (see base.py), the returned array is overwritten by the next call of the
same shape; `Translator` copies it under its lock, so its callers (the video pipeline too) are not affected.
"""
from __future__ import annotations

import contextlib
import os
import re
import sys
from typing import Any

import numpy as np

from cgan._limits import compute_threads
from cgan._optional import pip_extra
from cgan._versions import version_tuple
from cgan.errors import BackendUnavailable, CganError, IntegrityError, first_line
from cgan.runtime.backends.base import Backend, Model, ShapeCache, log, module_available
from cgan.runtime.backends import cuda as cudahelp
from cgan.runtime.frames import Buffers, bgr_to_nchw, nchw_to_bgr


def ort_message(e: BaseException, limit: int = 300) -> str:
    """onnxruntime's error text as one readable line: without its '[ONNXRuntimeError] : 1 : FAIL :' prefix and
    the C++ source locations ('/onnxruntime_src/.../initializer.cc:51 onnxruntime::Initializer::...(...)')."""
    text = " ".join(str(e).split())
    text = re.sub(r"\[ONNXRuntimeError\] : \d+ : ", "", text)
    text = re.sub(r"\S+\.(?:cc|cpp|cu|h):\d+\s+(?:[\w:~<>,*& ]{0,160}?\([^)]*\)(?:\s*const)?|\w+)?", "", text)
    return " ".join(text.split())[:limit] or type(e).__name__


#: the first onnxruntime that refuses ONNX external data outside the model's folder (absolute paths, `../`,
#: symlinks out); an older one would read any file a hostile in-pair graph names as its weights
EXTERNAL_DATA_SAFE = (1, 24, 1)


def _pair_hint(model: Model, precision: str) -> str:
    """What to do with a pair that has no ONNX graph the ONNX backends can run: give it its FP32 graphs, or
    export it (said for command-line and Python users alike; cgan-export comes with cgan[cpu])."""
    import shlex

    where = shlex.quote(str(model.folder)) if model.source_is_path else model.folder.name
    in_pair = f"give it one with `cgan-export {where} --in-pair` (FP32), or " if precision != "fp16" else ""
    if model.source_is_path:
        export = f"`cgan-export {where} --out EXPORT_FOLDER` and load EXPORT_FOLDER instead"
    else:
        export = f"`cgan-export {where}` (the name then finds the export)"
    return (f"{model.folder} is a pair without an {precision.upper()} ONNX graph for {model.direction}: "
            f"{in_pair}export it with {export}; cgan-export comes with the cpu extra ({pip_extra('cpu')})")


def _ort() -> Any:
    try:
        import onnxruntime as ort
    except ImportError as e:
        if not module_available("onnxruntime"):
            raise BackendUnavailable(f"onnxruntime is not installed: {pip_extra('runtime')} (or the cpu or gpu "
                                     f"extra)") from None
        # installed but broken (a missing shared library, a half-removed install, an import cut short): saying
        # "not installed" sent users to install what they had
        why = first_line(e)
        raise BackendUnavailable(f"onnxruntime is installed but does not import ({why}): reinstall it (pip install "
                                 f"--force-reinstall onnxruntime, or onnxruntime-gpu)") from None
    return ort


def preload_cuda_libraries(ort: Any) -> str:
    """Load the CUDA and cuDNN libraries onnxruntime-gpu's CUDA provider needs (it has no RUNPATH to them) before
    its session is made; what could not be loaded, in a few words ("" when all was). onnxruntime.preload_dlls
    looks only beside onnxruntime itself: with the NVIDIA wheels in another site folder (torch's, onnxruntime
    installed with --target), the provider did not load and onnxruntime quietly made a CPU session, unless torch
    had been imported first. Here every site folder holding an `nvidia` package is looked in, in the order of
    onnxruntime's own list. What preload_dlls prints (on stdout) is kept out of the app's output."""
    from io import StringIO

    if not hasattr(ort, "preload_dlls"):
        return ""
    printed = StringIO()
    with contextlib.redirect_stdout(printed):
        try:
            ort.preload_dlls()
        except Exception as e:  # noqa: BLE001 - a missing optional library must not hide the real error
            print(f"preload_dlls: {e}")
    paths = getattr(ort, "_get_nvidia_dll_paths", None)
    if sys.platform.startswith("linux") and callable(paths):
        import ctypes
        import importlib.util

        try:
            spec = importlib.util.find_spec("nvidia")
        except (ImportError, ValueError):
            spec = None
        sites = sorted({os.path.dirname(p) for p in (spec.submodule_search_locations or [])} if spec else set())
        try:
            wanted = list(paths(False, True, True))
        except Exception:  # noqa: BLE001 - a private helper of onnxruntime's: best effort
            wanted = []
        for rel in wanted:  # (in onnxruntime's order: cublasLt before cublas)
            for site in sites:
                lib = os.path.join(site, *rel)
                if os.path.isfile(lib):
                    with contextlib.suppress(OSError):
                        ctypes.CDLL(lib)
                        break
        failed = []
        for rel in wanted:  # (a library loaded above, or found where the loader looks, opens by its name)
            if any(part in rel[-1] for part in ("cufft", "nvrtc", "cudnn")):
                continue  # (optional to onnxruntime too)
            try:
                ctypes.CDLL(rel[-1])
            except OSError:
                failed.append(rel[-1])
    else:
        failed = [line.split(":")[0].removeprefix("Failed to load ").strip()
                  for line in printed.getvalue().splitlines() if line.startswith("Failed to load")]
    if printed.getvalue().strip():
        log.debug("onnxruntime.preload_dlls: %s", printed.getvalue().strip())
    return f"could not load {', '.join(os.path.basename(f) for f in failed[:4])}" if failed else ""


def _pick_onnx(model: Model, precision: str, prefer_prepost: bool) -> dict[str, Any] | None:
    """The manifest record to run: for fp16 on GPU the pre/post graph first, else the NCHW graph."""
    order = ["bgr-hwc-uint8", "nchw"] if prefer_prepost else ["nchw"]
    for io in order:
        recs = model.find("onnx", precision, io)
        if recs:
            return recs[0]
    return None


ORT_TYPES = {"float32": "tensor(float)", "float16": "tensor(float16)", "uint8": "tensor(uint8)"}
IO_LAYOUTS = ("nchw", "bgr-hwc-uint8")


def _io_problem(session: Any, io: str, io_dtype: np.dtype) -> str | None:
    """What in the graph's inputs/outputs contradicts the manifest record (io layout, I/O type, 3 channels), or
    None. The manifest is not hashed, so an edited record (or a graph from elsewhere) must not reach inference,
    where it would fail with onnxruntime's own error or give wrong colours."""
    ins, outs = session.get_inputs(), session.get_outputs()
    if len(ins) != 1 or len(outs) != 1:
        return f"{len(ins)} inputs and {len(outs)} outputs, the runtime needs one of each"
    want = ORT_TYPES.get(np.dtype(io_dtype).name)
    channel_axis = 3 if io == "bgr-hwc-uint8" else 1
    for what, arg in (("input", ins[0]), ("output", outs[0])):
        if arg.type != want:
            return f"its {what} is {arg.type}, the manifest says {np.dtype(io_dtype).name}"
        shape = list(arg.shape)
        if len(shape) != 4:
            return f"its {what} has {len(shape)} dimensions, {io} needs 4"
        if isinstance(shape[channel_axis], int) and shape[channel_axis] != 3:
            return f"its {what} has {shape[channel_axis]} channels, the runtime needs 3 ({io})"
    return None


class _OrtBackend(Backend):
    provider = "CPUExecutionProvider"
    preload_problem = ""  # the CUDA libraries that could not be loaded (ort-cuda: preload_cuda_libraries)

    @classmethod
    def _check_model(cls, model: Model | None, precision: str, prefer_prepost: bool) -> tuple[bool, str]:
        if model is None:
            return True, ""
        rec = _pick_onnx(model, precision, prefer_prepost)
        if rec is not None:
            graph = model.path(rec, verify=False)  # (a path out of the folder: IntegrityError, a damaged manifest)
            if not graph.is_file():  # (a size and hash check is the load's: it reads the whole file)
                return False, (f"{model.listing} lists {rec.get('path')} but {graph} is missing; "
                               f"{model.rebuild_hint()}")
        if rec is None:
            if model.kind != "export":
                # a pair runs only through its in-pair FP32 graph (cgan-export PAIR --in-pair); anything else
                # needs an export folder
                return False, _pair_hint(model, precision)
            return False, (f"{model.folder} has no {precision} ONNX graph for {model.direction}: "
                           f"re-run `cgan-export` with that precision")
        have = str(getattr(_ort(), "__version__", "0"))
        if version_tuple(have) < EXTERNAL_DATA_SAFE:
            # any graph may name external data: a pair's graphs read its weights so, and a shared export's graph
            # could name any file on the machine (an older onnxruntime reads it, into the output pixels)
            need = ".".join(map(str, EXTERNAL_DATA_SAFE))
            return False, (f"ONNX graphs can name external data files, whose paths onnxruntime checks only from "
                           f"{need} on (this is {have}): pip install -U 'onnxruntime>={need}', or use the torch "
                           f"backend")
        return True, ""

    def _session_options(self) -> Any:
        ort = _ort()
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # fatal only: every error onnxruntime raises becomes one CganError line; its own coloured copy on stderr
        # (which an embedding app could not silence: the session's level overrides the default logger's) is noise
        so.log_severity_level = 4
        return so

    def _run(self, binding: Any, shape: tuple[int, ...], run_opts: Any = None) -> None:
        """session.run_with_iobinding; onnxruntime's errors (a graph that fails on this size, no GPU memory)
        become one CganError line naming the graph and the batch."""
        try:
            if run_opts is None:
                self.session.run_with_iobinding(binding)
            else:
                self.session.run_with_iobinding(binding, run_opts)
        except Exception as e:  # onnxruntime raises its own Fail / RuntimeException types
            text = ort_message(e)
            hint = ("a smaller frame size or batch, or another backend"
                    if "memory" in text.lower() or "alloc" in text.lower() else self.model.rebuild_hint())
            raise CganError(f"onnxruntime failed running {self.model.path(self.record).name} on a batch of "
                            f"{'x'.join(map(str, shape))}: {text}; {hint}") from e

    def _providers(self) -> list[Any]:
        return [self.provider]

    def _activate_impl(self) -> None:
        ort = _ort()
        self.record = _pick_onnx(self.model, self.precision, self.prefer_prepost)
        path = self.model.path(self.record)
        self.io = self.record.get("io", "nchw")
        io_dtype = self.record.get("io_dtype") or ("uint8" if self.io == "bgr-hwc-uint8" else "float32")
        if self.io not in IO_LAYOUTS or not isinstance(io_dtype, str) or io_dtype not in ORT_TYPES:
            raise IntegrityError(f"{self.model.listing} lists {path.name} with io {self.io!r} and io_dtype "
                                 f"{io_dtype!r}, which the runtime does not know; {self.model.rebuild_hint()}")
        self.io_dtype = np.dtype(io_dtype)
        try:
            # no fallback: a CUDA provider that fails to start is said, not replaced by the CPU (onnxruntime
            # printed its reason on stdout and went on with a CPU session)
            self.session = ort.InferenceSession(str(path), self._session_options(), providers=self._providers(),
                                                enable_fallback=0)
        except Exception as e:  # ORT raises its own Fail/InvalidGraph types
            raise CganError(f"onnxruntime cannot load {path}: {ort_message(e)}; "
                            f"{self.model.rebuild_hint()}") from None
        if self.provider not in self.session.get_providers():
            missing = f" ({self.preload_problem})" if self.preload_problem else ""
            raise BackendUnavailable(f"onnxruntime did not enable {self.provider} (got "
                                     f"{self.session.get_providers()}){missing}: install onnxruntime-gpu and the "
                                     f"CUDA/cuDNN libraries of its CUDA version")
        problem = _io_problem(self.session, self.io, self.io_dtype) or self._meta_problem()
        if problem:
            self.session = None
            raise IntegrityError(f"{path} does not match its entry in {self.model.listing} ({problem}); "
                                 f"{self.model.rebuild_hint()}")
        self.input_name = self.session.get_inputs()[0].name
        self.output_name = self.session.get_outputs()[0].name
        self.buffers = Buffers()
        self.bound = ShapeCache(bounded=self.device == "cpu")  # batch shape -> bound buffers
        log.debug("ort: %s with %s (%s)", path.name, self.session.get_providers(), self.io)

    def _meta_problem(self) -> str | None:
        """What in the graph's cgan metadata contradicts the model it is loaded as (a graph of F listed as G's; a
        pair graph made for other weights), or None. Graphs without cgan metadata are not judged here."""
        meta = self.session.get_modelmeta().custom_metadata_map
        gen = meta.get("cgan.generator")
        if gen is not None and gen != self.model.gen:
            return f"it is the graph of {gen}, listed as {self.model.gen}'s"
        if self.model.kind == "pair":
            want = self.model.pair().files[self.model.gen].get("sha256")
            if meta.get("cgan.weights_sha256") != want:
                return "its metadata names other weights than the pair's"
        return None

    def _deactivate_impl(self) -> None:
        self.bound.clear()
        self.buffers.clear()
        self.session = None


class OrtCpuBackend(_OrtBackend):
    """CPU provider, FP32 NCHW graph, intra-op threads = cgan._limits.compute_threads() (override: threads=N)."""

    name = "ort-cpu"
    devices = ("cpu",)
    prefer_prepost = False

    @classmethod
    def check(cls, model=None, precision=None, device=None):
        if not module_available("onnxruntime"):
            return False, f"onnxruntime is not installed: {pip_extra('runtime')} (or the cpu extra)"
        if precision == "fp16":
            return False, "fp16 does not run fast on the CPU: use precision fp32 (or a GPU backend)"
        return cls._check_model(model, "fp32", False)

    def _session_options(self) -> Any:
        so = super()._session_options()
        so.intra_op_num_threads = int(self.opts.get("threads") or compute_threads())
        so.inter_op_num_threads = 1
        return so

    def _activate_impl(self) -> None:
        super()._activate_impl()
        # onnxruntime's CPU memory arena grows to the largest frame run and keeps it until close (about 650
        # bytes a pixel for ResNet-9 ngf 64: one 3 MP photo held 2.5 GB). The second run in a row of a batch
        # under half the largest since the last shrink gives back what it does not use. Shrinking every run
        # would cost 9-16 % (measured at 256x256 and 720p); this costs nothing on a steady stream, and two
        # streams of two sizes, or a batch of 2 that is sometimes 1, never shrink (each would grow it again).
        self._arena_high = 0
        self._small_runs = 0
        self._shrink = _ort().RunOptions()
        self._shrink.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")

    def _infer_impl(self, batch: np.ndarray) -> np.ndarray:
        ort = _ort()
        n, h, w, _ = batch.shape
        key = batch.shape
        entry = self.bound.get(key)
        if entry is None:
            y_dtype = np.dtype(np.float32 if self.io_dtype == np.float32 else self.io_dtype)
            self.bound.make_room(batch.size * (self.io_dtype.itemsize + y_dtype.itemsize + 1))
            x = np.empty((n, 3, h, w), self.io_dtype)
            y = np.empty((n, 3, h, w), y_dtype)
            binding = self.session.io_binding()
            binding.bind_ortvalue_input(self.input_name, ort.OrtValue.ortvalue_from_numpy(x))
            binding.bind_ortvalue_output(self.output_name, ort.OrtValue.ortvalue_from_numpy(y))
            out = np.empty(batch.shape, np.uint8)
            entry = self.bound.put(key, (binding, x, y, out), x.nbytes + y.nbytes + out.nbytes)
        binding, x, y, out = entry
        bgr_to_nchw(batch, x)
        self._small_runs = self._small_runs + 1 if 2 * batch.size < self._arena_high else 0
        shrink = self._small_runs >= 2
        self._run(binding, batch.shape, self._shrink if shrink else None)
        if shrink:
            self._arena_high, self._small_runs = batch.size, 0
        else:
            self._arena_high = max(self._arena_high, batch.size)
        return nchw_to_bgr(y, out)


class OrtCudaBackend(_OrtBackend):
    """CUDA provider (onnxruntime-gpu), FP16 graph with on-GPU pre/post when exported, IO binding, CUDA graphs."""

    name = "ort-cuda"
    devices = ("cuda",)
    #: prefer_nhwc=True: the CUDA provider's NHWC convolutions (fewer cuDNN layout transposes; measure it with
    #: `cgan-bench --backends ort-cuda,ort-cuda+nhwc`, not yet measured on a GPU)
    options = ("cuda_graph", "prefer_nhwc")
    any_device_id = True
    provider = "CUDAExecutionProvider"
    ort_device = "cuda"  # where bound OrtValues live
    prefer_prepost = True

    @classmethod
    def check(cls, model=None, precision=None, device=None):
        if not module_available("onnxruntime"):
            return False, f"onnxruntime-gpu is not installed: {pip_extra('gpu')}"
        if cudahelp.gpu_count() == 0:
            return False, cudahelp.no_gpu_reason()
        ort = _ort()
        if cls.provider not in ort.get_available_providers():
            return False, ("this onnxruntime has no CUDAExecutionProvider: pip uninstall onnxruntime && "
                           "pip install onnxruntime-gpu")
        return cls._check_model(model, precision or "fp16", True)

    def _providers(self) -> list[Any]:
        self.preload_problem = preload_cuda_libraries(_ort())
        opts = {"device_id": int(self.opts.get("device_id", 0)),
                "cudnn_conv_algo_search": "EXHAUSTIVE",
                "do_copy_in_default_stream": "1",
                "enable_cuda_graph": "1" if self.cuda_graph else "0"}
        if self.opts.get("prefer_nhwc"):
            opts["prefer_nhwc"] = "1"
        return [(self.provider, opts)]

    def _session_options(self) -> Any:
        so = super()._session_options()
        if self.cuda_graph:  # (memory patterns allocate at the second run, inside a capture: onnxruntime's own
            so.enable_mem_pattern = False  # CUDA-graph tests turn them off)
        return so

    def _activate_impl(self) -> None:
        self.cuda_graph = bool(self.opts.get("cuda_graph", True))
        self.graph_ids: dict[tuple[int, ...], int] = {}  # shape -> id of the graph captured for its buffers
        self._cudart_copy = True  # False once copy_device_to_host proved unusable here (see _copy_out)
        try:
            super()._activate_impl()
        except BackendUnavailable:
            raise  # no CUDA provider at all: running without graph capture would not help
        except CganError as e:
            if not self.cuda_graph or "cuda_graph" in self.opts:
                raise
            # CUDA graphs need every node on the CUDA EP; some graphs keep shape ops on the CPU. Same
            # precision and graph, only without capture: say so and go on.
            log.warning("ort-cuda: CUDA graph capture not possible for this graph (%s); running without it "
                        "(pass cuda_graph=False to silence this)", e)
            self.cuda_graph = False
            super()._activate_impl()

    def _infer_impl(self, batch: np.ndarray) -> np.ndarray:
        ort = _ort()
        n, h, w, _ = batch.shape
        key = batch.shape
        dev = int(self.opts.get("device_id", 0))
        prepost = self.io == "bgr-hwc-uint8"
        entry = self.bound.get(key)
        fresh = entry is None and self.cuda_graph  # (a shape bound now: one plain run before its capture, below)
        if entry is None:
            in_shape = batch.shape if prepost else (n, 3, h, w)
            out_dtype = np.dtype(np.uint8) if prepost else self.io_dtype
            # one frame size more: drop the least recently used shapes' bound buffers (onnxruntime offers no way
            # to release a captured CUDA graph; those stay until close)
            self.bound.make_room()
            x = ort.OrtValue.ortvalue_from_shape_and_type(in_shape, self.io_dtype, self.ort_device, dev)
            host_out = np.empty(in_shape, out_dtype)  # the output lands here on the host, every frame
            if self.cuda_graph:
                # a captured graph writes where it wrote when captured: the output stays on the device and is
                # copied into host_out after each run (cudaMemcpy, see _copy_out)
                y = ort.OrtValue.ortvalue_from_shape_and_type(in_shape, out_dtype, self.ort_device, dev)
            else:
                # without a graph onnxruntime copies the device output into the bound host array itself
                y = ort.OrtValue.ortvalue_from_numpy(host_out)
            binding = self.session.io_binding()
            binding.bind_ortvalue_input(self.input_name, x)
            binding.bind_ortvalue_output(self.output_name, y)
            host_in = None if prepost else np.empty(in_shape, self.io_dtype)
            run_opts = ort.RunOptions()
            if self.cuda_graph:
                # one captured graph per bound buffer set; ids must be > 0 to be captured (-1 = never, 0 =
                # default) and never reused: a captured graph replays into the buffers it was captured with, so
                # a shape bound again after it was dropped above needs a new capture, not the old (freed) one's id
                self.graph_ids[key] = max(self.graph_ids.values(), default=0) + 1
                run_opts.add_run_config_entry("gpu_graph_id", str(self.graph_ids[key]))
            # nchw: float16 output is converted through a float32 scratch, then to uint8 BGR in `out`
            scratch = None if prepost or out_dtype == np.float32 else np.empty(in_shape, np.float32)
            out = None if prepost else np.empty(batch.shape, np.uint8)
            entry = self.bound.put(key, (binding, x, y, host_in, host_out, run_opts, scratch, out))
        binding, x, y, host_in, host_out, run_opts, scratch, out = entry
        if prepost:
            x.update_inplace(np.ascontiguousarray(batch))
        else:
            x.update_inplace(bgr_to_nchw(batch, host_in))
        # update_inplace is a cudaMemcpy from pageable memory, which may return before the data has landed;
        # onnxruntime computes on its own non-blocking stream, so wait for the upload (the GPU is idle here)
        binding.synchronize_inputs()
        if fresh:
            # a plain run first (gpu_graph_id -1: no capture): onnxruntime counts its warm-up runs per thread, not
            # per graph, so a second shape was captured at its first run, with the convolution algorithm search
            # and the memory arena's growth inside the capture, which CUDA refuses
            plain = ort.RunOptions()
            plain.add_run_config_entry("gpu_graph_id", "-1")
            self._run(binding, batch.shape, plain)
        self._run(binding, batch.shape, run_opts)
        if self.cuda_graph:
            self._copy_out(y, host_out)
        if prepost:
            return host_out
        if scratch is not None:
            np.copyto(scratch, host_out)
            return nchw_to_bgr(scratch, out)
        return nchw_to_bgr(host_out, out)

    def _copy_out(self, y: Any, host_out: np.ndarray) -> None:
        """The bound device output into host_out without allocating (libcudart's cudaMemcpy through ctypes).
        If no CUDA runtime library can be found, or the first copy fails (a runtime the driver does not
        support), it falls back to OrtValue.numpy() for good, with one warning: a new host array per frame."""
        if self._cudart_copy:
            try:
                if cudahelp.copy_device_to_host(host_out, y.data_ptr()):
                    return
                why = "no CUDA runtime library (libcudart) found through ctypes"
            except CganError as e:
                why = str(e)
            self._cudart_copy = False
            log.warning("ort-cuda: %s; outputs are copied with OrtValue.numpy() from now on (a new host array "
                        "per frame)", why)
        np.copyto(host_out, y.numpy())
