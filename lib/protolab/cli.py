"""``protolab`` command line: ``list`` the experiments, ``run`` them, rebuild the ``report``."""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

from protolab.figures import markdown_table
from protolab.notebooks import PROFILES, ParameterError, discover, notebooks_dir
from protolab.report import build_report
from protolab.run import run_notebooks, summary_table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="protolab", description=__doc__)
    parser.add_argument("--notebooks", type=Path, default=None, help="notebooks directory (default: the repo's)")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="every experiment notebook, its parameters and profiles")
    run = commands.add_parser("run", help="execute notebooks headless and rebuild figures/REPORT.md")
    run.add_argument("names", nargs="*", help="notebooks to run (default: all)")
    run.add_argument("--profile", choices=PROFILES, default="default")
    run.add_argument("-p", "--param", action="append", default=[], metavar="KEY=VALUE",
                     help="override a parameter (typed by the notebook's parameters cell)")
    run.add_argument("--jobs", type=int, default=1, help="notebooks executed in parallel")
    run.add_argument("--timeout", type=float, default=3600, help="seconds before a notebook is killed")
    run.add_argument("--out-dir", type=Path, default=None, help="where figures and the report go (default figures/)")
    report = commands.add_parser("report", help="rebuild REPORT.md and report.html from existing outputs")
    report.add_argument("--out-dir", type=Path, default=None)
    args = parser.parse_args(argv)
    try:
        if args.command == "list":
            print(_listing(args.notebooks))
            return 0
        if args.command == "report":
            experiments = discover(args.notebooks)
            out_dir = args.out_dir or _default_out_dir(args.notebooks)
            for path in build_report(out_dir, order=list(experiments)):
                print(path)
            return 0
        return _run(args)
    except ParameterError as error:
        print(f"protolab: {error}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    overrides = {}
    for item in args.param:
        key, separator, value = item.partition("=")
        if not separator or not key.strip():
            raise ParameterError(f"-p expects KEY=VALUE, got {item!r}")
        overrides[key.strip()] = value
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)  # SIGTERM stops the children too
    try:
        results = run_notebooks(args.names, profile=args.profile, overrides=overrides, jobs=args.jobs,
                                timeout=args.timeout, out_dir=args.out_dir, notebooks=args.notebooks)
    finally:
        signal.signal(signal.SIGTERM, previous)
    print(markdown_table(summary_table(results)))
    print(f"executed notebooks: {Path(results[0].output).parent}" if results else "no notebooks")
    failed = [result.notebook for result in results if result.status != "ok"]
    if failed:
        print(f"protolab: {len(failed)} notebook(s) failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


def _default_out_dir(notebooks: Path | None) -> Path:
    return (notebooks or notebooks_dir()).parent / "figures"


def _listing(notebooks: Path | None) -> str:
    lines = []
    for experiment in discover(notebooks).values():
        lines += [f"{experiment.name} — {experiment.title}", "  parameters:"]
        width = max(len(name) for name in experiment.parameters)
        for parameter in experiment.parameters.values():
            lines.append(f"    {parameter.name:<{width}}  {str(parameter.type):<12} = {parameter.default!r:<20}"
                         f"  {parameter.help}")
        lines.append("  profiles:")
        for profile in PROFILES:
            overrides = experiment.profiles.get(profile, {})
            shown = ", ".join(f"{key}={value!r}" for key, value in overrides.items()) or "notebook defaults"
            lines.append(f"    {profile:<8} {shown}")
        lines.append("")
    return "\n".join(lines).rstrip()
