"""What the machine refuses, when no check of ours caught it first (a path too long, a folder where a file goes,
no space, no memory), is still one line and exit 2 from every command; CGAN_DEBUG=1 shows the traceback."""
from __future__ import annotations

import errno
import os

import click
import pytest

from cgan._optional import pip_extra
from cgan._cli import run


def _command(exc: BaseException) -> click.Command:
    @click.command()
    def cmd() -> None:
        raise exc
    return cmd


@pytest.mark.parametrize("exc, words", [
    (OSError(errno.ENAMETOOLONG, "File name too long", "a" * 300), "File name too long: " + "a" * 60 + "…"),
    (IsADirectoryError(errno.EISDIR, "Is a directory", "/tmp/results"), "Is a directory: /tmp/results"),
    (FileExistsError(errno.EEXIST, "File exists", "/tmp/a", None, "/tmp/b"), "File exists: /tmp/a -> /tmp/b"),
    (MemoryError(), "out of memory"),
    (FileNotFoundError("Caught FileNotFoundError in DataLoader worker process 0.\nOriginal Traceback (most "
                       "recent call last):\n  File \"x.py\", line 1, in f\nFileNotFoundError: [Errno 2] No such "
                       "file or directory: 'a.png'\n"), "No such file or directory: 'a.png' (check the path"),
    # cgan's hidden staging folders and temp files are named as the user knows the files (they were named raw)
    (OSError(errno.ENOSPC, "No space left on device", "pair0/G.safetensors",
             None, "small/e/.export-staging-zl8cf0rx/pair/G.safetensors"),
     "No space left on device: pair0/G.safetensors -> small/e/pair/G.safetensors (check"),
    (PermissionError(errno.EACCES, "Permission denied", "/w/pro/.G.fp32.onnx.gl_1h7db.tmp"),
     "Permission denied: /w/pro/G.fp32.onnx (check"),
    (OSError(errno.ENOSPC, "No space left on device", "/v/.winter.partial-4242-k3j2h1.mp4"),
     "No space left on device: /v/winter.mp4 (check"),
    (OSError(errno.EFBIG, "File too large"), "File too large (a file size limit (ulimit -f)"),
])
def test_system_errors_are_one_line(exc, words, capsys, monkeypatch):
    monkeypatch.delenv("CGAN_DEBUG", raising=False)
    assert run(_command(exc), []) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and words in err and err.count("\n") == 1 and "Traceback" not in err
    assert len(err) < 300


def test_cgan_debug_shows_the_traceback(monkeypatch, capsys):
    monkeypatch.setenv("CGAN_DEBUG", "1")
    with pytest.raises(IsADirectoryError):
        run(_command(IsADirectoryError(errno.EISDIR, "Is a directory", "x")), [])
    monkeypatch.setenv("CGAN_DEBUG", "0")  # off, like unset
    assert run(_command(IsADirectoryError(errno.EISDIR, "Is a directory", "x")), []) == 2


def test_other_os_errors_keep_their_traceback_and_a_closed_pipe_is_quiet(monkeypatch, capsys):
    """A shared library that does not load or a bare OSError is not about the user's paths: no advice about
    paths and space, the traceback as before. `cgan-bench | head` closing the pipe ends quietly."""
    monkeypatch.delenv("CGAN_DEBUG", raising=False)
    for exc in (OSError("libnvinfer.so.10: cannot open shared object file: No such file or directory"),
                ConnectionResetError(errno.ECONNRESET, "Connection reset by peer")):
        with pytest.raises(type(exc)):
            run(_command(exc), [])
    with pytest.raises(SystemExit) as ended:  # click's own quiet exit for EPIPE
        run(_command(BrokenPipeError(errno.EPIPE, "Broken pipe")), [])
    assert ended.value.code == 1 and "error" not in capsys.readouterr().err


def test_a_path_longer_than_the_file_system_allows_is_one_line(tmp_path, capsys, monkeypatch):
    """Path.exists() raises ENAMETOOLONG (it used to be a traceback from cgan-video --input, cgan-train --data)."""
    from cgan.runtime.cli import cli as video
    from cgan.trainer.cli import cli as train

    monkeypatch.delenv("CGAN_DEBUG", raising=False)
    monkeypatch.setenv("CGAN_HOME", str(tmp_path / "home"))
    long = str(tmp_path / ("a" * 300))
    for command, args in ((video, ["--pair", "summer2winter", "--input", long + ".mp4", "--output",
                                   str(tmp_path / "o.mp4"), "--no-display"]),
                          (train, ["--data", long, "--out", str(tmp_path / "r"), "--name", "x"])):
        assert run(command, args) == 2
        err = capsys.readouterr().err.strip()
        assert "Traceback" not in err and len(err.splitlines()) == 1 and "too long" in err, err
    assert not os.path.exists(tmp_path / "o.mp4")


