"""Feature extractors selected by name: images ``(B, C, H, W)`` → features ``(B, dim)``."""

from __future__ import annotations

from pathlib import Path

import torch
import torchvision
from torch import nn
from torch.nn import functional as F

BACKBONES = ("small_cnn", "conv4", "resnet12", "resnet18")


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


class GlyphFeatureCNN(nn.Module):
    """glyph-zsl's feature network (:mod:`protolab.data.glyph_zsl`): three :func:`conv_block` (16, 32, 64
    channels, each halving the side) and a ReLU feature layer that keeps where the ink is (accents above vs
    below), then dropout (0.2) and a linear classifier.

    ``features``: images ``(B, 1, S, S)`` (``S`` a multiple of 8) → ``(B, feature_dim)``, non-negative;
    ``forward``: images → logits ``(B, n_classes)``.
    """

    def __init__(self, image_size: int, feature_dim: int, n_classes: int):
        super().__init__()
        self.features = nn.Sequential(
            conv_block(1, 16), conv_block(16, 32), conv_block(32, 64),
            nn.Flatten(), nn.Linear(64 * (image_size // 8) ** 2, feature_dim), nn.ReLU(),
        )
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(feature_dim, n_classes))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(images))


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


def drop_block(x: torch.Tensor, drop_rate: torch.Tensor | float, block_size: int) -> torch.Tensor:
    r"""DropBlock (Ghiasi et al. 2018) as the official ResNet-12 applies it: zero random
    ``block_size`` × ``block_size`` squares of each channel map, rescale the rest.

    Square centres are drawn in the valid region with probability

    .. math::

        \gamma = \frac{r}{s^2}\,\frac{HW}{(H - s + 1)(W - s + 1)}

    for drop rate :math:`r` and block size :math:`s` (clipped to the map), and the kept activations
    are scaled by (number of activations) / (number kept). ``drop_rate`` may be a 0-dim tensor (no
    device sync). Shape ``(B, C, H, W)`` → same.
    """
    batch, channels, height, width = x.shape
    size = min(block_size, height, width)
    gamma = torch.as_tensor(drop_rate, dtype=torch.float32, device=x.device) * (
        height * width / (size * size * (height - size + 1) * (width - size + 1)))
    centres = torch.bernoulli(gamma.expand(batch, channels, height - size + 1, width - size + 1))
    dropped = F.max_pool2d(F.pad(centres, [size - 1] * 4), size, stride=1)  # (B, C, H, W), 1 = dropped
    keep = 1 - dropped
    return x * (keep * (keep.numel() / keep.sum().clamp_min(1))).to(x.dtype)


class ResBlock12(nn.Module):
    """One ResNet-12 block: three 3×3 conv-BN (LeakyReLU(0.1) after the first two), plus a 1×1 conv-BN
    shortcut, LeakyReLU(0.1), 2×2 max-pool: ``(B, in, H, W)`` → ``(B, out, H/2, W/2)``."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()

        def conv_bn(cin: int, kernel: int) -> list[nn.Module]:
            return [nn.Conv2d(cin, out_channels, kernel, padding=kernel // 2, bias=False), nn.BatchNorm2d(out_channels)]

        self.body = nn.Sequential(*conv_bn(in_channels, 3), nn.LeakyReLU(0.1), *conv_bn(out_channels, 3),
                                  nn.LeakyReLU(0.1), *conv_bn(out_channels, 3))
        self.shortcut = nn.Sequential(*conv_bn(in_channels, 1))
        self.out = nn.Sequential(nn.LeakyReLU(0.1), nn.MaxPool2d(2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.body(x) + self.shortcut(x))


class ResNet12(nn.Module):
    """ResNet-12 of the official hyperbolic few-shot code (``examples/fewshot/networks/ResNet12.py``,
    after TADAM and MetaOptNet): four :class:`ResBlock12` of widths 64-128-256-512, then a global
    max-pool: ``(B, C, 84, 84)`` → ``(B, 512)`` (84 → 42 → 21 → 10 → 5 before the pool).

    The widths are the official code's, read from that file, not the 64-160-320-640 of MetaOptNet:
    the paper's ResNet-12 embeddings are 512-d (its configs pass ``--dim 512``). As there, convolutions
    are Kaiming-normal (fan-out, leaky ReLU) without bias, and with ``drop_rate`` > 0 training applies
    dropout after blocks 1-2 and :func:`drop_block` (size 5) after blocks 3-4, whose rate rises linearly
    from 0 to ``drop_rate`` over ``ramp_steps`` forward passes (official: 0.1 over 20·2000). Difference:
    the official counter also counts evaluation passes; ours (the ``steps`` buffer, saved with the
    weights) counts training passes only.
    """

    def __init__(self, in_channels: int = 3, widths: tuple[int, ...] = (64, 128, 256, 512), drop_rate: float = 0.1,
                 block_size: int = 5, ramp_steps: int = 40_000):
        super().__init__()
        self.blocks = nn.ModuleList(ResBlock12(cin, cout) for cin, cout in zip((in_channels, *widths), widths))
        self.pool = nn.AdaptiveMaxPool2d(1)
        self.drop_rate, self.block_size, self.ramp_steps = drop_rate, block_size, ramp_steps
        self.register_buffer("steps", torch.zeros((), dtype=torch.long))
        self.dim = widths[-1]
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="leaky_relu")

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = images
        dropping = self.training and self.drop_rate > 0
        if dropping:
            self.steps += 1
            block_rate = self.drop_rate * (self.steps / self.ramp_steps).clamp(max=1)
        for index, block in enumerate(self.blocks):
            x = block(x)
            if dropping and index < len(self.blocks) // 2:
                x = F.dropout(x, p=self.drop_rate)
            elif dropping:
                x = drop_block(x, block_rate, self.block_size)
        return self.pool(x).flatten(1)


def build_backbone(name: str, in_channels: int, dim: int | None = None) -> nn.Module:
    """``"small_cnn"`` (needs ``dim``), ``"conv4"``, ``"resnet12"`` or ``"resnet18"`` (both 512-d).

    Memory format is the training loop's business: :func:`protolab.training.loading.prepare_model` puts a model's
    weights in channels-last on CUDA (same values, faster convolutions).
    """
    if name == "small_cnn":
        return SmallCNN(in_channels, dim or 2)
    if name == "conv4":
        return Conv4(in_channels, dim=dim)
    if name == "resnet12":
        return ResNet12(in_channels)
    if name == "resnet18":
        return ResNet18(in_channels)
    raise ValueError(f"unknown backbone {name!r}; choose {', '.join(BACKBONES)}")


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
