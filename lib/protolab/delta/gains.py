r"""The hyperbolic gain of one feature space, for the δ_rel relation (Khrulkov et al., CVPR 2020, Sec. 3).

The paper argues that data with a low :math:`\delta_{rel}` suit hyperbolic embeddings. To ask it with independent
points, each space measured by ``delta_hyperbolicity`` gets its own paired geometry gain from the same run: a
multinomial logistic regression on the space's fixed features, Euclidean (a linear softmax head) against
hyperbolic (:math:`\exp^c_0` onto the Poincaré ball, then :class:`~protolab.hyperbolic.HyperbolicMLR`), trained
from the same seed on the same split, each with its learning rate chosen on validation from the same grid and the
same early-stopping rule, compared by test accuracy (points of %). One gain per (space, seed); a space's point is
the mean over seeds.

To keep every space's task comparable and cheap, each uses at most ``n_classes`` classes (drawn with the seed)
and ``per_class`` points of each; features are centred and scaled to mean norm 1 on the training part, so that
both heads see the same inputs and the ball's ones sit well inside it.
"""

from __future__ import annotations

from typing import Literal, Mapping, Sequence

import pandas as pd
import torch
from torch import nn

from protolab.hyperbolic import HyperbolicMLR, ToPoincare
from protolab.metrics import mean_ci95
from protolab.training.convergence import EarlyStopping, StoppingRule
from protolab.training.loops import BestWeights

__all__ = ["GEOMETRIES", "classification_task", "fit_head", "gains_by_space", "geometry_gains", "upstream_gains"]

GEOMETRIES = ("euclidean", "hyperbolic")


