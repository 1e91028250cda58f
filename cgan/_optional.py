"""Optional libraries (PyAV, pyvirtualcam, pillow-heif): imported when first needed, None where not installed."""
from __future__ import annotations

import importlib
from types import ModuleType


def optional_module(name: str) -> ModuleType | None:
    """The module `name`, or None when it is not installed (or cannot be imported here)."""
    try:
        return importlib.import_module(name)
    except ImportError:
        return None