def test_an_out_of_range_camera_index_and_bad_max_pixels_are_one_line(tmp_path, capsys, monkeypatch):
    """--input 99999999999999999999 was an OpenCV overload traceback; Translator.load(max_pixels="abc") a
    ValueError, max_pixels=-1 refused every frame later."""
    from cgan.errors import CganError
    from cgan.runtime import Translator
    from cgan.runtime.sources import parse_input

    with pytest.raises(CganError, match=r"camera indices go up to 9999; for a file named 99999999999999999999, "
                                        r"give \./99999999999999999999"):
        parse_input("99999999999999999999")
    assert parse_input("7").target == 7 and parse_input("./7").kind == "file"
    for bad in ("abc", float("nan"), float("inf"), None, -1, 0, True, 2.5):
        with pytest.raises(CganError, match="max_pixels="):
            Translator.load("summer2winter", max_pixels=bad)
    with Translator.load("summer2winter", backend="torch", max_pixels=1e8) as t:  # a whole float is fine
        assert t.max_pixels == 100_000_000


def test_parity_sizes_errors_name_their_option(tmp_path, capsys):
    """--parity-sizes abc named --shapes; 100000x100000 allocated until numpy ran out of memory."""
    from cgan.export.cli import cli

    for sizes, words in (("abc", "in --parity-sizes 'abc'"), ("100000x100000", "at most 4096 a side")):
        assert run(cli, ["summer2winter", "--out", str(tmp_path / "o"), "--parity-sizes", sizes]) == 2
        err = capsys.readouterr().err
        assert words in err and "--shapes" not in err and "Traceback" not in err, err
    assert not (tmp_path / "o").exists()


def test_a_refused_video_run_leaves_no_output_folder(tmp_path, capsys):
    """--output new/sub/o.mp4 with an unknown pair made new/sub before the refusal; the folder is now made by
    the first frame's writer (and still made when the run goes ahead)."""
    from _helpers_video import make_clip
    from cgan.runtime.cli import cli

    out = tmp_path / "new" / "sub" / "o.mp4"
    assert run(cli, ["--pair", "nosuchpair", "--input", "demo", "--output", str(out), "--no-display"]) == 2
    assert "nosuchpair" in capsys.readouterr().err and not (tmp_path / "new").exists()
    clip = make_clip(tmp_path / "in.mp4", 2, (32, 24))
    assert run(cli, ["--pair", "summer2winter", "--backend", "torch", "--input", str(clip), "--output", str(out),
                     "--no-display"]) == 0
    assert out.is_file()
    (tmp_path / "file").write_text("x")
    assert run(cli, ["--pair", "summer2winter", "--input", str(clip), "--output", str(tmp_path / "file" / "o.mp4"),
                     "--no-display"]) == 2
    assert "is not a folder" in capsys.readouterr().err


@pytest.mark.parametrize("module,words", [("torch", f"needs torch, which is not installed here: {pip_extra('cpu')}"),
                                          ("onnx.helper", "needs onnx, which is not installed here"),
                                          ("onnxruntime", pip_extra("runtime"))])
def test_a_missing_optional_dependency_is_one_line(module, words, capsys, monkeypatch):
    """The README's main job installs only the runtime: cgan-train, cgan-export, cgan-bench and cgan-eval then
    died with a ModuleNotFoundError traceback; now one line naming the extra, exit 2."""
    @click.command()
    def needs():
        raise ModuleNotFoundError(f"No module named {module!r}", name=module)

    monkeypatch.setattr("sys.argv", ["/venv/bin/cgan-train"])
    assert run(needs, []) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: cgan-train ") and words in err and "Traceback" not in err, err


def test_an_unknown_missing_module_keeps_its_traceback():
    @click.command()
    def broken():
        import importlib

        importlib.import_module("cgan_no_such_module")  # a bug, not a missing extra

    with pytest.raises(ModuleNotFoundError):
        run(broken, [])


