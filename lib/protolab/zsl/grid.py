"""The set-up the IPN notebooks share: the grid behind ``ipn_ablations`` and ``consistency_study`` (base
configurations, one cell per (variant, seed), what a cell computes, run by
:func:`protolab.runner.model_grid.run_model_grid`), and their tables of mean ± std over seeds (:func:`seed_table`).

A cell is ``{"variant", "dataset", "data_root", "data_seed", "data", "device", "model", "train"}`` with the two
configurations as dicts (the training seed in ``train``) and ``data`` the dataset's
:meth:`~protolab.data.xlsa17.ZSLData.fingerprint` (so that a cell trained on other features, e.g. glyph-zsl built
on another CPU code path, is never reused); finished cells are stored under
``$PROTOLAB_CACHE_DIR/grids/<notebook>/``, keyed by the cell and the
:func:`~protolab.runner.grid.code_fingerprint` of this module: the model, fitting, training and data code
the cells run, not the plots, claims or runner (editing those keeps the stored cells).
"""

from __future__ import annotations

import time
from dataclasses import asdict, replace
from typing import Any, Callable, Mapping, Sequence

import pandas as pd
import torch

from protolab.data.xlsa17 import ZSLData
from protolab.zsl.ipn import IPN, IPNConfig, class_means, space_alignment
from protolab.zsl.fit import TrainConfig, evaluate_test, fit_ipn, search_space_means, semantic_input
from protolab.core.reproducibility import seed_everything
from protolab.runner.grid import GridRun
from protolab.runner.model_grid import run_model_grid

Variants = Mapping[str, tuple[IPNConfig, TrainConfig]]


def base_configs(data: ZSLData, *, steps: int, threshold: float, temperature: float, logit_scale: float,
                 prototype_dim: int, graph_dim: int, hidden_dim: int, epochs: int, lr: float, n_way: int,
                 episode_unseen: int, episodes_per_epoch: int | None, consistency_weight: float = 1.0,
                 episodes_rule: str = "ours", attributes: str = "normalised",
                 patience: int | None = None) -> tuple[IPNConfig, TrainConfig]:
    """The base IPN of the studies (both spaces, episodic) from the notebooks' parameters; ``n_way`` is capped
    at the number of ``train`` classes; ``attributes`` is :class:`~protolab.zsl.fit.TrainConfig`'s
    ``semantic_input``; ``patience`` its early-stopping patience (``epochs`` the cap)."""
    model = IPNConfig(prototype_dim=prototype_dim, graph_dim=graph_dim, hidden_dim=hidden_dim, steps=steps,
                      threshold=threshold, temperature=temperature, logit_scale=logit_scale)
    train = TrainConfig(epochs=epochs, lr=lr, consistency_weight=consistency_weight, episodic=True,
                        n_way=min(n_way, len(data.train_classes)), episode_unseen=episode_unseen,
                        episodes_per_epoch=episodes_per_epoch, episodes_rule=episodes_rule,
                        semantic_input=attributes, patience=patience)
    return model, train


def grid_cells(variants: Variants, seeds: range, *, dataset: str, data_root: str, data_seed: int, data: str,
               device: torch.device) -> list[dict[str, Any]]:
    """One cell per (variant, seed), variants in order, seeds within each variant; ``data`` identifies the
    features (:meth:`~protolab.data.xlsa17.ZSLData.fingerprint`)."""
    return [{"variant": name, "dataset": dataset, "data_root": data_root, "data_seed": data_seed, "data": data,
             "device": device.type, "model": asdict(model), "train": asdict(replace(train, seed=seed))}
            for name, (model, train) in variants.items() for seed in seeds]


def run_ipn_grid(notebook: str, data: ZSLData, variants: Variants,
                 compute: Callable[[ZSLData, Mapping[str, Any]], dict[str, Any]], *, dataset: str, data_root: str,
                 seed: int, n_seeds: int, device: torch.device, reuse: bool, workers: int,
                 executor: str = "local") -> tuple[list[dict[str, Any]], GridRun]:
    """``compute(data, cell)`` on every cell of ``variants`` × seeds ``seed … seed + n_seeds − 1``, reusing the
    cells stored for ``notebook`` by the same code when ``reuse``: ``compute`` is one of this module's cell
    functions (:func:`ablation_cell`, :func:`consistency_cell`), whose code the key follows.

    ``workers`` cells are trained at once, one thread each (0 = this process's torch threads; always 1 on
    CUDA). ``executor="slurm"`` trains each missing cell as one SLURM job instead (resources from
    ``$PROTOLAB_SLURM_CONFIG``; the cache must be on a shared file system). Returns the cells and the
    :class:`~protolab.runner.grid.GridRun` (results in the cells' order).
    """
    cells = grid_cells(variants, range(seed, seed + n_seeds), dataset=dataset, data_root=data_root,
                       data_seed=seed, data=data.fingerprint(), device=device)
    return cells, run_model_grid(notebook, cells, compute, data, device=device, reuse=reuse, workers=workers,
                                 executor=executor)


