"""Whether this process is a fork of one that had torch loaded (no torch here).

PyTorch's CPU thread pool (OpenMP) does not survive fork: in a child forked after the parent ran torch on several
threads, the next parallel torch call hangs for ever (a torch Translator in a multiprocessing or gunicorn worker).
Whether the parent ran anything parallel cannot be told from the child, so, as PyTorch's own DataLoader workers
do, the `torch` backend runs on one thread in any child forked from a process that had imported torch (see
cgan.runtime.backends.torch_backend). The hook is registered when cgan.runtime is imported: a process that
imports cgan only after the fork is not covered (start workers with 'spawn' or 'forkserver' there).
"""
from __future__ import annotations

import os
import sys

torch_in_parent = False  # this process was forked from one that had imported torch


def _after_fork_in_child() -> None:
    global torch_in_parent
    if "torch" in sys.modules:  # the child's modules are the parent's
        torch_in_parent = True


_registered = False


def register() -> None:
    """Register the fork hook once (cgan.runtime does, when it is imported)."""
    global _registered
    if not _registered and hasattr(os, "register_at_fork"):
        os.register_at_fork(after_in_child=_after_fork_in_child)
        _registered = True
