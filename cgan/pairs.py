"""Pair folders and name resolution (no torch).

A *pair* folder is what training produces and what export and runtime consume:

    pair.json         {"format": "cgan.pair", "version": 1, "spec": PairSpec, "files": {"G": rec, "F": rec},
                       "training": {...}, "provenance": {...}}
    G.safetensors     G: X→Y (e.g. summer→winter), official key layout (model.1.weight ... model.26.bias)
    F.safetensors     F: Y→X

where rec = {"path", "sha256", "bytes", "dtype"}. A single-direction pair has only "G" (or only "F").
A pair may also hold ONNX graphs that read its own weights (`cgan-export PAIR --in-pair`, see
cgan.export.pair_graph), listed under "onnx": {"G": graph_rec, ...} with graph_rec = {"path", "sha256",
"bytes", "kind": "onnx", "precision": "fp32", "io": "nchw", "io_dtype": "float32", "weights_sha256"}:
ONNX Runtime then runs the pair folder itself, without torch and without an export folder. Rewriting a
pair's weights drops its graphs (they would read the old tensors' byte offsets), unless the new weight file is
byte for byte the old one (a finished run resumed, `export-pair` again).

An *export* folder (from cgan-export) has a manifest.json with {"format": "cgan.export", ...}.

`resolve(source)` turns what a user typed (`--pair summer2winter`, a folder) into a folder, in this order:
an existing path; then by name: the user's own export ($CGAN_HOME/exports/NAME), the user's own pair
($CGAN_HOME/pairs/NAME), a downloaded official pair ($CGAN_HOME/pretrained/NAME), the pair embedded in the
package (cgan/data/pairs/NAME). A name may also be the reverse direction of a known pair (winter2summer finds
summer2winter and selects F).
"""
from __future__ import annotations

import difflib
import os
import shlex
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from cgan._files import inside, json_bytes, read_json, verify_record, write_json_atomic
from cgan.errors import CganError, IntegrityError
from cgan.spec import EXPORT_FORMAT, FORMAT_VERSION, GENERATORS, PAIR_FORMAT, PairSpec

PAIR_JSON = "pair.json"
#: pair.json's key for the ONNX graphs that read the pair's own weights
GRAPHS = "onnx"
MANIFEST_JSON = "manifest.json"
KNOWN_SHOWN = 12  # pair names an "unknown pair" line lists at most
EMBEDDED_DIR = Path(__file__).resolve().parent / "data" / "pairs"


def graph_name(gen: str) -> str:
    """The file name of a generator's in-pair ONNX graph (cgan.export.pair_graph)."""
    return f"{gen}.fp32.onnx"


def cgan_home() -> Path:
    """User cache and model home: $CGAN_HOME, default ~/.cache/cgan."""
    return Path(os.environ.get("CGAN_HOME") or Path.home() / ".cache" / "cgan").expanduser()


