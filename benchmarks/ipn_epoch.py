"""Wall time of one IPN training epoch on CUB-sized synthetic tensors: the official 300 episodes.

7057 × 2048 features, 150 seen classes, 312 attributes; official widths (prototypes and scoring MLP 2048,
graph 256), official episodes (30 classes × (1 support + 1 query), none held out, ``episodes_rule="official"``:
300 per epoch on CUB). Runs on the CPU with one thread and with every core, and on CUDA when present;
prints the epoch time beside the time per episode. CPU rows come twice: IPN's linear maps on oneDNN (the
default, :mod:`protolab.core.onednn`) and on ``F.linear`` (MKL). The issue's target on 2 cores: ≤ 12 s per epoch.
Then the hyperbolic IPN (:mod:`protolab.zsl.hyperbolic_ipn`, c = 1, same widths and episodes) on every core (and
CUDA): what its arm costs beside IPN's.
The official code takes 256 s per 300-episode epoch on its authors' set-up (0.85–0.94 s per episode).
Run through ``make bench`` (the runner's allocator settings). Prints only.
"""

from __future__ import annotations

import os
import time

import torch

from protolab.zsl.ipn import IPNConfig, attribute_centres, ipn_model
from protolab.zsl.fit import TrainConfig, episodes_per_epoch, train_epochs
from protolab.core.onednn import onednn_available, use_onednn
from protolab.core.reproducibility import resolve_device

TARGET_SECONDS = 12.0


def epoch_seconds(device: torch.device, features: torch.Tensor, labels: torch.Tensor,
                  attributes: torch.Tensor, geometry: str = "euclidean") -> float:
    """Seconds of one training epoch (after a one-epoch warm-up of a smaller run)."""
    model_config = IPNConfig(prototype_dim=2048, graph_dim=256, hidden_dim=2048, geometry=geometry)
    config = TrainConfig(epochs=1, lr=2e-5, n_way=30, n_shot=1, n_query=1, episode_unseen=0,
                         episodes_rule="official")
    warm = ipn_model(2048, attribute_centres(attributes[:150], 3), model_config)
    train_epochs(warm, features, labels, attributes, TrainConfig(epochs=1, episodes_per_epoch=5), device,
                 progress=False)
    model = ipn_model(2048, attribute_centres(attributes[:150], 3), model_config)
    start = time.perf_counter()
    train_epochs(model, features, labels, attributes, config, device, progress=False)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def main() -> None:
    generator = torch.Generator().manual_seed(0)
    attributes = torch.rand(200, 312, generator=generator)
    labels = torch.arange(7057) % 150  # all 150 seen classes, 47 or 48 images each
    features = torch.randn(7057, 2048, generator=generator).relu()
    episodes = episodes_per_epoch(len(labels), TrainConfig(episodes_rule="official"))
    cores = len(os.sched_getaffinity(0))
    kernels = ["oneDNN", "F.linear"] if onednn_available() else ["F.linear"]
    runs = [("cpu", threads, kernel, "euclidean") for threads in sorted({1, cores}) for kernel in kernels]
    runs += [("cpu", cores, kernels[0], "hyperbolic")]
    runs += ([("cuda", torch.get_num_threads(), "F.linear", geometry) for geometry in ("euclidean", "hyperbolic")]
             if torch.cuda.is_available() else [])
    print(f"IPN epoch, CUB-sized tensors, official widths, {episodes} episodes (target ≤ {TARGET_SECONDS:g} s "
          f"on 2 cores; official code 256 s)")
    for name, threads, kernel, geometry in runs:
        torch.set_num_threads(threads)
        with use_onednn(kernel == "oneDNN"):
            seconds = epoch_seconds(resolve_device(name), features, labels, attributes, geometry)
        where = (f"cpu, {threads} thread{'s' * (threads > 1)}, {kernel}" if name == "cpu" else "cuda") + \
            (", hyperbolic" if geometry == "hyperbolic" else "")
        print(f"  {where:<40} {seconds:6.2f} s per epoch  {seconds / episodes * 1e3:6.1f} ms per episode  "
              f"{256 / seconds:5.1f}× the official code's epoch")


if __name__ == "__main__":
    main()
