"""Backend names -> lazy "module:Class" strings; nothing is imported until a backend is used or checked.

`auto` tries, in this fixed order, the first backend that can run the source here:
tensorrt, tensorrt-rtx, ort-cuda, torch (CUDA), ort-cpu, torch (CPU).
"""
from __future__ import annotations

import importlib
import logging
import os
from typing import Any

from cgan.errors import BackendUnavailable, CganError, IntegrityError

log = logging.getLogger("cgan.runtime")

BACKENDS: dict[str, str] = {
    "tensorrt": "cgan.runtime.backends.tensorrt:TensorRTBackend",
    "tensorrt-rtx": "cgan.runtime.backends.tensorrt:TensorRTRTXBackend",
    "ort-cuda": "cgan.runtime.backends.ort:OrtCudaBackend",
    "ort-cpu": "cgan.runtime.backends.ort:OrtCpuBackend",
    "torch": "cgan.runtime.backends.torch_backend:TorchBackend",
}

#: (backend, device) in the order `auto` tries them
AUTO_ORDER: tuple[tuple[str, str], ...] = (
    ("tensorrt", "cuda"), ("tensorrt-rtx", "cuda"), ("ort-cuda", "cuda"),
    ("torch", "cuda"), ("ort-cpu", "cpu"), ("torch", "cpu"),
)


def backend_class(name: str) -> Any:
    """The Backend subclass registered as `name` (imports its module now)."""
    target = BACKENDS.get(name) if isinstance(name, str) else None
    if target is None:
        raise CganError(f"unknown backend {name!r}: use one of auto, {', '.join(BACKENDS)}")
    module, _, cls = target.partition(":")
    return getattr(importlib.import_module(module), cls)


def available_backends(source: str | os.PathLike | Any | None = None,
                       direction: str | None = None) -> dict[str, tuple[bool, str]]:
    """{backend: (ok, reason)}: which backends can run here — for `source` (name/folder/Model) if given."""
    model = _model(source, direction)
    out = {}
    for name in BACKENDS:
        try:
            out[name] = tuple(backend_class(name).check(model))
        except CganError as e:
            out[name] = (False, str(e))
    return out


def _model(source: Any, direction: str | None) -> Any:
    if source is None:
        return None
    from cgan.runtime.backends.base import Model, load_model

    return source if isinstance(source, Model) else load_model(source, direction)


def choose(model: Any, backend: str = "auto", precision: str | None = None,
           device: str | None = None) -> tuple[Any, str]:
    """(Backend class, device) for a request; `auto` walks AUTO_ORDER and logs the choice."""
    if not isinstance(backend, str) or backend != "auto":
        cls = backend_class(backend)
        dev = device or cls.default_device()
        ok, reason = cls.check(model, precision, dev)
        if not ok:
            raise BackendUnavailable(f"backend {backend} cannot run {model.direction} here: {reason}")
        return cls, dev
    tried = []
    for name, dev in AUTO_ORDER:
        if device is not None and dev != device:
            continue
        cls = backend_class(name)
        try:
            ok, reason = cls.check(model, precision, dev)
        except IntegrityError:  # a damaged manifest (a file named out of its folder) is said, not passed over
            raise
        except CganError as e:
            ok, reason = False, str(e)
        if ok:
            log.info("backend auto -> %s on %s (%s)", name, dev, model.describe())
            for skipped in tried:
                log.info("  skipped %s", _said(*skipped))
            return cls, dev
        tried.append((name, dev, reason))
    raise BackendUnavailable("no backend can run this here: " + _why_none(tried))


def _why_none(tried: list[tuple[str, str, str]]) -> str:
    """Why each backend `auto` tried cannot run, what to do first: on a machine without a GPU the CPU
    backends' reasons (e.g. which extra to install) lead, and the GPU backends share one clause."""
    from cgan.runtime.backends import cuda as cudahelp

    gpu_side = [t for t in tried if t[1] == "cuda"]
    if gpu_side and len(gpu_side) < len(tried) and cudahelp.gpu_count() == 0:
        cpu_side = [_said(*t) for t in tried if t[1] != "cuda"]
        names = ", ".join(dict.fromkeys(name for name, _, _ in gpu_side))
        return "; ".join(cpu_side) + f"; the GPU backends ({names}): {cudahelp.no_gpu_reason()}"
    return "; ".join(_said(*t) for t in tried)


def _said(name: str, dev: str, reason: str) -> str:
    """One backend `auto` tried, and why it cannot run: 'ort-cuda (cuda): no CUDA GPU here (...)'."""
    return f"{name} ({dev}): {reason}"
