"""cgan's embeddable runtime: translate frames with a trained pair or an export, on any backend (no torch here).

    from cgan.runtime import Translator, available_backends
    with Translator.load("summer2winter") as t:
        out = t.translate(frame_bgr)

See docs/runtime.md. Importing this package never imports torch; only the `torch` backend does, when used.
`import cgan.runtime` itself is light: numpy and OpenCV load with the first use of `Translator` (PEP 562).
"""
from __future__ import annotations

from typing import Any

from cgan.runtime import _fork
from cgan.runtime.registry import AUTO_ORDER, BACKENDS, available_backends

_fork.register()  # a torch backend in a forked child then runs on one thread, not hang (see cgan.runtime._fork)

__all__ = ["Translator", "TranslatorInfo", "available_backends", "BACKENDS", "AUTO_ORDER",
           "DEFAULT_MAX_PIXELS", "MIN_SIDE"]

_LAZY = {"Translator": "cgan.runtime.translator", "TranslatorInfo": "cgan.runtime.translator",
         "DEFAULT_MAX_PIXELS": "cgan.runtime.frames", "MIN_SIDE": "cgan.runtime.frames"}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'cgan.runtime' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
