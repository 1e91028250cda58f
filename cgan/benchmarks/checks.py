"""Up-front checks of what cgan-bench and cgan-eval are asked for, made before any work (no torch here).

A benchmark or a quality report can run for minutes: an output path that cannot be written, a history file that
cannot be read or a number that makes no sense must be refused with one line *before* that, not found when the
results are written (and lost). Every command of cgan-bench (bench, train, profile, engines) and cgan-eval calls
`check_outputs` first; nothing is created or written by the checks (a write probe is removed at once).
"""
from __future__ import annotations

import importlib
import importlib.util
import json
import logging
import math
import os
import re
import tempfile
from pathlib import Path
from typing import Any, Iterable

from cgan._files import nearest_existing
from cgan.errors import CganError, first_line

log = logging.getLogger(__name__)

#: the largest batch any cgan-bench command takes (more frames per call only measures memory pressure)
MAX_BATCH = 256
#: the longest --seconds / --budget: a day (a NaN or an infinity would never end)
MAX_SECONDS = 86_400.0
#: history files larger than this are refused (the plot reads all of it)
MAX_HISTORY_BYTES = 256 << 20
#: torch devices the commands take: cpu, cuda, cuda:N
DEVICE_RE = re.compile(r"cpu|cuda(:\d{1,3})?")


# ---- numbers ------------------------------------------------------------------------------------------
def check_seconds(value: Any, option: str, maximum: float = MAX_SECONDS) -> float | None:
    """None, or a finite number of seconds in (0, maximum]; else a one-line CganError naming `option`."""
    return check_positive_float(value, option, maximum, unit="seconds")


def check_positive_float(value: Any, option: str, maximum: float | None = None,
                         unit: str | None = None) -> float | None:
    """None, or a finite number > 0 (and <= maximum); else a one-line CganError naming `option` (and `unit`)."""
    if value is None:
        return None
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise CganError(f"{option} must be a number{' of ' + unit if unit else ''}, got {value!r}") from None
    if not math.isfinite(v) or v <= 0 or (maximum is not None and v > maximum):
        most = f"at most {maximum:g}" if maximum is not None else ""
        if unit:
            raise CganError(f"{option} must be > 0 and finite ({', '.join(filter(None, (unit, most)))}), "
                            f"got {value!r}")
        raise CganError(f"{option} must be a finite number more than 0{' and ' + most if most else ''}, "
                        f"got {value!r}")
    return v


