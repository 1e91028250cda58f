"""Optional libraries (PyAV, pyvirtualcam, pillow-heif): imported when first needed, None where not installed."""
from __future__ import annotations

import functools
import importlib
from types import ModuleType


def optional_module(name: str) -> ModuleType | None:
    """The module `name`, or None when it is not installed (or cannot be imported here)."""
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


@functools.lru_cache(maxsize=1)
def _installed_from() -> tuple[str, bool] | None:
    """Where this cgan was installed from when that is a local folder (a clone: cgan is not on a package index):
    (folder, editable), from pip's direct_url.json; a source tree run without installing counts as editable.
    None otherwise."""
    import json
    from importlib import metadata
    from pathlib import Path
    from urllib.parse import unquote, urlparse

    try:
        text = metadata.distribution("cgan").read_text("direct_url.json")
    except metadata.PackageNotFoundError:
        text = None
    if text:
        try:
            info = json.loads(text)
            url = urlparse(info.get("url", ""))
        except (ValueError, AttributeError):
            return None
        if url.scheme == "file":
            return unquote(url.path), bool((info.get("dir_info") or {}).get("editable"))
        return None
    root = Path(__file__).resolve().parent.parent
    return (str(root), True) if (root / "pyproject.toml").is_file() and (root / "cgan").is_dir() else None


def pip_extra(extra: str) -> str:
    """The command that installs cgan's `extra` (cpu, gpu, runtime, tensorrt, heif, vcam, ...) here: from the
    folder this cgan was installed from (`pip install -e '/path/to/cgan[cpu]'`), else `pip install 'cgan[cpu]'`."""
    import shlex

    where = _installed_from()
    if where is None:
        return f"pip install 'cgan[{extra}]'"
    folder, editable = where
    return f"pip install {'-e ' if editable else ''}{shlex.quote(f'{folder}[{extra}]')}"
