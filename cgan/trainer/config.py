"""Every option of a training run, as one dataclass. The run folder keeps it as config.json.

Defaults follow the official repository's `train.py` for CycleGAN (junyanz/pytorch-CycleGAN-and-pix2pix):
load 286 → random crop 256 → random flip, LSGAN, λ_cycle 10, identity 0.5·λ, pool 50, Adam 2e-4 β1 0.5,
100 epochs at constant lr + 100 epochs of linear decay, batch size 1.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from cgan._limits import MAX_SIDE
from cgan.errors import CganError
from cgan.spec import GeneratorSpec, PairSpec

PREPROCESS = ("resize_and_crop", "crop", "scale_width", "scale_width_and_crop", "none")
PRECISIONS = ("fp32", "bf16", "fp16")
DEVICES = ("auto", "cpu", "cuda")

#: the largest --lambda-cycle / --lambda-identity (the paper: 10 and 0.5); larger ones overflow float32 losses
MAX_LAMBDA = 1e4

#: fields that define the networks: a resumed run must not change them
ARCH_FIELDS = ("blocks", "ngf", "dropout", "ndf", "n_layers_d", "domain_x", "domain_y")

#: float options: each must be a finite number (NaN slips through every `x <= 0` check and poisons the weights)
FLOAT_FIELDS = ("lr", "beta1", "lambda_cycle", "lambda_identity", "time_budget")


@dataclass
class TrainConfig:
    # data
    data_a: str = ""
    data_b: str = ""
    domain_x: str = "X"
    domain_y: str = "Y"
    preprocess: str = "resize_and_crop"
    load_size: int = 286
    size: int = 256  # crop size
    flip: bool = True
    # run folder
    out: str = "runs"
    name: str = ""
    # networks
    blocks: int = 9
    ngf: int = 64
    dropout: bool = False
    ndf: int = 64
    n_layers_d: int = 3
    # optimisation
    epochs: int = 100
    epochs_decay: int = 100
    batch_size: int = 1
    lr: float = 2e-4
    beta1: float = 0.5
    lambda_cycle: float = 10.0
    lambda_identity: float = 0.5
    pool_size: int = 50
    seed: int = 0
    max_steps: int | None = None
    time_budget: float | None = None  # seconds: fit the schedule into this wall time (cgan.trainer.budget)
    init_from: str | None = None  # a pair (name or folder) whose G and F start a new run (fine-tuning)
    # speed
    precision: str = "fp32"
    channels_last: bool = False
    compile: bool = False
    device: str = "auto"
    workers: int = 4
    threads: int | None = None  # torch CPU threads (None = torch's default)
    # bookkeeping
    save_every_steps: int | None = None
    keep: int = 3
    log_every: int = 50
    sample_every_steps: int | None = None
    tensorboard: bool = True

    def __post_init__(self) -> None:
        problems = []
        for name in FLOAT_FIELDS:
            v = getattr(self, name)
            if v is not None and not _finite(v):
                problems.append(f"--{name.replace('_', '-')} must be a finite number, got {v!r}")
        if not 0 <= self.n_layers_d <= 10:  # 3·2^11 px would exceed MAX_SIDE; min_size needs it bounded
            problems.append(f"n_layers_d (the discriminator's stride-2 layers) must be 0..10, got {self.n_layers_d}")
        if problems:  # the checks below would compare NaN/inf and let them through
            raise CganError("; ".join(problems))
        # a resize target beyond the runtime's largest frame side would allocate tens of GB per image in the loader
        for name, value in (("--load-size", self.load_size), ("--size", self.size)):
            if value > MAX_SIDE:
                problems.append(f"{name} must be at most {MAX_SIDE} pixels (the largest frame side cgan "
                                f"translates, {MAX_SIDE}x{MAX_SIDE}), got {value}")
        if not 1 <= self.ndf <= 1024:
            problems.append(f"--ndf must be 1..1024 (the discriminator's base width), got {self.ndf}")
        if self.preprocess not in PREPROCESS:
            problems.append(f"--preprocess must be one of {', '.join(PREPROCESS)}, got {self.preprocess!r}")
        if self.precision not in PRECISIONS:
            problems.append(f"--precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        device = str(self.device)
        if self.device not in DEVICES and not (device.startswith("cuda:") and device[5:].isdecimal()
                                               and device[5:].isascii()):
            problems.append(f"--device must be auto, cpu, cuda or cuda:N (a GPU's index), got {self.device!r}")
        if self.size < self.min_size or self.size % 4:
            problems.append(f"--size must be a multiple of 4 and at least {self.min_size} (the discriminator's "
                            f"{self.n_layers_d} stride-2 layers need it), got {self.size}")
        if self.preprocess in ("scale_width", "scale_width_and_crop") and self.load_size < self.min_size:
            problems.append(f"--load-size must be at least {self.min_size}, got {self.load_size}")
        if not 0 <= self.seed < 2**63:
            problems.append(f"--seed must be 0..{2**63 - 1}, got {self.seed}")
        if self.preprocess in ("resize_and_crop", "scale_width_and_crop") and self.load_size < self.size:
            problems.append(f"--load-size ({self.load_size}) must be at least --size ({self.size})")
        if self.preprocess in ("none", "scale_width") and self.batch_size > 1:
            problems.append(f"--preprocess {self.preprocess} keeps image sizes, which differ: use --batch-size 1")
        for name in ("epochs", "epochs_decay", "workers", "pool_size"):
            if getattr(self, name) < 0:
                problems.append(f"--{name.replace('_', '-')} must be >= 0")
        for name in ("batch_size", "keep", "log_every"):
            if getattr(self, name) < 1:
                problems.append(f"--{name.replace('_', '-')} must be >= 1")
        if self.epochs + self.epochs_decay < 1:
            problems.append("--epochs plus --epochs-decay must be at least 1")
        for name in ("max_steps", "save_every_steps", "sample_every_steps", "threads"):
            v = getattr(self, name)
            if v is not None and v < 1:
                problems.append(f"--{name.replace('_', '-')} must be >= 1")
        if self.time_budget is not None and not self.time_budget > 0:
            problems.append("--time-budget must be more than 0 seconds")
        # finite is not enough: --lambda-cycle 1e300 overflowed float32 into NaN weights (exit 0), --lr 1e308 was a
        # torch traceback; the paper's values are 2e-4, 10 and 0.5
        if not 0 < self.lr <= 1 or not 0 <= self.beta1 < 1:
            problems.append("--lr must be in (0, 1] and --beta1 in [0, 1)")
        if not 0 <= self.lambda_cycle <= MAX_LAMBDA or not 0 <= self.lambda_identity <= MAX_LAMBDA:
            problems.append(f"--lambda-cycle and --lambda-identity must be in [0, {MAX_LAMBDA:g}]")
        if problems:
            raise CganError("; ".join(problems))
        self.pair_spec()  # validates blocks/ngf/domain names with one clear message

    @property
    def min_size(self) -> int:
        """The smallest image side the networks take: the PatchGAN halves it n_layers_d times, then its two
        4x4 stride-1 convolutions need 3 pixels left (24 for the 70x70 PatchGAN)."""
        return max(8, 3 * 2 ** max(0, self.n_layers_d))

    @property
    def total_epochs(self) -> int:
        return self.epochs + self.epochs_decay

    def generator_spec(self) -> GeneratorSpec:
        return GeneratorSpec(blocks=self.blocks, ngf=self.ngf, dropout=self.dropout)

    def pair_spec(self) -> PairSpec:
        return PairSpec(self.generator_spec(), self.domain_x, self.domain_y)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrainConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise CganError(f"training config has unknown fields {unknown}: written by a newer cgan? upgrade cgan")
        try:
            return cls(**d)
        except (TypeError, ValueError) as e:  # a mistyped field ("size": "x") fails inside the checks
            raise CganError(f"training config has a field of the wrong type ({str(e).splitlines()[0][:160]}); "
                            f"fix config.json or the checkpoint, or start a new run") from None

    def replace(self, **changes: Any) -> "TrainConfig":
        return dataclasses.replace(self, **changes)


def _finite(value: Any) -> bool:
    """math.isfinite, with an int too large for a float (1e400 written as an integer) counting as not finite."""
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def architecture_changes(saved: TrainConfig, new: dict[str, Any]) -> list[str]:
    """Architecture fields in `new` that differ from the saved run ('ngf 8 -> 16')."""
    return [f"{k} {getattr(saved, k)!r} -> {new[k]!r}" for k in ARCH_FIELDS if k in new and new[k] != getattr(saved, k)]
