"""Feature extractors selected by name: images ``(B, C, H, W)`` → features ``(B, dim)``."""

from __future__ import annotations

import torch
import torchvision
from torch import nn


class SmallCNN(nn.Module):
    """The hyperbolic paper's MNIST network: conv(20, 5) → pool → conv(50, 5) → pool → fc(500) → fc(dim).

    Works for any input side ≥ 8 (an adaptive pool fixes the spatial size before the first fc).
    """

    def __init__(self, in_channels: int = 1, dim: int = 2, hidden: int = 500):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 20, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(20, 50, 5, padding=2), nn.ReLU(), nn.AdaptiveMaxPool2d(4),
        )
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(50 * 4 * 4, hidden), nn.ReLU(), nn.Linear(hidden, dim))
        self.dim = dim

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(images))


def conv_block(in_channels: int, out_channels: int) -> nn.Sequential:
    """3×3 conv → BatchNorm → ReLU → 2×2 max-pool (the ProtoNet block)."""
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 3, padding=1), nn.BatchNorm2d(out_channels),
                         nn.ReLU(), nn.MaxPool2d(2))


class Conv4(nn.Module):
    """Four conv blocks of ``width`` channels (Snell et al. 2017), flattened: ``(B, width·h·w)``.

    With ``dim`` set, the last block has ``dim`` channels and is max-pooled to 1×1, as in the
    hyperbolic paper's released configs (``dim`` = 1600 there).
    """

    def __init__(self, in_channels: int = 3, width: int = 64, dim: int | None = None):
        super().__init__()
        last = dim or width
        self.blocks = nn.Sequential(conv_block(in_channels, width), conv_block(width, width),
                                    conv_block(width, width), conv_block(width, last))
        self.pool = nn.AdaptiveMaxPool2d(1) if dim else nn.Identity()

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.pool(self.blocks(images)).flatten(1)


class ResNet18(nn.Module):
    """torchvision's ResNet-18 (untrained) with a 3×3 stem and no first max-pool for small inputs; 512-d."""

    def __init__(self, in_channels: int = 3):
        super().__init__()
        net = torchvision.models.resnet18(weights=None)
        net.conv1 = nn.Conv2d(in_channels, 64, 3, stride=1, padding=1, bias=False)
        net.maxpool = nn.Identity()
        net.fc = nn.Identity()
        self.net = net

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(images)


def build_backbone(name: str, in_channels: int, dim: int | None = None) -> nn.Module:
    """``"small_cnn"`` (needs ``dim``), ``"conv4"`` or ``"resnet18"``."""
    if name == "small_cnn":
        return SmallCNN(in_channels, dim or 2)
    if name == "conv4":
        return Conv4(in_channels, dim=dim)
    if name == "resnet18":
        return ResNet18(in_channels)
    raise ValueError(f"unknown backbone {name!r}; choose small_cnn, conv4 or resnet18")
