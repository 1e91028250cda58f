"""`cgan-train`: train a CycleGAN (default command), export a pair from a run, import official checkpoints.

    cgan-train --data datasets/summer2winter_yosemite --domains summer,winter --out runs --name s2w
    cgan-train --data D --out runs --name s2w --resume
    cgan-train export-pair runs/s2w [--checkpoint runs/s2w/checkpoints/step-000001000.pt] --out my_pair
    cgan-train import-official latest_net_G_A.pth latest_net_G_B.pth --out s2w_official --domains summer,winter
"""
from __future__ import annotations

import os

from cgan._limits import limit_opencv_decoding

limit_opencv_decoding()  # before anything loads OpenCV (and for the loader workers forked later)

import click  # noqa: E402

from cgan._cli import entry, given_flags, setup_logging, sigterm_as_interrupt
from cgan._codecs import quiet_opencv
from cgan.errors import CganError


class _DefaultGroup(click.Group):
    """A group whose default sub-command is `train`: `cgan-train --data D ...` means `cgan-train train --data D ...`."""

    def parse_args(self, ctx, args):
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h", "--version", "-V"):
            if not args[0].startswith("-") and not ctx.resilient_parsing:  # a mistyped command (exportpair)
                import difflib

                near = difflib.get_close_matches(args[0], self.commands, n=1, cutoff=0.6)
                raise CganError(f"no command {args[0]!r}" + (f" (did you mean {near[0]!r}?)" if near else "")
                                + f"; the commands are {', '.join(sorted(self.commands))}, and options alone train "
                                  f"(cgan-train --data DIR --name NAME ...)")
            args = ["train", *args]
        return super().parse_args(ctx, args)


