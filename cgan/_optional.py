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
def _installed_from() -> tuple[str, str] | None:
    """Where this cgan was installed from, from pip's direct_url.json (cgan is not on a package index): ("folder",
    path) or ("editable", path) for a clone, ("vcs", "git+URL@commit") for `pip install git+...`; a source tree
    run without installing counts as editable. None otherwise."""
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
            url = info.get("url", "")
            scheme = urlparse(url).scheme
            vcs = info.get("vcs_info")
        except (ValueError, AttributeError):
            return None
        if isinstance(vcs, dict) and vcs.get("vcs"):
            commit = vcs.get("commit_id") or vcs.get("requested_revision")
            return "vcs", f"{vcs['vcs']}+{url}" + (f"@{commit}" if commit else "")
        if scheme == "file":
            editable = bool((info.get("dir_info") or {}).get("editable"))
            return ("editable" if editable else "folder"), unquote(urlparse(url).path)
        return None
    root = Path(__file__).resolve().parent.parent
    return ("editable", str(root)) if (root / "pyproject.toml").is_file() and (root / "cgan").is_dir() else None


def pip_extra(extra: str) -> str:
    """The command that installs cgan's `extra` (cpu, gpu, runtime, tensorrt, heif, vcam, ...) here: from where this
    cgan came from (`pip install -e '/path/to/cgan[cpu]'`, `pip install 'cgan[cpu] @ git+URL@commit'`), else
    `pip install 'cgan[cpu]'`."""
    import shlex

    where = _installed_from()
    if where is None:
        return f"pip install 'cgan[{extra}]'"
    kind, place = where
    if kind == "vcs":
        return f"pip install {shlex.quote(f'cgan[{extra}] @ {place}')}"
    return f"pip install {'-e ' if kind == 'editable' else ''}{shlex.quote(f'{place}[{extra}]')}"
