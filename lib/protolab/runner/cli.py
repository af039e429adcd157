"""``protolab`` command line: ``list`` the experiments, ``run`` them, rebuild the ``report``, ``clean`` scratch,
``data check`` a folder of your own data.

Paths come from the checkout holding the current directory (or ``--root``), never from where the package
is installed. ``list`` and ``--help`` import neither torch nor a plotting library.
"""

from __future__ import annotations

import argparse
import signal
import sys
from contextlib import suppress
from pathlib import Path

from protolab.runner.execute import RunInterrupted, run_notebooks, summary_table
from protolab.runner.parameters import ParameterError, discover
from protolab.runner.processes import stopped_by_signals
from protolab.runner.project import ProjectError, project_root
from protolab.runner.publish import out_dir_lock
from protolab.runner.report import build_report, markdown_table
from protolab.runner.scratch import clean_scratch
from protolab.runner.slurm import EXECUTORS, SlurmResources


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="protolab", description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=None,
                        help="the checkout (default: the directory holding notebooks/profiles.yaml at or above here)")
    parser.add_argument("--notebooks", type=Path, default=None, help="notebooks directory (default: <root>/notebooks)")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="every experiment notebook, its parameters and profiles")
    run = commands.add_parser("run", help="execute notebooks headless and rebuild the report")
    run.add_argument("names", nargs="*", help="notebooks to run (default: all)")
    run.add_argument("--profile", default="default",
                     help="smoke, quick (a first look; never published into figures/), default, full, or a "
                          "notebook's own full-<name> profile (see `list`)")
    run.add_argument("-p", "--param", action="append", default=[], metavar="KEY=VALUE",
                     help="override a parameter (typed by the notebook's parameters cell)")
    run.add_argument("--jobs", type=int, default=None,
                     help="notebooks executed in parallel (default: 1; with --executor slurm: all queued at once)")
    run.add_argument("--timeout", type=float, default=None,
                     help="seconds before a notebook is killed (default: no limit; with --executor slurm: also the "
                          "job's time limit, rounded up to minutes, plus one; 61 min when neither this nor time_min "
                          "is given)")
    run.add_argument("--out-dir", type=Path, default=None,
                     help="where outputs and the report go; a relative path is taken from the checkout's root, as "
                          "-p out_dir is (default: figures/ for the default profile without overrides, "
                          "runs/<run-id>/figures otherwise)")
    run.add_argument("--dry-run", type=int, nargs="?", const=3, default=0, metavar="STEPS",
                     help="time STEPS steps (default 3) of every training and evaluation loop, stop each there, and "
                          "print what the full run would take and its peak memory; outputs go to runs/<run-id>/")
    run.add_argument("--executor", choices=EXECUTORS, default="local",
                     help="where notebooks run: child processes here (local) or one SLURM job each (slurm, through "
                          "submitit; the checkout, .venv, runs/ and the cache on a shared file system)")
    cluster = run.add_argument_group("SLURM resources of each job (with --executor slurm; these override the file)")
    cluster.add_argument("--slurm-config", type=Path, default=None, metavar="YAML",
                         help="a file of resources: partition, gpus, cpus, mem_gb, time_min, sbatch (more options), "
                              "setup (shell lines run first)")
    cluster.add_argument("--partition", default=None)
    cluster.add_argument("--gpus", type=int, default=None, help="GPUs per job (default 0)")
    cluster.add_argument("--cpus", type=int, default=None, help="CPUs per job, also the notebook's threads (default 1)")
    cluster.add_argument("--mem-gb", type=float, default=None, help="memory per job in GB (default: the partition's)")
    cluster.add_argument("--sbatch", action="append", default=[], metavar="OPTION[=VALUE]",
                         help="any other sbatch option, e.g. --sbatch account=abc --sbatch qos=high")
    report = commands.add_parser("report", help="rebuild REPORT.md and report.html from existing outputs")
    report.add_argument("--out-dir", type=Path, default=None,
                        help="default: <root>/figures; a relative path is taken from the checkout's root")
    commands.add_parser("clean", help="remove the scratch folders (training checkpoints) that ended runs left in "
                                      "runs/ (a run still going keeps its own)")
    data = commands.add_parser("data", help="your own data: check a folder dataset without training")
    check = data.add_subparsers(dest="action", required=True).add_parser(
        "check", help="validate a folder layout (protolab.data.folders) and summarise it; exit 2 listing every problem")
    check.add_argument("kind", choices=("fewshot", "uncertainty", "reid", "zsl", "features"),
                       help="the family the folder is for (see the README's 'Your own data')")
    check.add_argument("dir", type=Path, help="the folder (features: also a .npy file)")
    check.add_argument("--shot", type=int, default=1, help="fewshot: support images per class of an episode")
    check.add_argument("--query", type=int, default=1, help="fewshot: query images per class of an episode")
    check.add_argument("--ood", type=Path, action="append", default=[], metavar="DIR",
                       help="uncertainty: a folder of out-of-distribution images (repeatable)")
    args = parser.parse_args(argv)
    if args.command == "data":
        return _check_data(args)
    try:
        root = _root(args)
        notebooks = (args.notebooks or root / "notebooks").resolve()
        if args.command == "list":
            print(_where(root))
            print(_listing(notebooks))
            return 0
        if args.command == "report":
            experiments = discover(notebooks)
            out_dir = (root / (args.out_dir or "figures")).resolve()
            if not out_dir.is_dir():
                raise ProjectError(f"out dir {out_dir} does not exist")
            with out_dir_lock(out_dir):
                paths = build_report(out_dir, order=list(experiments))
            print(*paths, sep="\n")
            return 0
        if args.command == "clean":
            removed = clean_scratch(root / "runs")
            for folder, size in removed:
                print(f"removed {folder} ({size / 2**20:.1f} MiB)")
            print(f"protolab: {len(removed)} scratch folder(s) of ended runs removed, "
                  f"{sum(size for _, size in removed) / 2**20:.1f} MiB freed")
            return 0
        return _run(args, root, notebooks)
    except (ParameterError, ProjectError) as error:
        print(f"protolab: {error}", file=sys.stderr)
        return 2


