"""Throughput of the hyperbolic heads against their Euclidean counterparts (forward + backward).

Table 1: ToPoincare + HyperbolicMLR vs nn.Linear, cross-entropy loss, gradients w.r.t. the input
features and the head's parameters. Table 2: prototype logits, -pairwise_dist (hyperbolic) vs
-squared Euclidean distance, at few-shot episode sizes. Timings are medians over ``--repeats``
steps after ``--warmup`` steps; CUDA is synchronised around every step. No assertions.

    python benchmarks/hyperbolic_heads.py                 # CPU, and CUDA when available
    python benchmarks/hyperbolic_heads.py --devices cpu --threads 1
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import warnings
from collections.abc import Callable

import torch
from torch import nn
from torch.nn import functional as F

from protolab.core.reproducibility import resolve_device, seed_everything

with warnings.catch_warnings():  # geoopt's torch.jit.script use warns at import on recent torch
    warnings.simplefilter("ignore", FutureWarning)
    warnings.simplefilter("ignore", DeprecationWarning)
    from protolab.hyperbolic import HyperbolicMLR, ToPoincare, pairwise_dist


def _time_step(step: Callable[[], None], device: torch.device, warmup: int, repeats: int) -> float:
    """Median wall time of ``step()`` in seconds."""
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    for _ in range(warmup):
        step()
    sync()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _head_step(head: nn.Module, x: torch.Tensor, y: torch.Tensor) -> Callable[[], None]:
    def step() -> None:
        head.zero_grad(set_to_none=True)
        x.grad = None
        F.cross_entropy(head(x), y).backward()

    return step


def _proto_step(logits_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], q: torch.Tensor,
                protos: torch.Tensor, y: torch.Tensor) -> Callable[[], None]:
    def step() -> None:
        q.grad = None
        protos.grad = None
        F.cross_entropy(logits_fn(q, protos), y).backward()

    return step


def bench_heads(device: torch.device, batch: int, dims: list[int], classes: list[int], c: float,
                warmup: int, repeats: int) -> list[dict]:
    rows = []
    for dim in dims:
        for n_classes in classes:
            x = torch.randn(batch, dim, device=device, requires_grad=True)
            y = torch.randint(0, n_classes, (batch,), device=device)
            heads = {
                "euclidean": nn.Linear(dim, n_classes),
                "hyperbolic": nn.Sequential(ToPoincare(c), HyperbolicMLR(dim, n_classes, c)),
            }
            timings = {name: _time_step(_head_step(head.to(device), x, y), device, warmup, repeats)
                       for name, head in heads.items()}
            rows.append({"device": device.type, "batch": batch, "dim": dim, "classes": n_classes,
                         **{name: batch / t for name, t in timings.items()},
                         "slowdown": timings["hyperbolic"] / timings["euclidean"]})
    return rows


def bench_prototypes(device: torch.device, dim: int, episodes: list[tuple[int, int]], c: float,
                     warmup: int, repeats: int) -> list[dict]:
    rows = []
    fns = {
        "euclidean": lambda q, p: -torch.cdist(q, p).pow(2),
        "hyperbolic": lambda q, p: -pairwise_dist(q, p, c=c),
    }
    for n_query, n_way in episodes:
        q = (torch.randn(n_query, dim, device=device) * 0.01).requires_grad_(True)
        protos = (torch.randn(n_way, dim, device=device) * 0.01).requires_grad_(True)
        y = torch.randint(0, n_way, (n_query,), device=device)
        timings = {name: _time_step(_proto_step(fn, q, protos, y), device, warmup, repeats)
                   for name, fn in fns.items()}
        rows.append({"device": device.type, "queries": n_query, "way": n_way, "dim": dim,
                     **{name: n_query / t for name, t in timings.items()},
                     "slowdown": timings["hyperbolic"] / timings["euclidean"]})
    return rows


def _print_table(title: str, rows: list[dict], keys: list[str]) -> None:
    print(f"\n{title}")
    header = keys + ["euclidean samples/s", "hyperbolic samples/s", "hyp/euc time"]
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" for _ in header) + "|")
    for row in rows:
        cells = [str(row[k]) for k in keys]
        cells += [f"{row['euclidean']:,.0f}", f"{row['hyperbolic']:,.0f}", f"{row['slowdown']:.1f}x"]
        print("| " + " | ".join(cells) + " |")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", nargs="+", default=None,
                        help="devices to run on (default: cpu, plus cuda when available)")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--dims", type=int, nargs="+", default=[64, 512])
    parser.add_argument("--classes", type=int, nargs="+", default=[10, 100])
    parser.add_argument("--c", type=float, default=0.05, help="curvature magnitude of the ball")
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    args = parser.parse_args(argv)

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    if args.devices is None:
        devices = [torch.device("cpu")]
        auto = resolve_device("auto")
        if auto.type == "cuda":
            devices.append(auto)
    else:
        devices = [resolve_device(d) for d in args.devices]

    seed_everything(0)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"torch {torch.__version__}, CPU threads {torch.get_num_threads()} of {os.cpu_count()} cores "
          f"(1-min load {load:.1f}), c = {args.c}, median of {args.repeats} steps after {args.warmup} warm-up")
    if load > (os.cpu_count() or 1) / 2:
        print("note: the machine is busy; multi-threaded CPU timings will be erratic (try --threads 1)")
    for device in devices:
        name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
        print(f"\n== {device} ({name}) ==")
        heads = bench_heads(device, args.batch, args.dims, args.classes, args.c, args.warmup, args.repeats)
        _print_table("Classification head, forward + backward (float32)", heads,
                     ["device", "batch", "dim", "classes"])
        protos = bench_prototypes(device, 1600, [(75, 5), (450, 30)], args.c, args.warmup, args.repeats)
        _print_table("Prototype logits (ProtoNet), forward + backward (float32)", protos,
                     ["device", "queries", "way", "dim"])


if __name__ == "__main__":
    main()
