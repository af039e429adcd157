"""IPN in the Poincaré ball: the category graphs, propagation and scores of :mod:`protolab.zsl.ipn` with
hyperbolic geometry. **An extension of this kit, not a method of either paper**: IPN (Liu et al., ICLR 2021) is
Euclidean and the hyperbolic paper (Khrulkov et al., CVPR 2020) has no graph propagation; the question is whether
prototypes that propagate over a tree-like category graph gain from a space where trees embed with low distortion.

Each space (semantic, visual) keeps IPN's encoders (:class:`~protolab.zsl.ipn.SemanticEncoder`, the visual map W)
and its learned graph projection G; what changes, with ``c`` the curvature of the ball and
:mod:`protolab.hyperbolic`'s operations (float32 at least, projection into the ball):

- **into the ball**: ``ball(u) = exp_0(clip(u))``, every tangent vector clipped to norm ``clip_r`` first
  (:func:`~protolab.hyperbolic.clip_features`, Guo et al. 2021; the visual prototypes W·mean have norms near 40 on
  glyph-zsl and would otherwise all sit on the boundary, where ``tanh`` saturates and gradients vanish); so every
  distance is at most ``4 clip_r``;
- **prototypes** ``h_i = ball(p_i)`` (eq. ``proto``);
- **graph** (eq. ``graph``): ``g_i = ball(log_0(h_i) G)``, ``d_ij = d_c(g_i, g_j)``, an edge where
  ``d_ij ≤ r`` (``distance_threshold``), self-loops always kept. The default ``r = 2 √(2 − 2 cos 40°) ≈ 1.37``
  is IPN's cosine threshold carried over at the default ``clip_r = 1``: as ``c → 0``, for points at the clip
  radius, ``d_ij ≤ r`` is exactly ``cos(g_i, g_j) ≥ cos 40°``;
- **attention** (eq. ``attention``): ``softmax_j(−T d_ij)`` over each class's neighbours (``T`` the model's
  ``temperature``);
- **propagation** (eq. ``propagation``): ``h_i ← HypAve_c({h_j}, {a_ij})``, the attention-weighted Einstein
  midpoint (:func:`~protolab.hyperbolic.attention_midpoint`); with one neighbour per class it is the identity;
- **score** (replaces the relation MLP of eq. ``score``): an image ``x`` is embedded in each space,
  ``e_vis = ball(W x)`` (the visual prototypes' map, so a class prototype starts as the map of its mean) and
  ``e_sem = ball(V x)`` (a learned map into the semantic space); the logit of class ``i`` is
  ``−s (d_c(e_sem, h_i^sem) + d_c(e_vis, h_i^vis))``: a fixed, equal-weight sum of the two spaces' distances
  with one learned scale ``s = exp(σ)`` (σ = 0 at initialisation), as hyperbolic ProtoNets score by distance;
- **consistency** (eq. ``consistency``): unchanged, KL between the two spaces' attention rows.

As ``c → 0`` the ball becomes Euclidean space with distances doubled (``d_c(x, y) → 2‖x − y‖``): the
propagation tends to IPN's ``A P`` with the same attention and the scores to minus the sum of doubled Euclidean
distances (``tests/test_hyperbolic_ipn.py``). Unseen classes' visual prototypes are filled and the model selected
and refitted exactly as IPN's (:func:`protolab.zsl.ipn.fill_unseen_prototypes`, :func:`protolab.zsl.fit.fit_ipn`),
through the same interface (``semantic_similarity``, ``propagated``, ``prototypes``, ``score``, ``forward``).

Shapes as in :mod:`protolab.zsl.ipn`: ``C`` classes, ``D`` feature dim, ``A`` attribute dim, ``P`` prototype dim,
``G`` graph-projection dim, ``B`` images.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from protolab.core.onednn import Linear, linear
from protolab.hyperbolic import attention_midpoint, clip_features, expmap0, logmap0, pairwise_dist
from protolab.zsl.ipn import IPNConfig, SemanticEncoder, consistency_loss

__all__ = ["HyperbolicIPN", "graph_distances", "hyperbolic_attention", "hyperbolic_propagate", "into_ball"]


def into_ball(tangent: torch.Tensor, *, c: float, clip_r: float) -> torch.Tensor:
    """``exp_0(clip(u))``: tangent vectors ``(..., P)`` at the origin clipped to norm ``clip_r``, then mapped
    into the ball of curvature ``c`` (module docstring)."""
    return expmap0(clip_features(tangent, clip_r), c=c)


def graph_distances(points: torch.Tensor, projection: torch.Tensor, *, c: float, clip_r: float) -> torch.Tensor:
    """The distances ``(C, C)`` of one space's graph (eq. ``graph``, hyperbolic): :math:`d_c(g_i, g_j)` of the
    projected points :math:`g_i = \\exp_0(\\mathrm{clip}(\\log_0(h_i) G))`; ``points`` h ``(C, P)`` in the ball,
    ``projection`` G ``(P, G)``."""
    projected = into_ball(linear(logmap0(points, c=c), projection.T), c=c, clip_r=clip_r)
    return pairwise_dist(projected, projected, c=c)


def hyperbolic_attention(points: torch.Tensor, projection: torch.Tensor, *, c: float, clip_r: float,
                         threshold: float, temperature: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Graph and attention of one space in the ball (eqs. ``graph`` and ``attention``, hyperbolic).

    .. math:: g_i = \\exp_0(\\mathrm{clip}(\\log_0(h_i) G)), \\quad d_{ij} = d_c(g_i, g_j), \\quad
              a_{ij} = \\frac{\\exp(-T d_{ij})}{\\sum_{k : d_{ik} \\le r \\text{ or } k = i} \\exp(-T d_{ik})}
              \\text{ for } d_{ij} \\le r \\text{ or } j = i, \\quad 0 \\text{ otherwise}

    Parameters
    ----------
    points : h, ``(C, P)`` in the ball; projection : G, ``(P, G)``; c, clip_r, threshold (r), temperature (T).

    Returns
    -------
    (distances ``(C, C)``, attention ``(C, C)``: rows summing to one, exactly zero off the graph).
    """
    distances = graph_distances(points, projection, c=c, clip_r=clip_r)
    eye = torch.eye(len(points), dtype=torch.bool, device=points.device)
    edges = (distances <= threshold) | eye
    return distances, torch.softmax((-temperature * distances).masked_fill(~edges, -math.inf), dim=1)


