"""`Translator`: load a pair or export once, translate BGR frames of any size with any backend.

    from cgan.runtime import Translator
    with Translator.load("summer2winter", backend="auto") as t:
        winter = t.translate(frame)            # HxWx3 BGR uint8 -> HxWx3 BGR uint8, same size

Thread safety: one Translator holds one backend (one session / engine / CUDA stream). `translate` and
`translate_batch` take an internal lock, so concurrent calls from several threads are serialized and safe,
but they do not run in parallel; for parallel work load one Translator per thread (or per GPU).
"""
from __future__ import annotations

import logging
import math
import numbers
import os
import threading
import weakref
from dataclasses import asdict, dataclass
from typing import Any, Sequence

import cv2
import numpy as np

from cgan.errors import CganError
from cgan.runtime import frames as fr
from cgan.runtime.backends.base import Backend, Model, load_model
from cgan.runtime.registry import choose

log = logging.getLogger("cgan.runtime")

FORKED_IN_USE = ("this Translator was translating in another thread when the process forked (multiprocessing's "
                 "'fork', os.fork, gunicorn): it cannot be used in the child; load one there (Translator.load), or "
                 "start workers with 'spawn' or 'forkserver'")
_live: "weakref.WeakSet[Translator]" = weakref.WeakSet()  # the Translators of this process, for the fork hook


def _after_fork_in_child() -> None:
    """A Translator a thread of the parent was using when the process forked: its lock stays held in the child
    for ever (no thread there releases it) and its backend is mid-call. Its next call waited for ever; now it is
    marked, and says so in one line. (One the parent was not using works in the child as it did.)"""
    for t in list(_live):
        if t._lock.locked():
            t._lock = threading.Lock()
            t._forked_in_use = True


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


@dataclass(frozen=True)
class TranslatorInfo:
    backend: str
    precision: str
    device: str
    direction: str         # e.g. summer2winter
    generator: str         # G or F
    source: str            # what was passed to load()
    folder: str            # the pair or export folder it resolved to
    kind: str              # pair | export

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


def _colour_only(model: Model) -> None:
    g = model.spec.generator
    if g.in_channels != 3 or g.out_channels != 3:
        raise CganError(f"{model.folder} holds a {g.in_channels}->{g.out_channels}-channel generator (grayscale: the "
                        f"official --input_nc/--output_nc 1); the runtime translates colour (3-channel) pictures only")


