"""Fitting IPN (:mod:`protolab.zsl.ipn`) on an xlsa17 data set: training, model selection and GZSL evaluation.

Model selection never looks at test data: :func:`fit_ipn` holds out :func:`validation_split` of the
``train`` classes' images (validation-seen) and uses the ``val`` classes as validation-unseen, keeps the
epoch with the best validation H (stopping early by the shared rule of :mod:`protolab.training.convergence`
with ``TrainConfig.patience``), then retrains on ``trainval``. The closed-form baselines
(:func:`protolab.zsl.baselines.select_baseline`) are selected on the same held-out images.

Three switches of :class:`TrainConfig` choose between our documented defaults and the official code:
``semantic_input`` (L2-normalised ``att`` or raw ``original_att``, :func:`semantic_input`),
``episodes_rule`` (:func:`episodes_per_epoch`) and the learning-rate step epoch ``lr_step_epoch``, which the
refit copies from the selection run so that it replays that run's schedule exactly.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable, Iterator

import numpy as np
import pandas as pd
import torch
from torch.nn import functional as F
from tqdm.auto import tqdm

from protolab.core import dryrun
from protolab.data.xlsa17 import ZSLData
from protolab.training.episodes import EpisodeSampler
from protolab.zsl.ipn import IPN, IPNConfig, attribute_centres, class_means, fill_unseen_prototypes, ipn_model
from protolab.metrics import gzsl_scores
from protolab.training.convergence import EarlyStopping, StoppingRule
from protolab.training.loops import BestWeights, adam, optimizer_step


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation and episode settings (official: Adam lr 2e-5, wd 1e-4, 30 classes × (1 + 1) images).

    Attributes
    ----------
    epochs, lr, weight_decay, seed : as usual. Adam is :func:`protolab.training.loops.adam` (the fused kernel).
    lr_step_epoch : the learning rate drops ×0.1 after this many epochs; None = ``⌊2·epochs/3⌋`` (at least 1,
        the official StepLR at 2/3). The refit of :func:`fit_ipn` sets it to the selection run's value.
    consistency_weight : weight of the consistency loss (0 = off; official 1).
    episodic : episodes of ``n_way`` classes (True) or minibatches over all classes with fixed
        full-class prototypes (False, the official ``main-no-episode.py``), as many minibatches per epoch as
        there would be episodes (:func:`minibatches`: the same optimiser steps, a matched budget).
    n_way, n_shot, n_query : classes per episode, support and query images per class.
    episode_unseen : how many of the ``n_way`` classes are held out as episode-"unseen": they get no
        support prototype (copied, as at test time) but keep their queries (0 = the official code).
    episodes_per_epoch : episodes (or minibatches) per epoch; None = by ``episodes_rule``.
    episodes_rule : when ``episodes_per_epoch`` is None: ``"ours"`` = ``N // (n_way·(n_shot+n_query))`` (every
        image about once per epoch), ``"official"`` = ``((N/30)//100 + 1)·100`` (AWA2 800, CUB 300: 2.5× more
        steps), for ``N`` training images (:func:`episodes_per_epoch`).
    semantic_input : ``"normalised"`` (xlsa17 ``att``, unit-L2 per class; ours) or ``"original"`` (``original_att``,
        AWA2 0–100, APY/SUN ×100; the official code), fed to the semantic encoder and K-means
        (:func:`semantic_input`).
    batch_size : minibatch size of non-episodic training.
    val_fraction : fraction of each train class's images held out as validation-seen images (:func:`validation_split`).
    patience : early stopping of :func:`fit_ipn`'s selection run: validations (one per epoch) without a gain of
        validation H above ``min_delta`` before it stops (``epochs`` the cap); None: it trains all ``epochs``.
    min_delta : the smallest gain of validation H that counts (:class:`~protolab.training.convergence.StoppingRule`).
    """

    epochs: int = 30
    lr: float = 1e-3
    weight_decay: float = 1e-4
    seed: int = 0
    consistency_weight: float = 1.0
    episodic: bool = True
    n_way: int = 30
    n_shot: int = 1
    n_query: int = 1
    episode_unseen: int = 5
    episodes_per_epoch: int | None = None
    batch_size: int = 128
    val_fraction: float = 0.2
    lr_step_epoch: int | None = None
    episodes_rule: str = "ours"
    semantic_input: str = "normalised"
    patience: int | None = None
    min_delta: float = 0.0

    def __post_init__(self) -> None:
        if self.episodes_rule not in ("ours", "official"):
            raise ValueError(f"episodes_rule must be 'ours' or 'official', not {self.episodes_rule!r}")
        if self.semantic_input not in ("normalised", "original"):
            raise ValueError(f"semantic_input must be 'normalised' or 'original', not {self.semantic_input!r}")
        selection_rule(self)  # refuses an impossible patience, epochs or min_delta here, before training


