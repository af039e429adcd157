"""One progress bar over a whole run, its time left estimated from each notebook's last duration.

:func:`estimated_durations` reads the last durations from ``runs.json``; :class:`RunProgress` draws the bar on
stderr while :func:`protolab.runner.execute.run_notebooks` runs.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from protolab.runner.report import read_runs


def estimated_durations(out_dirs: Sequence[Path], names: Sequence[str], profile: str) -> dict[str, float | None]:
    """Each notebook's wall time in its last successful run with ``profile``, from the first of ``out_dirs``
    whose ``runs.json`` has one (None: unknown)."""
    runs = [read_runs(directory) if Path(directory, "runs.json").is_file() else {} for directory in out_dirs]
    estimates: dict[str, float | None] = {}
    for name in names:
        known = (record.get(name, {}) for record in runs)
        estimates[name] = next((float(run["wall_time_s"]) for run in known if run.get("status") == "ok"
                                and run.get("profile") == profile and run.get("wall_time_s")), None)
    return estimates


def models_progress(folder: Path) -> tuple[int, int]:
    """Models done and in total over every grid that reported into ``folder`` (0, 0 when none did)."""
    done = total = 0
    for path in Path(folder).glob("*.json"):
        try:
            counts = json.loads(path.read_text())
        except (OSError, ValueError):  # being replaced right now: counted at the next look
            continue
        done, total = done + int(counts["done"]), total + int(counts["total"])
    return done, total


class RunProgress:
    """One tqdm bar over a whole run, on stderr.

    Measured in estimated seconds of work when every notebook's last duration is known (a running notebook
    counts for its elapsed time, up to its estimate; unknown durations then count as the mean of known ones),
    else in notebooks (count-based); the time left is tqdm's estimate from that. With ``models_dir`` the bar also
    shows the models done / in total that the run's grids reported there (:func:`models_progress`), refreshed
    every second. Disabled, it does nothing.
    """

    def __init__(self, estimates: Mapping[str, float | None], enabled: bool = True,
                 models_dir: Path | None = None) -> None:
        from tqdm import tqdm

        known = [value for value in estimates.values() if value]
        self.timed = bool(known)
        mean = sum(known) / len(known) if known else 1.0
        self.estimates = {name: (value or mean) if self.timed else 1.0 for name, value in estimates.items()}
        self.running: dict[str, float] = {}
        self.done = 0.0
        self.lock = threading.Lock()
        self.bar = tqdm(total=round(sum(self.estimates.values()), 1) if self.timed else len(self.estimates),
                        desc="protolab run", unit="s" if self.timed else "notebook", file=sys.stderr,
                        disable=not enabled, dynamic_ncols=True, leave=True,
                        bar_format="{l_bar}{bar}| {n:.0f}/{total:.0f} {unit} [{elapsed}<{remaining}{postfix}]")
        self.enabled = enabled
        self.ticking = threading.Event()
        self.models_dir = models_dir
        self.ticker = threading.Thread(target=self._tick, daemon=True) if enabled else None
        if self.ticker:
            self.ticker.start()

    def started(self, name: str) -> None:
        with self.lock:
            self.running[name] = time.monotonic()

    def finished(self, name: str) -> None:
        with self.lock:
            self.running.pop(name, None)
            self.done += self.estimates.get(name, 1.0)
            self._show()

    def _show(self) -> None:
        now = time.monotonic()
        partial = sum(min(now - since, 0.95 * self.estimates.get(name, 1.0)) for name, since in self.running.items()
                      ) if self.timed else 0.0
        self.bar.n = round(min(self.done + partial, self.bar.total), 1)
        done, total = models_progress(self.models_dir) if self.models_dir else (0, 0)
        self.bar.set_postfix_str(f"models {done}/{total}" if total else "", refresh=False)
        self.bar.refresh()

    def _tick(self) -> None:
        while not self.ticking.wait(1.0):
            with self.lock:
                self._show()

    def close(self) -> None:
        self.ticking.set()
        if self.ticker:
            self.ticker.join()
        self.bar.close()
