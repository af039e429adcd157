"""Training and inference loops: seeded, with progress bars, device-agnostic.

Every loop reads its images through :mod:`protolab.training.loading`: with ``num_workers > 0`` episodes or batches
are prepared ahead (by worker processes for file-backed data, by a background thread for in-memory and
decoded data; 0: in the main thread when needed), copies to a CUDA device are pinned and non-blocking,
and on CUDA models and images use the channels-last memory format with ``cudnn.benchmark``
(:func:`~protolab.training.loading.prepare_model`). Results do not depend on ``num_workers``.
With ``amp`` the forward pass runs under bfloat16 autocast (:func:`autocast`); losses are computed in
float32. Running sums stay on the device within an epoch, so a step does not wait for the device.
Every loop is metered for dry runs (:mod:`protolab.core.dryrun`): with ``PROTOLAB_DRY_RUN`` set, it stops after a
few timed steps and records what the whole loop would cost; no checkpoint is written then.
Loops that validate share one early-stopping rule (:mod:`protolab.training.convergence`): their step is an epoch,
they keep the best-on-validation weights (:class:`BestWeights`) and record how they stopped in the history's
``attrs["convergence"]`` (:meth:`~protolab.training.convergence.EarlyStopping.record`).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Callable

import pandas as pd
import torch
from torch import nn
from tqdm.auto import tqdm

from protolab.core import dryrun
from protolab.core.atomic import atomic_write
from protolab.data.images import LabeledImages
from protolab.training.convergence import EarlyStopping, StoppingRule
from protolab.training.episodes import EpisodeSampler
from protolab.training.loading import EpisodeBatch, batches, episode_batches, prepare_model
from protolab.metrics import mean_ci95


def adam(parameters, *, lr: float, weight_decay: float = 0.0, fused: bool = True) -> torch.optim.Adam:
    """Adam; with ``fused`` its fused kernel (CPU and CUDA): one pass over all parameters per step instead of a
    few per tensor, faster for models of many parameters. Results differ from the unfused update in the last
    bits only. ``fused=False``: torch's default implementation."""
    return torch.optim.Adam(parameters, lr=lr, weight_decay=weight_decay, fused=True if fused else None)


def _load_optimizer(optimizer: torch.optim.Optimizer, state: dict) -> None:
    """``optimizer.load_state_dict(state)``, then each per-parameter tensor laid out like its parameter.

    A checkpoint written on another device can hold channels-last moments for contiguous weights (or the
    reverse), and the fused Adam kernel reads both as flat arrays: mismatched layouts would pair wrong elements.
    """
    optimizer.load_state_dict(state)
    for group in optimizer.param_groups:
        for parameter in group["params"]:
            moments = optimizer.state.get(parameter, {})
            for key, value in moments.items():
                if torch.is_tensor(value) and value.shape == parameter.shape and value.stride() != parameter.stride():
                    moments[key] = torch.empty_like(parameter, dtype=value.dtype).copy_(value)


def autocast(device: torch.device, *, amp: bool) -> torch.autocast:
    """bfloat16 autocast on ``device`` when ``amp`` (convolutions and matrix products in bfloat16, reductions
    and the ops autocast keeps in float32 in float32), a no-op otherwise. Wrap the forward pass only; compute
    the loss from ``logits.float()``."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp)


def optimizer_step(optimizer: torch.optim.Optimizer, loss: torch.Tensor) -> None:
    """Gradients of the scalar ``loss`` (the previous ones dropped), then one step of ``optimizer``."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


