"""Version strings as comparable tuples (no torch, nothing of cgan): one reading for the exporter and the
runtime, which may not import each other."""
from __future__ import annotations


def version_tuple(v: str) -> tuple[int, ...]:
    """'10.12.0.38' -> (10, 12, 0, 38): the leading dot-separated numbers of a version (or compute capability);
    it stops at the first part without a decimal digit ('1.2.dev3' -> (1, 2, 3), 'abc' -> ())."""
    out = []
    for part in str(v).split("."):
        digits = "".join(c for c in part if c.isdecimal())
        if not digits:
            break
        out.append(int(digits))
    return tuple(out)


def dist_version(*dists: str) -> str | None:
    """The installed version of the first of `dists` (distribution names, e.g. 'onnxruntime-gpu',
    'onnxruntime') that is installed, from its metadata: nothing is imported. None when none is."""
    from importlib import metadata

    for d in dists:
        try:
            return metadata.version(d)
        except metadata.PackageNotFoundError:
            continue
    return None
