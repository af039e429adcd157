"""The study the IPN notebooks share: the base configuration, the variants (each changing one factor), their
equal tuning on validation (:mod:`protolab.zsl.tuning`), one cell per (variant, seed) and what a cell computes,
run by :func:`protolab.runner.model_grid.run_model_grid`, and the tables of mean ± std over seeds
(:func:`seed_table`).

``ipn_gzsl``, ``ipn_ablations`` and ``consistency_study`` draw their cells from one cache, :data:`GRID`: a
variant has one name (:data:`BASE`, :data:`NO_CONSISTENCY`, …) and one cell function (:func:`ipn_cell`) in all
three, so the base IPN of a seed is trained once and read by every notebook that shows it.

A cell is ``{"variant", "dataset", "data_root", "data_seed", "data", "device", "model", "train"}`` with the two
configurations as dicts (the training seed, learning rate and consistency weight in ``train``) and ``data`` the
dataset's :meth:`~protolab.data.xlsa17.ZSLData.fingerprint` (so that a cell trained on other features is never
reused); finished cells are stored under ``$PROTOLAB_CACHE_DIR/grids/ipn/``, keyed by the cell and the
:func:`~protolab.runner.grid.code_fingerprint` of this module: the model, fitting, training and data code
the cells run, not the plots, claims or runner (editing those keeps the stored cells).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, replace
from typing import Any, Callable, Mapping, Sequence

import pandas as pd
import torch

from protolab.data.xlsa17 import ZSLData
from protolab.zsl.ipn import IPN, IPNConfig, class_means, ipn_model, space_alignment
from protolab.zsl.fit import TrainConfig, evaluate_test, fit_ipn, search_space_means, semantic_input
from protolab.zsl.tuning import TUNING_COLUMNS, TuningGrid, chosen_settings, mark_chosen, tuning_table
from protolab.core.reproducibility import seed_everything
from protolab.runner.grid import GridRun
from protolab.runner.model_grid import run_model_grid

GRID = "ipn"
"""The cache folder (``grids/ipn``) of every IPN notebook's cells."""

BASE = "IPN"
NO_CONSISTENCY = "IPN without consistency loss"
SEMANTIC_ONLY = "semantic space only"
VISUAL_ONLY = "visual space only"
NON_EPISODIC = "non-episodic"
NO_GRAPH = "no graph (K = 0)"
SHARED_ATTENTION = "shared attention"
HYPERBOLIC = "hyperbolic IPN"


@dataclass(frozen=True)
class Variant:
    """One tuned arm of the study: the ``factor`` it changes and its configurations, whose learning rate (and
    consistency weight, when it has the loss: :func:`~protolab.zsl.tuning.has_consistency`) are chosen on
    validation. The sweeps of the notebooks are configurations derived from the tuned base instead."""

    factor: str
    model: IPNConfig
    train: TrainConfig


Variants = Mapping[str, tuple[IPNConfig, TrainConfig]]
"""Configurations to train, by variant name."""


def base_configs(data: ZSLData, *, steps: int, threshold: float, temperature: float, logit_scale: float,
                 prototype_dim: int, graph_dim: int, hidden_dim: int, epochs: int, n_way: int,
                 episode_unseen: int, episodes_per_epoch: int | None, episodes_rule: str = "ours",
                 attributes: str = "normalised", patience: int | None = None,
                 lr_step: int | None = None) -> tuple[IPNConfig, TrainConfig]:
    """The base IPN of the studies (both spaces, episodic, the consistency loss on) from the notebooks'
    parameters, its learning rate and λ still to be tuned (:func:`tune_variants`); ``n_way`` is capped at the
    number of ``train`` classes; ``attributes`` is :class:`~protolab.zsl.fit.TrainConfig`'s ``semantic_input``;
    ``patience`` its early-stopping patience (``epochs`` the cap); ``lr_step`` its ``lr_step_epoch`` (None: 2/3
    of the cap)."""
    model = IPNConfig(prototype_dim=prototype_dim, graph_dim=graph_dim, hidden_dim=hidden_dim, steps=steps,
                      threshold=threshold, temperature=temperature, logit_scale=logit_scale)
    train = TrainConfig(epochs=epochs, consistency_weight=1.0, episodic=True,
                        n_way=min(n_way, len(data.train_classes)), episode_unseen=episode_unseen,
                        episodes_per_epoch=episodes_per_epoch, episodes_rule=episodes_rule,
                        semantic_input=attributes, patience=patience, lr_step_epoch=lr_step)
    return model, train


