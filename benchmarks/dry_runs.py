"""Dry runs of the paper protocols on generated data in the real layouts, and the README's cost table.

Writes MiniImageNet, CUB (images and xlsa17 features), Market-1501, MNIST, Omniglot and Fashion-MNIST in their
real on-disk layouts at their real sizes (``--scale`` shrinks them, for tests) into a temporary folder, runs each
notebook's full profile with ``protolab run --dry-run`` (:mod:`protolab.core.dryrun`: every metered loop times a few
steps and stops) and prints, per protocol, the estimated wall time of the full run on this machine and the
peak memory. ``--readme`` replaces the table between ``<!-- cost:start -->`` and ``<!-- cost:end -->`` in
README.md. Data are random: only the time and memory mean anything.

    python benchmarks/dry_runs.py                      # every protocol below, full-size data (~30 min on 2 cores, 18 GiB)
    python benchmarks/dry_runs.py --only ipn_gzsl --scale 0.05
    python benchmarks/dry_runs.py --only ipn_gzsl --scale 0.05 --set ipn_gzsl.n_seeds=1   # a quicker check

``--set NOTEBOOK.KEY=VALUE`` overrides a parameter of that notebook's protocols; the estimate then prices the run
so changed (not the paper's protocol), so the README table is never written with it.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import NamedTuple

import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: the repository root, for tests.layouts
    sys.path.insert(0, str(ROOT))
from benchmarks.paper_size_data import scaled_count, write_mini_imagenet, write_scaled  # noqa: E402
from tests.layouts import write_cub, write_fashion_mnist, write_mnist, write_omniglot  # noqa: E402

from protolab.core.dryrun import format_duration, read_costs  # noqa: E402
from protolab.runner.execute import RunInterrupted, run_notebooks  # noqa: E402
from protolab.runner.processes import stopped_by_signals  # noqa: E402


class Protocol(NamedTuple):
    """One row of the table: a notebook, the profile it runs, overrides and the data it needs."""

    name: str
    notebook: str
    profile: str
    overrides: dict[str, str]
    data: tuple[str, ...]


PROTOCOLS = (
    Protocol("poincare_uncertainty", "poincare_uncertainty", "full", {}, ("mnist", "omniglot", "fashion-mnist")),
    Protocol("fewshot mini-conv4-1shot", "fewshot_tables", "full-mini-conv4-1shot", {}, ("miniimagenet",)),
    Protocol("fewshot cub-conv4-1shot", "fewshot_tables", "full-cub-conv4-1shot", {}, ("cub",)),
    Protocol("fewshot mini-resnet12-1shot", "fewshot_tables", "full-mini-resnet12-1shot", {}, ("miniimagenet",)),
    Protocol("fewshot mini-resnet18-1shot", "fewshot_tables", "full-mini-resnet18-1shot", {}, ("miniimagenet",)),
    Protocol("ipn_gzsl (CUB)", "ipn_gzsl", "full", {"dataset": "CUB"}, ("cub-xlsa17",)),
    Protocol("ipn_ablations (CUB)", "ipn_ablations", "full", {"dataset": "CUB"}, ("cub-xlsa17",)),
    Protocol("consistency_study (CUB)", "consistency_study", "full", {"dataset": "CUB"}, ("cub-xlsa17",)),
    Protocol("reid_embeddings (Market-1501)", "reid_embeddings", "full", {"dataset": "market1501"}, ("market1501",)),
    Protocol("delta_hyperbolicity (CUB)", "delta_hyperbolicity", "full", {"datasets": "[CUB]"}, ("cub-xlsa17",)),
)


def write_data(name: str, root: Path, scale: float) -> None:
    """Dataset ``name`` in its real layout under ``root``, at ``scale`` × its real size."""
    if name == "miniimagenet":
        write_mini_imagenet(root, images_per_class=scaled_count(600, scale, 20))
    elif name == "cub":
        classes = [f"{i:03d}.Bird_{i}" for i in range(1, 201)]
        write_cub(root, classes=classes, images_per_class=scaled_count(59, scale, 20))
    elif name in ("cub-xlsa17", "market1501"):
        write_scaled(name, root, scale)
    elif name == "mnist":
        write_mnist(root, n_train=scaled_count(60_000, scale, 200), n_test=scaled_count(10_000, scale, 100))
    elif name == "omniglot":
        alphabets = [f"Alphabet_{a}" for a in range(20)]
        write_omniglot(root, "images_evaluation", alphabets, characters=scaled_count(33, scale, 2),
                       drawers=scaled_count(20, scale, 2))
    elif name == "fashion-mnist":
        write_fashion_mnist(root, n=scaled_count(10_000, scale, 100))
    else:
        raise ValueError(f"unknown dataset {name!r}")


def dry_run(protocol: Protocol, data_root: Path, steps: int, runs_dir: Path,
            extra: dict[str, str] | None = None) -> dict:
    """Run ``protocol``'s dry run, with the parameters of ``extra`` changed; its row of the table."""
    overrides = {"data_root": str(data_root), **protocol.overrides, **(extra or {})}
    (result,) = run_notebooks([protocol.notebook], profile=protocol.profile, overrides=overrides, jobs=1,
                              timeout=3 * 3600, runs_dir=runs_dir, root=ROOT, dry_run=steps,
                              progress=lambda line: print(line, flush=True), bar=False)
    costs = read_costs(Path(result.output).with_name(f"{protocol.notebook}.cost.jsonl"))
    for loop in costs:
        print(f"  {loop.line()}", flush=True)
    peak = max((c.peak_memory_bytes for c in costs), default=None)  # None: the notebook has no metered loop
    return {"protocol": protocol.name, "profile": protocol.profile, "status": result.status,
            "dry run (s)": round(result.wall_time_s), "estimate_s": result.estimated_s,
            "peak memory (GiB)": "—" if peak is None else round(peak / 2**30, 1), "error": result.error}


