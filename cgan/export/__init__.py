"""The exporter (torch, onnx): pair -> ONNX FP32/FP16 (+pre/post) -> TensorRT engines, with parity checks.

    from cgan.export import export_pair
    export_pair("summer2winter", "exports/s2w", with_prepost=True)
    export_pair("summer2winter")   # into $CGAN_HOME/exports/summer2winter, where Translator.load finds it first
"""
from __future__ import annotations

from typing import Any


def export_pair(source: Any, out: Any = None, **kwargs: Any):
    """See cgan.export.api.export_pair (imported lazily so `cgan-export --help` stays fast)."""
    from cgan.export.api import export_pair as _export_pair

    return _export_pair(source, out, **kwargs)


__all__ = ["export_pair"]