def selection_rule(config: TrainConfig) -> StoppingRule:
    """The early-stopping rule of :func:`fit_ipn`'s selection run: validation after every epoch, ``config``'s
    ``patience`` and ``min_delta``, ``config.epochs`` the cap."""
    return StoppingRule(eval_every=1, patience=config.patience, max_steps=config.epochs, min_delta=config.min_delta)


def episodes_per_epoch(n_images: int, config: TrainConfig) -> int:
    """Episodes (or minibatches) per epoch on ``n_images`` training images: ``config.episodes_per_epoch`` when
    given, else by ``config.episodes_rule``: ``"ours"`` ``max(1, N // (n_way·(n_shot+n_query)))``, ``"official"``
    ``((N/30)//100 + 1)·100`` (the official code; AWA2's 23527 images → 800, CUB's 7057 → 300)."""
    if config.episodes_per_epoch:
        return config.episodes_per_epoch
    if config.episodes_rule == "official":
        return int((n_images / 30) // 100 + 1) * 100
    return max(1, n_images // (config.n_way * (config.n_shot + config.n_query)))


def lr_step_epoch(config: TrainConfig) -> int:
    """Epochs trained at the full learning rate before the ×0.1 drop: ``config.lr_step_epoch`` or ``⌊2·epochs/3⌋``
    (at least 1)."""
    return config.lr_step_epoch or max(1, config.epochs * 2 // 3)


def semantic_input(data: ZSLData, which: str) -> ZSLData:
    """``data`` with the class attributes IPN reads (semantic encoder, K-means, graph): ``"normalised"`` leaves
    ``data`` as loaded (xlsa17 ``att``, unit-L2 rows); ``"original"`` puts ``original_attributes`` in
    ``attributes`` (AWA2 0–100 scores; APY and SUN ×100, as the official code does). Idempotent."""
    if which == "normalised":
        return data
    if which != "original":
        raise ValueError(f"semantic input must be 'normalised' or 'original', not {which!r}")
    scale = 100.0 if data.name.upper() in ("APY", "SUN") else 1.0
    return replace(data, attributes=scale * data.original_attributes)


def validation_split(labels: torch.Tensor, fraction: float, seed: int) -> torch.Tensor:
    """Bool mask over ``labels`` holding out ``round(fraction · n)`` of each class's ``n`` images, drawn with
    ``seed``: at least one and at most ``n − 1`` (none when ``n = 1``).

    The one validation split of every zero-shot method here: IPN (:func:`fit_ipn`) and the baselines
    (:func:`protolab.zsl.baselines.select_baseline`) are selected on the images it holds out of ``train``.
    """
    generator = torch.Generator().manual_seed(seed)
    mask = torch.zeros(len(labels), dtype=torch.bool)
    for c in labels.unique().tolist():
        idx = (labels == c).nonzero().flatten()
        n = min(len(idx) - 1, max(1, round(fraction * len(idx)))) if len(idx) > 1 else 0
        mask[idx[torch.randperm(len(idx), generator=generator)[:n]]] = True
    return mask


def episode_loss(model: IPN, features: torch.Tensor, labels: torch.Tensor, attributes: torch.Tensor,
                  sampler: EpisodeSampler, index: int, config: TrainConfig,
                  generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Classification loss, consistency loss and accuracy of one episode (all on the model's device).

    The episode's classes are split at random into episode-seen (support mean = visual prototype) and
    ``episode_unseen`` held-out classes whose visual prototype is copied as for real unseen classes;
    cross-entropy of the queries of all episode classes over all episode classes.
    """
    device = features.device
    episode = sampler[index]
    n_way = len(episode.classes)
    support_labels = episode.support_labels.to(device)
    means, _ = class_means(features[episode.support.to(device)], support_labels, n_way)
    atts = attributes[episode.classes.to(device)]
    known = torch.ones(n_way, dtype=torch.bool, device=device)
    known[torch.randperm(n_way, generator=generator)[:config.episode_unseen].to(device)] = False
    means = fill_unseen_prototypes(model, means, atts, known) if config.episode_unseen else means
    logits, consistency = model(features[episode.query.to(device)], means, atts)
    query_labels = episode.query_labels.to(device)
    loss = F.cross_entropy(logits / model.config.logit_scale, query_labels)
    return loss, consistency, (logits.argmax(1) == query_labels).float().mean()


def minibatches(n: int, batch_size: int, count: int, generator: torch.Generator) -> Iterator[torch.Tensor]:
    """``count`` minibatches of indices into ``n`` items, ``batch_size`` each: consecutive slices of fresh random
    permutations (a permutation's last, shorter slice is kept), as many passes as ``count`` needs.

    Non-episodic training draws as many minibatches per epoch as episodic training draws episodes
    (:func:`episodes_per_epoch`), so both make the same number of optimiser steps (the official
    ``main-no-episode.py`` makes one pass per epoch, 25 steps on glyph-zsl against 52 episodes).
    """
    drawn = 0
    while drawn < count:
        for batch in torch.randperm(n, generator=generator).split(batch_size):
            if drawn == count:
                return
            drawn += 1
            yield batch


def _train_epoch(model: IPN, optimizer: torch.optim.Optimizer, features: torch.Tensor, labels: torch.Tensor,
                 attributes: torch.Tensor, config: TrainConfig, generator: torch.Generator,
                 sampler: EpisodeSampler | None, meter: dryrun.Meter) -> dict[str, float]:
    """One epoch on ``features``/``labels`` (global ids, on the device); mean loss, KL and accuracy.

    ``meter`` is ticked after every step; a dry run (:mod:`protolab.core.dryrun`) ends the epoch when it says so.
    """
    model.train()
    totals = np.zeros(3)
    steps = 0
    if sampler is not None:
        for index in range(len(sampler)):
            loss, kl, acc = episode_loss(model, features, labels, attributes, sampler, index, config, generator)
            optimizer_step(optimizer, loss + config.consistency_weight * kl)
            totals += [loss.item(), kl.item(), acc.item()]
            steps += 1
            if meter.tick():
                break
    else:
        classes = labels.unique()
        local = torch.full((len(attributes),), -1, dtype=torch.long, device=labels.device)
        local[classes] = torch.arange(len(classes), device=labels.device)
        means, _ = class_means(features, local[labels], len(classes))
        for batch in minibatches(len(labels), config.batch_size, episodes_per_epoch(len(labels), config), generator):
            batch = batch.to(labels.device)
            logits, kl = model(features[batch], means, attributes[classes])
            targets = local[labels[batch]]
            loss = F.cross_entropy(logits / model.config.logit_scale, targets)
            optimizer_step(optimizer, loss + config.consistency_weight * kl)
            totals += [loss.item(), kl.item(), (logits.argmax(1) == targets).float().mean().item()]
            steps += 1
            if meter.tick():
                break
    loss, kl, acc = totals / steps
    return {"loss": loss, "kl": kl, "train_accuracy": acc}


def training_epochs(model: IPN, features: torch.Tensor, labels: torch.Tensor, attributes: torch.Tensor,
                    config: TrainConfig, device: torch.device, progress: bool = True) -> Iterator[dict[str, float]]:
    """Train ``model`` for ``config.epochs`` epochs on ``features``/``labels`` (global class ids), one epoch per
    step of the iteration; after each epoch (and its learning-rate step) yield its row: ``epoch``, ``loss``
    (cross-entropy), ``kl`` (consistency between the spaces, recorded even when its weight is 0),
    ``train_accuracy``. Whatever the caller does with the model between epochs draws no training randomness.
    """
    generator = torch.Generator().manual_seed(config.seed)
    torch.manual_seed(config.seed)
    model.to(device)
    features, labels, attributes = features.to(device), labels.to(device), attributes.to(device)
    episodes = episodes_per_epoch(len(labels), config)  # episodes or minibatches: the same optimiser steps
    optimizer = adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=lr_step_epoch(config), gamma=0.1)
    for epoch in tqdm(range(1, config.epochs + 1), desc="IPN", disable=not progress, leave=False):
        sampler = (EpisodeSampler(labels.cpu(), config.n_way, config.n_shot, config.n_query, episodes,
                                  seed=config.seed * 100_003 + epoch) if config.episodic else None)
        meter = dryrun.meter("IPN training steps", episodes, device, config.epochs)
        row = {"epoch": epoch, "lr": optimizer.param_groups[0]["lr"],
               **_train_epoch(model, optimizer, features, labels, attributes, config, generator, sampler, meter)}
        scheduler.step()
        yield row
        if meter.stopped:
            return


def train_epochs(model: IPN, features: torch.Tensor, labels: torch.Tensor, attributes: torch.Tensor,
                 config: TrainConfig, device: torch.device, progress: bool = True,
                 monitor: Callable[[IPN], dict[str, float]] | None = None) -> pd.DataFrame:
    """:func:`training_epochs` run to the end: one row per epoch, then ``monitor``'s columns (optional, called
    after each epoch)."""
    return pd.DataFrame([{**row, **(monitor(model) if monitor else {})}
                         for row in training_epochs(model, features, labels, attributes, config, device, progress)])


def fit_ipn(data: ZSLData, model_config: IPNConfig = IPNConfig(), config: TrainConfig = TrainConfig(),
            device: torch.device | str = "cpu", progress: bool = True, refit: bool = True,
            monitor: Callable[[IPN], dict[str, float]] | None = None,
            validation: torch.Tensor | None = None) -> tuple[IPN, pd.DataFrame]:
    """Train IPN on ``data`` with model selection on the xlsa17 validation classes, never on test data.

    1. Train on the ``train`` split (``train_classes``) minus the ``validation`` images (bool mask over
       ``data.train``; default :func:`validation_split` of ``config.val_fraction`` with ``config.seed``);
       after each epoch measure U/S/H with ``val_classes`` as unseen (``val`` split) and the held-out images
       as seen; keep the epoch with the best validation H (the earliest on ties); with ``config.patience``,
       stop once it has spent its patience (:func:`selection_rule`). (The official code instead keeps the
       epoch with the best H on the *test* sets — model selection on test data.)
    2. If ``refit``, retrain from scratch on ``trainval`` (all seen classes) for that many epochs, replaying the
       selection run's learning-rate schedule (same step epoch, :func:`lr_step_epoch`): the refit model has
       the learning rates the selected one had, epoch by epoch.

    ``data``'s attributes are first switched by ``config.semantic_input`` (:func:`semantic_input`); evaluate the
    result on ``semantic_input(data, config.semantic_input)`` too.

    ``monitor`` (optional) is called after every epoch of both phases; its dict adds history columns.

    Returns
    -------
    (model in eval mode on ``device``, history): the selection run's per-epoch rows (``epoch``, ``loss``,
    ``kl``, ``train_accuracy``, ``val_U``, ``val_S``, ``val_H``, ``phase = "select"``), then the refit's
    rows (``phase = "refit"``) when ``refit``; ``attrs["convergence"]`` is how the selection run stopped
    (:meth:`~protolab.training.convergence.EarlyStopping.record`, steps are epochs).
    """
    device = torch.device(device)
    data = semantic_input(data, config.semantic_input)
    held = validation_split(data.train.labels, config.val_fraction, config.seed) if validation is None else validation
    train_x, train_y = data.train.features[~held], data.train.labels[~held]
    val_seen = (data.train.features[held], data.train.labels[held])
    val_unseen = (data.val.features, data.val.labels)
    centres = attribute_centres(data.attributes[data.train_classes], model_config.n_clusters, config.seed)
    torch.manual_seed(config.seed)
    model = ipn_model(data.feature_dim, centres, model_config)
    best = BestWeights(EarlyStopping(selection_rule(config)))
    rows = []
    for row in training_epochs(model, train_x, train_y, data.attributes, config, device, progress):
        with dryrun.measured("IPN validation U/S/H", device, config.epochs):
            scores = evaluate_gzsl(model, train_x, train_y, data.attributes, val_seen, val_unseen,
                                   data.train_classes, data.val_classes)
        best.validated(model, row["epoch"], scores["H"])
        rows.append({**row, **{f"val_{key}": value for key, value in scores.items()},
                     **(monitor(model) if monitor else {})})
        if best.stopping.stop(row["epoch"]):
            break
    history = pd.DataFrame(rows).assign(phase="select")
    best.restore(model)
    if refit:
        refit_epochs = (config.epochs if dryrun.dry_run_steps()  # a dry run: the upper bound
                        else max(1, best.stopping.best_step))
        centres = attribute_centres(data.attributes[data.seen_classes], model_config.n_clusters, config.seed)
        torch.manual_seed(config.seed)
        model = ipn_model(data.feature_dim, centres, model_config)
        refit_history = train_epochs(model, data.trainval.features, data.trainval.labels, data.attributes,
                                     replace(config, epochs=refit_epochs, lr_step_epoch=lr_step_epoch(config)),
                                     device, progress, monitor)
        history = pd.concat([history, refit_history.assign(phase="refit")], ignore_index=True)
    history.attrs["convergence"] = best.stopping.record()
    return model.to(device).eval(), history


def search_space_means(model: IPN, data: ZSLData) -> torch.Tensor:
    """Visual class means ``(C, D)`` of the test search space, on the CPU: seen classes = mean of their
    ``trainval`` images, unseen classes copied by :func:`fill_unseen_prototypes`."""
    where = next(model.parameters()).device
    means, known = class_means(data.trainval.features, data.trainval.labels, data.n_classes)
    return fill_unseen_prototypes(model, means.to(where), data.attributes.to(where), known.to(where)).cpu()


@torch.no_grad()
def predict_scores(model: IPN, features: torch.Tensor, means: torch.Tensor, attributes: torch.Tensor,
                   batch_size: int = 512) -> torch.Tensor:
    """Scores ``(N, C)`` (on the CPU) of ``features`` against all ``C`` classes, prototypes computed once."""
    model.eval()
    device = next(model.parameters()).device
    prototypes, _ = model.prototypes(means.to(device), attributes.to(device))
    return torch.cat([model.score(chunk.to(device), prototypes).cpu() for chunk in features.split(batch_size)])


@torch.no_grad()
def evaluate_gzsl(model: IPN, support_features: torch.Tensor, support_labels: torch.Tensor,
                  attributes: torch.Tensor, seen: tuple[torch.Tensor, torch.Tensor],
                  unseen: tuple[torch.Tensor, torch.Tensor], seen_classes: torch.Tensor,
                  unseen_classes: torch.Tensor) -> dict[str, float]:
    """U, S, H of ``model`` with seen prototypes from ``support_*`` and unseen ones copied.

    ``seen`` and ``unseen`` are ``(features, labels)`` test (or validation) sets; the search space is all
    classes of ``attributes`` (those in neither class list are dropped from the score columns' argmax).
    """
    device = next(model.parameters()).device
    classes = torch.cat([seen_classes, unseen_classes]).sort().values
    local = torch.full((len(attributes),), -1, dtype=torch.long)
    local[classes] = torch.arange(len(classes))
    means, known = class_means(support_features, local[support_labels], len(classes))
    atts = attributes[classes]
    means = fill_unseen_prototypes(model, means.to(device), atts.to(device), known.to(device))
    scores_seen = predict_scores(model, seen[0], means, atts)
    scores_unseen = predict_scores(model, unseen[0], means, atts)
    return gzsl_scores(scores_seen, local[seen[1]], scores_unseen, local[unseen[1]], local[seen_classes],
                       local[unseen_classes])


@torch.no_grad()
def score_test_sets(model: IPN, data: ZSLData) -> tuple[torch.Tensor, torch.Tensor]:
    """Scores ``(N, C)`` of the test-seen and test-unseen images against every class, with the prototypes of
    :func:`search_space_means` (what :func:`evaluate_test` measures)."""
    means = search_space_means(model, data)
    return (predict_scores(model, data.test_seen.features, means, data.attributes),
            predict_scores(model, data.test_unseen.features, means, data.attributes))


def evaluate_test(model: IPN, data: ZSLData) -> dict[str, float]:
    """U, S, H on the test sets: seen prototypes = mean of all ``trainval`` images, unseen ones copied."""
    return evaluate_gzsl(model, data.trainval.features, data.trainval.labels, data.attributes,
                         (data.test_seen.features, data.test_seen.labels),
                         (data.test_unseen.features, data.test_unseen.labels), data.seen_classes,
                         data.unseen_classes)
