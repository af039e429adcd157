"""Training and retrieval evaluation of :class:`~protolab.reid.model.ReidNet` (shared by both geometries):
the re-ID training protocol as hooks of :func:`~protolab.training.loops.fit_classifier` (:func:`reid_training`:
the learning-rate :data:`SCHEDULES`, :func:`augment`, and optional early stopping on a validation score),
:func:`evaluate_retrieval` (the Market-1501 protocol of :func:`~protolab.metrics.reid_evaluate`),
:func:`held_out_identities` (a validation split by identity) and :func:`retrieval_score` (the validation score
of a model on such a split).
"""

from __future__ import annotations

import math
from typing import Any, Callable

import torch
from torch import nn

from protolab.data.images import LabeledImages
from protolab.metrics import reid_evaluate
from protolab.reid.model import ReidNet, retrieval_distances
from protolab.training.convergence import StoppingRule
from protolab.training.loops import apply_batched

SCHEDULES = {
    "sch1": "step decay: the learning rate ×0.1 after 2/3 of the epochs (the usual re-ID baseline schedule)",
    "sch2": "linear warm-up over the first 10% of the epochs (at least one), then cosine decay to 0",
}
"""Our definitions of the paper's two training schedules (the paper names them without defining them)."""


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


def reid_training(schedule: str, epochs: int, *, flip: bool, pad: int, erasing: float,
                  validate: Callable[[ReidNet], float] | None = None, patience: int | None = None,
                  min_delta: float = 0.0) -> dict[str, Any]:
    """The keyword arguments that make :func:`~protolab.training.loops.fit_classifier` the re-ID training:
    ``augment`` (:func:`augment` with ``flip``, ``pad`` and ``erasing``, drawing from the loop's generator),
    ``lr_at`` (:func:`lr_factor` of ``schedule`` over ``epochs``) and ``drop_last=True`` (full batches only,
    when there are more images than a batch). An unknown ``schedule`` is refused here, before training.

    With ``validate`` (a model → score callable, higher is better, e.g. :func:`retrieval_score` on
    :func:`held_out_identities`), also ``validate`` and ``stopping``: validation after every epoch, the best
    epoch's weights kept, and with ``patience`` an early stop after that many validations without a gain above
    ``min_delta`` (:class:`~protolab.training.convergence.StoppingRule`; ``epochs`` the cap, so pass the same
    ``epochs`` to the loop). The learning-rate schedule spans ``epochs`` whether or not training stops early.

    With the loop's Adam (give ``weight_decay``), cross-entropy over identities and one generator for the batch
    order and the augmentation, both geometries started from the same seed see the same batches."""
    lr_factor(schedule, 0, epochs)
    if validate is None and patience is not None:
        raise ValueError("early stopping (patience) needs a validate callable")
    validation = {} if validate is None else {
        "validate": validate, "stopping": StoppingRule(patience=patience, max_steps=epochs, min_delta=min_delta)}
    return {"augment": lambda images, generator: augment(images, flip=flip, pad=pad, erasing=erasing,
                                                         generator=generator),
            "lr_at": lambda epoch: lr_factor(schedule, epoch, epochs), "drop_last": True, **validation}


def evaluate_retrieval(model: ReidNet, query: LabeledImages, gallery: LabeledImages, *, device: torch.device,
                       batch_size: int = 256, num_workers: int = 0, amp: bool = False) -> dict:
    """:func:`~protolab.metrics.reid_evaluate` of ``model``'s embeddings (Market-1501 protocol, person ids and
    cameras from ``person_ids`` and ``domains``), plus ``distances`` ``(Q, G)``. Embeddings are computed
    by :func:`~protolab.training.loops.apply_batched` (with its ``num_workers`` and ``amp``)."""
    if query.person_ids is None or gallery.person_ids is None:
        raise ValueError("retrieval needs the person_ids of the query and gallery images")
    embedder = model.embedder()
    q, g = (apply_batched(embedder, part, batch_size=batch_size, device=device, num_workers=num_workers, amp=amp)
            for part in (query, gallery))
    distances = retrieval_distances(q, g, model.geometry, c=model.c)
    result = reid_evaluate(distances, query.person_ids, query.domains, gallery.person_ids, gallery.domains)
    return {**result, "distances": distances}


def retrieval_score(query: LabeledImages, gallery: LabeledImages, *, device: torch.device, metric: str = "mAP",
                    batch_size: int = 256, num_workers: int = 0,
                    amp: bool = False) -> Callable[[ReidNet], float]:
    """A ``validate`` callable for :func:`~protolab.training.loops.fit_classifier`: ``metric`` (``"mAP"``,
    ``"rank1"``, ``"rank5"`` or ``"rank10"``) of :func:`evaluate_retrieval` of the model on ``query`` and
    ``gallery`` (e.g. the validation split of :func:`held_out_identities`); other arguments as there. mAP, the
    default, uses every match of every query, so it moves less between epochs than Rank-1."""
    if metric not in ("mAP", "rank1", "rank5", "rank10"):
        raise ValueError(f"unknown retrieval metric {metric!r}; choose mAP, rank1, rank5 or rank10")
    return lambda model: evaluate_retrieval(model, query, gallery, device=device, batch_size=batch_size,
                                            num_workers=num_workers, amp=amp)[metric]


def held_out_identities(train: LabeledImages, *, n_val_ids: int,
                        seed: int) -> tuple[LabeledImages, LabeledImages, LabeledImages]:
    """``(train_part, val_query, val_gallery)`` from the training identities alone: ``n_val_ids`` identities
    drawn with ``seed`` are held out; of each held-out identity, the first image per camera is a query and
    the others are gallery images. ``train_part`` is relabelled ``0..n-1``."""
    ids = train.labels.unique()
    held = ids[torch.randperm(len(ids), generator=torch.Generator().manual_seed(seed))[:n_val_ids]]
    is_val = torch.isin(train.labels, held)
    kept = sorted(set(train.labels[~is_val].tolist()))
    part = train.select_classes(kept, train.description + f"; minus {n_val_ids} validation identities")
    first: dict[tuple[int, int], int] = {}
    for i in torch.nonzero(is_val).flatten().tolist():
        first.setdefault((int(train.labels[i]), int(train.domains[i])), i)
    query_index = torch.tensor(sorted(first.values()))
    gallery_index = torch.tensor(sorted(set(torch.nonzero(is_val).flatten().tolist()) - set(first.values())))
    val_query, val_gallery = (train.subset(index, train.description + f"; validation {name}")
                              for name, index in (("query", query_index), ("gallery", gallery_index)))
    return part, val_query, val_gallery
