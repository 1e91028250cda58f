"""Generator weights in and out: pair folders (safetensors) and the official repo's .pth checkpoints.

Nothing here unpickles arbitrary objects: .pth files are read with `torch.load(weights_only=True)` and pairs
are safetensors. `load_generator` rebuilds the network from the spec stored in the pair, never from flags.
"""
from __future__ import annotations

import errno
import json
import logging
import os
import pickle
import struct
import warnings
from pathlib import Path
from typing import Any, Callable

import torch

from cgan._files import atomic_group, ensure_writable_dir, file_record, read_json, remove_stale_temps, sha256_file
from cgan._locks import folder_lock
from cgan.errors import CganError, IntegrityError
from cgan.pairs import MANIFEST_JSON, PAIR_JSON, Pair, graph_name, load_pair, read_weights, write_pair_json
from cgan.spec import GeneratorSpec, PairSpec
from cgan.trainer.networks import ResnetGenerator, build_generator, clean_state_dict, infer_spec

log = logging.getLogger(__name__)

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def save_pair(folder: str | os.PathLike, spec: PairSpec, states: dict[str, dict[str, torch.Tensor]],
              dtype: str = "float32", training: dict[str, Any] | None = None,
              provenance: dict[str, Any] | None = None) -> Path:
    """Write G.safetensors / F.safetensors (those given in `states`) and pair.json into `folder`.

    Each file is written to a temp name and renamed; pair.json comes last, so a reader never sees a
    pair.json whose files are incomplete (and load_pair checks their hashes anyway).
    """
    if dtype not in DTYPES:
        raise CganError(f"unknown weight dtype {dtype!r}: use one of {sorted(DTYPES)}")
    folder = ensure_writable_dir(folder, "pair folder")
    # two writers of one folder (two imports, or `cgan-export --in-pair` adding graphs) would leave pair.json
    # listing the other's files: one at a time (best effort: a machine without locks writes unguarded)
    with folder_lock(folder, f"another cgan process is writing into {folder}; waiting for it to finish",
                     best_effort=True):
        old_graphs = _listed_graphs(folder)  # before anything is replaced
        # what a writer killed in here left (a SIGKILL mid-write: a whole 45 MB .G.safetensors.*.tmp stayed for
        # good); under the lock no other writer's temp files are being written
        remove_stale_temps([t for name in ("G.safetensors", "F.safetensors", PAIR_JSON)
                            for t in folder.glob(f".{name}.*.tmp")], 0, "a pair write that was stopped", log)
        # the weight files and the pair.json listing them are written in full (and hashed) under temp names, then
        # renamed together, pair.json last: a full disk, a bad tensor or a Ctrl-C meanwhile leaves the old pair
        # as it was (renamed before hashing, an interrupt left new weights beside the old pair.json: unloadable)
        with atomic_group() as add:
            records = {}
            for gen, state in states.items():
                state = clean_state_dict(state)
                tensors = {k: v.detach().to("cpu", DTYPES[dtype]).contiguous() for k, v in state.items()}
                path = folder / f"{gen}.safetensors"
                tmp = add(path)
                save_safetensors(tensors, tmp, {"generator": gen, "direction": spec.direction_name(gen),
                                                "spec": _compact(spec)})
                records[gen] = file_record(tmp, folder, final=path)  # each file hashed once
            graphs = _graphs_still_valid(folder, old_graphs, records)
            write_pair_json(folder, spec, records, dtype, training, provenance, graphs, to=add(folder / PAIR_JSON))
        for stale in {"G", "F"} - set(states):  # a single-direction pair must not keep an old file around
            (folder / f"{stale}.safetensors").unlink(missing_ok=True)
        for gen in ("G", "F"):  # in-pair graphs read the old weights' byte offsets; pair.json no longer lists them
            if gen not in graphs:
                (folder / graph_name(gen)).unlink(missing_ok=True)
    return folder


