"""`export_pair`: pair (folder, name or official pretrained) -> export folder, verified by parity checks.

Order of work (nothing half-written ever carries a final name):
1. build every ONNX graph in a hidden staging folder inside `out` (FP32, FP16, pre/post variants);
2. parity: ONNX Runtime CPU vs the PyTorch generator on realistic images at two sizes (unless parity=False);
   a failure raises and removes the staging folder;
3. move the graphs and the copy of the source pair (`pair/`) into place (an old manifest.json is removed first);
4. optional TensorRT engines (skipped when an identical build exists) and Triton repository;
5. manifest.json last.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cgan._files import (check_folder_target, ensure_writable_dir, file_record, fsync_file, nearest_existing,
                         read_json, sha256_file, write_json_atomic)
from cgan._versions import dist_version
from cgan.errors import CganError, IntegrityError
from cgan.pairs import GRAPHS, MANIFEST_JSON, PAIR_JSON, Pair, Resolved, load_pair, resolve
from cgan.spec import EXPORT_FORMAT, FORMAT_VERSION, PAIR_FORMAT

log = logging.getLogger(__name__)

IO_DTYPE = {("nchw", False): "float32", ("nchw", True): "float16"}


@dataclass
class ExportOptions:
    """Everything `cgan-export` can be told (the CLI maps its flags one to one onto these fields)."""

    fp16: bool = True
    fp16_io: bool = False
    with_prepost: bool = False
    simplify: bool = True
    pad_mode: str = "reflect"
    opset: int = 17
    parity: bool = True
    parity_image: str | None = None
    parity_sizes: tuple[tuple[int, int], ...] = ((64, 96), (128, 192))
    engine: bool = False
    shapes: str = "256x256,720x1280,1080x1920"
    batch: str = "1,1,4"
    opt_level: int = 3
    workspace_gb: float | None = None  # None: the TensorRT library's default (the GPU's memory)
    trt_flavour: str = "auto"
    trt_target: str | None = None  # compute capability to build engines for ahead of time (TensorRT-RTX)
    triton: str | None = None
    pretrained: str | None = None
    base_url: str | None = None
    force: bool = False  # rebuild even when the folder already holds this exact export
    extra: dict[str, Any] = field(default_factory=dict)  # injection points for tests (trt_module, gpu)


def cgan_version() -> str:
    try:
        from importlib.metadata import version

        return version("cgan")
    except Exception:  # not installed (running from a source tree)
        return "0+unknown"


#: the libraries an export's manifest names, and their distributions (the first installed counts)
TOOL_DISTS = {"torch": ("torch",), "onnx": ("onnx",), "onnxruntime": ("onnxruntime-gpu", "onnxruntime"),
              "onnxconverter_common": ("onnxconverter-common",), "onnxslim": ("onnxslim",)}


def tool_versions() -> dict[str, str]:
    """cgan's version and those of the installed libraries an export can use (from package metadata: nothing is
    imported, and a library that fails to import cannot hide its version or break the manifest)."""
    out = {"cgan": cgan_version()}
    for name, dists in TOOL_DISTS.items():
        version = dist_version(*dists)
        if version is not None:
            out[name] = version
    return out


def default_out(resolved: Resolved, pretrained: bool = False) -> Path:
    """Where an export goes when no folder is given: $CGAN_HOME/exports/NAME, the first place `--pair NAME`
    looks. NAME is the pair's own name (`winter2summer` resolves to the summer2winter pair, so it is installed
    as summer2winter: an export named after the reverse direction would translate the wrong way); a download
    ($CGAN_HOME/pretrained/NAME) keeps its name."""
    from cgan.pairs import cgan_home

    if resolved.origin == "path" and not pretrained:
        raise CganError(f"give --out DIR: {resolved.folder} is a folder, and only a pair name (or --pretrained "
                        f"NAME) has a default export folder ($CGAN_HOME/exports/NAME)")
    return cgan_home() / "exports" / resolved.folder.name


def _source_pair(source: str | os.PathLike) -> tuple[Pair, Resolved]:
    """The pair to export: a name finds the pair itself before any export of it (re-exporting after the pair
    changed must take the new weights, not the old export's pair/ copy); a reverse name (winter2summer) must
    name a generator the pair holds."""
    resolved = resolve(source, prefer_pairs=True)
    folder = resolved.folder / "pair" if resolved.kind == "export" else resolved.folder
    if not (folder / PAIR_JSON).is_file():
        raise CganError(f"export folder {resolved.folder} has no pair/ copy to re-export from; pass the pair folder")
    pair = load_pair(folder)
    if resolved.direction is not None and resolved.direction not in pair.generators:
        raise CganError(f"{source} is {resolved.direction} of the pair in {folder}, which holds only "
                        f"{', '.join(pair.generators)}: export {folder.name if resolved.origin != 'path' else folder} "
                        f"and use its direction, or a pair with both generators")
    return pair, resolved


def _metadata(pair: Pair, gen: str, precision: str, io: str, options: dict[str, Any]) -> dict[str, Any]:
    return {"cgan.format": EXPORT_FORMAT, "cgan.version": cgan_version(), "cgan.spec": pair.spec.to_dict(),
            "cgan.generator": gen, "cgan.direction": pair.spec.direction_name(gen), "cgan.precision": precision,
            "cgan.io": io, "cgan.weights_sha256": pair.files[gen]["sha256"],
            "cgan.provenance": pair.meta.get("provenance", {}), "cgan.options": options}


def export_pair(source: str | os.PathLike | None, out: str | os.PathLike | None = None, *, fp16: bool = True,
                with_prepost: bool = False, engine: bool = False, **kwargs: Any) -> Path:
    """Export a pair (folder, name, export folder, or `pretrained=NAME`) into `out`; returns `out`.

    `out=None` (a pair name or `pretrained=NAME` only) installs the export as $CGAN_HOME/exports/NAME, where
    `Translator.load(NAME)` and `cgan-video --pair NAME` find it first.

    Keyword arguments are the fields of `ExportOptions` (fp16_io, simplify, pad_mode, parity, parity_image,
    shapes, batch, opt_level, workspace_gb, trt_flavour, triton, pretrained, base_url, ...).
    """
    unknown = set(kwargs) - {f for f in ExportOptions.__dataclass_fields__}
    if unknown:
        raise TypeError(f"unknown export options {sorted(unknown)}")
    opts = ExportOptions(fp16=fp16, with_prepost=with_prepost, engine=engine, **kwargs)
    return run_export(source, out, opts)


def parse_parity_sizes(value: Any, option: str = "--parity-sizes") -> tuple[tuple[int, int], ...]:
    """The parity check's sizes: 'HxW,HxW' (the CLI's form, from Python too) or (height, width) pairs, each checked
    as --shapes are and at most MAX_SIDE a side (the check runs on the CPU); else one line."""
    from cgan._limits import MAX_SIDE
    from cgan.export.tensorrt import parse_shapes

    if isinstance(value, str):
        parts = [p for p in value.split(",") if p]
    else:
        try:
            pairs = [tuple(s) for s in value]
        except TypeError:
            pairs = None
        if pairs is None or any(len(s) != 2 or any(isinstance(x, bool) or not isinstance(x, int) for x in s)
                                for s in pairs):
            raise CganError(f"{option} must be 'HxW,...' or (height, width) pairs of integers, got {value!r:.80}")
        parts = [f"{h}x{w}" for h, w in pairs]
    if not parts:
        raise CganError(f"{option} needs at least one HEIGHTxWIDTH")
    sizes = tuple(parse_shapes(p, option)[0] for p in parts)
    for h, w in sizes:
        if max(h, w) > MAX_SIDE:
            raise CganError(f"{option} {h}x{w}: at most {MAX_SIDE} a side (the check runs on the CPU)")
    return sizes


def run_export(source: str | os.PathLike | None, out: str | os.PathLike | None, opts: ExportOptions) -> Path:
    from cgan.export import parity
    from cgan.export import tensorrt as trt_mod

    t_start = time.perf_counter()
    from cgan.export.onnx_export import check_opset

    check_opset(opts.opset)  # before --out is made
    if out is not None and not os.fspath(out).strip():  # (--out "$UNSET": the export went into the current folder)
        raise CganError("--out is empty: give the export folder (or, for a pair name, leave --out out: "
                        "$CGAN_HOME/exports/NAME)")
    for flag, value in (("--triton", opts.triton), ("--parity-image", opts.parity_image)):
        if value is not None and not os.fspath(value).strip():  # (--triton "$UNSET" was dropped without a word)
            raise CganError(f"{flag} is empty: give {'a folder' if flag == '--triton' else 'a photo'}, or leave it out")
    if opts.base_url and not opts.pretrained:  # (ignored without a word)
        raise CganError("--base-url says where --pretrained downloads from: add --pretrained NAME, or leave it out")
    if opts.parity_image and not opts.parity:
        raise CganError("--parity-image is the photo of the parity check, which --no-parity turns off: drop one")
    if opts.triton:  # written last, after parity and engine builds: a path that cannot be one fails now
        check_folder_target(opts.triton, "--triton")
    if opts.fp16_io and not opts.fp16:
        raise CganError("--fp16-io needs the FP16 graphs; drop --no-fp16 or --fp16-io")
    if opts.engine and not opts.fp16:
        raise CganError("--engine builds FP16 engines from the FP16 ONNX; drop --no-fp16")
    if opts.trt_target and not opts.engine:
        raise CganError("--trt-target says which GPU to build engines for: add --engine")
    profile = trt_mod.make_profile(opts.shapes, opts.batch) if opts.engine else None
    if opts.engine:  # refuse a build that cannot happen before anything in --out is replaced
        trt_mod.resolve_build(opts.trt_flavour, opts.trt_target, opts.opt_level, opts.workspace_gb,
                              opts.extra.get("trt_module"), opts.extra.get("gpu"))
    frames, image_label = [], None
    if opts.parity:
        sizes = parse_parity_sizes(opts.parity_sizes, "parity_sizes")
        frames, image_label = parity.parity_frames(sizes, opts.parity_image)
    with contextlib.ExitStack() as held:
        downloads = None
        if opts.pretrained:
            if source is not None:
                raise CganError("give either a PAIR or --pretrained NAME, not both")
            from cgan.export.pretrained import fetch_pair, valid_names
            from cgan.pairs import cgan_home

            if opts.pretrained not in valid_names():  # before its name makes a path for the lock
                raise CganError(f"unknown pretrained model {opts.pretrained!r}: use one of {', '.join(valid_names())}")
            # the imported pair is rewritten by every fetch: one export of NAME at a time, until it is copied
            held.enter_context(export_lock(cgan_home() / "pretrained" / opts.pretrained))
            source, downloads = fetch_pair(opts.pretrained, opts.base_url, **opts.extra.get("pretrained", {}))
        return _export_to(source, out, opts, frames, image_label, profile, downloads, t_start)


def _export_to(source: Any, out: Any, opts: ExportOptions, frames: list, image_label: Any, profile: Any,
               downloads: Any, t_start: float) -> Path:
    if source is None:
        raise CganError("nothing to export: pass a pair folder or name, or --pretrained NAME")
    pair, resolved = _source_pair(source)
    g = pair.spec.generator
    if opts.with_prepost and (g.in_channels, g.out_channels) != (3, 3):
        raise CganError(f"--with-prepost wraps a generator in BGR frames in and out, and this pair's takes "
                        f"{g.in_channels} and gives {g.out_channels} channels: leave --with-prepost out")
    home_fix = None
    if out is None:
        out = default_out(resolved, pretrained=bool(opts.pretrained))
        home_fix = "it is the default under $CGAN_HOME: set CGAN_HOME to a writable folder, or pass --out DIR"
        log.info("exporting into %s (where --pair %s finds it)", out, out.name)
    out = Path(out)
    if out.resolve() == pair.folder.resolve():
        raise CganError(f"--out {out} is the source pair folder; choose a new folder")
    if (out / "pair").resolve() == pair.folder.resolve() and not (out / MANIFEST_JSON).is_file():
        # e.g. cgan-export RUN/pair --out RUN (re-exporting an export into itself is fine: its pair/ is a copy)
        raise CganError(f"--out {out} holds the source pair in {out / 'pair'}, which an export replaces with its "
                        f"own copy; choose a new folder")
    if (out / PAIR_JSON).is_file():
        raise CganError(f"--out {out} is a pair folder ({PAIR_JSON}); an export there would hide that pair; "
                        f"choose a new folder")
    # inside a pair folder (one inside an export's pair/ copy was deleted by the next --force export of that export)
    folder = _pair_folder_around(out.resolve().parent)
    if folder is not None:
        raise CganError(f"--out {out} is inside the pair folder {folder}: an export there mixes with the pair's "
                        f"files (and one in an export's pair/ copy goes when that export is rebuilt); choose a "
                        f"folder outside it")
    if opts.triton:
        _refuse_triton_in_pair(Path(opts.triton), out)
    with export_lock(out):  # the folder is made under the lock: a failed export removes the one it made
        existed = nearest_existing(out)  # out itself, or the folder its missing parents are made in
        ensure_writable_dir(out, "export folder", home_fix)
        check_export_target(out)
        try:
            return _export_locked(pair, out, opts, frames, image_label, profile, downloads, t_start)
        except BaseException:
            # a failed export leaves no empty --out behind, nor the empty parents it made (--out a/b/c left a/b)
            made = out
            while made != existed and existed in made.parents:
                try:
                    made.rmdir()
                except OSError:
                    break
                made = made.parent
            raise


def _refuse_triton_in_pair(triton: Path, out: Path) -> None:
    """--triton inside a pair folder (a model repository among the weights) or inside the export's pair/ copy
    (which the next `--force` export deletes with it, without a word): refused, as --out is."""
    where = triton.resolve()
    if where == (out / "pair").resolve() or (out / "pair").resolve() in where.parents:
        raise CganError(f"--triton {triton} is inside the export's pair/ copy, which every export replaces: choose "
                        f"a folder outside it (e.g. {out / 'triton'})")
    folder = _pair_folder_around(where)
    if folder is not None:
        raise CganError(f"--triton {triton} is inside the pair folder {folder}: a model repository there mixes "
                        f"with the pair's files; choose another folder")


def _manifest(pair: Pair, opts: ExportOptions, option_record: dict[str, Any], downloads: Any,
              files: list[dict[str, Any]], parity_record: dict[str, Any] | None, profile: Any,
              t_start: float) -> dict[str, Any]:
    """An export's manifest.json: what it was made from and how, and its files."""
    return {
        "format": EXPORT_FORMAT, "version": FORMAT_VERSION, "name": pair.spec.name,
        "spec": pair.spec.to_dict(),
        "source": {"pair_sha256": {g: r["sha256"] for g, r in pair.files.items()},
                   "pair_name": pair.meta.get("name"), "provenance": pair.meta.get("provenance", {}),
                   "pretrained": ({"name": opts.pretrained, "downloads": downloads} if downloads else None)},
        "opset": opts.opset, "precision": sorted({r["precision"] for r in files}),
        "options": option_record, "tools": tool_versions(),
        "files": [{k: v for k, v in r.items() if k != "skipped_build"} for r in files],
        "parity": parity_record, "pair": "pair",
        "engine_profile": profile.to_dict() if profile else None,
        "triton": None,
        "export_seconds": round(time.perf_counter() - t_start, 2),
    }


