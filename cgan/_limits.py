"""Limits every part of cgan applies (no torch, nothing of cgan but its errors): the largest frame side, and how
many CPU threads a caller may ask for. One place, so the trainer, the exporter, the runtime and the benchmarks
agree."""
from __future__ import annotations

import os

from cgan.errors import CganError

#: the largest frame side: the runtime refuses frames over MAX_SIDE² pixels by default (activations would need
#: many GB), the trainer refuses --size/--load-size above it, parity and benchmark sizes likewise
MAX_SIDE = 4096
MAX_PIXELS = MAX_SIDE * MAX_SIDE

#: the most pixels a training photo may have (134 megapixels: a 100-megapixel camera's photos fit). A 250 KB PNG
#: declaring 16000x16000 took 1.2 GB to decode, per loader worker; OpenCV's own limit is 2^30
MAX_DECODE_PIXELS = 1 << 27


def max_threads() -> int:
    """The most CPU threads anything may be given: 4 per logical core, at least 64 (thousands of threads made
    onnxruntime hang and torch crash)."""
    return max(64, 4 * (os.cpu_count() or 1))


def check_threads(threads: int, given: str) -> None:
    """A one-line CganError for `threads` over max_threads() (`given`: how the user said it, e.g.
    '--threads 100000')."""
    if threads > max_threads():
        raise CganError(f"{given} is more than 4 per logical core of this machine ({os.cpu_count() or 1}): use at "
                        f"most {max_threads()}")
