"""Wall time of one IPN training epoch on CUB-sized synthetic tensors, on CPU and (if present) CUDA.

7057 × 2048 features, 150 seen / 50 unseen classes, 312 attributes; official widths (prototypes and
scoring MLP 2048, graph 256), 30-way episodes of 1 support + 1 query image. Prints only.
"""

from __future__ import annotations

import time

import torch

from protolab.ipn import IPN, IPNConfig, attribute_centres
from protolab.ipn_fit import TrainConfig, episodes_per_epoch, train_epochs
from protolab.reproducibility import resolve_device


def main() -> None:
    generator = torch.Generator().manual_seed(0)
    attributes = torch.rand(200, 312, generator=generator)
    labels = torch.arange(7057) % 150  # all 150 seen classes, 47 or 48 images each
    features = torch.randn(7057, 2048, generator=generator).relu()
    model_config = IPNConfig(prototype_dim=2048, graph_dim=256, hidden_dim=2048)
    config = TrainConfig(epochs=1, n_way=30, n_shot=1, n_query=1, episode_unseen=5)
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    for name in devices:
        device = resolve_device(name)
        model = IPN(2048, attribute_centres(attributes[:150], 3), model_config)
        start = time.perf_counter()
        train_epochs(model, features, labels, attributes, config, device, progress=False)
        if device.type == "cuda":
            torch.cuda.synchronize()
        episodes = episodes_per_epoch(len(labels), config)
        print(f"{device.type}: one epoch ({episodes} episodes) in {time.perf_counter() - start:.2f} s")


if __name__ == "__main__":
    main()
