"""Notebooks and grid cells as SLURM jobs, submitted, watched and cancelled through submitit.

:mod:`protolab.runner.execute` runs each notebook as one job (:class:`SlurmNotebooks`) and
:mod:`protolab.runner.grid` each missing grid cell (:func:`run_cells`). A job is a pickled call that submitit
runs on a compute node with this interpreter (``sys.executable``), so the checkout, its virtual environment,
the run directory and the cache (``$PROTOLAB_CACHE_DIR``) must lie on a file system every node sees, at the
same absolute paths.

**Resources** (:class:`SlurmResources`) come from a YAML file and command-line options: partition, GPUs,
CPUs, memory, time limit and any other ``sbatch`` option. A notebook job's time limit is the runner's
``--timeout`` rounded up to whole minutes plus one (:func:`notebook_time_min`; the job also stops the notebook
itself at ``--timeout``, so that it reports a timeout like a local run); a grid cell's is the notebook's when the runner submitted the
notebook as a job, else :data:`GRID_TIME_MIN`, unless ``time_min`` says otherwise.

**States.** A job has ended when its result file exists (submitit writes it when the call returns or raises)
or when ``squeue`` lists it in a final state or no longer at all. ``sacct`` is never needed: clusters
without accounting storage answer it with an error, and submitit's own polling would then never see a
cancelled, timed-out or killed job end.

**Stopping.** Everything submitted is cancelled with ``scancel`` when the run is interrupted. Grid cells that
a notebook's kernel submits are also written, one job id a line, to ``$PROTOLAB_JOBS_FILE`` (set by the
runner), so that the runner cancels them even when it had to kill the kernel.

``cluster: local`` in the resources runs the same jobs with submitit's ``LocalExecutor`` on this machine,
without SLURM (to try the path; the tests use it where no SLURM can start).
"""

from __future__ import annotations

import math
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from protolab.runner.environment import headless_environment
from protolab.runner.processes import STOP_SIGNALS, launch_logged, signals_ignored, stopped_by_signals
from protolab.runner.project import ProjectError

EXECUTORS = ("local", "slurm")
CLUSTERS = ("slurm", "local")
CONFIG_ENV = "PROTOLAB_SLURM_CONFIG"  # YAML resources of the grid cells a kernel submits
JOBS_FILE_ENV = "PROTOLAB_JOBS_FILE"  # where a kernel lists the jobs it submitted, for the runner to cancel
COMMANDS = ("sbatch", "srun", "squeue", "scancel")
GRID_TIME_MIN = 60
SIGNAL_DELAY_S = 30  # SLURM warns a job (SIGUSR2) this long before its time limit
JOB_STOP_SIGNALS = (*STOP_SIGNALS, signal.SIGUSR2)  # scancel: SIGTERM; the time limit is near: SIGUSR2
POLL_S = 1.0  # how often result files are looked for
QUEUE_POLL_S = 5.0  # how often squeue is asked about jobs without a result file
FINAL_STATES = {"BOOT_FAIL", "CANCELLED", "COMPLETED", "DEADLINE", "FAILED", "NODE_FAIL", "OUT_OF_MEMORY",
                "PREEMPTED", "REVOKED", "SPECIAL_EXIT", "TIMEOUT"}
GONE = "GONE"  # squeue no longer lists the job (it ended more than MinJobAge ago)
# sbatch options protolab sets itself, and the field of SlurmResources to use instead (None: not settable).
MANAGED_OPTIONS = {"partition": "partition", "gpus-per-node": "gpus", "cpus-per-task": "cpus", "mem": "mem_gb",
                   "time": "time_min (or --timeout)", "job-name": None, "output": None, "error": None,
                   "signal": None, "open-mode": None, "array": None}
_SUBMITTING = threading.Lock()  # submissions change os.environ for a moment


class SlurmError(ProjectError):
    """SLURM cannot be used as asked (missing commands, a refused request, bad resources); the message says why."""