def _pair_folder_around(path: Path) -> Path | None:
    """`path` (resolved) or the nearest folder above it that is a pair folder (holds pair.json); None if none is.
    A pair.json that reads as JSON and is no pair manifest (a `cgan-bench --json pair.json` result in the
    working folder) makes no pair folder; a damaged one still does."""
    return next((f for f in (path, *path.parents) if _pair_manifest(f / PAIR_JSON)), None)


def _pair_manifest(file: Path) -> bool:
    if not file.is_file():
        return False
    try:
        meta = json.loads(file.read_bytes()[:1 << 20])  # (a manifest is a few KB; a big file is damaged: a pair)
    except (OSError, ValueError):
        return True
    # a pair's manifest, maybe with a damaged field; anything else JSON (a bench result, a list) is not one
    return isinstance(meta, dict) and (meta.get("format") == PAIR_FORMAT or "files" in meta or "spec" in meta)


class _SwapIn(contextlib.AbstractContextManager):
    """Move new files into the export folder, each old one first moved aside into `backup` (in the same file
    system: renames only); on an exception inside the block the new ones are removed and the old ones put back,
    so the folder holds the previous export again, manifest included. The caller deletes `backup` (with its
    staging folder)."""

    def __init__(self, backup: Path) -> None:
        self.backup, self.moved_in, self.saved = backup, [], []
        backup.mkdir()

    def aside(self, final: Path) -> None:
        if os.path.lexists(final):
            kept = self.backup / final.name
            os.replace(final, kept)
            self.saved.append((final, kept))

    def __call__(self, new: Path, final: Path) -> None:
        self.aside(final)
        os.replace(new, final)
        self.moved_in.append(final)

    def __exit__(self, kind: Any, *rest: Any) -> None:
        if kind is None:
            return
        for final in reversed(self.moved_in):
            with contextlib.suppress(OSError):
                shutil.rmtree(final) if final.is_dir() and not final.is_symlink() else final.unlink()
        for final, kept in reversed(self.saved):
            with contextlib.suppress(OSError):
                os.replace(kept, final)


