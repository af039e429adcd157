r"""Feature spaces whose δ-hyperbolicity we measure (Khrulkov et al., CVPR 2020, Sec. 3).

Each function returns a float ``(N, D)`` tensor on the CPU, one row per image: raw pixels, the output of
a trained backbone, the penultimate (500-d hidden) layer of the uncertainty network, a researcher's own folder
(:func:`folder_space`), or any of those mapped onto the Poincaré ball; or a zero-shot data set's features or, one row
per class, its attribute rows and visual class means (:func:`zsl_space`: the two spaces IPN's category graphs live
in). The δ itself is :func:`protolab.delta.gromov.delta_hyperbolicity`.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import Dataset

from protolab.backbones import SmallCNN
from protolab.data.folders import (detect_kind, load_feature_folder, load_fewshot_folder, load_reid_folder,
                                   load_uncertainty_folder)
from protolab.data.images import LabeledImages, float_images
from protolab.data.xlsa17 import ZSLData
from protolab.hyperbolic import ToPoincare
from protolab.training.loops import apply_batched
from protolab.zsl.ipn import class_means

__all__ = ["ZSL_CLASS_SPACES", "concat_images", "delta_summary", "folder_space", "learned_features",
           "penultimate_features", "pixel_features", "poincare_features", "zsl_space"]


def pixel_features(data: LabeledImages) -> torch.Tensor:
    """Raw pixels of in-memory images ``(N, C, H, W)`` in ``[0, 1]`` (uint8 ones divided by 255), flattened:
    ``(N, C·H·W)`` float32."""
    if data.images is None:
        raise ValueError("pixel_features needs in-memory images (LabeledImages.images), not file paths")
    return float_images(data.images).flatten(1).float()


def concat_images(*parts: LabeledImages) -> LabeledImages:
    """The in-memory images of several parts of one dataset (e.g. train and test) as one set: labels and
    class names of the first part, description of the first part."""
    first = parts[0]
    return LabeledImages(labels=torch.cat([part.labels for part in parts]), class_names=first.class_names,
                         description=first.description, images=torch.cat([part.images for part in parts]))


def learned_features(backbone: nn.Module, data: Dataset, *, device: torch.device,
                     batch_size: int = 512) -> torch.Tensor:
    """``backbone`` (images → features) applied to every image of ``data`` in eval mode: ``(N, D)`` on the CPU."""
    return apply_batched(backbone, data, batch_size=batch_size, device=device).flatten(1).float()


def penultimate_features(model: nn.Module, data: Dataset, *, device: torch.device,
                         batch_size: int = 512) -> torch.Tensor:
    """The hidden layer of :class:`~protolab.backbones.SmallCNN` (after its ReLU, 500-d by default), for a
    SmallCNN or a classifier of :func:`protolab.uncertainty.build_classifier` (its ``model[0]``)."""
    backbone = model if isinstance(model, SmallCNN) else model[0]
    if not isinstance(backbone, SmallCNN):
        raise ValueError(f"expected a SmallCNN or a classifier starting with one, got {type(backbone).__name__}")
    hidden = nn.Sequential(backbone.features, *backbone.head[:-1])  # conv stack → flatten → fc(500) → ReLU
    return learned_features(hidden, data, device=device, batch_size=batch_size)


def poincare_features(features: torch.Tensor, *, c: float, mean_norm: float = 1.0) -> torch.Tensor:
    r"""Features mapped onto the Poincaré ball of curvature :math:`-c`, as a hyperbolic head would see them.

    The features are centred at their mean, scaled so that their mean norm is ``mean_norm / sqrt(c)``, then
    mapped by :class:`~protolab.hyperbolic.ToPoincare` (:math:`\exp^c_0` and projection), in float64:

    .. math::

        x \mapsto \exp^c_0\Bigl(\frac{m}{\sqrt c}\,\frac{x - \bar x}{\operatorname{mean}_i\|x_i - \bar x\|}\Bigr),
        \qquad d_c(0, \exp^c_0(u)) = 2\|u\| .

    Centring puts the origin of the ball at the data's centre (raw pixels are all in one orthant) and the
    scale makes the map independent of the features' units: a point at the mean norm lands at distance
    :math:`2m/\sqrt c` from the origin, i.e. at Euclidean radius :math:`\tanh(m)/\sqrt c` (0.76 for
    :math:`m = 1`); points a few times the mean norm approach the boundary.
    """
    if not math.isfinite(c) or c <= 0 or not math.isfinite(mean_norm) or mean_norm <= 0:
        raise ValueError(f"c and mean_norm must be positive and finite, got {c!r} and {mean_norm!r}")
    x = features.to(torch.float64)
    x = x - x.mean(dim=0, keepdim=True)
    norm = x.norm(dim=-1).mean()
    if float(norm) == 0.0:
        raise ValueError("all features coincide: nothing to scale")
    return ToPoincare(c)(x * (mean_norm / math.sqrt(c) / norm))


def delta_summary(features: torch.Tensor, *, n_points: int, n_tries: int, base_points: str = "one",
                  metric: str = "euclidean", c: float = 1.0, mean_norm: float = 1.0, compare_points: int = 0,
                  seed: int = 0, device: str = "cpu") -> dict[str, float]:
    r"""δ_rel of one feature space three ways, as flat ``<kind>_mean`` / ``<kind>_std`` numbers over tries.

    * ``delta_rel``: :func:`~protolab.delta.gromov.delta_hyperbolicity` with ``base_points`` and ``metric``;
    * ``single``: the official single-base-point value of the same samples (equal to ``delta_rel`` when
      ``base_points="one"``);
    * ``ball``: the same samples after :func:`poincare_features` (``c``, ``mean_norm``), geodesic distances;
    * ``all_small`` and ``single_small``: all base points vs the single one on ``compare_points``-point samples
      (NaN when ``compare_points`` is 0), since all base points cost :math:`O(n^4)`.

    Also ``n_points``, ``n_tries`` (as used: fewer points than asked give one try of all of them) and
    ``compare_points``. Every estimate uses the same ``seed``, so its tries draw the same samples.
    """
    from protolab.delta.gromov import delta_hyperbolicity

    options = dict(n_points=n_points, n_tries=n_tries, seed=seed, device=device)
    flat = delta_hyperbolicity(features, base_points=base_points, metric=metric, **options)
    ball = delta_hyperbolicity(poincare_features(features, c=c, mean_norm=mean_norm), base_points=base_points,
                               metric="poincare", c=c, **options)
    small = (delta_hyperbolicity(features, base_points="all", metric=metric, **{**options, "n_points": compare_points})
             if compare_points else {})
    single = "delta_rel_single" if base_points == "all" else "delta_rel"
    sources = {"delta_rel": (flat, "delta_rel"), "single": (flat, single), "ball": (ball, "delta_rel"),
               "all_small": (small, "delta_rel"), "single_small": (small, "delta_rel_single")}
    summary: dict[str, float] = {"n_points": flat["n_points"], "n_tries": flat["n_tries"],
                                 "compare_points": small.get("n_points", 0)}
    for kind, (result, key) in sources.items():
        summary.update({f"{kind}_mean": result.get(f"{key}_mean", math.nan),
                        f"{kind}_std": result.get(f"{key}_std", math.nan)})
    return summary


def folder_space(root: str | Path, *, image_size: int = 28) -> tuple[torch.Tensor, torch.Tensor, str]:
    """Points ``(N, D)``, class labels ``(N,)`` and a description of a researcher's folder ``root`` of any kind
    (:func:`~protolab.data.folders.detect_kind`): a feature matrix as it is; images as raw pixels
    (:func:`pixel_features`) at ``image_size`` × ``image_size`` — a few-shot folder's test (novel) classes, an
    uncertainty folder's train + test images, a re-ID folder's training images (as the embedded sets are read)."""
    kind = detect_kind(root)
    if kind == "features":
        return load_feature_folder(root)
    if kind == "fewshot":
        part = load_fewshot_folder(root, image_size=image_size).test
    elif kind == "uncertainty":
        part = concat_images(*load_uncertainty_folder(root, image_size=image_size))
    else:
        part = load_reid_folder(root, (image_size, image_size)).train
    return pixel_features(part), part.labels, f"{kind} folder {Path(root).name}: raw pixels of {len(part)} images"


ZSL_CLASS_SPACES = ("attributes", "class means")
"""The class-level spaces of :func:`zsl_space`, named ``"<zero-shot data set> <space>"`` in a notebook."""


def zsl_space(data: ZSLData, kind: str = "") -> tuple[torch.Tensor, torch.Tensor, str]:
    """A space of the zero-shot data set ``data``: ``(points, labels, description)``.

    ``kind`` ``""``: the CNN features ``(N, D)`` of every image (trainval, test seen and test unseen) with their
    class labels. One of :data:`ZSL_CLASS_SPACES`: the two spaces of IPN's category graphs, one row per class (``C``
    classes, seen and unseen, labels ``0 … C−1``): ``"attributes"`` ``(C, A)`` as loaded, or ``"class means"``
    ``(C, D)``, the mean feature of every image of each class."""
    parts = (data.trainval, data.test_seen, data.test_unseen)
    features, labels = torch.cat([part.features for part in parts]), torch.cat([part.labels for part in parts])
    if not kind:
        return features, labels, f"{data.name} CNN features of all {len(features)} images"
    if kind not in ZSL_CLASS_SPACES:
        raise ValueError(f"unknown zero-shot space {kind!r}; choose one of {', '.join(ZSL_CLASS_SPACES)}")
    points = data.attributes.float() if kind == "attributes" else class_means(features.float(), labels,
                                                                             data.n_classes)[0]
    return points, torch.arange(data.n_classes), f"{data.name} {kind}, one point per class ({data.n_classes})"
