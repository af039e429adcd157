"""Person re-identification models with Euclidean or hyperbolic embeddings (Khrulkov et al., CVPR 2020, Sec. 6.3).

No official code exists for this experiment (hyperbolic-image-embeddings issue #8), so the choices
below are ours wherever the paper is silent; :data:`OUR_CHOICES` lists them for the notebook.

One model, :class:`ReidNet`: a backbone → a ``dim``-d embedding → a head over the training identities,

- ``"euclidean"``: a linear softmax head; retrieval ranks the gallery by Euclidean distance;
- ``"hyperbolic"``: :class:`~protolab.hyperbolic.ToPoincare` then
  :class:`~protolab.hyperbolic.HyperbolicMLR`; retrieval ranks by the Poincaré distance
  (:func:`~protolab.hyperbolic.pairwise_dist`).

Training and retrieval evaluation are in :mod:`protolab.reid.fit`, tables in :mod:`protolab.reid.tables`.
"""

from __future__ import annotations

import torch
from torch import nn

from protolab.backbones import Conv4, SmallCNN, build_backbone, resnet50_trunk
from protolab.hyperbolic import HyperbolicMLR, ToPoincare, pairwise_dist

GEOMETRIES = ("euclidean", "hyperbolic")


OUR_CHOICES = (
    "embedding: backbone features → one linear layer to `dim`",
    "loss: softmax cross-entropy over the training identities (no triplet loss, no BN-neck)",
    "sampler: shuffled mini-batches (no P×K identity sampler)",
    "optimiser: Adam with weight decay 5e-4; schedules sch1 / sch2 as defined in `SCHEDULES`",
    "hyperbolic head: ToPoincare with feature clipping `clip_r` (Guo et al.) to keep points off the float32 "
    "boundary, plain (not Riemannian) gradients, curvature `c`",
    "retrieval: the embedding itself (the point of the ball for the hyperbolic model), no re-ranking",
    "augmentation: horizontal flip (real data only: a flipped character is another character), "
    "zero-pad + random crop, random erasing (p = 0.5)",
)
"""Choices the paper leaves open, as the notebook states them."""


class ReidNet(nn.Module):
    """Images ``(B, C, H, W)`` → identity logits ``(B, n_classes)``; :meth:`embed` gives the ``(B, dim)``
    retrieval embedding (a point of the Poincaré ball for ``geometry="hyperbolic"``).

    Parameters
    ----------
    backbone : images → features ``(B, feature_dim)``.
    embedding : features → ``(B, dim)``.
    geometry : ``"euclidean"`` or ``"hyperbolic"``.
    dim, n_classes : embedding size and number of training identities.
    c, clip_r : curvature and feature clipping radius of the hyperbolic head (ignored for Euclidean).
    """

    def __init__(self, backbone: nn.Module, embedding: nn.Module, geometry: str, *, dim: int, n_classes: int,
                 c: float, clip_r: float | None = None) -> None:
        super().__init__()
        if geometry not in GEOMETRIES:
            raise ValueError(f"geometry must be one of {GEOMETRIES}, got {geometry!r}")
        self.geometry, self.c = geometry, c
        self.backbone, self.embedding = backbone, embedding
        hyperbolic = geometry == "hyperbolic"
        self.to_ball = ToPoincare(c, clip_r=clip_r) if hyperbolic else nn.Identity()
        self.head = HyperbolicMLR(dim, n_classes, c) if hyperbolic else nn.Linear(dim, n_classes)

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        return self.to_ball(self.embedding(self.backbone(images)))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(images))

    def embedder(self) -> nn.Sequential:
        """The modules of :meth:`embed` as one module (for :func:`~protolab.training.loops.apply_batched`)."""
        return nn.Sequential(self.backbone, self.embedding, self.to_ball)


def build_reid_model(geometry: str, *, backbone: str, in_channels: int, dim: int, n_classes: int, c: float,
                     clip_r: float | None = None, pretrained_weights: str = "") -> ReidNet:
    """``backbone`` ∈ ``"small_cnn"`` (the paper's MNIST network, its last fc giving ``dim``), ``"conv4"``
    (four conv-BN-ReLU-pool blocks of width 32, the last with 64 channels max-pooled: 64-d), ``"resnet18"``
    (512-d), ``"resnet50"`` (torchvision's, 2048-d, :func:`resnet50_trunk`; 3 input channels) → a
    linear layer to ``dim`` → the ``geometry``'s head (see :class:`ReidNet`)."""
    if backbone == "small_cnn":
        trunk, embedding = SmallCNN(in_channels, dim), nn.Identity()
    elif backbone == "resnet50":
        if in_channels != 3:
            raise ValueError(f"resnet50 takes RGB images, got {in_channels} channels")
        trunk, embedding = resnet50_trunk(pretrained_weights), nn.Linear(2048, dim)
    elif backbone == "conv4":
        trunk, embedding = Conv4(in_channels, width=32, dim=64), nn.Linear(64, dim)
    elif backbone == "resnet18":
        trunk, embedding = build_backbone("resnet18", in_channels), nn.Linear(512, dim)
    else:
        raise ValueError(f"unknown backbone {backbone!r}; choose small_cnn, conv4, resnet18 or resnet50")
    return ReidNet(trunk, embedding, geometry, dim=dim, n_classes=n_classes, c=c, clip_r=clip_r)


def retrieval_distances(query: torch.Tensor, gallery: torch.Tensor, geometry: str, *, c: float) -> torch.Tensor:
    """``(Q, G)`` distances between embeddings: Euclidean, or Poincaré (curvature ``c``) for ``"hyperbolic"``;
    computed in float64 so that points near the boundary of the ball keep their order."""
    query, gallery = query.double(), gallery.double()
    if geometry == "hyperbolic":
        return torch.cat([pairwise_dist(block, gallery, c=c) for block in query.split(512)])
    return torch.cdist(query, gallery)
