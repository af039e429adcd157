"""Person re-identification with Euclidean or hyperbolic embeddings (Khrulkov et al., CVPR 2020, Sec. 6.3).

No official code exists for this experiment (hyperbolic-image-embeddings issue #8), so the choices
below are ours wherever the paper is silent; :data:`OUR_CHOICES` lists them for the notebook.

One model, :class:`ReidNet`: a backbone → a ``dim``-d embedding → a head over the training identities,

- ``"euclidean"``: a linear softmax head; retrieval ranks the gallery by Euclidean distance;
- ``"hyperbolic"``: :class:`~protolab.hyperbolic.ToPoincare` then
  :class:`~protolab.hyperbolic.HyperbolicMLR`; retrieval ranks by the Poincaré distance
  (:func:`~protolab.hyperbolic.pairwise_dist`).

Everything else is shared by the two geometries: :func:`fit_reid` (cross-entropy over identities,
shuffled batches, Adam with weight decay, the learning-rate :data:`SCHEDULES`, :func:`augment`), and
:func:`evaluate_retrieval` (the Market-1501 protocol of :func:`~protolab.metrics.reid_evaluate`).
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import torch
import torchvision
from torch import nn
from tqdm import tqdm

from protolab import cost
from protolab.backbones import Conv4, SmallCNN, build_backbone
from protolab.data.images import LabeledImages
from protolab.hyperbolic import HyperbolicMLR, ToPoincare, pairwise_dist
from protolab.loading import batches, prepare_model
from protolab.metrics import reid_evaluate
from protolab.train import adam, apply_batched, autocast, cross_entropy_step

GEOMETRIES = ("euclidean", "hyperbolic")

SCHEDULES = {
    "sch1": "step decay: the learning rate ×0.1 after 2/3 of the epochs (the usual re-ID baseline schedule)",
    "sch2": "linear warm-up over the first 10% of the epochs (at least one), then cosine decay to 0",
}
"""Our definitions of the paper's two training schedules (the paper names them without defining them)."""

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
        """The modules of :meth:`embed` as one module (for :func:`~protolab.train.apply_batched`)."""
        return nn.Sequential(self.backbone, self.embedding, self.to_ball)


def resnet50_trunk(pretrained_weights: str = "") -> nn.Module:
    """torchvision's ResNet-50 without its classifier: images ``(B, 3, H, W)`` → ``(B, 2048)``.

    ``pretrained_weights``: path of a local ImageNet state dict (e.g. torchvision's
    ``resnet50-0676ba61.pth``); empty = random initialisation. Nothing is ever downloaded.
    """
    net = torchvision.models.resnet50(weights=None)
    if pretrained_weights:
        path = Path(pretrained_weights).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"pretrained_weights {path} does not exist; give the path of a local ResNet-50 "
                                    "ImageNet state dict (torchvision's resnet50-*.pth), or leave it empty")
        state = torch.load(path, map_location="cpu", weights_only=True)
        net.load_state_dict({k: v for k, v in state.items() if not k.startswith("fc.")}, strict=False)
    net.fc = nn.Identity()
    return net


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