@dataclass
class SlurmResources:
    """What each job asks SLURM for. Fields left at None take the cluster's defaults."""

    partition: str | None = None  # default: the cluster's default partition
    gpus: int = 0  # GPUs per job (--gpus-per-node)
    cpus: int = 1  # CPUs per job (--cpus-per-task); a notebook's thread count
    mem_gb: float | None = None  # memory per job (--mem)
    time_min: int | None = None  # time limit; default: from --timeout (notebooks), GRID_TIME_MIN (grid cells)
    sbatch: dict[str, Any] = field(default_factory=dict)  # more sbatch options: {account: abc, qos: high}
    setup: list[str] = field(default_factory=list)  # shell lines the job runs first, e.g. "module load cuda"
    cluster: str = "slurm"  # "local": submitit's LocalExecutor on this machine, without SLURM

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], source: str = "resources") -> SlurmResources:
        """Checked resources from a mapping (a YAML file's content); every problem is reported at once."""
        known = {item.name for item in fields(cls)}
        problems = [f"unknown key {key!r} (known: {', '.join(sorted(known))})" for key in values if key not in known]
        resources = cls(**{key: value for key, value in values.items() if key in known})
        problems += resources.problems()
        if problems:
            raise SlurmError(f"{source}: " + "; ".join(problems))
        return resources

    @classmethod
    def load(cls, path: Path) -> SlurmResources:
        """Resources from a YAML file (an empty file: every default)."""
        try:
            values = yaml.safe_load(Path(path).read_text()) or {}
        except (OSError, yaml.YAMLError) as error:
            raise SlurmError(f"cannot read SLURM resources from {path}: {error}") from error
        if not isinstance(values, dict):
            raise SlurmError(f"{path}: expected a mapping of resources, got {type(values).__name__}")
        return cls.from_mapping(values, str(path))

    def updated(self, **values: Any) -> SlurmResources:
        """A copy with the given values (None: keep this one), checked."""
        merged = {**asdict(self), **{key: value for key, value in values.items() if value is not None}}
        if values.get("sbatch"):
            merged["sbatch"] = {**self.sbatch, **values["sbatch"]}
        return SlurmResources.from_mapping(merged, "SLURM resources")

    def problems(self) -> list[str]:
        problems = []
        if self.partition is not None and not (isinstance(self.partition, str) and self.partition):
            problems.append(f"partition must be a name, got {self.partition!r}")
        for name, least in (("gpus", 0), ("cpus", 1), ("time_min", 1)):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < least):
                problems.append(f"{name} must be an integer ≥ {least}, got {value!r}")
        if self.mem_gb is not None and (isinstance(self.mem_gb, bool) or not isinstance(self.mem_gb, (int, float))
                                        or not self.mem_gb > 0):
            problems.append(f"mem_gb must be a positive number, got {self.mem_gb!r}")
        if not isinstance(self.sbatch, dict):
            problems.append(f"sbatch must be a mapping of option: value, got {self.sbatch!r}")
        else:
            for key, value in self.sbatch.items():
                option = str(key).replace("_", "-")
                if option in MANAGED_OPTIONS:
                    instead = MANAGED_OPTIONS[option]
                    problems.append(f"sbatch option {option!r} is set by protolab"
                                    + (f": use {instead}" if instead else ""))
                elif not isinstance(value, (str, int, float, bool)):
                    problems.append(f"sbatch option {option!r} must be a single value, got {value!r}")
        if not isinstance(self.setup, list) or not all(isinstance(line, str) for line in self.setup):
            problems.append(f"setup must be a list of shell lines, got {self.setup!r}")
        if self.cluster not in CLUSTERS:
            problems.append(f"cluster must be one of {', '.join(CLUSTERS)}, got {self.cluster!r}")
        return problems

    def to_yaml(self) -> str:
        return yaml.safe_dump(asdict(self), sort_keys=False)

    def sbatch_parameters(self, *, name: str, time_min: int, chdir: Path | None = None) -> dict[str, Any]:
        """The parameters of :class:`submitit.SlurmExecutor` asking for these resources."""
        extra = {str(key).replace("_", "-"): value for key, value in self.sbatch.items()}
        if chdir is not None:
            extra.setdefault("chdir", str(chdir))
        parameters: dict[str, Any] = {"job_name": name, "time": time_min, "cpus_per_task": self.cpus,
                                      "signal_delay_s": SIGNAL_DELAY_S, "additional_parameters": extra}
        if self.partition:
            parameters["partition"] = self.partition
        if self.gpus:
            parameters["gpus_per_node"] = self.gpus
        if self.mem_gb:
            parameters["mem"] = f"{int(self.mem_gb)}GB" if float(self.mem_gb).is_integer() \
                else f"{math.ceil(self.mem_gb * 1024)}MB"
        if self.setup:
            parameters["setup"] = list(self.setup)
        return parameters


