r"""Prototypical networks (Snell et al. 2017) in Euclidean space or on the Poincaré ball (Khrulkov et al. 2020).

Each class's prototype summarises its support embeddings; a query is scored by its negative
distance to every prototype, divided by a temperature :math:`T`:

.. math::

    \text{Euclidean:}\quad p_k = \frac{1}{|S_k|}\sum_{x \in S_k} f(x), \qquad
    \operatorname{logit}_k(q) = -\frac{\|f(q) - p_k\|^2}{T}

    \text{hyperbolic:}\quad p_k = \operatorname{HypAve}_c\{h(x) : x \in S_k\}, \qquad
    \operatorname{logit}_k(q) = -\frac{d_c(h(q), p_k)}{T}, \qquad h = \operatorname{ToPoincare} \circ f

with the Einstein midpoint HypAve (paper eq. 4, :func:`protolab.hyperbolic.poincare_mean`) and the
unsquared geodesic distance :math:`d_c` (:func:`protolab.hyperbolic.pairwise_dist`), as in the
paper's released code.

Under ``torch.autocast`` the backbone runs in 16 bits but the head (ToPoincare, prototypes, logits)
computes in float32 (:func:`protolab.hyperbolic.at_least_float32`): logits are float32 in both
geometries.
"""

from __future__ import annotations

import torch
from torch import nn

from protolab.hyperbolic import ToPoincare, at_least_float32, pairwise_dist, poincare_mean

__all__ = ["GEOMETRIES", "ProtoNet", "class_major", "euclidean_prototypes", "hyperbolic_prototypes",
           "squared_euclidean"]

GEOMETRIES = ("euclidean", "hyperbolic")


def class_major(embeddings: torch.Tensor, labels: torch.Tensor, n_way: int) -> torch.Tensor:
    """Group ``embeddings`` ``(N, D)`` by ``labels`` ``(N,)`` in ``0..n_way-1`` into ``(n_way, N / n_way, D)``.

    Every class must have the same, non-zero number of samples (as every episode has); within a
    class, samples keep their order.
    """
    if embeddings.dim() != 2 or labels.shape != embeddings.shape[:1]:
        raise ValueError(f"expected embeddings (N, D) and labels (N,), got {tuple(embeddings.shape)} "
                         f"and {tuple(labels.shape)}")
    labels = labels.long()
    if len(labels) and (labels.min() < 0 or labels.max() >= n_way):
        raise ValueError(f"labels must lie in 0..{n_way - 1}")
    counts = torch.bincount(labels, minlength=n_way)
    if counts.min() == 0 or (counts != counts[0]).any():
        raise ValueError(f"every class 0..{n_way - 1} needs the same non-zero number of support samples, "
                         f"got counts {counts.tolist()}")
    order = torch.argsort(labels, stable=True).to(embeddings.device)
    return embeddings[order].reshape(n_way, -1, embeddings.shape[-1])


def euclidean_prototypes(embeddings: torch.Tensor, labels: torch.Tensor, n_way: int) -> torch.Tensor:
    r"""Class means :math:`p_k = \frac{1}{|S_k|}\sum_{i: y_i = k} z_i`: ``(N, D)``, ``(N,)`` → ``(n_way, D)``."""
    return class_major(embeddings, labels, n_way).mean(dim=1)


def hyperbolic_prototypes(embeddings: torch.Tensor, labels: torch.Tensor, n_way: int,
                          c: float | torch.Tensor) -> torch.Tensor:
    r"""Einstein midpoints :math:`p_k = \operatorname{HypAve}_c\{z_i : y_i = k\}` of ball points: ``(N, D)`` → ``(n_way, D)``."""
    return poincare_mean(class_major(embeddings, labels, n_way), c=c, dim=1)


