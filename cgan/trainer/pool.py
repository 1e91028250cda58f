"""The history of generated images that the discriminators see (Shrivastava et al. 2017; CycleGAN §4).

Same behaviour as the official `ImagePool`: while fewer than `size` images are stored, each new image is
stored and returned; afterwards, with probability 0.5 a random stored image is returned and the new one takes
its place, otherwise the new image is returned. `size` 0 disables the pool. Its random choices come from its
own `random.Random`, whose state is part of the checkpoint.
"""
from __future__ import annotations

import random
from typing import Any

import torch


class ImagePool:
    def __init__(self, size: int = 50, seed: int = 0):
        self.size = size
        self.images: list[torch.Tensor] = []
        self.rng = random.Random(seed)

    def query(self, images: torch.Tensor) -> torch.Tensor:
        """A batch of the same shape: per image either itself or an older fake (see module doc)."""
        if self.size == 0:
            return images
        out = []
        for image in images.detach():
            image = image.unsqueeze(0)
            # the pool keeps its own copy: a view would pin the whole batch's storage (and checkpoint it)
            if len(self.images) < self.size:
                self.images.append(image.clone())
                out.append(image)
            elif self.rng.uniform(0, 1) > 0.5:
                i = self.rng.randint(0, self.size - 1)
                out.append(self.images[i])
                self.images[i] = image.clone()
            else:
                out.append(image)
        return torch.cat(out, 0)

    # ---- checkpointing (plain tensors and ints only, loadable with weights_only=True) --------------
    def state_dict(self) -> dict[str, Any]:
        return {"size": self.size, "images": [t.detach().cpu() for t in self.images],
                "rng": python_rng_state(self.rng.getstate())}

    def load_state_dict(self, state: dict[str, Any], device: torch.device | str = "cpu") -> None:
        self.size = int(state["size"])
        self.images = [t.to(device) for t in state["images"]]
        self.rng.setstate(python_rng_from(state["rng"]))


def python_rng_state(state: tuple) -> dict[str, Any]:
    """random.getstate() as tensors/ints (no pickled objects)."""
    version, internal, gauss = state
    return {"version": version, "state": torch.tensor(internal, dtype=torch.int64), "gauss": gauss}


def python_rng_from(d: dict[str, Any]) -> tuple:
    return (int(d["version"]), tuple(int(v) for v in d["state"].tolist()), d["gauss"])
