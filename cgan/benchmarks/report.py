"""The benchmark result format: JSON schema, validation, the terminal table and the history file (no torch).

A result is `{"format": "cgan.bench", "version": 1, "kind": "inference"|"train", "complete": true|false, "env":
{...}, "config": {...}, "rows": [...]}` (`complete` false: written during the run, with the rows so far). Every
row has every key of `ROW_KEYS` (null where a number does not apply or was not measured) and a `status`: "ok",
"skipped" (the backend or precision cannot run here; `reason` says why) or "error".
`backend` is the row set's label: a backend, a variant with options (`torch-cuda+compile+graph`, whose
effective options are in `options`), `baseline`, `video:<label>` or `train:<name>`.
"""
from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path
from typing import Any, Iterable

from cgan._files import write_json_atomic
from cgan.errors import CganError, IntegrityError

RESULT_FORMAT = "cgan.bench"
RESULT_VERSION = 1

_NUM = {"type": ["number", "null"]}
_INT = {"type": ["integer", "null"]}
_STR = {"type": ["string", "null"]}

#: One row of results. Numbers are per *call* (one call translates `batch` frames) unless the name says frame.
ROW_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["backend", "precision", "batch", "height", "width", "status", "reason",
                 "p50_ms", "p90_ms", "p99_ms", "max_ms", "mean_ms", "iters", "fps", "tflops", "pct_of_peak",
                 "speedup_vs_baseline", "max_abs_err", "psnr_db", "peak_mem_mb", "peak_mem_source", "build_s",
                 "first_call_s"],
    "properties": {
        # a backend, a variant (torch-cuda+compile+graph), baseline, video:<label> or train:<name>
        "backend": {"type": "string", "pattern": r"^[A-Za-z0-9][A-Za-z0-9:._+-]*$"},
        "precision": {"type": "string", "enum": ["fp32", "fp16", "mixed"]},
        "batch": {"type": "integer", "minimum": 1},
        "height": {"type": "integer", "minimum": 1},
        "width": {"type": "integer", "minimum": 1},
        "status": {"type": "string", "enum": ["ok", "skipped", "error"]},
        "reason": _STR,
        "p50_ms": _NUM, "p90_ms": _NUM, "p99_ms": _NUM, "max_ms": _NUM, "mean_ms": _NUM,
        "iters": _INT,
        "fps": _NUM,
        "tflops": _NUM,
        "pct_of_peak": _NUM,
        "speedup_vs_baseline": _NUM,
        "max_abs_err": _NUM,
        "psnr_db": _NUM,
        "peak_mem_mb": _NUM,
        "peak_mem_source": _STR,
        "build_s": _NUM,
        "first_call_s": _NUM,
        "warmup_s": _NUM,
        "options": {
            "type": ["object", "null"],
            "properties": {"compile": {"type": "boolean"}, "compile_mode": _STR, "cuda_graph": {"type": "boolean"},
                           "memory_format": {"type": "string", "enum": ["channels_last", "nchw"]},
                           "threads": _INT},
        },
        "stages": {"type": ["object", "null"]},
    },
}
#: keys every row this version writes has (ROW_SCHEMA's required ones, plus ones older results lack)
ROW_KEYS = (*ROW_SCHEMA["required"], "warmup_s", "options")

RESULT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["format", "version", "kind", "env", "config", "rows"],
    "properties": {
        "format": {"type": "string", "enum": [RESULT_FORMAT]},
        "version": {"type": "integer", "enum": [RESULT_VERSION]},
        "kind": {"type": "string", "enum": ["inference", "train"]},
        "complete": {"type": "boolean"},  # false: written during the run (the rows so far)
        "env": {
            "type": "object",
            "required": ["date", "cgan", "git_sha", "host_cpu", "gpu", "driver", "cuda", "torch", "onnxruntime",
                         "tensorrt"],
            "properties": {"date": {"type": "string"}, "cgan": {"type": "string"}, "gpu": _STR,
                           "git_sha": _STR, "host_cpu": _STR, "driver": _STR, "cuda": _STR, "torch": _STR,
                           "onnxruntime": _STR, "tensorrt": _STR},
        },
        "config": {"type": "object"},
        "rows": {"type": "array", "items": ROW_SCHEMA},
    },
}

#: One line of a --history file (history_line). Lines that break it are skipped (with a warning up front:
#: cgan.benchmarks.checks.check_history_file): a hand-edited `"rows": null` stopped --plot with a traceback.
HISTORY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["format"],  # (a line without rows adds nothing to the plot, and breaks nothing)
    "properties": {
        "format": {"type": "string", "enum": [RESULT_FORMAT]},
        "kind": {"type": "string"},
        "date": _STR, "git_sha": _STR, "gpu": _STR, "host_cpu": _STR, "cgan": _STR,
        "env": {"type": "object", "properties": {"gpu": _STR, "host_cpu": _STR}},
        "setup": {"type": "object"},
        "rows": {"type": "array", "items": {
            "type": "object",
            "required": ["backend", "precision"],
            "properties": {"backend": {"type": "string"}, "precision": {"type": "string"}, "status": _STR,
                           "batch": _INT, "height": _INT, "width": _INT, "fps": _NUM, "p50_ms": _NUM}}},
    },
}

