"""An onnxruntime that is installed but fails to import (a missing shared library, a broken install, an import
cut short) was reported as "not installed", sending users to install what they had."""
from __future__ import annotations

import re
import builtins
import sys

import pytest

from cgan._optional import pip_extra
from cgan.errors import BackendUnavailable
from cgan.runtime.backends import ort as ort_backend


def _failing_import(monkeypatch, exc):
    real = builtins.__import__

    def fake(name, *a, **k):
        if name == "onnxruntime" or name.startswith("onnxruntime."):
            raise exc
        return real(name, *a, **k)

    for mod in [m for m in sys.modules if m == "onnxruntime" or m.startswith("onnxruntime.")]:
        monkeypatch.delitem(sys.modules, mod)
    monkeypatch.setattr(builtins, "__import__", fake)


def test_installed_but_broken_says_so(monkeypatch):
    _failing_import(monkeypatch, ImportError("libonnxruntime.so.1: cannot open shared object file\nmore"))
    with pytest.raises(BackendUnavailable) as e:
        ort_backend._ort()
    msg = str(e.value)
    assert "installed but does not import (libonnxruntime.so.1: cannot open shared object file)" in msg
    assert "--force-reinstall" in msg and "\n" not in msg


def test_not_installed_says_how_to_install(monkeypatch):
    _failing_import(monkeypatch, ModuleNotFoundError("No module named 'onnxruntime'"))
    monkeypatch.setattr(ort_backend, "module_available", lambda name: False)
    with pytest.raises(BackendUnavailable, match="onnxruntime is not installed: " + re.escape(pip_extra("runtime"))):
        ort_backend._ort()
