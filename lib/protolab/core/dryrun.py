"""Dry runs: time a few steps of every long loop of a notebook and predict what the whole run costs.

With the environment variable ``PROTOLAB_DRY_RUN=<n>`` (``protolab run NAME --profile full --dry-run`` sets
it), every metered loop runs one unmeasured warm-up step and ``n`` measured steps, then stops early; the
notebook goes on with its half-trained models, so its numbers mean nothing but its cost is known. Each
metered loop records a :class:`LoopCost` (printed, and appended as one JSON line to ``$PROTOLAB_COST_LOG``
when set — the runner sets it and sums the lines, :func:`estimated_total`).

A loop of a loop is counted ``repeats`` times (:func:`meter`) or, for loops metered in code it calls, with
:func:`repeated`: a training loop of ``E`` epochs stops after a part of the first epoch in a dry run, so the
per-epoch loops inside it are metered once and counted ``E`` times. An outer loop whose iterations cost the
same (seeds) runs its first iteration only, counted for all (:func:`alike`).
Without ``PROTOLAB_DRY_RUN`` every call here returns at once and changes nothing.

torch is imported where a device is read, so that the runner reads cost logs (:func:`read_costs`,
:func:`estimated_total`, :func:`format_duration`) without loading it.
"""

from __future__ import annotations

import json
import math
import os
import resource
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Iterator, TypeVar

if TYPE_CHECKING:
    import torch

DRY_RUN = "PROTOLAB_DRY_RUN"
"""Environment variable: measured steps per loop in a dry run (unset or 0: a normal run)."""

COST_LOG = "PROTOLAB_COST_LOG"
"""Environment variable: a file every metered loop of a dry run appends its :class:`LoopCost` to (JSON lines)."""

_repeats = [1]
T = TypeVar("T")


def dry_run_steps() -> int:
    """Measured steps per loop in a dry run, from ``$PROTOLAB_DRY_RUN``; 0 in a normal run."""
    value = os.environ.get(DRY_RUN, "").strip()
    if not value:
        return 0
    if not value.isdigit():
        raise ValueError(f"{DRY_RUN} must be a number of steps (e.g. 5), got {value!r}")
    return int(value)


@dataclass(frozen=True)
class LoopCost:
    """What one metered loop of a dry run measured.

    Attributes
    ----------
    label : what the loop does ("fewshot training episodes").
    total_steps : steps the full run takes (the loop's own steps × its ``repeats`` × the :func:`repeated` factors
        around it).
    measured_steps : steps timed (after the warm-up step; 0 when the loop had a single step, which is then timed).
    seconds_per_step : mean wall time of a timed step.
    spent_seconds : wall time the dry run spent in this loop, warm-up included.
    peak_memory_bytes : peak memory so far: CUDA ``max_memory_allocated`` on a GPU, else the process's peak RSS.
    device : ``"cpu"`` or ``"cuda"``.
    """

    label: str
    total_steps: int
    measured_steps: int
    seconds_per_step: float
    spent_seconds: float
    peak_memory_bytes: int
    device: str

    @property
    def estimated_seconds(self) -> float:
        """Wall time of the loop in the full run: ``total_steps × seconds_per_step``."""
        return self.total_steps * self.seconds_per_step

    def line(self) -> str:
        return (f"dry run: {self.label}: {self.seconds_per_step * 1e3:.1f} ms/step ({self.measured_steps} timed) × "
                f"{self.total_steps:,} steps ≈ {format_duration(self.estimated_seconds)}; peak memory "
                f"{self.peak_memory_bytes / 2**30:.2f} GiB ({self.device})")