def check_export_target(out: Path) -> None:
    """Refuse an --out whose manifest.json or pair/ is not a cgan export's. An export replaces both and removes
    the files an old manifest listed: in a folder of other things (a web app with its own manifest.json listing
    its files, a `pair/` of notes) that deleted the user's files. Other files in the folder are never touched."""
    manifest, pair = out / MANIFEST_JSON, out / "pair"
    hint = "choose a new or empty folder (or an earlier cgan export)"
    if manifest.is_symlink() or manifest.exists():
        try:
            meta = None if manifest.is_symlink() else read_json(manifest, MANIFEST_JSON)
        except CganError:
            meta = None
        if not isinstance(meta, dict) or meta.get("format") != EXPORT_FORMAT:
            raise CganError(f"--out {out} has a manifest.json that is not a cgan export's (if it is a damaged "
                            f"cgan export, delete the folder first): {hint}")
    if pair.is_symlink() or (pair.exists() and not (pair / PAIR_JSON).is_file()):
        raise CganError(f"--out {out} has a pair/ that is not a cgan pair (a link, or no {PAIR_JSON}): {hint}")


@contextlib.contextmanager
def export_lock(out: Path) -> Any:
    """One export at a time into a folder (`cgan._locks.folder_lock`, which save_pair takes too); a second
    export waits, then builds. Under the lock, staging folders left by a killed export are removed (no live
    export can own them)."""
    from cgan._locks import folder_lock

    with folder_lock(out, f"another cgan process is writing into {out}; waiting for it to finish"):
        for stale in Path(out).glob(".export-staging-*"):
            shutil.rmtree(stale, ignore_errors=True)
        yield


