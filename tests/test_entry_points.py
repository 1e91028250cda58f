"""Console scripts: each runs its command's main() through cgan._entry, which turns a Ctrl-C during the
command's (slow) imports into the one line every command prints for Ctrl-C, not a traceback."""
from __future__ import annotations

import importlib
import os
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_every_console_script_launches_the_module_the_overview_lists():
    from cgan import _entry
    from cgan.__main__ import COMMANDS

    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    listed = {name: module for name, module, _ in COMMANDS} | {"cgan": "cgan.__main__"}
    assert set(scripts) == set(listed)
    for name, target in scripts.items():
        module, func = target.split(":")
        assert module == "cgan._entry", name
        launched = []
        orig = _entry.launch
        try:
            _entry.launch = launched.append
            getattr(_entry, func)()
        finally:
            _entry.launch = orig
        assert launched == [listed[name]], name
        assert callable(importlib.import_module(listed[name]).main)


def test_ctrl_c_while_importing_is_one_line_and_130(monkeypatch, capsys):
    from cgan import _entry

    def interrupted(name):
        raise KeyboardInterrupt

    monkeypatch.setattr(_entry.importlib, "import_module", interrupted)
    with pytest.raises(SystemExit) as e:
        _entry.video()
    assert e.value.code == 130
    assert capsys.readouterr().err == "interrupted\n"


@pytest.mark.skipif(os.name != "posix", reason="sends SIGINT")
def test_a_real_sigint_during_a_slow_import(tmp_path):
    """A module whose import takes seconds (like OpenCV's on a cold disk), interrupted by a real SIGINT."""
    marker = tmp_path / "importing"
    (tmp_path / "slow_cli.py").write_text(
        "import pathlib, time\n"
        f"pathlib.Path({str(marker)!r}).touch()\n"
        "time.sleep(30)\n"
        "def main():\n    raise SystemExit(0)\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)])}
    p = subprocess.Popen([sys.executable, "-c", "from cgan._entry import launch; launch('slow_cli')"],
                         env=env, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while not marker.exists() and time.monotonic() < deadline and p.poll() is None:
        time.sleep(0.05)
    assert marker.exists()
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=30)
    assert p.returncode == 130
    assert err == "interrupted\n"


def test_every_command_module_runs_with_python_dash_m():
    """scripts/gpu_session.sh and docs/GPU_RUNBOOK.md call `python3 -m cgan.export.cli ...`: without a
    __main__ guard that imported the module, did nothing and exited 0."""
    from cgan.__main__ import COMMANDS

    for _, module, _ in COMMANDS:
        p = subprocess.run([sys.executable, "-m", module, "--help"], capture_output=True, text=True, timeout=120,
                           cwd=ROOT)
        assert p.returncode == 0 and "Usage:" in p.stdout, (module, p.stdout[-300:], p.stderr[-300:])


def test_every_command_gives_its_version(capsys):
    from cgan import __version__
    from cgan._cli import run
    from cgan.__main__ import COMMANDS

    for name, module, _ in [("cgan", "cgan.__main__", ""), *COMMANDS]:
        command = importlib.import_module(module).cli
        for flag in ("--version", "-V"):
            assert run(command, [flag]) == 0, (name, flag)
            assert capsys.readouterr().out.strip().endswith(f" {__version__}"), (name, flag)


@pytest.mark.parametrize("argv, words", [
    (["video", "--input", "demo"], "`cgan video` is not a command: run `cgan-video --input demo`"),
    (["--bogus"], "unknown option '--bogus'"),
    (["frobnicate"], "unknown command 'frobnicate'"),
])
def test_cgan_refuses_what_it_does_not_take(capsys, argv, words):
    """`cgan` listed the commands and exited 0 whatever it was given (`cgan video ...` ran nothing)."""
    from cgan._cli import run
    from cgan.__main__ import cli

    assert run(cli, argv) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and err.startswith("error: ") and words in err, err


@pytest.mark.parametrize("argv", [["-m", "cgan"], ["-m", "cgan", "--help"], ["-m", "cgan.runtime.cli", "--help"]])
def test_a_closed_pipe_ends_quietly(argv):
    """`cgan --help | head` printed a BrokenPipeError traceback when the reader had gone."""
    r, w = os.pipe()
    os.close(r)  # the reader is gone before anything is written: every write fails with EPIPE
    try:
        p = subprocess.run([sys.executable, *argv], stdout=w, stderr=subprocess.PIPE, text=True, timeout=120,
                           cwd=ROOT)
    finally:
        os.close(w)
    assert p.returncode == 1 and p.stderr == "", p.stderr[-2000:]


STUCK_THREAD = r"""
import atexit, sys, threading, time
import click
from cgan._cli import entry

@click.command()
@click.option("--stuck/--no-stuck")
def cmd(stuck):
    # as a capture thread left inside FFmpeg's read() of a stalled stream when the run ended
    threading.Thread(target=time.sleep, args=(60,), name="cgan-capture-0" if stuck else "app", daemon=True).start()
    atexit.register(lambda: print("python shut down"))
    print("summary", end="")  # unflushed: must still come out
    raise click.exceptions.Exit(143)  # as cgan-video after a signal

entry(cmd)()
"""


@pytest.mark.parametrize("stuck", [True, False])
def test_a_run_that_leaves_a_thread_inside_a_native_call_exits_without_the_interpreter_shutdown(stuck):
    """A second Ctrl-C while a stream read hung: the output was finalized, then Python's shutdown with the capture
    thread still in FFmpeg crashed now and then (segmentation fault, exit 139 instead of 130). Such a run leaves
    through os._exit, streams flushed (no atexit handlers: here one would print)."""
    p = subprocess.run([sys.executable, "-c", STUCK_THREAD, "--stuck" if stuck else "--no-stuck"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 143 and p.stdout.startswith("summary")
    assert ("python shut down" in p.stdout) is not stuck


@pytest.mark.parametrize("cv2_init,said", [
    ("raise ImportError('numpy.core.multiarray failed to import')", "numpy.core.multiarray failed to import"),
    ("", "module 'cv2' has no attribute"),  # the cv2 folder emptied by uninstalling one of the two OpenCV wheels
])
def test_a_broken_opencv_is_one_line_naming_the_reinstall(tmp_path, cv2_init, said):
    """An OpenCV wheel older than numpy 2 (4.8-4.10.0.82, which cgan's old lower bound allowed and pip paired
    with numpy 2), or a cv2 left empty by swapping opencv-python-headless for opencv-python as the README said:
    every cgan-video call, --help included, was a traceback."""
    (tmp_path / "cv2").mkdir()
    (tmp_path / "cv2" / "__init__.py").write_text(cv2_init + "\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)])}
    env.pop("CGAN_DEBUG", None)
    p = subprocess.run([sys.executable, "-c", "from cgan._entry import video; video()", "--help"], env=env,
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 2 and p.stdout == "", p.stdout[-500:]
    assert p.stderr.startswith("error: OpenCV (cv2) is installed but does not work") and said in p.stderr
    assert "pip uninstall -y opencv-python-headless opencv-python" in p.stderr and p.stderr.count("\n") == 1