def _fit(data: ZSLData, cell: Mapping[str, Any], **options: Any) -> tuple[IPN, pd.DataFrame, dict[str, Any]]:
    """The cell's IPN fitted with selection on the validation classes and refitted on all seen classes, its
    history, and what every cell stores about the training: the selection run's ``convergence`` record
    (:meth:`~protolab.training.convergence.EarlyStopping.record`) and the fit's ``wall_seconds``."""
    model_config, train_config = IPNConfig(**cell["model"]), TrainConfig(**cell["train"])
    seed_everything(train_config.seed)
    start = time.perf_counter()
    model, history = fit_ipn(data, model_config, train_config, device=torch.device(cell["device"]), progress=False,
                             **options)
    return model, history, {"convergence": history.attrs["convergence"], "wall_seconds": time.perf_counter() - start}


def ablation_cell(data: ZSLData, cell: Mapping[str, Any]) -> dict[str, Any]:
    """Ablation cell: test U/S/H, the training record of :func:`_fit`, the selected epoch and the mean number of
    first-step graph neighbours per class in each space on the test search space (NaN with one space)."""
    model, history, training = _fit(data, cell)
    data = semantic_input(data, cell["train"].get("semantic_input", "normalised"))
    selected = int(history[history.phase == "select"].val_H.idxmax()) + 1
    graph = (space_alignment(model, search_space_means(model, data), data.attributes)
             if model.config.spaces == "both" else {})
    return {**evaluate_test(model, data), **training, "selected_epoch": selected,
            "neighbours_semantic": graph.get("neighbours_semantic", float("nan")),
            "neighbours_visual": graph.get("neighbours_visual", float("nan"))}


def consistency_cell(data: ZSLData, cell: Mapping[str, Any]) -> dict[str, Any]:
    """Consistency cell: test U/S/H, the training record of :func:`_fit`,
    :func:`~protolab.zsl.ipn.space_alignment` at the end on the test search space (``final_*``), the per-epoch history with the alignment on the seen classes (``history``, records) and
    the trained weights (``state``)."""
    data = semantic_input(data, cell["train"].get("semantic_input", "normalised"))
    seen_means = class_means(data.trainval.features, data.trainval.labels, data.n_classes)[0][data.seen_classes]
    seen_attributes = data.attributes[data.seen_classes]
    model, history, training = _fit(data, cell, monitor=lambda current: space_alignment(current, seen_means,
                                                                                     seen_attributes))
    final = space_alignment(model, search_space_means(model, data), data.attributes)
    return {**evaluate_test(model, data), **training, **{f"final_{key}": value for key, value in final.items()},
            "history": history.to_dict("records"),
            "state": {key: value.cpu() for key, value in model.state_dict().items()}}


def cell_model(data: ZSLData, cell: Mapping[str, Any], result: Mapping[str, Any]) -> IPN:
    """The IPN a :func:`consistency_cell` trained, rebuilt on the CPU from its stored ``state``."""
    config = IPNConfig(**cell["model"])
    model = IPN(data.feature_dim, torch.zeros(config.n_clusters, data.attributes.shape[1]), config)
    model.load_state_dict(result["state"])
    return model.eval()


def seed_table(runs: pd.DataFrame, group: str, measures: Mapping[str, float], *, order: Sequence[str],
               label: str = "") -> pd.DataFrame:
    """Mean ± std over seeds of each measure of ``runs`` (one row per (``group`` value, seed)), one row per
    ``group`` value in ``order``.

    ``measures`` maps a column to its scale (100: fractions shown as percentages). Columns: ``group``, then
    ``<measure>_mean`` and ``<measure>_std`` (scaled; std 0 with one seed; percentages rounded to 2 decimals),
    ``seeds``, then ``<measure><label>`` (``final_`` prefix dropped) as ``"mean ± std"`` with 1 decimal for
    percentages, 3 otherwise, formatted from the unrounded values.
    """
    grouped = runs.groupby(group, sort=False)
    table = pd.DataFrame({group: list(order)})
    text = {}
    for measure, scale in measures.items():
        mean = scale * grouped[measure].mean().loc[list(order)].to_numpy()
        std = scale * grouped[measure].std().fillna(0.0).loc[list(order)].to_numpy()
        digits = 1 if scale == 100 else 3
        text[f"{measure.removeprefix('final_')}{label}"] = [f"{m:.{digits}f} ± {s:.{digits}f}"
                                                            for m, s in zip(mean, std)]
        if scale == 100:
            mean, std = mean.round(2), std.round(2)
        table[f"{measure}_mean"], table[f"{measure}_std"] = mean, std
    table["seeds"] = grouped.size().loc[list(order)].to_numpy()
    return table.assign(**text)
