"""What every backend shares: the model it runs (`Model`) and the lifecycle + input checks (`Backend`).

Polygraphy-style: the base class owns `activate()` / `infer(batch)` / `deactivate()`, the context manager and
the validation of every batch; a backend writes only `_activate_impl`, `_infer_impl`, `_deactivate_impl` and a
classmethod `check(model, precision, device) -> (ok, reason)` that says whether it can run here, without side
effects and without importing heavy libraries when a cheaper test answers.

Every backend's `infer` takes and returns uint8 (N, H, W, 3) BGR frames with H and W multiples of 4 (the
Translator pads): pre/post-processing lives in the backend so that GPU backends run it on the GPU. The
returned array is ordinary host memory that stays valid after deactivate() (never pinned or device memory a
backend frees), but it may be a buffer the backend overwrites on its next call: copy it if you keep it across
calls (Translator does).
"""
from __future__ import annotations

import importlib.util
import logging
import numbers
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from cgan._files import inside, read_json, verify_record
from cgan._limits import check_threads
from cgan.errors import BackendUnavailable, CganError, IntegrityError
from cgan.pairs import GRAPHS, MANIFEST_JSON, PAIR_JSON, Pair, load_pair, read_spec, resolve
from cgan.spec import EXPORT_FORMAT, FORMAT_VERSION, GENERATORS, PairSpec
from cgan.runtime.frames import MIN_SIDE, MULTIPLE

log = logging.getLogger("cgan.runtime")

PRECISIONS = ("fp32", "fp16")
#: batch shapes (N, H, W) a backend keeps buffers (and CUDA graphs) for; the least recently used goes first
MAX_SHAPES = 8
#: and, for buffers in host memory (ort-cpu), the most bytes they may take with the new shape's: photos of many
#: sizes each left a set behind (27 bytes a pixel: 8 sizes of 4 MP held 0.9 GB until close). One larger shape
#: is always let in. GPU backends keep the count limit only: several streams batched together alternate batch
#: sizes from call to call, and a byte cap made them free, reallocate and recapture their graphs on every call.
MAX_HELD_BYTES = 512 << 20
DEVICES = ("cpu", "cuda")


@dataclass
class Model:
    """One generator of a pair or export folder, chosen by direction: what a backend loads."""

    kind: str                         # "pair" | "export"
    folder: Path
    spec: PairSpec
    gen: str                          # "G" | "F"
    source: str                       # what the user passed
    manifest: dict[str, Any] | None = None
    pair_folder: Path | None = None   # the pair (or the export's pair/ copy) when present
    origin: str = "path"              # how `source` was found (cgan.pairs.Resolved.origin): path, or a name's place
    pair_meta: dict[str, Any] = field(default_factory=dict)  # a pair folder's pair.json (its in-pair graphs)
    _pair: Pair | None = field(default=None, repr=False)

    @property
    def direction(self) -> str:
        return self.spec.direction_name(self.gen)

    def export_command(self, *extra: str) -> str:
        """The `cgan-export` command that (re)builds an export of this model: a pair name installs it where the
        name finds it; a folder needs --out, and `--pair` then names that export folder."""
        import shlex

        args = " ".join(extra)
        tail = f" {args}" if args else ""
        if self.kind == "export" and self.source_is_path:  # rebuild that export in place from its pair/ copy
            return f"cgan-export {shlex.quote(str(self.folder))} --out {shlex.quote(str(self.folder))}{tail}"
        if self.source_is_path:
            return (f"cgan-export {shlex.quote(str(self.folder))} --out EXPORT_FOLDER{tail}` and pass "
                    f"`--pair EXPORT_FOLDER")
        return f"cgan-export {self.folder.name}{tail}"  # the name found this folder (not always spec.name)

    @property
    def source_is_path(self) -> bool:
        return self.origin == "path"

    @property
    def files(self) -> list[dict[str, Any]]:
        """The file records for this generator: an export manifest's, or a pair's in-pair ONNX graph (pair.json's
        "onnx" entry, see cgan.export.pair_graph); empty for a pair without graphs."""
        if self.manifest:
            return [f for f in self.manifest.get("files", []) if isinstance(f, dict) and f.get("generator") == self.gen]
        if self.kind == "pair":  # listed only; Model.path checks it (Pair.graph) before it is used
            graphs = self.pair_meta.get(GRAPHS)
            rec = graphs.get(self.gen) if isinstance(graphs, dict) else None
            return [{**rec, "generator": self.gen}] if isinstance(rec, dict) else []
        return []

    def find(self, kind: str, precision: str | None = None, io: str | None = None) -> list[dict[str, Any]]:
        out = []
        for rec in self.files:
            if rec.get("kind") != kind:
                continue
            if precision is not None and rec.get("precision") != precision:
                continue
            if io is not None and rec.get("io", "nchw") != io:
                continue
            out.append(rec)
        return out

    def path(self, rec: dict[str, Any], verify: bool = True) -> Path:
        """The file of a manifest record, checked against its size and sha256 (a pair's graph: and the weights
        it reads, with every other file of the pair)."""
        what = str(self.listing)
        if verify:
            if self.kind == "pair":  # the graph reads the pair's weights as external data: verify both
                self._pair = load_pair(self.folder)
                return inside(self.folder, self._pair.graph(self.gen)["path"], what)
            return verify_record(self.folder, rec, what)
        return inside(self.folder, rec.get("path", ""), what)

    @property
    def listing(self) -> Path:
        """The file that lists this model's files: an export's manifest.json or a pair's pair.json."""
        return self.folder / (MANIFEST_JSON if self.kind == "export" else PAIR_JSON)

    def rebuild_hint(self) -> str:
        """How to re-create this model's ONNX files."""
        import shlex

        if self.kind == "pair":
            return f"re-create its graphs with `cgan-export {shlex.quote(str(self.folder))} --in-pair`"
        return "re-export it with `cgan-export`"

    def pair(self) -> Pair:
        if self._pair is None:
            if self.pair_folder is None:
                raise BackendUnavailable(f"{self.folder} has no pair/ copy of the weights: re-export it with "
                                         f"`cgan-export` or pass the pair folder")
            self._pair = load_pair(self.pair_folder)
        return self._pair

    def has_pair(self) -> bool:
        return self.pair_folder is not None

    def describe(self) -> str:
        return f"{self.direction} ({self.gen}) from {self.kind} {self.folder}"


