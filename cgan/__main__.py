"""`cgan` / `python -m cgan`: list the commands (`--version`: cgan's version)."""
from __future__ import annotations

import click

from cgan._cli import entry
from cgan.errors import CganError

COMMANDS = [
    ("cgan-train", "cgan.trainer.cli", "train a CycleGAN pair; `cgan-train import-official` converts official checkpoints"),
    ("cgan-export", "cgan.export.cli", "export a pair to ONNX (FP32/FP16) and TensorRT engines, with parity checks"),
    ("cgan-video", "cgan.runtime.cli", "translate webcams and video files in real time, and photos"),
    ("cgan-bench", "cgan.benchmarks.cli", "latency/throughput per backend, resolution and precision"),
    ("cgan-eval", "cgan.benchmarks.eval_cli", "quality report: FID/KID, FP16 parity, flicker, sample grid"),
]


def overview() -> str:
    from cgan import __version__

    lines = [f"cgan {__version__}: CycleGAN from training to real-time video", "", "commands:"]
    lines += [f"  {name:<12} {what}" for name, _, what in COMMANDS]
    lines += ["", "run any command with --help for its options"]
    import importlib.util

    if importlib.util.find_spec("torch") is None:  # e.g. the README's runtime-only main job
        from cgan._optional import pip_extra

        lines.append(f"torch is not installed here: cgan-train, cgan-export, cgan-bench and cgan-eval need "
                     f"`{pip_extra('cpu')}` (or the gpu extra); cgan-video runs without it")
    return "\n".join(lines)


@click.command(add_help_option=False, context_settings={"ignore_unknown_options": True})
@click.option("-h", "--help", "show_help", is_flag=True, help="List the commands (as with no arguments).")
@click.argument("words", nargs=-1, type=click.UNPROCESSED)
def cli(show_help: bool, words: tuple[str, ...]) -> None:
    """List cgan's commands. Each is a program of its own: `cgan-video --help`, not `cgan video`."""
    if words:
        commands = {name.removeprefix("cgan-"): name for name, _, _ in COMMANDS}
        first = words[0]
        if first in commands:
            raise CganError(f"`cgan {first}` is not a command: run `{' '.join([commands[first], *words[1:]])}`")
        what = "option" if first.startswith("-") else "command"
        raise CganError(f"unknown {what} {first!r}: `cgan` lists the commands ({', '.join(commands.values())}); "
                        f"`cgan --version` gives the version")
    click.echo(overview())


main = entry(cli)

if __name__ == "__main__":
    main()
