"""Pair graphs: ONNX graphs kept inside a pair folder that read the pair's own weights (`cgan-export PAIR --in-pair`).

Each generator gets `G.fp32.onnx` beside `G.safetensors`: the exporter's FP32 graph (the same `export_onnx` as
an export folder's), whose weight initializers are ONNX *external data* pointing at the tensors' bytes inside
the safetensors file. That works because a safetensors file is an 8-byte little-endian header length, a JSON
header, then every tensor's raw little-endian row-major bytes — the layout of ONNX's raw_data. Weights stored
as float16 or bfloat16 are declared with that type and go through a Cast to float32, which onnxruntime folds
once when the session starts. A graph is a few tens of KB and the weights are not copied, so a pair folder —
the embedded summer2winter one included — runs on ONNX Runtime in an install without torch and without an
export folder, within the embedded pair's size budget.

Before a graph gets its final name it passes onnx.checker and the exporter's FP32 parity check against the
PyTorch generator (ONNX Runtime CPU, realistic images); pair.json then lists it with its hash and the hash of
the weights it reads (`cgan.pairs.GRAPHS`).
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import struct
from pathlib import Path
from typing import Any

import numpy as np

from cgan._files import atomic_path, file_record, write_json_atomic
from cgan.errors import CganError, IntegrityError
from cgan.pairs import GRAPHS, PAIR_JSON, Pair, graph_name, load_pair, resolve

log = logging.getLogger(__name__)

#: safetensors dtype -> (ONNX TensorProto data type name, bytes per element)
_DTYPES = {"F32": ("FLOAT", 4), "F16": ("FLOAT16", 2), "BF16": ("BFLOAT16", 2)}
#: weight bytes a graph may still hold inline (instance norm's constant scale/bias, shapes): a graph above this
#: did not find its weights in the safetensors file and would be a second copy of them
MAX_INLINE_BYTES = 64 << 10


def tensor_layout(path: Path) -> dict[str, tuple[str, tuple[int, ...], int, int]]:
    """{name: (safetensors dtype, shape, absolute byte offset, byte length)} from a safetensors file's header."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(8)
        n = struct.unpack("<Q", head)[0] if len(head) == 8 else -1
        if n < 2 or 8 + n > size:
            raise IntegrityError(f"{path} is not a safetensors file (bad header length); re-create the pair")
        try:
            header = json.loads(f.read(n))
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
            raise IntegrityError(f"{path} has an unreadable safetensors header; re-create the pair") from None
    if not isinstance(header, dict):
        raise IntegrityError(f"{path} has an unreadable safetensors header; re-create the pair")
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        try:
            dtype, shape, (start, end) = t["dtype"], tuple(int(d) for d in t["shape"]), t["data_offsets"]
        except (KeyError, TypeError, ValueError):
            raise IntegrityError(f"{path}: malformed header entry for {name!r}; re-create the pair") from None
        if dtype not in _DTYPES:
            continue  # not a weight type a graph can read; such a tensor stays unmatched
        if end - start != int(np.prod(shape, dtype=np.int64)) * _DTYPES[dtype][1] or 8 + n + end > size:
            raise IntegrityError(f"{path}: the header's byte range for {name!r} does not fit its shape or the "
                                 f"file; re-create the pair")
        out[name] = (dtype, shape, 8 + n + int(start), int(end) - int(start))
    return out


def share_weights(model: Any, state: dict[str, Any], weights: Path, location: str | None = None) -> tuple[Any, int, int]:
    """Point `model`'s initializers that equal a tensor of `state` (the generator's float32 state dict, loaded
    from `weights`) at that tensor's bytes in `weights`, named `location` in the graph (the weights' path relative
    to the graph's folder; default its file name). Returns (model, shared count, bytes left inline)."""
    from onnx import TensorProto, helper, numpy_helper

    layout = tensor_layout(weights)
    index: dict[tuple[tuple[int, ...], bytes], str] = {}
    for name, value in state.items():
        if name in layout:
            a = value.detach().cpu().float().contiguous().numpy()
            index.setdefault((a.shape, a.tobytes()), name)
    kept, casts, shared, inline = [], [], 0, 0
    for init in model.graph.initializer:
        a = numpy_helper.to_array(init)
        name = index.get((a.shape, a.tobytes())) if a.dtype == np.float32 else None
        if name is None:
            kept.append(init)
            inline += a.nbytes
            continue
        dtype, shape, offset, length = layout[name]
        onnx_type = getattr(TensorProto, _DTYPES[dtype][0])
        ext = TensorProto(name=init.name if dtype == "F32" else f"{init.name}.{dtype.lower()}", data_type=onnx_type,
                          dims=list(shape), data_location=TensorProto.EXTERNAL)
        for key, value in (("location", location or weights.name), ("offset", str(offset)), ("length", str(length))):
            entry = ext.external_data.add()
            entry.key, entry.value = key, value
        kept.append(ext)
        if dtype != "F32":
            casts.append(helper.make_node("Cast", [ext.name], [init.name], to=TensorProto.FLOAT,
                                          name=f"{init.name}.to_float"))
        shared += 1
    del model.graph.initializer[:]
    model.graph.initializer.extend(kept)
    nodes = casts + list(model.graph.node)
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    return model, shared, inline


