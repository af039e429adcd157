r"""Confidence of an image classifier as an uncertainty score (Khrulkov et al., CVPR 2020, Sec. 5.1).

The same backbone (the paper's MNIST network, :class:`~protolab.backbones.SmallCNN`) ends either in a
Euclidean softmax head or in the Poincaré ball (ToPoincare → hyperbolic MLR). Each model is scored both ways
(:data:`SCORES`), so that geometry and score can be compared one at a time (a 2 × 2 design): the *radius* of
the embedding — its distance to the origin :math:`d_c(x, 0)` in the ball, its norm :math:`\|x\|` in
Euclidean space — and the maximum softmax probability :math:`p_{\max}` of the head's logits. Larger is more
confident for all four.

Each model of the ``poincare_uncertainty`` notebook is one cell of a disk-cached grid
(:func:`~protolab.runner.model_grid.run_model_grid`): :func:`uncertainty_cell` trains it with early stopping on
held-out training images and scores it; :func:`cell_model` rebuilds it from what the cell stored.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Literal, Mapping

import torch
from torch import nn
from torch.utils.data import Dataset

from protolab.backbones import SmallCNN
from protolab.core import dryrun
from protolab.core.reproducibility import seed_everything
from protolab.data.images import LabeledImages
from protolab.hyperbolic import HyperbolicMLR, ToPoincare, dist0
from protolab.metrics import auroc, ks_statistic
from protolab.training.convergence import StoppingRule
from protolab.training.loops import apply_batched, fit_classifier

Geometry = Literal["euclidean", "hyperbolic"]
GEOMETRIES: tuple[Geometry, ...] = ("euclidean", "hyperbolic")
Score = Literal["radius", "p_max"]
SCORES: tuple[Score, ...] = ("radius", "p_max")


def build_classifier(geometry: Geometry, *, in_channels: int, dim: int, n_classes: int, c: float,
                     clip_r: float | None = None) -> nn.Sequential:
    """``SmallCNN(dim)`` → linear softmax head (``"euclidean"``) or ToPoincare(c, clip_r) → HyperbolicMLR
    (``"hyperbolic"``). Images ``(B, in_channels, S, S)`` → logits ``(B, n_classes)``; ``model[:2]`` gives the
    embedding ``(B, dim)`` (a point of the ball for the hyperbolic model)."""
    if geometry not in GEOMETRIES:
        raise ValueError(f"geometry must be one of {GEOMETRIES}, got {geometry!r}")
    backbone = SmallCNN(in_channels=in_channels, dim=dim)
    if geometry == "hyperbolic":
        return nn.Sequential(backbone, ToPoincare(c, clip_r=clip_r), HyperbolicMLR(dim, n_classes, c))
    return nn.Sequential(backbone, nn.Linear(dim, n_classes))


def confidence(model: nn.Sequential, geometry: Geometry, data: Dataset, *, c: float, device: torch.device,
               score: Score = "radius", batch_size: int = 512) -> torch.Tensor:
    r"""Per image of ``data``, ``(N,)`` on the CPU, larger = more confident. ``score="radius"``: the embedding's
    distance to the origin, :math:`d_c(x, 0)` for the hyperbolic model and :math:`\|x\|` for the Euclidean one;
    ``score="p_max"``: the maximum softmax probability of the model's logits (hyperbolic MLR or linear head)."""
    if score == "p_max":
        return apply_batched(model, data, batch_size=batch_size, device=device).softmax(-1).max(-1).values
    if score != "radius":
        raise ValueError(f"score must be one of {SCORES}, got {score!r}")
    embedding = apply_batched(model[:-1], data, batch_size=batch_size, device=device)
    return dist0(embedding, c=c) if geometry == "hyperbolic" else embedding.norm(dim=-1)


def boundary_distance(dim: int, *, c: float) -> float:
    """The largest :math:`d_c(x, 0)` a ``dim``-d embedding reaches in float32: ToPoincare of a huge feature,
    which lands on the edge of the ball where distances saturate."""
    return float(dist0(ToPoincare(c)(torch.full((1, dim), 1e6)), c=c))


def separation(score_in: torch.Tensor, score_ood: torch.Tensor) -> dict[str, float]:
    """How well a confidence ``(N,)`` / ``(M,)`` separates in-distribution from OOD images.

    ``auroc``: P(an in-distribution image scores higher than an OOD one), 0.5 = no separation;
    ``ks``: the largest gap between the two empirical CDFs; the two means; ``nan_scores``: NaN count.
    """
    return {"auroc": auroc(score_in, score_ood), "ks": ks_statistic(score_in, score_ood),
            "mean_in": float(score_in.mean()), "mean_ood": float(score_ood.mean()),
            "nan_scores": int(torch.isnan(score_in).sum() + torch.isnan(score_ood).sum())}


