"""`python -m cgan`: list the commands."""
from __future__ import annotations

COMMANDS = [
    ("cgan-train", "cgan.trainer.cli", "train a CycleGAN pair; `cgan-train import-official` converts official checkpoints"),
    ("cgan-export", "cgan.export.cli", "export a pair to ONNX (FP32/FP16) and TensorRT engines, with parity checks"),
    ("cgan-video", "cgan.runtime.cli", "translate webcams and video files in real time, and photos"),
    ("cgan-bench", "cgan.benchmarks.cli", "latency/throughput per backend, resolution and precision"),
    ("cgan-eval", "cgan.benchmarks.eval_cli", "quality report: FID/KID, FP16 parity, flicker, sample grid"),
]


def main() -> None:
    from cgan import __version__

    print(f"cgan {__version__}: CycleGAN from training to real-time video\n\ncommands:")
    for name, _, what in COMMANDS:
        print(f"  {name:<12} {what}")
    print("\nrun any command with --help for its options")
    import importlib.util

    if importlib.util.find_spec("torch") is None:  # e.g. the README's runtime-only main job
        print("torch is not installed here: cgan-train, cgan-export, cgan-bench and cgan-eval need "
              "`pip install 'cgan[cpu]'` (or 'cgan[gpu]'); cgan-video runs without it")


if __name__ == "__main__":
    main()
