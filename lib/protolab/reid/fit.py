"""Training and retrieval evaluation of :class:`~protolab.reid.model.ReidNet` (shared by both geometries):
:func:`fit_reid` (cross-entropy over identities, shuffled batches, Adam with weight decay, the learning-rate
:data:`SCHEDULES`, :func:`augment`), :func:`evaluate_retrieval` (the Market-1501 protocol of
:func:`~protolab.metrics.reid_evaluate`) and :func:`held_out_identities` (a validation split by identity).
"""

from __future__ import annotations

import math

import pandas as pd
import torch
from torch import nn
from tqdm import tqdm

from protolab.core import dryrun
from protolab.data.images import LabeledImages
from protolab.metrics import reid_evaluate
from protolab.reid.model import ReidNet, retrieval_distances
from protolab.training.loading import batches, prepare_model
from protolab.training.loops import adam, apply_batched, autocast, cross_entropy_step

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


def fit_reid(model: ReidNet, data: LabeledImages, *, epochs: int, batch_size: int, lr: float, schedule: str,
             device: torch.device, seed: int, weight_decay: float = 5e-4, flip: bool = True, pad: int = 4,
             erasing: float = 0.5, progress: bool = True, description: str = "train", num_workers: int = 0,
             amp: bool = False) -> pd.DataFrame:
    """Train ``model`` on ``data``'s identities (cross-entropy), Adam + ``schedule``, batches augmented by
    :func:`augment` on ``device``. The batch order (one permutation per epoch) and the augmentation draw from
    one generator seeded with ``seed``, in the main process (the initialisation is the caller's: seed before
    building the model), so both geometries see the same batches, whatever ``num_workers``.

    ``num_workers`` DataLoader workers gather the batches (:func:`protolab.training.loading.batches`); ``amp`` runs the
    forward pass under bfloat16 autocast (:func:`protolab.training.loops.autocast`), the loss in float32.

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
        meter = dryrun.meter(f"{description}: training batches", n_batches, device, epochs)
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


def evaluate_retrieval(model: ReidNet, query: LabeledImages, gallery: LabeledImages, *, device: torch.device,
                       batch_size: int = 256, num_workers: int = 0, amp: bool = False) -> dict:
    """:func:`~protolab.metrics.reid_evaluate` of ``model``'s embeddings (Market-1501 protocol, person ids and
    cameras from ``extra['person_ids']`` and ``domains``), plus ``distances`` ``(Q, G)``. Embeddings are computed
    by :func:`~protolab.training.loops.apply_batched` (with its ``num_workers`` and ``amp``)."""
    embedder = model.embedder()
    q, g = (apply_batched(embedder, part, batch_size=batch_size, device=device, num_workers=num_workers, amp=amp)
            for part in (query, gallery))
    distances = retrieval_distances(q, g, model.geometry, c=model.c)
    result = reid_evaluate(distances, query.extra["person_ids"], query.domains, gallery.extra["person_ids"],
                           gallery.domains)
    return {**result, "distances": distances}


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