def _packaged(folder: Path) -> bool:
    """Whether `folder` is (in) the package's own pairs folder, however it was named."""
    from cgan.pairs import EMBEDDED_DIR

    try:
        return Path(folder).resolve().is_relative_to(EMBEDDED_DIR.resolve())
    except OSError:
        return False


def add_pair_graphs(source: str | os.PathLike, *, parity_frames: list[np.ndarray] | None = None,
                    opset: int | None = None) -> Pair:
    """Write (or rewrite) the weight-sharing FP32 graph of every generator of the pair `source` (name or folder)
    into the pair folder and list them in its pair.json. Returns the updated, verified pair."""
    from cgan.export import onnx_export, parity
    from cgan.export.api import _metadata, export_lock
    from cgan.trainer.weights import load_generator

    resolved = resolve(source, prefer_pairs=True)
    if resolved.kind != "pair":
        raise CganError(f"--in-pair writes graphs into a pair folder, and {resolved.folder} is an export folder: "
                        f"pass the pair itself (the export's {resolved.folder / 'pair'} is a copy)")
    if resolved.origin == "embedded" or _packaged(resolved.folder):  # (by name or by its path)
        raise CganError(f"{source} is the pair packaged with cgan ({resolved.folder}), which ships its graphs: to "
                        f"change a copy, copy that folder to $CGAN_HOME/pairs/{resolved.folder.name} (or anywhere) "
                        f"and pass the copy")
    frames = parity_frames if parity_frames is not None else parity.parity_frames()[0]
    opset = onnx_export.DEFAULT_OPSET if opset is None else opset
    onnx_export.check_opset(opset)
    with export_lock(resolved.folder):
        pair = load_pair(resolved.folder)  # the weights verified; old graphs are replaced, not read
        taken = {rec.get("path") for rec in pair.files.values()}
        for gen in pair.generators:
            if graph_name(gen) in taken:
                raise CganError(f"{pair.folder / PAIR_JSON} names a weights file {graph_name(gen)}, the name of "
                                f"{gen}'s graph; rename the weights (re-create the pair)")
        graphs: dict[str, dict[str, Any]] = {}
        with contextlib.ExitStack() as written:  # every graph is checked before any takes its final name
            for gen in pair.generators:
                weights = pair.weights_path(gen)
                net = load_generator(pair, gen)
                options = {"in_pair": True, "opset": opset, "pad_mode": "reflect", "simplify": True}
                model = onnx_export.export_onnx(net, _metadata(pair, gen, "fp32", "nchw", options), opset=opset)
                model, shared, inline = share_weights(model, net.state_dict(), weights, pair.files[gen]["path"])
                if inline > MAX_INLINE_BYTES:
                    raise IntegrityError(f"{gen}: only {shared} weight tensors of the exported graph were found in "
                                         f"{weights.name} ({inline} bytes left inline); this pair's weights cannot "
                                         f"be shared: use an export folder (`cgan-export`)")
                final = pair.folder / graph_name(gen)
                tmp = written.enter_context(atomic_path(final))
                tmp.write_bytes(model.SerializeToString())
                onnx_export.check(tmp, f"the in-pair graph of {gen}")
                try:
                    fig = parity.check_generator(net, {"fp32": tmp}, frames)
                except RuntimeError as e:  # onnxruntime's load errors (e.g. weights replaced meanwhile)
                    raise IntegrityError(f"{gen}: onnxruntime cannot run the in-pair graph "
                                         f"({str(e).splitlines()[0][:300]}); nothing was written") from None
                if fig["failures"]:
                    raise IntegrityError(f"{gen}: the in-pair graph fails parity against PyTorch "
                                         f"({'; '.join(fig['failures'])}); nothing was written")
                log.info("%s: %s reads %d tensors from %s (%d bytes inline), FP32 max abs error %.2g vs PyTorch",
                         gen, final.name, shared, weights.name, inline, fig.get("fp32_max_abs", 0.0))
                graphs[gen] = {"kind": "onnx", "precision": "fp32", "io": "nchw", "io_dtype": "float32",
                               "weights_sha256": pair.files[gen]["sha256"], "parity": fig}
            # cgan's writers (save_pair) wait for the lock held here; a pair rewritten meanwhile by anything else
            # must not get graphs of its old weights, nor pair.json listing the old weights over the new files
            if load_pair(pair.folder, verify=False).files != pair.files:
                raise IntegrityError(f"{pair.folder}'s weights changed while its graphs were made; nothing was "
                                     f"written: run it again")
        for gen, rec in graphs.items():  # the graphs carry their final names now
            rec.update(file_record(pair.folder / graph_name(gen), pair.folder))
        meta = dict(pair.meta)
        meta[GRAPHS] = graphs
        write_json_atomic(pair.folder / PAIR_JSON, meta)
        return load_pair(pair.folder)

