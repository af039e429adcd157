"""Whether a zero-shot dataset's two spaces describe the same class relations, measured on seen classes only.

IPN propagates prototypes along a category graph in each space and aligns the two graphs (Liu et al., 2021,
Sec. 3): the premise is that classes near each other by their attributes are near each other by their images.
These diagnostics measure how far that holds *before* any model is trained, between the attribute vectors and
the visual class means (mean feature of each class), so that a stand-in dataset can be checked to offer the
correspondence the method exploits. Only seen classes enter: unseen classes' images are test data.
"""

from __future__ import annotations

import torch

from protolab.data.xlsa17 import ZSLData
from protolab.metrics import linear_cka
from protolab.zsl.ipn import class_means

TABLE_CAPTION = ("Attribute vs visual correspondence of the seen classes (trainval features only): share of classes "
                 "whose nearest class by visual mean is one of their nearest by attributes (ties included), nearest-"
                 "class agreement at k = 1 and 5, each with its chance level, linear CKA, median nearest-class cosine "
                 "of the visual class means.")
"""Caption of a notebook's table of :func:`seen_class_correspondence`."""


def cosine_to_others(points: torch.Tensor) -> torch.Tensor:
    """Cosine similarity ``(N, N)`` of every pair of rows of ``points`` ``(N, D)``, in float64, with −inf on the
    diagonal (an item is not its own neighbour)."""
    unit = torch.nn.functional.normalize(points.double(), dim=1)
    return (unit @ unit.T).fill_diagonal_(-torch.inf)


def cosine_neighbours(points: torch.Tensor, k: int) -> torch.Tensor:
    """Indices ``(N, k)`` of each row's ``k`` cosine-nearest other rows of ``points`` ``(N, D)`` (itself excluded),
    nearest first."""
    if not 1 <= k < len(points):
        raise ValueError(f"k must be between 1 and {len(points) - 1} (the other items), got {k}")
    return cosine_to_others(points).topk(k, dim=1).indices


def neighbour_agreement(a: torch.Tensor, b: torch.Tensor, k: int) -> float:
    """Mean over the ``N`` items described by ``a`` ``(N, P)`` and ``b`` ``(N, Q)`` of the fraction of each item's ``k``
    cosine-nearest other items in ``a`` that are also among its ``k`` nearest in ``b``: 1 when both spaces name the
    same neighbours, ``k / (N - 1)`` expected by chance."""
    near_a, near_b = cosine_neighbours(a, k), cosine_neighbours(b, k)
    shared = (near_a[:, :, None] == near_b[:, None, :]).any(dim=2).sum(dim=1)
    return float(shared.double().mean() / k)


def nearest_among_ties(a: torch.Tensor, b: torch.Tensor) -> tuple[float, float]:
    """Share of the ``N`` items described by ``a`` ``(N, P)`` and ``b`` ``(N, Q)`` whose cosine-nearest other item in
    ``b`` is one of their cosine-nearest in ``a``, every item tied at the largest cosine included (binary attributes
    tie often: ``é`` is as near ``è`` as ``ê``); and its chance level, the mean share of the other items tied
    nearest in ``a``. An item's nearest in ``b`` is its first on a tie there."""
    similar = cosine_to_others(a)
    tied = similar >= similar.max(dim=1, keepdim=True).values - 1e-9
    nearest = cosine_to_others(b).argmax(dim=1)
    hit = tied[torch.arange(len(a)), nearest]
    return float(hit.double().mean()), float(tied.double().sum(dim=1).mean() / (len(a) - 1))


def seen_class_correspondence(data: ZSLData, ks: tuple[int, ...] = (1, 5)) -> dict[str, float]:
    """Correspondence of the attribute space and the visual space on the ``S`` seen classes of ``data``, from the
    ``trainval`` features only.

    - ``nearest_tied``: :func:`nearest_among_ties` of the attribute vectors and the visual class means, with its
      chance level ``chance_tied``;
    - ``agreement@k``: :func:`neighbour_agreement` of the attribute vectors and the visual class means, with its
      chance level ``chance@k`` = ``k / (S - 1)``;
    - ``cka``: :func:`~protolab.metrics.linear_cka` of the two class descriptions (1: one is the other up to a
      rotation and scale; near 0: unrelated);
    - ``visual_nearest_cosine``: median over classes of the cosine of a class mean to its nearest other class mean
      (near 1: the visual classes are nearly all alike, whatever their order).
    """
    means, present = class_means(data.trainval.features, data.trainval.labels, data.n_classes)
    seen = data.seen_classes[present[data.seen_classes]]
    visual, attributes = means[seen], data.attributes[seen]
    nearest = cosine_to_others(visual).max(dim=1).values
    result = {"classes": float(len(seen))}
    result["nearest_tied"], result["chance_tied"] = nearest_among_ties(attributes, visual)
    for k in ks:
        result[f"agreement@{k}"] = neighbour_agreement(attributes, visual, k)
        result[f"chance@{k}"] = k / (len(seen) - 1)
    result["cka"] = linear_cka(attributes, visual)
    result["visual_nearest_cosine"] = float(nearest.median())
    return result


def describe_correspondence(measured: dict[str, float]) -> str:
    """One sentence for a report from :func:`seen_class_correspondence`'s result (with ``ks`` 1 and 5)."""
    alike = "nearly all alike" if measured["visual_nearest_cosine"] > 0.9 else "spread apart"
    return (f"on the {measured['classes']:.0f} seen classes, a class's nearest class by visual class mean is one of "
            f"its nearest by attributes (ties included) for {measured['nearest_tied']:.1%} of classes (chance "
            f"{measured['chance_tied']:.1%}), the first nearest by attributes for {measured['agreement@1']:.1%} "
            f"(chance {measured['chance@1']:.1%}) and "
            f"{measured['agreement@5']:.1%} of the 5 nearest are shared (chance {measured['chance@5']:.1%}); linear "
            f"CKA {measured['cka']:.2f}; the visual class means are {alike} (median cosine to the nearest other "
            f"class {measured['visual_nearest_cosine']:.2f})")