def hyperbolic_propagate(points: torch.Tensor, projection: torch.Tensor, steps: int, *, c: float, clip_r: float,
                         threshold: float, temperature: float) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """K steps of hyperbolic propagation (eq. ``propagation``): :math:`h^{(t+1)}_i = \\mathrm{HypAve}_c(\\{h^{(t)}_j\\},
    \\{a^{(t)}_{ij}\\})`, the graph and attention (:func:`hyperbolic_attention`) recomputed at every step as in
    :func:`protolab.zsl.ipn.propagate`. ``points`` ``(C, P)`` in the ball; returns (propagated ``(C, P)``, the K
    attention matrices)."""
    used = []
    for _ in range(steps):
        attention = hyperbolic_attention(points, projection, c=c, clip_r=clip_r, threshold=threshold,
                                         temperature=temperature)[1]
        points = attention_midpoint(points, attention, c=c)
        used.append(attention)
    return points, used


class HyperbolicIPN(nn.Module):
    """IPN with prototypes, graphs, propagation and distance scores in the Poincaré ball (module docstring).

    Both spaces, each with its own attention (the full model: ``spaces="both"``, no shared attention); K = 0 keeps
    the ball's prototypes and distance scores without propagation.

    Parameters
    ----------
    feature_dim : D; centres : ``(K, A)`` from :func:`~protolab.zsl.ipn.attribute_centres`; config :
        :class:`~protolab.zsl.ipn.IPNConfig` with ``geometry="hyperbolic"``.
    """

    def __init__(self, feature_dim: int, centres: torch.Tensor, config: IPNConfig) -> None:
        super().__init__()
        if config.geometry != "hyperbolic" or config.spaces != "both" or config.shared_attention:
            raise ValueError("HyperbolicIPN is the full model in the ball: geometry='hyperbolic', spaces='both', "
                             f"no shared attention; got {config}")
        if min(config.curvature, config.clip_r, config.distance_threshold) <= 0:
            raise ValueError(f"curvature, clip_r and distance_threshold must be > 0, got {config.curvature}, "
                             f"{config.clip_r} and {config.distance_threshold}")
        self.config = config
        width = config.prototype_dim
        self.semantic = SemanticEncoder(centres, width)
        self.visual = Linear(feature_dim, width)
        self.image_semantic = Linear(feature_dim, width)
        self.graph_semantic = nn.Parameter(nn.init.xavier_uniform_(torch.empty(width, config.graph_dim)))
        self.graph_visual = nn.Parameter(nn.init.xavier_uniform_(torch.empty(width, config.graph_dim)))
        self.log_scale = nn.Parameter(torch.zeros(()))

    def _ball(self, tangent: torch.Tensor) -> torch.Tensor:
        return into_ball(tangent, c=self.config.curvature, clip_r=self.config.clip_r)

    def _graph_options(self) -> dict[str, float]:
        cfg = self.config
        return dict(c=cfg.curvature, clip_r=cfg.clip_r, threshold=cfg.distance_threshold, temperature=cfg.temperature)

    def semantic_similarity(self, attributes: torch.Tensor) -> torch.Tensor:
        """Minus the Poincaré distance ``(C, C)`` of the classes' projected semantic prototypes (the graph's
        :math:`-d_{ij}`): larger is nearer, as IPN's cosine (used to fill unseen visual prototypes)."""
        return -graph_distances(self._ball(self.semantic(attributes)), self.graph_semantic, c=self.config.curvature,
                                clip_r=self.config.clip_r)

    def propagated(self, class_means: torch.Tensor, attributes: torch.Tensor
                   ) -> tuple[dict[str, torch.Tensor], dict[str, list[torch.Tensor]]]:
        """Each space's prototypes ``(C, P)`` in the ball after propagation, and the attentions used, by space name;
        arguments as :meth:`protolab.zsl.ipn.IPN.propagated`."""
        steps, options = self.config.steps, self._graph_options()
        spaces, attentions = {}, {}
        spaces["semantic"], attentions["semantic"] = hyperbolic_propagate(
            self._ball(self.semantic(attributes)), self.graph_semantic, steps, **options)
        spaces["visual"], attentions["visual"] = hyperbolic_propagate(
            self._ball(self.visual(class_means)), self.graph_visual, steps, **options)
        return spaces, attentions

    def prototypes(self, class_means: torch.Tensor, attributes: torch.Tensor
                   ) -> tuple[torch.Tensor, dict[str, list[torch.Tensor]]]:
        """``[H_sem; H_vis]`` ``(C, 2P)`` (each half a point of its ball) and the attentions used."""
        spaces, attentions = self.propagated(class_means, attributes)
        return torch.cat([spaces["semantic"], spaces["visual"]], dim=1), attentions

    def score(self, features: torch.Tensor, prototypes: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, C)``: :math:`-s\\,(d_c(e_{sem}(x), h^{sem}_i) + d_c(e_{vis}(x), h^{vis}_i))` of ``features``
        ``(B, D)`` against :meth:`prototypes` ``(C, 2P)``."""
        c, width = self.config.curvature, self.config.prototype_dim
        distances = (pairwise_dist(self._ball(self.image_semantic(features)), prototypes[:, :width], c=c)
                     + pairwise_dist(self._ball(self.visual(features)), prototypes[:, width:], c=c))
        return -self.log_scale.exp() * distances

    def forward(self, features: torch.Tensor, class_means: torch.Tensor, attributes: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits ``(B, C)`` of ``features`` ``(B, D)`` and the consistency loss (eq. ``consistency``)."""
        prototypes, attentions = self.prototypes(class_means, attributes)
        consistency = consistency_loss(attentions["visual"], attentions["semantic"])
        return self.score(features, prototypes), consistency.to(features.device)

