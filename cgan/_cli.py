"""Shared plumbing for the thin click CLIs: user mistakes become one line on stderr and a non-zero exit."""
from __future__ import annotations

import contextlib
import errno
import logging
import os
import re
import signal
import sys
import threading
from typing import Any, Callable, Iterable, Iterator

import click

from cgan._env import env_flag
from cgan.errors import CganError, Terminated


def run(command: click.Command, argv: list[str] | None = None) -> int:
    """Run a click command; CganError -> 'error: ...' (one line, no traceback), exit code != 0."""
    try:
        rv = command.main(args=argv, standalone_mode=False)
        # without standalone mode click returns (not raises) the code of a ctx.exit()/Exit(n)
        return rv if isinstance(rv, int) and not isinstance(rv, bool) else 0
    except CganError as e:
        click.echo(f"{getattr(e, 'label', 'error')}: {one_line(e)}", err=True)
        return e.exit_code
    except (click.exceptions.Abort, KeyboardInterrupt) as e:  # (click makes a KeyboardInterrupt its Abort)
        terminated = isinstance(e, Terminated) or isinstance(e.__cause__, Terminated)  # a second SIGTERM
        click.echo("terminated" if terminated else "interrupted", err=True)
        return 143 if terminated else 130
    except click.ClickException as e:
        help_only = getattr(click.exceptions, "NoArgsIsHelpError", None)
        if help_only is not None and isinstance(e, help_only):
            e.show()  # no arguments at all: the help text
            return e.exit_code
        # a bad option value, a missing argument, an unknown option: one line like every other mistake (click's
        # own form is a usage block of three or more lines)
        ctx = getattr(e, "ctx", None)
        hint = f"; see `{ctx.command_path} --help`" if isinstance(e, click.UsageError) and ctx is not None else ""
        extra = getattr(getattr(ctx, "command", None), "extra_args_hint", None)
        if extra and "unexpected extra argument" in e.format_message():  # e.g. a glob the shell expanded
            hint = f"; {extra}"
        click.echo(f"error: {' '.join(e.format_message().split()).rstrip('.')}{hint}", err=True)
        return e.exit_code
    except click.exceptions.Exit as e:
        return e.exit_code
    except ModuleNotFoundError as e:
        # an optional dependency of this command is not installed (the README's main job installs only the
        # runtime): say which extra brings it; a module cgan does not know stays a traceback (a real bug)
        prog = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
        text = missing_extra(e, prog if prog.startswith("cgan") else "this command")
        if text is None or debugging():
            raise
        click.echo(f"error: {text}", err=True)
        return 2
    except (OSError, MemoryError) as e:
        if isinstance(e, OSError) and e.errno == errno.EPIPE:  # the reader went away: `cgan --help | head`
            _stdout_to_devnull()  # (else the flush at exit raises again, as "Exception ignored")
            return 1
        # what the machine refused (a path too long, a folder where a file goes, no permission, no space, no
        # memory) when no check caught it first: one line too; CGAN_DEBUG=1 shows the traceback. Other OSErrors
        # (a shared library that does not load, a socket) keep their traceback: they are not the user's paths.
        text = system_error(e)
        if text is None or debugging():
            raise
        click.echo(f"error: {text}", err=True)
        return 2


def extras() -> dict[str, str]:
    """Optional modules -> what installs them (cgan's extras from the folder it was installed from)."""
    from cgan._optional import pip_extra

    return {
        **{m: f"{pip_extra('cpu')} (or the gpu extra on an NVIDIA GPU)"
           for m in ("torch", "onnx", "onnxslim", "onnxconverter_common", "tensorboard", "matplotlib", "torchvision")},
        "onnxruntime": f"{pip_extra('runtime')} (or the cpu or gpu extra)",
        "tensorrt": pip_extra("tensorrt"),
        "tensorrt_rtx": pip_extra("tensorrt-rtx"),
        "cuda": "pip install 'cuda-python>=12.6'",
        "psutil": "pip install psutil",
    }


def missing_extra(e: ModuleNotFoundError, command: str) -> str | None:
    """'<command> needs <module>, which is not installed: <how>' for an optional module cgan knows; else None."""
    top = (e.name or "").split(".")[0]
    how = extras().get(top)
    if how is None:
        return None
    return f"{command} needs {top}, which is not installed here: {how}"