def cross_entropy_step(optimizer: torch.optim.Optimizer, logits: torch.Tensor,
                       labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One optimisation step on the float32 cross-entropy of ``logits`` ``(B, K)`` against ``labels`` ``(B,)``.

    Returns the mean loss (float32 scalar) and the number of correct predictions (int64 scalar), detached
    and on the device: reading them (``.item()``) waits for the device, so loops sum them there.
    """
    loss = nn.functional.cross_entropy(logits.float(), labels)
    optimizer_step(optimizer, loss)
    return loss.detach(), (logits.argmax(1) == labels).sum()


def _cpu_copy(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {name: value.detach().to("cpu", copy=True) for name, value in state.items()}


def epoch_rule(epochs: int | None, stopping: StoppingRule | None) -> StoppingRule:
    """The stopping rule of a loop whose step is an epoch: ``stopping`` (then ``epochs``, when given, must be
    its ``max_steps``), or else validation after every one of ``epochs`` epochs, never stopping early."""
    if stopping is None:
        if epochs is None:
            raise ValueError("give the number of epochs or a stopping rule (its max_steps caps the epochs)")
        return StoppingRule(eval_every=1, patience=None, max_steps=epochs)
    if epochs is not None and epochs != stopping.max_steps:
        raise ValueError(f"epochs={epochs!r} differs from the stopping rule's max_steps={stopping.max_steps!r}: "
                         "the rule caps the epochs (give epochs=None or the same number)")
    return stopping


@dataclass
class BestWeights:
    """Early stopping with the weights it keeps: :attr:`stopping` (:class:`EarlyStopping`) and :attr:`weights`,
    a CPU copy of the state dict of the best validation so far (the earliest on ties; None before one)."""

    stopping: EarlyStopping
    weights: dict[str, torch.Tensor] | None = None

    def validated(self, model: nn.Module, step: int, score: float) -> None:
        """Record ``model``'s validation ``score`` (higher is better) after loop step ``step``; copy its weights
        when the score is the best so far."""
        if self.stopping.update(step, score):
            self.weights = _cpu_copy(model.state_dict())

    def restore(self, model: nn.Module) -> None:
        """Load the kept weights into ``model`` (unchanged before any validation)."""
        if self.weights is not None:
            model.load_state_dict(self.weights)

    def state(self) -> dict[str, Any]:
        """Plain values to checkpoint: ``stopping`` (:meth:`EarlyStopping.state`) and ``best_model`` (the weights)."""
        return {"stopping": self.stopping.state(), "best_model": self.weights}

    @classmethod
    def from_state(cls, rule: StoppingRule, state: dict[str, Any]) -> BestWeights:
        """The :class:`BestWeights` of ``rule`` that :meth:`state` saved."""
        return cls(EarlyStopping.from_state(rule, state["stopping"]), state["best_model"])


def fit_classifier(model: nn.Module, data: LabeledImages, *, epochs: int | None = None, batch_size: int, lr: float,
                   device: torch.device, seed: int, weight_decay: float = 0.0,
                   augment: Callable[[torch.Tensor, torch.Generator], torch.Tensor] | None = None,
                   lr_at: Callable[[int], float] | None = None,
                   scheduler: Callable[[torch.optim.Optimizer], torch.optim.lr_scheduler.LRScheduler] | None = None,
                   drop_last: bool = False, fused_adam: bool = True, metered: bool = True, progress: bool = True,
                   description: str = "train", num_workers: int = 0, amp: bool = False,
                   validate: Callable[[nn.Module], float] | None = None,
                   stopping: StoppingRule | None = None) -> pd.DataFrame:
    """Train ``model`` (images → logits) with Adam (:func:`adam`) and cross-entropy; one row of history per epoch.

    Each epoch visits ``data`` in a new random order drawn from a generator seeded with ``seed``, in batches
    of ``batch_size`` (the last one shorter); ``num_workers`` and ``amp`` as in the module docstring. The
    initialisation is the caller's: seed before building the model.

    Parameters
    ----------
    epochs : epochs to train; with ``stopping``, None or its ``max_steps`` (:func:`epoch_rule`).
    augment : ``augment(images, generator)``, applied to every batch ``(B, C, H, W)`` (on ``device``) before
        the forward pass. It draws from the loop's generator, after the epoch's permutation, in the main
        process: the batches and their augmentation depend on ``seed`` alone, whatever ``num_workers``.
    lr_at : multiplier of ``lr`` during a 0-based epoch: the learning rate is set to ``lr * lr_at(epoch)`` as
        the epoch starts.
    scheduler : builds a learning-rate scheduler on the loop's optimiser (e.g. ``OneCycleLR``), stepped after
        every batch; not with ``lr_at``.
    drop_last : leave out each epoch's last, shorter batch when there is at least one full batch.
    fused_adam : False: torch's default Adam update instead of the fused kernel.
    metered : False: the loop runs to its end in a dry run too (:mod:`protolab.core.dryrun`), for training
        whose result is cached data.
    validate : ``validate(model)`` → a validation score, higher is better (e.g. validation accuracy), called
        in eval mode under ``torch.no_grad()`` after the epochs the stopping rule says (train mode is restored
        after). At the end the weights of the best validation (the earliest on ties) are restored. A dry run
        validates once, its metered loops counted once per validation of the full run.
    stopping : the early-stopping rule (:class:`~protolab.training.convergence.StoppingRule`; its step is an
        epoch, ``max_steps`` caps the epochs); needs ``validate``. None with ``validate``: validation after
        every one of ``epochs`` epochs, no early stop.

    Returns
    -------
    pandas.DataFrame
        One row per epoch: ``epoch`` (from 1), ``lr`` (at the end of the epoch), ``loss`` (mean over the
        epoch's images) and ``accuracy`` (on the training batches as seen during the epoch, augmented); with
        ``validate``, ``val_score`` (NaN after an epoch not validated) and ``attrs["convergence"]``
        (:meth:`~protolab.training.convergence.EarlyStopping.record`: steps are epochs).
    """
    if lr_at is not None and scheduler is not None:
        raise ValueError("give lr_at (a learning rate per epoch) or scheduler (stepped per batch), not both")
    if stopping is not None and validate is None:
        raise ValueError("early stopping needs a validate callable that scores the model")
    best = None if validate is None else BestWeights(EarlyStopping(epoch_rule(epochs, stopping)))
    if best is None and epochs is None:
        raise ValueError("give the number of epochs (or validate and a stopping rule)")
    epochs = epochs if best is None else best.stopping.rule.max_steps
    generator = torch.Generator().manual_seed(seed)
    drop_last = drop_last and len(data) > batch_size
    n_batches = len(data) // batch_size if drop_last else math.ceil(len(data) / batch_size)
    prepare_model(model, device).train()
    optimizer = adam(model.parameters(), lr=lr, weight_decay=weight_decay, fused=fused_adam)
    per_batch = None if scheduler is None else scheduler(optimizer)
    history = []
    for epoch in tqdm(range(epochs), desc=description, disable=not progress, leave=False):
        if lr_at is not None:
            for group in optimizer.param_groups:
                group["lr"] = lr * lr_at(epoch)
        loss_sum = torch.zeros((), dtype=torch.float64, device=device)
        correct = torch.zeros((), dtype=torch.int64, device=device)
        seen = 0
        order = torch.randperm(len(data), generator=generator)
        meter = dryrun.meter(f"{description}: training batches", n_batches, device, epochs)
        for images, labels in batches(data, order, batch_size=batch_size, device=device, num_workers=num_workers,
                                      drop_last=drop_last):
            if augment is not None:
                images = augment(images, generator)
            with autocast(device, amp=amp):
                logits = model(images)
            loss, hits = cross_entropy_step(optimizer, logits, labels)
            if per_batch is not None:
                per_batch.step()
            loss_sum += loss.double() * len(labels)
            correct += hits
            seen += len(labels)
            if metered and meter.tick():
                break
        history.append({"epoch": epoch + 1, "lr": optimizer.param_groups[0]["lr"], "loss": loss_sum.item() / seen,
                        "accuracy": int(correct) / seen})
        if best is not None:
            history[-1]["val_score"] = math.nan
            if best.stopping.due(epoch + 1) or meter.stopped:
                model.eval()
                with torch.no_grad(), dryrun.repeated(math.ceil(epochs / best.stopping.rule.eval_every)):
                    history[-1]["val_score"] = float(validate(model))
                model.train()
                best.validated(model, epoch + 1, history[-1]["val_score"])
                if best.stopping.stop(epoch + 1):
                    break
        if meter.stopped:
            break
    if best is not None:
        best.restore(model)
    model.eval()
    history = pd.DataFrame(history)
    if best is not None:
        history.attrs["convergence"] = best.stopping.record()
    return history


@torch.no_grad()
def apply_batched(module: nn.Module, data: LabeledImages, *, batch_size: int, device: torch.device,
                  num_workers: int = 0, amp: bool = False) -> torch.Tensor:
    """``module`` applied to every image of ``data`` in order, in eval mode: ``(N, ...)`` on the CPU.

    ``num_workers`` and ``amp`` as in the module docstring; outputs computed in bfloat16 are returned as
    float32. A dry run computes a few batches and repeats their outputs to ``N`` rows.
    """
    prepare_model(module, device).eval()
    outputs = []
    meter = dryrun.meter("inference batches", math.ceil(len(data) / batch_size), device)
    for images, _ in batches(data, torch.arange(len(data)), batch_size=batch_size, device=device,
                             num_workers=num_workers):
        with autocast(device, amp=amp):
            output = module(images)
        outputs.append((output.float() if output.dtype == torch.bfloat16 else output).cpu())
        if meter.tick():
            break
    done = torch.cat(outputs)
    return done if len(done) == len(data) else done[torch.arange(len(data)) % len(done)]


def _episode_logits(model: nn.Module, batch: EpisodeBatch, n_way: int, amp: bool) -> torch.Tensor:
    """``model(support_images, support_labels, query_images, n_way)`` → logits ``(n_way·n_query, n_way)``."""
    with autocast(batch.query.device, amp=amp):
        return model(batch.support, batch.support_labels, batch.query, n_way)


def _require_queries(n_query: int) -> None:
    if n_query < 1:
        raise ValueError(f"episodic training and evaluation score queries: n_query must be ≥ 1, got {n_query!r}")


def _train_step(model: nn.Module, optimizer: torch.optim.Optimizer, batch: EpisodeBatch, n_way: int,
                amp: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """One optimisation step on one episode; returns its query loss and number of correct queries (on the device)."""
    return cross_entropy_step(optimizer, _episode_logits(model, batch, n_way, amp), batch.query_labels)


@torch.no_grad()
def evaluate_episodic(model: nn.Module, data: LabeledImages, *, n_way: int, n_shot: int, n_query: int,
                      n_episodes: int, device: torch.device, seed: int, progress: bool = True,
                      num_workers: int = 0, amp: bool = False) -> tuple[float, float, torch.Tensor]:
    r"""Few-shot accuracy of ``model`` (eval mode) over ``n_episodes`` episodes of ``data``.

    ``num_workers`` and ``amp`` as in the module docstring.

    Returns
    -------
    mean : float
        Mean accuracy over episodes, in [0, 1].
    ci95 : float
        Student-t 95% half-width over the episodes (:func:`mean_ci95`).
    accuracies : torch.Tensor
        ``(n_episodes,)`` float64 accuracy of each episode; episode ``k`` depends only on ``(seed, k)``.
    """
    _require_queries(n_query)
    sampler = EpisodeSampler(data.labels, n_way, n_shot, n_query, n_episodes, seed=seed)
    prepare_model(model, device).eval()
    correct = torch.zeros(n_episodes, dtype=torch.int64, device=device)
    episodes = episode_batches(data, sampler, device=device, num_workers=num_workers)
    meter = dryrun.meter("evaluation episodes", n_episodes, device)
    for k, batch in enumerate(tqdm(episodes, total=n_episodes, desc="evaluate", disable=not progress, leave=False)):
        correct[k] = (_episode_logits(model, batch, n_way, amp).argmax(1) == batch.query_labels).sum()
        if meter.tick():
            correct = correct[: k + 1]  # a dry run: the episodes evaluated
            break
    accuracies = correct.cpu().double() / (n_way * n_query)
    mean, ci95 = mean_ci95(accuracies)
    return mean, ci95, accuracies


@dataclass
class _EpisodicProgress:
    """What an episodic run has done, as its checkpoint holds it: the early stopping on validation accuracy with
    the best weights (``best``, steps are epochs), episodes done (``step``), the current epoch's running sums of
    query losses and correct queries, and the history rows."""

    best: BestWeights
    step: int = 0
    loss_sum: float = 0.0
    correct: int = 0
    history: list[dict[str, float]] = field(default_factory=list)

    def contents(self) -> dict[str, Any]:
        """Plain values: the fields after ``best``, and :meth:`BestWeights.state`."""
        return {**{item.name: getattr(self, item.name) for item in fields(self)[1:]}, **self.best.state()}

    @classmethod
    def from_contents(cls, rule: StoppingRule, contents: dict[str, Any]) -> _EpisodicProgress:
        """The progress of a run of ``rule`` that :meth:`contents` saved."""
        return cls(BestWeights.from_state(rule, contents),
                   **{item.name: contents[item.name] for item in fields(cls)[1:]})


class _Checkpoint:
    """The file ``path`` (None: none is kept) holding an episodic run under stopping rule ``rule``:
    :class:`_EpisodicProgress`, the run's ``settings``, the weights of ``model``, the states of ``optimizer``
    and ``scheduler``, and torch's random state (CPU, and ``device``'s when it is CUDA)."""

    def __init__(self, path: Path | None, rule: StoppingRule, settings: dict[str, Any], model: nn.Module,
                 optimizer: torch.optim.Optimizer, scheduler: torch.optim.lr_scheduler.LRScheduler,
                 device: torch.device) -> None:
        self.path = None if path is None else Path(path)
        self.rule, self.settings = rule, settings
        self.model, self.optimizer, self.scheduler = model, optimizer, scheduler
        self.device = device
        self.cuda = [device] if device.type == "cuda" else []  # the devices whose random state is saved

    def resume_or_start(self) -> _EpisodicProgress:
        """The progress saved in the file, with the model, optimiser, scheduler and random state restored from
        it; a fresh start when there is no file, or (with a warning naming what differs; the file is overwritten
        at the next save) when the file was written with other settings."""
        if self.path is None or not self.path.exists():
            return _EpisodicProgress(BestWeights(EarlyStopping(self.rule)))
        saved = torch.load(self.path, map_location="cpu", weights_only=True)
        if saved["settings"] != self.settings:
            differ = sorted(key for key in set(saved["settings"]) | set(self.settings)
                            if saved["settings"].get(key) != self.settings.get(key))
            warnings.warn(f"checkpoint {self.path} was written for another configuration (it differs in "
                          f"{', '.join(differ)}): training starts fresh and will overwrite it", stacklevel=3)
            return _EpisodicProgress(BestWeights(EarlyStopping(self.rule)))
        self.model.load_state_dict(saved["model"])
        _load_optimizer(self.optimizer, saved["optimizer"])
        self.scheduler.load_state_dict(saved["scheduler"])
        torch.set_rng_state(saved["rng"])
        if self.cuda:
            torch.cuda.set_rng_state(saved["cuda_rng"], self.device)
        return _EpisodicProgress.from_contents(self.rule, saved)

    def save(self, progress: _EpisodicProgress) -> None:
        """Write the run's state atomically (not in a dry run, nor without a path)."""
        if self.path is None or dryrun.dry_run_steps():
            return
        contents = {
            **progress.contents(), "settings": self.settings, "model": _cpu_copy(self.model.state_dict()),
            "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
            "rng": torch.get_rng_state(),
            **({"cuda_rng": torch.cuda.get_rng_state(self.device)} if self.cuda else {}),
        }
        atomic_write(self.path, lambda handle: torch.save(contents, handle))


def _end_of_epoch(progress: _EpisodicProgress, model: nn.Module, optimizer: torch.optim.Optimizer,
                  validate: Callable[[], tuple[float, float]] | None, *, episodes_per_epoch: int,
                  queries_per_episode: int) -> dict[str, float]:
    """Close the epoch that ``progress.step`` completes: its history row (training means from the running sums,
    then ``validate()``'s accuracy and 95% half-width, NaN when not validated), the validation accuracy handed
    to ``progress.best`` (which keeps the best weights), the running sums reset. Returns the row."""
    epoch = progress.step // episodes_per_epoch
    row = {"epoch": epoch, "episodes": progress.step, "lr": optimizer.param_groups[0]["lr"],
           "train_loss": progress.loss_sum / episodes_per_epoch,
           "train_accuracy": progress.correct / (episodes_per_epoch * queries_per_episode),
           "val_accuracy": math.nan, "val_ci95": math.nan}
    if validate is not None:
        row["val_accuracy"], row["val_ci95"] = validate()
        progress.best.validated(model, epoch, row["val_accuracy"])
    progress.history.append(row)
    progress.loss_sum, progress.correct = 0.0, 0
    return row


def train_episodic(model: nn.Module, train_data: LabeledImages, val_data: LabeledImages | None, *, n_way: int,
                   n_shot: int, n_query: int, episodes_per_epoch: int, epochs: int | None = None,
                   val_episodes: int, lr: float, step_size: int, gamma: float, device: torch.device, seed: int,
                   checkpoint: Path | None = None, checkpoint_every: int = 50, val_way: int | None = None,
                   identity: dict[str, Any] | None = None, progress: bool = True, num_workers: int = 0,
                   amp: bool = False, stopping: StoppingRule | None = None) -> pd.DataFrame:
    """Episodic training with Adam and StepLR, best-on-validation selection, early stopping, resumable checkpoints.

    ``model`` is called as ``model(support_images, support_labels, query_images, n_way)`` and returns
    query logits ``(n_way·n_query, n_way)`` (e.g. :class:`protolab.fewshot.protonet.ProtoNet`).
    Training episode ``k`` (counted over the whole run) is episode ``k`` of one
    :class:`EpisodeSampler` of ``train_data`` seeded with ``seed``; the loss is the cross-entropy of
    the query logits. ``StepLR(step_size, gamma)`` steps once per epoch. After each epoch the model
    is evaluated on ``val_episodes`` fixed episodes of ``val_data`` (``val_way``-way, default
    ``n_way``; seed ``seed + 1``); at the end the weights with the best validation accuracy (the
    earliest on ties) are restored. With ``val_data=None`` the last weights are kept.

    ``stopping`` (:class:`~protolab.training.convergence.StoppingRule`, its step an epoch; needs ``val_data``)
    validates after every ``eval_every`` epochs (and the last) and ends training when its patience is spent;
    its ``max_steps`` caps the epochs (``epochs``: None or the same number, :func:`epoch_rule`). Without it the
    run trains ``epochs`` epochs, validating after each.

    With ``checkpoint`` set, the full training state (model, optimizer, scheduler, episode counter,
    the current epoch's running sums, history, early-stopping state, best weights, random state) is written
    atomically after every epoch and every ``checkpoint_every`` episodes. If the file exists, training resumes
    from it: the episodes it counts as done are not repeated (nor any after an early stop), and the run ends
    with the same weights and history as an uninterrupted one. The checkpoint is keyed by everything that shapes
    the run: the arguments above (the stopping rule's included), the architecture (``repr(model)``), the data
    (:meth:`LabeledImages.fingerprint` of ``train_data`` and ``val_data``) and ``identity`` (what else shapes
    the model, e.g. a temperature or a curvature the architecture's ``repr`` does not show; plain values). A
    checkpoint whose key differs is not resumed: training starts fresh, with a warning naming what differs, and
    overwrites it.
    The global random state is left as it was (the loop runs in a forked RNG seeded from ``seed``).
    ``num_workers`` and ``amp`` (not part of the checkpointed settings) as in the module docstring.

    Returns
    -------
    pandas.DataFrame
        One row per epoch: ``epoch``, ``episodes`` (done so far), ``lr``, ``train_loss`` and
        ``train_accuracy`` (means over the epoch's episodes), ``val_accuracy`` and ``val_ci95``
        (NaN without ``val_data`` or after an epoch not validated); ``attrs["best_epoch"]`` is the epoch whose
        weights were kept; with ``val_data``, ``attrs["convergence"]`` is how training stopped
        (:meth:`~protolab.training.convergence.EarlyStopping.record`, steps are epochs).
    """
    _require_queries(n_query)
    if stopping is not None and val_data is None:
        raise ValueError("early stopping needs validation data (val_data)")
    rule = epoch_rule(epochs, stopping)
    epochs = rule.max_steps
    total = epochs * episodes_per_epoch
    sampler = EpisodeSampler(train_data.labels, n_way, n_shot, n_query, total, seed=seed)
    val_way = val_way or n_way
    if val_data is not None:  # fail on impossible validation episodes before training, not after an epoch
        EpisodeSampler(val_data.labels, val_way, n_shot, n_query, val_episodes, seed=seed + 1)
    if checkpoint_every < 1:
        raise ValueError(f"checkpoint_every must be a positive number of episodes, got {checkpoint_every!r}")
    settings = {} if checkpoint is None else {  # the checkpoint's key (hashing the data costs a pass over it)
        "n_way": n_way, "n_shot": n_shot, "n_query": n_query, "episodes_per_epoch": episodes_per_epoch,
        "epochs": epochs, "val_episodes": val_episodes, "val_way": val_way, "lr": lr, "step_size": step_size,
        "gamma": gamma, "seed": seed, "stopping": asdict(rule), "model": repr(model),
        "train_data": train_data.fingerprint(), "val_data": None if val_data is None else val_data.fingerprint(),
        **(identity or {})}

    def validate(progress_bar: bool = progress) -> tuple[float, float]:
        mean, ci95, _ = evaluate_episodic(model, val_data, n_way=val_way, n_shot=n_shot, n_query=n_query,
                                          n_episodes=val_episodes, device=device, seed=seed + 1,
                                          progress=progress_bar, num_workers=num_workers, amp=amp)
        return mean, ci95

    prepare_model(model, device)  # before the optimiser: its moments take the weights' memory format
    optimizer = adam(model.parameters(), lr=lr)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=step_size, gamma=gamma)
    saved = _Checkpoint(checkpoint, rule, settings, model, optimizer, scheduler, device)
    with torch.random.fork_rng(devices=saved.cuda):
        torch.manual_seed(seed)
        run = saved.resume_or_start()
        loss_sum = torch.tensor(run.loss_sum, dtype=torch.float64, device=device)  # the running sums stay on
        correct = torch.tensor(run.correct, dtype=torch.int64, device=device)  # the device within an epoch
        bar = tqdm(total=total, initial=run.step, desc="train episodes", disable=not progress, leave=False)
        meter = dryrun.meter("training episodes", total - run.step, device)
        stopped = run.best.stopping.patience_spent  # a resumed run that had stopped early trains no more
        for batch in ([] if stopped else episode_batches(train_data, sampler, device=device,
                                                          num_workers=num_workers, start=run.step)):
            model.train()
            loss, hits = _train_step(model, optimizer, batch, n_way, amp)
            run.step += 1
            loss_sum += loss
            correct += hits
            bar.update()
            if meter.tick():
                break
            epoch_done = run.step % episodes_per_epoch == 0
            if epoch_done or run.step % checkpoint_every == 0:
                run.loss_sum, run.correct = loss_sum.item(), int(correct)  # waits for the device
                if epoch_done:
                    due = val_data is not None and run.best.stopping.due(run.step // episodes_per_epoch)
                    row = _end_of_epoch(run, model, optimizer, validate if due else None,
                                        episodes_per_epoch=episodes_per_epoch, queries_per_episode=n_way * n_query)
                    loss_sum.zero_()
                    correct.zero_()
                    scheduler.step()
                    bar.set_postfix(loss=f"{row['train_loss']:.3f}", val=f"{row['val_accuracy']:.3f}")
                    stopped = run.best.stopping.patience_spent
                saved.save(run)
                if stopped:
                    break
        bar.close()
        if meter.stopped and val_data is not None:  # a dry run: one validation pass, counted once per validation
            with dryrun.repeated(math.ceil(epochs / rule.eval_every)):
                validate(progress_bar=False)
    run.best.restore(model)
    model.eval()
    history = pd.DataFrame(run.history, columns=["epoch", "episodes", "lr", "train_loss", "train_accuracy",
                                                 "val_accuracy", "val_ci95"])
    history.attrs["best_epoch"] = run.best.stopping.best_step if run.best.weights is not None else epochs
    if val_data is not None:
        history.attrs["convergence"] = run.best.stopping.record()
    return history
