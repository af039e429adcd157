"""Time to build every embedded dataset from scratch with default options (budget: 2 minutes in all
on 2 CPU cores), then to load each again from the cache. Prints; asserts nothing.

Runs in a fresh temporary cache directory (``PROTOLAB_CACHE_DIR``), removed afterwards.

    python benchmarks/build_embedded_datasets.py
"""

from __future__ import annotations

import os
import tempfile
import time
from typing import Callable

import torch

BUDGET_S = 120.0


def _timed(build: Callable[[], object]) -> tuple[float, object]:
    start = time.perf_counter()
    result = build()
    return time.perf_counter() - start, result


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="protolab-bench-cache-") as cache:
        os.environ["PROTOLAB_CACHE_DIR"] = cache
        from protolab.data.digits import load_digits
        from protolab.data.glyph_zsl import describe_glyph_zsl, load_glyph_zsl
        from protolab.data.glyphs import load_digit_like_glyphs, load_glyphs
        from protolab.data.packaged import load_mnist_5k

        datasets: dict[str, Callable[[], object]] = {
            "digits": load_digits,
            "mnist-5k": load_mnist_5k,
            "glyphs": load_glyphs,
            "digit-like glyphs": load_digit_like_glyphs,
            "glyph-zsl": load_glyph_zsl,
        }
        print(f"CPU cores: {os.cpu_count()}, torch threads: {torch.get_num_threads()}, "
              f"load average before: {os.getloadavg()[0]:.2f}")
        print(f"{'dataset':<20}{'build (s)':>10}{'cached (s)':>12}  size")
        total = 0.0
        for name, load in datasets.items():
            seconds, data = _timed(load)
            cached, _ = _timed(load)
            total += seconds
            if name in ("digits", "mnist-5k"):
                size = f"{len(data[0])} train + {len(data[1])} test images, 10 classes"
            elif name == "glyph-zsl":
                stats = describe_glyph_zsl(data)
                size = (f"{stats['seen classes']} seen + {stats['unseen classes']} unseen classes, "
                        f"{stats['attributes']} attributes, {stats['feature dim']}-d features")
            else:
                size = f"{len(data)} images, {data.n_classes} classes, {len(set(data.groups))} scripts"
            print(f"{name:<20}{seconds:>10.1f}{cached:>12.2f}  {size}")
        print(f"{'total':<20}{total:>10.1f}  (budget {BUDGET_S:.0f} s: {'within' if total <= BUDGET_S else 'OVER'}; "
              f"load average after: {os.getloadavg()[0]:.2f})")


if __name__ == "__main__":
    main()