def table_markdown(rows: list[dict], scale: float) -> str:
    """The README block: how it was made, then one row per protocol."""
    cpu = f"{os.cpu_count()} CPU cores ({platform.processor() or platform.machine()}), torch {torch.__version__}"
    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else "no GPU"
    lines = [f"_Generated by `python benchmarks/dry_runs.py --readme` on {date.today()}: {cpu}, {gpu}; random data in "
             f"the real layouts at {scale:g}× the real sizes; each full profile dry-run with `--dry-run` (a few timed "
             "steps of every loop, × the profile's steps). Estimates for this machine, one notebook at a time; grids "
             "count their cells as run by their workers; peak memory is the process's (GPU: CUDA allocations) at the "
             "end of its last metered loop, — where it has none. Not a measurement of a full run._", "",
             "| protocol | profile | full run, estimated | peak memory (GiB) | dry run (s) |", "|---|---|---|---|---|"]
    for row in rows:
        estimate = format_duration(row["estimate_s"]) if row["estimate_s"] is not None else f"failed: {row['error']}"
        lines.append(f"| {row['protocol']} | `{row['profile']}` | {estimate} | {row['peak memory (GiB)']} | "
                     f"{row['dry run (s)']} |")
    return "\n".join(lines)


def write_readme(block: str, readme: Path = ROOT / "README.md") -> None:
    """Replace the text between the cost markers of ``readme`` by ``block``."""
    text = readme.read_text()
    start, end = "<!-- cost:start -->", "<!-- cost:end -->"
    head, rest = text.split(start, 1)
    readme.write_text(f"{head}{start}\n{block}\n{end}{rest.split(end, 1)[1]}")


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", choices=[p.notebook for p in PROTOCOLS], help="notebooks to dry-run")
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the real dataset sizes (default 1)")
    parser.add_argument("--steps", type=int, default=2, help="timed steps per loop (default 2)")
    parser.add_argument("--readme", action="store_true", help="write the table into README.md")
    parser.add_argument("--set", nargs="+", default=[], metavar="NOTEBOOK.KEY=VALUE",
                        help="change a parameter of a notebook's protocols (not with --readme)")
    args = parser.parse_args(argv)
    protocols = [p for p in PROTOCOLS if not args.only or p.notebook in args.only]
    extra: dict[str, dict[str, str]] = {}
    for item in args.set:
        target, equals, value = item.partition("=")
        notebook, dot, key = target.partition(".")
        if not (equals and dot and key) or notebook not in {p.notebook for p in PROTOCOLS}:
            parser.error(f"--set expects NOTEBOOK.KEY=VALUE with a notebook of the table, got {item!r}")
        extra.setdefault(notebook, {})[key] = value
    if extra and args.readme:
        parser.error("--set changes the protocols, so its estimates do not go into README.md (drop --readme)")
    rows = []
    with stopped_by_signals(), tempfile.TemporaryDirectory(prefix="protolab-dry-runs-") as folder:
        data_root = Path(folder) / "data"
        for name in sorted({d for p in protocols for d in p.data}):
            start = time.perf_counter()
            write_data(name, data_root, args.scale)
            print(f"wrote {name} in {time.perf_counter() - start:.0f} s", flush=True)
        for protocol in protocols:
            rows.append(dry_run(protocol, data_root, args.steps, Path(folder) / "runs", extra.get(protocol.notebook)))
    block = table_markdown(rows, args.scale)
    print(block)
    if args.readme:
        write_readme(block)
    return rows


if __name__ == "__main__":
    try:
        main()
    except RunInterrupted as interrupted:
        sys.exit(f"dry runs: {interrupted}; every process of the run was ended")