def _listed_files(out: Path) -> set[str]:
    """The plain file names (in `out` itself) an existing manifest lists, with their sidecars; nothing if there
    is no readable manifest. Names with a path, the manifest and pair/ are never listed here."""
    try:
        old = read_json(out / MANIFEST_JSON, MANIFEST_JSON)
    except CganError:
        return set()
    recs = old.get("files") if isinstance(old, dict) else None
    names = set()
    for rec in recs if isinstance(recs, list) else []:
        for key in ("path", "sidecar"):
            v = rec.get(key) if isinstance(rec, dict) else None
            if isinstance(v, str) and v and os.path.basename(v) == v and v not in (MANIFEST_JSON, "pair", ".", ".."):
                names.add(v)
    return {n for n in names if (out / n).is_file() or (out / n).is_symlink()}


def _copy_pair(pair: Pair, dest: Path) -> None:
    """The export's copy of its source pair: the weights (verified when the pair was loaded) and the in-pair graphs
    that pass Pair.graph's checks (inside the folder, made for these weights, size and sha256). A graph entry was
    copied as pair.json named it: `../../x` read a file outside the pair and wrote one outside the export; a
    broken or missing graph failed the whole export at its end. Such a graph is left out of the copy, said once."""
    dest.mkdir()
    for rec in pair.files.values():
        shutil.copyfile(pair.folder / rec["path"], dest / rec["path"])
    meta = dict(pair.meta)
    kept = {}
    for gen in pair.graphs:
        try:
            kept[gen] = pair.graph(gen, verify=True)
        except CganError as e:
            log.warning("warning: the export's copy of the pair leaves out its ONNX graph for %s: %s", gen, e)
            continue
        shutil.copyfile(pair.folder / kept[gen]["path"], dest / kept[gen]["path"])
    meta.pop(GRAPHS, None)
    if kept:
        meta[GRAPHS] = kept
    write_json_atomic(dest / PAIR_JSON, meta)
    try:
        load_pair(dest)
    except IntegrityError:
        if _source_changed(pair):  # (it named the hidden staging copy "corrupted or replaced")
            raise IntegrityError(f"the pair {pair.folder} changed while it was exported (written again by another "
                                 f"command, such as cgan-train export-pair): nothing was written; export it again "
                                 f"once that is done") from None
        raise