def check_int(value: Any, option: str, minimum: int, maximum: int | None = None, hint: str = "") -> int:
    """An integer in [minimum, maximum]; else a one-line CganError naming `option`."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise CganError(f"{option} must be an integer, got {value!r}")
    if value < minimum or (maximum is not None and value > maximum):
        span = f"{minimum}..{maximum}" if maximum is not None else f">= {minimum}"
        raise CganError(f"{option} must be {span}, got {value}{hint}")
    return value


def check_batch(value: Any, option: str = "--batch") -> int:
    return check_int(value, option, 1, MAX_BATCH)


def check_device_name(device: Any, option: str = "--device") -> str:
    """cpu, cuda or cuda:N (the syntax only: whether that GPU is here needs torch, see the callers)."""
    text = str(device).strip().lower() if device is not None else ""
    if not DEVICE_RE.fullmatch(text):
        raise CganError(f"unknown {option} {device!r}: use cpu, cuda or cuda:N (e.g. cuda:0)")
    return text


# ---- output paths ---------------------------------------------------------------------------------------
def check_output_file(path: str | os.PathLike, option: str, append: bool = False) -> Path:
    """Refuse an output file path that could not be written at the end of a run: a folder, something that is not
    a regular file, a parent that is a file, a folder that cannot be created or written. Creates nothing (the
    writers create the missing folders). `append`: the file is appended to, so an existing one must be
    writable itself."""
    text = os.fspath(path)
    if not str(text).strip():
        raise CganError(f"{option} needs a file name")
    p = Path(text)
    if text.endswith(("/", os.sep)):  # Path() drops the slash: "nd/" became a file named nd
        raise CganError(f"{option} {text} names a folder: give a file name (e.g. {p / _example(option)})")
    try:
        if p.is_dir():
            raise CganError(f"{option} {p} is a folder: give a file name (e.g. {p / _example(option)})")
        if os.path.lexists(p) and not p.is_file():
            raise CganError(f"{option} {p} exists and is not a regular file: choose another path")
        anc = nearest_existing(p.parent)
        if not anc.is_dir():
            raise CganError(f"{option} {p}: {anc} is a file, not a folder; choose another path")
        with tempfile.NamedTemporaryFile(dir=anc, prefix=".cgan-write-test-"):
            pass
        if append and p.is_file():
            with open(p, "ab"):
                pass
    except CganError:
        raise
    except (OSError, ValueError) as e:
        why = getattr(e, "strerror", None) or str(e)
        raise CganError(f"{option} {p} cannot be written ({why}); choose a writable path") from None
    return p


def _example(option: str) -> str:
    return {"--plot": "plot.png", "--grid": "grid.png", "--history": "history.jsonl"}.get(option, "result.json")


def check_history_file(path: str | os.PathLike, option: str = "--history") -> Path:
    """An existing history file must hold cgan-bench history lines (one JSON object with "format":
    "cgan.bench" per line): a file of something else would be appended to, and the plot could not read it."""
    from cgan.benchmarks.report import HISTORY_SCHEMA, RESULT_FORMAT, schema_errors

    p = check_output_file(path, option, append=True)
    if not p.is_file():
        return p
    try:
        size = p.stat().st_size
        if size > MAX_HISTORY_BYTES:
            raise CganError(f"{option} {p} is {size} bytes, too large for a history file; start a new one")
        data = p.read_bytes()
    except OSError as e:
        raise CganError(f"{option} {p} cannot be read ({e.strerror or e}); choose another file") from None
    # The first line decides whether this is a history file at all; a damaged later line (an append cut short
    # by a full disk, a torn copy) is skipped by read_history, so it is only reported here, not refused.
    fix = "fix or delete that line, or choose another file"
    first = True
    for i, raw in enumerate(data.split(b"\n"), 1):
        if not raw.strip():
            continue
        problem = None
        try:
            obj = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError:
            problem = "is not UTF-8 text"
        except json.JSONDecodeError as e:
            problem = f"is not JSON ({e.msg})"
        except RecursionError:
            problem = "is nested too deeply to be a history line"
        else:
            if not isinstance(obj, dict) or obj.get("format") != RESULT_FORMAT:
                problem = f"is not a cgan-bench history line (no \"format\": \"{RESULT_FORMAT}\")"
            elif errors := schema_errors(obj, HISTORY_SCHEMA):  # a history line, damaged (edited): skipped
                log.warning("%s %s: line %d is not a valid history line (%s); it is skipped", option, p, i,
                            errors[0].replace("result", "line", 1))
        if problem and first:
            raise CganError(f"{option} {p}: line {i} {problem}, so this is not a cgan-bench history file; {fix}")
        if problem:
            log.warning("%s %s: line %d %s; it is skipped", option, p, i, problem)
        first = False
    return p


PNG_OUTPUTS = ("--plot", "--grid")  # options whose file is always written as PNG


def check_outputs(outputs: Iterable[tuple[str, str | os.PathLike | None]], history: str | os.PathLike | None = None,
                  plot: str | os.PathLike | None = None,
                  inputs: Iterable[tuple[str, str | os.PathLike | None]] = ()) -> None:
    """Check every output path of a command before it does any work: `outputs` are (option, path) pairs of files
    written whole (None: not asked for); `history` is appended to (and read for the plot); `plot` a PNG that
    needs matplotlib. Two options naming the same file are refused too, and so is an output that is one of the
    `inputs` (what, path): a file the command reads, or a file inside a folder it reads (a pair or export folder,
    a test set's photos): `--json PAIR/pair.json` destroyed the pair, `--grid testA/0.png` a test photo."""
    named: list[tuple[str, Path]] = []
    for option, path in [*outputs, ("--plot", plot)]:
        if path is not None:
            named.append((option, check_output_file(path, option)))
            # the file is PNG data whatever its name says (cgan-eval's --grid.jpg was a PNG named .jpg)
            if option in PNG_OUTPUTS and Path(path).suffix.lower() != ".png":
                raise CganError(f"{option} writes a PNG: give a file name ending in .png, got {os.fspath(path)}")
    if plot is not None:
        if importlib.util.find_spec("matplotlib") is None:
            raise CganError("--plot needs matplotlib: pip install matplotlib (or cgan[cpu]), or drop --plot")
        try:  # (installed but broken: the run measured everything, then failed at the plot)
            importlib.import_module("matplotlib")
        except Exception as e:  # noqa: BLE001 - any import failure means the same
            raise CganError(f"--plot needs matplotlib, which fails to import here ({first_line(e)}): reinstall it "
                            f"(pip install --force-reinstall matplotlib), or drop --plot") from None
    if history is not None:
        named.append(("--history", check_history_file(history)))
    seen: dict[str, str] = {}
    for option, p in named:
        key = os.path.normcase(os.path.realpath(p))  # (links followed: a link to --json's folder is that folder)
        if key in seen:
            raise CganError(f"{seen[key]} and {option} name the same file {p}: give each its own")
        seen[key] = option
    for what, given in inputs:
        if given is None:
            continue
        source = Path(given).resolve()
        for option, p in named:
            target = Path(p).resolve()  # (links followed: a link to the input is the input)
            inside = source.is_dir() and (target == source or source in target.parents)
            if inside or (source.is_file() and target.exists() and os.path.samefile(source, target)):
                where = f"inside {what} {given}" if inside else f"{what} {given}"
                raise CganError(f"{option} {p} is {where}, which this command reads: write it elsewhere")