def squared_euclidean(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    r"""All squared distances :math:`\|x_i - y_j\|^2 = \|x_i\|^2 + \|y_j\|^2 - 2\langle x_i, y_j\rangle`.

    ``(N, D)``, ``(M, D)`` → ``(N, M)``, clamped at 0; memory :math:`O(NM)` (no ``N × M × D`` tensor).
    """
    squared = x.pow(2).sum(-1, keepdim=True) + y.pow(2).sum(-1) - 2 * x @ y.transpose(0, 1)
    return squared.clamp_min(0)


class ProtoNet(nn.Module):
    r"""A prototypical network whose geometry is Euclidean or hyperbolic (see the module docstring).

    Parameters
    ----------
    backbone : nn.Module
        Feature extractor, images ``(B, C, H, W)`` → features ``(B, D)``.
    geometry : str
        ``"euclidean"`` or ``"hyperbolic"``.
    c : float
        Ball curvature magnitude (hyperbolic only; the initial value when ``train_c``).
    clip_r : float, optional
        Feature clipping radius before the exponential map (hyperbolic only; Guo et al. 2021).
    temperature : float
        Positive :math:`T` dividing the negative distances.
    train_c : bool
        Learn ``c`` (hyperbolic only).
    riemannian : bool
        Rescale the embedding's gradient by :math:`1/\lambda_x^2` in the backward pass, as every official
        few-shot run did (hyperbolic only; see :class:`~protolab.hyperbolic.ToPoincare`).

    Shape
    -----
    ``forward(support_images (S, C, H, W), support_labels (S,), query_images (Q, C, H, W), n_way)``
    → logits ``(Q, n_way)``. Support and query pass through the backbone as one batch, so
    BatchNorm in training mode normalises them together.
    """

    def __init__(self, backbone: nn.Module, geometry: str = "euclidean", c: float = 0.01,
                 clip_r: float | None = None, temperature: float = 1.0, train_c: bool = False,
                 riemannian: bool = False) -> None:
        super().__init__()
        if geometry not in GEOMETRIES:
            raise ValueError(f"unknown geometry {geometry!r}; choose one of {', '.join(GEOMETRIES)}")
        if not float(temperature) > 0:
            raise ValueError(f"temperature must be positive, got {temperature!r}")
        if geometry == "euclidean" and (clip_r is not None or train_c or riemannian):
            raise ValueError("clip_r, train_c and riemannian only apply to geometry='hyperbolic'")
        self.backbone = backbone
        self.geometry = geometry
        self.temperature = float(temperature)
        self.to_poincare = (ToPoincare(c, clip_r=clip_r, train_c=train_c, riemannian=riemannian)
                            if geometry == "hyperbolic" else None)

    @property
    def c(self) -> float | torch.Tensor | None:
        """Curvature magnitude of the ball (a tensor with gradient when learnt); ``None`` if Euclidean."""
        return None if self.to_poincare is None else self.to_poincare.c

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        """Backbone features, mapped onto the ball when hyperbolic: ``(B, C, H, W)`` → ``(B, D)``."""
        features = self.backbone(images)
        return features if self.to_poincare is None else self.to_poincare(features)

    @at_least_float32
    def prototypes(self, embeddings: torch.Tensor, labels: torch.Tensor, n_way: int) -> torch.Tensor:
        """Prototype of each class from embedded support samples: ``(S, D)``, ``(S,)`` → ``(n_way, D)``."""
        if self.to_poincare is None:
            return euclidean_prototypes(embeddings, labels, n_way)
        return hyperbolic_prototypes(embeddings, labels, n_way, self.c)

    @at_least_float32
    def logits(self, queries: torch.Tensor, prototypes: torch.Tensor) -> torch.Tensor:
        """Negative distances over the temperature: ``(Q, D)``, ``(n_way, D)`` → ``(Q, n_way)``."""
        if self.to_poincare is None:
            distances = squared_euclidean(queries, prototypes)
        else:
            distances = pairwise_dist(queries, prototypes, c=self.c)
        return -distances / self.temperature

    def forward(self, support_images: torch.Tensor, support_labels: torch.Tensor, query_images: torch.Tensor,
                n_way: int) -> torch.Tensor:
        embedded = self.embed(torch.cat([support_images, query_images]))
        support, queries = embedded[: len(support_images)], embedded[len(support_images):]
        return self.logits(queries, self.prototypes(support, support_labels.to(embedded.device), n_way))

    def extra_repr(self) -> str:
        return f"geometry={self.geometry!r}, temperature={self.temperature:g}"