def study_variants(base_model: IPNConfig, base_train: TrainConfig) -> dict[str, Variant]:
    """The tuned arms of the study, each one factor away from the base IPN (both spaces, episodic, K > 0, the
    consistency loss with a tuned λ): :data:`NO_CONSISTENCY` (the loss off), :data:`SEMANTIC_ONLY` and
    :data:`VISUAL_ONLY` (one space, hence no loss), :data:`NON_EPISODIC` (minibatches, the same optimiser steps),
    :data:`NO_GRAPH` (K = 0: IPN's prototype scorer with both spaces and no propagation, hence no loss) and
    :data:`SHARED_ATTENTION` (the semantic attention propagates both spaces, no loss); and :data:`HYPERBOLIC`, an
    extension of neither paper: the base in the Poincaré ball (:mod:`protolab.zsl.hyperbolic_ipn`; its curvature
    tuned, its λ the base's). A notebook trains the ones it shows; the names are the cache's (:data:`GRID`)."""
    without_loss = replace(base_train, consistency_weight=0.0)
    return {BASE: Variant("base", base_model, replace(base_train, consistency_weight=1.0)),
            NO_CONSISTENCY: Variant("consistency", base_model, without_loss),
            SEMANTIC_ONLY: Variant("spaces", replace(base_model, spaces="semantic"), without_loss),
            VISUAL_ONLY: Variant("spaces", replace(base_model, spaces="visual"), without_loss),
            NON_EPISODIC: Variant("episodic", base_model, replace(base_train, consistency_weight=1.0, episodic=False)),
            NO_GRAPH: Variant("steps", replace(base_model, steps=0), without_loss),
            SHARED_ATTENTION: Variant("consistency", replace(base_model, shared_attention=True), without_loss),
            HYPERBOLIC: Variant("geometry", replace(base_model, geometry="hyperbolic"),
                                replace(base_train, consistency_weight=1.0))}


def tuned_arms(data: ZSLData, names: Sequence[str], base: tuple[IPNConfig, TrainConfig], tuning: TuningGrid, *,
               tuning_seed: int, thresholds: Sequence[float] = (), **grid: Any) -> tuple[pd.DataFrame, Variants]:
    """:func:`tune_variants` on the arms of :func:`study_variants` named in ``names`` (in the study's order), from
    the ``base`` configurations of :func:`base_configs`: the tuning table and each arm's tuned configurations.

    With ``thresholds``, the study's graph threshold is chosen first (:mod:`protolab.zsl.tuning`): :data:`BASE` is
    tuned at each of them and the threshold of its best run becomes every arm's (the table keeps all of the base's
    runs); without, the base's own threshold is used. :data:`HYPERBOLIC` is tuned after the others, at the λ the
    base chose, so it needs :data:`BASE` among ``names``."""
    base_model, base_train = base
    table, tuned = pd.DataFrame(columns=[*TUNING_COLUMNS, "source"]), {}
    if len(thresholds) > 1:
        if BASE not in names:
            raise ValueError(f"the graph threshold is chosen with {BASE!r}: tune it with the other arms")
        label = {threshold: f"{BASE} @ threshold {threshold:g}" for threshold in thresholds}
        table, at = tune_variants(data, {label[t]: study_variants(replace(base_model, threshold=t), base_train)[BASE]
                                         for t in thresholds}, tuning, tuning_seed=tuning_seed, **grid)
        if not len(table):
            raise ValueError(f"choosing among {len(thresholds)} graph thresholds needs tuning runs: give the grid "
                             "more than one setting per arm, or one threshold")
        table = mark_chosen(table.assign(variant=BASE))
        chosen = float(table[table.chosen].threshold.iloc[0])
        base_model, tuned = replace(base_model, threshold=chosen), {BASE: at[label[chosen]]}
    elif thresholds:
        base_model = replace(base_model, threshold=thresholds[0])
    arms = {name: arm for name, arm in study_variants(base_model, base_train).items() if name in names}
    first = {name: arm for name, arm in arms.items() if name != HYPERBOLIC and name not in tuned}
    if first:
        more, settled = tune_variants(data, first, tuning, tuning_seed=tuning_seed, **grid)
        table, tuned = _joined(table, more), tuned | settled
    if HYPERBOLIC in arms:
        if BASE not in tuned:
            raise ValueError(f"{HYPERBOLIC!r} takes the λ the base chose: tune {BASE!r} with it")
        arm = arms[HYPERBOLIC]
        arm = replace(arm, train=replace(arm.train, consistency_weight=tuned[BASE][1].consistency_weight))
        more, hyperbolic = tune_variants(data, {HYPERBOLIC: arm}, tuning, tuning_seed=tuning_seed, **grid)
        table, tuned = _joined(table, more), tuned | hyperbolic
    return table, {name: tuned[name] for name in arms}


def _joined(table: pd.DataFrame, more: pd.DataFrame) -> pd.DataFrame:
    """Two tuning tables one after the other (either may be empty)."""
    return pd.concat([table, more], ignore_index=True) if len(table) and len(more) else (more if len(more) else table)