@dataclass
class Pair:
    """A verified pair folder: spec, and which generators it holds."""

    folder: Path
    spec: PairSpec
    files: dict[str, dict[str, Any]]
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def generators(self) -> tuple[str, ...]:
        return tuple(g for g in GENERATORS if g in self.files)

    def weights_path(self, gen: str) -> Path:
        if gen not in self.files:
            have = ", ".join(f"{g} ({self.spec.direction_name(g)})" for g in self.generators)
            raise CganError(f"pair {self.folder} has no {gen} ({self.spec.direction_name(gen)}); it holds {have}")
        return inside(self.folder, self.files[gen]["path"], PAIR_JSON)

    @property
    def graphs(self) -> dict[str, dict[str, Any]]:
        """{generator: record} of the in-pair ONNX graphs pair.json lists (may be empty), unchecked: `graph()`
        checks one before it is used. A broken graph entry never stops what does not use it (torch, exports)."""
        graphs = self.meta.get(GRAPHS)
        if not isinstance(graphs, dict):
            return {}
        return {g: r for g, r in graphs.items() if g in self.files and isinstance(r, dict)}

    def graph(self, gen: str, verify: bool = True) -> dict[str, Any]:
        """The in-pair graph record of `gen`, checked: what cgan writes (FP32, NCHW float32 I/O), made for the
        weights pair.json lists, inside the folder and, with verify, matching its size and sha256."""
        rec = self.graphs.get(gen)
        fix = f"re-create it with `cgan-export {shlex.quote(str(self.folder))} --in-pair`"
        if rec is None:
            raise IntegrityError(f"{self.folder / PAIR_JSON} lists no ONNX graph for {gen}; {fix}")
        want = {"kind": "onnx", "precision": "fp32", "io": "nchw", "io_dtype": "float32"}
        if any(rec.get(k) != v for k, v in want.items()) or not isinstance(rec.get("path"), str):
            raise IntegrityError(f"{self.folder / PAIR_JSON} has a malformed graph entry for {gen}; {fix}")
        if rec.get("weights_sha256") != self.files[gen].get("sha256"):
            raise IntegrityError(f"{self.folder / PAIR_JSON}: the ONNX graph of {gen} was made for other weights "
                                 f"than {self.files[gen].get('path')}; {fix}")
        try:
            _check_record(self.folder, rec, verify)
        except IntegrityError as e:  # its own advice ("re-create the folder") gives way to how to re-create it
            said = str(e)
            for generic in ("; re-create the folder", "; re-create it"):
                said = said.removesuffix(generic)
            raise IntegrityError(f"{said}; {fix}") from None
        return rec

    def records(self) -> list[dict[str, Any]]:
        """Every file record pair.json lists: the weights, then the graphs."""
        return list(self.files.values()) + list(self.graphs.values())

    def load_numpy(self, gen: str) -> dict[str, Any]:
        """The generator's weights as numpy arrays (official key names), without torch."""
        from safetensors.numpy import load_file

        return read_weights(load_file, self.weights_path(gen))


def read_weights(load_file: Callable[[str], dict[str, Any]], path: Path) -> dict[str, Any]:
    """A pair's weight file read with a safetensors `load_file` (numpy's or torch's): a file that does not parse
    is an IntegrityError (re-create the pair), one this process cannot read (permissions, memory) a CganError
    that says so instead."""
    try:
        return load_file(str(path))
    except (PermissionError, IsADirectoryError, MemoryError) as e:  # not a damaged file: no "re-create the pair"
        raise CganError(f"{path} cannot be read ({getattr(e, 'strerror', None) or type(e).__name__}): fix its "
                        f"permissions or free memory") from None
    except Exception as e:  # safetensors raises its own error types for bad headers
        raise IntegrityError(f"{path} is not a readable safetensors file ({e}); re-create the pair") from None


def read_spec(meta: dict[str, Any], path: Path, fix: str) -> PairSpec:
    """The PairSpec a pair.json or an export manifest holds; a malformed one is a damaged file (IntegrityError,
    exit 3, naming it), as the rest of a damaged manifest is ("spec": 5 was a user mistake, exit 2)."""
    if meta.get("spec") is None:
        raise IntegrityError(f"{path} has no spec (the generator's architecture and the domains' names); {fix}")
    try:
        return PairSpec.from_dict(meta["spec"])
    except CganError as e:  # (from_dict's own errors are all plain CganErrors)
        raise IntegrityError(f"{path}: {e}; {fix}") from None


def load_pair(folder: str | os.PathLike, verify: bool = True) -> Pair:
    """Read and check a pair folder's pair.json (and, with verify, every weight file's size and sha256; the
    in-pair graphs are checked by `Pair.graph` when used)."""
    folder = Path(folder)
    meta = read_json(folder / PAIR_JSON, "pair.json")
    if not isinstance(meta, dict) or meta.get("format") != PAIR_FORMAT:
        raise IntegrityError(f"{folder / PAIR_JSON} is not a cgan pair manifest (format != {PAIR_FORMAT!r})")
    if meta.get("version") != FORMAT_VERSION:
        raise IntegrityError(f"{folder / PAIR_JSON} has version {meta.get('version')!r}; this cgan reads "
                             f"version {FORMAT_VERSION!r}: upgrade cgan or re-create the pair")
    spec = read_spec(meta, folder / PAIR_JSON, "re-create the pair")
    files = meta.get("files")
    if not isinstance(files, dict) or not files or set(files) - set(GENERATORS):
        raise IntegrityError(f"{folder / PAIR_JSON} must list files for G and/or F, got {files!r}; re-create the "
                             f"pair")
    for gen, rec in files.items():
        if not isinstance(rec, dict):
            raise IntegrityError(f"{folder / PAIR_JSON} has a malformed file entry for {gen}: {rec!r}; re-create the pair")
        _check_record(folder, rec, verify)
    return Pair(folder, spec, files, meta)  # in-pair graphs are checked when used (Pair.graph)


