"""Backend variants for cgan-bench: `NAME+token+token`, e.g. `torch-cuda+compile+graph`, and presets.

A variant is a bench backend (runners.RUNTIME_NAMES) plus options passed to `Translator.load`; each token in
`TOKENS` is one switch and is valid only for the backends it lists (a token must change something: `graph` is
not offered for ort-cuda, which captures CUDA graphs by default — `ort-cuda+nograph` turns them off). Tokens
are written in `TOKENS` order in the label, so `torch-cuda+graph+compile` and `torch-cuda+compile+graph` are
the same row set, labelled `torch-cuda+compile+graph`. A preset (`PRESETS`) expands to several variants.
No torch here.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cgan.errors import CganError

TORCH = ("torch-cuda", "torch-cpu")


@dataclass(frozen=True)
class Token:
    opts: tuple[tuple[str, Any], ...]   # backend options, as (key, value) pairs
    backends: tuple[str, ...]           # bench backends that take it
    help: str


#: option token -> what it sets and where it applies
TOKENS: dict[str, Token] = {
    "compile": Token((("compile", True),), TORCH,
                     "torch.compile, mode max-autotune-no-cudagraphs (compiles per frame size on the first call)"),
    "fastcompile": Token((("compile", True), ("compile_mode", "default")), TORCH,
                         "torch.compile, mode default (no autotuning: compiles faster, may run slower)"),
    "graph": Token((("cuda_graph", True),), ("torch-cuda",), "capture one CUDA graph per shape"),
    "nograph": Token((("cuda_graph", False),), ("ort-cuda", "tensorrt", "tensorrt-rtx"),
                     "no CUDA graph (these backends capture one per shape by default; TensorRT-RTX its own)"),
    "nhwc": Token((("prefer_nhwc", True),), ("ort-cuda",), "the CUDA provider's NHWC convolutions (prefer_nhwc)"),
    "cl": Token((("memory_format", "channels_last"),), TORCH, "channels_last weights and activations"),
    "nchw": Token((("memory_format", "nchw"),), TORCH, "NCHW (contiguous) weights and activations"),
    "subpixel": Token((("upsample", "subpixel"),), TORCH,
                      "the transposed convolutions as 2x2 convolutions + pixel shuffle (same outputs)"),
}

#: preset -> device -> the variants it stands for (eager, then each speed step of the torch path)
PRESETS: dict[str, dict[str, tuple[str, ...]]] = {
    "torch-steps": {
        "cuda": ("torch-cuda", "torch-cuda+graph", "torch-cuda+compile", "torch-cuda+compile+graph"),
        "cpu": ("torch-cpu", "torch-cpu+cl", "torch-cpu+compile"),
    },
}


@dataclass(frozen=True)
class Variant:
    label: str                 # canonical: base + tokens in TOKENS order
    base: str                  # a key of runners.RUNTIME_NAMES
    tokens: tuple[str, ...]

    @property
    def opts(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for t in self.tokens:
            out.update(TOKENS[t].opts)
        return out


def tokens_help() -> str:
    """'+compile, +fastcompile, +cl, +nchw (torch-cuda, torch-cpu), +graph (torch-cuda), ...': each option and
    the backends that take it, for --help (from TOKENS, so it cannot fall behind)."""
    groups: dict[tuple[str, ...], list[str]] = {}
    for name, tok in TOKENS.items():
        groups.setdefault(tok.backends, []).append(f"+{name}")
    return ", ".join(f"{', '.join(names)} ({', '.join(backends)})" for backends, names in groups.items())


def _tokens_for(base: str) -> str:
    have = [t for t, tok in TOKENS.items() if base in tok.backends]
    return f"{base} takes +{', +'.join(have)}" if have else f"{base} takes no options"


def parse_variant(text: str, bases: tuple[str, ...], device: str = "cuda") -> Variant:
    """'torch-cuda+compile+graph' -> Variant; 'torch+...' means torch-cuda on device cuda, torch-cpu on cpu.
    One-line CganError for an unknown backend or token, a token the backend does not take, or two tokens
    that set the same option."""
    raw = str(text).strip().lower()
    base, *tokens = [p.strip() for p in raw.split("+")]
    if base == "torch":
        base = "torch-cuda" if device == "cuda" else "torch-cpu"
    if base not in bases:
        raise CganError(f"unknown backend {base!r} in {text!r}: use one of {', '.join(bases)}, optionally with "
                        f"+options ({', '.join(TOKENS)})")
    seen: dict[str, str] = {}
    for tok in tokens:
        if not tok:
            raise CganError(f"empty option in {text!r}: write NAME+OPTION, e.g. torch-cuda+graph")
        if tok not in TOKENS:
            raise CganError(f"unknown option {tok!r} in {text!r}: use {', '.join(TOKENS)} ({_tokens_for(base)})")
        if base not in TOKENS[tok].backends:
            raise CganError(f"option {tok!r} does not apply to {base} (in {text!r}): {_tokens_for(base)}")
        for key, _ in TOKENS[tok].opts:
            if key in seen and seen[key] != tok:
                raise CganError(f"{text!r}: options {seen[key]!r} and {tok!r} both set {key}; keep one")
            seen[key] = tok
    ordered = tuple(t for t in TOKENS if t in tokens)
    return Variant("+".join((base, *ordered)), base, ordered)


def expand(names: list[str] | tuple[str, ...], bases: tuple[str, ...], device: str,
           groups: dict[str, tuple[str, ...]] | None = None) -> tuple[str, ...]:
    """Backend names, variants, presets and groups ('all', 'none') -> canonical variant labels, in order,
    without repeats."""
    groups = groups or {}
    out: list[str] = []
    for n in names:
        key = str(n).strip().lower()
        if key in groups:
            out.extend(groups[key])
        elif key in PRESETS:
            out.extend(PRESETS[key][device])
        elif key.split("+", 1)[0] in (*groups, *PRESETS):
            raise CganError(f"{n!r}: options go on one backend name (e.g. torch-cuda+graph), not on "
                            f"{key.split('+', 1)[0]!r}")
        else:
            try:
                out.append(parse_variant(key, bases, device).label)
            except CganError as e:
                if "+" in key:
                    raise
                raise CganError(f"unknown backend {key!r}: use one or more of {', '.join((*bases, *groups))}, "
                                f"presets {', '.join(PRESETS)}, or NAME+OPTION variants with options "
                                f"{', '.join(TOKENS)} (comma-separated)") from e
    return tuple(dict.fromkeys(out))