def tuned_configs(variants: Mapping[str, Variant], chosen: Mapping[str, tuple[float, float, float | None]]
                  ) -> Variants:
    """Each variant's configurations at its chosen ``(lr, λ, c)`` (``chosen`` from
    :func:`~protolab.zsl.tuning.chosen_settings`; c None: the model's own)."""
    return {name: (_with_curvature(variant.model, chosen[name][2]),
                   replace(variant.train, lr=chosen[name][0], consistency_weight=chosen[name][1]))
            for name, variant in variants.items()}


def _with_curvature(model: IPNConfig, c: float | None) -> IPNConfig:
    return model if c is None else replace(model, curvature=c)


def grid_cells(variants: Variants, seeds: range, *, dataset: str, data_root: str, data_seed: int, data: str,
               device: torch.device, seed_counts: Mapping[str, int] | None = None) -> list[dict[str, Any]]:
    """One cell per (variant, seed), variants in order, seeds within each variant; ``data`` identifies the
    features (:meth:`~protolab.data.xlsa17.ZSLData.fingerprint`). A variant named in ``seed_counts`` gets only the
    first that many of ``seeds`` (a sweep drawn as a curve, not compared in a claim)."""
    counts = seed_counts or {}
    return [{"variant": name, "dataset": dataset, "data_root": data_root, "data_seed": data_seed, "data": data,
             "device": device.type, "model": asdict(model), "train": asdict(replace(train, seed=seed))}
            for name, (model, train) in variants.items() for seed in seeds[:counts.get(name, len(seeds))]]


def run_ipn_grid(data: ZSLData, variants: Variants, *, dataset: str, data_root: str, seed: int, n_seeds: int,
                 device: torch.device, reuse: bool, workers: int, executor: str = "local",
                 compute: Callable[[ZSLData, Mapping[str, Any]], dict[str, Any]] | None = None,
                 seeds: range | None = None, seed_counts: Mapping[str, int] | None = None
                 ) -> tuple[list[dict[str, Any]], GridRun]:
    """``compute(data, cell)`` (default :func:`ipn_cell`) on every cell of ``variants`` × seeds ``seed … seed +
    n_seeds − 1`` (or ``seeds``; the variants of ``seed_counts`` on their first that many only, as in
    :func:`grid_cells`), reusing the cells stored in :data:`GRID` by the same code when ``reuse``.

    ``workers`` cells are trained at once, one thread each (0 = this process's torch threads; always 1 on
    CUDA). ``executor="slurm"`` trains each missing cell as one SLURM job instead (resources from
    ``$PROTOLAB_SLURM_CONFIG``; the cache must be on a shared file system). Returns the cells and the
    :class:`~protolab.runner.grid.GridRun` (results in the cells' order).
    """
    cells = grid_cells(variants, seeds or range(seed, seed + n_seeds), dataset=dataset, data_root=data_root,
                       data_seed=seed, data=data.fingerprint(), device=device, seed_counts=seed_counts)
    return cells, run_model_grid(GRID, cells, compute or ipn_cell, data, device=device, reuse=reuse,
                                 workers=workers, executor=executor)


def tune_variants(data: ZSLData, variants: Mapping[str, Variant], tuning: TuningGrid, *, tuning_seed: int,
                  **grid: Any) -> tuple[pd.DataFrame, Variants]:
    """Tune every variant on validation (:mod:`protolab.zsl.tuning`): one :func:`tuning_cell` per
    setting, from ``tuning_seed``; ``grid`` are :func:`run_ipn_grid`'s keyword arguments (``seed`` the data
    seed). Returns the :func:`~protolab.zsl.tuning.tuning_table` (with ``source``: computed or cached; empty when
    the grid has one setting per arm, which is then used untried) and every variant's configurations at its
    chosen setting (:func:`tuned_configs`)."""
    settings = {name: tuning.settings(variant.model, variant.train) for name, variant in variants.items()}
    if tuning.budget == 1:  # one setting each: nothing to choose, no tuning run
        return (pd.DataFrame(columns=[*TUNING_COLUMNS, "source"]),
                tuned_configs(variants, {name: tried[0] for name, tried in settings.items()}))
    trials = {f"{name} @ lr {lr:g}, λ {weight:g}" + ("" if c is None else f", c {c:g}"):
              (name, _with_curvature(variants[name].model, c),
               replace(variants[name].train, lr=lr, consistency_weight=weight))
              for name, tried in settings.items() for lr, weight, c in tried}
    cells, run = run_ipn_grid(data, {key: trial[1:] for key, trial in trials.items()}, compute=tuning_cell,
                              seeds=range(tuning_seed, tuning_seed + 1), n_seeds=1, **grid)
    for cell in cells:
        cell["variant"] = trials[cell["variant"]][0]
    table = tuning_table(cells, run.results).assign(source=run.sources)
    return table, tuned_configs(variants, chosen_settings(table))


