"""Training and inference loops: seeded, with progress bars, device-agnostic."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from protolab.runner.atomic import atomic_write
from protolab.data.images import LabeledImages
from protolab.episodes import Episode, EpisodeSampler, episode_images
from protolab.metrics import mean_ci95


def adam(parameters, *, lr: float, weight_decay: float = 0.0) -> torch.optim.Adam:
    """Adam with its fused kernel (CPU and CUDA): one pass over all parameters per step instead of a
    few per tensor, 6× faster than the default for IPN's 20 M parameters on one CPU thread. Results
    differ from the unfused update in the last bits only."""
    return torch.optim.Adam(parameters, lr=lr, weight_decay=weight_decay, fused=True)


def fit_classifier(model: nn.Module, data: Dataset, *, epochs: int, batch_size: int, lr: float,
                   device: torch.device, seed: int, weight_decay: float = 0.0, progress: bool = True,
                   description: str = "train") -> pd.DataFrame:
    """Train ``model`` (images → logits) with Adam and cross-entropy; one row of history per epoch.

    Returns a DataFrame with columns ``epoch``, ``loss`` (mean over the epoch's batches) and
    ``accuracy`` (on the training batches as seen during the epoch).
    """
    generator = torch.Generator().manual_seed(seed)
    loader = DataLoader(data, batch_size=batch_size, shuffle=True, generator=generator)
    model.to(device).train()
    optimizer = adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    history = []
    for epoch in tqdm(range(1, epochs + 1), desc=description, disable=not progress, leave=False):
        total_loss, correct, seen = 0.0, 0, 0
        for images, labels in loader:
            images, labels = images.to(device), labels.to(device)
            logits = model(images)
            loss = nn.functional.cross_entropy(logits, labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total_loss += loss.item() * len(labels)
            correct += int((logits.argmax(1) == labels).sum())
            seen += len(labels)
        history.append({"epoch": epoch, "loss": total_loss / seen, "accuracy": correct / seen})
    model.eval()
    return pd.DataFrame(history)


@torch.no_grad()
def apply_batched(module: nn.Module, data: Dataset, *, batch_size: int, device: torch.device) -> torch.Tensor:
    """``module`` applied to every image of ``data`` in order, in eval mode: ``(N, ...)`` on the CPU."""
    module.to(device).eval()
    loader = DataLoader(data, batch_size=batch_size, shuffle=False)
    return torch.cat([module(images.to(device)).cpu() for images, _ in loader])


def _episode_logits(model: nn.Module, data: LabeledImages, episode: Episode, n_way: int,
                    device: torch.device) -> torch.Tensor:
    """``model(support_images, support_labels, query_images, n_way)`` → logits ``(n_way·n_query, n_way)``."""
    support, query = episode_images(data, episode)
    return model(support.to(device), episode.support_labels.to(device), query.to(device), n_way)


def _require_queries(n_query: int) -> None:
    if n_query < 1:
        raise ValueError(f"episodic training and evaluation score queries: n_query must be ≥ 1, got {n_query!r}")


def _train_step(model: nn.Module, optimizer: torch.optim.Optimizer, data: LabeledImages, episode: Episode,
                n_way: int, device: torch.device) -> tuple[float, int]:
    """One optimisation step on one episode; returns its query loss and number of correct queries."""
    logits = _episode_logits(model, data, episode, n_way, device)
    labels = episode.query_labels.to(device)
    loss = nn.functional.cross_entropy(logits, labels)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss.item(), int((logits.argmax(1) == labels).sum())


@torch.no_grad()
def evaluate_episodic(model: nn.Module, data: LabeledImages, *, n_way: int, n_shot: int, n_query: int,
                      n_episodes: int, device: torch.device, seed: int,
                      progress: bool = True) -> tuple[float, float, torch.Tensor]:
    r"""Few-shot accuracy of ``model`` (eval mode) over ``n_episodes`` episodes of ``data``.

    Returns
    -------
    mean : float
        Mean accuracy over episodes, in [0, 1].
    ci95 : float
        95% confidence half-width :math:`1.96\,\sigma/\sqrt{n}` over the episodes (:func:`mean_ci95`).
    accuracies : torch.Tensor
        ``(n_episodes,)`` float64 accuracy of each episode; episode ``k`` depends only on ``(seed, k)``.
    """
    _require_queries(n_query)
    sampler = EpisodeSampler(data.labels, n_way, n_shot, n_query, n_episodes, seed=seed)
    model.to(device).eval()
    accuracies = torch.empty(n_episodes, dtype=torch.float64)
    for k, episode in enumerate(tqdm(sampler, desc="evaluate", disable=not progress, leave=False)):
        predictions = _episode_logits(model, data, episode, n_way, device).argmax(1).cpu()
        accuracies[k] = (predictions == episode.query_labels).double().mean()
    mean, ci95 = mean_ci95(accuracies)
    return mean, ci95, accuracies


def _cpu_copy(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {name: value.detach().to("cpu", copy=True) for name, value in state.items()}


def train_episodic(model: nn.Module, train_data: LabeledImages, val_data: LabeledImages | None, *, n_way: int,
                   n_shot: int, n_query: int, episodes_per_epoch: int, epochs: int, val_episodes: int, lr: float,
                   step_size: int, gamma: float, device: torch.device, seed: int, checkpoint: Path | None = None,
                   checkpoint_every: int = 50, val_way: int | None = None,
                   progress: bool = True) -> pd.DataFrame:
    """Episodic training with Adam and StepLR, best-on-validation selection, resumable checkpoints.

    ``model`` is called as ``model(support_images, support_labels, query_images, n_way)`` and returns
    query logits ``(n_way·n_query, n_way)`` (e.g. :class:`protolab.protonet.ProtoNet`).
    Training episode ``k`` (counted over the whole run) is episode ``k`` of one
    :class:`EpisodeSampler` of ``train_data`` seeded with ``seed``; the loss is the cross-entropy of
    the query logits. ``StepLR(step_size, gamma)`` steps once per epoch. After each epoch the model
    is evaluated on ``val_episodes`` fixed episodes of ``val_data`` (``val_way``-way, default
    ``n_way``; seed ``seed + 1``); at the end the weights with the best validation accuracy (the
    earliest on ties) are restored. With ``val_data=None`` the last weights are kept.

    With ``checkpoint`` set, the full training state (model, optimizer, scheduler, episode counter,
    the current epoch's running sums, history, best weights, random state) is written atomically
    after every epoch and every ``checkpoint_every`` episodes. If the file exists, training resumes
    from it: the episodes it counts as done are not repeated, and the run ends with the same
    weights and history as an uninterrupted one. A checkpoint written with other settings is refused.
    The global random state is left as it was (the loop runs in a forked RNG seeded from ``seed``).

    Returns
    -------
    pandas.DataFrame
        One row per epoch: ``epoch``, ``episodes`` (done so far), ``lr``, ``train_loss`` and
        ``train_accuracy`` (means over the epoch's episodes), ``val_accuracy`` and ``val_ci95``
        (NaN without ``val_data``); ``attrs["best_epoch"]`` is the epoch whose weights were kept.
    """
    _require_queries(n_query)
    total = epochs * episodes_per_epoch
    sampler = EpisodeSampler(train_data.labels, n_way, n_shot, n_query, total, seed=seed)
    if val_data is not None:  # fail on impossible validation episodes before training, not after an epoch
        EpisodeSampler(val_data.labels, val_way or n_way, n_shot, n_query, val_episodes, seed=seed + 1)
    if checkpoint_every < 1:
        raise ValueError(f"checkpoint_every must be a positive number of episodes, got {checkpoint_every!r}")
    settings = {"n_way": n_way, "n_shot": n_shot, "n_query": n_query, "episodes_per_epoch": episodes_per_epoch,
                "val_episodes": val_episodes, "val_way": val_way or n_way, "lr": lr, "step_size": step_size,
                "gamma": gamma, "seed": seed, "n_train": len(train_data)}
    model.to(device)
    optimizer = adam(model.parameters(), lr=lr)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=step_size, gamma=gamma)
    cuda = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda):
        torch.manual_seed(seed)
        state: dict[str, Any] = {"step": 0, "loss_sum": 0.0, "correct": 0, "history": [],
                                 "best_accuracy": -math.inf, "best_epoch": 0, "best_model": None}
        if checkpoint is not None and Path(checkpoint).exists():
            saved = torch.load(checkpoint, map_location="cpu", weights_only=True)
            if saved["settings"] != settings:
                raise ValueError(f"checkpoint {checkpoint} was written with settings {saved['settings']}, "
                                 f"not {settings}; delete it or point `checkpoint` elsewhere")
            model.load_state_dict(saved["model"])
            optimizer.load_state_dict(saved["optimizer"])
            scheduler.load_state_dict(saved["scheduler"])
            torch.set_rng_state(saved["rng"])
            if cuda:
                torch.cuda.set_rng_state(saved["cuda_rng"], device)
            state = {key: saved[key] for key in state}

        def save() -> None:
            if checkpoint is None:
                return
            contents = {
                **state, "settings": settings, "model": _cpu_copy(model.state_dict()),
                "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                "rng": torch.get_rng_state(),
                **({"cuda_rng": torch.cuda.get_rng_state(device)} if cuda else {}),
            }
            atomic_write(Path(checkpoint), lambda handle: torch.save(contents, handle))

        bar = tqdm(total=total, initial=state["step"], desc="train episodes", disable=not progress, leave=False)
        while state["step"] < total:
            model.train()
            episode = sampler[state["step"]]
            loss, correct = _train_step(model, optimizer, train_data, episode, n_way, device)
            state["step"] += 1
            state["loss_sum"] += loss
            state["correct"] += correct
            bar.update()
            bar.set_postfix(loss=f"{loss:.3f}")
            if state["step"] % episodes_per_epoch == 0:
                epoch = state["step"] // episodes_per_epoch
                row = {"epoch": epoch, "episodes": state["step"], "lr": optimizer.param_groups[0]["lr"],
                       "train_loss": state["loss_sum"] / episodes_per_epoch,
                       "train_accuracy": state["correct"] / (episodes_per_epoch * n_way * n_query),
                       "val_accuracy": math.nan, "val_ci95": math.nan}
                if val_data is not None:
                    row["val_accuracy"], row["val_ci95"], _ = evaluate_episodic(
                        model, val_data, n_way=val_way or n_way, n_shot=n_shot, n_query=n_query,
                        n_episodes=val_episodes, device=device, seed=seed + 1, progress=progress)
                    if row["val_accuracy"] > state["best_accuracy"]:
                        state.update(best_accuracy=row["val_accuracy"], best_epoch=epoch,
                                     best_model=_cpu_copy(model.state_dict()))
                state["history"].append(row)
                state.update(loss_sum=0.0, correct=0)
                scheduler.step()
                save()
                bar.set_postfix(loss=f"{row['train_loss']:.3f}", val=f"{row['val_accuracy']:.3f}")
            elif state["step"] % checkpoint_every == 0:
                save()
        bar.close()
    if state["best_model"] is not None:
        model.load_state_dict(state["best_model"])
    model.eval()
    history = pd.DataFrame(state["history"], columns=["epoch", "episodes", "lr", "train_loss", "train_accuracy",
                                                      "val_accuracy", "val_ci95"])
    history.attrs["best_epoch"] = state["best_epoch"] if state["best_model"] is not None else epochs
    return history
