"""Shared test settings: small thread pools (CI has 2 cores), an isolated CGAN_HOME, GPU marker skipping."""
from __future__ import annotations

import os

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")


def _cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


def pytest_collection_modifyitems(config, items):
    if _cuda_available():
        return
    skip = pytest.mark.skip(reason="needs CUDA (no GPU here)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory, monkeypatch):
    """Every test gets its own empty $CGAN_HOME so no test reads or writes the user's cache."""
    home = tmp_path_factory.mktemp("cgan_home")
    monkeypatch.setenv("CGAN_HOME", str(home))
    monkeypatch.delenv("CGAN_PRETRAINED_URL", raising=False)
    yield home


@pytest.fixture(autouse=True, scope="session")
def _torch_threads():
    try:
        import torch
    except ImportError:
        yield
        return
    torch.set_num_threads(1)
    yield
