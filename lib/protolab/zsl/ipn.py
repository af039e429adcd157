"""Isometric Propagation Network (Liu et al., ICLR 2021, arXiv 2102.02038) on fixed image features.

Sources. The paper's method section could not be read here (only its abstract and introduction): it
states that each space builds a category graph with an attention module, propagates the class
prototypes on it for several steps, and that a consistency loss makes the two propagations
"isometric in terms of the two graphs' edge weights per step". Everything else follows the official
code (GitHub Anonymous-AA/IPN, ``lib/networks/IPN.py``, ``exps/main.py``); where our choice differs
from that code, the docstring says so. Equation names below (``proto``, ``graph``, ``attention``,
``propagation``, ``score``, ``consistency``) label the steps, not the paper's equation numbers.

This module is the model only; training, model selection and GZSL evaluation are in
:mod:`protolab.zsl.fit`.

Shapes: ``C`` classes in the current search space, ``D`` feature dim, ``A`` attribute dim, ``P``
prototype dim of each space, ``G`` graph-projection dim, ``H`` hidden dim of the scoring MLP.
Linear maps and the graph projection are computed by :mod:`protolab.core.onednn` (oneDNN on x86-64 CPUs).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
from sklearn.cluster import KMeans
from torch import nn
from torch.nn import functional as F

from protolab.core.onednn import Linear, linear
from protolab.metrics import linear_cka, similarity_kl

Spaces = Literal["both", "visual", "semantic"]


@dataclass(frozen=True)
class IPNConfig:
    """Architecture and ablation switches (defaults: the official AWA2 run, with smaller widths).

    Attributes
    ----------
    prototype_dim : P, width of each space's prototypes (official: 2048).
    graph_dim : G, width of the attention projection (official: 256).
    hidden_dim : H, hidden width of the scoring MLP (official: 2048).
    n_clusters : K-means centres of the semantic encoder (official: 3).
    steps : propagation steps K (official: 2); 0 = no propagation.
    threshold : cosine similarity below which no edge is drawn (official: cos 40°).
    temperature : multiplier of the cosine similarities inside the softmax (official: 10).
    logit_scale : cross-entropy is taken on ``logits / logit_scale`` (official: 100, with 2048-d features
        and widths whose raw logits are large; at our widths it leaves the softmax nearly flat and the
        model under-trained, so the default is 1).
    spaces : ``"both"`` (IPN), or one space alone (ablation).
    shared_attention : one attention, from the semantic space, propagates both spaces (ablation,
        replaces the consistency loss).
    geometry : ``"euclidean"`` (this module, the official code's model) or ``"hyperbolic"``: the prototypes,
        graphs, propagation and scores in the Poincaré ball (:class:`~protolab.zsl.hyperbolic_ipn.HyperbolicIPN`,
        an extension of this kit, not a model of either paper; :func:`ipn_model` builds either).
    curvature : c of the ball (hyperbolic only).
    clip_r : norm to which tangent vectors are clipped before the exponential map (hyperbolic only).
    distance_threshold : Poincaré distance above which no edge is drawn (hyperbolic only; the default carries
        ``threshold`` over: :mod:`protolab.zsl.hyperbolic_ipn`).
    """

    prototype_dim: int = 256
    graph_dim: int = 64
    hidden_dim: int = 256
    n_clusters: int = 3
    steps: int = 2
    threshold: float = math.cos(math.radians(40))
    temperature: float = 10.0
    logit_scale: float = 1.0
    spaces: Spaces = "both"
    shared_attention: bool = False
    geometry: Literal["euclidean", "hyperbolic"] = "euclidean"
    curvature: float = 1.0
    clip_r: float = 1.0
    distance_threshold: float = 2 * math.sqrt(2 - 2 * math.cos(math.radians(40)))


def category_graph(prototypes: torch.Tensor, projection: torch.Tensor,
                   threshold: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Category graph of one space (eq. ``graph``): cosine similarity of projected prototypes.

    .. math:: s_{ij} = \\cos(p_i G, p_j G), \\qquad E = \\{(i, j) : s_{ij} \\ge \\tau\\} \\cup \\{(i, i)\\}

    Parameters
    ----------
    prototypes : ``(C, P)``; projection : G, ``(P, G)``; threshold : τ.

    Returns
    -------
    (similarity ``(C, C)``, edges bool ``(C, C)``). Self-loops are always edges (the official code keeps
    them only because cos = 1 > τ; we keep them for any τ, so every row has a neighbour).
    """
    projected = F.normalize(linear(prototypes, projection.T), dim=1)
    similarity = projected @ projected.T
    eye = torch.eye(len(prototypes), dtype=torch.bool, device=prototypes.device)
    return similarity, (similarity >= threshold) | eye


def graph_attention(similarity: torch.Tensor, edges: torch.Tensor, temperature: float) -> torch.Tensor:
    """Attention over each class's neighbours (eq. ``attention``): a temperature softmax on the graph.

    .. math:: a_{ij} = \\frac{\\exp(T s_{ij})}{\\sum_{k : (i,k) \\in E} \\exp(T s_{ik})} \\text{ for } (i, j) \\in E,
              \\quad 0 \\text{ otherwise}

    Returns ``(C, C)``, rows summing to one, exactly zero off the graph.
    """
    return torch.softmax((temperature * similarity).masked_fill(~edges, -math.inf), dim=1)


def propagate(prototypes: torch.Tensor, projection: torch.Tensor, steps: int, threshold: float,
              temperature: float, attentions: list[torch.Tensor] | None = None
              ) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """K steps of attention propagation (eq. ``propagation``): :math:`P^{(t+1)} = A^{(t)} P^{(t)}`.

    The graph and attention :math:`A^{(t)}` are recomputed from :math:`P^{(t)}` at every step (as in the
    code; no residual). ``steps = 0`` returns the prototypes unchanged. Given ``attentions`` (one per step,
    from another space: the shared-attention ablation), those are applied instead.

    Returns
    -------
    (propagated ``(C, P)``, the K attention matrices used).
    """
    used = []
    for step in range(steps):
        if attentions is None:
            attention = graph_attention(*category_graph(prototypes, projection, threshold), temperature)
        else:
            attention = attentions[step]
        prototypes = attention @ prototypes
        used.append(attention)
    return prototypes, used


def consistency_loss(visual: list[torch.Tensor], semantic: list[torch.Tensor], eps: float = 1e-7) -> torch.Tensor:
    """Consistency of the two propagations (eq. ``consistency``): mean over steps and classes of
    :math:`\\mathrm{KL}(A^{(t)}_{vis,i} \\| A^{(t)}_{sem,i})`.

    .. math:: L_c = \\frac{1}{K C} \\sum_t \\sum_i \\sum_j a^{vis}_{ij} (\\log(a^{vis}_{ij} + \\epsilon) -
              \\log(a^{sem}_{ij} + \\epsilon))

    The paper aligns the edge weights of every step; the official code (``consistency_type='kla2i'``)
    uses only the last step's matrices. ε (as in the code) keeps the loss finite where the two graphs
    have different edges. Zero when both lists are empty (K = 0).
    """
    if not visual:
        return torch.zeros(())
    terms = [(a_vis * ((a_vis + eps).log() - (a_sem + eps).log())).sum(dim=1).mean()
             for a_vis, a_sem in zip(visual, semantic, strict=True)]
    return torch.stack(terms).mean()


class SemanticEncoder(nn.Module):
    """Semantic prototypes from attributes (eq. ``proto``, semantic): :math:`\\sum_k \\mathrm{ReLU}(W_k(a - c_k) + b_k)`.

    The centres :math:`c_k` are K-means centres of the seen classes' attributes, fixed (a buffer).
    """

    def __init__(self, centres: torch.Tensor, prototype_dim: int) -> None:
        super().__init__()
        self.register_buffer("centres", centres.float())
        self.maps = nn.ModuleList(Linear(centres.shape[1], prototype_dim) for _ in range(len(centres)))

    def forward(self, attributes: torch.Tensor) -> torch.Tensor:
        """``(C, A)`` → ``(C, P)``."""
        return sum(F.relu(fc(attributes - centre)) for fc, centre in zip(self.maps, self.centres))


def attribute_centres(attributes: torch.Tensor, n_clusters: int, seed: int = 0) -> torch.Tensor:
    """K-means centres ``(n_clusters, A)`` of the given (seen) classes' attribute rows."""
    kmeans = KMeans(n_clusters=n_clusters, random_state=seed, n_init=10).fit(attributes.double().cpu().numpy())
    return torch.from_numpy(kmeans.cluster_centers_).float()


class IPN(nn.Module):
    """Prototypes in two spaces, propagated on their category graphs, scored by a relation MLP.

    Parameters
    ----------
    feature_dim : D; centres : ``(K, A)`` from :func:`attribute_centres`; config : :class:`IPNConfig`.
    """

    def __init__(self, feature_dim: int, centres: torch.Tensor, config: IPNConfig = IPNConfig()) -> None:
        super().__init__()
        if config.spaces not in ("both", "visual", "semantic"):
            raise ValueError(f"spaces must be 'both', 'visual' or 'semantic', got {config.spaces!r}")
        if config.geometry != "euclidean":
            raise ValueError(f"IPN is Euclidean; geometry {config.geometry!r} is built by "
                             "protolab.zsl.ipn.ipn_model")
        self.config = config
        width = config.prototype_dim
        self.semantic = SemanticEncoder(centres, width)
        self.visual = Linear(feature_dim, width)
        self.graph_semantic = nn.Parameter(nn.init.xavier_uniform_(torch.empty(width, config.graph_dim)))
        self.graph_visual = nn.Parameter(nn.init.xavier_uniform_(torch.empty(width, config.graph_dim)))
        n_spaces = 2 if config.spaces == "both" else 1
        self.image_map = Linear(feature_dim, config.hidden_dim)
        self.prototype_map = Linear(n_spaces * width, config.hidden_dim, bias=False)
        self.relation = Linear(config.hidden_dim, 1)

    def semantic_similarity(self, attributes: torch.Tensor) -> torch.Tensor:
        """Cosine similarity ``(C, C)`` of the classes in the learned semantic space (``P_sem G_sem``)."""
        return category_graph(self.semantic(attributes), self.graph_semantic, self.config.threshold)[0]

    def propagated(self, class_means: torch.Tensor, attributes: torch.Tensor
                   ) -> tuple[dict[str, torch.Tensor], dict[str, list[torch.Tensor]]]:
        """Each space's prototypes ``(C, P)`` after propagation, and the attentions used, by space name.

        Parameters
        ----------
        class_means : ``(C, D)`` visual prototypes before the map W (eq. ``proto``, visual: W·mean);
            unseen classes' rows come from :func:`fill_unseen_prototypes`.
        attributes : ``(C, A)``; not used at all when ``spaces == "visual"``.
        """
        cfg = self.config
        spaces: dict[str, torch.Tensor] = {}
        attentions: dict[str, list[torch.Tensor]] = {"semantic": [], "visual": []}
        if cfg.spaces in ("both", "semantic"):
            spaces["semantic"], attentions["semantic"] = propagate(
                self.semantic(attributes), self.graph_semantic, cfg.steps, cfg.threshold, cfg.temperature)
        if cfg.spaces in ("both", "visual"):
            shared = attentions["semantic"] if cfg.shared_attention and cfg.spaces == "both" else None
            spaces["visual"], attentions["visual"] = propagate(
                self.visual(class_means), self.graph_visual, cfg.steps, cfg.threshold, cfg.temperature,
                attentions=shared)
        return spaces, attentions

    def prototypes(self, class_means: torch.Tensor, attributes: torch.Tensor
                   ) -> tuple[torch.Tensor, dict[str, list[torch.Tensor]]]:
        """Final prototypes ``[P_sem; P_vis]`` ``(C, nP)`` (one space alone in its ablation), and the attentions
        used; arguments as :meth:`propagated`."""
        spaces, attentions = self.propagated(class_means, attributes)
        return torch.cat(list(spaces.values()), dim=1), attentions

    def score(self, features: torch.Tensor, prototypes: torch.Tensor) -> torch.Tensor:
        """Relation scores (eq. ``score``): :math:`w^\\top \\mathrm{ReLU}(x W_x + p_c W_p + b) + b'`, ``(B, C)``."""
        hidden = F.relu(self.image_map(features)[:, None, :] + self.prototype_map(prototypes)[None, :, :])
        return self.relation(hidden).squeeze(-1)

    def forward(self, features: torch.Tensor, class_means: torch.Tensor, attributes: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits ``(B, C)`` of ``features`` ``(B, D)`` and the consistency loss of this forward pass.

        The loss is 0 with one space or with shared attention (the two attentions are then identical).
        """
        prototypes, attentions = self.prototypes(class_means, attributes)
        consistency = (consistency_loss(attentions["visual"], attentions["semantic"])
                       if self.config.spaces == "both" else torch.zeros(()))
        return self.score(features, prototypes), consistency.to(features.device)


def ipn_model(feature_dim: int, centres: torch.Tensor, config: IPNConfig) -> nn.Module:
    """The model ``config`` describes: :class:`IPN`, or :class:`~protolab.zsl.hyperbolic_ipn.HyperbolicIPN` when its
    ``geometry`` is ``"hyperbolic"`` (imported only then: it loads geoopt)."""
    if config.geometry == "hyperbolic":
        from protolab.zsl.hyperbolic_ipn import HyperbolicIPN

        return HyperbolicIPN(feature_dim, centres, config)
    if config.geometry != "euclidean":
        raise ValueError(f"geometry must be 'euclidean' or 'hyperbolic', got {config.geometry!r}")
    return IPN(feature_dim, centres, config)


@torch.no_grad()
def fill_unseen_prototypes(model: IPN, class_means: torch.Tensor, attributes: torch.Tensor,
                           known: torch.Tensor) -> torch.Tensor:
    """Visual prototypes of classes without images: a copy of the most similar class with images.

    Similarity is cosine in the learned semantic space (``P_sem G_sem``, as the official code's
    ``get_attention`` top-1); with ``spaces == "visual"`` there is no learned semantic space and the
    raw attribute cosine is used. Official code and paper agree on the copy (top-1, weight 1).

    Parameters
    ----------
    class_means : ``(C, D)``, rows of ``known`` classes valid, others ignored.
    attributes : ``(C, A)``; known : bool ``(C,)``, True where the class has images.

    Returns
    -------
    ``(C, D)`` with every unknown row replaced.
    """
    if model.config.spaces == "visual":
        unit = F.normalize(attributes, dim=1)
        similarity = unit @ unit.T
    else:
        similarity = model.semantic_similarity(attributes)
    nearest = similarity[:, known].argmax(dim=1)
    filled = class_means.clone()
    filled[~known] = class_means[known][nearest[~known]]
    return filled


def class_means(features: torch.Tensor, labels: torch.Tensor, n_classes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean feature of each class ``(n_classes, D)`` (zero rows where absent) and bool ``(n_classes,)`` present."""
    sums = torch.zeros(n_classes, features.shape[1], dtype=features.dtype, device=features.device)
    sums.index_add_(0, labels, features)
    counts = torch.bincount(labels, minlength=n_classes).to(features.dtype)
    return sums / counts.clamp_min(1)[:, None], counts > 0


@torch.no_grad()
def space_alignment(model: IPN, class_means: torch.Tensor, attributes: torch.Tensor) -> dict[str, float]:
    """How alike the two spaces are after propagation, on the classes of ``class_means`` ``(C, D)`` and
    ``attributes`` ``(C, A)``; needs ``spaces == "both"``.

    - ``similarity_kl``: :func:`~protolab.metrics.similarity_kl` of the two spaces' propagated prototypes
      at the model's temperature, no threshold: the same class-similarity distributions for every variant,
      whichever attention propagated them.
    - ``attention_kl``: the consistency loss on the attentions actually used (0 by construction with
      shared attention; NaN when K = 0).
    - ``feature_cka``: :func:`~protolab.metrics.linear_cka` of the propagated prototypes: 1 when one space's
      features are the other's up to rotation and scale.
    - ``neighbours_semantic``, ``neighbours_visual``: mean number of classes besides itself each class
      attends to in the first step (NaN when K = 0).
    """
    if model.config.spaces != "both":
        raise ValueError("space_alignment compares two spaces; this model has one")
    device = next(model.parameters()).device
    spaces, attentions = model.propagated(class_means.to(device), attributes.to(device))
    nan = float("nan")
    steps = model.config.steps
    return {
        "similarity_kl": similarity_kl(spaces["visual"], spaces["semantic"], model.config.temperature),
        "attention_kl": float(consistency_loss(attentions["visual"], attentions["semantic"])) if steps else nan,
        "feature_cka": linear_cka(spaces["visual"], spaces["semantic"]),
        **{f"neighbours_{space}": float((attentions[space][0] > 0).sum(dim=1).float().mean() - 1) if steps else nan
           for space in ("semantic", "visual")},
    }
