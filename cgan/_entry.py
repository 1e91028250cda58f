"""Console-script entry points. Each imports its command's module inside a Ctrl-C guard: importing
cgan.runtime.cli (OpenCV, numpy) takes most of a second, and a Ctrl-C in that window printed a traceback
instead of the one line `interrupted` (exit 130) every command prints once it runs."""
from __future__ import annotations

import importlib
import os
import sys


def launch(module: str) -> None:
    """Import `module` and run its `main()`; a Ctrl-C while importing exits 130 with one line."""
    try:
        main = importlib.import_module(module).main
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        raise SystemExit(130) from None
    except (ImportError, AttributeError) as e:
        from cgan._env import env_flag

        why = broken_opencv(e)
        if why is None or env_flag("CGAN_DEBUG"):
            raise
        sys.stderr.write(f"error: {why}\n")
        raise SystemExit(2) from None
    main()


def broken_opencv(e: BaseException) -> str | None:
    """One line for an OpenCV that is installed but does not work, None for other errors: a wheel older than
    numpy 2 ("numpy.core.multiarray failed to import"), or the cv2 folder left empty by uninstalling one of
    opencv-python / opencv-python-headless while the other stays listed (module 'cv2' has no attribute ...)."""
    from cgan.errors import first_line

    text = first_line(e, 200)
    tb, in_cv2 = e.__traceback__, getattr(e, "name", None) == "cv2"
    while tb is not None and not in_cv2:
        in_cv2 = f"{os.sep}cv2{os.sep}" in tb.tb_frame.f_code.co_filename
        tb = tb.tb_next
    if not (in_cv2 or "module 'cv2'" in text or "numpy.core.multiarray failed to import" in text):
        return None
    if isinstance(e, ModuleNotFoundError) and e.name == "cv2":
        return ("OpenCV (cv2) is not installed, and every cgan command needs it: pip install "
                "'opencv-python-headless>=4.10.0.84' (or opencv-python, for a window)")
    return (f"OpenCV (cv2) is installed but does not work ({text}): reinstall it with `pip uninstall -y "
            f"opencv-python-headless opencv-python && pip install 'opencv-python-headless>=4.10.0.84'` (or "
            f"opencv-python, for a window)")


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
