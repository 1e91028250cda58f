"""cgan's embeddable runtime: translate frames with a trained pair or an export, on any backend (no torch here).

    from cgan.runtime import Translator, available_backends
    with Translator.load("summer2winter") as t:
        out = t.translate(frame_bgr)

See docs/runtime.md. Importing this package never imports torch; only the `torch` backend does, when used.
"""
from cgan.runtime.frames import DEFAULT_MAX_PIXELS, MIN_SIDE
from cgan.runtime.registry import AUTO_ORDER, BACKENDS, available_backends
from cgan.runtime.translator import Translator, TranslatorInfo

__all__ = ["Translator", "TranslatorInfo", "available_backends", "BACKENDS", "AUTO_ORDER",
           "DEFAULT_MAX_PIXELS", "MIN_SIDE"]
