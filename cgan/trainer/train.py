"""The CycleGAN training loop: one model object (`CycleGAN`), one function (`train`).

Paper names and the official repository's names (junyanz/pytorch-CycleGAN-and-pix2pix):
    G   = G_A   X → Y   (e.g. summer → winter)
    F   = G_B   Y → X
    D_Y = D_A   judges images of Y (real y vs G(x))
    D_X = D_B   judges images of X (real x vs F(y))
The official trainA folder is domain X, trainB is Y.
"""
from __future__ import annotations

import contextlib
import csv
import dataclasses
import functools
import itertools
import logging
import os
import random
import shlex
import shutil
import time
import warnings
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch
from torch import nn

from cgan._files import atomic_path, ensure_writable_dir, write_bytes_atomic, write_json_atomic
from cgan._git import git_sha
from cgan._limits import check_threads, usable_cpus
from cgan.errors import CganError, IntegrityError, first_line
from cgan.pairs import PAIR_JSON
from cgan.trainer import checkpoint as ckpt
from cgan.trainer.budget import BudgetFitter
from cgan.trainer.config import TrainConfig, architecture_changes
from cgan.trainer.data import DataError, ResumableSampler, Transform, UnalignedDataset, list_images, to_uint8
from cgan.trainer.losses import cycle_loss, gan_loss, identity_loss
from cgan.trainer.networks import build_discriminator, build_generator
from cgan.trainer.pool import ImagePool
from cgan.trainer.weights import check_pair_out, load_generator, save_pair

log = logging.getLogger(__name__)

LOSS_NAMES = ("D_Y", "G", "cycle_X", "idt_Y", "D_X", "F", "cycle_Y", "idt_X")
AMP_DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def lr_factor(epoch: int, epochs: int, epochs_decay: int) -> float:
    """The `linear` rule of the official networks.get_scheduler (epoch_count=1), `epoch` counted from 0 and
    applied for the whole epoch: 1 for the first `epochs` epochs (the paper's "first 100"), then linearly down
    to 1/(epochs_decay+1) in the last one. The official repo's current train.py steps its scheduler at the
    start of each epoch, one epoch earlier than this (docs/training.md)."""
    return 1.0 - max(0, epoch + 1 - epochs) / float(epochs_decay + 1)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise CganError(f"--device {name} but CUDA is not available here; use --device cpu or auto")
    index = name.partition(":")[2]
    if index and (not index.isdecimal() or int(index) >= torch.cuda.device_count()):
        raise CganError(f"--device {name}: this machine's GPUs are cuda:0..cuda:{torch.cuda.device_count() - 1}")
    return torch.device(name)


