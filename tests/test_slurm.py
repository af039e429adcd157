"""Notebooks and grid cells as SLURM jobs (protolab.runner.slurm): on a real single-node cluster started on
localhost (tests/slurm_cluster.py; skipped, saying why, where it cannot start) and through submitit's
LocalExecutor, which needs no SLURM."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import psutil
import pytest

from protolab.runner.cli import main
from protolab.runner.execute import run_notebooks
from protolab.runner.grid import run_grid
from protolab.runner.report import markdown_table
from protolab.runner.slurm import CellsFailed, SlurmError, SlurmNotebooks, SlurmResources, notebook_time_min
from tests.conftest import STANDARD_PARAMETERS, write_notebook
from tests.slurm_cluster import Cluster, slurm_cluster  # noqa: F401 (the session's cluster fixture)
from tests.test_runner import FAILING, HEALTHY, _running

ROOT = Path(__file__).resolve().parents[1]
SMOKE_NOTEBOOKS = ["00_data_overview", "poincare_uncertainty"]  # the fastest smoke runs of the repository's notebooks
SLEEPIER = ["import time\ntime.sleep(600)"]
SLEEPY = ["import os, time\nfrom protolab import figures\nfigures.start('sleepy', globals())",
          "open(os.environ['SLEEPY_MARKER'], 'w').write(str(os.getpid()))\ntime.sleep(600)"]
GRID_KERNEL = ["import os, time\nfrom protolab import figures\nfrom protolab.runner.grid import run_grid\n"
               "figures.start('sweep', globals())",
               "def compute(cell):\n    time.sleep(600)\n    return {}\n"
               "run_grid([{'seed': 0}, {'seed': 1}], compute, os.environ['SWEEP_DIR'], executor='slurm')"]


@pytest.fixture
def project(tmp_path):
    notebooks = tmp_path / "notebooks"
    write_notebook(notebooks / "healthy.ipynb", STANDARD_PARAMETERS + "epochs: int = 5  # passes\n", *HEALTHY,
                   title="Healthy experiment")
    write_notebook(notebooks / "failing.ipynb", STANDARD_PARAMETERS, *FAILING)
    (notebooks / "profiles.yaml").write_text("healthy:\n  smoke: {epochs: 2}\n")
    return tmp_path


@pytest.fixture
def one_thread(monkeypatch):
    """Local runs and jobs alike train with one thread, so that their numbers agree."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("MKL_NUM_THREADS", "1")


# ---- without SLURM ----------------------------------------------------------------------------------------


def test_resources_come_from_a_yaml_file_and_options_override_it(tmp_path):
    config = tmp_path / "cluster.yaml"
    config.write_text("partition: gpu\ngpus: 1\ncpus: 8\nmem_gb: 30\nsbatch: {account: lab, exclusive: true}\n"
                      "setup: [module load cuda]\n")
    resources = SlurmResources.load(config).updated(cpus=4, mem_gb=7.5, sbatch={"qos": "high"})
    parameters = resources.sbatch_parameters(name="protolab-x", time_min=notebook_time_min(90))
    assert parameters == {"job_name": "protolab-x", "time": 3, "cpus_per_task": 4, "signal_delay_s": 30,
                          "additional_parameters": {"account": "lab", "exclusive": True, "qos": "high"},
                          "partition": "gpu", "gpus_per_node": 1, "mem": "7680MB", "setup": ["module load cuda"]}
    assert notebook_time_min(3600) == 61 and notebook_time_min(60.5) == 3
    assert notebook_time_min(None) == 61  # no --timeout: SLURM still needs a limit


def test_bad_resources_are_refused_naming_every_problem(tmp_path):
    config = tmp_path / "cluster.yaml"
    config.write_text("gpu: 1\ncpus: 0\nsbatch: {time: 10, cpus_per_task: 2}\ncluster: pbs\n")
    with pytest.raises(SlurmError) as error:
        SlurmResources.load(config)
    message = str(error.value)
    for fragment in ("unknown key 'gpu'", "cpus must be an integer ≥ 1, got 0", "'time' is set by protolab",
                     "'cpus-per-task' is set by protolab: use cpus", "cluster must be one of slurm, local"):
        assert fragment in message