def _source_changed(pair: Pair) -> bool:
    """Whether a pair's weights on disk are no longer those it was loaded with."""
    try:
        now = load_pair(pair.folder, verify=False)
        return now.files != pair.files or any(sha256_file(pair.folder / r["path"]) != r["sha256"]
                                              for r in pair.files.values())
    except (CganError, OSError):
        return True


def _reuse_engines(out: Path, stage: Path, onnx_name: str) -> None:
    """Link the engines already in `out` for this ONNX name (and their sidecars) into the staging folder, so
    build_engine finds an up-to-date one there and skips the minutes of building."""
    from cgan.export import tensorrt as trt_mod

    for flavour in trt_mod.FLAVOURS:
        plan = trt_mod.engine_path(out / onnx_name, flavour)
        for src in (plan, trt_mod.sidecar_path(plan)):
            if src.is_file():
                dst = stage / src.name
                try:
                    os.link(src, dst)
                except OSError:
                    shutil.copy2(src, dst)


def _build_key(pair: Pair, opts: ExportOptions, option_record: dict[str, Any], image_label: Any) -> dict[str, Any]:
    """What decides an export's contents: source weights, options, precisions, parity request, tool versions."""
    return {"pair_sha256": {g: r["sha256"] for g, r in pair.files.items()}, "options": option_record,
            "precision": ["fp16", "fp32"] if opts.fp16 else ["fp32"], "tools": tool_versions(),
            "parity": {"image": image_label, "sizes": [list(s) for s in opts.parity_sizes]} if opts.parity else None}


