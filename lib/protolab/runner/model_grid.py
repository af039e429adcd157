"""The per-model disk cache of the notebooks that train, one model per grid cell (the IPN studies, few-shot,
uncertainty, re-ID): :func:`run_model_grid` runs :func:`~protolab.runner.grid.run_grid` with the cache folder,
fingerprint and worker count such a notebook uses, and :func:`data_fingerprint` names the data a cell is
trained on, for its key.
"""

from __future__ import annotations

import hashlib
import sys
from functools import partial
from typing import Any, Callable, Sequence, TypeVar

import torch

from protolab.data.cache import cache_dir
from protolab.data.images import LabeledImages
from protolab.runner.grid import Cell, GridRun, code_fingerprint, run_grid

Data = TypeVar("Data")


def data_fingerprint(*parts: LabeledImages) -> str:
    """Hex hash of :meth:`~protolab.data.images.LabeledImages.fingerprint` of every part, in order: put in a
    cell, it makes the cell's key follow the images, labels and splits its model is trained and scored on."""
    return hashlib.sha256(" ".join(part.fingerprint() for part in parts).encode()).hexdigest()[:24]


def run_model_grid(notebook: str, cells: Sequence[Cell], compute: Callable[..., dict[str, Any]], data: Data, *,
                   device: torch.device, reuse: bool, workers: int, executor: str = "local",
                   **options: Any) -> GridRun:
    """``compute(data, cell, **options)`` for every cell, stored under ``cache_dir()/grids/<notebook>/`` (a name that
    several notebooks may share: the IPN notebooks' ``ipn``) and reused
    there when ``reuse`` (:func:`~protolab.runner.grid.run_grid`); ``options`` are for what does not change a
    result (e.g. ``num_workers``), which is why they are not part of the key.

    ``compute`` is a module-level function of the package; a cell's key follows the
    :func:`~protolab.runner.grid.code_fingerprint` of its module (the model and training code it imports), so
    editing that code retrains, editing plots or the notebook does not. ``data`` is not part of the key: give the
    cells what identifies it (e.g. :func:`data_fingerprint`). ``workers`` cells are trained at once, one torch
    thread each (0: this process's torch threads; always 1 on CUDA); ``executor="slurm"`` trains each missing cell
    as one SLURM job instead (:func:`~protolab.runner.grid.run_grid`). Results come in the cells' order, each
    with its source, ``"computed"`` or ``"cached"`` (``"dry run"`` in a dry run).
    """
    workers = 1 if device.type == "cuda" else workers or torch.get_num_threads()
    return run_grid(cells, partial(compute, data, **options), cache_dir() / "grids" / notebook,
                    fingerprint=code_fingerprint(sys.modules[compute.__module__]), reuse=reuse, workers=workers,
                    executor=executor)