def test_the_slurm_executor_is_refused_where_sbatch_is_not_found(project, capsys, monkeypatch, tmp_path):
    empty = tmp_path / "no-slurm-here"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    assert main(["--notebooks", str(project / "notebooks"), "run", "healthy", "--executor", "slurm"]) == 2
    err = capsys.readouterr().err
    assert "--executor slurm needs SLURM's commands" in err and "sbatch" in err and "not on PATH" in err
    assert not (project / "runs").exists()


def test_submitit_local_executor_runs_notebooks_and_grid_cells_as_jobs(project, tmp_path, monkeypatch):
    """The job path (pickled calls, result files, polling, publishing as jobs end) on this machine, no SLURM."""
    results = {r.notebook: r for r in run_notebooks(["healthy", "failing"], profile="smoke",
                                                    notebooks=project / "notebooks",
                                                    executor=SlurmNotebooks(SlurmResources(cluster="local")))}
    assert results["healthy"].status == "ok" and results["healthy"].job_id
    failing = results["failing"]
    assert failing.status == "failed" and failing.failing_cell == "cell 3" and failing.job_id
    assert failing.error == "ValueError: broken on purpose with seed 0" and Path(failing.log).exists()
    figures_dir = next((project / "runs").iterdir()) / "figures"
    assert (figures_dir / "healthy__line.png").exists()
    assert json.loads((figures_dir / "runs.json").read_text())["failing"]["job_id"] == failing.job_id

    config = tmp_path / "local.yaml"
    config.write_text("cluster: local\n")
    monkeypatch.setenv("PROTOLAB_SLURM_CONFIG", str(config))
    cells = [{"seed": seed} for seed in range(2)]
    first = run_grid(cells, lambda cell: {"pid": os.getpid(), "seed": cell["seed"]}, tmp_path / "grid",
                     progress=False, executor="slurm")
    assert first.sources == ["computed", "computed"] and os.getpid() not in {r["pid"] for r in first.results}
    again = run_grid(cells, lambda cell: {"pid": os.getpid(), "seed": cell["seed"]}, tmp_path / "grid",
                     progress=False, executor="slurm")
    assert again.sources == ["cached", "cached"] and again.results == first.results
    assert not list((tmp_path / "grid" / ".jobs").iterdir()), "a finished sweep leaves no job files"


# ---- on a localhost SLURM cluster -------------------------------------------------------------------------


def _report_rows(out_dir: Path) -> list[str]:
    """The rows of REPORT.md's tables, run ids, wall times and each model's ``source`` masked (the first of two runs
    sharing the session's cache computes a model the second reuses)."""
    rows = [line for line in (out_dir / "REPORT.md").read_text().splitlines() if line.startswith("|")]
    rows = [re.sub(r"\d{8}-\d{6}-[\w-]+-\d+", "<run>", row) for row in rows]
    rows = [re.sub(r"\| (cached|computed) \|", "| <source> |", row) for row in rows]
    return [re.sub(r"\b\d+(\.\d+)? s\b", "<time> s", row) for row in rows]


@pytest.mark.slurm
@pytest.mark.notebook
def test_smoke_notebooks_on_slurm_give_the_figures_and_report_of_a_local_run(slurm_cluster, tmp_path, one_thread):
    runs_dir = tmp_path / "runs"
    local = run_notebooks(SMOKE_NOTEBOOKS, profile="smoke", jobs=2, timeout=600, out_dir=tmp_path / "local",
                          runs_dir=runs_dir, root=ROOT)
    assert [r.status for r in local] == ["ok", "ok"], [r.error for r in local]
    on_slurm = run_notebooks(SMOKE_NOTEBOOKS, profile="smoke", timeout=600, out_dir=tmp_path / "slurm",
                             runs_dir=runs_dir, root=ROOT, executor="slurm", resources=SlurmResources(cpus=1))
    assert [r.status for r in on_slurm] == ["ok", "ok"], [r.error for r in on_slurm]
    runs = json.loads((tmp_path / "slurm" / "runs.json").read_text())
    assert all(runs[name]["status"] == "ok" and runs[name]["job_id"] for name in SMOKE_NOTEBOOKS)
    produced = {path.name for path in (tmp_path / "local").iterdir()}
    assert {path.name for path in (tmp_path / "slurm").iterdir()} == produced
    assert len([name for name in produced if name.endswith(".png")]) >= 4
    assert _report_rows(tmp_path / "slurm") == _report_rows(tmp_path / "local")