def _check_record(folder: Path, rec: dict[str, Any], verify: bool) -> None:
    if verify:
        verify_record(folder, rec, f"{folder / PAIR_JSON}")
    else:
        inside(folder, rec.get("path", ""), PAIR_JSON)


def write_pair_json(folder: Path, spec: PairSpec, weight_records: dict[str, dict[str, Any]], dtype: str,
                    training: dict[str, Any] | None = None, provenance: dict[str, Any] | None = None,
                    graphs: dict[str, dict[str, Any]] | None = None, to: Path | None = None) -> Path:
    """Write pair.json (atomically) describing weight files in `folder` by their `file_record`s, and `graphs`:
    in-pair graph records still valid for them (new weights make a pair's old graphs wrong; cgan.export.pair_graph
    adds them again). With `to`, write it there instead (a temp file of an atomic_group that renames it with the
    weight files it lists)."""
    files = {gen: {**rec, "dtype": dtype} for gen, rec in weight_records.items()}
    meta = {
        "format": PAIR_FORMAT,
        "version": FORMAT_VERSION,
        "name": spec.name,
        "spec": spec.to_dict(),
        "files": files,
        "training": training or {},
        "provenance": provenance or {},
    }
    if graphs:
        meta["onnx"] = graphs
    if to is not None:
        to.write_bytes(json_bytes(meta))
        return to
    write_json_atomic(folder / PAIR_JSON, meta)
    return folder / PAIR_JSON


# ---- name resolution -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Resolved:
    kind: str          # "pair" or "export"
    folder: Path
    direction: str | None = None  # "G"/"F" when the name itself chose one (e.g. winter2summer)
    origin: str = "path"          # path | user-export | user-pair | pretrained | embedded


#: how long a reader waits for an export folder whose previous export is being swapped out (renames: milliseconds)
SWAP_WAIT_S = 2.0


def _kind(folder: Path, waited: bool = False) -> str | None:
    if (folder / MANIFEST_JSON).is_file():
        meta = read_json(folder / MANIFEST_JSON, "manifest.json")
        if isinstance(meta, dict) and meta.get("format") == EXPORT_FORMAT:
            return "export"
    if (folder / PAIR_JSON).is_file():
        return "pair"
    # no manifest, and the previous one set aside in a staging folder: an export is swapping its files in (a
    # reader found no export there and fell back to another pair of that name), or was killed doing so
    aside = next(iter(folder.glob(f".export-staging-*/.previous/{MANIFEST_JSON}")), None)
    if aside is None:
        return None
    from cgan._locks import folder_locked

    if waited or not folder_locked(folder):
        raise CganError(f"{folder} holds no manifest.json: an export into it was stopped while it replaced the "
                        f"previous one (set aside in {aside.parent.parent.name}); run cgan-export into it again")
    deadline = time.monotonic() + SWAP_WAIT_S
    while time.monotonic() < deadline and not (folder / MANIFEST_JSON).is_file():
        time.sleep(0.02)
    return _kind(folder, waited=True)


def search_roots() -> list[tuple[str, Path]]:
    home = cgan_home()
    return [("user-export", home / "exports"), ("user-pair", home / "pairs"),
            ("pretrained", home / "pretrained"), ("embedded", EMBEDDED_DIR)]


def known_names() -> list[str]:
    names = set()
    for _, root in search_roots():
        if root.is_dir():
            names.update(p.name for p in root.iterdir() if p.is_dir() and _kind_or_none(p))
    return sorted(names)


