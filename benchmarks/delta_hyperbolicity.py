"""Wall time of Gromov δ (protolab.delta.gromov.four_point_delta): one base point and all base points.

Times only ``four_point_delta`` on a precomputed float64 distance matrix of Gaussian points (the
work is data-independent: the max-min product does the same comparisons for any input). CPU rows
run with one torch thread and with all threads; CUDA rows are added when CUDA is available.

One base point is O(n^3); all base points are O(n^4) (about n/4 single-base-point products).
All base points at n = 1,500 take many minutes on a CPU, so by default they are measured at
smaller n and extrapolated with n^4 from the largest measured n, labelled as such
(``--run-full-all`` measures n = 1,500 too: 292 s of CPU time with one thread, measured on this 2-core
machine on 2026-11-24 — 745 s of wall time under a load average of 4–6; δ_rel 0.377 against 0.348 for one base
point). Medians over ``--repeats`` runs (one run for rows
after 5 s). With all threads only the smaller sizes run by default: on a shared 2-core machine
under load, two threads were 4-10x *slower* than one (17 s against 1.6 s for n = 1,500).
Prints numbers, asserts nothing.

    python benchmarks/delta_hyperbolicity.py                    # about 2-3 minutes on 2 cores
    python benchmarks/delta_hyperbolicity.py --devices cpu --one-sizes 1500 --all-sizes 200 300
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import time

import torch

from protolab.delta.gromov import four_point_delta, pairwise_distances, relative_delta

TARGET_ALL = 1500


def _distances(n: int, device: torch.device, seed: int = 0) -> torch.Tensor:
    points = torch.randn(n, 64, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return pairwise_distances(points).to(device)


def _time(fn, device: torch.device, repeats: int) -> tuple[float, float, float]:
    """Median wall time and median CPU time of this process for ``fn()``, and its value; stops repeating once
    5 s have been spent. On a shared machine the CPU time is the steadier number (wall time waits for cores)."""
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    times, cpu, value = [], [], None
    for _ in range(repeats):
        sync()
        start, start_cpu = time.perf_counter(), time.process_time()
        value = fn()
        sync()
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
        if sum(times) > 5.0:
            break
    return statistics.median(times), statistics.median(cpu), value


def _row(device: torch.device, threads: str, base: str, n: int, seconds: float, cpu: float | None, note: str,
         rel: float | None) -> None:
    rel_text = "" if rel is None else f"{rel:.4f}"
    cpu_text = "" if cpu is None else f"{cpu:,.2f}"
    print(f"| {device.type} | {threads} | {base} | {n:,} | {seconds:,.2f} | {cpu_text} | {rel_text} | {note} |")


def bench_device(device: torch.device, threads: int | None, one_sizes: list[int], all_sizes: list[int],
                 run_full_all: bool, repeats: int) -> None:
    label = "-" if threads is None else str(threads)
    previous = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        if device.type == "cuda":  # warm-up: CUDA context and kernels
            four_point_delta(_distances(64, device))
        for n in one_sizes:
            d = _distances(n, device)
            seconds, cpu, delta = _time(lambda: four_point_delta(d, base_point=0), device, repeats)
            _row(device, label, "one (p = 0)", n, seconds, cpu, "measured", relative_delta(delta, d))
        measured: dict[int, float] = {}
        sizes = sorted(set(all_sizes + ([TARGET_ALL] if run_full_all or device.type == "cuda" else [])))
        for n in sizes:
            d = _distances(n, device)
            seconds, cpu, delta = _time(lambda: four_point_delta(d), device, repeats)
            measured[n] = seconds
            _row(device, label, "all", n, seconds, cpu, "measured", relative_delta(delta, d))
        if measured and TARGET_ALL not in measured:
            largest = max(measured)
            estimate = measured[largest] * (TARGET_ALL / largest) ** 4
            _row(device, label, "all", TARGET_ALL, estimate, None, f"EXTRAPOLATED: n^4 from n = {largest}", None)
            if len(measured) >= 2:
                small, large = sorted(measured)[-2:]
                slope = math.log(measured[large] / measured[small]) / math.log(large / small)
                print(f"|   |   |   |   |   |   |   | measured exponent between n = {small} and {large}: {slope:.2f} |")
    finally:
        torch.set_num_threads(previous)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", nargs="+", default=None,
                        help="devices (default: cpu, plus cuda when available)")
    parser.add_argument("--one-sizes", nargs="+", type=int, default=[1500, 5000],
                        help="n for one base point")
    parser.add_argument("--all-sizes", nargs="+", type=int, default=[200, 300, 400, 500],
                        help="n for all base points on CPU (CUDA also runs n = 1,500)")
    parser.add_argument("--threaded-one-sizes", nargs="+", type=int, default=[1500],
                        help="n for one base point with all CPU threads")
    parser.add_argument("--threaded-all-sizes", nargs="+", type=int, default=[200, 300],
                        help="n for all base points with all CPU threads")
    parser.add_argument("--run-full-all", action="store_true",
                        help="also measure all base points at n = 1,500 on CPU (many minutes)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    devices = args.devices or (["cpu"] + (["cuda"] if torch.cuda.is_available() else []))
    cores = os.cpu_count() or 1
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"
    print(f"torch {torch.__version__}, {cores} CPU cores, float64, default torch threads "
          f"{torch.get_num_threads()}, load average {load} (shared machines make multi-thread rows noisy)")
    print("| device | threads | base points | n | wall s | CPU s | δ_rel | note |")
    print("|---|---|---|---|---|---|---|---|")
    for name in devices:
        device = torch.device(name)
        if device.type == "cuda":
            bench_device(device, None, args.one_sizes, [], True, args.repeats)
        else:
            bench_device(device, 1, args.one_sizes, args.all_sizes, args.run_full_all, args.repeats)
            if cores > 1:
                bench_device(device, cores, args.threaded_one_sizes, args.threaded_all_sizes, args.run_full_all,
                             args.repeats)


if __name__ == "__main__":
    main()