def _check_data(args: argparse.Namespace) -> int:
    """``protolab data check``: the folder's report on stdout; 0 when valid, else 2 (problems listed)."""
    from protolab.data.folders import check_folder  # lazily: torch and PIL only for this command

    report = check_folder(args.kind, args.dir, per_class=args.shot + args.query, ood=args.ood)
    print(report)
    return 2 if report.problems else 0


def _root(args: argparse.Namespace) -> Path:
    """``--root``, else the parent of ``--notebooks``, else the checkout holding the current directory."""
    if args.root is not None:
        if not (args.root / "notebooks").is_dir() and args.notebooks is None:
            raise ProjectError(f"--root {args.root} has no notebooks/ directory")
        return args.root.resolve()
    if args.notebooks is not None:
        return args.notebooks.resolve().parent
    return project_root()


def _run(args: argparse.Namespace, root: Path, notebooks: Path) -> int:
    overrides = {}
    for item in args.param:
        key, separator, value = item.partition("=")
        if not separator or not key.strip():
            raise ParameterError(f"-p expects KEY=VALUE, got {item!r}")
        overrides[key.strip()] = value
    resources = _resources(args)
    try:
        with stopped_by_signals():
            results = run_notebooks(args.names, profile=args.profile, overrides=overrides, jobs=args.jobs,
                                    timeout=args.timeout, out_dir=args.out_dir,
                                    notebooks=notebooks, root=root, progress=_say, executor=args.executor,
                                    resources=resources, dry_run=args.dry_run)
    except RunInterrupted as interrupted:
        ended = "job of the run was cancelled" if args.executor == "slurm" else "process of the run was ended"
        with suppress(OSError):  # after SIGHUP the terminal may be gone; the summary is on disk already
            print(markdown_table(summary_table(interrupted.results)))
            print(f"protolab: {interrupted}; every {ended}; summary in "
                  f"{interrupted.run_dir / 'summary.md'}", file=sys.stderr)
        return 128 + signal.Signals.__members__.get(interrupted.reason, signal.SIGINT).value
    except KeyboardInterrupt as error:
        print(f"protolab: interrupted by {error or 'SIGINT'} before any notebook started", file=sys.stderr)
        return 128 + signal.Signals.__members__.get(str(error), signal.SIGINT).value
    print(markdown_table(summary_table(results)))
    print(f"executed notebooks: {Path(results[0].output).parent}" if results else "no notebooks")
    failed = [result.notebook for result in results if result.status != "ok"]
    if failed:
        print(f"protolab: {len(failed)} notebook(s) failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


def _resources(args: argparse.Namespace) -> SlurmResources | None:
    """The SLURM resources of ``--executor slurm``: ``--slurm-config``, overridden by the options; refused with
    the local executor."""
    given = {option: value for option, value in [("--slurm-config", args.slurm_config), ("--partition", args.partition),
                                                 ("--gpus", args.gpus), ("--cpus", args.cpus),
                                                 ("--mem-gb", args.mem_gb), ("--sbatch", args.sbatch or None)]
             if value is not None}
    if args.executor != "slurm":
        if given:
            raise ParameterError(f"{', '.join(given)} only apply with --executor slurm")
        return None
    resources = SlurmResources.load(args.slurm_config.resolve()) if args.slurm_config else SlurmResources()
    options = {}
    for item in args.sbatch:
        key, separator, value = item.partition("=")
        if not key.strip().lstrip("-"):
            raise ParameterError(f"--sbatch expects OPTION or OPTION=VALUE, got {item!r}")
        options[key.strip().lstrip("-")] = value if separator else True
    return resources.updated(partition=args.partition, gpus=args.gpus, cpus=args.cpus, mem_gb=args.mem_gb,
                             sbatch=options)


def _say(line: str) -> None:
    """A start/end line on stdout, printed above the progress bar when there is one."""
    from tqdm import tqdm

    tqdm.write(line, file=sys.stdout)
    sys.stdout.flush()


LIBRARY = Path(__file__).resolve().parents[1]  # the protolab package this command runs


def _where(root: Path) -> str:
    """Which checkout the command stands in and which library it imports, with a warning when the library is
    not that checkout's ``lib/protolab`` (a virtual environment shared between checkouts runs the other's code)."""
    lines = [f"checkout: {root}", f"library:  {LIBRARY}"]
    if LIBRARY != (root / "lib" / "protolab").resolve():
        lines.append(f"warning: the library is not this checkout's lib/protolab: notebooks run with the code in "
                     f"{LIBRARY} (install this checkout with `pip install -e {root}` to run its own)")
    return "\n".join(lines) + "\n"


def _listing(notebooks: Path) -> str:
    lines = []
    for experiment in discover(notebooks).values():
        lines.append(f"{experiment.name} — {experiment.title}")
        if experiment.depends_on:
            lines.append(f"  reads the outputs or cells of: {', '.join(experiment.depends_on)} "
                         "(run first when in the same run)")
        if experiment.kernels == "native":
            lines.append("  runs on the CPU's native kernels (numbers exact per CPU model; profiles.yaml)")
        if experiment.cores == "all":
            lines.append("  takes every core of the run, beside other notebooks too (profiles.yaml)")
        lines.append("  parameters:")
        width = max(len(name) for name in experiment.parameters)
        for parameter in experiment.parameters.values():
            described = " ".join(part for part in (str(parameter.range), parameter.help) if part)
            lines.append(f"    {parameter.name:<{width}}  {parameter.type.describe():<12} = {parameter.default!r:<20}"
                         f"  {described}")
            if parameter.type.choices:
                lines.append(f"    {'':<{width}}  choices: {', '.join(map(str, parameter.type.choices))}")
        lines.append("  profiles:")
        for profile in experiment.profile_names:
            overrides = experiment.profiles.get(profile, {})
            shown = ", ".join(f"{key}={value!r}" for key, value in overrides.items()) or "notebook defaults"
            lines.append(f"    {profile:<8} {shown}")
        lines.append("")
    return "\n".join(lines).rstrip()