def classification_task(labels: torch.Tensor, *, n_classes: int, per_class: int, seed: int
                        ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Indices ``(train, val, test)`` into ``labels`` ``(N,)``: up to ``n_classes`` classes with at least 3 points
    (drawn with ``seed``), up to ``per_class`` points of each, split 60/20/20 within each class (at least one
    point in each part). Fewer than two such classes: ``ValueError``."""
    generator = torch.Generator().manual_seed(seed)
    classes, counts = labels.unique(return_counts=True)
    eligible = classes[counts >= 3]
    if len(eligible) < 2:
        raise ValueError(f"no classification task: {len(eligible)} class(es) with at least 3 points")
    chosen = eligible[torch.randperm(len(eligible), generator=generator)[:n_classes]].sort().values
    parts: tuple[list[torch.Tensor], ...] = ([], [], [])
    for label in chosen.tolist():
        idx = (labels == label).nonzero().flatten()
        idx = idx[torch.randperm(len(idx), generator=generator)[:per_class]]
        n_held = max(1, round(0.2 * len(idx)))
        for part, block in zip(parts, (idx[2 * n_held:], idx[:n_held], idx[n_held:2 * n_held])):
            part.append(block)
    return tuple(torch.cat(part) for part in parts)  # type: ignore[return-value]


def _accuracy(model: nn.Module, features: torch.Tensor, labels: torch.Tensor) -> float:
    """Fraction of ``features`` ``(N, D)`` whose largest logit is their label ``(N,)``."""
    with torch.no_grad():
        return float((model(features).argmax(1) == labels).float().mean())


def _head(geometry: str, dim: int, n_classes: int, c: float) -> nn.Module:
    if geometry == "hyperbolic":
        return nn.Sequential(ToPoincare(c), HyperbolicMLR(dim, n_classes, c))
    if geometry == "euclidean":
        return nn.Linear(dim, n_classes)
    raise ValueError(f"geometry must be one of {GEOMETRIES}, got {geometry!r}")


def fit_head(geometry: Literal["euclidean", "hyperbolic"], features: torch.Tensor, labels: torch.Tensor,
             train: torch.Tensor, val: torch.Tensor, *, c: float, lr: float, seed: int, eval_every: int = 10,
             patience: int = 5, max_steps: int = 1000) -> tuple[nn.Module, dict]:
    """A Euclidean or hyperbolic MLR on ``features`` ``(N, D)`` with class ids ``labels`` ``(N,)`` (``0..K−1``),
    trained full-batch with Adam (``lr``) on the ``train`` indices from ``seed``; validation accuracy on ``val``
    every ``eval_every`` steps drives the shared early-stopping rule (``patience``, ``max_steps``), the best
    weights are kept. Returns the model (eval mode) and its :meth:`~EarlyStopping.record`."""
    torch.manual_seed(seed)
    model = _head(geometry, features.shape[1], int(labels.max()) + 1, c)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    best = BestWeights(EarlyStopping(StoppingRule(eval_every=eval_every, patience=patience, max_steps=max_steps)))
    loss_fn = nn.CrossEntropyLoss()
    for step in range(1, max_steps + 1):
        model.train()
        optimizer.zero_grad()
        loss_fn(model(features[train]), labels[train]).backward()
        optimizer.step()
        if step % eval_every == 0 or step == max_steps:
            best.validated(model.eval(), step, _accuracy(model, features[val], labels[val]))
            if best.stopping.stop(step):
                break
    best.restore(model)
    return model.eval(), best.stopping.record()


def geometry_gains(features: torch.Tensor, labels: torch.Tensor, *, seeds: range, c: float,
                   lrs: tuple[float, ...], n_classes: int, per_class: int, **rule: int) -> pd.DataFrame:
    """Per seed and geometry, the test accuracy (%) of :func:`fit_head` on :func:`classification_task`'s split of
    ``features`` ``(N, D)`` / ``labels`` ``(N,)`` drawn with that seed, its learning rate chosen from ``lrs`` on
    the validation part (the same grid for both geometries; the first on ties): columns ``seed, geometry, lr,
    val_accuracy, accuracy, steps, best_step, converged``; ``rule`` goes to :func:`fit_head` (``eval_every``,
    ``patience``, ``max_steps``). The gain of a seed is its hyperbolic minus its Euclidean accuracy."""
    rows = []
    for seed in seeds:
        parts = classification_task(labels, n_classes=n_classes, per_class=per_class, seed=seed)
        chosen = torch.cat(parts)  # the task's points; train, val and test are positions among them
        train, val, test = torch.arange(len(chosen)).split([len(part) for part in parts])
        y = torch.unique(labels[chosen], return_inverse=True)[1]
        x = features[chosen].float()
        centre = x[train].mean(0)
        x = (x - centre) / (x[train] - centre).norm(dim=1).mean().clamp_min(1e-12)
        for geometry in GEOMETRIES:
            fits = [(lr, *fit_head(geometry, x, y, train, val, c=c, lr=lr, seed=seed, **rule)) for lr in lrs]
            lr, model, record = max(fits, key=lambda fit: fit[2]["best_score"])  # max keeps the first on ties
            rows.append({"seed": seed, "geometry": geometry, "lr": lr, "val_accuracy": 100 * record["best_score"],
                         "accuracy": 100 * _accuracy(model, x[test], y[test]),
                         **{key: record[key] for key in ("steps", "best_step", "converged")}})
    return pd.DataFrame(rows)


def gains_by_space(spaces: Mapping[str, tuple[torch.Tensor, torch.Tensor]], delta_rel: Mapping[str, float], **task
                   ) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, str]]:
    """:func:`geometry_gains` (``task``: its keyword arguments) of every space ``name → (features, labels)``.

    Returns every regression (:func:`geometry_gains`' rows with ``space``), one point per space (``space, gain,
    ci95`` — the mean hyperbolic − Euclidean accuracy over seeds and its t 95% half-width — ``delta_rel`` from
    ``delta_rel`` and ``accuracy_euclidean``), and the spaces without a task (name → why: too few points per
    class)."""
    runs, skipped = [], {}
    for name, (features, labels) in spaces.items():
        try:
            runs.append(geometry_gains(features, labels, **task).assign(space=name))
        except ValueError as reason:
            skipped[name] = str(reason)
    runs = pd.concat(runs, ignore_index=True) if runs else pd.DataFrame(
        columns=["seed", "geometry", "lr", "val_accuracy", "accuracy", "steps", "best_step", "converged", "space"])
    paired = runs.pivot_table(index=["space", "seed"], columns="geometry", values="accuracy")
    points = []
    for name in dict.fromkeys(runs.space):
        gain = paired.loc[name].hyperbolic - paired.loc[name].euclidean
        mean, half = mean_ci95(torch.tensor(gain.to_numpy()))
        points.append({"space": name, "gain": mean, "ci95": half, "delta_rel": float(delta_rel[name]),
                       "accuracy_euclidean": float(paired.loc[name].euclidean.mean())})
    return runs, pd.DataFrame(points, columns=["space", "gain", "ci95", "delta_rel", "accuracy_euclidean"]), skipped


UPSTREAM_COLUMNS = ("notebook", "space", "claim", "delta_rel", "gain", "ci_low", "ci_high")


def upstream_gains(pairs: Mapping[str, tuple[Sequence[str], str, float]], delta_rel: Mapping[str, float]
                   ) -> tuple[pd.DataFrame, list[str]]:
    """The hyperbolic-vs-Euclidean claims other notebooks published, one row per (claim, measured space of its data).

    ``pairs`` maps a notebook to the spaces its data is measured by, a phrase its claims contain and the scale of
    their estimates in points (100: AUROC as a fraction); ``delta_rel`` maps the spaces this run measured to their
    δ_rel. Each table is read with :func:`protolab.figures.upstream_table` (this run's when it ran, else the last
    published). Returns the rows (``notebook, space, claim, delta_rel, gain, ci_low, ci_high``, in points) and one
    note per notebook: which run's table was read, or why it was skipped (no space measured, nothing published)."""
    from protolab import figures

    rows, notes = [pd.DataFrame(columns=list(UPSTREAM_COLUMNS))], []
    for notebook, (spaces, phrase, scale) in pairs.items():
        measured = [space for space in spaces if space in delta_rel]
        if not measured:
            notes.append(f"{notebook} skipped: {', '.join(spaces)} not measured")
            continue
        try:
            upstream = figures.upstream_table(notebook)
        except FileNotFoundError as missing:
            notes.append(f"{notebook} skipped: {missing}")
            continue
        notes.append(f"{notebook}: claims of run {upstream.run_id} (read from {upstream.folder})")
        found = upstream.table[upstream.table.claim.str.contains(phrase, regex=False)]
        rows += [pd.DataFrame({"notebook": notebook, "space": space, "claim": found.claim,
                               "delta_rel": float(delta_rel[space]), "gain": scale * found.estimate,
                               "ci_low": scale * found.ci_low, "ci_high": scale * found.ci_high})
                 for space in measured]
    return pd.concat(rows, ignore_index=True), notes