@pytest.mark.slurm
def test_a_failed_job_is_reported_with_its_job_id_cell_error_and_log(slurm_cluster, project, capsys):
    notebooks = str(project / "notebooks")
    assert main(["--notebooks", notebooks, "run", "--executor", "slurm", "--partition", "nosuch"]) == 2
    assert "SLURM refuses the job request" in capsys.readouterr().err and not (project / "runs").exists()
    assert main(["--notebooks", notebooks, "run", "--profile", "smoke", "--executor", "slurm", "--timeout", "90"]) == 1
    out, err = capsys.readouterr()
    summary = {record["notebook"]: record for record in json.loads(next((project / "runs").glob("*/summary.json"))
                                                                    .read_text())}
    failing, healthy = summary["failing"], summary["healthy"]
    assert healthy["status"] == "ok" and failing["status"] == "failed" and failing["failing_cell"] == "cell 3"
    shown = markdown_table(pd.DataFrame({"t": [round(failing["wall_time_s"], 1)]})).splitlines()[-1].strip("| ")
    assert f"| failing | failed | {shown} | {failing['job_id']} | cell 3 | ValueError: broken " \
           "on purpose with seed 0 |" in out  # the wall time as the summary prints it (2.0 s shows as 2)
    assert f"failed failing in {failing['wall_time_s']:.1f} s (SLURM job {failing['job_id']}, log {failing['log']})" in out
    assert "protolab: 1 notebook(s) failed: failing" in err
    script = Path(failing["log"]).parent / "slurm" / f"{failing['job_id']}_submission.sh"
    assert "#SBATCH --time=3\n" in script.read_text(), "--timeout 90 s gives a 3-minute time limit"
    assert any((project / "runs").glob("*/figures/healthy__line.png"))


@pytest.mark.slurm
def test_a_notebook_past_its_timeout_is_stopped_in_its_job_and_reported_as_a_timeout(slurm_cluster, project):
    write_notebook(project / "notebooks" / "sleepier.ipynb", STANDARD_PARAMETERS, *SLEEPIER)
    result = run_notebooks(["sleepier"], notebooks=project / "notebooks", timeout=8, executor="slurm")[0]
    assert result.status == "timeout" and result.error == "exceeded the 8 s limit" and result.job_id
    assert result.processes and not [pid for pid in result.processes if _running(pid)]
    assert _wait_for_state(slurm_cluster, result.job_id, {"COMPLETED"}, deadline_s=60)


def _jobs_file_ids(path: Path, count: int, deadline_s: float = 120) -> list[str]:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        ids = path.read_text().split() if path.exists() else []
        if len(ids) >= count:
            return ids
        time.sleep(0.5)
    raise AssertionError(f"{count} job id(s) were not written to {path} within {deadline_s} s")


def _wait_for_state(cluster: Cluster, job_id: str, states: set[str], deadline_s: float = 180) -> str:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        state = cluster.run("squeue", "--noheader", "--states=all", "--format=%T", f"--jobs={job_id}").stdout.strip()
        if state in states:
            return state
        time.sleep(0.5)
    raise AssertionError(f"job {job_id} did not reach {states} within {deadline_s} s")


