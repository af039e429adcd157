"""Milliseconds per episode of ``fewshot_tables``' default model: what one training and one test episode cost.

Model: the default ProtoNet (Conv4-64 on 1 × 28 × 28 glyphs, 15 queries per class), Euclidean and hyperbolic
(c = 0.25, the Poincaré head in float32 as always), built and fed as the training loops do
(:func:`protolab.training.loading.prepare_model`, :func:`protolab.training.loops.autocast`,
:func:`protolab.training.loops.cross_entropy_step`). Rows: a training step (forward, backward, fused Adam) on one
``way``-way ``shot``-shot episode, for the official ways (30 at 1-shot, 20 at 5-shot) and 10, in float32 and under
bfloat16 autocast (``amp``, hyperbolic); then a 5-way test episode (forward only, no gradient). One thread (as
each worker of ``make figures`` runs); mean of ``REPS`` steps after two warm-up steps; random images. Each table
runs in a fresh process, once on the AVX2 kernel paths the runner pins for notebooks
(:mod:`protolab.runner.kernel_paths`) and once on the CPU's native paths: bfloat16 has no fast kernels on the
AVX2 path, so ``amp`` is only worth measuring on the native one. Prints only.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import torch

from protolab.backbones import build_backbone
from protolab.fewshot.protonet import ProtoNet
from protolab.training.loading import device_images, prepare_model
from protolab.runner.kernel_paths import AVX2_PATHS
from protolab.training.loops import adam, autocast, cross_entropy_step

CPU, QUERY, SIDE, REPS = torch.device("cpu"), 15, 28, 4
WAYS = {1: (30, 10), 5: (20, 10)}
COLUMNS = (("euclidean", False), ("hyperbolic", False), ("hyperbolic", True))


def episode(way: int, shot: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    support = device_images(torch.rand(way * shot, 1, SIDE, SIDE, generator=generator), CPU)
    query = device_images(torch.rand(way * QUERY, 1, SIDE, SIDE, generator=generator), CPU)
    return support, torch.arange(way).repeat_interleave(shot), query, torch.arange(way).repeat_interleave(QUERY)


def model(geometry: str) -> ProtoNet:
    torch.manual_seed(0)
    return prepare_model(ProtoNet(build_backbone("conv4", 1, 64), geometry, c=0.25), CPU)


def timed(step, reps: int = REPS) -> float:
    """Mean ms of ``reps`` calls of ``step`` after two warm-up calls."""
    step(), step()
    start = time.perf_counter()
    for _ in range(reps):
        step()
    return (time.perf_counter() - start) / reps * 1e3


def train_ms(geometry: str, way: int, shot: int, amp: bool) -> float:
    network = model(geometry).train()
    optimizer = adam(network.parameters(), lr=1e-3)
    support, support_labels, query, query_labels = episode(way, shot)

    def step() -> None:
        with autocast(CPU, amp=amp):
            logits = network(support, support_labels, query, way)
        cross_entropy_step(optimizer, logits, query_labels)

    return timed(step)


def test_ms(geometry: str, shot: int, amp: bool) -> float:
    network = model(geometry).eval()
    support, support_labels, query, _ = episode(5, shot)

    def step() -> None:
        with torch.no_grad(), autocast(CPU, amp=amp):
            network(support, support_labels, query, 5)

    return timed(step, 5 * REPS)


def table() -> None:
    """The rows of this process's kernel path."""
    torch.set_num_threads(1)
    print(f"{'episode':<34}{'euclidean fp32':>16}{'hyperbolic fp32':>17}{'hyperbolic amp':>16}")
    widths = (16, 17, 16)
    for shot, ways in WAYS.items():
        for way in ways:
            cells = [train_ms(geometry, way, shot, amp) for geometry, amp in COLUMNS]
            print(f"{f'train {way}-way {shot}-shot ({way * (shot + QUERY)} images)':<34}"
                  + "".join(f"{ms:>{width}.1f}" for ms, width in zip(cells, widths)), flush=True)
    for shot in WAYS:
        cells = [test_ms(geometry, shot, amp) for geometry, amp in COLUMNS]
        print(f"{f'test 5-way {shot}-shot ({5 * (shot + QUERY)} images)':<34}"
              + "".join(f"{ms:>{width}.1f}" for ms, width in zip(cells, widths)), flush=True)


def main() -> None:
    print("fewshot_tables default model (Conv4-64, 28 × 28, 15 queries), one thread: ms per episode")
    native = {key: value for key, value in os.environ.items() if key not in AVX2_PATHS}
    for title, environment in (("AVX2 kernel paths (as the notebooks run)", {**native, **AVX2_PATHS}),
                               ("native kernel paths (PROTOLAB_NATIVE_KERNELS=1)", native)):
        print(f"-- {title}", flush=True)
        subprocess.run([sys.executable, __file__, "--table"], env=environment, check=True)


if __name__ == "__main__":
    if sys.argv[1:] == ["--table"]:
        table()
    else:
        main()