def _listed_graphs(folder: Path) -> dict[str, dict[str, Any]]:
    """The in-pair graph records of the pair.json in `folder` ({} when there is none, or none readable)."""
    try:
        meta = read_json(folder / PAIR_JSON, "pair.json")
    except (CganError, OSError):  # none, unreadable, not JSON, too large or too deep: no graphs to keep
        return {}
    graphs = meta.get("onnx") if isinstance(meta, dict) else None
    return {g: r for g, r in graphs.items() if isinstance(r, dict)} if isinstance(graphs, dict) else {}


def _graphs_still_valid(folder: Path, graphs: dict[str, dict[str, Any]],
                        weights: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The graphs of `graphs` whose weight file was written again byte for byte (its record in `weights` has the
    sha256 of the weights they read) and whose own file is still the one listed: they stay valid and listed."""
    kept = {}
    for gen, rec in graphs.items():
        graph = folder / graph_name(gen)
        if gen in weights and graph.is_file() and rec.get("weights_sha256") == weights[gen]["sha256"] \
                and rec.get("sha256") == sha256_file(graph):
            kept[gen] = rec
    return kept


def save_safetensors(tensors: dict[str, torch.Tensor], path: Path, metadata: dict[str, str]) -> None:
    """safetensors.torch.save_file, byte for byte the same for the same tensors: safetensors writes its metadata
    from a hash map, in a random order per process, so the same weights saved twice had other sha256s (and a
    re-exported pair looked changed). The header is rewritten with the metadata keys sorted, same length."""
    from safetensors.torch import save

    blob = save(tensors, metadata=metadata)
    n = struct.unpack("<Q", blob[:8])[0]
    header = json.loads(blob[8:8 + n])
    meta = header.pop("__metadata__", None)
    ordered = {"__metadata__": dict(sorted(meta.items()))} if meta else {}
    ordered.update(header)  # the tensors keep safetensors' own, deterministic order
    text = json.dumps(ordered, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    if len(text) <= n and json.loads(text) == json.loads(blob[8:8 + n]):
        blob = blob[:8] + text + b" " * (n - len(text)) + blob[8 + n:]
    path.write_bytes(blob)


def check_pair_out(out: str | os.PathLike, rewrites: Callable[[dict[str, Any]], bool], command: str) -> None:
    """Refuse an --out that a new pair would damage: an export folder (its manifest.json would sit beside a
    pair.json that hides it), the pair copy inside an export, a training run's folder, or one holding another
    pair (its weights would be replaced). A pair for which `rewrites(provenance)` is true is the same thing
    written again (a re-export of the same run, a re-import of the same files) and may be replaced."""
    from cgan._files import read_json

    out = Path(out)
    if (out / MANIFEST_JSON).is_file():
        raise CganError(f"--out {out} is an export folder ({MANIFEST_JSON}); a pair written there would hide the "
                        f"export: choose a new folder")
    if out.name == "pair" and (out.parent / MANIFEST_JSON).is_file():
        raise CganError(f"--out {out} is the pair copy inside the export {out.parent}; replacing it would leave the "
                        f"export inconsistent: choose a new folder")
    if (out / "checkpoints").is_dir() or (out / "config.json").is_file() and (out / "log.csv").is_file():
        # a training run's folder: its pair is RUN/pair; one at its top would change what `--init-from RUN` and
        # `cgan-video --pair RUN` find
        raise CganError(f"--out {out} is a cgan-train run folder (its pair is {out / 'pair'}): choose a new folder")
    if (out / PAIR_JSON).is_file():
        try:
            meta = read_json(out / PAIR_JSON, PAIR_JSON)
        except CganError:
            meta = None
        prov = meta.get("provenance") if isinstance(meta, dict) else None
        if not (isinstance(prov, dict) and rewrites(prov)):
            raise CganError(f"--out {out} already holds another pair ({PAIR_JSON}), which {command} would replace: "
                            f"choose a new folder")


def _compact(spec: PairSpec) -> str:
    import json

    return json.dumps(spec.to_dict(), sort_keys=True, separators=(",", ":"))


def load_state(pair: Pair, gen: str) -> dict[str, torch.Tensor]:
    """Generator `gen`'s tensors as stored, checked against the weight type pair.json records for them (what
    reports and exports say of the pair: "these weights are float32" of FP16 ones measured the wrong thing)."""
    from safetensors.torch import load_file

    state = read_weights(load_file, pair.weights_path(gen))
    said = pair.files.get(gen, {}).get("dtype")
    held = sorted({str(v.dtype).removeprefix("torch.") for v in state.values() if v.is_floating_point()})
    if said is not None and held and held != [said]:
        raise IntegrityError(f"{pair.weights_path(gen)} holds {', '.join(held)} weights, but pair.json says {said}; "
                             f"re-create the pair")
    return state


def load_generator(source: str | os.PathLike | Pair, gen: str = "G", device: str | torch.device = "cpu",
                   dtype: torch.dtype = torch.float32) -> ResnetGenerator:
    """Rebuild generator `gen` ('G' or 'F') of a pair from its stored spec and load its weights strictly."""
    pair = source if isinstance(source, Pair) else load_pair(source)
    state = load_state(pair, gen)
    # Compare sizes before building: a forged pair.json spec (e.g. 64 blocks, ngf 1024 = 19.5G parameters)
    # must not make us allocate the network it describes.
    have, want = sum(v.numel() for v in state.values()), pair.spec.generator.parameter_count()
    if have != want:
        raise IntegrityError(f"{pair.weights_path(gen)} does not match the spec in pair.json ({have} weights, the "
                             f"spec needs {want}); re-create the pair")
    net = build_generator(pair.spec.generator, init=False)
    state = {k: v.float() for k, v in state.items()}
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as e:
        first = str(e).splitlines()[0]
        raise IntegrityError(f"{pair.weights_path(gen)} does not match the spec in pair.json ({first})") from None
    return net.to(device=device, dtype=dtype).eval()


# ---- the official repository's checkpoints --------------------------------------------------------------
#: the first torch whose `torch.load(weights_only=True)` is not known to run code from a crafted file
#: (CVE-2025-32434: torch <= 2.5.1 could be made to execute code through it)
SAFE_TORCH_LOAD = (2, 6)


def check_safe_torch_load(version: str | None = None) -> None:
    """Refuse to unpickle anything with a torch whose weights_only loader is known to be unsafe."""
    from cgan._versions import version_tuple

    have = version if version is not None else torch.__version__
    if version_tuple(have)[:2] < SAFE_TORCH_LOAD:
        need = ".".join(map(str, SAFE_TORCH_LOAD))
        raise CganError(f"torch {have} can be made to run code while loading a .pth file (CVE-2025-32434), so cgan "
                        f"does not load .pth files with it: pip install -U 'torch>={need}'")


def load_plain(path: str | os.PathLike, what: str, advice: str,
               damaged_advice: str = "copy or download it again") -> Any:
    """`torch.load(weights_only=True)`: tensors and plain containers only, never pickled code.

    Missing file -> CganError; anything unreadable or refused -> IntegrityError "PATH is not a loadable WHAT
    (reason); ADVICE" on one line, DAMAGED_ADVICE when a zip member fails its checksum.
    """
    p = Path(path)
    if not p.is_file():
        raise CganError(f"{what} not found: {p}")
    check_safe_torch_load()
    if p.stat().st_size == 0:  # (torch said "EOFError ''")
        raise IntegrityError(f"{p} is not a loadable {what} (the file is empty); {damaged_advice}")
    damaged = _zip_problem(p)
    if damaged:
        raise IntegrityError(f"{p} is not a loadable {what} ({damaged}); {damaged_advice}")
    try:
        with warnings.catch_warnings():  # (a plain pickle's "Detected pickle protocol 4 ..." came before the error)
            warnings.simplefilter("ignore", UserWarning)
            return torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:
        text = str(e)
        first = _first_sentence(text)
        if "Unsupported global" in text:
            reason = "it holds pickled Python objects, which cgan never loads"
        elif "WeightsUnpickler error" in text:  # bytes that are not a pickle at all (random data, another format)
            detail = " ".join(text.split("WeightsUnpickler error:", 1)[1].split()[:8]).split(" Check the")[0]
            reason = f"not a PyTorch file: {detail or 'unreadable pickle'}"
        elif isinstance(e, OSError) and e.errno == errno.EINVAL or "central directory" in text:
            reason = "cut short: the file ends before its own index"  # (a copy or write stopped part way)
        elif "weights_only" in text:
            reason = "it holds pickled Python objects, which cgan never loads"
        elif isinstance(e, (pickle.UnpicklingError, KeyError, IndexError, EOFError, ValueError, struct.error)) \
                or len(first) < 8:  # bytes that are no pickle: a text file gives KeyError '101', others IndexError
            reason = f"not a PyTorch file: {type(e).__name__} {first!r} while reading it"
        else:
            reason = first
        raise IntegrityError(f"{p} is not a loadable {what} ({reason}); {advice}") from None


def _zip_problem(p: Path) -> str | None:
    """What is wrong with a zip-format .pth (torch >= 1.6) before torch reads it, else None (also for the legacy
    format and zips too broken to open: torch.load says what is wrong with those): a zip that no torch.save wrote
    (an archive of photos, another framework's model: torch said "[enforce fail at inline_container.cc:180]";
    torch's archives hold ARCHIVE/data.pkl), or a member whose data fails its CRC (torch.load does not check
    them: 5000 flipped bytes loaded as weights off by 1e5)."""
    import zipfile

    try:
        with zipfile.ZipFile(p) as z:
            if not any(n == "data.pkl" or n.endswith("/data.pkl") for n in z.namelist()):
                return "a zip archive, but not a PyTorch file: it has no data.pkl"
            damaged = z.testzip()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError):
        return None
    return f"damaged: {damaged} fails its checksum" if damaged else None


def _first_sentence(text: str, most: int = 160) -> str:
    """The first line of an error, cut at a sentence end (or a word) within `most` characters, not mid-word
    ("... If you are seeing this error, there is a high")."""
    first = (text.strip().splitlines() or [""])[0]
    if len(first) <= most:
        return first
    cut = first[:most]
    end = max(cut.rfind(". "), cut.rfind("; "))
    return cut[:end + 1] if end >= 40 else cut.rsplit(" ", 1)[0] + " ..."


def read_official(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Load an official `*_net_G_A.pth` / pretrained `*.pth` without executing pickled code."""
    p = Path(path)
    if p.is_dir():
        from cgan.pairs import official_generator_files

        found = next((f for f in official_generator_files(p) if f is not None), None)
        hint = (f"an official checkpoints folder: give its generator files, e.g. {found}" if found else
                "a folder: give the generator's .pth file (the official latest_net_G_A.pth / latest_net_G_B.pth)")
        raise CganError(f"{p} is {hint}")
    obj = load_plain(p, "PyTorch state_dict", "cgan only loads plain tensors, never pickled code")
    from cgan.trainer.checkpoint import FORMAT as CHECKPOINT_FORMAT  # (it imports this module)

    if isinstance(obj, dict) and obj.get("format") == CHECKPOINT_FORMAT:
        run = p.parent.parent if p.parent.name == "checkpoints" else "RUN_DIR"
        raise CganError(f"{p} is a cgan training checkpoint, not an official one: write its pair with "
                        f"`cgan-train export-pair {run} --checkpoint {p} --out DIR`")
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise IntegrityError(f"{p} does not hold a generator state_dict (a dict of tensors)")
    if not all(isinstance(k, str) for k in obj):
        raise IntegrityError(f"{p} does not hold a generator state_dict (its keys are not all names)")
    return clean_state_dict(obj)


