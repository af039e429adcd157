"""``protolab`` command line: ``list`` the experiments, ``run`` them, rebuild the ``report``.

Paths come from the checkout holding the current directory (or ``--root``), never from where the package
is installed. ``list`` imports no plotting library.
"""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path
from types import FrameType

from protolab.runner.execute import RunInterrupted, run_notebooks, summary_table
from protolab.runner.parameters import PROFILES, ParameterError, discover
from protolab.runner.project import ProjectError, project_root
from protolab.runner.publish import out_dir_lock
from protolab.runner.report import build_report, markdown_table

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="protolab", description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=None,
                        help="the checkout (default: the directory holding notebooks/profiles.yaml at or above here)")
    parser.add_argument("--notebooks", type=Path, default=None, help="notebooks directory (default: <root>/notebooks)")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="every experiment notebook, its parameters and profiles")
    run = commands.add_parser("run", help="execute notebooks headless and rebuild the report")
    run.add_argument("names", nargs="*", help="notebooks to run (default: all)")
    run.add_argument("--profile", choices=PROFILES, default="default")
    run.add_argument("-p", "--param", action="append", default=[], metavar="KEY=VALUE",
                     help="override a parameter (typed by the notebook's parameters cell)")
    run.add_argument("--jobs", type=int, default=1, help="notebooks executed in parallel")
    run.add_argument("--timeout", type=float, default=3600, help="seconds before a notebook is killed")
    run.add_argument("--out-dir", type=Path, default=None,
                     help="where outputs and the report go (default: figures/ for the default profile, "
                          "runs/<run-id>/figures otherwise)")
    report = commands.add_parser("report", help="rebuild REPORT.md and report.html from existing outputs")
    report.add_argument("--out-dir", type=Path, default=None, help="default: <root>/figures")
    args = parser.parse_args(argv)
    try:
        root = _root(args)
        notebooks = (args.notebooks or root / "notebooks").resolve()
        if args.command == "list":
            print(_listing(notebooks))
            return 0
        if args.command == "report":
            experiments = discover(notebooks)
            out_dir = (args.out_dir or root / "figures").resolve()
            if not out_dir.is_dir():
                raise ProjectError(f"out dir {out_dir} does not exist")
            with out_dir_lock(out_dir):
                paths = build_report(out_dir, order=list(experiments))
            print(*paths, sep="\n")
            return 0
        return _run(args, root, notebooks)
    except (ParameterError, ProjectError) as error:
        print(f"protolab: {error}", file=sys.stderr)
        return 2


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
    previous = {signum: signal.signal(signum, _interrupt) for signum in STOP_SIGNALS}
    try:
        results = run_notebooks(args.names, profile=args.profile, overrides=overrides, jobs=args.jobs,
                                timeout=args.timeout, out_dir=args.out_dir and args.out_dir.resolve(),
                                notebooks=notebooks, root=root, progress=_say)
    except RunInterrupted as interrupted:
        print(markdown_table(summary_table(interrupted.results)))
        print(f"protolab: {interrupted}; every process of the run was ended; summary in "
              f"{interrupted.run_dir / 'summary.md'}", file=sys.stderr)
        return 128 + signal.Signals.__members__.get(interrupted.reason, signal.SIGINT).value
    except KeyboardInterrupt as error:
        print(f"protolab: interrupted by {error or 'SIGINT'} before any notebook started", file=sys.stderr)
        return 128 + signal.Signals.__members__.get(str(error), signal.SIGINT).value
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    print(markdown_table(summary_table(results)))
    print(f"executed notebooks: {Path(results[0].output).parent}" if results else "no notebooks")
    failed = [result.notebook for result in results if result.status != "ok"]
    if failed:
        print(f"protolab: {len(failed)} notebook(s) failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


def _say(line: str) -> None:
    """A start/end line on stdout, printed above the progress bar when there is one."""
    from tqdm import tqdm

    tqdm.write(line, file=sys.stdout)
    sys.stdout.flush()


def _interrupt(signum: int, frame: FrameType | None) -> None:
    """SIGINT and SIGTERM stop the run the same way, naming the signal."""
    raise KeyboardInterrupt(signal.Signals(signum).name)


def _listing(notebooks: Path) -> str:
    lines = []
    for experiment in discover(notebooks).values():
        lines += [f"{experiment.name} — {experiment.title}", "  parameters:"]
        width = max(len(name) for name in experiment.parameters)
        for parameter in experiment.parameters.values():
            lines.append(f"    {parameter.name:<{width}}  {parameter.type.describe():<12} = {parameter.default!r:<20}"
                         f"  {parameter.help}")
            if parameter.type.choices:
                lines.append(f"    {'':<{width}}  choices: {', '.join(map(str, parameter.type.choices))}")
        lines.append("  profiles:")
        for profile in PROFILES:
            overrides = experiment.profiles.get(profile, {})
            shown = ", ".join(f"{key}={value!r}" for key, value in overrides.items()) or "notebook defaults"
            lines.append(f"    {profile:<8} {shown}")
        lines.append("")
    return "\n".join(lines).rstrip()