def augment(images: torch.Tensor, *, flip: bool, pad: int, erasing: float, generator: torch.Generator) -> torch.Tensor:
    """The usual re-ID training augmentation of a float batch ``(B, C, H, W)`` in ``[0, 1]``, per image:
    horizontal flip with probability ½ (if ``flip``), zero-pad by ``pad`` pixels then crop back at a random
    place, random erasing (Zhong et al.) with probability ``erasing``: a rectangle of 2–40% of the area,
    aspect 0.3–3.3, set to uniform noise. Random draws come from ``generator`` (CPU), so the result does not
    depend on the device; the pixels are processed where ``images`` are (flip and crop batched, with no
    wait for the device), so a CUDA batch is augmented on the GPU."""
    b, _, h, w = images.shape
    out = images.clone()
    if flip:
        flipped = (torch.rand(b, generator=generator) < 0.5).to(images.device).view(b, 1, 1, 1)
        out = torch.where(flipped, out.flip(-1), out)
    if pad > 0:
        padded = nn.functional.pad(out, (pad, pad, pad, pad))
        tops = torch.randint(0, 2 * pad + 1, (b,), generator=generator).to(images.device)
        lefts = torch.randint(0, 2 * pad + 1, (b,), generator=generator).to(images.device)
        rows = (tops.view(b, 1) + torch.arange(h, device=images.device)).view(b, 1, h, 1)
        columns = (lefts.view(b, 1) + torch.arange(w, device=images.device)).view(b, 1, 1, w)
        out = padded[torch.arange(b, device=images.device).view(b, 1, 1, 1),
                     torch.arange(out.shape[1], device=images.device).view(1, -1, 1, 1), rows, columns]
    for i in torch.nonzero(torch.rand(b, generator=generator) < erasing).flatten().tolist():
        area = float(torch.empty(1).uniform_(0.02, 0.4, generator=generator)) * h * w
        aspect = math.exp(float(torch.empty(1).uniform_(math.log(0.3), math.log(3.3), generator=generator)))
        eh, ew = min(h, max(1, round(math.sqrt(area * aspect)))), min(w, max(1, round(math.sqrt(area / aspect))))
        top = int(torch.randint(0, h - eh + 1, (1,), generator=generator))
        left = int(torch.randint(0, w - ew + 1, (1,), generator=generator))
        noise = torch.rand(out.shape[1], eh, ew, generator=generator).to(out.device, out.dtype)
        out[i, :, top:top + eh, left:left + ew] = noise
    return out


def lr_factor(schedule: str, epoch: int, epochs: int) -> float:
    """Multiplier of the base learning rate during ``epoch`` (0-based) of ``epochs`` (see :data:`SCHEDULES`)."""
    if schedule == "sch1":
        return 0.1 if epoch >= math.ceil(2 * epochs / 3) and epochs > 1 else 1.0
    if schedule == "sch2":
        warm = max(1, round(0.1 * epochs))
        if epoch < warm:
            return (epoch + 1) / (warm + 1)
        return 0.5 * (1 + math.cos(math.pi * (epoch - warm) / max(1, epochs - warm)))
    raise ValueError(f"unknown schedule {schedule!r}; choose one of {', '.join(SCHEDULES)}")


def fit_reid(model: ReidNet, data: LabeledImages, *, epochs: int, batch_size: int, lr: float, schedule: str,
             device: torch.device, seed: int, weight_decay: float = 5e-4, flip: bool = True, pad: int = 4,
             erasing: float = 0.5, progress: bool = True, description: str = "train", num_workers: int = 0,
             amp: bool = False) -> pd.DataFrame:
    """Train ``model`` on ``data``'s identities (cross-entropy), Adam + ``schedule``, batches augmented by
    :func:`augment` on ``device``. The batch order (one permutation per epoch) and the augmentation draw from
    one generator seeded with ``seed``, in the main process (the initialisation is the caller's: seed before
    building the model), so both geometries see the same batches, whatever ``num_workers``.

    ``num_workers`` DataLoader workers gather the batches (:func:`protolab.loading.batches`); ``amp`` runs the
    forward pass under bfloat16 autocast (:func:`protolab.train.autocast`), the loss in float32.

    Returns one row per epoch: ``epoch``, ``lr``, ``loss`` and ``accuracy`` (on the augmented training batches).
    """
    lr_factor(schedule, 0, epochs)  # refuse an unknown schedule before training
    generator = torch.Generator().manual_seed(seed)
    drop_last = len(data) > batch_size
    prepare_model(model, device).train()
    optimizer = adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    history = []
    n_batches = len(data) // batch_size if drop_last else math.ceil(len(data) / batch_size)
    for epoch in tqdm(range(epochs), desc=description, disable=not progress, leave=False):
        for group in optimizer.param_groups:
            group["lr"] = lr * lr_factor(schedule, epoch, epochs)
        total = torch.zeros((), dtype=torch.float64, device=device)
        correct = torch.zeros((), dtype=torch.int64, device=device)
        seen = 0
        order = torch.randperm(len(data), generator=generator)
        meter = cost.meter(f"{description}: training batches", n_batches, device, epochs)
        for images, labels in batches(data, order, batch_size=batch_size, device=device, num_workers=num_workers,
                                      drop_last=drop_last):
            images = augment(images, flip=flip, pad=pad, erasing=erasing, generator=generator)
            with autocast(device, amp=amp):
                logits = model(images)
            loss, hits = cross_entropy_step(optimizer, logits, labels)
            total += loss.double() * len(labels)
            correct += hits
            seen += len(labels)
            if meter.tick():
                break
        history.append({"epoch": epoch + 1, "lr": optimizer.param_groups[0]["lr"], "loss": total.item() / seen,
                        "accuracy": int(correct) / seen})
        if meter.stopped:
            break
    model.eval()
    return pd.DataFrame(history)


