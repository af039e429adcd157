"""Confidence of an image classifier as an uncertainty score (Khrulkov et al., CVPR 2020, Sec. 5.1).

The same backbone (the paper's MNIST network, :class:`~protolab.backbones.SmallCNN`) ends either in a
Euclidean softmax head, whose confidence is the maximum softmax probability :math:`p_{\\max}`, or in the
Poincaré ball (ToPoincare → hyperbolic MLR), whose confidence is the distance of the embedding to the
origin :math:`d_c(x, 0)`. Larger is more confident for both.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn
from torch.utils.data import Dataset

from protolab.backbones import SmallCNN
from protolab.hyperbolic import HyperbolicMLR, ToPoincare, dist0
from protolab.metrics import auroc, ks_statistic
from protolab.training.loops import apply_batched

Geometry = Literal["euclidean", "hyperbolic"]
GEOMETRIES: tuple[Geometry, ...] = ("euclidean", "hyperbolic")


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
               batch_size: int = 512) -> torch.Tensor:
    """Per image of ``data``, ``(N,)`` on the CPU, larger = more confident: :math:`d_c(x, 0)` of the embedding
    for the hyperbolic model, :math:`p_{\\max}` for the Euclidean one."""
    if geometry == "hyperbolic":
        return dist0(apply_batched(model[:2], data, batch_size=batch_size, device=device), c=c)
    return apply_batched(model, data, batch_size=batch_size, device=device).softmax(-1).max(-1).values


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