class Translator:
    """A loaded generator plus backend. Build it with `Translator.load(...)`; close it (or use `with`)."""

    def __init__(self, model: Model, backend: Backend, resize: str = "pad", max_side: int | None = None,
                 max_pixels: int = fr.DEFAULT_MAX_PIXELS):
        fr.plan(64, 64, resize, max_side)  # validates the policy early
        _colour_only(model)
        self.model, self.backend = model, backend
        self.resize, self.max_side, self.max_pixels = resize, max_side, int(max_pixels)
        self._lock = threading.Lock()
        self._forked_in_use = False  # (see _after_fork_in_child)
        _live.add(self)
        self._buffers = fr.Buffers()
        self.info = TranslatorInfo(backend.name, backend.precision, backend.device, model.direction, model.gen,
                                   model.source, str(model.folder), model.kind)

    @classmethod
    def load(cls, source: str | os.PathLike, direction: str | None = None, backend: str = "auto",
             precision: str | None = None, device: str | None = None, *, resize: str = "pad",
             max_side: int | None = None, max_pixels: int = fr.DEFAULT_MAX_PIXELS, **opts: Any) -> "Translator":
        """Resolve `source` (pair name, pair folder or export folder), pick the direction and backend, activate.

        direction: summer2winter / winter2summer / G / F (None: the name's hint, else G).
        backend: auto | tensorrt | tensorrt-rtx | ort-cuda | ort-cpu | torch.
        precision: fp32 | fp16 | None (the backend's best: fp16 on GPU, fp32 on CPU); fp16 where it cannot
        run fast is an error. device: cpu | cuda | None. opts go to the backend (threads=, compile=,
        cuda_graph=, device_id=).
        """
        if precision is not None and precision not in ("fp32", "fp16"):
            raise CganError(f"unknown precision {precision!r}: use fp32, fp16 or leave it out")
        if device is not None and device not in ("cpu", "cuda"):
            raise CganError(f"unknown device {device!r}: use cpu or cuda")
        fr.plan(64, 64, resize, max_side)  # a bad resize policy or max_side fails before any loading
        whole = isinstance(max_pixels, (int, np.integer)) or (
            isinstance(max_pixels, (float, np.floating)) and math.isfinite(max_pixels) and float(max_pixels).is_integer())
        if isinstance(max_pixels, bool) or not whole or max_pixels < 16 * 16:
            raise CganError(f"max_pixels={max_pixels!r}: give a whole number of pixels, at least 256 "
                            f"(default {fr.DEFAULT_MAX_PIXELS})")
        max_pixels = int(max_pixels)
        model = load_model(source, direction)
        _colour_only(model)  # before a backend is chosen (an ONNX backend's own check said "re-export it")
        backend_cls, dev = choose(model, backend, precision, device)
        be = backend_cls(model, precision, dev, **opts)
        be.activate()
        try:
            return cls(model, be, resize, max_side, max_pixels)
        except BaseException:
            be.deactivate()
            raise

    # ---- translation ---------------------------------------------------------------------------------------
    def model_size(self, height: int, width: int) -> tuple[int, int]:
        """(height, width) the model runs a height×width frame at: after `max_side` and the resize policy, padded
        to multiples of 4; what `max_pixels` is checked against."""
        for name, v in (("height", height), ("width", width)):  # (0, -5, 10.5 and 'a' gave sizes or a TypeError)
            if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 1:
                raise CganError(f"model_size takes a frame's height and width in pixels (integers >= 1), got "
                                f"{name} {v!r}")
        return fr.plan(int(height), int(width), self.resize, self.max_side).padded

    def translate(self, frame: np.ndarray) -> np.ndarray:
        """One frame (uint8 BGR HxWx3, gray HxW/HxWx1, BGRA HxWx4, uint16, float in [0,1]) -> uint8 BGR HxWx3."""
        return self.translate_batch([frame])[0]

    def translate_batch(self, frames: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Frames of one size, run through the model as one batch; returns a list of BGR uint8 frames.

        `frames`: a list, tuple or other iterable of frames, or one (N,H,W,C) array. `max_pixels` applies to
        each frame; a batch of N frames needs N times one frame's memory."""
        if not self.backend.is_active:  # first: a closed Translator said what was wrong with the frame instead
            raise CganError("this Translator is closed; load a new one")
        if self._forked_in_use:
            raise CganError(FORKED_IN_USE)
        if isinstance(frames, np.ndarray):
            if frames.ndim != 4:
                raise CganError(f"translate_batch takes a list of frames or one (N,H,W,C) array, got an array of "
                                f"shape {frames.shape}; for one frame call translate()")
            frames = list(frames)
        elif isinstance(frames, (str, bytes, dict)) or not hasattr(frames, "__iter__"):
            raise CganError(f"translate_batch takes a list of frames, got {type(frames).__name__}")
        else:
            frames = list(frames)
        if not frames:
            raise CganError("translate_batch takes a non-empty list of frames of the same size")
        sizes = [fr.frame_size(f) for f in frames]  # type and shape of every frame, before converting any
        h, w = sizes[0]
        if any(s != (h, w) for s in sizes):
            names = sorted({f"{s[1]}x{s[0]}" for s in sizes})
            raise CganError(f"translate_batch needs frames of one size, got {', '.join(names)}; "
                            f"call translate() per frame instead")
        geo = fr.plan(h, w, self.resize, self.max_side)
        fr.check_pixels(*geo.padded, self.max_pixels, given=(h, w))  # what the model would process
        bgr = [fr.to_bgr(f) for f in frames]
        with self._lock:
            if not self.backend.is_active:
                raise CganError("this Translator is closed; load a new one")
            batch = self._buffers.get("in", (len(bgr), *geo.padded, 3), np.uint8)
            for i, b in enumerate(bgr):
                if geo.resized:
                    b = cv2.resize(b, (geo.scaled[1], geo.scaled[0]), interpolation=cv2.INTER_AREA)
                fr.pad_into(b, batch[i])
                fr.dither_if_flat(batch[i])
            out = self.backend.infer(batch)
            results = []
            for i in range(len(bgr)):
                y = out[i, :geo.scaled[0], :geo.scaled[1]]
                if geo.resized:
                    y = cv2.resize(y, (w, h), interpolation=cv2.INTER_LINEAR)
                else:
                    y = y.copy()
                results.append(y)
        return results

    __call__ = translate

    # ---- lifecycle -----------------------------------------------------------------------------------------
    def close(self) -> None:
        with self._lock:
            if self._forked_in_use:  # its backend is mid-call: left alone (it goes with the process)
                self.backend.is_active = False
                return
            self.backend.deactivate()
            self._buffers.clear()

    @property
    def closed(self) -> bool:
        return not self.backend.is_active

    def __enter__(self) -> "Translator":
        if self.closed:  # (it raised only at the first call inside the block)
            raise CganError("this Translator is closed; load a new one")
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __reduce__(self):
        # a Translator holds a live session/engine/CUDA context: pickling one (multiprocessing, a cache) cannot
        # work, and a copy would share the backend, so closing the copy would close the original
        raise CganError("a Translator cannot be pickled or copied: load one per process (or per thread) with "
                        "Translator.load(...)")

    def __copy__(self):
        self.__reduce__()

    def __deepcopy__(self, memo):
        self.__reduce__()

    def __repr__(self) -> str:
        i = self.info
        state = " (closed)" if self.closed else ""
        return f"<Translator {i.direction} {i.backend} {i.precision} {i.device} from {i.folder}{state}>"
