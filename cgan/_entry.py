"""Console-script entry points. Each imports its command's module inside a Ctrl-C guard: importing
cgan.runtime.cli (OpenCV, numpy) takes most of a second, and a Ctrl-C in that window printed a traceback
instead of the one line `interrupted` (exit 130) every command prints once it runs."""
from __future__ import annotations

import importlib
import sys


def launch(module: str) -> None:
    """Import `module` and run its `main()`; a Ctrl-C while importing exits 130 with one line."""
    try:
        main = importlib.import_module(module).main
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        raise SystemExit(130) from None
    main()


def train() -> None:
    launch("cgan.trainer.cli")


def export() -> None:
    launch("cgan.export.cli")


def video() -> None:
    launch("cgan.runtime.cli")


def bench() -> None:
    launch("cgan.benchmarks.cli")


def eval_() -> None:
    launch("cgan.benchmarks.eval_cli")


def overview() -> None:
    launch("cgan.__main__")