@click.group(cls=_DefaultGroup, context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """Train CycleGAN pairs. `cgan-train --data DIR --out RUNS --name NAME` trains (see `cgan-train train -h`)."""


def _domains(value: str | None) -> tuple[str, str] | None:
    if value is None:
        return None
    parts = [p.strip() for p in value.split(",")]
    if len(parts) != 2 or not all(parts):
        raise CganError(f"--domains takes two names separated by a comma (e.g. summer,winter), got {value!r}")
    return parts[0], parts[1]


# Options default to None: only what the user typed overrides the defaults (or, on --resume, the saved config).
@cli.command("train")
@click.option("--data", type=str, help="Folder holding trainA (domain X) and trainB (domain Y).")
@click.option("--data-a", type=str, help="Folder of domain X images (instead of --data).")
@click.option("--data-b", type=str, help="Folder of domain Y images (instead of --data).")
@click.option("--domains", type=str, help="Domain names X,Y (default X,Y); the pair is called X2Y.")
@click.option("--out", type=str, default="runs", show_default=True, help="Parent folder of runs.")
@click.option("--name", type=str, required=True, help="Run name; the run folder is OUT/NAME.")
@click.option("--resume", is_flag=True, help="Continue the run from its latest checkpoint.")
@click.option("--preprocess", type=click.Choice(["resize_and_crop", "crop", "scale_width", "scale_width_and_crop", "none"]))
@click.option("--load-size", type=int, help="Resize to this before cropping (default 286).")
@click.option("--size", type=int, help="Crop size (default 256).")
@click.option("--flip/--no-flip", default=None, help="Random horizontal flips (default on).")
@click.option("--blocks", type=int, help="Residual blocks of the generators (default 9).")
@click.option("--ngf", type=int, help="Generator base width (default 64).")
@click.option("--ndf", type=int, help="Discriminator base width (default 64).")
@click.option("--epochs", type=int, help="Epochs at the initial learning rate (default 100).")
@click.option("--epochs-decay", type=int, help="Epochs of linear learning-rate decay (the paper's linear decay: the last epoch runs at 1/(N+1) of the rate; default 100).")
@click.option("--batch-size", type=int, help="Images per step (default 1).")
@click.option("--lr", type=float, help="Adam learning rate (default 2e-4).")
@click.option("--beta1", type=float, help="Adam beta1 (default 0.5).")
@click.option("--lambda-cycle", type=float, help="Cycle-consistency weight λ (default 10).")
@click.option("--lambda-identity", type=float, help="Identity weight as a fraction of λ (default 0.5; 0 = off).")
@click.option("--pool-size", type=int, help="History of fakes for the discriminators (default 50).")
@click.option("--seed", type=int, help="Random seed (default 0).")
@click.option("--max-steps", type=int, help="Stop after this many steps in total (smoke runs).")
@click.option("--time-budget", type=str, help="Wall time for this run (e.g. 420, 7m, 1h30m): the epoch schedule "
              "shrinks, keeping its constant:decay ratio, so the learning rate finishes its decay in time.")
@click.option("--init-from", type=str, help="Start G and F from this pair (name or folder): fine-tune it on the "
              "data; the discriminators start fresh. Same --blocks/--ngf and domains (either order).")
@click.option("--precision", type=click.Choice(["fp32", "bf16", "fp16"]), help="Autocast precision (default fp32).")
@click.option("--channels-last/--no-channels-last", default=None,
              help="NHWC memory format (faster on tensor cores).")
@click.option("--compile/--no-compile", "compile_", default=None, help="torch.compile the networks.")
@click.option("--device", type=str, help="auto (default), cpu, cuda or cuda:N.")
@click.option("--workers", type=int, help="DataLoader worker processes (default 4, at most the CPUs usable here).")
@click.option("--threads", type=int, help="torch CPU threads (default: torch's choice).")
@click.option("--save-every-steps", type=int, help="Also checkpoint every N steps (always at each epoch's end).")
@click.option("--keep", type=int, help="Checkpoints kept (default 3).")
@click.option("--log-every", type=int, help="Steps between CSV/TensorBoard log rows (default 50).")
@click.option("--sample-every-steps", type=int, help="Also write a sample grid every N steps.")
@click.option("--tensorboard/--no-tensorboard", default=None,
              help="TensorBoard logs (default on when the tensorboard package is installed).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def train_cmd(data, data_a, data_b, domains, out, name, resume, flip, compile_, tensorboard, quiet, **opts) -> None:
    """Train G: X→Y and F: Y→X on two unaligned image folders; writes OUT/NAME/{config.json, log.csv,
    checkpoints/, samples/, pair/}."""
    from pathlib import Path

    from cgan.trainer.config import TrainConfig
    from cgan.trainer.data import resolve_folders
    from cgan.trainer.train import config_for_resume, train

    setup_logging()
    quiet_opencv("SILENT")  # its decoders' own lines for a broken photo ([ERROR:0@1.2] ...) beside cgan's one
    overrides = {k: v for k, v in opts.items() if v is not None}
    if "time_budget" in overrides:
        from cgan.trainer.budget import parse_duration

        overrides["time_budget"] = parse_duration(overrides["time_budget"])
    # ~ as in a shell: `--out=~/runs` (no shell expands after '=') made a folder named '~' here
    out, data, data_a, data_b = (os.path.expanduser(v) if v else v for v in (out, data, data_a, data_b))
    overrides["out"], overrides["name"] = out, name
    if data or data_a or data_b:
        overrides["data_a"], overrides["data_b"] = resolve_folders(data, data_a, data_b)
    elif not resume:
        run = Path(out or TrainConfig.out) / name if name else None
        if run is not None and any((run / "checkpoints").glob("step-*.pt")):  # --resume forgotten
            raise CganError(f"no training data given, and {run} holds a run with checkpoints: add --resume to go "
                            f"on with it (a new run needs --data DIR and a new --name)")
        resolve_folders(None, None, None)  # raises the "no training data" message
    if (d := _domains(domains)) is not None:
        overrides["domain_x"], overrides["domain_y"] = d
    # on/off switches given either way override the saved config on --resume (so they can be undone)
    for key, value in (("flip", flip), ("compile", compile_), ("tensorboard", tensorboard)):
        if value is not None:
            overrides[key] = value
    if resume:
        cfg = config_for_resume(Path(out) / name, overrides)
    else:
        if "workers" not in overrides:  # (more than the CPUs: the workers take turns with the training)
            from cgan.trainer.train import usable_cpus

            overrides["workers"] = min(TrainConfig.workers, usable_cpus())
        cfg = TrainConfig(**overrides)
    reset = resume and ("epochs" in overrides or "epochs_decay" in overrides)  # typed again: a new schedule
    # SIGTERM while starting (checking thousands of photos takes a while) stops as a Ctrl-C does: "terminated",
    # exit 143, no run folder left (it killed the process and left OUT/NAME holding .lock); once training runs,
    # the trainer's own handler finishes the step and saves
    with sigterm_as_interrupt():
        run_dir = train(cfg, resume=resume, progress=not quiet, reset_schedule=reset)
    if os.environ.get("RANK", "0") == "0":  # under torchrun only rank 0 writes (and says so)
        click.echo(f"pair written to {run_dir / 'pair'}")


@cli.command("export-pair")
@click.argument("run_dir", type=str)
@click.option("--checkpoint", type=str, help="Checkpoint file (default: the run's latest).")
@click.option("--out", type=str, help="Pair folder to write (default RUN_DIR/pair).")
@click.option("--dtype", type=click.Choice(["float32", "float16", "bfloat16"]), default="float32", show_default=True,
              help="Weight type of the files (float16 halves them; inference runs in any precision).")
def export_pair_cmd(run_dir, checkpoint, out, dtype) -> None:
    """Write the G/F pair (G.safetensors, F.safetensors, pair.json) of a run's checkpoint."""
    from cgan.trainer.train import export_pair

    click.echo(f"pair written to {export_pair(run_dir, checkpoint, out, dtype)}")


@cli.command("import-official")
@click.argument("checkpoints", nargs=-1, required=True, type=str)
@click.option("--out", type=str, required=True, help="Pair folder to write.")
@click.option("--domains", type=str, help="Domain names X,Y (default X,Y).")
@click.option("--direction", type=click.Choice(["G", "F"]), default="G", show_default=True,
              help="With one file: G (an official G_A, X→Y) or F (a lone G_B, Y→X).")
def import_official_cmd(checkpoints, out, domains, direction) -> None:
    """Turn official G_A.pth [G_B.pth] checkpoints (junyanz/pytorch-CycleGAN-and-pix2pix) into a pair folder."""
    from cgan.trainer.weights import import_official

    if len(checkpoints) > 2:
        raise CganError("give one or two checkpoints: G_A.pth [G_B.pth]")
    if len(checkpoints) == 2:
        if given_flags(click.get_current_context(), ("direction",)):  # (it was ignored without a word)
            raise CganError("--direction picks the generator of one file; with two (G_A.pth G_B.pth) the first is "
                            "G, the second F: leave --direction out")
        g, f = checkpoints
    else:
        g, f = (checkpoints[0], None) if direction == "G" else (None, checkpoints[0])
    x, y = _domains(domains) or ("X", "Y")
    click.echo(f"pair written to {import_official(g, f, out, x, y)}")


main = entry(cli)

if __name__ == "__main__":
    main()
