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
- Once the decay phase has begun the schedule is fixed -- except for a decay-only schedule (--epochs 0), whose
  decay begins with the first epoch: it is fitted during its first epoch and at its end, before the second
  epoch's rate is set (the first epoch's rate, which changes from 1 - 1/(N+1) to 1 - 1/(N'+1), is near 1 either
  way).
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
        if s.startswith("-") and re.fullmatch(r"-[\d.]+[a-z]*", s):  # (a number: said to need a unit)
            raise CganError(f"bad duration {text!r}: it must be more than 0 seconds")
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
    if const == 0 and decay:  # decay only: the epochs already run are decay epochs too
        return 0, total
    if decay == 0 or total == started:
        return total, 0
    # the configured share of decay epochs (rounded), at least one, never eating into epochs already run
    n_decay = max(1, min(round(total * decay / (const + decay)), total - started))
    return total - n_decay, n_decay


class BudgetFitter:
    """Keeps a run's schedule inside `budget` seconds counted from `clock0`.

    The trainer calls `start_epoch` when an epoch begins, `after_step` after every step (True = stop now),
    `after_epoch` when an epoch's steps are done (before its checkpoint) and `saved(seconds)` after each
    checkpoint. `schedule` is the run's live [constant, decay] list (the trainer's learning-rate rule reads
    it); `ratio` is the configured (constant, decay) epochs: the share kept and the most epochs ever trained.

    The pace: the mean time of this process's recent steps, leaving out its first `warmup_steps` (torch.compile,
    cuDNN autotuning and worker start-up happen there; pass more for a compiled run). The first fit comes once
    `probe_steps` steady steps are timed; every epoch's end refits from the epoch's measured time, except for
    a process's first epoch, which carries the warm-up: that one is scaled from the steady steps.
    """

    def __init__(self, budget: float, clock0: float, steps_per_epoch: int, schedule: list[int],
                 ratio: tuple[int, int], warmup_steps: int = 1, probe_steps: int = 20, clock=time.perf_counter,
                 verbose: bool = True, margin: float = 0.03, warmup_is_slow: bool = False):
        self.budget, self.clock0, self.steps_per_epoch = budget, clock0, max(1, steps_per_epoch)
        self.schedule, self.clock = schedule, clock
        self.ratio, self.cap = (int(ratio[0]), int(ratio[1])), int(ratio[0]) + int(ratio[1])
        self.warmup_steps, self.probe_steps, self.verbose = max(0, warmup_steps), max(1, probe_steps), verbose
        self.margin = margin                     # share of the time left not planned (timing jitter)
        # before a steady step is timed the hard stop can only use the warm-up's own step time — unless that
        # holds a compilation (torch.compile: minutes), which says nothing about the pace
        self.warmup_is_slow = warmup_is_slow
        self.last_step_seconds: float | None = None
        self.save_seconds: float | None = None
        self.stopped_early = False
        self._steps = 0                          # steps run by this process
        self._steady: list[float] = []           # durations of the latest steps after the warm-up (≤ 50)
        self._epoch_steady = [0.0, 0]            # this epoch's steps after the warm-up: total seconds, count
        self._fitted_from_steps = False
        self._last_step_t: float | None = None
        self._epochs_seen = 0                    # epochs whose steps this process ran
        self._epoch_started = clock()
        self._epoch_ended: float | None = None   # when the last epoch's steps ended (after_epoch)
        self.end_seconds: float | None = None    # the last epoch's end: scheduler, sample grid, checkpoint
        self._warned_no_decay = False
        self._first_epoch: int | None = None     # the epoch this process started in (a resumed one: later)

    # ---- time ----------------------------------------------------------------------------------------------
    def reserve(self) -> float:
        """Seconds kept back for the final checkpoint and pair: 2.5 × the last save (but at least 5 s or 5 % of
        the budget, whichever is less); before the first save, 15 s or 10 % of the budget, whichever is less."""
        if self.save_seconds is None:
            return min(15.0, 0.1 * self.budget)
        return max(min(5.0, 0.05 * self.budget), 2.5 * self.save_seconds)

    def seconds_left(self) -> float:
        return self.budget - (self.clock() - self.clock0) - self.reserve()

    @property
    def pace_measured(self) -> bool:
        """Whether this process timed enough steady steps (probe_steps) to know its pace (a decay-phase epoch
        times them without refitting the schedule)."""
        return self._fitted_from_steps or len(self._steady) >= self.probe_steps

    @property
    def step_seconds(self) -> float | None:
        """The steady pace (mean of the latest steps after the warm-up), None before one is timed."""
        return sum(self._steady) / len(self._steady) if self._steady else None

    def can_refit(self, epoch: int, at_start: bool = False) -> bool:
        """Whether the schedule may change during `epoch` (0-based), or `at_start` of it (before the scheduler sets
        its rate): in the constant phase; a decay-only schedule during its first epoch and at the start of the
        second, never later (the rates of the epochs run would change after the fact; see the module)."""
        return epoch < self.schedule[0] or (self.ratio[0] == 0 and self._first_epoch == 0 and
                                            epoch == (1 if at_start else 0))

    # ---- hooks ---------------------------------------------------------------------------------------------
    def start_epoch(self, epoch: int = 0) -> None:
        if self._first_epoch is None:
            self._first_epoch = epoch
        self._epoch_started = self._last_step_t = self.clock()  # a step's time excludes the epoch-end saves
        self._epoch_steady = [0.0, 0]
        if self._epoch_ended is not None:  # what the trainer did between the epochs: part of every epoch's time
            self.end_seconds = self._epoch_started - self._epoch_ended

    def saved(self, seconds: float) -> None:
        self.save_seconds = seconds
        if self._last_step_t is not None:  # a mid-epoch checkpoint is not part of the next step's time
            self._last_step_t += seconds

    def after_step(self, epoch: int, step_in_epoch: int) -> bool:
        """`step_in_epoch` steps of epoch `epoch` (0-based) are done. True: stop now, the budget is spent."""
        self._steps += 1
        now = self.clock()
        if self._last_step_t is not None:
            self.last_step_seconds = now - self._last_step_t
            if self._steps > self.warmup_steps:
                self._steady = (self._steady + [self.last_step_seconds])[-50:]
                self._epoch_steady[0] += self.last_step_seconds
                self._epoch_steady[1] += 1
        self._last_step_t = now
        if (not self._fitted_from_steps and len(self._steady) >= self.probe_steps
                and self.can_refit(epoch)):
            self._fitted_from_steps = True
            self._refit(epoch, step_in_epoch / self.steps_per_epoch, self._epoch_estimate(),
                        f"{self.step_seconds * 1000:.0f} ms per step")
        # not enough time for one more step at the steady pace (before it is known: at the last step's, or,
        # when the warm-up compiles, only once no time is left at all)
        pace = self.step_seconds or (0.0 if self.warmup_is_slow else self.last_step_seconds or 0.0)
        if self.seconds_left() < pace:
            self.stopped_early = True
            return True
        return False

    def after_epoch(self, epoch: int) -> None:
        """The steps of epoch `epoch` (0-based) are done; its checkpoint comes next (the trainer calls this before
        its scheduler sets the next epoch's learning rate, so a refit applies from the next epoch on)."""
        self._epoch_ended = self.clock()
        measured = self._epoch_ended - self._epoch_started
        self._epochs_seen += 1
        if self.stopped_early or not self.can_refit(epoch + 1, at_start=True):
            return
        if self._epochs_seen == 1:
            # the warm-up is in here, and a resumed process may have run only part of this epoch
            if self.step_seconds is None:
                return  # no steady step timed yet: leave the schedule until there is one
            # the mean of all its steps after the warm-up, not of the latest 50: on an H200 a stall of a few
            # seconds near the epoch's end made those read 145 ms per step where the epoch ran at 74 ms, and the
            # schedule shrank from 5 + 4 epochs to 2 + 2, leaving 40 % of the budget unused
            total, n = self._epoch_steady
            pace = total / n if n >= self.probe_steps else self.step_seconds
            steps = pace * self.steps_per_epoch
            epoch_seconds, why = steps + self._save_estimate(steps), f"{pace * 1000:.0f} ms per step"
        else:
            epoch_seconds, why = measured + self._save_estimate(measured), f"epoch {epoch + 1} took {measured:.1f} s"
        self._refit(epoch + 1, 0.0, epoch_seconds, why)

    # ---- fitting -------------------------------------------------------------------------------------------
    def _epoch_estimate(self) -> float:
        steps = (self.step_seconds or 0.0) * self.steps_per_epoch
        return steps + self._save_estimate(steps)

    def _save_estimate(self, epoch_steps_seconds: float) -> float:
        """An epoch's end (its sample grid and checkpoint): the last one measured between two epochs, else the last
        checkpoint's time, else 10 % of the epoch's steps (at most 2 s) — a flat guess would make tiny epochs look
        slow and end their constant phase for good. (The checkpoint alone left out the sample grid: on epochs of
        a fraction of a second the decay was fitted 8-12 % short and did not finish.)"""
        if self.end_seconds is not None:
            return self.end_seconds
        return self.save_seconds if self.save_seconds is not None else min(2.0, 0.1 * epoch_steps_seconds)

    def _refit(self, epochs_done: int, fraction: float, epoch_seconds: float, why: str) -> None:
        left = self.seconds_left() * (1.0 - self.margin)
        new = list(fit_schedule(epochs_done, fraction, left, epoch_seconds, self.ratio, self.cap))
        if new != self.schedule and self.verbose:
            log.info("time budget %.6g s, %.0f s left: schedule %d + %d epochs -> %d + %d (%s; ~%.1f s per epoch)",
                     self.budget, max(0.0, self.seconds_left()), *self.schedule, *new, why, epoch_seconds)
        if new[1] == 0 and self.ratio[1] > 0 and self.verbose and not self._warned_no_decay:
            self._warned_no_decay = True
            log.warning("time budget %.6g s: no time is left for the learning-rate decay (about %.1f s per epoch); "
                        "give more time or a smaller --size/--batch-size", self.budget, epoch_seconds)
        self.schedule[:] = new