def _check_pair_copy(folder: Path, manifest: dict[str, Any], spec: PairSpec, pair: Pair) -> None:
    """An export's pair/ copy must be the one it was made from: inside the folder (a `pair` link out of it was
    followed, and other weights than the manifest's ran, exit 0), with the manifest's spec and weight hashes."""
    inside = folder.resolve()
    if (folder / "pair").is_symlink() or inside not in (folder / "pair").resolve().parents:
        raise IntegrityError(f"{folder / 'pair'} leads out of the export folder (a link); re-export it")
    made_from = (manifest.get("source") or {}).get("pair_sha256") if isinstance(manifest.get("source"), dict) else None
    hashes = {g: r.get("sha256") for g, r in pair.files.items()}
    if pair.spec != spec or (isinstance(made_from, dict) and any(made_from.get(g) != h for g, h in hashes.items())):
        raise IntegrityError(f"{folder / 'pair'} is not the pair {folder / MANIFEST_JSON} was exported from (other "
                             f"weights or architecture): export the pair you mean again (`cgan-export PAIR --out "
                             f"{folder}`)")


def load_model(source: str | os.PathLike, direction: str | None = None) -> Model:
    """Resolve a pair name / pair folder / export folder and pick one generator (see cgan.pairs.resolve)."""
    res = resolve(source)
    manifest = None
    if res.kind == "export":
        manifest = read_json(res.folder / MANIFEST_JSON, "manifest.json")
        if manifest.get("format") != EXPORT_FORMAT:
            raise IntegrityError(f"{res.folder / MANIFEST_JSON} is not a cgan export manifest")
        if manifest.get("version") != FORMAT_VERSION:
            raise IntegrityError(f"{res.folder / MANIFEST_JSON} has version {manifest.get('version')!r}; this cgan "
                                 f"reads {FORMAT_VERSION}: upgrade cgan or re-export")
        spec = read_spec(manifest, res.folder / MANIFEST_JSON, "re-export")
        pair_folder = res.folder / "pair" if (res.folder / "pair" / "pair.json").is_file() else None
        files = manifest.get("files")
        if not isinstance(files, list):
            raise IntegrityError(f"{res.folder / MANIFEST_JSON} has no file list; re-export")
        have = {f.get("generator") for f in files if isinstance(f, dict) and isinstance(f.get("generator"), str)}
        pair = None
        if pair_folder is not None:
            pair = load_pair(pair_folder, verify=False)
            _check_pair_copy(res.folder, manifest, spec, pair)
            have |= set(pair.generators)
        gens = tuple(g for g in GENERATORS if g in have)
        if not gens:
            raise IntegrityError(f"{res.folder} lists no generator files; re-export")
    else:
        pair = load_pair(res.folder, verify=False)
        spec, pair_folder, gens = pair.spec, res.folder, pair.generators
    wanted = direction if direction is not None else res.direction
    if wanted is not None and str(wanted).upper() in GENERATORS and str(wanted).upper() not in gens:
        gen = str(wanted).upper()
        raise CganError(f"{res.folder} has no {gen} ({spec.direction_name(gen)}); it holds "
                        + ", ".join(f"{spec.direction_name(g)} ({g})" for g in gens))
    gen = spec.resolve_direction(wanted, gens)
    return Model(res.kind, res.folder, spec, gen, str(source), manifest, pair_folder, origin=res.origin,
                 pair_meta=pair.meta if res.kind == "pair" else {})