def format_duration(seconds: float) -> str:
    """``"42 s"``, ``"17 min"``, ``"3.4 h"`` or ``"2.1 days"``."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def peak_memory_bytes(device: torch.device | str = "cpu") -> int:
    """Peak memory of this process so far: CUDA allocations on a CUDA ``device``, else the peak RSS."""
    import torch

    device = torch.device(device)
    if device.type == "cuda":
        return int(torch.cuda.max_memory_allocated(device))
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


class Meter:
    """Times the steps of one loop; :meth:`tick` after every step says whether a dry run should stop it.

    Parameters
    ----------
    label : what the loop does. steps : the loop's own number of steps in this run.
    device : where the steps run (CUDA is synchronised before reading the clock).
    repeats : how often the full run runs this loop (an epoch's loop: the epochs), on top of :func:`repeated`.
    """

    def __init__(self, label: str, steps: int, device: torch.device | str = "cpu", repeats: int = 1) -> None:
        import torch

        self.label, self.steps, self.device = label, int(steps), torch.device(device)
        self.budget = dry_run_steps()
        self.factor = math.prod(_repeats) * max(1, int(repeats))
        self.done = 0
        self.stopped = False
        self._start = self._warm = self._now()

    def _now(self) -> float:
        if self.budget and self.device.type == "cuda":
            import torch

            torch.cuda.synchronize(self.device)
        return time.perf_counter()

    def tick(self) -> bool:
        """Count one finished step; True when a dry run has timed enough steps (the caller leaves the loop)."""
        if not self.budget or self.stopped:
            return self.stopped
        self.done += 1
        now = self._now()
        if self.done == 1:
            self._warm = now
        if self.done == self.budget + 1 or self.done >= self.steps:
            timed = self.done - 1
            per_step = (now - self._warm) / timed if timed else now - self._start
            record(LoopCost(self.label, self.steps * self.factor, timed, per_step, now - self._start,
                            peak_memory_bytes(self.device), self.device.type))
            self.stopped = True
        return self.stopped


def meter(label: str, steps: int, device: torch.device | str = "cpu", repeats: int = 1) -> Meter:
    """A :class:`Meter` for a loop of ``steps`` steps on ``device``, run ``repeats`` times in the full run."""
    return Meter(label, steps, device, repeats)


@contextmanager
def measured(label: str, device: torch.device | str = "cpu", repeats: int = 1) -> Iterator[None]:
    """Time the block as the single step of a loop run ``repeats`` times (a validation pass after each
    epoch, say), on top of the :func:`repeated` factors around it."""
    step = Meter(label, 1, device, repeats)
    yield
    step.tick()


@contextmanager
def repeated(times: int) -> Iterator[None]:
    """Count every loop metered inside the block ``times`` times (the loop body of an outer loop that a
    dry run runs once)."""
    _repeats.append(max(1, int(times)))
    try:
        yield
    finally:
        _repeats.pop()


def alike(items: Iterable[T]) -> Iterator[T]:
    """Iterate over ``items`` whose iterations cost the same (seeds, learning-rate schedules): every item in a
    normal run; in a dry run the first only, with every loop metered in its iteration counted ``len(items)``
    times (:func:`repeated`)."""
    items = list(items)
    if not dry_run_steps():
        yield from items
        return
    with repeated(len(items)):
        yield from items[:1]


def record(cost: LoopCost) -> None:
    """Print ``cost`` and append it to ``$PROTOLAB_COST_LOG`` when set."""
    print(cost.line(), flush=True)
    log = os.environ.get(COST_LOG)
    if log:
        with open(log, "a") as handle:
            handle.write(json.dumps(asdict(cost)) + "\n")


def read_costs(path: Path) -> list[LoopCost]:
    """The :class:`LoopCost` lines of a cost log (none when the file does not exist)."""
    path = Path(path)
    if not path.is_file():
        return []
    return [LoopCost(**json.loads(line)) for line in path.read_text().splitlines() if line.strip()]


def estimated_total(costs: list[LoopCost], dry_run_seconds: float) -> float:
    """Predicted wall time of the full run: the dry run's own wall time, minus what it spent in metered loops,
    plus every metered loop's :attr:`LoopCost.estimated_seconds`."""
    return max(0.0, dry_run_seconds - sum(c.spent_seconds for c in costs)) + sum(c.estimated_seconds for c in costs)
