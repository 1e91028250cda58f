"""What `pip install` ships: a real (non-editable) wheel holds every file of the package — the embedded pair
with its in-pair graphs and the demo clip included — and, installed on its own, runs the embedded pair without
torch. CI and the README install in editable mode, which reads the source tree and would hide a file missing
from the package data."""
from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    src = tmp_path_factory.mktemp("src")  # a copy: an in-tree build would leave build/ in the checkout
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(ROOT / name, src / name)
    shutil.copytree(ROOT / "cgan", src / "cgan", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    out = tmp_path_factory.mktemp("wheel")
    # no build isolation: nothing is downloaded (the test extra brings setuptools >= 77)
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                        str(out), str(src)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    (whl,) = out.glob("cgan-*.whl")
    return whl


def test_wheel_holds_every_package_file(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    package = {p.relative_to(ROOT).as_posix() for p in (ROOT / "cgan").rglob("*")
               if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"}
    missing = sorted(package - names)
    assert not missing, f"not in the wheel (add them to [tool.setuptools.package-data]): {missing}"
    for must in ("cgan/data/pairs/summer2winter/G.fp32.onnx", "cgan/data/pairs/summer2winter/F.safetensors",
                 "cgan/data/demo/yosemite_summer.mp4"):
        assert must in names
    assert not any(n.startswith(("tests/", "scripts/", "benchmarks/")) for n in names)
    assert any(n.endswith("licenses/LICENSE") for n in names)


def test_installed_wheel_translates_the_embedded_pair_without_torch(wheel, tmp_path):
    target = tmp_path / "site"
    r = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "-q", "--target",
                        str(target), str(wheel)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    code = (
        "import sys; sys.modules['torch'] = None\n"  # as in an install without torch
        "import numpy as np, cgan\n"
        f"assert cgan.__file__.startswith({str(target)!r}), cgan.__file__\n"
        "from cgan.pairs import load_pair, resolve\n"
        "r = resolve('summer2winter'); assert r.origin == 'embedded', r\n"
        "load_pair(r.folder)\n"  # every hash, from the installed copy
        "from cgan.runtime import Translator\n"
        "f = np.random.default_rng(0).integers(0, 256, (40, 60, 3), dtype=np.uint8)\n"
        "with Translator.load('summer2winter', threads=1) as t:\n"
        "    y = t.translate(f); assert y.shape == f.shape and np.abs(y.astype(int) - f).mean() > 2\n"
        "    print(t.info.backend, t.info.folder)\n")
    env = {"PYTHONPATH": str(target), "CGAN_HOME": str(tmp_path / "home"), "PATH": "/usr/bin:/bin"}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, env=env,
                       timeout=120)
    assert r.returncode == 0, r.stderr[-3000:]
    backend, folder = r.stdout.split()
    assert backend == "ort-cpu" and folder.startswith(str(target))