def test_commands_without_torch_say_what_to_install(tmp_path):
    """Each torch command run in a process where `import torch` fails (as in a runtime-only install)."""
    import subprocess
    import sys

    code = ("import sys; sys.modules['torch'] = None; sys.argv = ['cgan-train'] + sys.argv[1:]\n"
            "from cgan.trainer.cli import main; main()\n")
    r = subprocess.run([sys.executable, "-c", code, "--data", str(tmp_path), "--out", str(tmp_path / "r"),
                        "--name", "x"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "cgan-train needs torch" in r.stderr and "Traceback" not in r.stderr, r.stderr
    code = ("import sys; sys.modules['torch'] = None; sys.argv = ['cgan-export']\n"
            "from cgan.export.cli import main; sys.argv += ['summer2winter']; main()\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                       env={**__import__("os").environ, "CGAN_HOME": str(tmp_path / "home")})
    assert r.returncode == 2 and "cgan-export needs torch" in r.stderr and "Traceback" not in r.stderr, r.stderr


def test_terminated_is_said_as_terminated_exit_143(capsys):
    """A second SIGTERM raises cgan.errors.Terminated (a KeyboardInterrupt, which click turns into its Abort):
    'terminated', 143, as one SIGTERM gives; not 'interrupted', 130."""
    from cgan.errors import Terminated

    assert run(_command(Terminated()), []) == 143 and capsys.readouterr().err.strip() == "terminated"
    assert run(_command(KeyboardInterrupt()), []) == 130 and capsys.readouterr().err.strip() == "interrupted"


def test_backend_unavailable_swaps_its_alternative_for_the_callers_words():
    """cgan-bench reuses the exporter's errors: their 'or export without --engine' names an option cgan-bench has
    not, so it swaps the alternative (it used to replace text inside the message)."""
    import pickle

    from cgan.errors import BackendUnavailable

    e = BackendUnavailable("no CUDA GPU is visible", alternative="export without --engine")
    assert str(e) == "no CUDA GPU is visible, or export without --engine"
    swapped = e.instead("leave tensorrt out of --backends")
    assert str(swapped) == "no CUDA GPU is visible, or leave tensorrt out of --backends"
    assert type(swapped) is BackendUnavailable and swapped.exit_code == 4
    assert str(e.instead(None)) == "no CUDA GPU is visible"
    assert str(BackendUnavailable("plain")) == "plain"
    assert str(pickle.loads(pickle.dumps(e))) == str(e)  # (errors cross processes in the decode workers)


def test_other_libraries_info_lines_stay_out_of_the_commands_stderr():
    """The commands set the root logger to INFO: torch's exit hook logged 'FakeTensor cache stats:' and its counts
    after 'interrupted'. cgan's own INFO lines and every library's warnings still show; -v shows all."""
    import subprocess
    import sys

    code = ("import logging, sys\nfrom cgan._cli import setup_logging\nsetup_logging(sys.argv[1] == 'v')\n"
            "logging.getLogger('torch._subclasses.fake_tensor').info('FakeTensor cache stats:')\n"
            "logging.getLogger('cgan.runtime').info('cgan info line')\n"
            "logging.getLogger('onnx').warning('a library warning')\n")
    quiet = subprocess.run([sys.executable, "-c", code, "q"], capture_output=True, text=True).stderr
    assert quiet == "cgan info line\na library warning\n", quiet
    verbose = subprocess.run([sys.executable, "-c", code, "v"], capture_output=True, text=True).stderr
    assert "FakeTensor cache stats:" in verbose and "cgan info line" in verbose, verbose


def test_a_file_where_an_output_folder_goes_is_named_as_such(tmp_path):
    """cgan-train said 'cannot write to run folder o/x: File exists' of a plain file o/x (mkdir's own words)."""
    from cgan._files import ensure_writable_dir
    from cgan.errors import CganError

    (tmp_path / "x").write_text("")
    with pytest.raises(CganError, match="run folder .*/x: it is a file, not a folder; choose another path"):
        ensure_writable_dir(tmp_path / "x", "run folder")
    with pytest.raises(CganError, match=r"/x is a file, not a folder"):
        ensure_writable_dir(tmp_path / "x" / "sub", "run folder")


def test_a_ctrl_c_while_python_shuts_down_after_the_command_is_quiet():
    """A Ctrl-C in the moment after a command ended (torch's exit hooks running) printed 'Exception ignored in
    atexit callback' and a traceback, exit 0; it now ends the process with the command's own code."""
    import subprocess
    import sys
    import textwrap

    script = textwrap.dedent("""
        import atexit, os, signal, sys, time
        from cgan._cli import quiet_shutdown

        def slow_hook():  # (like torch's: Python code run at exit)
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(2)
            print("hook finished")

        atexit.register(slow_hook)
        print("summary", end="")  # (buffered: still written)
        quiet_shutdown(3)
        sys.exit(3)
    """)
    p = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert p.returncode == 3 and p.stdout == "summary" and p.stderr == "", (p.returncode, p.stdout, p.stderr)
    # a program that calls a command's main() in-process and goes on keeps its own Ctrl-C
    script = textwrap.dedent("""
        import os, signal
        from cgan._cli import quiet_shutdown

        quiet_shutdown(0)
        try:
            os.kill(os.getpid(), signal.SIGINT)
            import time; time.sleep(2)
        except KeyboardInterrupt:
            print("the app's own Ctrl-C", end="")
    """)
    p = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and p.stdout == "the app's own Ctrl-C", (p.returncode, p.stdout, p.stderr)