@dataclass(frozen=True)
class UncertaintyData:
    """The images every cell of the notebook's grid reads: ``train`` (the training images minus ``val``), ``val``
    (held-out training images, scored after every epoch), ``test`` (in-distribution test images) and ``ood``
    (name → images of that OOD set). Every set must hold images of the training images' ``(C, H, W)``: another
    shape (e.g. the grey embedded OOD sets beside a colour folder) is refused here, before any model trains, rather
    than when the trained models score it."""

    train: LabeledImages
    val: LabeledImages
    test: LabeledImages
    ood: dict[str, LabeledImages]

    def __post_init__(self) -> None:
        shape = tuple(self.train.images.shape[1:])
        parts = {"val": self.val, "test": self.test} | {f"OOD set {name!r}": part for name, part in self.ood.items()}
        wrong = [f"{name} {tuple(part.images.shape[1:])}" for name, part in parts.items()
                 if tuple(part.images.shape[1:]) != shape]
        if wrong:
            raise ValueError(f"every image set needs the training images' (C, H, W) = {shape}; got {', '.join(wrong)} "
                             "(beside a colour folder, give OOD folders of colour images and ood_datasets=[])")


def accuracy(model: nn.Module, data: LabeledImages, *, device: torch.device) -> float:
    """Fraction of the images of ``data`` whose largest logit is their label."""
    return float((apply_batched(model, data, batch_size=512, device=device).argmax(-1) == data.labels).float().mean())


def uncertainty_cell(data: UncertaintyData, cell: Mapping[str, Any]) -> dict[str, Any]:
    """Train and score one model of the notebook's grid.

    ``cell`` gives ``geometry``, ``dim``, ``seed`` and the training settings ``c``, ``clip_r``, ``epochs`` (the
    cap), ``patience``, ``batch_size``, ``lr`` and ``device`` (its other keys name the data). The model
    (:func:`build_classifier`, initialised after seeding with ``seed``) is trained on ``data.train`` with Adam;
    its accuracy on ``data.val`` after every epoch drives early stopping
    (:class:`~protolab.training.convergence.StoppingRule`), and the weights of the best epoch are kept.

    Returns a dict: ``test_accuracy`` (on ``data.test``); ``separation``: per ``"<OOD set>/<score>"`` (each
    score of :data:`SCORES`), :func:`separation` of the confidences of the test and the OOD images plus
    ``saturated`` (the share of both on the float32 edge of the ball; NaN but for the hyperbolic radius);
    ``history`` (per-epoch records of
    :func:`~protolab.training.loops.fit_classifier`: ``epoch, lr, loss, accuracy, val_score``); ``convergence``
    (:meth:`~protolab.training.convergence.EarlyStopping.record`, steps are epochs); ``wall_seconds`` of the
    training; ``state`` (the kept weights on the CPU, for :func:`cell_model`).
    """
    device, geometry, dim, c = torch.device(cell["device"]), cell["geometry"], cell["dim"], cell["c"]
    seed_everything(cell["seed"])
    model = build_classifier(geometry, in_channels=data.train.images.shape[1], dim=dim,
                             n_classes=data.train.n_classes, c=c, clip_r=cell["clip_r"])
    start = time.perf_counter()
    history = fit_classifier(model, data.train, batch_size=cell["batch_size"], lr=cell["lr"], device=device,
                             seed=cell["seed"], progress=False, validate=lambda m: accuracy(m, data.val, device=device),
                             stopping=StoppingRule(patience=cell["patience"], max_steps=cell["epochs"]))
    wall_seconds = time.perf_counter() - start
    edge = 0.999 * boundary_distance(dim, c=c)
    scores = {}
    for score in SCORES:
        score_in = confidence(model, geometry, data.test, c=c, device=device, score=score)
        for name, images in data.ood.items():
            score_ood = confidence(model, geometry, images, c=c, device=device, score=score)
            saturated = float((torch.cat([score_in, score_ood]) >= edge).float().mean())
            scores[f"{name}/{score}"] = {**separation(score_in, score_ood), "saturated": saturated
                                         if geometry == "hyperbolic" and score == "radius" else float("nan")}
    return {"test_accuracy": accuracy(model, data.test, device=device), "separation": scores,
            "history": history.to_dict("records"), "convergence": history.attrs["convergence"],
            "wall_seconds": wall_seconds, "state": {key: value.cpu() for key, value in model.state_dict().items()}}


def cell_model(data: UncertaintyData, cell: Mapping[str, Any], result: Mapping[str, Any]) -> nn.Sequential:
    """The model an :func:`uncertainty_cell` trained, rebuilt on the CPU from its stored ``state``, in eval mode.
    In a dry run (:mod:`protolab.core.dryrun`) every cell's result is the first cell's, whose weights may not fit
    this model: it is returned as initialised."""
    model = build_classifier(cell["geometry"], in_channels=data.train.images.shape[1], dim=cell["dim"],
                             n_classes=data.train.n_classes, c=cell["c"], clip_r=cell["clip_r"])
    if not dryrun.dry_run_steps():
        model.load_state_dict(result["state"])
    return model.eval()
