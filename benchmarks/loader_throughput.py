"""Episode throughput on a full-size MiniImageNet: PIL decoding per episode vs the decoded cache.

Ways of feeding float 84×84 episodes of the 38,400 training images on the CPU, each timed over
``--seconds`` after a few warm-up episodes, for 5-way 1-shot 15-query (test) and 30-way 1-shot 15-query
(training) episodes:

(a)  today's file-backed path: every image decoded with PIL in the main thread (``decoded=False``);
(a') the file-backed path through :func:`protolab.training.loading.episode_batches` with ``--workers`` processes;
(b)  the decoded cache (:mod:`protolab.data.decoded`) in the main thread: one ``index_select`` per episode;
(c)  the decoded cache through :func:`protolab.training.loading.episode_batches` with ``num_workers=--workers``
     (episodes gathered ahead by a background thread);
(c') the decoded cache through a plain DataLoader with ``--workers`` worker processes: what (c) avoids,
     each uint8 episode handed over through a fresh shared-memory segment.

Also the one-off cache build (time and size) and the time of a load that finds the cache. Targets of
the paper-scale issue: (c) at least 10× (a), and at least 20,000 images/s from the cache on 2 cores.
Prints numbers; asserts nothing. The cache is built in a temporary folder (``PROTOLAB_CACHE_DIR``). Run
it as ``make bench`` does, with the runner's allocator settings (:mod:`protolab.runner.allocator`): with
glibc's defaults every float episode above 128 kB is page-faulted in afresh (the script says which applies).

    python benchmarks/loader_throughput.py                 # first writes 60,000 JPEGs to a temporary folder
    python benchmarks/loader_throughput.py --data DIR      # DIR holds miniImageNet/ (real, or paper_size_data.py's)
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from typing import Callable, Iterator

import torch
from torch.utils.data import DataLoader, Dataset

from paper_size_data import write_mini_imagenet
from protolab.data.decoded import cache_path
from protolab.data.fewshot_sets import load_mini_imagenet
from protolab.training.episodes import EpisodeSampler, episode_images
from protolab.training.loading import device_images, episode_batches

PROTOCOLS = {"5-way 1-shot 15-query": (5, 1, 15), "30-way 1-shot 15-query": (30, 1, 15)}
WARM_UP = 3


def _rate(episodes: Iterator, seconds: float) -> float:
    """Episodes per second drawn from ``episodes`` over about ``seconds``, after :data:`WARM_UP` episodes."""
    for _ in range(WARM_UP):
        next(episodes)
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        next(episodes)
        count += 1
    return count / (time.perf_counter() - start)


class _RawEpisodes(Dataset):
    """Episode ``k`` of ``sampler`` as uint8 ``(support, query)``, for the worker processes of (c')."""

    def __init__(self, data, sampler) -> None:
        self.data, self.sampler = data, sampler

    def __getitem__(self, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        return episode_images(self.data, self.sampler[k], as_float=False)


def _timed(work: Callable[[], object]) -> tuple[float, object]:
    start = time.perf_counter()
    result = work()
    return time.perf_counter() - start, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, help="folder holding miniImageNet/ (default: generate one)")
    parser.add_argument("--workers", type=int, default=2, help="num_workers of (a'), (c), (c') (default 2)")
    parser.add_argument("--seconds", type=float, default=4.0, help="timing of each measurement (default 4)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    allocator = "the runner's" if "MALLOC_MMAP_THRESHOLD_" in os.environ else "glibc's default"
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at the start, {allocator} malloc settings")
    with tempfile.TemporaryDirectory(prefix="protolab-loader-bench-") as temporary:
        os.environ["PROTOLAB_CACHE_DIR"] = str(Path(temporary) / "cache")
        root = args.data
        if root is None:
            root = Path(temporary) / "data"
            seconds, _ = _timed(lambda: write_mini_imagenet(root))
            print(f"generated 60,000 JPEGs (84×84, 64/16/20 classes × 600) in {seconds:.0f} s")
        seconds, files = _timed(lambda: load_mini_imagenet(root, decoded=False))
        print(f"file-backed load (every file checked to decode): {seconds:.1f} s")
        build, decoded = _timed(lambda: load_mini_imagenet(root))
        size = sum(cache_path(split).stat().st_size for split in decoded)
        print(f"decoded cache: built once in {build:.1f} s, {size / 1e9:.2f} GB for {sum(map(len, decoded)):,} images")
        again, decoded = _timed(lambda: load_mini_imagenet(root))
        print(f"load that finds the cache (stat of every file + checksum of the arrays): {again:.1f} s")

        cpu = torch.device("cpu")
        print(f"\n{'episodes':24s} {'path':42s} {'episodes/s':>11s} {'images/s':>10s} {'× (a)':>7s}")
        for name, (way, shot, query) in PROTOCOLS.items():
            per_episode = way * (shot + query)
            sampler = EpisodeSampler(decoded.train.labels, way, shot, query, n_episodes=10**6, seed=0)
            processes = DataLoader(_RawEpisodes(decoded.train, sampler), batch_size=None, sampler=range(len(sampler)),
                                   num_workers=args.workers)
            ways = {
                "(a)  PIL decode, main thread": (episode_images(files.train, e) for e in sampler),
                f"(a') PIL decode, {args.workers} worker processes": episode_batches(
                    files.train, sampler, device=cpu, num_workers=args.workers),
                "(b)  decoded cache, main thread": (episode_images(decoded.train, e) for e in sampler),
                f"(c)  decoded cache, episode_batches({args.workers})": episode_batches(
                    decoded.train, sampler, device=cpu, num_workers=args.workers),
                f"(c') decoded cache, {args.workers} worker processes": (
                    tuple(device_images(part, cpu) for part in episode) for episode in processes),
            }
            baseline = None
            for label, episodes in ways.items():
                rate = _rate(iter(episodes), args.seconds)
                baseline = baseline or rate
                print(f"{name:24s} {label:42s} {rate:11.1f} {rate * per_episode:10,.0f} {rate / baseline:7.1f}")
                episodes.close()
    print(f"load average {os.getloadavg()[0]:.2f} at the end")


if __name__ == "__main__":
    main()
