#!/usr/bin/env python3
"""ort-cuda GPU smoke test: one PASS / FAIL / SKIP / INFO line per risky point, in well under 60 s on an H200.

Run it FIRST on a GPU lease, from the repository root, with onnxruntime-gpu importable (e.g. PYTHONPATH=/tmp/site):

    timeout -k 5 170 python3 scripts/ort_gpu_smoke.py
    SMOKE_BACKEND=ort-cpu python3 scripts/ort_gpu_smoke.py   # dry run of the script's own logic on a CPU

Points (see report.md for the reasoning behind each):
  P1  a fresh process WITHOUT torch imported gets the CUDA provider (CUDA 13 libs found: preload_dlls / site-packages
      layout when onnxruntime-gpu sits in --target /tmp/site and the nvidia/* wheels elsewhere)
  P2  provider options reach the EP (enable_cuda_graph, cudnn_conv_algo_search, prefer_nhwc, device_id)
  P3  FP16 pre/post graph (uint8 in/out) with CUDA graphs: parity >= 40 dB vs ort-cpu FP32, replay updates input
  P4  a second / third frame size and batch 2 with CUDA graphs (per-gpu_graph_id warm-up before capture)
  P5  cuda_graph=False (output bound to a host array)
  P6  FP16 NCHW graph, float32 I/O (no pre/post), and --fp16-io (float16 I/O)
  P7  the libcudart ctypes copy is used (no OrtValue.numpy() fallback) and steady state allocates ~nothing
  P8  a call from another thread after capture (ORT keeps CUDA graphs per thread)
  P9  more than 8 frame sizes: evicted shapes re-bound with new graph ids still give correct frames
  P10 a bad device_id / failing EP: one clear error, nothing printed on stdout by onnxruntime's CPU fallback
  P11 speed at 720p: CUDA graph vs none, prefer_nhwc (INFO only)
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout's cgan (run from anywhere)
T0 = time.monotonic()
BACKEND = os.environ.get("SMOKE_BACKEND", "ort-cuda")
GPU = BACKEND == "ort-cuda"
RESULTS: list[tuple[str, str, str]] = []


def say(point: str, status: str, text: str) -> None:
    RESULTS.append((point, status, text))
    print(f"{status:4s} {point}: {text}  [{time.monotonic() - T0:.1f}s]", flush=True)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0 ** 2 / mse)


def frame(h: int, w: int, seed: int) -> np.ndarray:
    """A smooth, non-flat BGR frame (gradients + noise), deterministic."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.stack([x / w * 200 + 20, y / h * 180 + 30, (x + y) / (h + w) * 150 + 60], axis=-1)
    img += rng.normal(0, 12, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


@contextlib.contextmanager
def capture_fd(fd: int):
    """What native code and Python print to file descriptor `fd` meanwhile (a list, filled on exit)."""
    sys.stdout.flush(); sys.stderr.flush()
    saved = os.dup(fd)
    tmp = tempfile.TemporaryFile()
    os.dup2(tmp.fileno(), fd)
    out: list[str] = []
    try:
        yield out
    finally:
        sys.stdout.flush(); sys.stderr.flush()
        os.dup2(saved, fd)
        os.close(saved)
        tmp.seek(0)
        out.append(tmp.read().decode("utf-8", "replace"))
        tmp.close()


# ---- P1: fresh process, no torch ----------------------------------------------------------------------------
CHILD = r"""
import json, os, sys, io, contextlib
buf = io.StringIO()
res = {}
try:
    with contextlib.redirect_stdout(buf):
        from cgan.runtime import Translator
        import numpy as np
        f = (np.arange(256 * 256 * 3, dtype=np.uint32).reshape(256, 256, 3) * 2654435761 % 251).astype(np.uint8)
        with Translator.load("summer2winter", backend=sys.argv[1], precision="fp32") as t:
            a = t.translate(f).copy(); b = t.translate(f).copy()
            res["providers"] = t.backend.session.get_providers()
            res["same_twice"] = bool((a == b).all())
            res["cudart_copy"] = getattr(t.backend, "_cudart_copy", None)
    res["ok"] = True
except Exception as e:
    res["ok"] = False; res["error"] = f"{type(e).__name__}: {e}"
res["torch_imported"] = "torch" in sys.modules
res["stdout_noise"] = buf.getvalue()[-600:]
try:
    maps = open("/proc/self/maps").read()
    res["libs"] = sorted({l.split()[-1] for l in maps.splitlines() if any(k in l for k in (
        "libcudart", "libcublas", "libcudnn.so", "libcurand", "libcufft", "providers_cuda"))})
except OSError:
    res["libs"] = []
import onnxruntime as ort
res["ort"] = ort.__version__
res["ort_file"] = ort.__file__
print("JSON" + json.dumps(res))
"""


def p1_fresh_process_without_torch() -> None:
    try:
        done = subprocess.run([sys.executable, "-c", CHILD, BACKEND], capture_output=True, text=True, timeout=90)
    except subprocess.TimeoutExpired:
        say("P1", "FAIL", "child did not finish in 90 s")
        return
    line = next((l for l in done.stdout.splitlines() if l.startswith("JSON")), None)
    if line is None:
        say("P1", "FAIL", f"child printed no result; rc {done.returncode}; stderr tail: {done.stderr[-800:]!r}")
        return
    r = json.loads(line[4:])
    libs = ", ".join(r.get("libs", [])) or "none"
    print(f"     onnxruntime {r['ort']} from {r['ort_file']}; mapped: {libs}")
    if done.stderr.strip():
        print(f"     child stderr (onnxruntime's default logger / warnings): {done.stderr.strip()[-600:]!r}")
    if r.get("stdout_noise"):
        say("P1", "FAIL", f"something printed on stdout while loading (preload_dlls / EP fallback): "
                          f"{r['stdout_noise']!r}")
    if not r["ok"]:
        say("P1", "FAIL", f"no-torch process could not run {BACKEND}: {r['error']} (torch imported: "
                          f"{r['torch_imported']})")
        return
    if r["torch_imported"]:
        say("P1", "INFO", "torch got imported on the ort path (the check below is then not torch-free)")
    if GPU and "CUDAExecutionProvider" not in r["providers"]:
        say("P1", "FAIL", f"providers {r['providers']}")
        return
    if not r["same_twice"]:
        say("P1", "FAIL", "the in-pair FP32 graph gave different frames for the same input (replay wrong?)")
        return
    say("P1", "PASS", f"torch-free process ran {BACKEND} fp32 in-pair graph twice, providers {r['providers']}, "
                      f"cudart copy {r['cudart_copy']}")


# ---- shared setup --------------------------------------------------------------------------------------------
def make_exports(work: Path):
    """Two exports of the embedded pair: (default fp16 + prepost, fp16_io). None when this machine cannot export."""
    try:
        from cgan.export.api import export_pair
    except Exception as e:  # torch / onnx / onnxconverter_common / onnxslim missing
        say("setup", "SKIP", f"cannot import the exporter ({type(e).__name__}: {e}); P3-P9 need an export")
        return None, None, None
    try:
        t = time.monotonic()
        main = export_pair("summer2winter", work / "s2w", with_prepost=True, parity=False)
        io16 = export_pair("summer2winter", work / "s2w16", fp16_io=True, parity=False)
        # the same export without its pre/post records: ort-cuda then runs G.fp16.onnx (NCHW, float32 I/O)
        nchw = work / "s2w-nchw"
        shutil.copytree(main, nchw)
        man = json.loads((nchw / "manifest.json").read_text())
        man["files"] = [f for f in man["files"] if f.get("io", "nchw") == "nchw"]
        (nchw / "manifest.json").write_text(json.dumps(man))
        say("setup", "INFO", f"exports made in {time.monotonic() - t:.1f}s")
        return main, nchw, io16
    except Exception as e:
        say("setup", "FAIL", f"export failed: {type(e).__name__}: {e}")
        return None, None, None


REF: dict[tuple, np.ndarray] = {}


def reference(export: Path, frames: list[np.ndarray]) -> list[np.ndarray]:
    from cgan.runtime import Translator

    out = []
    with Translator.load(str(export), backend="ort-cpu", precision="fp32") as t:
        for f in frames:
            key = (f.shape, int(f[0, 0, 0]), int(f[-1, -1, -1]), int(f.sum()))
            if key not in REF:
                REF[key] = t.translate(f).copy()
            out.append(REF[key])
    return out


def load(export: Path, **opts):
    from cgan.runtime import Translator

    if not GPU:  # dry run on ort-cpu: the GPU-only options would be refused
        opts = {k: v for k, v in opts.items() if k not in ("cuda_graph", "prefer_nhwc", "device_id")}
    return Translator.load(str(export), backend=BACKEND, precision="fp16" if GPU else "fp32", **opts)


def check_frames(point: str, what: str, got: list[np.ndarray], want: list[np.ndarray], min_db: float = 40.0) -> bool:
    dbs = [psnr(g, w) for g, w in zip(got, want)]
    if min(dbs) < min_db or any(g.shape != w.shape or g.dtype != np.uint8 for g, w in zip(got, want)):
        say(point, "FAIL", f"{what}: PSNR {', '.join(f'{d:.1f}' for d in dbs)} dB (need >= {min_db})")
        return False
    return True


# ---- P2-P9 ---------------------------------------------------------------------------------------------------
def p2_options(main: Path) -> None:
    with load(main, prefer_nhwc=True) as t:
        sess = t.backend.session
        if not GPU:
            say("P2", "SKIP", "CPU dry run")
            return
        po = sess.get_provider_options().get("CUDAExecutionProvider", {})
        want = {"enable_cuda_graph": "1", "cudnn_conv_algo_search": "EXHAUSTIVE", "prefer_nhwc": "1",
                "device_id": "0", "do_copy_in_default_stream": "1"}
        bad = {k: (po.get(k), v) for k, v in want.items() if po.get(k) != v}
        extra = {k: po.get(k) for k in ("use_tf32", "arena_extend_strategy", "cudnn_conv_use_max_workspace")}
        print(f"     CUDA EP options: {po}")
        if bad:
            say("P2", "FAIL", f"options not in effect (got, wanted): {bad}")
        else:
            say("P2", "PASS", f"options in effect; io {t.backend.io}, providers {sess.get_providers()}; {extra}")


def p3_prepost_graph(main: Path) -> None:
    fa, fb = frame(256, 384, 1), frame(256, 384, 2)
    want = reference(main, [fa, fb])
    with load(main) as t:
        if GPU and t.backend.io != "bgr-hwc-uint8":
            say("P3", "FAIL", f"ort-cuda did not pick the pre/post graph (io {t.backend.io})")
        if GPU and not t.backend.cuda_graph:
            say("P3", "FAIL", "CUDA graphs were switched off at load (see the warning above): graph not capturable")
        t0 = time.monotonic(); a1 = t.translate(fa).copy(); first = time.monotonic() - t0
        a2 = t.translate(fa).copy()                       # replay
        b = t.translate(fb).copy()                        # replay with new input (update_inplace reached the graph?)
        a3 = t.translate(fa).copy()
    ok = check_frames("P3", "first call", [a1], want[:1])
    ok &= check_frames("P3", "replay", [a2, a3], [want[0], want[0]])
    ok &= check_frames("P3", "replay with another frame", [b], want[1:])
    if ok and np.array_equal(a2, b):
        say("P3", "FAIL", "two different frames gave the same output: the replayed graph does not read the new input")
    elif ok:
        say("P3", "PASS", f"fp16 pre/post + CUDA graph: first call {first * 1e3:.0f} ms (EXHAUSTIVE search + capture), "
                          f"{psnr(a2, want[0]):.1f} / {psnr(b, want[1]):.1f} dB on replays")


def p4_shapes(main: Path) -> None:
    sizes = [(256, 384), (192, 320), (256, 384), (320, 192)]
    frames = [frame(h, w, 10 + i) for i, (h, w) in enumerate(sizes)]
    want = reference(main, frames)
    pair = [frame(192, 320, 30), frame(192, 320, 31)]
    want_pair = reference(main, pair)
    try:
        with load(main) as t:
            times, got = [], []
            for f in frames:
                t0 = time.monotonic(); got.append(t.translate(f).copy()); times.append(time.monotonic() - t0)
                got.append(t.translate(f).copy())            # same size again: replay of that size's graph
            got_pair = [x.copy() for x in t.translate_batch(pair)]
            got_pair2 = [x.copy() for x in t.translate_batch(pair)]
    except Exception as e:
        say("P4", "FAIL", f"a new frame size / batch with CUDA graphs raised {type(e).__name__}: {str(e)[:400]}")
        return
    ok = check_frames("P4", "sizes A,B,A,C (first call and replay)", got, [w for w in want for _ in (0, 1)])
    ok &= check_frames("P4", "batch of 2 (first call and replay)", got_pair + got_pair2, want_pair + want_pair)
    if ok:
        say("P4", "PASS", "several sizes and batch 2 with graphs; first-call ms per size: "
                          + ", ".join(f"{s[1]}x{s[0]}={x * 1e3:.0f}" for s, x in zip(sizes, times)))


def p5_no_graph(main: Path) -> None:
    f = frame(256, 256, 40)
    want = reference(main, [f])
    with load(main, cuda_graph=False) as t:
        got = [t.translate(f).copy() for _ in range(2)]
    if check_frames("P5", "cuda_graph=False", got, want * 2):
        say("P5", "PASS", "cuda_graph=False (output bound to the host array)")


def p6_nchw(nchw: Path, io16: Path) -> None:
    f = frame(192, 256, 50)
    for tag, export in (("fp16 NCHW float32 I/O", nchw), ("fp16 NCHW float16 I/O (--fp16-io)", io16)):
        want = reference(export, [f])
        try:
            with load(export) as t:
                io = (t.backend.io, str(t.backend.io_dtype))
                got = [t.translate(f).copy() for _ in range(3)]
        except Exception as e:
            say("P6", "FAIL", f"{tag}: {type(e).__name__}: {str(e)[:400]}")
            continue
        if check_frames("P6", tag, got, want * 3):
            say("P6", "PASS", f"{tag} ran as {io}, first call and replays")


def p7_copy_and_allocs(main: Path) -> None:
    from cgan.runtime.backends import cuda as cudahelp

    with load(main) as t:
        be = t.backend
        batch = np.ascontiguousarray(frame(720, 1280, 60)[None])
        for _ in range(3):
            be.infer(batch)
        tracemalloc.start()
        before = tracemalloc.take_snapshot()
        ids = set()
        for _ in range(20):
            ids.add(id(be.infer(batch)))
        after = tracemalloc.take_snapshot()
        tracemalloc.stop()
        grown = sum(s.size_diff for s in after.compare_to(before, "filename") if s.size_diff > 0)
        lib = cudahelp.cudart_ctypes() if GPU else None
        if GPU and not be._cudart_copy:
            say("P7", "FAIL", "the libcudart ctypes copy failed and OrtValue.numpy() is used (a host array per frame)")
        elif grown > 1_000_000 or len(ids) != 1:
            say("P7", "FAIL", f"steady state allocated {grown / 1e6:.2f} MB over 20 frames; {len(ids)} output arrays")
        else:
            say("P7", "PASS", f"output buffer reused ({len(ids)} array), {grown / 1e3:.0f} kB Python-side growth over "
                              f"20 720p frames; cudart {getattr(lib, '_name', None)}")


def p8_other_thread(main: Path) -> None:
    f = frame(256, 256, 70)
    want = reference(main, [f])
    with load(main) as t:
        t.translate(f); t.translate(f)  # captured on this thread
        box: dict = {}

        def run():
            try:
                t0 = time.monotonic(); box["a"] = t.translate(f).copy(); box["t"] = time.monotonic() - t0
                box["b"] = t.translate(f).copy()
            except Exception as e:  # noqa: BLE001
                box["e"] = e

        th = threading.Thread(target=run); th.start(); th.join(60)
        t0 = time.monotonic(); c = t.translate(f).copy(); back = time.monotonic() - t0
    if "e" in box:
        say("P8", "FAIL", f"translate from another thread raised {type(box['e']).__name__}: {str(box['e'])[:300]}")
    elif check_frames("P8", "other thread", [box["a"], box["b"], c], want * 3):
        say("P8", "PASS", f"other thread OK (its first call {box['t'] * 1e3:.0f} ms: a recapture if ORT keeps graphs "
                          f"per thread; back on main {back * 1e3:.0f} ms)")


def p9_eviction(main: Path) -> None:
    sizes = [(32 + 4 * i, 48) for i in range(9)] + [(32, 48)]
    frames = [frame(h, w, 80 + i) for i, (h, w) in enumerate(sizes)]
    want = reference(main, frames)
    try:
        with load(main) as t:
            got = [t.translate(f).copy() for f in frames]
            ids = (sorted(int(v[5].get_run_config_entry("gpu_graph_id")) for v in t.backend.bound.values())
                   if GPU else [])
    except Exception as e:
        say("P9", "FAIL", f"{type(e).__name__}: {str(e)[:400]}")
        return
    if check_frames("P9", "9 sizes then the first again", got, want):
        say("P9", "PASS", f"10 calls over 9 sizes; live graph ids {ids}")


def p10_bad_device(main: Path) -> None:
    if not GPU:
        say("P10", "SKIP", "CPU dry run")
        return
    from cgan.errors import CganError
    from cgan.runtime.backends import cuda as cudahelp

    bad = cudahelp.gpu_count() + 3
    err = None
    with capture_fd(1) as out:
        try:
            with load(main, device_id=bad) as t:
                t.translate(frame(64, 64, 90))
        except CganError as e:
            err = e
        except Exception as e:  # noqa: BLE001
            err = e
    printed = out[0].strip()
    if err is None:
        say("P10", "FAIL", f"device_id={bad} on a machine with {cudahelp.gpu_count()} GPU(s) was accepted")
    elif not isinstance(err, CganError):
        say("P10", "FAIL", f"device_id={bad}: {type(err).__name__} (not a CganError): {str(err)[:300]}")
    elif printed:
        say("P10", "FAIL", f"one error ({type(err).__name__}: {str(err)[:200]}), but stdout got {printed[:400]!r} "
                           f"(InferenceSession's CPU fallback prints; pass enable_fallback=0)")
    else:
        say("P10", "PASS", f"{type(err).__name__}: {str(err)[:300]}")


def p11_speed(main: Path) -> None:
    f = frame(720, 1280, 100)
    rows = []
    for tag, opts in (("graph", {}), ("no graph", {"cuda_graph": False}), ("graph+nhwc", {"prefer_nhwc": True})):
        if not GPU and tag != "graph":
            continue
        with load(main, **opts) as t:
            batch = np.ascontiguousarray(f[None])
            t0 = time.monotonic(); t.backend.infer(batch); first = time.monotonic() - t0
            for _ in range(3):
                t.backend.infer(batch)
            n = 30 if GPU else 2
            t0 = time.monotonic()
            for _ in range(n):
                t.backend.infer(batch)
            rows.append(f"{tag}: {(time.monotonic() - t0) / n * 1e3:.2f} ms/frame (first {first * 1e3:.0f} ms)")
    say("P11", "INFO", "720p backend.infer, batch 1: " + "; ".join(rows))


def main() -> int:
    print(f"gpu_smoke: backend {BACKEND}, python {sys.version.split()[0]}, cwd {os.getcwd()}")
    try:
        import onnxruntime as ort
        print(f"     onnxruntime {ort.__version__} ({ort.__file__}); "
              f"available providers {ort.get_available_providers()}")
        if GPU and "CUDAExecutionProvider" not in ort.get_available_providers():
            say("P0", "FAIL", "this onnxruntime has no CUDAExecutionProvider "
                              "(onnxruntime, not onnxruntime-gpu, imported?)")
            return 1
    except Exception as e:
        say("P0", "FAIL", f"onnxruntime does not import: {e}")
        return 1
    p1_fresh_process_without_torch()
    work = Path(tempfile.mkdtemp(prefix="ort_smoke_"))
    try:
        main_export, nchw, io16 = make_exports(work)
        if main_export is not None:
            for fn, args in ((p2_options, (main_export,)), (p3_prepost_graph, (main_export,)),
                             (p4_shapes, (main_export,)), (p5_no_graph, (main_export,)),
                             (p6_nchw, (nchw, io16)), (p7_copy_and_allocs, (main_export,)),
                             (p8_other_thread, (main_export,)), (p9_eviction, (main_export,)),
                             (p10_bad_device, (main_export,)), (p11_speed, (main_export,))):
                try:
                    fn(*args)
                except Exception as e:  # one point's crash must not hide the others
                    say(fn.__name__.split("_")[0].upper(), "FAIL", f"crashed: {type(e).__name__}: {str(e)[:400]}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    fails = [r for r in RESULTS if r[1] == "FAIL"]
    print(f"gpu_smoke: {sum(r[1] == 'PASS' for r in RESULTS)} passed, {len(fails)} failed "
          f"({time.monotonic() - T0:.1f}s)")
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