def _paired_call(net: nn.Module, a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(net(a), net(b)): one call on the two batches joined when their image sizes match (the networks' norms are
    per image, so the outputs are the same), two calls when they differ (--preprocess none or scale_width keep
    each photo's own size, and an X photo, a Y photo and a fake from the history pool may all differ)."""
    if a.shape[1:] != b.shape[1:]:
        return net(a), net(b)
    out = net(torch.cat([a, b]))
    return out[:a.shape[0]], out[a.shape[0]:]


class CycleGAN:
    """Four networks, two Adam optimizers (G+F, D_X+D_Y), two schedulers, two fake-image pools."""

    def __init__(self, cfg: TrainConfig, device: torch.device, world: int = 1, rank: int = 0):
        self.cfg, self.device, self.world = cfg, device, world
        spec = cfg.generator_spec()
        torch.manual_seed(cfg.seed)
        self.G = build_generator(spec).to(device)       # G_A
        self.F = build_generator(spec).to(device)       # G_B
        self.D_Y = build_discriminator(3, cfg.ndf, cfg.n_layers_d).to(device)  # D_A
        self.D_X = build_discriminator(3, cfg.ndf, cfg.n_layers_d).to(device)  # D_B
        self.nets = {"G": self.G, "F": self.F, "D_X": self.D_X, "D_Y": self.D_Y}
        if world > 1:  # identical start on every rank
            import torch.distributed as dist

            for net in self.nets.values():
                for t in itertools.chain(net.parameters(), net.buffers()):
                    dist.broadcast(t.data, 0)
            torch.manual_seed(cfg.seed + rank)  # then each its own draws (dropout): not one mask for all
        self.memory_format = torch.channels_last if cfg.channels_last else torch.contiguous_format
        if cfg.channels_last:
            for net in self.nets.values():
                net.to(memory_format=torch.channels_last)
        betas = (cfg.beta1, 0.999)
        self.opt_G = torch.optim.Adam(itertools.chain(self.G.parameters(), self.F.parameters()), cfg.lr, betas=betas)
        self.opt_D = torch.optim.Adam(itertools.chain(self.D_Y.parameters(), self.D_X.parameters()), cfg.lr, betas=betas)
        # [constant, decay] epochs: the configured ones, or fitted to a time budget (cgan.trainer.budget)
        self.schedule = [cfg.epochs, cfg.epochs_decay]
        decay = lambda e: lr_factor(e, *self.schedule)  # noqa: E731
        self.sched_G = torch.optim.lr_scheduler.LambdaLR(self.opt_G, decay)
        self.sched_D = torch.optim.lr_scheduler.LambdaLR(self.opt_D, decay)
        self.new_pools(rank)
        fp16 = cfg.precision == "fp16"
        self.scaler_G = torch.amp.GradScaler(device.type, enabled=fp16)
        self.scaler_D = torch.amp.GradScaler(device.type, enabled=fp16)
        self.amp_dtype = AMP_DTYPES[cfg.precision]
        # torch.compile wraps the forward only; state_dicts come from the plain modules (no _orig_mod.)
        # dynamic=False: a few static graphs per network (G and F see n and 2n images, D n and 2n) rather than
        # one with a symbolic batch size, which compiles slower kernels
        wrap = (lambda m: torch.compile(m, dynamic=False)) if cfg.compile else (lambda m: m)
        self.run = {k: wrap(v) for k, v in self.nets.items()}

    def autocast(self):
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    # ---- the losses (official CycleGANModel.backward_G / backward_D_basic) ---------------------------
    def generator_loss(self, real_x: torch.Tensor, real_y: torch.Tensor) -> tuple[torch.Tensor, dict, dict]:
        """Paper eq. 3 (full objective) for G and F: LSGAN terms + λ·cycle (eq. 2) both ways + 0.5·λ·identity."""
        G, F, D_X, D_Y = self.run["G"], self.run["F"], self.run["D_X"], self.run["D_Y"]
        lam, lam_idt = self.cfg.lambda_cycle, self.cfg.lambda_cycle * self.cfg.lambda_identity
        if lam_idt > 0:
            # G's two inputs (x to translate, y that it should leave unchanged) in one call, likewise F's:
            # every norm is per image (instance norm, no batch statistics), so G(cat(x, y)) == cat(G(x), G(y)),
            # with half the kernel launches and larger, better-filled ones
            fake_y, idt_y = _paired_call(G, real_x, real_y)
            fake_x, idt_x = _paired_call(F, real_y, real_x)
        else:
            fake_y, fake_x = G(real_x), F(real_y)
        rec_x, rec_y = F(fake_y), G(fake_x)
        parts = {"G": gan_loss(D_Y(fake_y), True), "F": gan_loss(D_X(fake_x), True),
                 "cycle_X": cycle_loss(rec_x, real_x) * lam, "cycle_Y": cycle_loss(rec_y, real_y) * lam}
        if lam_idt > 0:  # G should leave y unchanged, F should leave x unchanged
            parts["idt_Y"] = identity_loss(idt_y, real_y) * lam_idt
            parts["idt_X"] = identity_loss(idt_x, real_x) * lam_idt
        images = {"fake_x": fake_x, "fake_y": fake_y, "rec_x": rec_x, "rec_y": rec_y}
        return sum(parts.values()), parts, images

    def discriminator_loss(self, D: nn.Module, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        """LSGAN for a discriminator, halved "to slow down the rate at which D learns relative to G" (§7.1).
        Real and fake go through D in one call (its norms are per image too, so the outputs are the same)."""
        out_real, out_fake = _paired_call(D, real, fake.detach())
        return (gan_loss(out_real, True) + gan_loss(out_fake, False)) * 0.5

    # ---- one iteration --------------------------------------------------------------------------------
    def train_step(self, real_x: torch.Tensor, real_y: torch.Tensor) -> dict[str, torch.Tensor]:
        real_x = real_x.to(self.device, non_blocking=True).contiguous(memory_format=self.memory_format)
        real_y = real_y.to(self.device, non_blocking=True).contiguous(memory_format=self.memory_format)
        # G and F, with the discriminators frozen
        self._requires_grad((self.D_X, self.D_Y), False)
        self.opt_G.zero_grad(set_to_none=True)
        with self.autocast():
            loss_g, parts, images = self.generator_loss(real_x, real_y)
        self.scaler_G.scale(loss_g).backward()
        self._sync_grads(self.opt_G)
        self.scaler_G.step(self.opt_G)
        self.scaler_G.update()
        # D_Y and D_X, on fakes from the history pools
        self._requires_grad((self.D_X, self.D_Y), True)
        self.opt_D.zero_grad(set_to_none=True)
        fake_y = self.pool_Y.query(images["fake_y"].detach())
        fake_x = self.pool_X.query(images["fake_x"].detach())
        with self.autocast():
            parts["D_Y"] = self.discriminator_loss(self.run["D_Y"], real_y, fake_y)
            parts["D_X"] = self.discriminator_loss(self.run["D_X"], real_x, fake_x)
        self.scaler_D.scale(parts["D_Y"] + parts["D_X"]).backward()
        self._sync_grads(self.opt_D)
        self.scaler_D.step(self.opt_D)
        self.scaler_D.update()
        return {k: v.detach() for k, v in parts.items()}

    @staticmethod
    def _requires_grad(nets, flag: bool) -> None:
        for net in nets:
            for p in net.parameters():
                p.requires_grad_(flag)

    def _sync_grads(self, opt: torch.optim.Optimizer) -> None:
        """Data parallel across torchrun processes: average the gradients before the step."""
        if self.world <= 1:
            return
        import torch.distributed as dist

        grads = [p.grad for g in opt.param_groups for p in g["params"] if p.grad is not None]
        flat = torch.cat([g.reshape(-1) for g in grads])
        dist.all_reduce(flat)
        flat /= self.world
        offset = 0
        for g in grads:
            g.copy_(flat[offset:offset + g.numel()].view_as(g))
            offset += g.numel()

    def end_epoch(self) -> None:
        """Set the next epoch's learning rate. An epoch can end with no optimizer step in this process -- resumed
        at its end, after images were removed, or every FP16 step skipped by the grad scaler -- and the schedule
        is per epoch, so it still moves on: PyTorch's warning about that order is not shown."""
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r"Detected call of `lr_scheduler\.step\(\)` before",
                                    category=UserWarning)
            self.sched_G.step()
            self.sched_D.step()

    @torch.no_grad()
    def translate_samples(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
        for n in (self.G, self.F):
            n.eval()
        x, y = x.unsqueeze(0).to(self.device), y.unsqueeze(0).to(self.device)
        gx, fy = self.G(x), self.F(y)
        out = {"real_X": x[0], "G(X)": gx[0], "F(G(X))": self.F(gx)[0],
               "real_Y": y[0], "F(Y)": fy[0], "G(F(Y))": self.G(fy)[0]}
        for n in (self.G, self.F):
            n.train()
        return out

    # ---- checkpoint state --------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        cpu = lambda sd: {k: v.detach().cpu() for k, v in sd.items()}  # noqa: E731
        return {"nets": {k: cpu(n.state_dict()) for k, n in self.nets.items()},
                "optim": {"G": _to_cpu(self.opt_G.state_dict()), "D": _to_cpu(self.opt_D.state_dict())},
                "sched": {"G": self.sched_G.state_dict(), "D": self.sched_D.state_dict()},
                "scaler": {"G": self.scaler_G.state_dict(), "D": self.scaler_D.state_dict()},
                "pools": self.pools_state(),
                "schedule": {"epochs": list(self.schedule), "configured": [self.cfg.epochs, self.cfg.epochs_decay]}}

    def new_pools(self, rank: int) -> None:
        """Empty histories of fakes. Each process has its own, with its own draws (the official pool draws for
        each image): one seed for all made every process keep or swap the same way, into the same slot."""
        self.pool_X = ImagePool(self.cfg.pool_size, seed=self.cfg.seed * 2 + 1 + 2 * rank)  # fakes F(y), for D_X
        self.pool_Y = ImagePool(self.cfg.pool_size, seed=self.cfg.seed * 2 + 2 + 2 * rank)  # fakes G(x), for D_Y

    def pools_state(self) -> dict[str, Any]:
        return {"X": self.pool_X.state_dict(), "Y": self.pool_Y.state_dict()}

    def load_pools(self, pools: dict[str, Any]) -> None:
        self.pool_X.load_state_dict(pools["X"], self.device)
        self.pool_Y.load_state_dict(pools["Y"], self.device)
        # a new --pool-size or --size on --resume: the saved pools carry the old ones. Fakes of the old crop size
        # cannot join a batch of new ones (torch.cat failed), and would show the discriminators the wrong scale;
        # the history refills at the new size
        fixed = self.cfg.preprocess not in ("none", "scale_width")
        for pool in (self.pool_X, self.pool_Y):
            pool.size = self.cfg.pool_size
            del pool.images[self.cfg.pool_size:]
            if fixed:
                pool.images = [t for t in pool.images if tuple(t.shape[-2:]) == (self.cfg.size, self.cfg.size)]

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for k, n in self.nets.items():
            n.load_state_dict(state["nets"][k], strict=True)
        self.opt_G.load_state_dict(state["optim"]["G"])
        self.opt_D.load_state_dict(state["optim"]["D"])
        self.sched_G.load_state_dict(state["sched"]["G"])
        self.sched_D.load_state_dict(state["sched"]["D"])
        # A GradScaler is only live for fp16; an fp32/bf16 run saves {} for it. Restore it when both sides have
        # one, else (e.g. resuming a bf16 run with --precision fp16) the new scaler starts fresh.
        for name, scaler in (("G", self.scaler_G), ("D", self.scaler_D)):
            saved = (state.get("scaler") or {}).get(name)
            if saved and scaler.is_enabled():
                scaler.load_state_dict(saved)
            elif scaler.is_enabled():
                log.info("no saved fp16 loss-scaler state for %s: starting a fresh GradScaler", name)
        self.load_pools(state["pools"])
        # --lr and --beta1 given on --resume: the saved optimizer state carries the old ones, which would silently
        # win while the new ones are recorded in the run's config and pair
        for opt, sched in ((self.opt_G, self.sched_G), (self.opt_D, self.sched_D)):
            for group in opt.param_groups:
                group["initial_lr"] = self.cfg.lr
                group["betas"] = (self.cfg.beta1, group["betas"][1])
            sched.base_lrs = [self.cfg.lr] * len(opt.param_groups)
        # a schedule fitted to a time budget carries over, unless this resume sets --epochs/--epochs-decay anew
        saved = state.get("schedule")
        if saved and list(saved["configured"]) == [self.cfg.epochs, self.cfg.epochs_decay]:
            self.schedule[:] = [int(v) for v in saved["epochs"]]

    def sync_lr(self) -> None:
        """Set both optimizers' learning rate from the schedule for the epoch the schedulers are at. A resume
        that changes the schedule needs this: the optimizers come back with the rate the old schedule left (0
        after its last decay epoch), and LambdaLR only recomputes it at the end of the next epoch."""
        for sched in (self.sched_G, self.sched_D):
            factor = lr_factor(sched.last_epoch, *self.schedule)
            for group, base in zip(sched.optimizer.param_groups, sched.base_lrs):
                group["lr"] = base * factor
            sched._last_lr = [group["lr"] for group in sched.optimizer.param_groups]


def _to_cpu(obj: Any) -> Any:
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu()
    if isinstance(obj, dict):
        return {k: _to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_cpu(v) for v in obj)
    return obj


# ---- the run -------------------------------------------------------------------------------------------
def _not_utf8(text: str) -> bool:
    """Whether a name from the command line holds bytes that are not UTF-8 (Python keeps them as surrogates)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def run_dir_of(cfg: TrainConfig) -> Path:
    if _not_utf8(cfg.name):  # (it was said to have spaces or control characters)
        raise CganError(f"--name {cfg.name!r} is not valid UTF-8 (bytes of another encoding): give the run a name "
                        f"in UTF-8: its folder is OUT/NAME")
    if not cfg.name or cfg.name != cfg.name.strip() or not cfg.name.isprintable():
        # ' ' made a run folder named by a space, 'x ' one that looks like 'x'; a newline broke the resume hint
        raise CganError(f"--name {cfg.name!r}: give the run a name without leading or trailing spaces or control "
                        f"characters: its folder is OUT/NAME")
    if cfg.name in (".", "..") or any(c in cfg.name for c in ("/", "\\", os.sep, "\0")):
        # '../x' wrote the run outside --out, '.' or 'a/b' into --out itself or into another run's folder
        raise CganError(f"--name {cfg.name!r} must be a plain folder name (no '/', not '.' or '..'): the run's "
                        f"folder is OUT/NAME; put the path in --out")
    if cfg.tensorboard and _not_utf8(str(cfg.out)):
        # TensorBoard's writer encodes its folder as UTF-8: it raised a traceback at start and left the run folder
        raise CganError(f"--out {str(cfg.out)!r} is not valid UTF-8 (bytes of another encoding), and TensorBoard "
                        f"cannot write its logs under it: pass --no-tensorboard, or choose a folder named in UTF-8")
    return Path(cfg.out) / cfg.name


def _resume_advice(run_dir: str | os.PathLike) -> str:
    """What to do when --resume finds no checkpoint: start without it -- unless the folder holds a finished
    run's pair, which a fresh start there refuses (it advised the other, in a circle)."""
    pair = Path(run_dir) / "pair"
    if (pair / PAIR_JSON).is_file():
        return (f"its checkpoints are gone, so it cannot go on; its pair {pair} is kept: train anew under another "
                f"--name (--init-from {pair} starts from its weights)")
    return "nothing to resume; start without --resume"


def config_for_resume(run_dir: str | os.PathLike, overrides: dict[str, Any]) -> TrainConfig:
    """The saved run's config with `overrides` applied; refuses to change the networks' architecture.
    A time budget and a --max-steps limit belong to one invocation: they are not taken from the saved run (a
    smoke run's --max-steps 20 would make every later --resume train 0 steps), only from `overrides`."""
    state = ckpt.load_checkpoint(ckpt.latest_checkpoint(run_dir, _resume_advice(run_dir)))
    saved = TrainConfig.from_dict(state["config"])
    changed = architecture_changes(saved, overrides)
    if changed:
        raise CganError(f"cannot resume {run_dir} with a different architecture ({', '.join(changed)}); "
                        f"drop those options or start a new run with another --name")
    return saved.replace(**{"time_budget": None, "max_steps": None, **overrides})


#: what a run folder holds before its first checkpoint (TensorBoard's folder is made when logging starts)
_STARTED = {".lock", "config.json", "log.csv", "tensorboard", "samples"}


def train(cfg: TrainConfig, resume: bool = False, progress: bool = True, reset_schedule: bool = False) -> Path:
    """Train (or, with resume, continue) the run OUT/NAME; returns the run folder (with pair/ at the end).
    A resumed run keeps a schedule fitted to an earlier --time-budget unless `reset_schedule` (the CLI sets it
    when --epochs or --epochs-decay is given) or the config's epochs differ from the saved ones. One trainer
    per run folder (a second one is refused: they would delete each other's checkpoint writes)."""
    clock0 = time.perf_counter()  # a --time-budget counts from here: setup and compilation are part of it
    if int(os.environ.get("RANK", "0")) != 0:  # torchrun: rank 0 holds the folder for all
        return _train(cfg, resume, progress, reset_schedule, clock0)
    from filelock import FileLock, Timeout

    created = not run_dir_of(cfg).exists()
    run_dir = ensure_writable_dir(run_dir_of(cfg), "run folder")
    lock = FileLock(str(run_dir / ".lock"))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise CganError(f"another cgan-train is running in {run_dir}: wait for it, or use another --name") from None
    except (NotImplementedError, OSError) as e:  # a file system without locks (some NFS/Lustre mounts)
        log.debug("no lock on %s (%s): not guarding against a second trainer", run_dir, e)
        lock = None
    try:
        return _train(cfg, resume, progress, reset_schedule, clock0)
    except (CganError, KeyboardInterrupt):
        # a refused input (empty folder, bad --init-from, ...) or a Ctrl-C while starting leaves no run folder
        # behind if it made one and nothing was saved (no checkpoint: nothing to --resume)
        if created and {p.name for p in run_dir.iterdir()} <= _STARTED and not ckpt.list_checkpoints(run_dir):
            shutil.rmtree(run_dir, ignore_errors=True)
        raise
    finally:
        if lock is not None:
            lock.release()


def check_finite(model: Any, step: int) -> None:
    """Refuse to save generators whose weights hold NaN or inf (a diverged run): a CganError that keeps the last
    good checkpoint and pair, instead of writing a pair that translates every frame to black."""
    for gen, net in (("G", model.G), ("F", model.F)):
        bad = sum(int((~torch.isfinite(p.detach())).sum()) for p in net.parameters())
        if bad:
            raise CganError(f"training diverged: {gen} has {bad} NaN or infinite weights at step {step}; nothing was "
                            f"saved (the last checkpoint is kept): lower --lr or the lambdas and train again")


def _train(cfg: TrainConfig, resume: bool, progress: bool, reset_schedule: bool, clock0: float) -> Path:
    code_sha = git_sha()  # the code that runs, read now: the checkout may move on while a long run trains
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    device = resolve_device(cfg.device)
    if cfg.threads:
        check_threads(cfg.threads, f"--threads {cfg.threads}")  # thousands crashed torch (segmentation fault)
        torch.set_num_threads(cfg.threads)
    check_threads(cfg.workers, f"--workers {cfg.workers}")  # each a process: 100000 forked until the machine stalled
    if world > 1:
        import torch.distributed as dist

        if device.type == "cuda":
            device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
            torch.cuda.set_device(device)
        if not dist.is_initialized():
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    run_dir = run_dir_of(cfg)
    main_rank = rank == 0
    if main_rank:
        ensure_writable_dir(run_dir, "run folder")
    state = None
    if resume:
        state = ckpt.load_checkpoint(ckpt.latest_checkpoint(run_dir, _resume_advice(run_dir)))
        changed = architecture_changes(TrainConfig.from_dict(state["config"]), cfg.to_dict())
        if changed:
            raise CganError(f"cannot resume {run_dir} with a different architecture ({', '.join(changed)})")
    elif ckpt.list_checkpoints(run_dir):
        raise CganError(f"run folder {run_dir} already has checkpoints: add --resume to continue it, "
                        f"or choose another --name")
    elif (run_dir / "pair" / PAIR_JSON).is_file():  # a finished run whose checkpoints were removed: its pair stays
        raise CganError(f"run folder {run_dir} already holds a trained pair ({run_dir / 'pair'}) and no checkpoint "
                        f"to continue from: choose another --name (or move that folder away to train it anew)")

    transform = Transform(cfg.preprocess, cfg.load_size, cfg.size, cfg.flip, cfg.min_size)
    files_x = list_images(cfg.data_a, f"domain X ({cfg.domain_x})", transform=transform)
    files_y = list_images(cfg.data_b, f"domain Y ({cfg.domain_y})", transform=transform)
    if state is not None and main_rank:
        _say_if_the_data_changed(state, cfg, len(files_x), len(files_y))
    if Path(cfg.data_a).resolve() == Path(cfg.data_b).resolve() and main_rank:
        log.warning("warning: domains X and Y are the same folder (%s): the pair learns to translate those "
                    "images into themselves", cfg.data_a)
    dataset = UnalignedDataset(files_x, files_y, transform, cfg.seed)
    sampler = ResumableSampler(len(files_x), len(files_y), cfg.seed, rank, world)
    # A compiled run skips each epoch's short last batch: a new batch size would make torch.compile build every
    # network again for it (static shapes) at each epoch's end. The skipped images differ per epoch.
    drop_last = cfg.compile and cfg.batch_size > 1 and sampler.per_rank >= cfg.batch_size
    cpus = usable_cpus()
    if cfg.workers > cpus and main_rank:  # (torch's own warning printed its file and line, twice)
        log.warning("warning: --workers %d on %d usable CPUs: the loader workers take turns with the training "
                    "itself; --workers %d is enough here", cfg.workers, cpus, max(1, cpus - 1))
    if cfg.workers > 0:
        # one OpenCV thread per loader worker (they already run in parallel), set here, before they are forked:
        # cv2.setNumThreads in a worker deadlocked (pthread_cond_destroy) once this process had started OpenCV's
        # thread pool, which listing large photos does (4000x3000 JPEGs: the run hung before its first step)
        import cv2

        cv2.setNumThreads(1)
    with _workers_counted_by_us():
        loader = _loader(cfg, dataset, sampler, device, drop_last)
    steps_per_epoch = (sampler.per_rank // cfg.batch_size if drop_last else -(-sampler.per_rank // cfg.batch_size))

    if device.type == "cuda" and cfg.preprocess in ("resize_and_crop", "crop", "scale_width_and_crop"):
        torch.backends.cudnn.benchmark = True  # every batch has the crop size: pick the fastest algorithms once
    random.seed(cfg.seed)
    np.random.seed(cfg.seed % 2**32)
    model = CycleGAN(cfg, device, world, rank)
    counters = {"epoch": 0, "step_in_epoch": 0, "step": 0, "seconds": 0.0}
    init_record = state.get("init") if state is not None else None  # kept from the run's first start
    if cfg.init_from and state is None:  # every rank loads the same pair: no broadcast needed
        init_record = init_generators(model, cfg.init_from)
        log.info("G and F start from %s (%s)", cfg.init_from, init_record["folder"])
    elif cfg.init_from and state is not None and cfg.init_from != (init_record or {}).get("pair"):
        log.warning("--init-from %s ignored: a resumed run continues from its checkpoint's weights", cfg.init_from)
        # the config keeps where the run really started (it was stored, and said ignored at every later resume);
        # a copy: the caller's config is not changed
        cfg = dataclasses.replace(cfg, init_from=(init_record or {}).get("pair"))
    if state is not None:
        try:
            model.load_state_dict(state)
            if reset_schedule:
                model.schedule[:] = [cfg.epochs, cfg.epochs_decay]
            model.sync_lr()
            counters.update({k: state["counters"][k] for k in counters})
            ckpt.restore_rng(state["rng"])
            if world > 1:  # each process its own pools and RNGs (the lines above restored rank 0's)
                _restore_rank(state, model, rank, main_rank)
            # checkpoints from before "world" was recorded: the process count is taken as unchanged
            saved_per_step = int(state["config"]["batch_size"]) * int(state.get("world", world))
        except (KeyError, TypeError, ValueError, RuntimeError, AttributeError, IndexError) as e:
            why = (str(e).splitlines() or [""])[0][:160]
            raise IntegrityError(f"{ckpt.latest_checkpoint(run_dir)} does not fit this run's networks, optimizers "
                                 f"or random state ({type(e).__name__}: {why}); delete it to resume from the "
                                 f"previous one") from None
        finished = counters["epoch"] >= sum(model.schedule) and not counters["step_in_epoch"]
        if not finished:  # ("at epoch 3" of a finished 2-epoch run read as a bug)
            log.info("resuming %s at epoch %d of %d, step %d", run_dir, counters["epoch"] + 1, sum(model.schedule),
                     counters["step"])
        if finished and main_rank:
            log.info("%s has trained all %d epochs of its schedule: nothing left to train (--epochs and "
                     "--epochs-decay give it more); its pair is written again, the same weights", run_dir,
                     sum(model.schedule))
        if counters["step_in_epoch"] and saved_per_step != cfg.batch_size * world:
            # step_in_epoch counts steps of the saved run's batch size and process count: carry on after the
            # images it has seen in this epoch (rounded up to a whole step of this run; the order shards anew
            # when the process count changed)
            seen = counters["step_in_epoch"] * saved_per_step
            counters["step_in_epoch"] = min(-(-seen // (cfg.batch_size * world)), steps_per_epoch)
            if main_rank:
                log.warning("images per step changed from %d to %d (--batch-size x processes) in the middle of "
                            "epoch %d: it goes on after the %d images already seen, at step %d of %d",
                            saved_per_step, cfg.batch_size * world, counters["epoch"] + 1, seen,
                            counters["step_in_epoch"], steps_per_epoch)
    # a resumed run with nothing left to train (its schedule or --max-steps done) keeps the record of the options
    # that trained it: the options given now train nothing (they were written into config.json and the pair)
    idle = state is not None and ((counters["epoch"] >= sum(model.schedule) and not counters["step_in_epoch"])
                                  or bool(cfg.max_steps and counters["step"] >= cfg.max_steps))
    if main_rank and not idle:
        write_json_atomic(run_dir / "config.json", {"config": cfg.to_dict(), "spec": cfg.pair_spec().to_dict(),
                                                    "git_sha": code_sha})
    # rows and TensorBoard events after the checkpoint's step (all of them on a fresh start: a run that died before
    # its first checkpoint left some) are of steps trained again now: dropped, so the logs hold each step once
    logger = _RunLogger(run_dir, cfg, enabled=main_rank, purge_step=counters["step"] + 1 if state else 0)
    logger.drop_rows_after(counters["step"])
    samples = dataset.sample_images()

    fitter = None
    if cfg.time_budget:
        # a compiled run compiles in its first steps (forward, backward, then again as requires_grad flips)
        fitter = BudgetFitter(cfg.time_budget, clock0, steps_per_epoch, model.schedule, (cfg.epochs, cfg.epochs_decay),
                              warmup_steps=4 if cfg.compile else 1, warmup_is_slow=cfg.compile,
                              verbose=main_rank)  # under torchrun rank 0 decides (see agree) and speaks
    if fitter is not None and main_rank:
        log.info("time budget %.6g s: the %d + %d epoch schedule is fitted to it once the pace is measured",
                 cfg.time_budget, *model.schedule)

    def agree(stop: bool) -> bool:
        """Under torchrun every process must stop at the same step with the same schedule (else the gradient
        all-reduce hangs and learning rates differ): rank 0's budget decisions are broadcast."""
        if world <= 1:
            return stop
        import torch.distributed as dist

        t = torch.tensor([int(stop), *model.schedule], dtype=torch.int64, device=device)
        dist.broadcast(t, 0)
        model.schedule[:] = [int(t[1]), int(t[2])]
        return bool(t[0])

    def info() -> dict[str, Any]:
        cut_short = fitter is not None and fitter.stopped_early and counters["epoch"] < sum(model.schedule)
        return {**_training_info(cfg, counters, device, len(files_x), len(files_y), model.schedule, cut_short),
                "git_sha": code_sha, "init_from": init_record}

    def save(gather: bool = True) -> None:
        """A checkpoint. Under torchrun every process calls it at the same step: their pools and RNGs are
        gathered to rank 0, which writes (`gather=False`: rank 0 alone, after a failure ended the others)."""
        # a diverged run keeps its last good checkpoint; checked on every process (they hold the same weights), so
        # all end here together instead of the others dying in the next collective, as when rank 0 ended alone
        check_finite(model, counters["step"])
        others = _gather_ranks(model, world, main_rank) if gather and world > 1 else None
        if not main_rank:
            return
        t = time.perf_counter()
        snap = {"spec": cfg.pair_spec().to_dict(), "config": cfg.to_dict(), "counters": dict(counters),
                "rng": ckpt.capture_rng(), "info": info(), "init": init_record, "world": world, **model.state_dict()}
        if others:
            snap["ranks"] = others
        ckpt.save_checkpoint(run_dir, snap, cfg.keep)
        if fitter is not None:
            fitter.saved(time.perf_counter() - t)

    started = time.perf_counter()
    seconds0 = counters["seconds"]
    last_saved = counters["step"] if state is not None else -1
    last_sampled = last_saved  # the step of the latest sample grid (a resumed run's was written before)

    def sample() -> None:
        nonlocal last_sampled
        logger.samples(model.translate_samples(*samples), counters)
        last_sampled = counters["step"]

    stop = False
    signalled: list[int] = []  # SIGINT/SIGTERM: finish the step, save a checkpoint and the pair, then stop
    restore_signals = _stop_on_signals(signalled)
    # the handlers stay until the pair is written: a signal during the final checkpoint or the pair's write
    # (when a budget or --max-steps ends the run, the moment a lease's SIGTERM tends to come) is noted like one
    # during a step, not the default kill that lost the run's last steps
    try:
        try:
            while counters["epoch"] < sum(model.schedule) and not stop:
                epoch = counters["epoch"]
                sampler.set_epoch(epoch, counters["step_in_epoch"] * cfg.batch_size)
                if fitter is not None:
                    fitter.start_epoch(epoch)
                bar = _progress(progress and main_rank, steps_per_epoch, counters["step_in_epoch"],
                                f"epoch {epoch + 1}/{sum(model.schedule)}")
                for batch in _agreed_batches(_workers_started(loader), world, rank, device):
                    if cfg.max_steps and counters["step"] >= cfg.max_steps:  # e.g. resumed at the limit
                        stop = True
                        break
                    losses = model.train_step(batch["X"], batch["Y"])
                    counters["step"] += 1
                    counters["step_in_epoch"] += 1
                    counters["seconds"] = seconds0 + time.perf_counter() - started
                    row = logger.step(counters, losses, model)
                    if row and bar is not None:
                        bar.set_postfix({k: f"{row[k]:.3f}" for k in LOSS_NAMES if k in row and row[k] != ""})
                    if bar is not None:
                        bar.update(1)
                    if cfg.sample_every_steps and counters["step"] % cfg.sample_every_steps == 0:
                        sample()
                    if cfg.save_every_steps and counters["step"] % cfg.save_every_steps == 0:
                        save()
                        last_saved = counters["step"]
                    if cfg.max_steps and counters["step"] >= cfg.max_steps:
                        stop = True
                        break
                    want_stop = bool(signalled)
                    if fitter is not None:
                        want_stop = fitter.after_step(epoch, counters["step_in_epoch"]) or want_stop
                    if agree(want_stop):  # under torchrun rank 0 decides for all (else the all-reduce hangs)
                        stop = True
                        break
                if bar is not None:
                    bar.close()
                if stop and counters["step_in_epoch"] < steps_per_epoch:
                    break
                if fitter is not None and not stop:  # refit before the scheduler sets the next epoch's rate
                    fitter.after_epoch(epoch)
                    agree(False)
                model.end_epoch()
                counters["epoch"] += 1
                counters["step_in_epoch"] = 0
                save()  # first: a sample grid that cannot be written (a full disk, memory) must not cost the epoch
                last_saved = counters["step"]
                sample()
            if fitter is not None and fitter.stopped_early and counters["epoch"] < sum(model.schedule) and main_rank:
                why = ("the run was slower than its measured pace" if fitter.pace_measured else
                       f"the budget ran out before {fitter.probe_steps} steps could measure the pace, "
                       f"{started - clock0:.1f} s of it setting up: give a longer --time-budget")
                log.warning("time budget %s s spent in epoch %d of %d (step %d), at %.0f%% of the initial "
                            "learning rate: the schedule did not finish (%s)", f"{cfg.time_budget:.3g}",
                            counters["epoch"] + 1, sum(model.schedule), counters["step"],
                            100 * lr_factor(counters["epoch"], *model.schedule), why)
            counters["seconds"] = seconds0 + time.perf_counter() - started
            logger.flush_steps(counters, model)
            if counters["step"] != last_saved:
                save()
            if counters["step"] != last_sampled:  # (a last step that was also a --save-every-steps one had none)
                sample()
        except BaseException as e:
            _close_quietly(logger)  # its own error (a full disk) must not hide the one that ended the run
            _stop_workers(loader)  # now: at exit, Python's clean-up SIGTERMed them and torch printed a traceback
            # (a fresh run's step 0 trained nothing; under torchrun rank 0 saves, every rank says one line)
            keep = (lambda: save(gather=False)) if main_rank and counters["step"] not in (last_saved, 0) else None
            if isinstance(e, DataError):
                raise _failure(e, DataError, keep, counters["step"], run_dir, cfg, "fix or remove that image") from None
            if _out_of_memory(e):
                what, fix = _oom_advice(cfg, counters["step"], device)
                raise _failure(what, CganError, keep, counters["step"], run_dir, cfg, fix) from None
            if cfg.compile and _compile_failed(e):  # (torch.compile compiles at the first step)
                log.debug("torch.compile failed", exc_info=True)
                what, fix = _compile_advice(e, device)
                raise _failure(what, CganError, keep, counters["step"], run_dir, cfg, fix) from None
            raise
        logger.close()  # after the last samples: a closed TensorBoard writer would open a new, unflushed file
        if main_rank:  # the weights saved here were checked by the save() of this step (check_finite)
            # an idle resume: the checkpoint's own record, which belongs to the weights written
            trained = dict(state["info"]) if idle and state is not None and state.get("info") else info()
            try:
                save_pair(run_dir / "pair", cfg.pair_spec(), {"G": model.G.state_dict(), "F": model.F.state_dict()},
                          "float32", training=trained,
                          provenance={"source": "cgan-train", "run": str(run_dir.resolve())})
            except (CganError, OSError) as e:  # its checkpoint is saved: say how to write the pair from it
                from cgan._cli import one_line

                why = (e.strerror or str(e)) if isinstance(e, OSError) else one_line(e)
                why = why.removesuffix("; choose a writable folder").removesuffix("; choose another path")
                raise CganError(f"the run's pair could not be written: {why}; its checkpoint of step "
                                f"{counters['step']} is saved: fix that, then write the pair with `cgan-train "
                                f"export-pair {shlex.quote(str(run_dir))}`") from None
            _summary(counters, model.schedule, logger.last_row)
    finally:
        restore_signals()
    if world > 1:
        import torch.distributed as dist

        dist.barrier()
        dist.destroy_process_group()
    if signalled and counters["epoch"] < sum(model.schedule):
        import signal as _signal

        name = _signal.Signals(signalled[0]).name
        raise Interrupted(f"{name} at step {counters['step']} (epoch {counters['epoch'] + 1} of "
                          f"{sum(model.schedule)}): checkpoint and pair saved in {run_dir}; continue with "
                          f"`cgan-train --name {shlex.quote(cfg.name)} --out {shlex.quote(str(cfg.out))} --resume`",
                          130 if signalled[0] == _signal.SIGINT else 143)
    return run_dir


def init_generators(model: CycleGAN, source: str) -> dict[str, Any]:
    """Start G and F from a pair's weights (name or folder; an export's pair/ copy too). Its domains must be
    this run's, in either order (winter2summer's G is this run's F); the discriminators and optimizers start
    fresh. Returns what to record: the pair, its name and its files' sha256."""
    from cgan.pairs import load_pair, resolve

    r = resolve(source)
    pair = load_pair(r.folder if r.kind == "pair" else r.folder / "pair")
    spec, want = pair.spec, model.cfg.pair_spec()
    if spec.generator != want.generator:
        theirs, ours = spec.generator.to_dict(), want.generator.to_dict()
        keys = [k for k in theirs if theirs[k] != ours.get(k)]
        diff = ", ".join(f"{k} {theirs[k]!r} vs {ours.get(k)!r}" for k in keys)
        others = [k for k in keys if k not in ("blocks", "ngf")]
        fix = (f"add --blocks {theirs['blocks']} --ngf {theirs['ngf']}" if not others else
               f"start from another pair (cgan-train has no option for its {', '.join(others)})")
        where = f" ({r.folder})" if str(r.folder) != str(source) else ""  # a name: which pair it found
        raise CganError(f"--init-from {source}{where}: its generators differ from this run's ({diff}): {fix}")
    if set(pair.files) != {"G", "F"}:
        raise CganError(f"--init-from {source}: the pair holds only {', '.join(pair.files)}; both G and F are needed")
    if (spec.domain_x, spec.domain_y) == (want.domain_x, want.domain_y):
        mapping = {"G": "G", "F": "F"}
    elif (spec.domain_y, spec.domain_x) == (want.domain_x, want.domain_y):
        mapping = {"G": "F", "F": "G"}
    else:
        raise CganError(f"--init-from {source}: it translates {spec.domain_x}<->{spec.domain_y}, this run "
                        f"{want.domain_x}<->{want.domain_y}: give matching --domains")
    for ours, theirs in mapping.items():
        net = load_generator(pair, theirs)
        if not all(bool(torch.isfinite(v).all()) for v in net.state_dict().values()):
            raise CganError(f"--init-from {source}: its {theirs} has NaN or infinite weights (a diverged run's): "
                            f"start from another pair")
        getattr(model, ours).load_state_dict(net.state_dict(), strict=True)
    return {"pair": str(source), "name": spec.name, "folder": str(pair.folder.resolve()),
            "sha256": {g: pair.files[g]["sha256"] for g in ("G", "F")}, "swapped": mapping["G"] == "F"}


def _quiet_worker(trainer_pid: int, _: int) -> None:
    """One torch thread per loader worker: the workers already run in parallel (avoids oversubscription; OpenCV's
    one thread is set before they are forked, see _train). They ignore SIGINT and any SIGTERM but the trainer's
    own (see _worker_signals)."""
    _worker_signals(trainer_pid)
    torch.set_num_threads(1)


def _loader(cfg: TrainConfig, dataset: Any, sampler: Any, device: Any, drop_last: bool) -> Any:
    """The training DataLoader (persistent workers, pinned memory on CUDA; see _train)."""
    return torch.utils.data.DataLoader(
        dataset, batch_size=cfg.batch_size, sampler=sampler, num_workers=cfg.workers,
        pin_memory=device.type == "cuda", persistent_workers=cfg.workers > 0,
        prefetch_factor=4 if cfg.workers > 0 else None, drop_last=drop_last,
        worker_init_fn=functools.partial(_quiet_worker, os.getpid()),
        # each iter() draws the workers' base seed from this generator, not from torch's global RNG: the
        # checkpoint captures the global RNG after that draw, and a resumed run draws again (dropout masks
        # would differ from the straight run's). Items take their randomness from (seed, epoch, position).
        generator=torch.Generator().manual_seed(cfg.seed))


def _gather_ranks(model: CycleGAN, world: int, main_rank: bool) -> list[dict[str, Any]] | None:
    """On rank 0, the pools and RNG states of ranks 1.. (for the checkpoint's "ranks"); None on the others."""
    import torch.distributed as dist

    mine = {"pools": model.pools_state(), "rng": ckpt.capture_rng()}
    gathered: list[Any] | None = [None] * world if main_rank else None
    dist.gather_object(mine, gathered, dst=0)
    return gathered[1:] if gathered is not None else None


def _restore_rank(state: dict[str, Any], model: CycleGAN, rank: int, main_rank: bool) -> None:
    """Under torchrun: rank r > 0 takes its own pools and RNG states from the checkpoint's "ranks". A process
    the checkpoint has none for (it was written by fewer processes, or by a cgan that saved rank 0's alone)
    starts its history of fakes anew, with its own draws, rather than every process sharing rank 0's."""
    ranks = state.get("ranks") if isinstance(state.get("ranks"), list) else []
    if main_rank:
        if len(ranks) + 1 < model.world:
            log.info("the checkpoint holds the fake-image history of %d of these %d processes: the others start "
                     "theirs anew", len(ranks) + 1, model.world)
        return
    if rank - 1 < len(ranks):
        model.load_pools(ranks[rank - 1]["pools"])
        ckpt.restore_rng(ranks[rank - 1]["rng"])
        return
    model.new_pools(rank)
    torch.manual_seed(model.cfg.seed + rank)


def _agreed_batches(batches: Iterator[Any], world: int, rank: int, device: torch.device) -> Iterator[Any]:
    """The loader's batches; under torchrun every process first says whether it has its next batch, so that a
    training image that fails on one process ends them all at the same step (rank 0 then saves the steps
    trained: _failure). Alone, the failing process left the others in the gradient all-reduce: gloo's
    "Connection closed by peer", NCCL's hang until torchrun killed them, and nothing saved. One small
    all-reduce per step; none with one process."""
    if world <= 1:
        yield from batches
        return
    import torch.distributed as dist

    state = torch.zeros(world + 1, dtype=torch.int64, device=device)  # [failed per rank..., ranks ended]
    while True:
        failure: DataError | None = None
        batch, ended = None, False
        try:
            batch = next(batches)
        except StopIteration:
            ended = True
        except DataError as e:
            failure = e
        state.zero_()
        state[rank], state[world] = int(failure is not None), int(ended)
        dist.all_reduce(state)
        if failure is not None:
            raise failure
        failed = [r for r in range(world) if state[r]]
        if failed:
            which = ", ".join(str(r) for r in failed)
            raise DataError(f"a training image failed on process {which} of {world} (its own error names the "
                            f"image); every process stopped at the same step")
        if int(state[world]):  # (shards are equal: every process ends its epoch at the same step)
            return
        yield batch


def _workers_started(loader: Any) -> Any:
    """iter(loader), with SIGTERM blocked while it forks the workers: a worker is born with it blocked, so one
    that comes to the process group before the worker's own handling is set up (_worker_signals) waits for it.
    torch's handler, there until then, ended the worker, and torch's 'DataLoader worker is killed by signal'
    ended the run unsaved (5 times in 6 at 8-12 ms after the fork). The trainer takes its own copy once the
    workers are forked."""
    import signal

    with _workers_counted_by_us():
        if not hasattr(signal, "pthread_sigmask"):
            return iter(loader)
        old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
        try:
            return iter(loader)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, old)


@contextlib.contextmanager
def _workers_counted_by_us() -> Iterator[None]:
    """Without torch's warning of more loader workers than CPUs (a paragraph with its file and line, at the
    DataLoader's creation and again at its first iter()): _train says it in one line."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="This DataLoader will create", category=UserWarning)
        yield


def _worker_signals(trainer_pid: int) -> None:
    """A loader worker's signals. A terminal's Ctrl-C reaches the whole process group: the trainer saves, then
    ends its workers, so they ignore SIGINT. A SIGTERM can reach the whole group too (GNU `timeout` without
    --foreground, `kill -TERM -PGID`, a batch scheduler's time limit or preemption, which signals every process
    of the job): a worker killed by it made torch raise 'DataLoader worker is killed by signal' in the middle of
    the trainer's step, and the run ended unsaved. The DataLoader itself ends a worker that does not stop in time
    with SIGTERM, so a worker cannot just ignore it. So SIGTERM stays blocked (its disposition stays the
    default) and a thread takes it with sigwaitinfo, which tells who sent it: from the trainer it ends the worker
    as before; from anyone else it is dropped, and the trainer (which received it as well) finishes its step,
    saves and ends the workers. Where sigwaitinfo is missing (macOS) the worker leaves the trainer's process
    group instead, so a signal to the group (`timeout`, `kill -TERM -PGID`) does not reach it, and SIGTERM keeps
    its default; a scheduler that signals every process of the job still ends it there. Windows has neither."""
    import signal
    import threading

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if not (hasattr(signal, "sigwaitinfo") and hasattr(signal, "pthread_sigmask")):
        if hasattr(os, "setpgid"):
            with contextlib.suppress(OSError):
                os.setpgid(0, 0)  # its own process group: the trainer's group signals pass it by
        return

    def take_sigterm() -> None:
        while True:
            info = signal.sigwaitinfo({signal.SIGTERM})
            if info.si_pid == trainer_pid:
                signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})  # delivered to this thread: default
                os.kill(os.getpid(), signal.SIGTERM)                          # action, the worker ends by it
                return

    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})  # before the thread: it inherits the mask
    threading.Thread(target=take_sigterm, name="cgan-loader-sigterm", daemon=True).start()


class Interrupted(CganError):
    """Training stopped by SIGINT/SIGTERM after saving; exit code 130 / 143 like an interrupted program. A stop
    that was asked for, not an error: printed as "stopped: ..."."""

    label = "stopped"

    def __init__(self, message: str, exit_code: int):
        super().__init__(message)
        self.exit_code = exit_code


def _say_if_the_data_changed(state: dict, cfg: TrainConfig, n_x: int, n_y: int) -> None:
    """A resumed run goes on with the folders it is given now; say so when they or their image counts differ
    from the checkpoint's (the sampler's position in the epoch then means other images)."""
    old_cfg, old_images = state.get("config") or {}, (state.get("info") or {}).get("images") or {}
    changes = []
    for dom, key, n in (("X", "data_a", n_x), ("Y", "data_b", n_y)):
        before, count = old_cfg.get(key), old_images.get(dom)
        if before and before != getattr(cfg, key):
            changes.append(f"{dom} from {before} ({count} images) to {getattr(cfg, key)} ({n})")
        elif isinstance(count, int) and count != n:
            changes.append(f"{dom} has {n} images, {count} when the checkpoint was saved")
    if changes:
        log.warning("resuming with other data: %s; the run goes on with the new images", "; ".join(changes))


def _summary(counters: dict, schedule: list[int], row: dict | None) -> None:
    """One line at the end of a run: how far it got, how long it took, the last logged losses."""
    seconds = int(counters["seconds"])
    hours, minutes, secs = seconds // 3600, seconds % 3600 // 60, seconds % 60
    took = f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"
    losses = ""
    if row is not None:
        shown = [f"{k} {row[k]:.3f}" for k in LOSS_NAMES if row.get(k) not in ("", None)]
        losses = f"; losses at step {row['step']}: " + ", ".join(shown) if shown else ""
    whole, part = counters["epoch"], counters["step_in_epoch"]
    where = (f"{whole} whole epochs of {sum(schedule)}" if not part or whole >= sum(schedule)
             else f"{part} steps into epoch {whole + 1} of {sum(schedule)}")
    log.info("trained %d steps (%s; schedule %d + %d) in %s%s", counters["step"], where, schedule[0], schedule[1],
             took, losses)


def _stop_workers(loader: Any) -> None:
    """End a DataLoader's persistent worker processes (best effort; while another error is on its way out)."""
    try:
        it = getattr(loader, "_iterator", None)
        if it is not None and hasattr(it, "_shutdown_workers"):
            it._shutdown_workers()
    except Exception as e:
        log.debug("stopping the loader's workers after an error: %s", e)


def _failure(e: BaseException | str, kind: type[CganError], save: Any, step: int, run_dir: Path, cfg: TrainConfig,
             fix: str) -> CganError:
    """A training image failed mid-run, memory ran out or torch.compile failed: save the steps trained since the
    last checkpoint and say how to go on (`fix`, then --resume). A data error comes before a
    step, so the model is as the last step left it; memory may run out inside a step, after G's update (G and
    its optimizer one step ahead of the counters: valid weights, that step trained again on resume). Up to an
    epoch of training used to be lost, without a word of --resume (and the other two were torch tracebacks)."""
    from cgan._cli import one_line

    what = e if isinstance(e, str) else one_line(e)  # (from a loader worker: the worker's whole traceback)
    if save is not None:
        try:
            save()
        except Exception as err:  # (a full disk too: the first error stays the one reported)
            log.warning("could not save a checkpoint at step %d: %s", step, one_line(err))
    if not ckpt.list_checkpoints(run_dir):
        return kind(f"{what}; {fix}")
    return kind(f"{what}; the steps trained so far are saved in {run_dir}: {fix}, then go on with "
                f"`cgan-train --name {shlex.quote(cfg.name)} --out {shlex.quote(str(cfg.out))} --resume`")


def _out_of_memory(e: BaseException) -> bool:
    """Whether `e` is memory running out: torch.OutOfMemoryError (CUDA), the CPU allocator's RuntimeError
    ("DefaultCPUAllocator: can't allocate memory"), MPS's, or Python's MemoryError."""
    if isinstance(e, MemoryError) or isinstance(e, getattr(torch, "OutOfMemoryError", ())):
        return True
    return isinstance(e, RuntimeError) and any(s in str(e) for s in ("can't allocate memory", "out of memory",
                                                                      "MPS backend out of memory"))


def _compile_advice(e: BaseException, device: Any) -> tuple[str, str]:
    """(what happened, what to do) for torch.compile failing: torch's first line (not its TORCHDYNAMO_VERBOSE
    hints); a missing C++ compiler or Triton named as such, anything else said to be torch.compile's own error."""
    text = str(e).strip()
    first = first_line(e).split("Set TORCHDYNAMO")[0].strip()
    if "InvalidCxxCompiler" in text or "C++ compiler" in text:
        return (f"--compile failed on {device}: {first} (torch.compile on CPU needs a C++ compiler, g++ or clang++)",
                "install one, or add --no-compile")
    if "triton" in text.lower():
        return (f"--compile failed on {device}: {first} (torch.compile on CUDA needs Triton)",
                "pip install triton, or add --no-compile")
    return (f"--compile failed on {device}: {first} (an error inside torch.compile; CGAN_DEBUG=1 shows its "
            f"traceback)", "add --no-compile")


def _compile_failed(e: BaseException) -> bool:
    """Whether `e` is torch.compile failing (InductorError: no C++ compiler; BackendCompilerFailed), told by
    class name: those classes live in torch's private modules."""
    return any(c.__name__ in ("InductorError", "BackendCompilerFailed") for c in type(e).__mro__)


def _oom_advice(cfg: TrainConfig, steps: int, device: Any) -> tuple[str, str]:
    """(what happened, what to do) for memory running out, by what sets the size the networks train at: --size
    for the cropping modes, --load-size for scale_width, each photo's own size for none (batch 1 there)."""
    when = f"after {steps} steps" if steps else "at the first step"
    if cfg.preprocess == "none":
        return (f"out of memory on {device} {when} (--preprocess none trains on each photo at its own size, "
                f"--ngf {cfg.ngf})", "shrink the largest photos or use a cropping --preprocess (resize_and_crop)")
    option, value = ("--load-size", cfg.load_size) if cfg.preprocess == "scale_width" else ("--size", cfg.size)
    return (f"out of memory on {device} {when} (--preprocess {cfg.preprocess}: {option} {value}, --batch-size "
            f"{cfg.batch_size}, --ngf {cfg.ngf})",
            f"lower {option} or --batch-size, or free what else uses the memory")


def _close_quietly(logger: Any) -> None:
    """Close the run's logger while another error is on its way out (that error is the one to report)."""
    try:
        logger.close()
    except Exception as e:  # e.g. log.csv's flush on the full disk that failed the checkpoint
        log.debug("closing the run's log after an error: %s", e)


def _stop_on_signals(signalled: list[int]) -> Any:
    """Until the returned function is called, SIGINT/SIGTERM append to `signalled` (the loop then stops after its
    step and saves); a second SIGINT raises KeyboardInterrupt (stop now, without saving). Main thread only."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def handler(signum: int, _frame: Any) -> None:
        if signalled and signum == signal.SIGINT:
            raise KeyboardInterrupt
        if not signalled:
            log.warning("%s: stopping after this step; saving a checkpoint and the pair (Ctrl-C again to stop "
                        "without saving)", signal.Signals(signum).name)
        signalled.append(signum)

    old = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}

    def restore() -> None:
        for sig, h in old.items():
            signal.signal(sig, h)

    return restore


def _training_info(cfg: TrainConfig, counters: dict, device: torch.device, n_x: int, n_y: int,
                   schedule: list[int], stopped_by_budget: bool = False) -> dict[str, Any]:
    """What a checkpoint or pair records of its training. epochs/epochs_decay: the schedule it ran (fitted to
    --time-budget if one was given); configured_epochs: what the config asked for."""
    return {"size": cfg.size, "preprocess": cfg.preprocess, "epoch": int(counters["epoch"]),
            "steps": int(counters["step"]), "seconds": round(float(counters["seconds"]), 2),
            "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
            "precision": cfg.precision, "batch_size": cfg.batch_size, "lr": cfg.lr, "compile": cfg.compile,
            "epochs": int(schedule[0]), "epochs_decay": int(schedule[1]),
            "configured_epochs": [cfg.epochs, cfg.epochs_decay], "time_budget": cfg.time_budget,
            "stopped_by_budget": bool(stopped_by_budget), "lambda_cycle": cfg.lambda_cycle,
            "lambda_identity": cfg.lambda_identity, "images": {"X": n_x, "Y": n_y},
            "torch": str(torch.__version__)}


def _progress(enabled: bool, total: int, initial: int, desc: str):
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, desc=desc, unit="it", dynamic_ncols=True, leave=False)


# ---- export a pair from any checkpoint ---------------------------------------------------------------
def export_pair(run_dir: str | os.PathLike, checkpoint: str | os.PathLike | None = None,
                out: str | os.PathLike | None = None, dtype: str = "float32") -> Path:
    """Write the G/F pair of a checkpoint (default: the run's latest) to `out` (default RUN/pair), weights
    stored as `dtype` (float32, float16 or bfloat16)."""
    from cgan.spec import PairSpec

    run_dir = Path(run_dir)
    if not checkpoint and not run_dir.is_dir():
        raise CganError(f"run folder {run_dir} does not exist: give the folder of a cgan-train run (OUT/NAME)")
    if not checkpoint and (run_dir / PAIR_JSON).is_file() and not ckpt.checkpoint_dir(run_dir).is_dir():
        # (it said "no checkpoint in PAIR/checkpoints")
        raise CganError(f"{run_dir} is a pair folder, not a run folder: give the folder of the cgan-train run it "
                        f"came from (OUT/NAME, e.g. {run_dir.parent}), whose checkpoints are exported")
    own = run_dir / "pair"
    none_saved = ("nothing to export; train the run until it saves one (each epoch's end, --save-every-steps, or a "
                  "Ctrl-C), or give --checkpoint FILE")
    path = Path(checkpoint) if checkpoint else ckpt.latest_checkpoint(run_dir, none_saved)
    where = path.resolve()
    foreign = where.parent != ckpt.checkpoint_dir(run_dir).resolve()  # --checkpoint of another run (or none)
    if foreign and (not out or Path(out).resolve() == own.resolve()):  # (another run's weights, other domains
        #                                                                   maybe, went over this run's pair)
        raise CganError(f"--checkpoint {path} is not one of {run_dir}'s checkpoints ({ckpt.checkpoint_dir(run_dir)}): "
                        f"its pair would replace {own}; give --out, or the run folder it comes from")
    out = Path(out) if out else own
    # the run the weights come from: an earlier export of the same run may be replaced, no other pair
    run = str(where.parent.parent) if foreign and where.parent.name == "checkpoints" else str(run_dir.resolve())
    if out.resolve() != own.resolve():  # the run's own pair/ is rewritten freely (it is the run's output)
        check_pair_out(out, lambda prov: prov.get("source") == "cgan-train"
                       and (prov.get("checkpoint_run") or prov.get("run")) == run, "export-pair")
    for attempt in range(3):
        try:
            state = ckpt.load_checkpoint(path, fix="give --checkpoint a file cgan-train saved "
                                         "(RUN/checkpoints/step-*.pt)" if checkpoint else ckpt.RESUME_FIX)
            break
        except CganError:  # (not found, or an IntegrityError: the file went while it was read)
            # the run, training now, saved a newer checkpoint and let this one go between the listing and the
            # read: the latest again (it said the file was "truncated, corrupted or not ours: delete it")
            if checkpoint or path.exists() or attempt == 2:
                raise
            path = ckpt.latest_checkpoint(run_dir, none_saved)
    try:
        spec = PairSpec.from_dict(state["spec"])
        nets = {g: state["nets"][g] for g in ("G", "F")}
    except (KeyError, TypeError) as e:
        raise IntegrityError(f"{path} has no {e} in its spec or networks: not a complete cgan-train checkpoint; "
                             f"use another --checkpoint") from None
    info = dict(state.get("info") or {})
    info["checkpoint"] = path.name
    provenance = {"source": "cgan-train", "run": run}
    if foreign:
        info["checkpoint"] = str(where)
        if where.parent.name == "checkpoints":
            provenance["checkpoint_run"] = str(where.parent.parent)
    return save_pair(out, spec, nets, dtype, training=info, provenance=provenance)


# ---- logs: CSV always, TensorBoard when installed, PNG sample grids ---------------------------------
class _RunLogger:
    def __init__(self, run_dir: Path, cfg: TrainConfig, enabled: bool, purge_step: int | None = None):
        self.run_dir, self.cfg, self.enabled = run_dir, cfg, enabled
        self.sums: dict[str, torch.Tensor] = {}
        self.count = 0
        self.t0 = time.perf_counter()
        self.tb = None
        self.last_row: dict | None = None
        self.at: tuple[int, float, float] = (0, 0.0, 0.0)  # the last step's epoch (1-based) and learning rates
        if not enabled:
            return
        self.csv_path = run_dir / "log.csv"
        self.fields = ["step", "epoch", "lr_G", "lr_D", *LOSS_NAMES, "it_per_s"]
        new = not self.csv_path.exists()
        self.csv_file = open(self.csv_path, "a", newline="")
        self.csv = csv.DictWriter(self.csv_file, fieldnames=self.fields)
        if new:
            self.csv.writeheader()
        if cfg.tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                # purge_step: TensorBoard hides the events of earlier sessions from that step on
                self.tb = SummaryWriter(str(run_dir / "tensorboard"), purge_step=purge_step)
            except ImportError:
                log.info("note: TensorBoard logs are off because the tensorboard package is not installed "
                         "(pip install tensorboard); the CSV log and PNG samples are written")

    def drop_rows_after(self, step: int) -> None:
        """Rows logged after `step` (the checkpoint's, trained again from there; 0 for a fresh start) are
        removed, so the CSV keeps one row per step, in order."""
        if not self.enabled:
            return
        try:
            self.csv_file.flush()
            with open(self.csv_path, newline="") as f:
                rows = list(csv.DictReader(f))
            keep, last = [], 0
            for r in rows:  # whole rows only (a line cut by a crash is dropped), in step order, up to `step`
                s = r.get("step") or ""
                if None in r or not s.isdecimal() or not last < int(s) <= step or any(v is None for v in r.values()):
                    continue
                keep.append(r)
                last = int(s)
            if len(keep) == len(rows):
                return
            self.csv_file.close()
            with atomic_path(self.csv_path) as tmp, open(tmp, "w", newline="") as f:
                writer = csv.DictWriter(f, fieldnames=self.fields, extrasaction="ignore")
                writer.writeheader()
                writer.writerows(keep)
        except (OSError, csv.Error, ValueError) as e:  # the log is a convenience: never the reason a resume fails
            log.warning("could not tidy %s after resuming (%s); it may repeat some steps", self.csv_path, e)
        if self.csv_file.closed:
            self.csv_file = open(self.csv_path, "a", newline="")
            self.csv = csv.DictWriter(self.csv_file, fieldnames=self.fields)

    def step(self, counters: dict, losses: dict[str, torch.Tensor], model: CycleGAN) -> dict | None:
        if not self.enabled:
            return None
        for k, v in losses.items():
            self.sums[k] = self.sums.get(k, 0) + v.float()
        self.count += 1
        # what the step trained at (a row written after the epoch's end would read the next epoch's)
        self.at = (counters["epoch"] + 1, model.opt_G.param_groups[0]["lr"], model.opt_D.param_groups[0]["lr"])
        if counters["step"] % self.cfg.log_every != 0:
            return None
        return self._write_row(counters, model)

    def flush_steps(self, counters: dict, model: CycleGAN) -> None:
        """A row for the steps since the last one (the run's last steps, or all of a run shorter than
        --log-every, which left log.csv with its header only)."""
        if self.enabled and self.count:
            self._write_row(counters, model)

    def _write_row(self, counters: dict, model: CycleGAN) -> dict:
        now = time.perf_counter()
        row = {"step": counters["step"], "epoch": self.at[0], "lr_G": self.at[1], "lr_D": self.at[2],
               **{k: "" for k in LOSS_NAMES}, "it_per_s": round(self.count / max(now - self.t0, 1e-9), 3)}
        for k, v in self.sums.items():
            row[k] = round(float(v) / self.count, 5)
        self.csv.writerow(row)
        self.csv_file.flush()
        if self.tb is not None:
            for k in ("lr_G", "lr_D", *LOSS_NAMES, "it_per_s"):
                if row[k] != "":
                    self.tb.add_scalar(k if k.startswith(("lr", "it")) else f"loss/{k}", row[k], counters["step"])
        self.sums, self.count, self.t0 = {}, 0, now
        self.last_row = row
        return row

    def samples(self, images: dict[str, torch.Tensor], counters: dict) -> None:
        """RUN/samples/epochE_stepS.png: real X | G(X) | F(G(X)) over real Y | F(Y) | G(F(Y))."""
        if not self.enabled:
            return
        import cv2

        tiles = {k: to_uint8(v) for k, v in images.items()}
        top = np.concatenate([tiles["real_X"], tiles["G(X)"], tiles["F(G(X))"]], axis=1)
        bottom = np.concatenate([tiles["real_Y"], tiles["F(Y)"], tiles["G(F(Y))"]], axis=1)
        if top.shape[0] == bottom.shape[0] and top.shape[1] == bottom.shape[1]:
            grid = np.concatenate([top, bottom], axis=0)
        else:
            w = max(top.shape[1], bottom.shape[1])
            pad = lambda a: np.pad(a, ((0, 0), (0, w - a.shape[1]), (0, 0)))  # noqa: E731
            grid = np.concatenate([pad(top), pad(bottom)], axis=0)
        ok, png = cv2.imencode(".png", cv2.cvtColor(grid, cv2.COLOR_RGB2BGR))
        if ok:
            # the epoch the last step trained in, 1-based as in log.csv (epochs done, at an epoch's end)
            epoch = counters["epoch"] + (1 if counters.get("step_in_epoch") else 0)
            name = f"epoch{epoch:04d}_step{counters['step']:09d}.png"
            write_bytes_atomic(self.run_dir / "samples" / name, png.tobytes())
        if self.tb is not None:
            self.tb.add_image("samples", torch.from_numpy(grid).permute(2, 0, 1), counters["step"])

    def close(self) -> None:
        if self.enabled:
            self.csv_file.close()
            if self.tb is not None:
                self.tb.close()
