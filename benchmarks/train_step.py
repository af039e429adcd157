"""Milliseconds per training step (forward, backward, fused Adam) of each full-profile model at paper batch sizes.

Models and inputs (random tensors, shapes as in the full profiles):

- ProtoNets on one 30-way 1-shot 15-query episode of 84 × 84 RGB images (480 images through the backbone),
  hyperbolic head with the Riemannian gradient, ``dim`` and ``c`` of the official MiniImageNet 1-shot
  configs (:mod:`protolab.fewshot.configs`): Conv4-1600, ResNet-12 and ResNet-18. On the CPU the two
  ResNets get 1 query per class (60 images; marked ``*``, with the time scaled linearly to 480 images
  beside it): a step grows the process by about 34 MiB (ResNet-12) and 30 MiB (ResNet-18) per image,
  ≈ 17 and 15 GiB for a paper-size episode, so the CPU rows time 60 images;
- IPN at the official widths (prototypes and scoring MLP 2048, graph 256) on a 30-way episode
  (1 support + 1 query per class) of CUB-sized 2048-d features: 150 seen classes, 312 attributes
  (:func:`protolab.zsl.fit.episode_loss`, consistency weight 1);
- the re-ID model (:func:`protolab.reid.model.build_reid_model`): ResNet-50 trunk, hyperbolic head of the full
  profile (dim 512, c 0.1), 751 identities, batch 32 of 256 × 128 images.

Each model is built and fed the way the training loops do (:func:`protolab.training.loading.prepare_model`: channels-last
on CUDA; :func:`protolab.training.loops.autocast` for amp, bfloat16; the loss in float32). Times are the mean over a few
steps after one warm-up step (Adam state, oneDNN/cuDNN algorithm choice), on the CPU with one thread and with
every core (float32), and on CUDA when present (float32 and amp). Run through ``make bench``; prints only.
``python benchmarks/train_step.py protonet-conv4-1600 ipn`` times only the models named (see :data:`MODELS`).
"""

from __future__ import annotations

import itertools
import os
import sys
import time
from typing import Callable

import torch

from protolab.backbones import build_backbone
from protolab.training.episodes import EpisodeSampler
from protolab.fewshot.configs import find_config
from protolab.zsl.ipn import IPN, IPNConfig, attribute_centres
from protolab.zsl.fit import TrainConfig, episode_loss
from protolab.training.loading import device_images, prepare_model
from protolab.fewshot.protonet import ProtoNet
from protolab.reid.model import build_reid_model
from protolab.training.loops import adam, autocast, cross_entropy_step, optimizer_step

Step = Callable[[bool], None]  # one training step, with or without amp
WAY, SHOT, QUERY, SIDE = 30, 1, 15, 84
CPU_QUERY = 1  # queries per class of the ResNet ProtoNets on the CPU (memory)


def protonet(backbone: str, cpu_query: int = QUERY) -> Callable[[torch.device], Step]:
    """A hyperbolic ProtoNet with the official MiniImageNet 1-shot config of ``backbone``, on one episode
    (``cpu_query`` queries per class on the CPU)."""
    config = find_config("miniimagenet", backbone, SHOT)

    def build(device: torch.device) -> Step:
        n_query = cpu_query if device.type == "cpu" else QUERY
        network = build_backbone(backbone, 3, config.dim if backbone == "conv4" else None)
        model = prepare_model(ProtoNet(network, "hyperbolic", c=config.c, riemannian=True), device).train()
        optimizer = adam(model.parameters(), lr=config.lr)
        support = device_images(torch.rand(WAY * SHOT, 3, SIDE, SIDE), device)
        query = device_images(torch.rand(WAY * n_query, 3, SIDE, SIDE), device)
        support_labels = torch.arange(WAY, device=device).repeat_interleave(SHOT)
        query_labels = torch.arange(WAY, device=device).repeat_interleave(n_query)

        def step(amp: bool) -> None:
            with autocast(device, amp=amp):
                logits = model(support, support_labels, query, WAY)
            cross_entropy_step(optimizer, logits, query_labels)

        return step

    return build


