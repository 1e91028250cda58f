"""Hostile and broken inputs for the reliability tests: pickle bombs, truncated/random files, forged headers."""
from __future__ import annotations

import json
import os
import pickle
import struct
from pathlib import Path

import numpy as np

from cgan._files import file_record, read_json, write_json_atomic

REPO = Path(__file__).resolve().parents[1]


class Bomb:
    """Unpickling this runs `exec(code)`, which creates `marker`: the test then checks the marker is absent."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').write('pwned')",))


def write_pickle_bomb(path: Path, marker: Path, wrap: str = "state_dict") -> Path:
    """A .pth/.pt whose unpickling would run code, shaped like what the loader expects (torch.save format)."""
    import torch

    payload = {"model.1.weight": torch.zeros(2, 3, 7, 7), "evil": Bomb(marker)}
    if wrap == "checkpoint":
        payload = {"format": "cgan.train-checkpoint", "version": 1, "spec": {}, "config": {}, "counters": {},
                   "nets": {"G": Bomb(marker)}, "optim": {}, "sched": {}, "pools": {}, "rng": {}}
    torch.save(payload, path)
    return path


def write_raw_pickle_bomb(path: Path, marker: Path) -> Path:
    """A legacy plain-pickle file (not a torch zip) whose unpickling would run code."""
    path.write_bytes(pickle.dumps({"state_dict": Bomb(marker)}, protocol=2))
    return path


def random_bytes(n: int, seed: int = 0) -> bytes:
    return np.random.default_rng(seed).integers(0, 256, n, dtype=np.uint8).tobytes()


def truncate(path: Path, fraction: float = 0.5) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: max(1, int(len(data) * fraction))])
    return path


def rehash_pair(folder: Path) -> None:
    """Make pair.json's size/sha256 match the files as they are now (so the loader, not the hash, must object)."""
    meta = read_json(folder / "pair.json")
    for gen, rec in meta["files"].items():
        new = file_record(folder / rec["path"], folder)
        rec.update(sha256=new["sha256"], bytes=new["bytes"])
    write_json_atomic(folder / "pair.json", meta)


def rehash_export(folder: Path) -> None:
    meta = read_json(folder / "manifest.json")
    for rec in meta["files"]:
        p = folder / rec["path"]
        if p.is_file():
            new = file_record(p, folder)
            rec.update(sha256=new["sha256"], bytes=new["bytes"])
    write_json_atomic(folder / "manifest.json", meta)


def huge_safetensors(path: Path, key: str = "model.1.weight", elements: int = 10**12) -> Path:
    """A hand-made safetensors file whose header declares a 1e12-element float32 tensor (4 TB) over 16 bytes."""
    header = {key: {"dtype": "F32", "shape": [elements], "data_offsets": [0, elements * 4]},
              "__metadata__": {"generator": "G"}}
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + b"\0" * 16)
    return path


def huge_onnx(path: Path, dim: int = 10**12) -> Path:
    """A tiny ONNX graph (Add of input and an initializer) whose initializer declares `dim` float elements but
    carries 16 bytes of data."""
    from onnx import TensorProto, helper

    init = TensorProto()
    init.name = "w"
    init.data_type = TensorProto.FLOAT
    init.dims.extend([dim])
    init.raw_data = b"\0" * 16
    graph = helper.make_graph(
        [helper.make_node("Add", ["input", "w"], ["output"])], "huge",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 3, "height", "width"])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", 3, "height", "width"])],
        initializer=[init])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    path.write_bytes(model.SerializeToString())
    return path


def tree(folder: Path) -> dict[str, int]:
    """{relative path: size} of every file under folder (to prove nothing was written)."""
    if not folder.exists():
        return {}
    return {str(p.relative_to(folder)): p.stat().st_size for p in sorted(folder.rglob("*")) if p.is_file()}


def release_free_memory() -> None:
    """Give the memory the allocator holds free back to the system (glibc's malloc_trim; elsewhere nothing): a
    leak then shows in RSS instead of filling memory earlier tests freed."""
    import ctypes
    import ctypes.util

    try:
        ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def rss_bytes() -> int:
    try:
        import psutil

        return psutil.Process(os.getpid()).memory_info().rss
    except ImportError:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def write_huge_spec_pth(path: Path, blocks: int = 64, ngf: int = 1024, expanded: bool = False,
                        shared: bool = False) -> Path:
    """A tiny .pth whose key layout and first-layer shape describe a huge official generator (64 blocks, ngf 1024:
    19.5G parameters) while holding almost no data. With `expanded`, every tensor has its full official shape
    but is a stride-0 view of one stored number (numel matches the spec, storage does not); with `shared`, every
    tensor is an ordinary view into one stored float8 block as large as the largest tensor (use a smaller ngf:
    the file is that block's size)."""
    import math

    import torch

    from cgan.spec import GeneratorSpec
    from cgan.trainer.networks import build_generator

    if shared:
        with torch.device("meta"):
            net = build_generator(GeneratorSpec(blocks=blocks, ngf=ngf), init=False)
        shapes = {k: v.shape for k, v in net.state_dict().items()}
        block = torch.zeros(max(math.prod(s) for s in shapes.values()), dtype=torch.float8_e4m3fn)
        state = {k: block[:math.prod(s)].view(s) for k, s in shapes.items()}
    elif expanded:  # shapes from a small network of the same layout, scaled on the meta device (no memory)
        with torch.device("meta"):
            net = build_generator(GeneratorSpec(blocks=blocks, ngf=ngf), init=False)
        one = torch.zeros(1)
        state = {k: one.expand(v.shape) for k, v in net.state_dict().items()}
    else:
        state = {"model.1.weight": torch.zeros(ngf, 3, 1, 1)}
        for b in range(blocks):
            state[f"model.{10 + b}.conv_block.1.weight"] = torch.zeros(1)
        state[f"model.{10 + blocks + 5}.weight"] = torch.zeros(3, 1, 1, 1)
    torch.save(state, path)
    return path
