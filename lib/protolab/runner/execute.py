"""Planning a run and its loop: parameters checked, notebooks executed by an executor, published, summarised.

Each notebook runs as its own ``python -m papermill`` process with a hard wall-clock limit (papermill
alone has none and can hang on a dead kernel). Parameters are validated against every notebook's
typed parameters cell before anything runs. Each notebook writes into a staging folder that is published
into ``out_dir`` only when it succeeds (:mod:`protolab.runner.publish`). A failing notebook does not stop
the others; the summary names each failure's cell and error line. A timeout, or an interruption
(``KeyboardInterrupt``, which the command line raises on SIGINT and SIGTERM), ends every process the
notebook started (:mod:`protolab.runner.processes`); the summary, ``runs.json`` and the report are written
in every case.

A notebook that reads other notebooks' outputs (``depends_on`` in ``profiles.yaml``) runs after those of them in the
same run (:func:`~protolab.runner.parameters.run_order`), and starts only once they have published: they share the
run's ``out_dir``, which it reads. When one of them did not succeed, it is ``skipped`` (its result names them).

Where the papermill process runs is the *executor*'s business: :class:`~protolab.runner.local.LocalProcesses`
(the default) starts it as a child of this process; :class:`~protolab.runner.slurm.SlurmNotebooks` submits it as
one SLURM job per notebook (the run directory lies on a shared file system; results are published here as jobs
end, and an interruption cancels every job). Both hand back an object with ``wait(timeout)``, ``stop()`` and
``pids``. Its environment comes from :mod:`protolab.runner.environment`, the progress bar from
:mod:`protolab.runner.progress`.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import nbformat
import pandas as pd
import yaml

from protolab.core.atomic import atomic_write_text
from protolab.core.dryrun import COST_LOG, DRY_RUN, estimated_total, format_duration, read_costs
from protolab.runner.environment import models_progress_dir, runner_variables, write_kernel_startup
from protolab.runner.local import LocalProcess, LocalProcesses
from protolab.runner.parameters import QUICK_PROFILE, Experiment, Parameter, ParameterError, discover, run_order
from protolab.runner.processes import signals_ignored
from protolab.runner.progress import RunProgress, estimated_durations
from protolab.runner.project import ProjectError, checkout_relative, project_root
from protolab.runner.publish import out_dir_lock, publish
from protolab.runner.report import build_report, markdown_table, read_runs, record_runs, write_readme_scorecard
from protolab.runner.scratch import claim_run, clean_scratch, remove_scratch, scratch_variables
from protolab.runner.slurm import (EXECUTORS, GRID_TIME_MIN, JOBS_FILE_ENV, NotebookJob, SlurmError, SlurmNotebooks,
                                   SlurmResources, check_cluster, grid_resources)

KERNEL_NAME = "python3"
PUBLISHED_PROFILE = "default"  # the only profile whose outputs go to the committed figures/ by default
INDICATIVE = {QUICK_PROFILE: "quick profile"}  # profiles whose outputs are a first look: runs.json's "indicative"


@dataclass
class NotebookResult:
    """How one notebook execution ended."""

    notebook: str
    status: str  # "ok", "failed", "timeout", "interrupted" or "skipped" (a dependency in the run did not succeed)
    wall_time_s: float
    run_id: str
    profile: str
    output: str
    failing_cell: str = ""
    error: str = ""
    log: str = ""
    processes: list[int] = field(default_factory=list)  # ids of every process the execution started
    job_id: str = ""  # the SLURM job that ran it (executor "slurm")
    estimated_s: float | None = None  # a dry run's prediction of the full run's wall time (protolab.core.dryrun)
    overrides: dict[str, Any] = field(default_factory=dict)  # parameters set away from the profile's values
    dry_run: int = 0  # timed steps per metered loop of a dry run (its numbers mean nothing); 0: a real run
    indicative: str = ""  # why its numbers are only a first look ("quick profile"); "": a run of its profile


class RunInterrupted(KeyboardInterrupt):
    """The run was interrupted; every process it started has ended and its summary is written.

    A ``KeyboardInterrupt``, so that a caller that does not handle it (a test session, a notebook) stops as
    it would have without the runner.
    """

    def __init__(self, reason: str, results: list[NotebookResult], run_dir: Path) -> None:
        super().__init__(f"interrupted by {reason}")
        self.reason, self.results, self.run_dir = reason, results, run_dir


def plan(experiments: Mapping[str, Experiment], names: Sequence[str], profile: str,
         overrides: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    """Resolved parameters of each selected notebook; every problem is reported at once.

    An override applies to each selected notebook that declares it; one that no selected notebook
    declares is refused, as are an unknown notebook name and every value of the wrong type or outside its
    declared range (:meth:`Experiment.resolve`): every notebook's problems, all in one error, before any
    kernel starts. The notebooks come in the order they run: each after those it depends on
    (:func:`~protolab.runner.parameters.run_order`), in the given order otherwise.
    """
    problems = [f"unknown notebook {name!r}; known: {', '.join(experiments)}" for name in names if name not in experiments]
    selected = [experiments[name] for name in run_order(experiments, [name for name in (names or experiments)
                                                                      if name in experiments])]
    declared = {name for experiment in selected for name in experiment.parameters}
    if selected:
        problems += [f"unknown parameter {key!r}: no selected notebook declares it" for key in overrides
                     if key not in declared]
    if "profile" in overrides and overrides["profile"] != profile:
        problems.append(f"-p profile={overrides['profile']} conflicts with --profile {profile}")
    resolved = {}
    for experiment in selected:
        try:
            mine = {key: value for key, value in overrides.items() if key in experiment.parameters}
            resolved[experiment.name] = experiment.resolve(profile, mine)
        except ParameterError as error:
            problems += [f"{experiment.name}: {problem}" for problem in error.problems]
    for name, values in resolved.items():
        problems += [f"{name}: {problem}" for problem in dataset_problems(experiments[name], values)]
    if problems:
        raise ParameterError("refused before running anything:\n  " + "\n  ".join(problems))
    return resolved


def dataset_parameters(experiment: Experiment) -> list[str]:
    """The parameters naming datasets whose files must exist: ``dataset``, ``*_dataset`` (a name) and
    ``*_datasets`` (a list of names), and any other whose declared choices hold ``folder`` (of which only a
    ``folder`` is checked). Other parameters (e.g. a ``datasets`` list of feature spaces that a notebook skips
    when absent) are not checked."""
    return [name for name, parameter in experiment.parameters.items() if parameter.type.scalar == "str"
            and (_names_datasets(name, parameter) or "folder" in parameter.type.choices)]


def _names_datasets(name: str, parameter: Parameter) -> bool:
    return (name == "dataset" or (name.endswith("_dataset") and not parameter.type.is_list)
            or (name.endswith("_datasets") and parameter.type.is_list))


def dataset_problems(experiment: Experiment, values: Mapping[str, Any]) -> list[str]:
    """What :func:`protolab.data.check_dataset` says about each dataset the notebook would read.

    A real dataset whose files are not under ``data_root`` (or no ``data_root``) is a problem, except an
    item of ``<prefix>_datasets`` when the notebook declares ``skip_missing_<prefix>`` and it is true (the
    notebook skips that set and says so). A parameter whose range says ``[zsl dataset]`` (the IPN notebooks'
    free-text ``dataset``) is checked as :func:`protolab.data.load_zsl` reads it
    (:func:`protolab.data.check_zsl_dataset`), and a name it does not know is a problem too; any other name
    ``check_dataset`` does not know is the notebook's own label (``embedded``, ``xlsa17``, a researcher's
    ``toy``), and declared choices (``Literal[...]``) validate names.

    A ``folder`` (your own data at ``data_root``) is checked in full, every file read
    (:mod:`protolab.data.folders`), as the kind of the family whose names the parameter's choices are
    (:func:`protolab.data.folder_kind`; found from the layout otherwise), few-shot classes needing
    ``max(shots) + query`` images when the notebook declares both; every problem is listed. Each path of a
    ``*_folders`` list (folders of images, e.g. ``ood_folders``) is checked as a folder of images.
    """
    # lazily: a light `list`
    from protolab.data import DatasetFormatError, DatasetNotFoundError, check_dataset, check_zsl_dataset, folder_kind
    from protolab.data.folders import check_folder

    root = values.get("data_root") or ""
    per_class = max(values["shots"], default=0) + values["query"] if {"shots", "query"} <= values.keys() else 1
    problems, folders = [], set()
    for name in dataset_parameters(experiment):
        parameter, value = experiment.parameters[name], values.get(name)
        if value is None:
            continue
        prefix = name[:-len("_datasets")] if name.endswith("_datasets") else None
        if prefix and values.get(f"skip_missing_{prefix}") is True:
            continue
        zsl = ("zsl dataset", None) in parameter.range.clauses
        for dataset in value if isinstance(value, list) else [value]:
            if dataset != "folder" and not _names_datasets(name, parameter):
                continue
            folder = {"kind": folder_kind(parameter.type.choices), "per_class": per_class} if (
                dataset == "folder" and not zsl) else {}
            if folder:
                if folder["kind"] in folders:  # a label and a list naming the same folder: checked once
                    continue
                folders.add(folder["kind"])
            try:
                (check_zsl_dataset if zsl else check_dataset)(dataset, root, **folder)
            except (DatasetNotFoundError, DatasetFormatError) as error:
                problems.append(f"{name}={dataset!r}: " + str(error).replace("\n", "\n    "))
            except ValueError as error:
                if zsl:
                    problems.append(f"{name}={dataset!r}: {error}")
    for name, parameter in experiment.parameters.items():
        if name.endswith("_folders") and parameter.type.is_list:
            problems += [f"{name}: {problem}" for folder in values.get(name) or []
                         for problem in check_folder("images", folder).problems]
    return problems


def run_notebooks(names: Sequence[str] = (), *, profile: str = "default", overrides: Mapping[str, str] | None = None,
                  jobs: int | None = None, timeout: float | None = None, out_dir: Path | None = None,
                  runs_dir: Path | None = None, notebooks: Path | None = None, root: Path | None = None,
                  progress: Callable[[str], None] | None = None, bar: bool | None = None,
                  executor: str | Executor = "local", resources: SlurmResources | None = None,
                  dry_run: int = 0) -> list[NotebookResult]:
    """Execute notebooks into ``runs/<run-id>/``, publish their outputs into ``out_dir`` and rebuild its report.

    ``root`` is the checkout (default: the one holding the current directory, or ``notebooks``' parent);
    ``out_dir`` defaults to the committed ``<root>/figures`` only for the default profile *unmodified* (no
    override that changes a value: :func:`overridden`), else to ``runs/<run-id>/figures`` (an ``out_dir``
    override among ``overrides`` counts as ``out_dir``). Outputs published with overrides (an explicit
    ``out_dir``) say so: each result's ``overrides`` is recorded in ``runs.json`` and shown in the report's section
    and the scorecard rows. ``progress`` receives a
    line when each notebook starts and ends. ``bar`` shows one progress bar over the whole run on stderr,
    with the time left estimated from each notebook's last duration
    (:func:`~protolab.runner.progress.estimated_durations`); default:
    when stderr is a terminal. Raises :class:`RunInterrupted` on ``KeyboardInterrupt``.

    ``executor`` is ``"local"`` (child processes, ``jobs`` at a time, default 1) or ``"slurm"`` (one SLURM job
    per notebook with ``resources``, ``jobs`` queued at a time, default all; refused before anything runs when
    SLURM is missing or refuses the request), or an executor object.

    ``timeout``: seconds after which a notebook is stopped and reported as timed out; None (the default) sets no
    limit on a local run (a cold ``make figures`` runs notebooks for over an hour each on 2 cores) and, on SLURM,
    leaves the job's time limit to :func:`~protolab.runner.slurm.notebook_time_min`.

    ``dry_run`` > 0 makes it a dry run (:mod:`protolab.core.dryrun`): every metered loop of the notebooks runs that many
    timed steps and stops; each result's ``estimated_s`` is the predicted wall time of the full run. Its outputs
    (meaningless numbers) never go to ``<root>/figures`` nor to any ``out_dir`` holding a real run's outputs
    (:func:`holds_real_outputs`), and they are marked as a dry run's in ``runs.json``, the report and the sidecars.

    The ``quick`` profile (a first look at every notebook) never publishes into ``<root>/figures``: its results are
    marked ``indicative`` in ``runs.json`` (:data:`INDICATIVE`). Paths recorded in ``runs.json`` (each result's
    ``output`` and ``log``) are relative to ``root`` when inside it (:func:`~protolab.runner.project.checkout_relative`).
    """
    if jobs is not None and jobs < 1:
        raise ParameterError(f"--jobs must be at least 1, got {jobs}")
    if timeout is not None and not timeout > 0:
        raise ParameterError(f"--timeout must be a positive number of seconds, got {timeout}")
    runner = make_executor(executor, resources)
    root = Path(root or (Path(notebooks).parent if notebooks else project_root())).resolve()
    directory = Path(notebooks or root / "notebooks").resolve()
    experiments = discover(directory)
    extra = dict(overrides or {})
    requested_out_dir = extra.pop("out_dir", None) or out_dir
    parameters = plan(experiments, names, profile, extra)
    _check_grid_executor(parameters)
    _check_cache_writable()
    jobs = jobs or (len(parameters) if runner.name == "slurm" else 1)
    runner.check(timeout=timeout)
    run_id = f"{datetime.now():%Y%m%d-%H%M%S}-{profile}-{os.getpid()}"
    run_dir = Path(runs_dir or root / "runs").resolve() / run_id
    if dry_run < 0:
        raise ParameterError(f"--dry-run takes a number of timed steps ≥ 1, got {dry_run}")
    changed = {name: overridden(experiments[name], profile, values) for name, values in parameters.items()}
    if requested_out_dir:
        out_dir = (root / requested_out_dir).resolve()
    elif profile == PUBLISHED_PROFILE and not dry_run and not any(changed.values()):
        out_dir = root / "figures"
    else:
        out_dir = run_dir / "figures"
    if dry_run and out_dir == (root / "figures").resolve():
        raise ParameterError(f"a dry run's outputs are meaningless: it does not write into {out_dir}")
    if profile in INDICATIVE and out_dir == (root / "figures").resolve():
        raise ParameterError(f"the {profile} profile's outputs are only indicative ({INDICATIVE[profile]}): it never "
                             f"publishes into {out_dir}; leave out --out-dir (runs/<run-id>/figures) or give another")
    if dry_run and holds_real_outputs(out_dir):
        raise ParameterError(f"a dry run's outputs are meaningless: {out_dir} holds a real run's outputs, which it "
                             "would replace; give another --out-dir")
    _check_writable(out_dir)
    for values in parameters.values():
        values["out_dir"] = str(out_dir)
    run_dir.mkdir(parents=True)
    claim_run(run_dir)
    write_kernel_startup(run_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    show_bar = sys.stderr.isatty() if bar is None else bar
    tracker = RunProgress(estimated_durations([out_dir, root / "figures"], list(parameters), profile),
                          enabled=show_bar, models_dir=models_progress_dir(run_dir))
    readme = root / "README.md" if out_dir.resolve() == (root / "figures").resolve() else None
    context = _Context(root, run_dir, run_id, out_dir, list(experiments), timeout, runner.threads(jobs),
                       progress or (lambda line: None), tracker, readme, runner, dry_run, changed,
                       INDICATIVE.get(profile, ""))
    for folder, size in clean_scratch(run_dir.parent):
        context.progress(f"protolab: removed {folder} ({size / 2**20:.1f} MiB), left by a run that has ended")
    pool = ThreadPoolExecutor(max_workers=max(1, min(jobs, len(parameters))))
    futures: dict[str, Future[NotebookResult]] = {}
    interruption = None
    try:
        _schedule(pool, experiments, parameters, context, futures)
        for future in futures.values():
            future.result()
    except KeyboardInterrupt as error:
        interruption = str(error) or "SIGINT"
    except BaseException:
        context.stop()
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    with signals_ignored():
        tracker.close()
        if interruption:
            context.stop()
        pool.shutdown(wait=True, cancel_futures=True)
        results = [futures[name].result() if name in futures and futures[name].done() and not futures[name].cancelled()
                   else context.never_started(experiments[name], parameters[name]) for name in parameters]
        _save_summary(run_dir, results)
        unrecorded = [result for result in results if result.notebook not in context.recorded]
        if unrecorded:
            try:
                context.record(unrecorded)
            except OSError as error:
                context.progress(f"protolab: could not record {len(unrecorded)} outcome(s) in {out_dir}: {error}")
    if interruption:
        raise RunInterrupted(interruption, results, run_dir)
    return results


def _schedule(pool: ThreadPoolExecutor, experiments: Mapping[str, Experiment], parameters: Mapping[str, dict[str, Any]],
              context: _Context, futures: dict[str, Future[NotebookResult]]) -> None:
    """Submit each notebook of ``parameters`` (in :func:`plan`'s order) to ``pool`` once every notebook of the run it
    depends on has ended, so that it reads their published outputs; one whose dependency did not succeed gets a
    ``skipped`` result naming it, without starting. ``futures`` receives each notebook's future as it is submitted."""
    waiting = list(parameters)
    while waiting:
        for name in list(waiting):
            upstream = [other for other in experiments[name].depends_on if other in parameters]
            if not all(other in futures and futures[other].done() for other in upstream):
                continue
            waiting.remove(name)
            failed = [other for other in upstream if futures[other].result().status != "ok"]
            if failed:
                futures[name] = Future()
                futures[name].set_result(context.skipped(experiments[name], parameters[name], failed))
            else:
                futures[name] = pool.submit(_execute, experiments[name], parameters[name], context)
        if waiting:
            wait([future for future in futures.values() if not future.done()], return_when=FIRST_COMPLETED)


def summary_table(results: Sequence[NotebookResult]) -> pd.DataFrame:
    """Name, status, wall time, failing cell and error line of each notebook (and its SLURM job, if any)."""
    jobs = any(r.job_id for r in results)
    dry = any(r.estimated_s is not None for r in results)
    return pd.DataFrame([{"notebook": r.notebook, "status": r.status, "wall time (s)": round(r.wall_time_s, 1),
                          **({"full run (estimated)": format_duration(r.estimated_s) if r.estimated_s is not None
                              else ""} if dry else {}),
                          **({"job": r.job_id} if jobs else {}), "failing cell": r.failing_cell, "error": r.error}
                         for r in results])


Executor = LocalProcesses | SlurmNotebooks
Started = LocalProcess | NotebookJob  # what an executor's launch returns: wait(timeout), stop(), pids, job_id…


def make_executor(executor: str | Executor, resources: SlurmResources | None = None) -> Executor:
    """The executor named ``executor`` (``resources`` only with ``"slurm"``), or ``executor`` itself."""
    if not isinstance(executor, str):
        return executor
    if executor not in EXECUTORS:
        raise ParameterError(f"unknown executor {executor!r}; known: {', '.join(EXECUTORS)}")
    if executor == "local":
        if resources is not None:
            raise ParameterError("SLURM resources were given with the local executor; add --executor slurm")
        return LocalProcesses()
    return SlurmNotebooks(resources)


@dataclass
class _Context:
    """What every notebook of one run shares, and the process trees running now."""

    root: Path  # the checkout: paths recorded in runs.json are relative to it
    run_dir: Path
    run_id: str
    out_dir: Path
    order: list[str]
    timeout: float | None  # None: no limit
    threads: int
    progress: Callable[[str], None]
    tracker: RunProgress | None = None
    readme: Path | None = None  # the checkout's README, whose scorecard follows the committed figures/
    executor: Executor = field(default_factory=LocalProcesses)
    dry_run: int = 0  # timed steps per metered loop in a dry run (protolab.core.dryrun); 0: a real run
    overrides: dict[str, dict[str, Any]] = field(default_factory=dict)  # per notebook: :func:`overridden`
    indicative: str = ""  # the results' ``indicative`` (:data:`INDICATIVE`)
    stopped: bool = False
    trees: list[Started] = field(default_factory=list)  # what the executor started, running or not
    recorded: set[str] = field(default_factory=set)  # notebooks whose outcome is in runs.json
    lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self, name: str, command: list[str], variables: Mapping[str, str], log: Path) -> Started | None:
        """Start notebook ``name``'s ``command`` with the executor; None once the run is stopped."""
        with self.lock:
            if self.stopped:
                return None
            tree = self.executor.launch(name, command, variables, log, self.timeout)
            self.trees.append(tree)
            return tree

    def stop(self) -> None:
        """Start nothing more and end every process (or job) of every running notebook."""
        with self.lock:
            self.stopped = True
            trees = list(self.trees)
        for tree in trees:
            tree.stop()

    def variables(self, notebooks: Path, stage: Path, jobs_file: Path, experiment: Experiment) -> dict[str, str]:
        """What ``experiment``'s process gets on top of its environment (:func:`runner_variables`: its kernel path
        and threads follow its ``kernels`` and ``cores`` in profiles.yaml), plus this machine's ``PROTOLAB_*``
        settings (a job's node may not inherit them) and where its kernel lists the SLURM jobs it submits."""
        variables = {key: value for key, value in os.environ.items() if key.startswith("PROTOLAB_")}
        threads = self.executor.threads(1) if experiment.cores == "all" else self.threads
        variables.update(runner_variables(self.run_dir, self.run_id, threads, notebooks, stage,
                                          native_kernels=experiment.kernels == "native"))
        variables.update(self.executor.kernel_variables(self.run_dir))
        variables[JOBS_FILE_ENV] = str(jobs_file)
        return variables

    def record(self, results: Sequence[NotebookResult], stage: Path | None = None) -> None:
        """Under the out_dir lock: publish ``stage`` (the outputs of ``results``' one notebook, if given), merge
        ``results`` into ``out_dir``'s ``runs.json``, rebuild the report and, publishing into the checkout's
        committed figures/, its README's scorecard."""
        with out_dir_lock(self.out_dir, self.progress):
            if stage is not None:
                publish(stage, self.out_dir, results[0].notebook)
            record_runs(self.out_dir, [self.recorded_form(result) for result in results])
            build_report(self.out_dir, order=self.order)
            if self.readme is not None:
                write_readme_scorecard(self.readme, self.out_dir)
        self.recorded.update(result.notebook for result in results)

    def recorded_form(self, result: NotebookResult) -> dict[str, Any]:
        """``result`` as ``runs.json`` records it: its notebook and log paths relative to the checkout."""
        return {**asdict(result), **{key: checkout_relative(getattr(result, key), self.root)
                                     for key in ("output", "log") if getattr(result, key)}}

    def result(self, experiment: Experiment, parameters: Mapping[str, Any], status: str, **fields: Any) -> NotebookResult:
        """A result of ``experiment`` in this run, with what every result of the run shares."""
        return NotebookResult(experiment.name, status, 0.0, self.run_id, parameters["profile"],
                              str(self.run_dir / f"{experiment.name}.ipynb"),
                              overrides=self.overrides.get(experiment.name, {}), dry_run=self.dry_run,
                              indicative=self.indicative, **fields)

    def never_started(self, experiment: Experiment, parameters: Mapping[str, Any]) -> NotebookResult:
        return self.result(experiment, parameters, "interrupted",
                           error="the run was interrupted before this notebook started")

    def skipped(self, experiment: Experiment, parameters: Mapping[str, Any], failed: Sequence[str]) -> NotebookResult:
        """The result of ``experiment``, not started because the notebooks ``failed`` of this run, whose outputs it
        reads, did not succeed."""
        reason = f"it reads the outputs of {', '.join(failed)}, which did not succeed in this run"
        self.progress(f"protolab: skipped {experiment.name}: {reason}")
        return self.result(experiment, parameters, "skipped", error=f"not started: {reason}")


def _execute(experiment: Experiment, parameters: dict[str, Any], context: _Context) -> NotebookResult:
    """Run one notebook, publish its outputs if it succeeded, and record the outcome in ``out_dir``."""
    run_dir, name = context.run_dir, experiment.name
    output, log, stage = run_dir / f"{name}.ipynb", run_dir / f"{name}.log", run_dir / f"{name}.staged"
    params_file = run_dir / f"{name}.parameters.yaml"
    params_file.write_text(yaml.safe_dump(parameters, sort_keys=False))  # papermill reads YAML: JSON's 2e-05 is a str there
    stage.mkdir()
    command = [sys.executable, "-m", "protolab.runner.papermill_main", str(experiment.path), str(output),
               "-f", str(params_file), "-k", KERNEL_NAME, "--cwd", str(run_dir), "--no-progress-bar", "--log-output"]
    result = context.result(experiment, parameters, "ok", log=str(log))
    started = time.monotonic()
    variables = context.variables(experiment.path.parent, stage, run_dir / f"{name}.jobs", experiment)
    variables.update(scratch_variables(run_dir, name))
    costs = run_dir / f"{name}.cost.jsonl"
    if context.dry_run:
        variables.update({DRY_RUN: str(context.dry_run), COST_LOG: str(costs)})
    try:
        tree = context.start(name, command, variables, log)
    except Exception as error:  # e.g. sbatch refused the job: this notebook fails, the others go on
        tree, code = None, -1
        said = (str(error).strip().splitlines() or [type(error).__name__])[0]
        result.status, result.error = "failed", f"could not start: {said}"
    else:
        if tree is None:
            return context.never_started(experiment, parameters)
        result.job_id = tree.job_id
        context.progress(f"protolab: started {name} ({tree.where}log {log})")
        if context.tracker:
            context.tracker.started(name)
        code = tree.wait(context.timeout)
        tree.stop()  # also ends what outlived the kernel, e.g. a loky pool it left behind
    result.wall_time_s = (tree and tree.wall_time_s) or time.monotonic() - started  # a job's: from its start
    result.processes = tree.pids if tree else []
    if tree is not None:  # (else it could not start and has failed already)
        if context.stopped:
            ended = "its job was cancelled" if tree.job_id else "every process it started was ended"
            result.status, result.error = "interrupted", f"the run was interrupted; {ended}"
        elif code is None:
            result.status, result.error = "timeout", f"exceeded the {context.timeout:g} s limit"
        elif code != 0:
            result.status = "failed"
            result.failing_cell, result.error = _failure(output, log)
            if tree.failure and not result.failing_cell:  # the job ended before the notebook failed in a cell
                result.error = tree.failure
        elif context.dry_run:
            result.estimated_s = estimated_total(read_costs(costs), result.wall_time_s)
    if result.status == "ok":
        remove_scratch(run_dir, name)
    try:
        context.record([result], stage if result.status == "ok" else None)
    except OSError as error:
        result.status, result.error = "failed", f"publishing into {context.out_dir} failed: {error}"
    if context.tracker:
        context.tracker.finished(name)
    where = tree.where if tree else ""
    estimate = "" if result.estimated_s is None else f"; the full run would take ≈ {format_duration(result.estimated_s)}"
    context.progress(f"protolab: {result.status} {name} in {result.wall_time_s:.1f} s{estimate} ({where}log {log})")
    return result


def overridden(experiment: Experiment, profile: str, values: Mapping[str, Any]) -> dict[str, Any]:
    """The parameters of ``values`` (resolved for ``profile``) that differ from the profile's own values, by name
    (``out_dir`` aside: where outputs go does not change them)."""
    own = experiment.resolve(profile)
    return {name: value for name, value in values.items() if name != "out_dir" and own.get(name) != value}


def holds_real_outputs(out_dir: Path) -> bool:
    """Whether ``out_dir`` holds an output of a real run: a provenance sidecar (``*__*.json``) not marked as a dry
    run's (:mod:`protolab.figures` writes ``dry_run``), or a ``runs.json`` record of a real run."""
    out_dir = Path(out_dir)
    if any(not json.loads(path.read_text()).get("dry_run") for path in out_dir.glob("*__*.json")):
        return True
    return any(not run.get("dry_run") for run in read_runs(out_dir).values())


def _check_grid_executor(parameters: Mapping[str, Mapping[str, Any]]) -> None:
    """Refuse ``-p executor=slurm`` (grid cells as SLURM jobs, submitted by the kernel) where SLURM is missing or
    would refuse the cells' request, as ``--executor slurm`` is refused, before any kernel starts."""
    grids = sorted(name for name, values in parameters.items() if values.get("executor") == "slurm")
    if grids:
        try:
            check_cluster(grid_resources(), time_min=GRID_TIME_MIN)
        except SlurmError as error:
            raise ParameterError(f"-p executor=slurm ({', '.join(grids)}): {error}") from None


def _check_cache_writable() -> None:
    """Refuse, before any kernel starts, a dataset cache (``$PROTOLAB_CACHE_DIR``…) that cannot be written."""
    from protolab.data.cache import cache_dir  # lazily: it imports the data layer

    try:
        root = cache_dir()
        writable = os.access(root, os.W_OK | os.X_OK)
    except OSError as error:
        root, writable = error.filename, False
    if not writable:
        raise ProjectError(f"the dataset cache {root} is not a writable directory (set $PROTOLAB_CACHE_DIR to one)")


def _check_writable(out_dir: Path) -> None:
    """Refuse, before any kernel starts, an ``out_dir`` that cannot be created or written."""
    existing = next(directory for directory in (out_dir, *out_dir.parents) if directory.exists())
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise ProjectError(f"out_dir {out_dir} is not writable ({existing} is not a writable directory)")


def _failure(output: Path, log: Path) -> tuple[str, str]:
    """The failing cell (``cell N``: the notebook's N-th code cell, the parameters cell being 1) and its
    ``Error: message`` line."""
    if output.exists():
        notebook = nbformat.read(output, as_version=4)
        code_cells = [cell for cell in notebook.cells if cell.cell_type == "code"
                      and "injected-parameters" not in cell.metadata.get("tags", [])]
        for number, cell in enumerate(code_cells, start=1):
            for item in cell.get("outputs", []):
                if item.get("output_type") == "error":
                    first_line = str(item.get("evalue", "")).strip().splitlines()
                    return f"cell {number}", f"{item.get('ename')}: {first_line[0] if first_line else ''}"
    tail = [line for line in log.read_text(errors="replace").splitlines() if line.strip()] if log.exists() else []
    return "", tail[-1] if tail else "papermill exited with an error before executing a cell"


def _save_summary(run_dir: Path, results: Sequence[NotebookResult]) -> None:
    table = summary_table(results)
    atomic_write_text(run_dir / "summary.md", markdown_table(table))
    atomic_write_text(run_dir / "summary.json", json.dumps([asdict(r) for r in results], indent=2))