def retrieval_distances(query: torch.Tensor, gallery: torch.Tensor, geometry: str, *, c: float) -> torch.Tensor:
    """``(Q, G)`` distances between embeddings: Euclidean, or Poincaré (curvature ``c``) for ``"hyperbolic"``;
    computed in float64 so that points near the boundary of the ball keep their order."""
    query, gallery = query.double(), gallery.double()
    if geometry == "hyperbolic":
        return torch.cat([pairwise_dist(block, gallery, c) for block in query.split(512)])
    return torch.cdist(query, gallery)


def evaluate_retrieval(model: ReidNet, query: LabeledImages, gallery: LabeledImages, *, device: torch.device,
                       batch_size: int = 256, num_workers: int = 0, amp: bool = False) -> dict:
    """:func:`~protolab.metrics.reid_evaluate` of ``model``'s embeddings (Market-1501 protocol, person ids and
    cameras from ``extra['person_ids']`` and ``domains``), plus ``distances`` ``(Q, G)``. Embeddings are computed
    by :func:`~protolab.train.apply_batched` (with its ``num_workers`` and ``amp``)."""
    embedder = model.embedder()
    q, g = (apply_batched(embedder, part, batch_size=batch_size, device=device, num_workers=num_workers, amp=amp)
            for part in (query, gallery))
    distances = retrieval_distances(q, g, model.geometry, c=model.c)
    result = reid_evaluate(distances, query.extra["person_ids"], query.domains, gallery.extra["person_ids"],
                           gallery.domains)
    return {**result, "distances": distances}


def validation_split(train: LabeledImages, *, n_val_ids: int,
                     seed: int) -> tuple[LabeledImages, LabeledImages, LabeledImages]:
    """``(train_part, val_query, val_gallery)`` from the training identities alone: ``n_val_ids`` identities
    drawn with ``seed`` are held out; of each held-out identity, the first image per camera is a query and
    the others are gallery images. ``train_part`` is relabelled ``0..n-1``."""
    ids = train.labels.unique()
    held = ids[torch.randperm(len(ids), generator=torch.Generator().manual_seed(seed))[:n_val_ids]]
    is_val = torch.isin(train.labels, held)
    kept = sorted(set(train.labels[~is_val].tolist()))
    part = train.select_classes(kept, train.description + f"; minus {n_val_ids} validation identities")
    part.extra["person_ids"] = train.extra["person_ids"][~is_val]  # subset() copies `extra` unchanged
    first: dict[tuple[int, int], int] = {}
    for i in torch.nonzero(is_val).flatten().tolist():
        first.setdefault((int(train.labels[i]), int(train.domains[i])), i)
    query_index = torch.tensor(sorted(first.values()))
    gallery_index = torch.tensor(sorted(set(torch.nonzero(is_val).flatten().tolist()) - set(first.values())))
    val_query, val_gallery = (train.subset(index, train.description + f"; validation {name}")
                              for name, index in (("query", query_index), ("gallery", gallery_index)))
    for part_, index in ((val_query, query_index), (val_gallery, gallery_index)):
        part_.extra["person_ids"] = train.extra["person_ids"][index]
    return part, val_query, val_gallery


def summarise(runs: pd.DataFrame) -> pd.DataFrame:
    """Mean and std over seeds of Rank-1 and mAP (in %) per dataset × schedule × dim × geometry."""
    keys = ["dataset", "schedule", "dim", "geometry"]
    table = (runs.groupby(keys, sort=False)
             .agg(rank1_mean=("rank1", "mean"), rank1_std=("rank1", "std"), mAP_mean=("mAP", "mean"),
                  mAP_std=("mAP", "std"), seeds=("seed", "count")).reset_index())
    for column in ("rank1_mean", "rank1_std", "mAP_mean", "mAP_std"):
        table[column] = (100 * table[column]).round(2)
    return table