def _kind_or_none(folder: Path) -> str | None:
    """_kind, with a damaged manifest counting as nothing (listing names must not fail on one broken folder)."""
    try:
        return _kind(folder, waited=True)  # (listing does not wait for an export's swap)
    except CganError:
        return None


def _f_name(folder: Path, kind: str) -> str | None:
    """The direction name of F (Y2X) in the pair or export `folder`, by its domains; None when unreadable."""
    try:
        meta = read_json(folder / (PAIR_JSON if kind == "pair" else MANIFEST_JSON), kind)
        domains = meta["spec"]["domains"]
        return f"{domains['Y']}2{domains['X']}"
    except (CganError, KeyError, TypeError):
        return None


def _valid_name(name: str) -> bool:
    return bool(name) and all(c.isalnum() or c in "_-" for c in name)


def resolve(source: str | os.PathLike, prefer_pairs: bool = False) -> Resolved:
    """Turn a pair name or folder into a folder (see module docstring for the order). `prefer_pairs` (the
    exporter's view) looks at the user's exports last: an export is built from a pair, so the pair by that name
    is the source, and an export's own pair/ copy only when no pair by that name exists."""
    try:
        s = os.fspath(source)
    except TypeError:
        s = None
    if not isinstance(s, str) or not s.strip():
        raise CganError(f"a pair must be given as a name or a folder path (str or os.PathLike), got {source!r}")
    try:
        return _resolve(s, prefer_pairs)
    except OSError as e:  # a name or path the file system refuses to look up (too long, no permission)
        raise CganError(f"cannot look up the pair {s[:120]!r}: {e.strerror or e}") from None


def official_generator_files(folder: Path) -> tuple[Path | None, Path | None]:
    """The official repository's generator checkpoints in its checkpoints/NAME `folder`: (G_A, G_B), the
    latest_net_* ones first, else the last epoch's (by number: 200 after 15); None where there is none. A
    pretrained model's folder (checkpoints/NAME_pretrained/latest_net_G.pth, from its download script) holds
    one generator, the direction NAME says: it comes as G_A."""
    def order(f: Path) -> tuple[bool, int, str]:
        epoch = f.name.split("_net_", 1)[0]
        return (not f.name.startswith("latest"), -int(epoch) if epoch.isdigit() else 0, f.name)

    found = sorted(folder.glob("*_net_G_[AB].pth"), key=order)
    a = next((f for f in found if f.name.endswith("G_A.pth")), None)
    b = next((f for f in found if f.name.endswith("G_B.pth")), None)
    if a is None and b is None:
        a = next(iter(sorted(folder.glob("*_net_G.pth"), key=order)), None)
    return a, b


def _is_run(p: Path) -> bool:
    """A finished cgan-train run folder: its config and, in RUN/pair, the pair it made."""
    return (p / "pair" / PAIR_JSON).is_file() and (p / "config.json").is_file()


def _training_run(p: Path) -> bool:
    """A cgan-train run folder with at least one checkpoint (finished or not)."""
    return (p / "config.json").is_file() and any((p / "checkpoints").glob("step-*.pt"))