@pytest.mark.slurm
def test_a_grid_cell_cancelled_on_slurm_is_the_only_one_a_rerun_computes(slurm_cluster, tmp_path, monkeypatch):
    jobs_file, slow = tmp_path / "jobs", tmp_path / "slow"
    monkeypatch.setenv("PROTOLAB_JOBS_FILE", str(jobs_file))
    slow.touch()

    def compute(cell):
        if cell["seed"] == 1 and slow.exists():
            time.sleep(600)
        return {"seed": cell["seed"], "job": os.environ.get("SLURM_JOB_ID")}

    cells = [{"seed": 0}, {"seed": 1}]

    def cancel_the_slow_cell():
        slow_job = _jobs_file_ids(jobs_file, 2)[1]
        _wait_for_state(slurm_cluster, slow_job, {"RUNNING"})
        slurm_cluster.run("scancel", slow_job)

    canceller = threading.Thread(target=cancel_the_slow_cell)
    canceller.start()
    with pytest.raises(CellsFailed, match=r"1 of 2 cell job\(s\) did not store a result") as failed:
        run_grid(cells, compute, tmp_path / "grid", progress=False, executor="slurm")
    canceller.join()
    first_jobs = _jobs_file_ids(jobs_file, 2)
    assert f"SLURM job {first_jobs[1]} ended CANCELLED without a result" in str(failed.value)
    assert len(list((tmp_path / "grid").glob("*.pt"))) == 1, "the finished cell is stored"
    slow.unlink()
    resumed = run_grid(cells, compute, tmp_path / "grid", progress=False, executor="slurm")
    assert resumed.sources == ["cached", "computed"]
    assert resumed.results[0]["job"] == first_jobs[0], "cell 0 comes from the first sweep's job"
    new_jobs = _jobs_file_ids(jobs_file, 3)[2:]
    assert len(new_jobs) == 1 and resumed.results[1]["job"] == new_jobs[0], "one job, for the cancelled cell only"