def paper_layout(table: pd.DataFrame) -> pd.DataFrame:
    """:func:`summarise`'s table as the paper lays it out: one row per dataset × schedule × dim, a
    ``Rank-1`` and an ``mAP`` column per geometry, each "mean ± std" over seeds (%; the mean alone for one seed)."""
    def cell(mean: float, std: float) -> str:
        return f"{mean:.1f}" if pd.isna(std) else f"{mean:.1f} ± {std:.1f}"

    cells = table.assign(**{"Rank-1": [cell(m, s) for m, s in zip(table.rank1_mean, table.rank1_std)],
                            "mAP": [cell(m, s) for m, s in zip(table.mAP_mean, table.mAP_std)]})
    wide = cells.pivot(index=["dataset", "schedule", "dim"], columns="geometry", values=["Rank-1", "mAP"])
    wide.columns = [f"{metric} ({geometry})" for metric, geometry in wide.columns]
    return wide.reset_index()


def metric_vs_dim(table: pd.DataFrame, *, title: str) -> plt.Figure:
    """Rank-1 and mAP (%) against the embedding size (log axis), one line per geometry and schedule;
    error bars = std over seeds."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for ax, (metric, label) in zip(axes, (("rank1", "Rank-1 (%)"), ("mAP", "mAP (%)"))):
        for (schedule, geometry), part in table.groupby(["schedule", "geometry"], sort=False):
            ax.errorbar(part["dim"], part[f"{metric}_mean"], yerr=part[f"{metric}_std"].fillna(0), marker="o",
                        capsize=3, label=f"{geometry}, {schedule} (bars: std over seeds)")
        ax.set_xscale("log", base=2)
        ax.set_xticks(sorted(set(table["dim"])), [str(d) for d in sorted(set(table["dim"]))])
        ax.set_xlabel("embedding dimension")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def cmc_curves(curves: dict[str, torch.Tensor], *, title: str, max_rank: int = 20) -> plt.Figure:
    """CMC curves (``name → (R,)`` fractions) up to ``max_rank``, in %."""
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, cmc in curves.items():
        ranks = torch.arange(1, min(max_rank, len(cmc)) + 1)
        ax.plot(ranks, 100 * cmc[:len(ranks)], marker=".", label=name)
    ax.set_xlabel("rank")
    ax.set_ylabel("matching rate (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title)
    fig.tight_layout()
    return fig


def retrieval_strips(query: LabeledImages, gallery: LabeledImages, distances: torch.Tensor, queries: list[int], *,
                     top: int = 5, title: str = "") -> plt.Figure:
    """For each query index: the query image, then its ``top`` nearest gallery images under the protocol
    (same identity and camera, and junk, left out), framed green when the identity matches, red otherwise."""
    q_ids, q_cams = query.extra["person_ids"], query.domains
    g_ids, g_cams = gallery.extra["person_ids"], gallery.domains
    fig, axes = plt.subplots(len(queries), top + 1, figsize=(1.3 * (top + 1), 1.5 * len(queries)), squeeze=False)
    for row, qi in zip(axes, queries):
        banned = ((g_ids == q_ids[qi]) & (g_cams == q_cams[qi])) | (g_ids == -1)
        order = [int(j) for j in distances[qi].argsort(stable=True) if not banned[j]][:top]
        shown = [(query[qi][0], f"query {int(q_ids[qi])}\ncam {int(q_cams[qi])}", "black")]
        shown += [(gallery[j][0], f"{int(g_ids[j])} cam {int(g_cams[j])}\nd={float(distances[qi, j]):.2f}",
                   "green" if g_ids[j] == q_ids[qi] else "red") for j in order]
        for ax, (image, label, colour) in zip(row, shown):
            ax.imshow(image.permute(1, 2, 0).squeeze(-1).clamp(0, 1), cmap="gray", vmin=0, vmax=1)
            ax.set_title(label, fontsize=7, color=colour)
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_edgecolor(colour)
                spine.set_linewidth(2)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


def paired_gains(runs: pd.DataFrame, metric: str = "rank1") -> pd.DataFrame:
    """Hyperbolic − Euclidean ``metric`` (in points of %) per dataset × schedule × dim × seed, paired by seed:
    columns ``dataset, schedule, dim, seed, gain``."""
    wide = runs.pivot_table(index=["dataset", "schedule", "dim", "seed"], columns="geometry", values=metric)
    return (100 * (wide["hyperbolic"] - wide["euclidean"])).rename("gain").reset_index()