class ShapeCache:
    """What a backend keeps per batch shape (bound buffers, a CUDA graph), least recently used first out: at most
    MAX_SHAPES shapes and, with `bounded` (host memory), at most MAX_HELD_BYTES in all, the newest shape's
    included (`nbytes`, which only a bounded cache needs). `drop(key, item)` frees what an item holds beyond
    Python's reach (device memory, a captured graph)."""

    def __init__(self, drop: Callable[[Any, Any], None] | None = None, bounded: bool = False):
        self._items: dict[Any, Any] = {}
        self._bytes: dict[Any, int] = {}
        self._drop = drop
        self._bounded = bounded

    def get(self, key: Any) -> Any:
        """The item for `key` (now the most recently used), or None."""
        item = self._items.pop(key, None)
        if item is not None:
            self._items[key] = item
        return item

    def make_room(self, nbytes: int = 0) -> int:
        """Before one more shape of `nbytes`: drop the least recently used ones until both limits hold (or none
        is left). How many were dropped."""
        dropped = 0
        while self._items and (len(self._items) >= MAX_SHAPES or
                               self._bounded and sum(self._bytes.values()) + nbytes > MAX_HELD_BYTES):
            key = next(iter(self._items))
            self._forget(key)
            dropped += 1
        return dropped

    def put(self, key: Any, item: Any, nbytes: int = 0) -> Any:
        self._items[key] = item
        self._bytes[key] = int(nbytes)
        return item

    def _forget(self, key: Any) -> None:
        item = self._items.pop(key)
        self._bytes.pop(key, None)
        if self._drop is not None:
            self._drop(key, item)

    def clear(self) -> None:
        for key in list(self._items):
            self._forget(key)

    def values(self) -> list[Any]:
        return list(self._items.values())

    @property
    def nbytes(self) -> int:
        return sum(self._bytes.values())

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: Any) -> bool:
        return key in self._items


def module_available(name: str) -> bool:
    """Whether `name` is importable, without importing it."""
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


#: options every backend accepts, so that backend="auto" can take them whatever it picks: threads=N (CPU
#: backends use it), device_id=N (the GPU: ort-cuda runs on any; torch and TensorRT only on 0 — set
#: CUDA_VISIBLE_DEVICES — and CPU backends ignore it)
PORTABLE_OPTIONS = ("threads", "device_id")
#: Translator.load's own keyword arguments: a misspelt one reaches the backend as an unknown option, whose error
#: then suggests the argument meant
LOAD_ARGUMENTS = ("direction", "backend", "precision", "device", "resize", "max_side", "max_pixels")