DEFAULT_NOTEBOOK_TIMEOUT_S = 3600  # a notebook job's limit when neither --timeout nor time_min gives one


def notebook_time_min(timeout_s: float | None) -> int:
    """A notebook job's time limit: ``timeout_s`` (None: :data:`DEFAULT_NOTEBOOK_TIMEOUT_S`, as SLURM needs a
    limit) in whole minutes, rounded up, plus one for the job to start and report its own timeout."""
    return math.ceil((timeout_s or DEFAULT_NOTEBOOK_TIMEOUT_S) / 60) + 1


def grid_resources() -> SlurmResources:
    """The resources of grid-cell jobs: ``$PROTOLAB_SLURM_CONFIG`` (a YAML file) when set, else one CPU."""
    path = os.environ.get(CONFIG_ENV)
    return SlurmResources.load(Path(path)) if path else SlurmResources()


def require_commands(purpose: str) -> None:
    """Refuse ``purpose`` (what needs SLURM) when one of SLURM's commands (:data:`COMMANDS`) is not on PATH."""
    missing = [command for command in COMMANDS if shutil.which(command) is None]
    if missing:
        raise SlurmError(f"{purpose} needs SLURM's commands, but {', '.join(missing)} "
                         f"{'is' if len(missing) == 1 else 'are'} not on PATH; run from a SLURM login node, "
                         "or use the local executor")


def check_cluster(resources: SlurmResources, *, time_min: int) -> None:
    """Refuse, before anything is submitted, a cluster without SLURM's commands or a request SLURM would refuse
    (asked with ``sbatch --test-only``: an unknown partition, more CPUs or GPUs than any node has…)."""
    if resources.cluster != "slurm":
        return
    require_commands("--executor slurm")
    options = [f"--time={time_min}", f"--cpus-per-task={resources.cpus}"]
    options += [f"--partition={resources.partition}"] if resources.partition else []
    options += [f"--gpus-per-node={resources.gpus}"] if resources.gpus else []
    parameters = resources.sbatch_parameters(name="protolab-check", time_min=time_min)
    options += [f"--mem={parameters['mem']}"] if "mem" in parameters else []
    options += [f"--{key}" if value is True else f"--{key}={value}"
                for key, value in parameters["additional_parameters"].items()]
    try:
        answer = subprocess.run(["sbatch", "--test-only", *options, "--wrap", "true"], capture_output=True,
                                text=True, timeout=60)
    except subprocess.TimeoutExpired as error:
        raise SlurmError("sbatch --test-only did not answer within 60 s: is slurmctld reachable?") from error
    if answer.returncode != 0:
        said = " ".join(line.strip() for line in (answer.stderr + answer.stdout).splitlines() if line.strip())
        raise SlurmError(f"SLURM refuses the job request ({' '.join(options)}): {said}")


@contextmanager
def _submission_environment() -> Iterator[None]:
    """Hide the variables of the job we may be running in (``SLURM_JOB_ID``, ``SUBMITIT_*``…) while a job is
    submitted, so that the new job does not inherit them; ``SLURM_CONF`` stays (it names the cluster)."""
    with _SUBMITTING:
        hidden = {key: os.environ.pop(key) for key in list(os.environ)
                  if key.startswith(("SLURM_", "SLURMD_", "SRUN_", "SUBMITIT_")) and key != "SLURM_CONF"}
        try:
            yield
        finally:
            os.environ.update(hidden)