#: errnos that mean "this path / this disk": the user can act on them
FILE_ERRNOS = {getattr(errno, n) for n in ("ENOENT", "EACCES", "EPERM", "ENOSPC", "EDQUOT", "ENAMETOOLONG",
                                           "EISDIR", "ENOTDIR", "EEXIST", "EROFS", "ENOTEMPTY", "EXDEV", "ELOOP",
                                           "EMFILE", "EFBIG") if hasattr(errno, n)}


def debugging() -> bool:
    return env_flag("CGAN_DEBUG")


def system_error(e: BaseException) -> str | None:
    """An OSError about a path or a disk, or a MemoryError, in words on one line with the path(s) it concerns
    (long ones shortened); None for other OSErrors."""
    def short(path: object) -> str:
        text = os.fsdecode(path) if isinstance(path, (str, bytes, os.PathLike)) else str(path)
        return text if len(text) <= 120 else f"{text[:60]}…{text[-40:]} ({len(text)} characters)"

    advice = "check the path, its permissions and free space; CGAN_DEBUG=1 shows where"
    if isinstance(e, MemoryError):
        return "out of memory: use smaller sizes or batches, or free memory (CGAN_DEBUG=1 shows where)"
    if "Original Traceback" in str(e):  # re-raised from a DataLoader worker with the worker's traceback inside
        return f"{one_line(e)} ({advice})"
    if e.errno not in FILE_ERRNOS:
        return None
    what = e.strerror or " ".join(str(e).split()) or type(e).__name__
    paths = [short(_as_given(p)) for p in (e.filename, e.filename2) if p is not None]
    where = f": {' -> '.join(paths)}" if paths else ""
    if e.errno == errno.EFBIG:  # (often without a file name: a size limit hit inside a library's write)
        advice = "a file size limit (ulimit -f) or the file system's largest file; CGAN_DEBUG=1 shows where"
    return f"{what}{where} ({advice})"


#: the hidden names cgan writes through before the final one: an export's staging folder, atomic writes'
#: .NAME.RANDOM.tmp, video outputs' .STEM.partial-PID-RANDOM.EXT
_HIDDEN_PARTS = (re.compile(r"[/\\]\.export-staging-[^/\\]+"), re.compile(r"(?<=[/\\])\.([^/\\]+?)\.[^./\\]+\.tmp$"),
                 re.compile(r"(?<=[/\\])\.([^/\\]+?)\.partial-\d+-[^./\\]+(\.[^./\\]+)$"))


def _as_given(path: object) -> object:
    """A path as the user knows it: without cgan's hidden staging folder or temp-file name (the message named
    'out/.export-staging-x1y2/pair/G.safetensors' or '.G.fp32.onnx.gl_1h7db.tmp')."""
    if not isinstance(path, (str, bytes, os.PathLike)):
        return path
    text = os.fsdecode(path)
    text = _HIDDEN_PARTS[0].sub("", text)
    text = _HIDDEN_PARTS[1].sub(r"\1", text)
    return _HIDDEN_PARTS[2].sub(r"\1\2", text)


def one_line(e: BaseException) -> str:
    """The error's message on one line. A CganError raised in a DataLoader worker reaches the main process
    re-raised by torch with the worker's whole traceback in its message: keep the original message only."""
    text = str(e)
    if "Original Traceback" in text:
        last = [ln for ln in text.splitlines() if ln.strip()][-1].strip()
        text = last.split(": ", 1)[1] if last.split(": ", 1)[0].endswith("Error") and ": " in last else last
    return " ".join(text.split("\n")).strip()


def _stdout_to_devnull() -> None:
    try:
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, sys.stdout.fileno())
        os.close(null)
    except (OSError, ValueError, AttributeError):  # no real stdout (an embedded interpreter): nothing to quiet
        pass


class GivenPath(click.Path):
    """click.Path that refuses an empty value (`--json "$UNSET"`): Path("") is the current folder, so the
    command went on with '.', or said that '--json . is a folder'."""

    def convert(self, value: Any, param: Any, ctx: Any) -> Any:
        if isinstance(value, str) and not value.strip():
            self.fail("is empty: give a path", param, ctx)
        return super().convert(value, param, ctx)