@pytest.mark.slurm
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_stopping_the_runner_cancels_every_job_it_submitted(slurm_cluster, project, tmp_path, signum):
    write_notebook(project / "notebooks" / "sleepy.ipynb", STANDARD_PARAMETERS, *SLEEPY)
    write_notebook(project / "notebooks" / "sleepier.ipynb", STANDARD_PARAMETERS, *SLEEPIER)
    marker = tmp_path / "kernel-pid"
    runner = subprocess.Popen([sys.executable, "-m", "protolab", "--notebooks", str(project / "notebooks"), "run",
                               "sleepy", "sleepier", "--executor", "slurm"],
                              env={**os.environ, "SLEEPY_MARKER": str(marker)},
                              stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 180
        while not (marker.exists() and marker.read_text()) and time.monotonic() < deadline and runner.poll() is None:
            time.sleep(0.5)
        assert marker.exists(), "the sleepy notebook's kernel did not start in its job"
    finally:
        runner.send_signal(signum)
        out, err = runner.communicate(timeout=120)
    assert runner.returncode == 128 + signum, err
    assert err.strip().splitlines()[-1].startswith(f"protolab: interrupted by {signal.Signals(signum).name}; "
                                                   "every job of the run was cancelled")
    summary = json.loads(next((project / "runs").glob("*/summary.json")).read_text())
    assert {record["notebook"]: record["status"] for record in summary} == {"sleepy": "interrupted",
                                                                          "sleepier": "interrupted"}
    job_ids = [record["job_id"] for record in summary]
    assert all(job_ids), "the summary names each notebook's job"
    for job_id in job_ids:
        _wait_for_state(slurm_cluster, job_id, {"CANCELLED"}, deadline_s=60)
    assert not set(slurm_cluster.queue()) & set(job_ids), "no job of the run is left in the queue"
    kernel = int(marker.read_text())
    deadline = time.monotonic() + 30
    while psutil.pid_exists(kernel) and psutil.Process(kernel).status() != psutil.STATUS_ZOMBIE \
            and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not psutil.pid_exists(kernel) or psutil.Process(kernel).status() == psutil.STATUS_ZOMBIE


@pytest.mark.slurm
def test_stopping_a_local_run_cancels_the_grid_cell_jobs_its_kernel_submitted(slurm_cluster, project, tmp_path):
    write_notebook(project / "notebooks" / "sweep.ipynb", STANDARD_PARAMETERS, *GRID_KERNEL)
    runner = subprocess.Popen([sys.executable, "-m", "protolab", "--notebooks", str(project / "notebooks"), "run",
                               "sweep"], env={**os.environ, "SWEEP_DIR": str(tmp_path / "sweep")},
                              stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    jobs_file = next(iter((project / "runs").glob("*/sweep.jobs")), None)
    try:
        deadline = time.monotonic() + 180
        while jobs_file is None and time.monotonic() < deadline and runner.poll() is None:
            time.sleep(0.5)
            jobs_file = next(iter((project / "runs").glob("*/sweep.jobs")), None)
        cells = _jobs_file_ids(jobs_file, 2)
        for job_id in cells:
            _wait_for_state(slurm_cluster, job_id, {"RUNNING", "PENDING"})
    finally:
        runner.send_signal(signal.SIGINT)
        runner.communicate(timeout=120)
    assert runner.returncode == 128 + signal.SIGINT
    for job_id in cells:
        _wait_for_state(slurm_cluster, job_id, {"CANCELLED"}, deadline_s=60)


@pytest.mark.slurm
def test_interrupting_a_grid_on_slurm_cancels_its_cell_jobs(slurm_cluster, tmp_path):
    jobs_file = tmp_path / "jobs"
    # SIGINT's default handler, even when this test runs under a shell that started it ignoring SIGINT (nohup, &)
    script = ("import signal, time\nsignal.signal(signal.SIGINT, signal.default_int_handler)\n"
              "from protolab.runner.grid import run_grid\n"
              "def compute(cell):\n    time.sleep(600)\n    return {}\n"
              f"run_grid([{{'seed': 0}}, {{'seed': 1}}], compute, {str(tmp_path / 'grid')!r}, executor='slurm')\n")
    sweep = subprocess.Popen([sys.executable, "-c", script], env={**os.environ, "PROTOLAB_JOBS_FILE": str(jobs_file)},
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        cells = _jobs_file_ids(jobs_file, 2)
        for job_id in cells:
            _wait_for_state(slurm_cluster, job_id, {"RUNNING", "PENDING"})
    finally:
        sweep.send_signal(signal.SIGINT)
        _, err = sweep.communicate(timeout=120)
    assert "KeyboardInterrupt" in err
    for job_id in cells:
        _wait_for_state(slurm_cluster, job_id, {"CANCELLED"}, deadline_s=60)
    assert not list((tmp_path / "grid").glob("*.pt"))


@pytest.mark.slurm
@pytest.mark.notebook
def test_grid_cells_computed_as_slurm_jobs_are_the_cells_a_local_run_reuses(slurm_cluster, tmp_path, isolated_cache,
                                                                           monkeypatch, one_thread):
    cache = tmp_path / "cache"
    shutil.copytree(isolated_cache, cache, ignore=shutil.ignore_patterns("grids"))
    monkeypatch.setenv("PROTOLAB_CACHE_DIR", str(cache))

    def ablations(run: str, executor: str) -> pd.DataFrame:
        result = run_notebooks(["ipn_ablations"], profile="smoke", overrides={"executor": executor}, timeout=600,
                               out_dir=tmp_path / run, runs_dir=tmp_path / "runs", root=ROOT)[0]
        assert result.status == "ok", f"{result.failing_cell} {result.error}"
        return pd.read_csv(tmp_path / run / "ipn_ablations__runs.csv")

    on_slurm = ablations("slurm", "slurm")
    assert (on_slurm.source == "computed").all()
    logs = list((cache / "grids" / "ipn_ablations" / ".jobs").glob("*/*_log.err"))
    assert not logs, "a finished sweep removes its job files"
    here = ablations("local", "local")
    assert (here.source == "cached").all(), "the jobs stored each cell under the key a local run looks for"
    pd.testing.assert_frame_equal(on_slurm.drop(columns="source"), here.drop(columns="source"))
