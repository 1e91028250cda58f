"""cgan-bench took sizes up to 8192x8192 while the runtime refuses frames over 4096x4096: a 4104x4104 row ran
its setup (20 s here) and then failed with the Python API's advice (max_side=). The size is refused up front."""
from __future__ import annotations

import pytest

from cgan._cli import run
from cgan._limits import MAX_SIDE
from cgan.benchmarks.bench import parse_size
from cgan.errors import CganError


def test_the_runtimes_largest_frame_is_the_limit():
    assert parse_size(f"{MAX_SIDE}x{MAX_SIDE}") == (MAX_SIDE, MAX_SIDE)
    assert parse_size("2048x8192") == (2048, 8192)  # the same pixels, another shape
    for bad in (f"{MAX_SIDE + 8}x{MAX_SIDE + 8}", "8192x8192", "4104x4104"):
        with pytest.raises(CganError, match=f"over the {MAX_SIDE}x{MAX_SIDE} pixels"):
            parse_size(bad)


def test_cli_refuses_before_any_work(capsys):
    from cgan.benchmarks.cli import cli

    code = run(cli, ["--backends", "ort-cpu", "--no-baseline", "--sizes", "4104x4104", "--iters", "1"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "4104x4104" in err[0] and "max_side" not in err[0]