_TYPES = {"object": dict, "array": list, "string": str, "number": (int, float), "integer": int,
          "boolean": bool, "null": type(None)}


def _check(value: Any, schema: dict[str, Any], where: str, errors: list[str]) -> None:
    """A small JSON-schema subset (type, required, properties, items, enum, minimum, pattern): enough for
    ROW_SCHEMA."""
    types = schema.get("type")
    if types is not None:
        types = [types] if isinstance(types, str) else types
        ok = False
        for t in types:
            if isinstance(value, bool) and t in ("number", "integer"):
                continue
            if isinstance(value, _TYPES[t]):
                ok = True
        if not ok:
            errors.append(f"{where}: expected {'/'.join(types)}, got {type(value).__name__} {value!r:.60}")
            return
    if isinstance(value, float) and not math.isfinite(value):
        errors.append(f"{where}: {value} is not a finite number (JSON has no inf/nan)")
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{where}: {value!r} is not one of {schema['enum']}")
    if "minimum" in schema and isinstance(value, (int, float)) and value < schema["minimum"]:
        errors.append(f"{where}: {value} < minimum {schema['minimum']}")
    if "pattern" in schema and isinstance(value, str) and not re.search(schema["pattern"], value):
        errors.append(f"{where}: {value!r:.60} does not match {schema['pattern']}")
    if isinstance(value, dict):
        for key in schema.get("required", ()):
            if key not in value:
                errors.append(f"{where}: missing key {key!r}")
        for key, sub in schema.get("properties", {}).items():
            if key in value:
                _check(value[key], sub, f"{where}.{key}", errors)
    if isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            _check(item, schema["items"], f"{where}[{i}]", errors)


def schema_errors(result: Any, schema: dict[str, Any] = RESULT_SCHEMA) -> list[str]:
    """All the ways `result` breaks the schema (empty list: valid)."""
    errors: list[str] = []
    _check(result, schema, "result", errors)
    return errors


def validate(result: Any) -> None:
    errors = schema_errors(result)
    if errors:
        more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
        raise IntegrityError(f"benchmark result does not match the cgan.bench schema: {errors[0]}{more}")


def empty_row(backend: str, precision: str, batch: int, height: int, width: int) -> dict[str, Any]:
    row: dict[str, Any] = {k: None for k in ROW_KEYS}
    row.update(backend=backend, precision=precision, batch=batch, height=height, width=width, status="ok")
    return row


def _clean(obj: Any) -> Any:
    """JSON has no inf/nan: write them as null."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    return obj


def write_result(path: str | os.PathLike, result: dict[str, Any]) -> Path:
    result = _clean(result)
    validate(result)
    write_json_atomic(path, result)
    return Path(path)


def setup_of(result: dict[str, Any]) -> dict[str, Any]:
    """What a run measured, beyond the machine: the generator's architecture (its speed does not depend on the
    weights, so a pair and the random generator of the same shape compare), the CPU threads asked for, the
    device and the run's --note. A result or a history line; {} for a history line written before 2026-12-04."""
    if "setup" in result:
        return result["setup"] if isinstance(result["setup"], dict) else {}
    config = result.get("config")
    if not isinstance(config, dict):
        return {}
    if result.get("kind") == "train":
        o = config.get("options") or {}
        model, threads, device, note = (f"resnet b{o.get('blocks')} ngf{o.get('ngf')}", o.get("threads"),
                                        o.get("device"), None)
    else:
        spec = config.get("spec") or {}
        model = (f"{spec.get('arch')} b{spec.get('blocks')} ngf{spec.get('ngf')}" if spec
                 else f"resnet b{config.get('blocks')} ngf{config.get('ngf')}")
        threads, device, note = config.get("threads"), config.get("device"), config.get("note")
    return {"model": model, "threads": threads, "device": device, "note": note}


def setup_key(run: dict[str, Any]) -> tuple[Any, Any] | None:
    """The part of setup_of that must match for two runs' speeds to be compared (None: not recorded)."""
    setup = setup_of(run)
    return (setup.get("model"), setup.get("threads")) if setup.get("model") else None