def entry(command: click.Command, sigterm: bool = False) -> Callable[[], None]:
    """A console-script entry point for `command`, which gets a `-V/--version` option; with `sigterm`, a SIGTERM
    stops the whole command as a Ctrl-C does (sigterm_as_interrupt: 'terminated', exit 143, clean-up done)."""
    from cgan import __version__

    if not any("--version" in p.opts for p in command.params):
        click.version_option(__version__, "-V", "--version", message="%(prog)s %(version)s",
                             help="Show the version and exit.")(command)

    def main() -> None:
        _tolerant_stdout()
        with sigterm_as_interrupt() if sigterm else contextlib.nullcontext():
            code = run(command)
        quiet_shutdown(code)
        _exit_past_stuck_threads(code)
        sys.exit(code)
    return main


def quiet_shutdown(code: int) -> None:
    """The command has ended (summary printed, outputs final): once Python shuts down, a Ctrl-C ends the process
    at once with the command's own exit code, streams flushed. During the shutdown (torch's exit hooks take a
    moment) it printed a traceback from an atexit callback and still exited 0. Set by an exit hook of its own,
    registered last so it runs first: a program that calls a command's main() and goes on keeps its Ctrl-C."""
    import atexit

    def at_once(signum: int, frame: object) -> None:
        _flush_std_streams()
        os._exit(code)

    def arm() -> None:
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, at_once)

    atexit.register(arm)


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """While the block runs (main thread, SIGTERM at its default), the first SIGTERM raises
    cgan.errors.Terminated, which cleans up as a Ctrl-C does and exits 143 (killed so, `cgan-export` left its
    staging folder with full-size graphs and a new --out folder holding nothing else); a second one kills."""
    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGTERM) != signal.SIG_DFL:
        yield
        return

    def stop(signum: int, frame: object) -> None:
        # the handler runs between bytecodes, so a long native call (an engine build) delays it: a second
        # SIGTERM then kills at once, as before
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        raise Terminated

    signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _exit_past_stuck_threads(code: int) -> None:
    """Exit now, streams flushed, when a run ended with one of its threads still inside a blocking native call (a
    capture thread in FFmpeg's read of a stalled stream, left to finish alone once the output was finalized):
    Python's shutdown with that thread running crashed now and then (a segmentation fault, exit 139)."""
    if not any(t.daemon and t.is_alive() and t.name.startswith("cgan-") for t in threading.enumerate()):
        return
    _flush_std_streams()
    logging.shutdown()
    os._exit(code)


def _flush_std_streams() -> None:
    """Flush stdout and stderr before an os._exit (which skips it); a closed or odd stream is left as it is."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError, AttributeError):
            pass


def _tolerant_stdout() -> None:
    """Print what the terminal's encoding cannot hold as backslash escapes: a file name of bytes that are not UTF-8
    (Linux allows them) made the summary end in a UnicodeEncodeError after every photo was written (stderr does
    this already)."""
    reconfigure = getattr(sys.stdout, "reconfigure", None)
    if reconfigure is not None:
        try:
            reconfigure(errors="backslashreplace")
        except (ValueError, OSError):  # a closed or odd stream: left as it is
            pass


def given_flags(ctx: click.Context, names: Iterable[str]) -> list[str]:
    """The options among `names` the user gave (command line or environment; not a default, nor a default map), as
    typed: `--no-fp16`, not `--fp16`; in the command's order."""
    from click.core import ParameterSource

    names = set(names)
    flags = []
    for param in ctx.command.params:
        if param.name in names and ctx.get_parameter_source(param.name) not in (
                ParameterSource.DEFAULT, ParameterSource.DEFAULT_MAP, None):
            off = bool(getattr(param, "secondary_opts", None)) and ctx.params.get(param.name) is False
            flags.append(max(param.secondary_opts if off else param.opts, key=len))
    return flags


def setup_logging(verbose: bool = False) -> None:
    """cgan's own messages on stderr from INFO (DEBUG with -v), other libraries' from WARNING unless -v: torch logs
    at INFO through the root logger (its 'FakeTensor cache stats' lines came after 'interrupted')."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    if not verbose:
        handler.addFilter(_ours_or_warnings)
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, handlers=[handler])


def _ours_or_warnings(record: logging.LogRecord) -> bool:
    return record.levelno >= logging.WARNING or record.name == "cgan" or record.name.startswith("cgan.")
