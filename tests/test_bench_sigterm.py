"""`timeout` and schedulers end a run with SIGTERM: cgan-bench and cgan-eval stop as a Ctrl-C stops them
('terminated', exit 143, clean-up done). SIGTERM killed both outright, and cgan-bench left its export's staging
folder (87 MB at the default size) in the cache. In child processes: the old way kills the process."""
from __future__ import annotations

import subprocess
import sys

import pytest

pytest.importorskip("torch")

TERM_DURING = """
import os, signal, sys
import {module} as target

real = target.{name}

def signalled(*args, **kw):
    os.kill(os.getpid(), signal.SIGTERM)
    return real(*args, **kw)

target.{name} = signalled
from {cli} import main
main()
"""


def _run(module: str, name: str, cli: str, args: list[str]) -> subprocess.CompletedProcess:
    code = TERM_DURING.format(module=module, name=name, cli=cli)
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=300)


def test_cgan_bench_stops_on_sigterm_as_on_ctrl_c_and_leaves_no_staging(tmp_path):
    work = tmp_path / "work"
    p = _run("torch.onnx", "export", "cgan.benchmarks.cli",
             ["--blocks", "1", "--ngf", "8", "--backends", "ort-cpu", "--sizes", "16x16", "--precision", "fp32",
              "--batch", "1", "--warmup", "0", "--iters", "1", "--no-baseline", "-q", "--workdir", str(work),
              "--json", str(tmp_path / "r.json")])
    assert p.returncode == 143 and p.stderr.strip().endswith("terminated"), (p.returncode, p.stderr[-2000:])
    assert list(work.rglob(".export-staging-*")) == []


def test_cgan_eval_stops_on_sigterm_as_on_ctrl_c(tmp_path):
    p = _run("cgan.benchmarks.eval_cli", "evaluate", "cgan.benchmarks.eval_cli",
             ["--data", str(tmp_path), "--no-clip"])
    assert p.returncode == 143 and p.stderr.strip().endswith("terminated"), (p.returncode, p.stderr[-2000:])