def _check_dense_float(state: dict[str, torch.Tensor], source: str) -> None:
    """Refuse tensors a generator's weights never are, before anything reads their data or storage: sparse or
    other non-strided layouts (whose storage cannot even be asked for), quantized, nested, and non-float ones."""
    for k, v in state.items():
        if not isinstance(v, torch.Tensor):
            raise IntegrityError(f"{source} is not an official ResnetGenerator checkpoint ({k!r} is not a tensor)")
        if v.layout != torch.strided or v.is_nested:
            why = f"{k} is a {str(v.layout).replace('torch.', '')} tensor, not a dense one"
        elif v.is_quantized:
            why = f"{k} is a quantized tensor ({str(v.dtype).replace('torch.', '')})"
        elif not v.is_floating_point():
            why = f"{k} holds {str(v.dtype).replace('torch.', '')} values, not floating point weights"
        else:
            continue
        raise IntegrityError(f"{source} is not an official ResnetGenerator checkpoint ({why})")


DIVERGED = "the run that saved it diverged; use a checkpoint from before that"


def official_to_generator(state: dict[str, torch.Tensor], source: str = "checkpoint",
                          check: Callable[[GeneratorSpec], None] | None = None,
                          not_finite_advice: str = DIVERGED) -> tuple[GeneratorSpec, dict]:
    """Infer the spec from an official state_dict and check it loads strictly into our generator. `check(spec)`
    may refuse the inferred architecture before the network is built (a download that must be the official
    ResNet-9 ngf 64). `not_finite_advice`: what to say of NaN or infinite weights."""
    _check_dense_float(state, source)
    try:
        spec = infer_spec(state)
    except CganError as e:  # (it named no file: with two files given, which one? a spec out of range included)
        what = " (it looks like a discriminator: latest_net_D_*.pth; give the G_A/G_B files)" if \
            any(k.startswith("model.0.") for k in state) and "model.1.weight" not in state else ""
        raise IntegrityError(f"{source}: {e}{what}") from None
    # Check sizes before building: a small hostile file can declare a huge network (64 blocks, ngf 1024 = ~78 GB)
    # by its key layout alone, by stride-0 views whose shapes are large but whose stored data is one number, or
    # by many tensors viewing one stored block (a 2.4 MB file built a 1.2 GB network): the tensors' bytes must
    # fit in the distinct data the file stores.
    have, want = sum(v.numel() for v in state.values()), spec.parameter_count()
    views = [k for k, v in state.items() if v.untyped_storage().nbytes() < v.numel() * v.element_size()]
    stored = {v.untyped_storage().data_ptr(): v.untyped_storage().nbytes() for v in state.values()}
    shared = sum(v.numel() * v.element_size() for v in state.values()) > sum(stored.values())
    if have != want or views or shared:
        why = f"tensors larger than their stored data ({views[0]}, ...)" if views else \
            "tensors that share their stored data" if shared else \
            "batch norm (--norm batch): cgan's generator, as the paper's, uses instance norm" \
            if "model.2.weight" in state else \
            "no convolution biases (--norm none): cgan's generator, as the paper's, uses instance norm" \
            if "model.1.bias" not in state else \
            f"{have} weights, a {spec.blocks}-block ngf-{spec.ngf} generator has {want}"
        raise IntegrityError(f"{source} is not an official ResnetGenerator checkpoint ({why})")
    bad = next((k for k, v in state.items() if not bool(torch.isfinite(v).all())), None)
    if bad is not None:  # (a diverged run's weights: a pair of them only translates to black, or trains to NaN)
        raise IntegrityError(f"{source} holds NaN or infinite weights ({bad}, ...): {not_finite_advice}")
    if check is not None:
        check(spec)
    net = build_generator(spec, init=False)
    try:
        net.load_state_dict({k: v.float() for k, v in state.items()}, strict=True)
    except RuntimeError as e:
        raise IntegrityError(f"{source} is not an official ResnetGenerator checkpoint "
                             f"({str(e).splitlines()[0]})") from None
    return spec, net.state_dict()


