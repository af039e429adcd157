"""Grid cells are computed once, stored as they finish, and reused after an interruption."""

from __future__ import annotations

import importlib
import os
import pickle
import shutil
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Iterator

import pytest
import torch

import protolab.zsl.grid
from protolab.runner.grid import NOT_FINGERPRINTED, cell_key, code_fingerprint, fingerprinted_modules, run_grid

CELLS = [{"variant": name, "seed": seed} for name in ("a", "b") for seed in (0, 1, 2)]


class Recorder:
    """A compute function that remembers its calls and can fail at a chosen call."""

    def __init__(self, fail_at: int | None = None) -> None:
        self.calls: list[dict] = []
        self.fail_at = fail_at

    def __call__(self, cell: dict) -> dict:
        if self.fail_at is not None and len(self.calls) == self.fail_at:
            raise KeyboardInterrupt
        self.calls.append(dict(cell))
        return {"H": 0.1 * cell["seed"], "name": cell["variant"], "matrix": torch.full((2, 2), float(cell["seed"])),
                "history": [{"epoch": 1, "loss": 0.5}]}


def test_cell_key_ignores_key_order_and_depends_on_fingerprint() -> None:
    assert cell_key({"a": 1, "b": [1, 2]}) == cell_key({"b": [1, 2], "a": 1})
    assert cell_key({"a": 1}) != cell_key({"a": 2})
    assert cell_key({"a": 1}, "code-1") != cell_key({"a": 1}, "code-2")


def test_second_run_reuses_every_cell(tmp_path: Path) -> None:
    first = Recorder()
    run = run_grid(CELLS, first, tmp_path, progress=False)
    assert first.calls == CELLS and run.sources == ["computed"] * len(CELLS)
    again = Recorder()
    reused = run_grid(CELLS, again, tmp_path, progress=False)
    assert again.calls == [] and reused.sources == ["cached"] * len(CELLS)
    for new, old in zip(reused.results, run.results):
        assert new["H"] == old["H"] and new["name"] == old["name"] and new["history"] == old["history"]
        assert torch.equal(new["matrix"], old["matrix"])


def test_interrupted_run_resumes_with_only_the_missing_cells(tmp_path: Path) -> None:
    with pytest.raises(KeyboardInterrupt):
        run_grid(CELLS, Recorder(fail_at=4), tmp_path, progress=False)
    assert len(list(tmp_path.glob("*.pt"))) == 4
    assert not list(tmp_path.glob(".*.tmp")), "no partial file is left behind"
    resumed = Recorder()
    run = run_grid(CELLS, resumed, tmp_path, progress=False)
    assert resumed.calls == CELLS[4:]
    assert run.sources == ["cached"] * 4 + ["computed"] * 2
    assert [r["H"] for r in run.results] == [0.1 * c["seed"] for c in CELLS]


def test_reuse_false_recomputes_and_other_fingerprints_do_not_share(tmp_path: Path) -> None:
    run_grid(CELLS[:2], Recorder(), tmp_path, fingerprint="v1", progress=False)
    other_code = Recorder()
    run_grid(CELLS[:2], other_code, tmp_path, fingerprint="v2", progress=False)
    assert other_code.calls == CELLS[:2]
    forced = Recorder()
    assert run_grid(CELLS[:2], forced, tmp_path, fingerprint="v1", reuse=False, progress=False).sources == [
        "computed", "computed"]
    assert forced.calls == CELLS[:2]


def test_damaged_or_foreign_files_are_recomputed_not_trusted(tmp_path: Path) -> None:
    run_grid(CELLS[:2], Recorder(), tmp_path, progress=False)
    damaged = tmp_path / f"{cell_key(CELLS[0])}.pt"
    damaged.write_bytes(damaged.read_bytes()[:20])
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return os.system, (f"touch {marker}",)

    (tmp_path / f"{cell_key(CELLS[1])}.pt").write_bytes(pickle.dumps(Exploit(), protocol=2))
    again = Recorder()
    with pytest.warns(UserWarning, match="unreadable cached cell"):
        run = run_grid(CELLS[:2], again, tmp_path, progress=False)
    assert again.calls == CELLS[:2] and run.sources == ["computed", "computed"]
    assert not marker.exists()


def test_a_file_stored_for_another_cell_is_not_used(tmp_path: Path) -> None:
    run_grid(CELLS[:1], Recorder(), tmp_path, progress=False)
    (tmp_path / f"{cell_key(CELLS[0])}.pt").rename(tmp_path / f"{cell_key(CELLS[1])}.pt")
    again = Recorder()
    with pytest.warns(UserWarning, match="another cell"):
        run_grid(CELLS[1:2], again, tmp_path, progress=False)
    assert again.calls == CELLS[1:2]


