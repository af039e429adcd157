"""Training and inference loops: seeded, with progress bars, device-agnostic."""

from __future__ import annotations

import pandas as pd
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm


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
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
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