class Backend:
    """Lifecycle + validation shared by all backends. Subclasses set `name` and implement the `*_impl` methods."""

    name = "base"
    devices: tuple[str, ...] = ("cpu",)
    #: the options this backend takes besides PORTABLE_OPTIONS; anything else is a one-line error (a typo such
    #: as thread=2 must not be accepted silently)
    options: tuple[str, ...] = ()
    #: whether device_id may pick another GPU than 0
    any_device_id = False

    def __init__(self, model: Model, precision: str | None = None, device: str | None = None, **opts: Any):
        device = device or self.default_device()
        if device not in self.devices:
            raise CganError(f"backend {self.name} runs on {', '.join(self.devices)}, not {device!r}")
        if precision is None:
            precision = self.default_precision(device)
        if precision not in PRECISIONS:
            raise CganError(f"unknown precision {precision!r}: use one of {', '.join(PRECISIONS)}")
        ok, reason = self.check(model, precision, device)
        if not ok:
            raise BackendUnavailable(f"backend {self.name} cannot run {model.direction} here: {reason}")
        self.model, self.precision, self.device = model, precision, device
        self.opts = self.check_opts(opts, device)
        self.is_active = False

    @classmethod
    def check_opts(cls, opts: dict[str, Any], device: str) -> dict[str, Any]:
        """One-line CganError for an option this backend does not take or a bad threads / device_id value."""
        unknown = sorted(set(opts) - set(cls.options) - set(PORTABLE_OPTIONS))
        if unknown:
            import difflib

            takes = ", ".join((*cls.options, *PORTABLE_OPTIONS))
            meant = []
            for key in unknown:
                if near := difflib.get_close_matches(key, (*cls.options, *PORTABLE_OPTIONS), n=1, cutoff=0.7):
                    meant.append((key, f"{near[0]}="))
                elif near := difflib.get_close_matches(key, LOAD_ARGUMENTS, n=1, cutoff=0.7):
                    meant.append((key, f"{near[0]}= (an argument of Translator.load)"))
            guess = ("" if not meant else f" (did you mean {meant[0][1]}?)" if len(unknown) == 1 else
                     f" (did you mean {', '.join(f'{m} for {k!r}' for k, m in meant)}?)")
            raise CganError(f"unknown option(s) {', '.join(map(repr, unknown))} for the {cls.name} backend{guess}: "
                            f"it takes {takes}")
        for key, low in (("threads", 1), ("device_id", 0)):
            v = opts.get(key)
            if v is not None and (isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < low):
                raise CganError(f"{key} must be an integer >= {low}, got {v!r}")
        if opts.get("threads") is not None:
            check_threads(opts["threads"], f"threads={opts['threads']}")
        if device == "cuda" and opts.get("device_id") and not cls.any_device_id:
            raise CganError(f"the {cls.name} backend runs on GPU 0: to use GPU {opts['device_id']} set "
                            f"CUDA_VISIBLE_DEVICES={opts['device_id']} (or use the ort-cuda backend)")
        return dict(opts)

    # ---- what subclasses provide ----------------------------------------------------------------------
    @classmethod
    def check(cls, model: Model | None = None, precision: str | None = None,
              device: str | None = None) -> tuple[bool, str]:
        """(ok, reason): can this backend run `model` (or, with None, anything) here?"""
        raise NotImplementedError

    @classmethod
    def default_device(cls) -> str:
        return cls.devices[0]

    @classmethod
    def default_precision(cls, device: str) -> str:
        return "fp16" if device == "cuda" else "fp32"

    def _activate_impl(self) -> None:
        raise NotImplementedError

    def _infer_impl(self, batch: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _deactivate_impl(self) -> None:
        raise NotImplementedError

    # ---- lifecycle -------------------------------------------------------------------------------------
    def activate(self) -> "Backend":
        if self.is_active:
            log.warning("backend %s is already active", self.name)
            return self
        self._activate_impl()
        self.is_active = True
        return self

    def deactivate(self) -> None:
        if not self.is_active:
            return
        try:
            self._deactivate_impl()
        finally:
            self.is_active = False

    def __enter__(self) -> "Backend":
        return self.activate()

    def __exit__(self, *exc: object) -> None:
        self.deactivate()

    def infer(self, batch: np.ndarray) -> np.ndarray:
        """uint8 (N, H, W, 3) BGR, H and W multiples of 4 (>= 16) -> uint8 (N, H, W, 3) BGR, the same shape."""
        if not self.is_active:
            raise CganError(f"backend {self.name} is not active: call activate() or use it as a context manager")
        self.validate(batch)
        out = self._infer_impl(batch)
        if out.shape != batch.shape or out.dtype != np.uint8:
            raise IntegrityError(f"backend {self.name} returned {out.dtype} {out.shape} for input {batch.shape}: "
                                 f"the model does not keep the frame size; re-export it")
        return out

    def validate(self, batch: np.ndarray) -> None:
        if not isinstance(batch, np.ndarray) or batch.dtype != np.uint8:
            got = batch.dtype if isinstance(batch, np.ndarray) else type(batch).__name__
            raise CganError(f"backend {self.name} takes uint8 (N,H,W,3) BGR batches, got {got}")
        if batch.ndim != 4 or batch.shape[3] != 3 or batch.shape[0] < 1:
            raise CganError(f"backend {self.name} takes (N,H,W,3) batches, got shape {batch.shape}")
        h, w = batch.shape[1:3]
        if h % MULTIPLE or w % MULTIPLE or h < MIN_SIDE or w < MIN_SIDE:
            raise CganError(f"height and width must be multiples of {MULTIPLE} and >= {MIN_SIDE}, got {h}x{w}: "
                            f"use Translator.translate, which pads")

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} {self.precision} {self.device} {self.model.direction}>"
