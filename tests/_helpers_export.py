"""Tiny generators and pairs for the exporter's tests (no real data, no downloads)."""
from __future__ import annotations

import io
from pathlib import Path

import torch

from cgan.spec import GeneratorSpec, PairSpec
from cgan.trainer.networks import build_generator
from cgan.trainer.weights import save_pair

TINY = GeneratorSpec(blocks=1, ngf=4)
SIZES = ((32, 48), (48, 64))


def tiny_states(seed: int = 0, spec: GeneratorSpec = TINY, scale: float = 5.0) -> dict[str, dict[str, torch.Tensor]]:
    """G and F with weights large enough (init N(0, 0.1)) that outputs are not all ~0."""
    states = {}
    for i, gen in enumerate(("G", "F")):
        torch.manual_seed(seed + i)
        net = build_generator(spec)
        with torch.no_grad():
            for p in net.parameters():
                p.mul_(scale)
        states[gen] = net.state_dict()
    return states


def make_pair(folder: Path, seed: int = 0, spec: GeneratorSpec = TINY, gens=("G", "F")) -> Path:
    states = {g: s for g, s in tiny_states(seed, spec).items() if g in gens}
    return save_pair(folder, PairSpec(spec, "summer", "winter"), states, "float32",
                     provenance={"source": "test"})


def official_bytes(seed: int = 0, spec: GeneratorSpec = TINY) -> bytes:
    """A checkpoint in the official repo's format (plain state_dict saved with torch.save)."""
    buf = io.BytesIO()
    torch.save(tiny_states(seed, spec)["G"], buf)
    return buf.getvalue()