def _fit(data: ZSLData, cell: Mapping[str, Any], **options: Any) -> tuple[IPN, pd.DataFrame, dict[str, Any]]:
    """The cell's IPN fitted with selection on the validation classes (and, unless ``refit=False`` is passed,
    refitted on all seen classes), its history, and what every cell stores about the training: the selection
    run's ``convergence`` record (:meth:`~protolab.training.convergence.EarlyStopping.record`) and the fit's
    ``wall_seconds``."""
    model_config, train_config = IPNConfig(**cell["model"]), TrainConfig(**cell["train"])
    seed_everything(train_config.seed)
    start = time.perf_counter()
    model, history = fit_ipn(data, model_config, train_config, device=torch.device(cell["device"]), progress=False,
                             **options)
    return model, history, {"convergence": history.attrs["convergence"], "wall_seconds": time.perf_counter() - start}


def tuning_cell(data: ZSLData, cell: Mapping[str, Any]) -> dict[str, Any]:
    """Tuning cell: the selection run alone (no refit, no test data): its training record of :func:`_fit`."""
    return _fit(data, cell, refit=False)[2]


def ipn_cell(data: ZSLData, cell: Mapping[str, Any]) -> dict[str, Any]:
    """A study cell: test U/S/H; the training record of :func:`_fit`; the selected epoch; with two spaces,
    :func:`~protolab.zsl.ipn.space_alignment` at the end on the test search space (``final_*``: similarity and
    attention KL, feature CKA, first-step graph neighbours per class; NaN with one space); the per-epoch history,
    with the alignment on the seen classes when there are two spaces (``history``, records); and the trained
    weights (``state``)."""
    data = semantic_input(data, cell["train"].get("semantic_input", "normalised"))
    two_spaces = cell["model"]["spaces"] == "both"
    seen_means = class_means(data.trainval.features, data.trainval.labels, data.n_classes)[0][data.seen_classes]
    seen_attributes = data.attributes[data.seen_classes]
    model, history, training = _fit(data, cell, monitor=(lambda current: space_alignment(
        current, seen_means, seen_attributes)) if two_spaces else None)
    selected = int(history[history.phase == "select"].val_H.idxmax()) + 1
    nan = float("nan")
    final = (space_alignment(model, search_space_means(model, data), data.attributes) if two_spaces else
             dict.fromkeys(("similarity_kl", "attention_kl", "feature_cka", "neighbours_semantic",
                            "neighbours_visual"), nan))
    return {**evaluate_test(model, data), **training, "selected_epoch": selected,
            **{f"final_{key}": value for key, value in final.items()}, "history": history.to_dict("records"),
            "state": {key: value.cpu() for key, value in model.state_dict().items()}}


def cell_model(data: ZSLData, cell: Mapping[str, Any], result: Mapping[str, Any]) -> IPN:
    """The IPN an :func:`ipn_cell` trained, rebuilt on the CPU from its stored ``state``."""
    config = IPNConfig(**cell["model"])
    model = ipn_model(data.feature_dim, torch.zeros(config.n_clusters, data.attributes.shape[1]), config)
    model.load_state_dict(result["state"])
    return model.eval()


def runs_table(cells: Sequence[Mapping[str, Any]], grid: GridRun) -> pd.DataFrame:
    """One row per study cell: ``variant, seed, steps, threshold, spaces, shared_attention, geometry, curvature,
    episodic, lr, weight`` (λ), ``source`` and the cell's scalar results (U/S/H fractions, ``selected_epoch``,
    ``final_*``)."""
    return pd.DataFrame([{"variant": cell["variant"], "seed": cell["train"]["seed"],
                          **{key: cell["model"][key] for key in ("steps", "threshold", "spaces", "shared_attention",
                                                                 "geometry", "curvature")},
                          "episodic": cell["train"]["episodic"], "lr": cell["train"]["lr"],
                          "weight": cell["train"]["consistency_weight"], "source": source,
                          **{key: value for key, value in result.items()
                             if key not in ("convergence", "wall_seconds", "history", "state")}}
                         for cell, result, source in zip(cells, grid.results, grid.sources, strict=True)])


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


def collapse_rates(runs: pd.DataFrame, group: str, below: float, *, order: Sequence[str]) -> list[str]:
    """Per ``group`` value in ``order``, how many of its seeds collapsed (H below ``below``, e.g. twice chance):
    ``"k/n (p%)"``. Collapsed runs stay in every mean and claim; this is where they are counted."""
    counts = (runs.H < below).groupby(runs[group]).agg(["sum", "size"])
    return [f"{counts.loc[v, 'sum']}/{counts.loc[v, 'size']} ({counts.loc[v, 'sum'] / counts.loc[v, 'size']:.0%})"
            for v in order]
