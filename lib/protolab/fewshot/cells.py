"""The grid behind ``notebooks/fewshot_tables``: one cell per trained model, run by
:func:`protolab.runner.model_grid.run_model_grid`.

A cell is ``{"geometry", "shot", "train_way", "c", "seed", "test_seed", "protocol", "amp", "device", "dataset",
"data"}``: the model (``c`` is None for a Euclidean one, which has no curvature), its training seed
(initialisation and training episodes; validation episodes ``seed + 1``), the seed of the test episodes (None: a
tuning model, trained and validated but never tested), the :class:`~protolab.fewshot.protocol.ProtocolSettings`
as a dict (its ``lr`` the model's learning rate), and the :func:`~protolab.runner.model_grid.data_fingerprint` of
the training, validation and test images.

:func:`~protolab.fewshot.protocol.train_and_test` tests a model on episodes seeded by its own training seed
(``seed + 2``), which would give every seed other episodes. A cell is therefore tested on the episodes that
:func:`~protolab.fewshot.protocol.evaluate_protonet` draws for ``test_seed`` (seeded ``test_seed + 2``), the
same for every cell of a run: every model, whatever its geometry, curvature or training seed, is tested on the
same episodes, so per-seed differences between geometries are paired. The notebook passes its first seed, so a
one-seed run tests on the episodes :func:`~protolab.fewshot.protocol.train_and_test` would use.

Finished cells are stored under ``$PROTOLAB_CACHE_DIR/grids/fewshot_tables/``, keyed by the cell and the
:func:`~protolab.runner.grid.code_fingerprint` of this module (the protocol, model, training and data code it
runs; not the plots, claims or runner).
"""

from __future__ import annotations

import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch

from protolab.data.fewshot_sets import FewShotSplits
from protolab.fewshot.protocol import ProtocolSettings, evaluate_protonet, train_protonet
from protolab.runner.grid import GridRun
from protolab.runner.model_grid import data_fingerprint, run_model_grid

__all__ = ["Model", "arm_name", "fewshot_cell", "run_fewshot_grid"]

Model = tuple[str, int, int, float | None, float]
"""One model setting of the grid: ``(geometry, shot, train_way, c, lr)``, ``c`` None for a Euclidean model."""


def arm_name(geometry: str, shot: int, c: float | None, lr: float | None = None) -> str:
    """The name of a model setting (all its seeds), e.g. ``"hyperbolic, 1-shot, c=1"`` or ``"euclidean, 5-shot"``;
    with ``lr`` (the tuning grid's settings) it ends with ``", lr=0.001"``."""
    return (f"{geometry}, {shot}-shot" + (f", c={c:g}" if geometry == "hyperbolic" else "")
            + ("" if lr is None else f", lr={lr:g}"))


def fewshot_cell(splits: FewShotSplits, cell: Mapping[str, Any], *, checkpoints: Path | None,
                 num_workers: int) -> dict[str, Any]:
    """One model of the grid trained (:func:`~protolab.fewshot.protocol.train_protonet`, seed ``cell["seed"]``)
    and tested (:func:`~protolab.fewshot.protocol.evaluate_protonet`, the episodes of ``cell["test_seed"]``; a
    tuning cell, ``test_seed`` None, is not tested).

    ``checkpoints``: folder of the resumable training state (one file per cell, named after its arm, learning
    rate, training way and seed), so that a model interrupted mid-training resumes; None: no checkpoint.
    ``num_workers``: episodes prepared ahead (it does not change the result, so it is not part of the cell).

    Returns ``test_accuracies`` (``(test_episodes,)`` float64; ``(0,)`` for a tuning cell), ``history`` (one
    record per epoch),
    ``best_epoch``, ``convergence`` (:meth:`~protolab.training.convergence.EarlyStopping.record`) and
    ``wall_seconds``.
    """
    arm = arm_name(cell["geometry"], cell["shot"], cell["c"], cell["protocol"]["lr"])
    checkpoint = None if checkpoints is None else (
        Path(checkpoints) / f"{arm.replace(', ', '-').replace('=', '')}-{cell['train_way']}way-seed{cell['seed']}.pt")
    settings, device = ProtocolSettings(**cell["protocol"]), torch.device(cell["device"])
    speed = {"progress": False, "num_workers": num_workers, "amp": cell["amp"]}
    start = time.perf_counter()
    model, history = train_protonet(settings, splits, geometry=cell["geometry"], c=cell["c"] or 0.0,  # 0: unused
                                    shot=cell["shot"], train_way=cell["train_way"], seed=cell["seed"], device=device,
                                    checkpoint=checkpoint, **speed)
    accuracies = torch.zeros(0, dtype=torch.float64) if cell["test_seed"] is None else evaluate_protonet(
        model, settings, splits.test, shot=cell["shot"], seed=cell["test_seed"], device=device, **speed)
    return {"test_accuracies": accuracies, "history": history.to_dict("records"),
            "best_epoch": int(history.attrs["best_epoch"]), "convergence": history.attrs["convergence"],
            "wall_seconds": time.perf_counter() - start}


def run_fewshot_grid(splits: FewShotSplits, protocol: ProtocolSettings, models: Sequence[Model], seeds: Sequence[int],
                     *, test_seed: int | None, dataset: str, device: torch.device, amp: bool, num_workers: int,
                     checkpoints: Path | None, reuse: bool, workers: int) -> tuple[list[dict[str, Any]], GridRun]:
    """:func:`fewshot_cell` for every model of ``models`` × ``seeds`` (models in order, seeds within each), each
    trained with its own learning rate (``protocol.lr`` replaced), reusing the cells stored by the same code
    when ``reuse``; every model tested on the episodes of ``test_seed`` (None: tuning models, not tested).

    ``workers`` cells are trained at once, one thread each (0 = this process's torch threads; always 1 on
    CUDA). Returns the cells and the :class:`~protolab.runner.grid.GridRun` (results in the cells' order).
    """
    data = data_fingerprint(*splits)
    cells = [{"geometry": geometry, "shot": shot, "train_way": way, "c": c, "seed": seed, "test_seed": test_seed,
              "protocol": asdict(replace(protocol, lr=lr)), "amp": amp, "device": device.type, "dataset": dataset,
              "data": data}
             for geometry, shot, way, c, lr in models for seed in seeds]
    grid = run_model_grid("fewshot_tables", cells, fewshot_cell, splits, device=device, reuse=reuse, workers=workers,
                          checkpoints=checkpoints, num_workers=num_workers)
    return cells, grid
