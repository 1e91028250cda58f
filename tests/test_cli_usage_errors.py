"""click's usage errors (a bad option value, a missing argument, an unknown option) printed a usage block of
three or more lines; every other mistake is one `error:` line. They are one line now, naming `--help`."""
from __future__ import annotations

import pytest

from cgan._cli import run


def _cli(name):
    if name == "cgan-export":
        from cgan.export.cli import cli
    elif name == "cgan-train":
        from cgan.trainer.cli import cli
    elif name == "cgan-video":
        from cgan.runtime.cli import cli
    elif name == "cgan-bench":
        from cgan.benchmarks.cli import cli
    else:
        from cgan.benchmarks.eval_cli import cli
    return cli


@pytest.mark.parametrize("name,argv,needle", [
    ("cgan-export", ["somepair", "--out", "{file}"], "is a file"),
    ("cgan-export", ["somepair", "--triton", "{file}"], "--triton"),
    ("cgan-train", ["import-official", "--out", "x"], "Missing argument"),
    ("cgan-eval", ["--psnr-photos", "-1"], "--psnr-photos"),
    ("cgan-video", ["--bogus"], "No such option '--bogus'"),
    ("cgan-video", ["--max-frames", "0"], "--max-frames"),
    ("cgan-bench", ["--iters", "abc"], "--iters"),
])
def test_usage_errors_are_one_line(tmp_path, capsys, name, argv, needle):
    f = tmp_path / "a-file"
    f.write_text("")
    argv = [a.replace("{file}", str(f)) for a in argv]
    code = run(_cli(name), argv)
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], err
    assert "--help`" in lines[0] and "Usage:" not in err
