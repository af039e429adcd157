"""One model of the ``reid_embeddings`` notebook per cell of a disk-cached grid
(:func:`~protolab.runner.model_grid.run_model_grid`): the validation split by identity (:func:`validation_identities`),
the data a cell reads (:class:`ReidData`), what a cell computes (:func:`reid_cell`: training with early stopping on
the validation Rank-1, then the retrieval evaluation) and the model rebuilt from a cell (:func:`cell_model`).
"""

from __future__ import annotations

import math
import time
from typing import Any, Mapping, NamedTuple

import torch

from protolab.core import dryrun
from protolab.core.reproducibility import seed_everything
from protolab.data.images import LabeledImages
from protolab.reid.fit import evaluate_retrieval, held_out_identities, reid_training, retrieval_score
from protolab.reid.model import ReidNet, build_reid_model
from protolab.training.loops import fit_classifier


class ReidData(NamedTuple):
    """The images every cell reads: ``train`` (the training identities minus the validation ones, relabelled
    ``0..n-1``), ``val_query`` and ``val_gallery`` (the held-out training identities, :func:`validation_identities`),
    ``query`` and ``gallery`` (the test split)."""

    train: LabeledImages
    val_query: LabeledImages
    val_gallery: LabeledImages
    query: LabeledImages
    gallery: LabeledImages


def validation_identities(train: LabeledImages, *, n_ids: int,
                          seed: int) -> tuple[LabeledImages, LabeledImages, LabeledImages]:
    """:func:`~protolab.reid.fit.held_out_identities` of ``train``: ``(train_part, val_query, val_gallery)``,
    ``n_ids`` identities held out (drawn with ``seed``), each one's first image per camera a query, the others
    gallery images. Unseen identities have no class to predict, so the validation score is retrieval: Rank-1 of
    these queries against this gallery under the Market-1501 protocol (a match must come from another camera).

    Raises ValueError when ``n_ids`` leaves no training identity, or when no held-out query has a match (every
    held-out identity has one image per camera): hold out more identities then.
    """
    if not 1 <= n_ids < train.n_classes:
        raise ValueError(f"val_identities must be between 1 and {train.n_classes - 1} (the training set has "
                         f"{train.n_classes} identities), got {n_ids}")
    part, val_query, val_gallery = held_out_identities(train, n_val_ids=n_ids, seed=seed)
    matches = ((val_query.person_ids[:, None] == val_gallery.person_ids[None, :])
               & (val_query.domains[:, None] != val_gallery.domains[None, :]))
    if not bool(matches.any()):
        raise ValueError(f"the {n_ids} held-out validation identities have no query with a match from another "
                         "camera (each has at most one image per camera): raise val_identities")
    return part, val_query, val_gallery


def reid_cell(data: ReidData, cell: Mapping[str, Any], *, num_workers: int = 0) -> dict[str, Any]:
    """Train and evaluate one re-ID model of the notebook's grid.

    ``cell`` gives ``geometry``, ``dim``, ``schedule``, ``seed``, ``keep_state`` and the settings ``backbone``,
    ``pretrained_weights``, ``c``, ``clip_r``, ``epochs`` (the cap, which the schedule spans), ``patience``,
    ``batch_size``, ``lr``, ``weight_decay``, ``flip``, ``pad``, ``erasing``, ``amp`` and ``device`` (its other
    keys name the data). The model (:func:`~protolab.reid.model.build_reid_model`, initialised after seeding
    with ``seed``) is trained on ``data.train`` with the re-ID protocol
    (:func:`~protolab.reid.fit.reid_training`); after every epoch its Rank-1 on the validation identities
    (:func:`~protolab.reid.fit.retrieval_score`; Rank-1 rather than mAP since the claims are about Rank-1) drives
    early stopping and the weights of the best epoch are kept. ``num_workers`` as in
    :func:`~protolab.training.loops.fit_classifier` (no effect on the result).

    Returns a dict: ``rank1``, ``rank5``, ``mAP`` (fractions) and ``valid_queries`` on the test split, ``cmc``
    (float64 ``(min(50, G),)``), ``train_accuracy`` (training accuracy in the kept epoch, NaN when none was
    validated), ``history`` (per-epoch records: ``epoch, lr, loss, accuracy, val_score``), ``convergence``
    (:meth:`~protolab.training.convergence.EarlyStopping.record`, steps are epochs), ``wall_seconds`` of the
    training, and with ``keep_state`` the kept weights on the CPU (``state``, for :func:`cell_model`).
    """
    device, epochs, amp = torch.device(cell["device"]), cell["epochs"], cell["amp"]
    seed_everything(cell["seed"])
    model = build_reid_model(cell["geometry"], backbone=cell["backbone"], in_channels=data.train[0][0].shape[0],
                             dim=cell["dim"], n_classes=data.train.n_classes, c=cell["c"], clip_r=cell["clip_r"],
                             pretrained_weights=cell["pretrained_weights"])
    validate = retrieval_score(data.val_query, data.val_gallery, device=device, metric="rank1",
                               num_workers=num_workers, amp=amp)
    start = time.perf_counter()
    history = fit_classifier(model, data.train, epochs=epochs, batch_size=cell["batch_size"], lr=cell["lr"],
                             device=device, seed=cell["seed"], weight_decay=cell["weight_decay"], progress=False,
                             **reid_training(cell["schedule"], epochs, flip=cell["flip"], pad=cell["pad"],
                                             erasing=cell["erasing"], validate=validate, patience=cell["patience"]),
                             num_workers=num_workers, amp=amp)
    wall_seconds = time.perf_counter() - start
    result = evaluate_retrieval(model, data.query, data.gallery, device=device, num_workers=num_workers, amp=amp)
    convergence = history.attrs["convergence"]
    return {"rank1": result["rank1"], "rank5": result["rank5"], "mAP": result["mAP"],
            "valid_queries": result["n_valid_queries"], "cmc": result["cmc"],
            "train_accuracy": float(history.set_index("epoch").accuracy.get(convergence["best_step"], math.nan)),
            "history": history.to_dict("records"), "convergence": convergence, "wall_seconds": wall_seconds,
            **({"state": {key: value.cpu() for key, value in model.state_dict().items()}} if cell["keep_state"]
               else {})}


def cell_model(data: ReidData, cell: Mapping[str, Any], result: Mapping[str, Any]) -> ReidNet:
    """The model a :func:`reid_cell` with ``keep_state`` trained, rebuilt on the CPU from its stored ``state``
    (no pretrained weights are read: the state holds every weight), in eval mode. In a dry run
    (:mod:`protolab.core.dryrun`) every cell's result is the first cell's, whose weights may not fit this model:
    it is returned as initialised."""
    model = build_reid_model(cell["geometry"], backbone=cell["backbone"], in_channels=data.train[0][0].shape[0],
                             dim=cell["dim"], n_classes=data.train.n_classes, c=cell["c"], clip_r=cell["clip_r"])
    if not dryrun.dry_run_steps():
        model.load_state_dict(result["state"])
    return model.eval()