def import_official(g_path: str | os.PathLike | None, f_path: str | os.PathLike | None, out: str | os.PathLike,
                    domain_x: str = "X", domain_y: str = "Y", dtype: str = "float32",
                    provenance: dict[str, Any] | None = None) -> Path:
    """Turn official G_A (X→Y) and/or G_B (Y→X) checkpoints into a cgan pair folder."""
    if g_path is None and f_path is None:
        raise CganError("give at least one official checkpoint (G_A and/or G_B)")
    states, specs, sources = {}, {}, {}
    for gen, path in (("G", g_path), ("F", f_path)):
        if path is None:
            continue
        spec, state = official_to_generator(read_official(path), str(path))
        states[gen], specs[gen] = state, spec
        sources[gen] = {"file": Path(path).name, "sha256": sha256_file(path)}
    if len(sources) == 2 and (sources["G"]["sha256"] == sources["F"]["sha256"] or _same_weights(states)):
        raise CganError(f"{g_path} and {f_path} hold the same generator: give G_A (X→Y, e.g. latest_net_G_A.pth) "
                        f"and G_B (Y→X, latest_net_G_B.pth), or one of them with --direction")
    _warn_if_reversed(g_path, f_path)
    check_pair_out(out, lambda prov: _same_import(prov, sources), "import-official")
    if len(specs) == 2 and specs["G"] != specs["F"]:
        differ = ", ".join(f"{k} {getattr(specs['G'], k)} vs {getattr(specs['F'], k)}"
                           for k in ("blocks", "ngf", "dropout", "in_channels", "out_channels", "norm", "padding")
                           if getattr(specs["G"], k) != getattr(specs["F"], k))
        raise IntegrityError(f"the two checkpoints have different architectures ({differ}): a pair holds two "
                             f"generators of one architecture; import each alone (--direction G, then F, into "
                             f"two --out folders)")
    spec = PairSpec(next(iter(specs.values())), domain_x, domain_y)
    prov = {"source": "official-checkpoint", "files": sources}
    prov.update(provenance or {})
    return save_pair(out, spec, states, dtype, training={}, provenance=prov)