def _up_to_date(out: Path, pair: Pair, opts: ExportOptions, option_record: dict[str, Any], image_label: Any) -> bool:
    """True when `out` already holds exactly the export asked for (a second `cgan-export` of the same thing, e.g.
    one that waited on the lock for the first): same build key and every listed file intact. Engines and Triton
    repositories are always (re)considered, so those requests never skip."""
    from cgan._files import read_json, verify_record

    if opts.engine or opts.triton or not (out / MANIFEST_JSON).is_file():
        return False
    try:
        m = read_json(out / MANIFEST_JSON, "manifest.json")
        have = {"pair_sha256": m["source"]["pair_sha256"], "options": m["options"], "precision": m["precision"],
                "tools": m["tools"],
                "parity": ({"image": m["parity"]["image"], "sizes": m["parity"]["sizes"]} if m.get("parity") else None)}
        if have != _build_key(pair, opts, option_record, image_label):
            return False
        for rec in m["files"]:
            verify_record(out, rec, "manifest.json")
        load_pair(out / "pair")
    except (CganError, IntegrityError, KeyError, TypeError):
        return False
    return True


def _export_locked(pair: Pair, out: Path, opts: ExportOptions, frames: list, image_label: Any, profile: Any,
                   downloads: Any, t_start: float) -> Path:
    from cgan.export import fp16 as fp16_mod
    from cgan.export import onnx_export, parity, prepost
    from cgan.export import tensorrt as trt_mod
    from cgan.trainer.weights import load_generator

    option_record = {"simplify": opts.simplify, "pad_mode": opts.pad_mode, "fp16_io": opts.fp16_io,
                     "with_prepost": opts.with_prepost, "opset": opts.opset}
    if not opts.force and _up_to_date(out, pair, opts, option_record, image_label):
        log.info("%s already holds this export (same pair, options, tools; files verified): nothing to do "
                 "(--force rebuilds)", out)
        return out

    files: list[dict[str, Any]] = []
    figures: dict[str, Any] = {}
    stage = Path(tempfile.mkdtemp(dir=out, prefix=".export-staging-"))
    try:
        staged: list[tuple[Path, dict[str, Any]]] = []
        for gen in pair.generators:
            net = load_generator(pair, gen)
            direction = pair.spec.direction_name(gen)
            log.info("%s (%s): exporting ONNX", gen, direction)
            variants: dict[str, Path] = {}

            def put(model: Any, precision: str, io: str, io_dtype: str, suffix: str = "") -> None:
                onnx_export.set_metadata(model, _metadata(pair, gen, precision, io, option_record))
                onnx_export.check(model, f"{gen}.{precision}{suffix}.onnx")
                path = stage / f"{gen}.{precision}{suffix}.onnx"
                onnx_export.save(model, path)
                variants[f"{precision}{suffix}"] = path
                staged.append((path, {"kind": "onnx", "generator": gen, "direction": direction,
                                      "precision": precision, "io": io, "io_dtype": io_dtype}))

            m32 = onnx_export.export_onnx(net, {}, opset=opts.opset, pad_mode=opts.pad_mode,
                                          do_simplify=opts.simplify)
            put(m32, "fp32", "nchw", "float32")
            m16 = None
            if opts.fp16:
                m16 = fp16_mod.to_fp16(m32, fp16_io=False)
                if opts.fp16_io:
                    put(fp16_mod.to_fp16(m32, fp16_io=True), "fp16", "nchw", "float16")
                else:
                    put(m16, "fp16", "nchw", "float32")
            if opts.with_prepost:
                put(prepost.with_prepost(m32), "fp32", "bgr-hwc-uint8", "uint8", ".prepost")
                if m16 is not None:
                    put(prepost.with_prepost(m16), "fp16", "bgr-hwc-uint8", "uint8", ".prepost")
            if opts.parity:
                log.info("%s (%s): parity on %s images %s", gen, direction, image_label,
                         ", ".join(f"{h}x{w}" for h, w in opts.parity_sizes))
                figures[gen] = parity.check_generator(net, variants, frames)
        parity_record = None
        if opts.parity:
            parity_record = {"image": image_label, "sizes": [list(s) for s in opts.parity_sizes],
                             "thresholds": parity.Thresholds().to_dict(), "runtime": "onnxruntime CPU",
                             "reference": "torch CPU float32", "generators": figures}
            parity.raise_on_failure(parity_record)
        # copy of the source pair, verified on the way
        _copy_pair(pair, stage / "pair")

        # engines are built in the staging folder too: a build that fails (out of memory, a parser error,
        # Ctrl-C during minutes of building) leaves the export that was there untouched
        staged_engines: list[tuple[Path, Path, dict[str, Any]]] = []
        if opts.engine:
            for path, meta in [(p, m) for p, m in staged if m["kind"] == "onnx" and m["precision"] == "fp16"]:
                _reuse_engines(out, stage, path.name)
                side = trt_mod.build_engine(path, profile, io=meta["io"], flavour=opts.trt_flavour,
                                            opt_level=opts.opt_level, workspace_gb=opts.workspace_gb,
                                            cgan_version=cgan_version(), trt_module=opts.extra.get("trt_module"),
                                            gpu=opts.extra.get("gpu"), target=opts.trt_target)
                plan = stage / side["plan"]["path"]
                staged_engines.append((plan, trt_mod.sidecar_path(plan), {
                    "kind": "engine", "generator": meta["generator"], "direction": meta["direction"],
                    "precision": "fp16", "io": meta["io"], "io_dtype": meta["io_dtype"], "flavour": side["flavour"],
                    "sidecar": trt_mod.sidecar_path(plan).name, "skipped_build": side["skipped"]}))

        # on disk before any is renamed: after a power cut the manifest (written last, synced) could list files
        # that stand under their names empty
        for path in [*(p for p, _ in staged), *(f for p, side, _ in staged_engines for f in (p, side)),
                     *(stage / "pair").rglob("*")]:
            if path.is_file() and not path.is_symlink():
                fsync_file(path)
        # nothing below may fail half-way (it would leave new and old files without a manifest): a folder where a
        # file goes is said now, while the previous export is whole
        names = [p.name for p, _ in staged] + [f.name for p, side, _ in staged_engines for f in (p, side)]
        for name in names:
            if (out / name).is_dir() and not (out / name).is_symlink():
                raise CganError(f"{out / name} is a folder where this export writes its file {name}: move it away "
                                f"and export again (the previous export in {out} is unchanged)")
        # finalize: the old manifest goes first so no reader pairs it with new files; the old files are moved
        # aside into the staging folder, not deleted, so a failure half-way (a disk error, Ctrl-C) puts them back
        listed_before = _listed_files(out)
        # hashed and the manifest written in the staging folder first: while the previous export is swapped out
        # (no manifest in the folder: a reader finds no export there) only renames happen (it took 29-52 ms)
        for path, meta in staged:
            files.append({**file_record(path, stage), **meta})
        for plan, sidecar, meta in staged_engines:
            files.append({**file_record(plan, stage), **meta})
        manifest = _manifest(pair, opts, option_record, downloads, files, parity_record, profile, t_start)
        write_json_atomic(stage / MANIFEST_JSON, manifest)
        with _SwapIn(stage / ".previous") as swap:
            swap.aside(out / MANIFEST_JSON)
            for path, _ in staged:
                swap(path, out / path.name)
            for plan, sidecar, _ in staged_engines:
                swap(sidecar, out / sidecar.name)
                swap(plan, out / plan.name)
            swap(stage / "pair", out / "pair")
            # the manifest last, inside the swap: a Ctrl-C or a full disk before it is in place puts the previous
            # export back whole (written after the swap, a Ctrl-C in between left new files and no manifest)
            swap(stage / MANIFEST_JSON, out / MANIFEST_JSON)  # the export is complete and usable from here on
        # files the old export listed and this one does not (its FP16 or pre/post graphs, engines) were made
        # from other weights or options: opened directly, or by a Triton repository, they would run the old model
        kept = {r["path"] for r in files} | {r["sidecar"] for r in files if r.get("sidecar")}
        for name in sorted(listed_before - kept):
            with contextlib.suppress(OSError):
                (out / name).unlink()
                log.info("removed %s, left from the previous export into %s", name, out)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    engines = [r for r in files if r["kind"] == "engine"]
    if opts.triton:
        from cgan.export.triton import write_repository

        max_batch = {e["path"]: profile.batch[2] for e in engines} if profile else {}
        triton_models = write_repository(out, opts.triton, pair.spec.name, files, max_batch,
                                         (pair.spec.generator.in_channels, pair.spec.generator.out_channels),
                                         spec=pair.spec.to_dict())
        manifest["triton"] = {"repository": str(Path(opts.triton).expanduser().resolve()), "models": triton_models}
        manifest["export_seconds"] = round(time.perf_counter() - t_start, 2)
        write_json_atomic(out / MANIFEST_JSON, manifest)
    log.info("export written to %s (%.1f s)", out, manifest["export_seconds"])
    return out