# A package of a few modules: ``zsl/grid.py`` runs the model code (relative, absolute and function-level
# imports) and also imports the platform (``runner``) and the plots, which import a module of their own.
MINILAB = {
    "__init__.py": "",
    "core/__init__.py": "",
    "core/seeding.py": "SEED = 0\n",
    "data.py": "from .core import seeding\n\nROWS = 3\n",
    "training/__init__.py": "",
    "training/loops.py": "STEPS = 2\n",
    "zsl/__init__.py": "",
    "zsl/model.py": "from ..core.seeding import SEED\n\nWIDTH = 4\n",
    "zsl/fit.py": ("import minilab.data\nfrom minilab.zsl import model\n\n\ndef fit():\n"
                   "    import minilab.training.loops\n\n    return minilab.training.loops.STEPS * model.WIDTH\n"),
    "zsl/grid.py": "from minilab import plots\nfrom minilab.runner.slurm import PARTITION\nfrom .fit import fit\n",
    "plots.py": "from minilab import palette\nfrom minilab.zsl import model\n\nCOLOR = 'red'\n",
    "palette.py": "COLORS = 3\n",
    "runner/__init__.py": "",
    "runner/slurm.py": "from minilab.training import loops\n\nPARTITION = 'cpu'\n",
    "unrelated.py": "X = 1\n",
}


@pytest.fixture
def minilab_grid(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    """``minilab.zsl.grid`` of :data:`MINILAB`, written under ``tmp_path/site`` and imported from there."""
    for name, text in MINILAB.items():
        path = tmp_path / "site" / "minilab" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    yield importlib.import_module("minilab.zsl.grid")
    for name in [name for name in sys.modules if name.partition(".")[0] == "minilab"]:
        del sys.modules[name]


def test_code_fingerprint_follows_the_imports_of_the_model_code_and_skips_platform_and_plots(minilab_grid) -> None:
    assert list(fingerprinted_modules(minilab_grid)) == [
        "minilab", "minilab.core", "minilab.core.seeding", "minilab.data", "minilab.training",
        "minilab.training.loops", "minilab.zsl", "minilab.zsl.fit", "minilab.zsl.grid", "minilab.zsl.model"]


@pytest.mark.parametrize("edited, changes_the_key", [
    ("plots.py", False), ("palette.py", False), ("runner/slurm.py", False), ("runner/__init__.py", False),
    ("unrelated.py", False),
    ("zsl/fit.py", True),  # imported by the module given
    ("zsl/model.py", True),  # through fit.py
    ("core/seeding.py", True),  # through model.py's ``from ..core.seeding`` and data.py's ``from .core import``
    ("training/loops.py", True),  # imported inside a function
    ("training/__init__.py", True),  # runs on ``import minilab.training.loops``, named by no import
])
def test_code_fingerprint_changes_only_with_the_code_the_model_runs(minilab_grid, edited: str,
                                                                    changes_the_key: bool) -> None:
    before = code_fingerprint(minilab_grid)
    path = Path(minilab_grid.__file__).parents[1] / edited
    path.write_text(path.read_text() + "EDITED = True\n")
    assert (code_fingerprint(minilab_grid) != before) == changes_the_key


def test_code_fingerprint_is_the_same_in_another_process_and_another_folder(minilab_grid, tmp_path: Path) -> None:
    key = code_fingerprint(minilab_grid)
    assert code_fingerprint(minilab_grid) == key
    elsewhere = tmp_path / "elsewhere" / "deeper"
    shutil.copytree(Path(minilab_grid.__file__).parents[1], elsewhere / "minilab")
    script = ("import minilab.zsl.grid\nfrom protolab.runner.grid import code_fingerprint\n"
              "print(code_fingerprint(minilab.zsl.grid))")
    completed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                               cwd=elsewhere, env={**os.environ, "PYTHONPATH": str(elsewhere), "PYTHONHASHSEED": "7"})
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip() == key


def test_the_ipn_grid_key_covers_its_model_training_and_data_code_not_the_platform_or_plots() -> None:
    covered = set(fingerprinted_modules(protolab.zsl.grid))
    assert {"protolab.zsl.grid", "protolab.zsl.fit", "protolab.zsl.ipn", "protolab.training.loops",
            "protolab.training.episodes", "protolab.data.glyph_zsl", "protolab.data.xlsa17", "protolab.metrics",
            "protolab.core.reproducibility", "protolab.core.onednn",
            "protolab.zsl.hyperbolic_ipn", "protolab.hyperbolic"} <= covered  # the hyperbolic IPN arm's code too
    assert not {name for name in covered if name.split(".")[1:2] and name.split(".")[1] in NOT_FINGERPRINTED}
    assert not {"protolab.fewshot", "protolab.reid", "protolab.uncertainty"} & covered


