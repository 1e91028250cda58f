"""What a generator is, independent of any framework (no torch import here, ever).

A `GeneratorSpec` describes one ResNet generator of the CycleGAN paper: its architecture, tensor names,
value range, channel order and the direction it translates. A `PairSpec` describes the two generators of
one CycleGAN run, G: X→Y and F: Y→X (paper names; the official repo calls them G_A and G_B).

Every artifact cgan writes (pair folder, export folder, engine) carries these in a JSON sidecar, and every
loader checks them. The trainer builds its network from a spec; export and runtime rebuild it from the spec
stored with the weights, never from command-line flags.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

from cgan.errors import CganError

PAIR_FORMAT = "cgan.pair"
EXPORT_FORMAT = "cgan.export"
ENGINE_FORMAT = "cgan.engine"
FORMAT_VERSION = 1

#: paper name -> (source domain key, target domain key, official repo name)
GENERATORS = {"G": ("X", "Y", "G_A"), "F": ("Y", "X", "G_B")}

ARCHITECTURES = ("resnet",)
#: the longest domain name, in UTF-8 bytes: the pair's name (X2Y) and the file names built from it (e.g. a
#: Triton model folder X2Y_G_fp16_prepost_trtrtx) must stay well under the file system's 255-byte limit
MAX_DOMAIN_BYTES = 64
NORMS = ("instance",)


@dataclass(frozen=True)
class GeneratorSpec:
    """Architecture and I/O contract of one ResNet generator (paper: c7s1-ngf, d2ngf, d4ngf, R×N, u2ngf, ungf, c7s1-3)."""

    arch: str = "resnet"
    blocks: int = 9
    ngf: int = 64
    in_channels: int = 3
    out_channels: int = 3
    norm: str = "instance"
    dropout: bool = False
    padding: str = "reflect"
    input_name: str = "input"
    output_name: str = "output"
    value_range: tuple[float, float] = (-1.0, 1.0)
    channel_order: str = "RGB"
    layout: str = "NCHW"
    size_multiple: int = 4

    def __post_init__(self) -> None:
        problems = []
        if self.arch not in ARCHITECTURES:
            problems.append(f"arch {self.arch!r} is not one of {ARCHITECTURES}")
        if not isinstance(self.blocks, int) or not 1 <= self.blocks <= 64:
            problems.append(f"blocks must be an integer 1..64, got {self.blocks!r}")
        if not isinstance(self.ngf, int) or not 1 <= self.ngf <= 1024:
            problems.append(f"ngf must be an integer 1..1024, got {self.ngf!r}")
        if self.norm not in NORMS:
            problems.append(f"norm {self.norm!r} is not one of {NORMS}")
        if self.in_channels not in (1, 3) or self.out_channels not in (1, 3):
            problems.append("in/out channels must be 1 or 3")
        try:
            object.__setattr__(self, "value_range", tuple(float(v) for v in self.value_range))
        except (TypeError, ValueError):
            problems.append(f"value_range must be two numbers, got {self.value_range!r}")
        # the I/O contract: what every part of cgan (trainer data, exporter graphs, runtime pre/post-processing)
        # implements; a spec asking for another one would be translated with swapped colours or wrong values
        implemented = {"channel_order": "RGB", "value_range": (-1.0, 1.0), "layout": "NCHW", "padding": "reflect",
                       "size_multiple": 4, "input_name": "input", "output_name": "output"}  # (names: every graph's)
        for name, want in implemented.items():
            if getattr(self, name) != want:
                problems.append(f"{name} {getattr(self, name)!r} is not supported (cgan implements {want!r})")
        if problems:
            raise CganError("invalid generator spec: " + "; ".join(problems))

    # ---- sizes -------------------------------------------------------------------------------------
    def parameter_count(self) -> int:
        """Number of parameters, computed from the architecture alone (conv weights + biases)."""
        n, c_in, c_out = self.ngf, self.in_channels, self.out_channels

        def conv(ci: int, co: int, k: int) -> int:
            return ci * co * k * k + co

        total = conv(c_in, n, 7) + conv(n, 2 * n, 3) + conv(2 * n, 4 * n, 3)
        total += self.blocks * 2 * conv(4 * n, 4 * n, 3)
        total += conv(4 * n, 2 * n, 3) + conv(2 * n, n, 3) + conv(n, c_out, 7)
        return total

    def macs(self, height: int, width: int) -> int:
        """Multiply-accumulates of all convolutions for one frame of height×width (a multiple of 4)."""
        n = self.ngf
        h1, w1 = height, width
        h2, w2 = height // 2, width // 2
        h4, w4 = height // 4, width // 4
        m = h1 * w1 * self.in_channels * n * 49          # c7s1-ngf
        m += h2 * w2 * n * 2 * n * 9                     # d2ngf
        m += h4 * w4 * 2 * n * 4 * n * 9                 # d4ngf
        m += self.blocks * 2 * h4 * w4 * (4 * n) ** 2 * 9  # residual blocks
        # transposed convolutions do k·k MACs per channel pair per *input* pixel (an output pixel of a stride-2
        # one gets 1, 2 or 4 taps, 2.25 on average, not 9): counting them at the output resolution, as the
        # often quoted 113.6 GFLOP per 256² frame does, overstates their work 4x and the whole frame's by 14.6 %
        m += h4 * w4 * 4 * n * 2 * n * 9                 # u2ngf (input h/4 x w/4)
        m += h2 * w2 * 2 * n * n * 9                     # ungf (input h/2 x w/2)
        m += h1 * w1 * n * self.out_channels * 49        # c7s1-3
        return m

    def flops(self, height: int, width: int) -> int:
        """2·MACs of the convolutions: the work a speed-of-light estimate divides by peak FLOP/s."""
        return 2 * self.macs(height, width)

    # ---- serialisation -----------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["value_range"] = list(self.value_range)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "GeneratorSpec":
        if not isinstance(d, dict):
            raise CganError("generator spec must be a JSON object")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise CganError(f"generator spec has unknown fields {unknown}: written by a newer cgan? upgrade cgan")
        try:
            return cls(**d)
        except (TypeError, ValueError) as e:  # wrong types inside (e.g. value_range ["x", 1])
            raise CganError(f"invalid generator spec: {e}") from None


@dataclass(frozen=True)
class PairSpec:
    """The two generators of one CycleGAN: G translates domain X to Y, F translates Y to X."""

    generator: GeneratorSpec = field(default_factory=GeneratorSpec)
    domain_x: str = "X"
    domain_y: str = "Y"

    def __post_init__(self) -> None:
        for d in (self.domain_x, self.domain_y):
            if not isinstance(d, str) or not d or not d.replace("_", "").replace("-", "").isalnum():
                raise CganError(f"domain name {d!r} must be letters, digits, '-' or '_'")
            size = len(d.encode("utf-8"))
            if size > MAX_DOMAIN_BYTES:
                shown = d if len(d) <= 24 else d[:20] + "..."
                utf8 = f", {size} bytes in UTF-8" if size != len(d) else ""
                raise CganError(f"domain name {shown!r} is too long ({len(d)} characters{utf8}): use at most "
                                f"{MAX_DOMAIN_BYTES} (a letter outside ASCII counts as 2-4); file and model "
                                f"names are built from it")
        if self.domain_x == self.domain_y:
            raise CganError("the two domains must have different names")

    @property
    def name(self) -> str:
        """The pair's conventional name: the direction of G, e.g. summer2winter."""
        return self.direction_name("G")

    def direction_name(self, gen: str) -> str:
        """'G' -> 'summer2winter', 'F' -> 'winter2summer'."""
        src, dst = self.domains(gen)
        return f"{src}2{dst}"

    def domains(self, gen: str) -> tuple[str, str]:
        if gen not in GENERATORS:
            raise CganError(f"unknown generator {gen!r}: use G or F")
        src, dst, _ = GENERATORS[gen]
        names = {"X": self.domain_x, "Y": self.domain_y}
        return names[src], names[dst]

    def resolve_direction(self, direction: str | None, available: tuple[str, ...] = ("G", "F")) -> str:
        """Map 'G'/'F'/'G_A'/'G_B'/'summer2winter'/'winter2summer' (or None = the first available) to 'G' or 'F'."""
        if direction is None:
            return available[0]
        lookup = {}
        for gen in available:
            lookup[gen.lower()] = gen
            lookup[GENERATORS[gen][2].lower()] = gen
            lookup[self.direction_name(gen).lower()] = gen
        gen = lookup.get(str(direction).lower())
        if gen is None:
            valid = ", ".join(f"{self.direction_name(g)} ({g})" for g in available)
            raise CganError(f"unknown direction {direction!r} for this pair: use one of {valid}")
        return gen

    def to_dict(self) -> dict[str, Any]:
        return {"generator": self.generator.to_dict(), "domains": {"X": self.domain_x, "Y": self.domain_y}}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "PairSpec":
        try:
            doms = d["domains"]
            return cls(GeneratorSpec.from_dict(d["generator"]), str(doms["X"]), str(doms["Y"]))
        except KeyError as e:
            raise CganError(f"pair spec is missing {e}: not a cgan pair.json?") from None
        except (TypeError, AttributeError):
            raise CganError(f"pair spec is not a mapping of generator and domains (got "
                            f"{type(d).__name__}): not a cgan pair.json?") from None


def spec_json(obj: Any) -> str:
    """Stable JSON text for specs and manifests (sorted keys, two-space indent)."""
    return json.dumps(obj, indent=2, sort_keys=True) + "\n"