def _same_weights(states: dict[str, dict[str, torch.Tensor]]) -> bool:
    """G and F hold the same weights (two copies of one generator: re-saved, or another dtype's copy)."""
    g, f = states["G"], states["F"]
    return g.keys() == f.keys() and all(g[k].shape == f[k].shape and torch.equal(g[k], f[k]) for k in g)


def _warn_if_reversed(g_path: str | os.PathLike | None, f_path: str | os.PathLike | None) -> None:
    """The official names say which way a generator goes (G_A: A→B, G_B: B→A): a G_B imported as G (or a G_A as
    F) makes a pair that runs the other way round. That can be meant (a winter→summer pair, with its domains
    given so), so it is said, not refused."""
    wrong = [f"{Path(path).name} (an official {other}) as {gen}, {goes}"
             for gen, path, other, goes in (("G", g_path, "G_B", "X→Y"), ("F", f_path, "G_A", "Y→X"))
             if path is not None and Path(path).name.endswith(f"_{other}.pth")]
    if wrong:
        log.warning("warning: importing %s: the pair runs the other way round from the official one (give the G_A "
                    "file first, unless --domains are given in that order too)", " and ".join(wrong))


def _same_import(provenance: dict[str, Any], sources: dict[str, dict[str, str]]) -> bool:
    """True when a pair was imported from the same official files (same generators, same sha256): importing
    them again (other domain names or dtype) replaces nothing that would be lost."""
    if provenance.get("source") not in ("official-checkpoint", "official-pretrained"):
        return False
    files = provenance.get("files")
    if not isinstance(files, dict) or set(files) != set(sources):
        return False
    return all(isinstance(files[g], dict) and files[g].get("sha256") == sources[g]["sha256"] for g in sources)