def _train_tiny(cell: dict) -> dict:
    """A seeded few-step training whose result would change with the thread count if it were not fixed."""
    torch.manual_seed(cell["seed"])
    x, w = torch.randn(256, 64), torch.randn(64, 1, requires_grad=True)
    optimizer = torch.optim.SGD([w], lr=0.01)
    for _ in range(20):
        optimizer.zero_grad()
        ((x @ w).tanh().sum() ** 2).backward()
        optimizer.step()
    return {"w": w.detach(), "threads": torch.get_num_threads(), "pid": os.getpid()}


def test_parallel_workers_give_the_sequential_results_with_one_thread_per_cell(tmp_path: Path) -> None:
    cells = [{"seed": seed} for seed in range(4)]
    threads = torch.get_num_threads()
    sequential = run_grid(cells, _train_tiny, tmp_path / "one", progress=False)
    parallel = run_grid(cells, _train_tiny, tmp_path / "two", progress=False, workers=2)
    assert torch.get_num_threads() == threads, "the caller's thread setting is restored"
    assert parallel.sources == ["computed"] * 4 and len(list((tmp_path / "two").glob("*.pt"))) == 4
    assert {r["pid"] for r in parallel.results}.isdisjoint({os.getpid()}), "cells ran in worker processes"
    for one, two in zip(sequential.results, parallel.results):
        assert one["threads"] == two["threads"] == 1
        assert torch.equal(one["w"], two["w"])
    assert run_grid(cells, Recorder(), tmp_path / "two", progress=False, workers=2).sources == ["cached"] * 4


def _fail_on_seed_two(cell: dict) -> dict:
    if cell["seed"] == 2:
        time.sleep(0.5)  # the other cells are stored by then
        raise RuntimeError("cell 2 failed")
    return {"seed": cell["seed"]}


def test_a_failing_worker_cell_raises_and_the_finished_cells_stay_stored(tmp_path: Path) -> None:
    cells = [{"seed": seed} for seed in range(3)]
    with pytest.raises(RuntimeError, match="cell 2 failed"):
        run_grid(cells, _fail_on_seed_two, tmp_path, progress=False, workers=2)
    resumed = Recorder()
    run = run_grid(cells[:2], resumed, tmp_path, progress=False)
    assert run.sources == ["cached", "cached"] and resumed.calls == []


def test_workers_accept_closures_over_local_data(tmp_path: Path) -> None:
    scale = torch.arange(3.0)
    run = run_grid([{"seed": s} for s in range(3)], lambda cell: {"v": scale * cell["seed"]}, tmp_path,
                   progress=False, workers=2)
    assert [r["v"].tolist() for r in run.results] == [[0.0, 0.0, 0.0], [0.0, 1.0, 2.0], [0.0, 2.0, 4.0]]


def test_progress_off_a_terminal_is_plain_cells_done_lines(tmp_path: Path, capsys) -> None:
    run_grid(CELLS[:2], Recorder(), tmp_path, progress=False)
    capsys.readouterr()
    run_grid(CELLS, Recorder(), tmp_path)  # capsys: stderr is no terminal
    out, err = capsys.readouterr()
    total = len(CELLS)
    assert out.splitlines() == [f"grid: {k}/{total} cells done (2 cached)" for k in range(2, total + 1)]
    assert "grid (" not in err, "no tqdm bar off a terminal"


def test_progress_on_a_terminal_is_a_bar_with_no_plain_lines(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    run_grid(CELLS, Recorder(), tmp_path)
    out, err = capsys.readouterr()
    assert "cells done" not in out and f"/{len(CELLS)}" in err


def test_an_unknown_executor_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="executor must be one of local, slurm, got 'pbs'"):
        run_grid(CELLS, Recorder(), tmp_path, progress=False, executor="pbs")


def test_every_grid_reports_its_models_done_for_the_runners_progress_line(tmp_path: Path, monkeypatch) -> None:
    from protolab.runner.environment import PROGRESS_DIR
    from protolab.runner.progress import models_progress

    progress = tmp_path / "progress"
    monkeypatch.setenv(PROGRESS_DIR, str(progress))
    seen: list[tuple[int, int]] = []
    recorder = Recorder()

    def compute(cell: dict) -> dict:
        seen.append(models_progress(progress))
        return recorder(cell)

    run_grid(CELLS[:2], compute, tmp_path / "first", progress=False)
    assert seen == [(0, 2), (1, 2)] and models_progress(progress) == (2, 2)
    run_grid(CELLS, Recorder(), tmp_path / "second", progress=False)
    assert models_progress(progress) == (8, 8), "two grids: their counts add up"
    assert models_progress(tmp_path / "nothing") == (0, 0)
