"""CPU time and peak memory of ``protolab.metrics.reid_evaluate`` at Market-1501's size.

Random float32 distances between 3,368 queries and 19,732 gallery images (Market-1501's test split:
751 identities, 6 cameras, junk ``-1`` and distractor ``0`` gallery images). Each chunk size runs in a
fresh child process, so its peak resident memory (``resource.getrusage(...).ru_maxrss``, which sees
torch's allocations, unlike tracemalloc) is its own; the extra over the inputs is the evaluation's
working memory. Prints numbers, asserts nothing.

    python benchmarks/reid_evaluate.py                      # chunk sizes 64, 256 (default), 1024
    python benchmarks/reid_evaluate.py --chunk-sizes 256 --threads 1
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import time

import torch

N_QUERY, N_GALLERY, N_IDS, N_CAMERAS = 3368, 19732, 751, 6


def _peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


def _measure(chunk_size: int, threads: int, seed: int) -> dict:
    """Run in a child process: one reid_evaluate call, its CPU and wall time, peak RSS before and after."""
    from protolab.metrics import reid_evaluate

    torch.set_num_threads(threads)
    generator = torch.Generator().manual_seed(seed)
    distances = torch.rand(N_QUERY, N_GALLERY, generator=generator)
    query_ids = torch.randint(1, N_IDS + 1, (N_QUERY,), generator=generator)
    query_cameras = torch.randint(0, N_CAMERAS, (N_QUERY,), generator=generator)
    gallery_ids = torch.randint(-1, N_IDS + 1, (N_GALLERY,), generator=generator)
    gallery_cameras = torch.randint(0, N_CAMERAS, (N_GALLERY,), generator=generator)
    before = _peak_rss_bytes()
    cpu, wall = time.process_time(), time.perf_counter()
    result = reid_evaluate(distances, query_ids, query_cameras, gallery_ids, gallery_cameras,
                           chunk_size=chunk_size)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return {"chunk_size": chunk_size, "cpu_s": cpu, "wall_s": wall, "inputs_bytes": before,
            "extra_peak_bytes": _peak_rss_bytes() - before, "mAP": result["mAP"], "rank1": result["rank1"],
            "n_valid": result["n_valid_queries"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunk-sizes", type=int, nargs="+", default=[64, 256, 1024])
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(f"reid_evaluate on random float32 distances {N_QUERY} x {N_GALLERY}, {args.threads} torch thread(s)")
    print(f"{'chunk':>6} {'cpu s':>7} {'wall s':>7} {'extra peak MB':>14} {'bytes/element':>14} "
          f"{'peak RSS MB':>12} {'mAP':>7} {'valid q':>8}")
    context = multiprocessing.get_context("spawn")  # a fresh process per chunk size: its own peak RSS
    for chunk_size in args.chunk_sizes:
        with context.Pool(1) as pool:
            row = pool.apply(_measure, (chunk_size, args.threads, args.seed))
        elements = min(chunk_size, N_QUERY) * N_GALLERY
        print(f"{row['chunk_size']:>6} {row['cpu_s']:>7.2f} {row['wall_s']:>7.2f} "
              f"{row['extra_peak_bytes'] / 2**20:>14.1f} {row['extra_peak_bytes'] / elements:>14.1f} "
              f"{(row['inputs_bytes'] + row['extra_peak_bytes']) / 2**20:>12.1f} {row['mAP']:>7.4f} "
              f"{row['n_valid']:>8}")


if __name__ == "__main__":
    main()