def history_line(result: dict[str, Any]) -> dict[str, Any]:
    """The compact record one run appends to the history file, with its setup (setup_of): which model, threads
    and note, so the plot joins only runs that measured the same thing."""
    env = result["env"]
    keep = ("backend", "precision", "batch", "height", "width", "status", "p50_ms", "fps", "tflops",
            "pct_of_peak", "speedup_vs_baseline", "psnr_db")
    return {"format": RESULT_FORMAT, "version": RESULT_VERSION, "kind": result["kind"],
            "date": env.get("date"), "git_sha": env.get("git_sha"), "gpu": env.get("gpu"),
            "host_cpu": env.get("host_cpu"), "cgan": env.get("cgan"), "setup": setup_of(result),
            "rows": [{k: r.get(k) for k in keep} for r in result["rows"]]}


def append_history(path: str | os.PathLike, result: dict[str, Any]) -> Path:
    """Append one JSON line for this run (one write call, so concurrent runs never interleave inside a line)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps(_clean(history_line(result)), sort_keys=True, separators=(",", ":")) + "\n"
    try:
        with open(p, "a+b") as f:
            if f.tell() > 0:  # a file without a final newline (edited, or an append cut short) would glue this
                f.seek(-1, os.SEEK_END)  # line onto its last one and lose both
                if f.read(1) != b"\n":
                    line = "\n" + line
            f.write(line.encode("utf-8"))
            f.flush()
            os.fsync(f.fileno())
    except OSError as e:
        raise CganError(f"cannot append to history file {p}: {e.strerror or e}") from None
    return p


def read_history(path: str | os.PathLike) -> list[dict[str, Any]]:
    """All runs in a history file, oldest first; lines that are not valid JSON (or not UTF-8) or not history
    lines (HISTORY_SCHEMA) are skipped. The commands check a history file up front, refusing one whose first
    line is not a history line and warning about the others (cgan.benchmarks.checks.check_history_file)."""
    p = Path(path)
    if not p.is_file():
        return []
    runs = []
    for line in p.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            obj = json.loads(line)
        except (json.JSONDecodeError, RecursionError):
            continue
        if not schema_errors(obj, HISTORY_SCHEMA):
            runs.append(obj)
    return runs


# ---- terminal table -------------------------------------------------------------------------------------
def _fmt(v: Any, spec: str) -> str:
    if v is None:
        return "-"
    if isinstance(v, float) and not math.isfinite(v):
        return "inf"
    places = int(spec[-2]) if spec.endswith("f") and spec[-2:-1].isdigit() else None
    if places is not None and isinstance(v, (int, float)) and 0 < abs(v) < 10.0 ** (1 - places):
        return format(v, ".2g")  # two digits that differ: 0.16 and 0.21 fps, not 0.2 and 0.2; 0.04, not 0.0
    return format(v, spec)


COLUMNS: tuple[tuple[str, str, str], ...] = (
    # (header, key, format)
    ("backend", "backend", "s"), ("prec", "precision", "s"), ("batch", "batch", "d"),
    ("size", "_size", "s"), ("p50 ms", "p50_ms", ".2f"), ("p90 ms", "p90_ms", ".2f"),
    ("p99 ms", "p99_ms", ".2f"), ("max ms", "max_ms", ".2f"), ("fps", "fps", ".1f"),
    ("TFLOP/s", "tflops", ".2f"), ("%peak", "pct_of_peak", ".1f"), ("speedup", "speedup_vs_baseline", ".2f"),
    ("maxerr", "max_abs_err", ".1f"), ("PSNR dB", "psnr_db", ".1f"), ("mem MB", "peak_mem_mb", ".0f"),
    ("build s", "build_s", ".2f"), ("1st s", "first_call_s", ".2f"),
)


def format_table(rows: Iterable[dict[str, Any]], columns=COLUMNS) -> str:
    rows = list(rows)
    header = [c[0] for c in columns]
    body = []
    notes = []
    for r in rows:
        cells = []
        for _, key, spec in columns:
            v = f"{r.get('height')}x{r.get('width')}" if key == "_size" else r.get(key)
            cells.append(_fmt(v, spec))
        if r.get("status") != "ok":
            notes.append((r.get("backend"), r.get("precision"), r.get("status"), r.get("reason"),
                          f"b{r.get('batch')} {r.get('height')}x{r.get('width')}"))
        body.append(cells)
    widths = [max(len(h), *(len(b[i]) for b in body)) if body else len(h) for i, h in enumerate(header)]
    lines = ["  ".join(h.rjust(w) if i > 1 else h.ljust(w) for i, (h, w) in enumerate(zip(header, widths)))]
    lines.append("  ".join("-" * w for w in widths))
    for cells in body:
        lines.append("  ".join(c.rjust(w) if i > 1 else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths))))
    if notes:  # one line per backend/precision/reason, listing the rows it covers
        lines.append("not measured:")
        groups: dict[tuple, list[str]] = {}
        for *key, where in notes:
            groups.setdefault(tuple(key), []).append(where)
        for (backend, precision, status, reason), where in groups.items():
            lines.append(f"  {backend} {precision} {', '.join(where)}: {status}: {reason}")
    return "\n".join(lines)
