"""Fit the paper's schedule (constant learning rate, then linear decay) into a wall-clock budget.

A GPU lease, a CI job or a night on a workstation gives a training run a fixed amount of time, not a number of
epochs. With `--time-budget` the run measures its own pace and shrinks the schedule so that the learning rate
finishes its linear decay before the time is up, keeping the configured ratio of constant to decay epochs
(the paper's 100 + 100 → 1:1) and never training more epochs than configured.

Rules (each one keeps the learning rate a continuous function of the epoch):
- The schedule is fitted while the run is still in its constant phase: first from the step time measured early
  in the first epoch (after the warm-up steps in which torch.compile and cuDNN autotuning run), then again at
  every epoch's end from the measured epoch time (which includes checkpointing and samples). Shortening or
  lengthening the constant phase does not change the learning rate of any epoch already run.
- Once the decay phase has begun the schedule is fixed.
- Whatever the estimates said, the run stops before the budget is spent, leaving time for the final checkpoint
  and pair (measured from the previous checkpoint). Stopping early in the decay phase is logged as such.
"""
from __future__ import annotations

import logging
import math
import re
import time
from cgan.errors import CganError

log = logging.getLogger(__name__)

_UNITS = {"": 1.0, "s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}


def parse_duration(text: str | float | int) -> float:
    """'420', '420s', '7m', '7.5min', '1h', '1h30m' → seconds (> 0)."""
    if isinstance(text, (int, float)):
        seconds = float(text)
    else:
        s = str(text).strip().lower().replace(" ", "")
        parts = re.findall(r"(\d+(?:\.\d+)?)(h|min|m|s|)", s)
        if not s or not parts or "".join(n + u for n, u in parts) != s or (len(parts) > 1 and any(u == "" for _, u in parts)):
            raise CganError(f"bad duration {text!r}: use seconds or a unit, e.g. 420, 420s, 7m, 1h30m")
        seconds = sum(float(n) * _UNITS[u] for n, u in parts)
    if not math.isfinite(seconds) or seconds <= 0:
        raise CganError(f"bad duration {text!r}: it must be more than 0 seconds")
    return seconds


def fit_schedule(epochs_done: int, epoch_fraction: float, seconds_left: float, epoch_seconds: float,
                 ratio: tuple[int, int], cap: int) -> tuple[int, int]:
    """(constant epochs, decay epochs) for a run that is still in its constant phase.

    epochs_done: whole epochs finished; epoch_fraction: how much of the next one is done (0 = not started).
    Every epoch already (partly) run stays in the constant phase, so its learning rate does not change
    after the fact. seconds_left: training time left (the reserve for the final save already taken off);
    epoch_seconds: predicted wall time of one whole epoch; ratio: configured (constant, decay) epochs;
    cap: configured total (never exceeded).
    """
    if epoch_seconds <= 0:
        raise ValueError("epoch_seconds must be > 0")
    const, decay = ratio
    started = epochs_done + (1 if epoch_fraction > 0 else 0)
    finish_current = (1.0 - epoch_fraction) * epoch_seconds if epoch_fraction > 0 else 0.0
    more = max(0, math.floor((seconds_left - finish_current) / epoch_seconds + 1e-9))
    total = max(started, min(cap, started + more))
    if decay == 0 or total == started:
        return total, 0
    # the configured share of decay epochs (rounded), at least one, never eating into epochs already run
    n_decay = max(1, min(round(total * decay / (const + decay)), total - started))
    return total - n_decay, n_decay


class BudgetFitter:
    """Keeps a run's schedule inside `budget` seconds counted from `clock0`.

    The trainer calls `start_epoch` when an epoch begins, `after_step` after every step (True = stop now),
    `after_epoch` when an epoch's steps are done (before its checkpoint) and `saved(seconds)` after each
    checkpoint.
    `schedule` is the run's live [constant, decay] list (the trainer's learning-rate rule reads it); `ratio` is
    the configured (constant, decay) epochs: the share kept and the most epochs ever trained.
    """

    def __init__(self, budget: float, clock0: float, steps_per_epoch: int, schedule: list[int],
                 ratio: tuple[int, int], warmup_steps: int = 10, probe_steps: int = 20, clock=time.perf_counter,
                 verbose: bool = True):
        self.budget, self.clock0, self.steps_per_epoch = budget, clock0, max(1, steps_per_epoch)
        self.schedule, self.clock = schedule, clock
        self.ratio, self.cap = (int(ratio[0]), int(ratio[1])), int(ratio[0]) + int(ratio[1])
        self.warmup_steps, self.probe_steps, self.verbose = warmup_steps, probe_steps, verbose
        self.save_seconds: float | None = None
        self.step_seconds: float | None = None   # from the probe (compile/autotune warm-up excluded)
        self.stopped_early = False
        self._steps = 0                          # steps run by this process
        self._last_step_t: float | None = None
        self.last_step_seconds: float | None = None
        self._probe_t: float | None = None
        self._epochs_seen = 0                    # whole epochs run by this process
        self._epoch_started = clock()

    def reserve(self) -> float:
        """Seconds kept back for the final checkpoint and pair: 2.5 × the last save (but at least 5 s or 5 % of
        the budget, whichever is less); before the first save, 15 s or 10 % of the budget, whichever is less."""
        if self.save_seconds is None:
            return min(15.0, 0.1 * self.budget)
        return max(min(5.0, 0.05 * self.budget), 2.5 * self.save_seconds)

    def seconds_left(self) -> float:
        return self.budget - (self.clock() - self.clock0) - self.reserve()

    def in_constant_phase(self, epoch: int) -> bool:
        return epoch < self.schedule[0]

    def start_epoch(self) -> None:
        self._epoch_started = self._last_step_t = self.clock()  # a step's time excludes the epoch-end saves

    def saved(self, seconds: float) -> None:
        self.save_seconds = seconds

    def after_step(self, epoch: int, step_in_epoch: int) -> bool:
        """`step_in_epoch` steps of epoch `epoch` (0-based) are done. True: stop now, the budget is spent."""
        self._steps += 1
        now = self.clock()
        if self._last_step_t is not None:
            self.last_step_seconds = now - self._last_step_t
        self._last_step_t = now
        if self.step_seconds is None:
            if self._steps == self.warmup_steps:
                self._probe_t = self.clock()
            elif self._probe_t is not None and self._steps == self.warmup_steps + self.probe_steps:
                self.step_seconds = (self.clock() - self._probe_t) / self.probe_steps
                if self.in_constant_phase(epoch):
                    self._refit(epoch, step_in_epoch / self.steps_per_epoch, self._epoch_estimate(),
                                f"{self.step_seconds * 1000:.0f} ms per step")
        # before the probe has measured the pace, the last step's time stands in for it
        if self.seconds_left() < (self.step_seconds or self.last_step_seconds or 0.0):
            self.stopped_early = True
            return True
        return False

    def after_epoch(self, epoch: int) -> None:
        """The steps of epoch `epoch` (0-based) are done; its checkpoint comes next (the trainer calls this before
        its scheduler sets the next epoch's learning rate, so a refit applies from the next epoch on)."""
        now = self.clock()
        measured = now - self._epoch_started
        self._epochs_seen += 1
        # the first epoch of a process carries compile/autotune warm-up: trust the probe over it
        first = self._epochs_seen == 1 and self.step_seconds is not None
        epoch_seconds = self._epoch_estimate() if first else measured + self._save_estimate(measured)
        if self.in_constant_phase(epoch + 1) and epoch_seconds > 0:
            self._refit(epoch + 1, 0.0, epoch_seconds, f"epoch {epoch + 1} took {measured:.1f} s")

    def _epoch_estimate(self) -> float:
        steps = (self.step_seconds or 0.0) * self.steps_per_epoch
        return steps + self._save_estimate(steps)

    def _save_estimate(self, epoch_steps_seconds: float) -> float:
        """An epoch-end checkpoint's time: the last one measured, else 10 % of the epoch's steps (at most 2 s) —
        a flat guess would make tiny epochs look slow and end their constant phase for good."""
        return self.save_seconds if self.save_seconds is not None else min(2.0, 0.1 * epoch_steps_seconds)

    def _refit(self, epochs_done: int, fraction: float, epoch_seconds: float, why: str) -> None:
        new = list(fit_schedule(epochs_done, fraction, self.seconds_left(), epoch_seconds, self.ratio, self.cap))
        if new != self.schedule and self.verbose:
            log.info("time budget %.0f s, %.0f s left: schedule %d + %d epochs -> %d + %d (%s; ~%.1f s per epoch)",
                     self.budget, max(0.0, self.seconds_left()), *self.schedule, *new, why, epoch_seconds)
        self.schedule[:] = new