def queue_states(job_ids: Sequence[str]) -> dict[str, str]:
    """SLURM's state of each job (``GONE`` when squeue no longer lists it); empty when squeue cannot answer."""
    if not job_ids:
        return {}
    try:
        answer = subprocess.run(["squeue", "--noheader", "--states=all", "--format=%i|%T",
                                 f"--jobs={','.join(job_ids)}"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return {}
    if answer.returncode != 0:
        # one job id squeue does not know is an error, several only leave it out
        return {job_ids[0]: GONE} if len(job_ids) == 1 and "Invalid job id" in answer.stderr else {}
    listed = dict(line.split("|", 1) for line in answer.stdout.split() if "|" in line)
    return {job_id: listed.get(job_id, GONE) for job_id in job_ids}


def cancel(job_ids: Sequence[str]) -> None:
    """``scancel`` every job of ``job_ids`` (those already ended are ignored by SLURM)."""
    if job_ids:
        subprocess.run(["scancel", *job_ids], capture_output=True, timeout=60)


def cancel_listed(jobs_file: Path) -> list[str]:
    """Cancel the SLURM jobs listed in ``jobs_file`` (one id a line) that have not ended; return their ids."""
    try:
        listed = [line.strip() for line in Path(jobs_file).read_text().splitlines() if line.strip()]
    except FileNotFoundError:
        return []
    if not listed or shutil.which("squeue") is None:
        return []
    running = [job_id for job_id, state in queue_states(listed).items() if state not in FINAL_STATES | {GONE}]
    cancel(running)
    return running


class Job:
    """One submitted job: its id, whether it has ended, its result, its logs; :meth:`cancel` ends it."""

    def __init__(self, job: Any, cluster: str) -> None:
        self.job, self.cluster = job, cluster
        self.state = "PENDING"  # SLURM's state when last asked

    @property
    def job_id(self) -> str:
        return str(self.job.job_id)

    @property
    def log(self) -> Path:
        """submitit's log of the job (the call's stderr: tracebacks, signals)."""
        return Path(self.job.paths.stderr)

    def has_result(self) -> bool:
        return Path(self.job.paths.result_pickle).exists()

    def outcome(self) -> tuple[str, Any]:
        """``("success", value)``, ``("error", traceback text)`` or ``("ended", SLURM state)`` when the job
        ended without a result."""
        if not self.has_result():
            return "ended", self.state
        from submitit.core.utils import pickle_load

        return pickle_load(self.job.paths.result_pickle)

    def cancel(self) -> None:
        if self.cluster == "local":
            self.job.cancel(check=False)
        else:
            cancel([self.job_id])

    def describe(self) -> str:
        return f"{'SLURM' if self.cluster == 'slurm' else 'submitit local'} job {self.job_id}"


class Submitter:
    """Submits calls as jobs with the same resources into ``folder`` (their pickles, scripts and logs)."""

    def __init__(self, folder: Path, resources: SlurmResources, *, name: str, time_min: int,
                 chdir: Path | None = None) -> None:
        import submitit  # lazily: `protolab list` and local runs never import it

        self.folder, self.resources = Path(folder).resolve(), resources
        if resources.cluster == "local":
            self.executor = submitit.LocalExecutor(self.folder)
            self.executor.update_parameters(timeout_min=time_min, gpus_per_node=resources.gpus,
                                            signal_delay_s=SIGNAL_DELAY_S, setup=list(resources.setup))
        else:
            require_commands("submitting SLURM jobs")
            self.executor = submitit.SlurmExecutor(self.folder)
            self.executor.update_parameters(**resources.sbatch_parameters(name=name, time_min=time_min, chdir=chdir))

    def submit(self, function: Callable[..., Any], *args: Any) -> Job:
        with _submission_environment():
            return Job(self.executor.submit(function, *args), self.resources.cluster)


def wait_for(jobs: Sequence[Job], stop: threading.Event | None = None) -> Iterator[Job]:
    """Yield each job of ``jobs`` as it ends (result file written, or a final state in squeue), until all
    have or ``stop`` is set. Ended without a result, a job's :attr:`Job.state` is SLURM's final state."""
    waiting = list(jobs)
    last_asked = -math.inf
    while waiting and not (stop and stop.is_set()):
        for job in [job for job in waiting if job.has_result()]:
            waiting.remove(job)
            yield job
        if not waiting:
            return
        if time.monotonic() - last_asked >= QUEUE_POLL_S:
            last_asked = time.monotonic()
            for job, state in _states(waiting).items():
                job.state = state
                if (state in FINAL_STATES or state == GONE) and not _result_after_all(job):
                    waiting.remove(job)
                    yield job
        if stop:
            stop.wait(POLL_S)
        else:
            time.sleep(POLL_S)


def _states(jobs: Sequence[Job]) -> dict[Job, str]:
    slurm = [job for job in jobs if job.cluster == "slurm"]
    states = queue_states([job.job_id for job in slurm])
    found = {job: states[job.job_id] for job in slurm if job.job_id in states}
    for job in jobs:
        if job.cluster == "local":
            state = job.job.state
            found[job] = "RUNNING" if state == "RUNNING" else ("COMPLETED" if state == "FINISHED" else "CANCELLED")
    return found


def _result_after_all(job: Job, grace_s: float = 3.0) -> bool:
    """Whether a job that ended has its result file after all (a shared file system may show it late)."""
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        if job.has_result():
            return True
        time.sleep(0.5)
    return job.has_result()


# ---- notebooks --------------------------------------------------------------------------------------------


def run_notebook_job(command: list[str], variables: Mapping[str, str], log: str,
                     timeout: float | None) -> dict[str, Any]:
    """Inside the job: run the papermill ``command`` with this node's environment plus ``variables``, its output
    in ``log``, stopped after ``timeout`` seconds or at SIGTERM/SIGINT/SIGUSR2 together with every process it
    started (:class:`~protolab.runner.processes.ProcessTree`). Returns its exit code (None: it did not exit),
    why it ended (``exited``, ``timeout`` or the signal's name), its process ids, host and wall time."""
    env = headless_environment(variables)
    started = time.monotonic()
    tree = None
    # SIGINT, SIGTERM and SIGUSR2 stop the notebook (not submitit's handlers: they ignore SIGTERM, requeue at SIGUSR2);
    # once it has stopped, nothing cuts the clean-up short (SLURM's SIGKILL comes KillWait later).
    with signals_ignored(JOB_STOP_SIGNALS):
        try:
            with stopped_by_signals(JOB_STOP_SIGNALS):
                tree = launch_logged(command, log, env)
                code = tree.wait(timeout)
                ended = "exited" if code is not None else "timeout"
        except KeyboardInterrupt as stopped:
            code, ended = None, str(stopped)
        finally:
            if tree is not None:
                tree.stop()
    return {"code": code, "ended": ended, "pids": tree.pids if tree else [], "host": socket.gethostname(),
            "wall_time_s": time.monotonic() - started}


class NotebookJob:
    """A notebook running as a job, seen by the runner like a local process tree (``wait``, ``stop``, ``pids``)."""

    def __init__(self, job: Job, jobs_file: Path) -> None:
        self.job, self.jobs_file = job, jobs_file
        self.pids: list[int] = []
        self.failure = ""  # why the job failed when the notebook itself did not say (cancelled, out of memory…)
        self.wall_time_s: float | None = None
        self._stop = threading.Event()

    @property
    def job_id(self) -> str:
        return self.job.job_id

    @property
    def where(self) -> str:
        return f"{self.job.describe()}, "

    def wait(self, timeout: float | None = None) -> int | None:
        """The notebook's exit code once the job has ended; None when it timed out (in the job or at SLURM's time
        limit); -1 when the job ended without the notebook exiting (then :attr:`failure` says why). ``timeout``
        is enforced by the job itself, from when it starts, not from when it was queued."""
        for _ in wait_for([self.job], self._stop):
            break
        if self._stop.is_set():
            return -1
        kind, value = self.job.outcome()
        if kind == "success":
            self.pids, self.wall_time_s = value["pids"], value["wall_time_s"]
            if value["ended"] in ("timeout", "SIGUSR2"):
                return None
            if value["code"] is not None:
                return value["code"]
            self.failure = (f"{self.job.describe()} was stopped by {value['ended']} "
                            f"(state {_fresh_state(self.job)}); job log {self.job.log}")
            return -1
        if kind == "ended" and value == "TIMEOUT":
            return None
        said = f"ended {value}" if kind == "ended" else f"failed: {_last_line(value)}"
        self.failure = f"{self.job.describe()} {said} without finishing the notebook; job log {self.job.log}"
        return -1

    def stop(self) -> None:
        """Cancel the job unless it has ended, and every job its kernel submitted (grid cells)."""
        self._stop.set()
        if not self.job.has_result():
            self.job.cancel()
        cancel_listed(self.jobs_file)


def _last_line(text: Any) -> str:
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    return lines[-1] if lines else "no message"


def _fresh_state(job: Job) -> str:
    if job.cluster != "slurm":
        return job.state
    return queue_states([job.job_id]).get(job.job_id, job.state)


class SlurmNotebooks:
    """The runner's SLURM executor: each notebook of a run is one job with ``resources``; the jobs' scripts,
    pickles and logs go to ``<run dir>/slurm/``."""

    name = "slurm"

    def __init__(self, resources: SlurmResources | None = None) -> None:
        self.resources = resources or SlurmResources()
        self.time_min = self.resources.time_min

    def check(self, *, timeout: float | None) -> None:
        """Refuse before the run starts when SLURM is missing or would refuse the request (:func:`check_cluster`)."""
        self.time_min = self.resources.time_min or notebook_time_min(timeout)
        check_cluster(self.resources, time_min=self.time_min)

    def threads(self, jobs: int) -> int:
        """Each notebook's torch/OpenMP threads: the CPUs its job asks for."""
        return self.resources.cpus

    def kernel_variables(self, run_dir: Path) -> dict[str, str]:
        """``$PROTOLAB_SLURM_CONFIG`` for the kernels, so that the grid cells they submit ask for the same
        resources (a value the user set is kept)."""
        if CONFIG_ENV in os.environ:
            return {}
        path = run_dir / "slurm-resources.yaml"
        if not path.exists():  # a cell cannot outlast the notebook waiting for it
            path.write_text(self.resources.updated(time_min=self.time_min).to_yaml())
        return {CONFIG_ENV: str(path)}

    def launch(self, name: str, command: list[str], variables: Mapping[str, str], log: Path,
               timeout: float | None) -> NotebookJob:
        """Submit notebook ``name`` (``command``, writing ``log``) as job ``protolab-<name>``."""
        run_dir = Path(log).resolve().parent
        submitter = Submitter(run_dir / "slurm", self.resources, name=f"protolab-{name}",
                              time_min=self.time_min or notebook_time_min(timeout), chdir=run_dir)
        job = submitter.submit(run_notebook_job, command, dict(variables), str(log), timeout)
        return NotebookJob(job, Path(variables.get(JOBS_FILE_ENV) or run_dir / f"{name}.jobs"))


# ---- grid cells -------------------------------------------------------------------------------------------


def record_job(job: Job) -> None:
    """Append a SLURM job's id to ``$PROTOLAB_JOBS_FILE`` when the runner set it."""
    path = os.environ.get(JOBS_FILE_ENV)
    if path and job.cluster == "slurm":
        with open(path, "a") as handle:
            handle.write(f"{job.job_id}\n")


class CellsFailed(RuntimeError):
    """Some grid cells' jobs ended without storing a result; the others are stored."""


def run_cells(call: Callable[..., Any], arguments: Sequence[tuple[Any, ...]], folder: Path, *, name: str,
              resources: SlurmResources | None = None) -> Iterator[int]:
    """Submit ``call(*args)`` for each item of ``arguments`` as one job each and yield the item's position as its
    job succeeds. A job that fails or ends without a result does not stop the others: once all have ended,
    :class:`CellsFailed` names each with its job id, state or error line, and log. Interrupted (or closed early),
    it cancels every job it submitted that has not ended."""
    resources = resources or grid_resources()
    submitter = Submitter(folder, resources, name=name, time_min=resources.time_min or GRID_TIME_MIN)
    jobs: dict[Job, int] = {}
    pending: list[Job] = []
    try:
        for position, args in enumerate(arguments):
            job = submitter.submit(call, *args)
            record_job(job)
            jobs[job] = position
            pending.append(job)
        failures = []
        for job in wait_for(pending):
            pending.remove(job)
            kind, value = job.outcome()
            if kind == "success":
                yield jobs[job]
            else:
                said = f"failed: {_last_line(value)}" if kind == "error" else f"ended {value} without a result"
                failures.append(f"{job.describe()} {said} (log {job.log})")
        if failures:
            raise CellsFailed(f"{len(failures)} of {len(jobs)} cell job(s) did not store a result; the others did, "
                              "and a re-run computes only the missing ones:\n  " + "\n  ".join(failures))
    finally:  # one scancel for all the SLURM jobs left: a busy controller answers each call slowly
        left = [job for job in pending if not job.has_result()]
        cancel([job.job_id for job in left if job.cluster == "slurm"])
        for job in left:
            if job.cluster != "slurm":
                job.cancel()