def ipn(device: torch.device) -> Step:
    """IPN at the official widths on 30-way episodes of CUB-sized features."""
    generator = torch.Generator().manual_seed(0)
    attributes = torch.rand(200, 312, generator=generator)
    labels = torch.arange(7057) % 150
    features = torch.randn(7057, 2048, generator=generator).relu()
    model = IPN(2048, attribute_centres(attributes[:150], 3),
                IPNConfig(prototype_dim=2048, graph_dim=256, hidden_dim=2048)).to(device).train()
    config = TrainConfig(lr=2e-5, n_way=30, n_shot=1, n_query=1, episode_unseen=0)
    optimizer = adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    sampler = EpisodeSampler(labels, config.n_way, config.n_shot, config.n_query, 100, seed=0)
    features, labels, attributes = features.to(device), labels.to(device), attributes.to(device)
    episodes = itertools.cycle(range(len(sampler)))

    def step(amp: bool) -> None:
        with autocast(device, amp=amp):
            loss, kl, _ = episode_loss(model, features, labels, attributes, sampler, next(episodes), config, generator)
        optimizer_step(optimizer, loss.float() + config.consistency_weight * kl.float())

    return step


def reid(device: torch.device) -> Step:
    """The re-ID model of the full profile on one batch of 32 images of 256 × 128."""
    model = prepare_model(build_reid_model("hyperbolic", backbone="resnet50", in_channels=3, dim=512, n_classes=751,
                                           c=0.1), device).train()
    optimizer = adam(model.parameters(), lr=3.5e-4, weight_decay=5e-4)
    images = device_images(torch.rand(32, 3, 256, 128), device)
    labels = torch.randint(751, (32,), generator=torch.Generator().manual_seed(0)).to(device)

    def step(amp: bool) -> None:
        with autocast(device, amp=amp):
            logits = model(images)
        cross_entropy_step(optimizer, logits, labels)

    return step


#: name → (builder, timed CPU steps, timed CUDA steps, paper batch / CPU batch)
MODELS: dict[str, tuple[Callable[[torch.device], Step], int, int, float]] = {
    "protonet-conv4-1600": (protonet("conv4"), 1, 20, 1.0),
    "protonet-resnet12": (protonet("resnet12", CPU_QUERY), 1, 20, (SHOT + QUERY) / (SHOT + CPU_QUERY)),
    "protonet-resnet18": (protonet("resnet18", CPU_QUERY), 1, 20, (SHOT + QUERY) / (SHOT + CPU_QUERY)),
    "ipn": (ipn, 5, 50, 1.0),
    "reid-resnet50": (reid, 2, 20, 1.0),
}


def ms_per_step(step: Step, device: torch.device, *, amp: bool, reps: int) -> float:
    """Mean wall time of ``reps`` steps after one warm-up step, in ms."""
    step(amp)
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(reps):
        step(amp)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / reps * 1e3


def main(names: list[str]) -> None:
    unknown = sorted(set(names) - set(MODELS))
    if unknown:
        raise SystemExit(f"unknown model(s) {', '.join(unknown)}; choose from {', '.join(MODELS)}")
    cores = len(os.sched_getaffinity(0))
    runs = [("cpu", 1, False)] + ([("cpu", cores, False)] if cores > 1 else [])
    runs += [("cuda", 0, False), ("cuda", 0, True)] if torch.cuda.is_available() else []
    titles = [f"cpu {threads} thr" if kind == "cpu" else f"cuda {'amp' if amp else 'fp32'}" for kind, threads, amp in runs]
    print("ms per training step (forward + backward + fused Adam); paper batch sizes, random inputs")
    print(f"{'model':<22}" + "".join(f"{title:>22}" for title in titles))
    for name in names or MODELS:
        build, cpu_reps, cuda_reps, cpu_scale = MODELS[name]
        cells, steps = [], {}
        for kind, threads, amp in runs:
            if kind == "cpu":
                torch.set_num_threads(threads)
            device = torch.device(kind)
            step = steps.setdefault(kind, build(device))
            ms = ms_per_step(step, device, amp=amp, reps=cpu_reps if kind == "cpu" else cuda_reps)
            scaled = kind == "cpu" and cpu_scale != 1
            cells.append(f"{ms:.1f}* (≈{ms * cpu_scale:.0f})" if scaled else f"{ms:.1f}")
        print(f"{name:<22}" + "".join(f"{cell:>22}" for cell in cells), flush=True)
    print(f"* CPU: {WAY}-way {SHOT}-shot {CPU_QUERY}-query episode ({WAY * (SHOT + CPU_QUERY)} images); "
          f"≈ linear scaling to the paper's {WAY * (SHOT + QUERY)}")
    torch.set_num_threads(cores)


if __name__ == "__main__":
    main(sys.argv[1:])