def _resolve(s: str, prefer_pairs: bool) -> Resolved:
    p = Path(s).expanduser()
    looks_like_path = os.sep in s or s.startswith((".", "~")) or (os.altsep is not None and os.altsep in s)
    # a bare name that also names something in the working directory (a data set folder called summer2winter)
    # is a path only if that is a pair or export; otherwise the name is looked up as usual
    # (a finished training run counts: `cgan-export summer2winter` beside a run of that name exported the embedded
    # pair instead, without a word)
    if looks_like_path or (p.exists() and (not _valid_name(s) or (p.is_dir() and (_kind(p) or _is_run(p))))):
        if not p.is_dir():
            run = p.resolve().parent.parent  # (resolved: `step-….pt` typed inside RUN/checkpoints)
            if p.is_file() and p.resolve().parent.name == "checkpoints" and _training_run(run):
                own = f", or pass {run} for the run's own pair" if _is_run(run) else ""
                raise CganError(f"{p} is a cgan-train checkpoint, not a pair: write its pair (`cgan-train export-pair "
                                f"{shlex.quote(str(run))} --checkpoint {shlex.quote(str(p))} --out PAIR_FOLDER`) and "
                                f"pass PAIR_FOLDER{own}")
            if p.is_file() and p.suffix.lower() in (".pth", ".pt"):  # an official checkpoint, given as it is
                lone_b = p.name.endswith("G_B.pth")  # Y→X: imported as G it would run the wrong way
                also = ("--direction F`, or with the G_A file first for both directions)" if lone_b else
                        "`, add the G_B file for both directions)")
                raise CganError(f"{p} is a PyTorch checkpoint, not a cgan pair: import it first (`cgan-train "
                                f"import-official {p} --out PAIR_FOLDER{also} and pass PAIR_FOLDER")
            what = "is not a folder" if p.exists() else "does not exist"
            raise CganError(f"{p} {what}: pass a pair folder (pair.json), an export folder (manifest.json) or a "
                            f"pair name")
        kind = _kind(p)
        if kind is None:
            if _is_run(p):  # a finished training run
                return Resolved("pair", p / "pair", None, "path")  # (cgan-export runs/s2w: its pair, RUN/pair)
            if (p / "pair" / PAIR_JSON).is_file():  # a folder holding a pair, not a run
                raise CganError(f"{p} holds neither pair.json nor an export manifest.json, but {p / 'pair'} is a "
                                f"pair (a training run's result): pass {p / 'pair'}")
            a, b = official_generator_files(p)
            if a or b:  # the official repository's checkpoints/NAME folder
                files = " ".join(str(f) for f in (a, b) if f is not None) + ("" if a else " --direction F")
                raise CganError(f"{p} is an official checkpoints folder, not a cgan pair: import it first "
                                f"(`cgan-train import-official {files} --out PAIR_FOLDER`) and pass PAIR_FOLDER")
            if _training_run(p):  # stopped before its end (a failed image, kill -9, a full disk): no pair yet
                raise CganError(f"{p} is a training run that has not written its pair yet: write it from the latest "
                                f"checkpoint (`cgan-train export-pair {p}`), or train on (`cgan-train --name "
                                f"{shlex.quote(p.name)} --out {shlex.quote(str(p.parent))} --resume`)")
            raise CganError(f"{p} holds neither pair.json nor an export manifest.json: not a cgan pair or export")
        return Resolved(kind, p, None, "path")
    if not _valid_name(s):
        raise CganError(f"{s!r} is not a valid pair name (letters, digits, '-', '_')")
    candidates = [(s, None)]
    for i, c in enumerate(s):  # winter2summer is summer2winter's F; domains may hold a 2 (a2b2c: a->b2c or a2b->c)
        if c == "2" and 0 < i < len(s) - 1 and (f"{s[i + 1:]}2{s[:i]}", "F") not in candidates:
            candidates.append((f"{s[i + 1:]}2{s[:i]}", "F"))
    roots = search_roots()
    if prefer_pairs:
        roots = [r for r in roots if r[0] != "user-export"] + [r for r in roots if r[0] == "user-export"]
    for name, direction in candidates:
        for origin, root in roots:
            folder = root / name
            kind = _kind(folder) if folder.is_dir() else None
            # names with more than one 2 split more than one way: its F must then translate what was asked for
            if kind and (direction is None or (s.count("2") == 1 and name.count("2") == 1)
                         or _f_name(folder, kind) == s):
                return Resolved(kind, folder, direction, origin)
    known = known_names()
    near = difflib.get_close_matches(s, known, n=1, cutoff=0.75)
    valid = ", ".join(known[:KNOWN_SHOWN]) + (f" and {len(known) - KNOWN_SHOWN} more" if len(known) > KNOWN_SHOWN
                                              else "") if known else "none installed"
    raise CganError(f"unknown pair {s!r}" + (f" (did you mean {near[0]!r}?)" if near else "")
                    + f": known here: {valid}; or pass a pair/export folder, or fetch an official one with "
                      f"`cgan-export --pretrained NAME`")
