"""The papermill runner and the ``protolab`` command (protolab.runner), on notebooks made by the tests."""

from __future__ import annotations

import contextlib
import inspect
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest
import yaml

from tests.conftest import STANDARD_PARAMETERS, write_notebook
from protolab.runner.cli import main
from protolab.runner.execute import plan, run_notebooks
from protolab.runner.parameters import ParameterError, discover, parse_parameters_cell
from protolab.runner.progress import estimated_durations
from protolab.runner.publish import out_dir_lock

HEALTHY = ["from protolab import figures\nimport matplotlib.pyplot as plt\nimport pandas as pd\n"
           "session = figures.start('healthy', globals())\nfigures.describe_data('numbers made up in the cell')",
           "fig, ax = plt.subplots()\nax.plot(range(epochs))\nfigures.save_figure(fig, 'line')\n"
           "figures.save_table(pd.DataFrame({'epochs': [epochs]}), 'table')"]
FAILING = ["x = 1", "raise ValueError(f'broken on purpose with seed {seed}')", "y = 2"]


@pytest.fixture
def project(tmp_path):
    notebooks = tmp_path / "notebooks"
    write_notebook(notebooks / "healthy.ipynb", STANDARD_PARAMETERS + "epochs: int = 5  # passes\n"
                   "lr: float = 0.001  # step size\n", *HEALTHY, title="Healthy experiment")
    write_notebook(notebooks / "failing.ipynb", STANDARD_PARAMETERS, *FAILING)
    (notebooks / "profiles.yaml").write_text("healthy:\n  smoke: {epochs: 2}\n")
    return tmp_path


def _run_dir(project):
    return next((project / "runs").iterdir())


def test_failing_notebook_does_not_stop_a_healthy_one_and_is_reported(project, capsys):
    code = main(["--notebooks", str(project / "notebooks"), "run", "--profile", "smoke", "--jobs", "2",
                 "-p", "lr=2e-05"])
    assert code == 1
    out, err = capsys.readouterr()
    assert "failing" in err and "ValueError: broken on purpose with seed 0" in out and "cell 3" in out
    assert not (project / "figures").exists(), "only the default profile publishes to figures/"
    figures_dir = _run_dir(project) / "figures"
    assert (figures_dir / "healthy__line.png").exists() and (figures_dir / "healthy__line.pdf").exists()
    sidecar = json.loads((figures_dir / "healthy__table.json").read_text())
    assert sidecar["profile"] == "smoke" and sidecar["parameters"]["epochs"] == 2
    assert sidecar["parameters"]["lr"] == 2e-05
    runs = json.loads((figures_dir / "runs.json").read_text())
    assert runs["healthy"]["status"] == "ok" and runs["failing"]["status"] == "failed"
    report = (figures_dir / "REPORT.md").read_text()
    assert "## Healthy experiment" in report and "numbers made up in the cell" in report
    assert "**FAILED**" in report
    run_files = {path.name for path in _run_dir(project).iterdir()}
    assert {"healthy.ipynb", "failing.ipynb", "summary.md", "summary.json", "failing.staged"} <= run_files
    assert "healthy.staged" not in run_files, "published outputs leave the run"
    assert f"started healthy (log {_run_dir(project) / 'healthy.log'})" in out
    assert f"failed failing in " in out and "ok healthy in " in out


def test_outputs_of_a_notebook_that_later_fails_are_marked_stale(project):
    notebooks = project / "notebooks"
    assert run_notebooks(["healthy"], notebooks=notebooks)[0].status == "ok"
    published = {path.name: path.read_bytes() for path in (project / "figures").glob("healthy__*")}
    write_notebook(notebooks / "healthy.ipynb", STANDARD_PARAMETERS + "epochs: int = 5  # passes\n",
                   HEALTHY[0], "figures.save_text('half done', 'partial')\nassert epochs > 100, 'too few epochs'",
                   title="Healthy experiment")
    result = run_notebooks(["healthy"], notebooks=notebooks)[0]
    assert result.status == "failed" and result.failing_cell == "cell 3"
    assert result.error == "AssertionError: too few epochs"
    assert {path.name: path.read_bytes() for path in (project / "figures").glob("healthy__*")} == published
    report = (project / "figures" / "REPORT.md").read_text()
    assert "Last run failed" in report and "Line — **stale**" in report and "partial" not in report


@pytest.mark.parametrize("args, fragment", [
    (["healthy", "-p", "epoch=3"], "'epoch'"),
    (["healthy", "-p", "epochs=three"], "'epochs'"),
    (["healthy", "-p", "seed=1.5"], "'seed'"),
    (["ghost"], "'ghost'"),
    (["healthy", "-p", "novalue"], "KEY=VALUE"),
    (["healthy", "--timeout", "0"], "--timeout"),
    (["healthy", "--jobs", "0"], "--jobs"),
    (["healthy", "--profile", "smoke", "-p", "profile=full"], "conflicts with --profile smoke"),
    (["healthy", "--gpus", "1", "--sbatch", "qos=high"], "--gpus, --sbatch only apply with --executor slurm"),
    (["healthy", "--executor", "slurm", "--cpus", "0"], "cpus must be an integer ≥ 1, got 0"),
    (["healthy", "--executor", "slurm", "--sbatch", "time=5"], "sbatch option 'time' is set by protolab"),
    (["healthy", "--executor", "slurm", "--slurm-config", "/nonexistent.yaml"],
     "cannot read SLURM resources from /nonexistent.yaml"),
])
def test_bad_names_and_parameters_are_refused_before_anything_runs(project, capsys, args, fragment):
    code = main(["--notebooks", str(project / "notebooks"), "run", *args])
    assert code == 2
    assert fragment in capsys.readouterr().err
    assert not (project / "runs").exists() and not (project / "figures").exists()


def test_a_run_without_timeout_sets_no_limit_on_its_notebooks(project, monkeypatch):
    """A cold `make figures` runs notebooks for over an hour each on 2 cores: no --timeout, no limit."""
    import protolab.runner.cli as cli

    given = {}
    monkeypatch.setattr(cli, "run_notebooks", lambda names, **options: given.update(options) or [])
    assert main(["--notebooks", str(project / "notebooks"), "run", "healthy"]) == 0
    assert given["timeout"] is None and inspect.signature(run_notebooks).parameters["timeout"].default is None
    main(["--notebooks", str(project / "notebooks"), "run", "healthy", "--timeout", "90"])
    assert given["timeout"] == 90


def test_an_unknown_notebook_is_the_only_problem_reported(project, capsys):
    assert main(["--notebooks", str(project / "notebooks"), "run", "nosuch"]) == 2
    err = capsys.readouterr().err
    assert "'nosuch'" in err and "parameter" not in err


@pytest.mark.parametrize("args, fragment", [
    (["report", "--out-dir", "/nonexistent"], "out dir /nonexistent does not exist"),
    (["--notebooks", "/nonexistent", "list"], "notebooks directory /nonexistent does not exist"),
    (["--root", "/nonexistent", "list"], "has no notebooks/ directory"),
])
def test_missing_directories_are_one_line_errors(project, capsys, monkeypatch, args, fragment):
    monkeypatch.chdir(project)
    assert main(args) == 2
    err = capsys.readouterr().err
    assert fragment in err and len(err.strip().splitlines()) == 1


def test_an_out_dir_that_cannot_be_written_is_refused_before_any_kernel(project, capsys):
    blocker = project / "a-file"
    blocker.write_text("not a directory")
    assert main(["--notebooks", str(project / "notebooks"), "run", "healthy", "--out-dir", str(blocker / "out")]) == 2
    assert "not writable" in capsys.readouterr().err and not (project / "runs").exists()


def test_paths_resolve_from_the_checkout_holding_the_current_directory(project, monkeypatch):
    monkeypatch.chdir(project / "notebooks")
    assert main(["run", "healthy"]) == 0
    assert (project / "figures" / "healthy__line.png").exists() and len(list((project / "runs").iterdir())) == 1
    monkeypatch.chdir(project.parent)
    assert main(["--root", str(project), "report"]) == 0


def test_the_summary_is_written_even_when_publishing_fails(project, monkeypatch):
    def fail(stage, out_dir, notebook):
        raise PermissionError(f"cannot write {out_dir}")

    monkeypatch.setattr("protolab.runner.execute.publish", fail)
    result = run_notebooks(["healthy"], notebooks=project / "notebooks")[0]
    assert result.status == "failed" and result.error.startswith("publishing into ")
    summary = json.loads(next((project / "runs").glob("*/summary.json")).read_text())
    assert summary[0]["status"] == "failed" and "cannot write" in summary[0]["error"]
    assert json.loads((project / "figures" / "runs.json").read_text())["healthy"]["status"] == "failed"
    assert not list((project / "figures").glob("healthy__*"))


def test_an_override_applies_only_to_notebooks_that_declare_it(project):
    experiments = discover(project / "notebooks")
    resolved = plan(experiments, [], "smoke", {"epochs": "7"})
    assert resolved["healthy"]["epochs"] == 7 and "epochs" not in resolved["failing"]
    with pytest.raises(ParameterError, match="'epochs'"):
        plan(experiments, ["failing"], "smoke", {"epochs": "7"})


def _pool_notebook(project, grid: bool = False):
    """A notebook whose kernel starts a loky pool of two sleeping workers (joblib's, or with ``grid`` the grid
    cache's: :func:`protolab.runner.grid.run_grid`); each process leaves its pid in pids/."""
    pids = project / "pids"
    pids.mkdir()
    pool = (f"run_grid([{{'i': 0}}, {{'i': 1}}], nap, {str(project / 'cells')!r}, workers=2, progress=False)"
            if grid else "Parallel(n_jobs=2, backend='loky')(delayed(nap)(i) for i in range(2))")
    write_notebook(project / "notebooks" / "pool.ipynb", STANDARD_PARAMETERS,
                   "from protolab import figures\nfigures.start('pool', globals())\n"
                   "figures.save_text('written before the pool started', 'early')",
                   "import os, time\nfrom joblib import Parallel, delayed\nfrom protolab.runner.grid import run_grid\n"
                   f"open(os.path.join({str(pids)!r}, f'kernel-{{os.getpid()}}'), 'w').close()\n"
                   "def nap(i):\n"
                   f"    open(os.path.join({str(pids)!r}, f'worker-{{os.getpid()}}'), 'w').close()\n"
                   "    time.sleep(600)\n"
                   "    return {}\n" + pool)
    return pids


def _started(pids):
    """Process ids the pool notebook left in ``pids``: the kernel's and its loky workers'."""
    return {int(path.name.split("-")[1]) for path in pids.iterdir()}


def _running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_a_notebook_past_its_timeout_ends_every_process_it_started_and_publishes_nothing(project):
    pids = _pool_notebook(project)
    result = run_notebooks(["pool"], notebooks=project / "notebooks", timeout=45)[0]  # workers start in ≈ 10 s
    assert result.status == "timeout"
    assert len(list(pids.glob("worker-*"))) == 2, "the loky workers did not start within the timeout"
    assert _started(pids) <= set(result.processes)
    assert not [pid for pid in result.processes if _running(pid)]
    assert (_run_dir(project) / "pool.staged" / "pool__early.md").exists(), "staged, never published"
    assert not list((project / "figures").glob("pool__*"))
    assert json.loads((project / "figures" / "runs.json").read_text())["pool"]["status"] == "timeout"
    assert "**Last run timed out**: `exceeded the 45 s limit`" in (project / "figures" / "REPORT.md").read_text()


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_stopping_the_runner_ends_every_process_and_still_writes_the_summary(project, signum):
    pids = _pool_notebook(project)
    runner = subprocess.Popen([sys.executable, "-m", "protolab", "--notebooks", str(project / "notebooks"), "run",
                               "pool", "healthy"], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while len(list(pids.glob("worker-*"))) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert len(list(pids.glob("worker-*"))) == 2, "the loky workers did not start"
    finally:
        runner.send_signal(signum)
        out, err = runner.communicate(timeout=60)
    assert runner.returncode == 128 + signum
    assert err.strip().splitlines()[-1].startswith(f"protolab: interrupted by {signal.Signals(signum).name}")
    assert "Traceback" not in err
    summary = json.loads(next((project / "runs").glob("*/summary.json")).read_text())
    assert {record["notebook"]: record["status"] for record in summary} == {"pool": "interrupted",
                                                                          "healthy": "interrupted"}
    recorded = {pid for record in summary for pid in record["processes"]}
    assert _started(pids) <= recorded and not [pid for pid in recorded if _running(pid)]
    runs = json.loads((project / "figures" / "runs.json").read_text())
    assert runs["pool"]["status"] == runs["healthy"]["status"] == "interrupted"
    assert "**INTERRUPTED**" in (project / "figures" / "REPORT.md").read_text()
    assert not list((project / "figures").glob("pool__*"))


def test_a_runner_killed_outright_takes_its_papermill_process_and_kernel_with_it(project):
    """SIGKILL runs no handler: the parent-death signal ends papermill and the kernel (Linux only), and the grid's
    workers end with the kernel."""
    if not sys.platform.startswith("linux"):
        pytest.skip("the parent-death signal (prctl PR_SET_PDEATHSIG) is Linux's")
    pids = _pool_notebook(project, grid=True)
    runner = subprocess.Popen([sys.executable, "-m", "protolab", "--notebooks", str(project / "notebooks"), "run",
                               "pool"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while len(list(pids.glob("worker-*"))) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert len(list(pids.glob("worker-*"))) == 2, "the loky workers did not start"
        papermill = [child.pid for child in psutil.Process(runner.pid).children()]
        assert papermill, "the runner started no papermill process"
    finally:
        runner.kill()
        runner.wait(timeout=60)
    kernel = {int(path.name.split("-")[1]) for path in pids.glob("kernel-*")}
    watched = set(papermill) | kernel | {int(path.name.split("-")[1]) for path in pids.glob("worker-*")}
    deadline = time.monotonic() + 60
    while [pid for pid in watched if _running(pid)] and time.monotonic() < deadline:
        time.sleep(0.5)
    left = [pid for pid in watched if _running(pid)]
    for pid in left:  # leave nothing behind for the other tests, then fail
        with contextlib.suppress(psutil.NoSuchProcess):
            psutil.Process(pid).kill()
    assert not left, f"still running after the runner was killed: {left}"


def test_list_shows_parameters_types_and_profiles(project, capsys):
    assert main(["--notebooks", str(project / "notebooks"), "list"]) == 0
    out = capsys.readouterr().out
    assert "healthy — Healthy experiment" in out and "epochs" in out and "int" in out and "passes" in out
    assert "smoke    epochs=2" in out


def test_the_command_works_headless_with_no_home_and_no_stdin(project):
    env = {key: value for key, value in os.environ.items() if key not in {"HOME", "MPLBACKEND", "DISPLAY"}}
    completed = subprocess.run([sys.executable, "-m", "protolab", "--notebooks", str(project / "notebooks"), "run",
                                "healthy"], env=env, stdin=subprocess.DEVNULL,
                               capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert (project / "figures" / "healthy__line.png").exists()


def test_two_concurrent_runs_into_one_out_dir_end_consistent(project):
    runners = [subprocess.Popen([sys.executable, "-m", "protolab", "--notebooks", str(project / "notebooks"), "run",
                                 "healthy", "-p", f"seed={seed}", "--out-dir", "figures"], stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True) for seed in (1, 2)]
    outputs = [runner.communicate(timeout=300)[0] for runner in runners]
    assert [runner.returncode for runner in runners] == [0, 0], outputs
    figures_dir = project / "figures"
    last = json.loads((figures_dir / "runs.json").read_text())["healthy"]
    sidecars = [json.loads(path.read_text()) for path in figures_dir.glob("healthy__*.json")]
    assert len(sidecars) == 2 and {record["run_id"] for record in sidecars} == {last["run_id"]}
    parameters = yaml.safe_load((project / "runs" / last["run_id"] / "healthy.parameters.yaml").read_text())
    seed = parameters["seed"]
    assert {record["seed"] for record in sidecars} == {seed}
    report = (figures_dir / "REPORT.md").read_text()
    assert last["run_id"] in report and "stale" not in report and f'"seed": {seed}' in report


def test_a_second_writer_waits_for_the_out_dir_lock(tmp_path):
    events: list[str] = []

    def second() -> None:
        with out_dir_lock(tmp_path, announce=events.append):
            events.append("second writes")

    with out_dir_lock(tmp_path):
        waiter = threading.Thread(target=second)
        waiter.start()
        deadline = time.monotonic() + 30
        while not events and time.monotonic() < deadline:
            time.sleep(0.05)
        events.append("first done")
    waiter.join(timeout=30)
    assert events == [f"protolab: another run is writing {tmp_path}; waiting for it", "first done", "second writes"]


def _papermill(project, *args):
    env = {key: value for key, value in os.environ.items() if not key.startswith("PROTOLAB_") or key == "PROTOLAB_CACHE_DIR"}
    return subprocess.run([sys.executable, "-m", "papermill", "healthy.ipynb", str(project / "executed.ipynb"),
                           "-k", "python3", *args], cwd=project / "notebooks", env=env, capture_output=True,
                          text=True, timeout=300)


def test_plain_papermill_runs_write_under_runs_interactive_never_figures(project):
    completed = _papermill(project, "-p", "epochs", "3")
    assert completed.returncode == 0, completed.stderr
    assert not (project / "figures").exists()
    sidecar = json.loads((project / "runs" / "interactive" / "figures" / "healthy__table.json").read_text())
    assert sidecar["parameters"]["epochs"] == 3 and sidecar["run_id"].startswith("interactive-")


def test_plain_papermill_refuses_a_parameter_the_notebook_does_not_declare(project):
    completed = _papermill(project, "-p", "epoch", "3")
    assert completed.returncode != 0
    assert "unknown parameter(s) 'epoch'" in completed.stderr
    assert not (project / "runs").exists()


CHOICES = ('from typing import Literal\n'
           'geometry: Literal["euclidean", "hyperbolic", "both"] = "both"  # which models\n'
           'shots: list[Literal[1, 5]] = [1, 5]  # support images per class\n')


@pytest.fixture
def with_choices(project):
    write_notebook(project / "notebooks" / "choosy.ipynb", CHOICES + STANDARD_PARAMETERS,
                   "from protolab import figures\nfigures.start('choosy', globals())\n"
                   "figures.save_text(f'{geometry} {shots}', 'observations')", title="Choosy")
    return project


@pytest.mark.parametrize("args, fragment", [
    (["-p", "geometry=nosuch"], "parameter 'geometry': 'nosuch' is not one of the allowed values 'euclidean', "
                                "'hyperbolic', 'both'"),
    (["-p", "shots=1,3"], "parameter 'shots': 3 is not one of the allowed values 1, 5"),
])
def test_a_value_outside_the_declared_choices_is_refused_naming_them(with_choices, capsys, args, fragment):
    assert main(["--notebooks", str(with_choices / "notebooks"), "run", "choosy", *args]) == 2
    assert fragment in capsys.readouterr().err
    assert not (with_choices / "runs").exists()


def test_declared_choices_are_accepted_and_listed(with_choices, capsys):
    experiments = discover(with_choices / "notebooks")
    assert plan(experiments, ["choosy"], "smoke", {"geometry": "hyperbolic", "shots": "5"})["choosy"]["shots"] == [5]
    assert main(["--notebooks", str(with_choices / "notebooks"), "list"]) == 0
    out = capsys.readouterr().out
    assert "choices: euclidean, hyperbolic, both" in out and "choices: 1, 5" in out


def test_a_notebook_declaring_choices_runs_with_a_chosen_value(with_choices):
    result = run_notebooks(["choosy"], notebooks=with_choices / "notebooks", overrides={"geometry": "hyperbolic"})
    assert result[0].status == "ok", result[0].error
    out_dir = Path(result[0].output).parent / "figures"  # an overridden run: runs/<run-id>/figures
    assert (out_dir / "choosy__observations.md").read_text() == "hyperbolic [1, 5]\n"


def test_a_choice_default_outside_its_choices_is_refused():
    with pytest.raises(ParameterError, match="'geometry'"):
        parse_parameters_cell('geometry: Literal["a", "b"] = "c"  # no\n')
    with pytest.raises(ParameterError, match="unsupported annotation"):
        parse_parameters_cell('geometry: Literal["a", 1] = "a"  # mixed\n')


OOD = 'ood_datasets: list[str] = ["glyphs"]  # OOD sets\nskip_missing_ood: bool = False  # skip absent ones\n'


@pytest.fixture
def data_project(project):
    write_notebook(project / "notebooks" / "ood.ipynb", STANDARD_PARAMETERS.replace('"toy"', '"mnist-5k"') + OOD,
                   "x = 1")
    (project / "notebooks" / "profiles.yaml").write_text(
        "healthy:\n  smoke: {epochs: 2}\nood:\n  full: {dataset: mnist, ood_datasets: [omniglot]}\n")
    return project


def test_a_real_dataset_without_its_files_is_refused_before_any_kernel(data_project, capsys, tmp_path):
    notebooks = str(data_project / "notebooks")
    assert main(["--notebooks", notebooks, "run", "ood", "--profile", "full"]) == 2
    err = capsys.readouterr().err
    assert "ood: dataset='mnist'" in err and "data_root is empty" in err and "ood_datasets='omniglot'" in err
    empty = tmp_path / "empty-root"
    empty.mkdir()
    assert main(["--notebooks", notebooks, "run", "ood", "-p", f"data_root={empty}", "-p", "dataset=mnist"]) == 2
    err = capsys.readouterr().err
    assert "MNIST/raw/train-images-idx3-ubyte" in err and "omniglot" not in err
    assert not (data_project / "runs").exists()


def test_labels_unknown_to_the_loaders_and_skippable_sets_are_not_refused(data_project):
    experiments = discover(data_project / "notebooks")
    plan(experiments, ["healthy"], "default", {})  # dataset "toy": a label of the notebook's own
    plan(experiments, ["ood"], "default", {"ood_datasets": "omniglot", "skip_missing_ood": "true"})
    with pytest.raises(ParameterError, match="ood_datasets='omniglot'"):
        plan(experiments, ["ood"], "default", {"ood_datasets": "omniglot"})


def test_one_progress_bar_on_a_terminal_with_time_left_from_the_last_durations(project, capsys, monkeypatch):
    notebooks = str(project / "notebooks")
    assert main(["--notebooks", notebooks, "run", "healthy"]) == 0
    out, err = capsys.readouterr()
    assert "started healthy" in out and "ok healthy in" in out
    assert "protolab run" not in err, "no bar off a terminal"
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    assert main(["--notebooks", notebooks, "run", "healthy"]) == 0
    out, err = capsys.readouterr()
    assert "started healthy" in out and "ok healthy in" in out
    assert "protolab run" in err and " s [" in err, "timed bar: healthy's last duration is known"


def test_the_bar_counts_notebooks_when_no_duration_is_known(project, capsys, monkeypatch):
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    run_notebooks(["healthy"], notebooks=project / "notebooks", profile="smoke", bar=None)
    assert "1/1 notebook" in capsys.readouterr().err


def test_estimated_durations_come_from_the_last_successful_run_of_the_profile(tmp_path):
    (tmp_path / "runs.json").write_text(json.dumps({
        "a": {"status": "ok", "profile": "default", "wall_time_s": 12.5},
        "b": {"status": "failed", "profile": "default", "wall_time_s": 3.0},
        "c": {"status": "ok", "profile": "smoke", "wall_time_s": 1.0}}))
    assert estimated_durations([tmp_path / "nothing", tmp_path], ["a", "b", "c", "d"], "default") == {
        "a": 12.5, "b": None, "c": None, "d": None}


CLAIMER = ["from protolab import figures\nfrom protolab.claims import Sesoi, claims_table, decide\n"
           "figures.start('claimer', globals())\n"
           "differences = [seed + d for d in (2.0, 2.1, 1.9, 2.0, 2.0)]\n"
           "figures.save_table(claims_table([decide('A beats B', 'Table 1', 'toy', differences, "
           "sesoi=Sesoi(1.0, 'points', 'test'))]), 'claims')"]
README = "# toy\n\n## Quick start\n\nrun it\n\n<!-- scorecard:start -->\nold\n<!-- scorecard:end -->\n\n## More\n"


def test_publishing_into_the_committed_figures_rewrites_the_readme_scorecard_only_then(project, capsys):
    from protolab.runner.report import readme_scorecard

    write_notebook(project / "notebooks" / "claimer.ipynb", STANDARD_PARAMETERS, *CLAIMER)
    readme = project / "README.md"
    readme.write_text(README)
    notebooks = str(project / "notebooks")
    assert main(["--notebooks", notebooks, "run", "claimer"]) == 0
    expected = README.replace("<!-- scorecard:start -->\nold\n<!-- scorecard:end -->",
                              readme_scorecard(project / "figures"))
    assert readme.read_text() == expected
    assert "| [claimer](figures/REPORT.md#nb-claimer) | A beats B | Table 1 | toy | +2.00 points, 95% CI [+1.91, " \
           "+2.09] over 5 seed(s) | **holds** |" in expected
    assert "## Claims scorecard" in (project / "figures" / "REPORT.md").read_text()
    assert main(["--notebooks", notebooks, "run", "claimer", "-p", "seed=5", "--out-dir", str(project / "other")]) == 0
    assert main(["--notebooks", notebooks, "run", "claimer", "--profile", "smoke"]) == 0
    assert readme.read_text() == expected, "runs into other out_dirs leave the README alone"
    assert "+7.00 points" in (project / "other" / "REPORT.md").read_text()


def test_an_overridden_default_run_does_not_touch_the_committed_figures_or_the_readme(project, capsys):
    """B1: a quick try (-p seed=7) keeps the profile `default` but must not publish into figures/."""
    write_notebook(project / "notebooks" / "claimer.ipynb", STANDARD_PARAMETERS, *CLAIMER)
    readme = project / "README.md"
    readme.write_text(README)
    notebooks = str(project / "notebooks")
    assert main(["--notebooks", notebooks, "run", "claimer"]) == 0
    published, readme_text = (project / "figures" / "claimer__claims.csv").read_text(), readme.read_text()
    assert main(["--notebooks", notebooks, "run", "claimer", "-p", "seed=7"]) == 0
    assert (project / "figures" / "claimer__claims.csv").read_text() == published
    assert readme.read_text() == readme_text
    run = json.loads(next((project / "runs").glob("*-default-*/figures/runs.json")).read_text())["claimer"]
    assert run["overrides"] == {"seed": 7} and "+9.00" in next((project / "runs").glob("*-default-*/figures/"
                                                                                        "claimer__claims.csv")).read_text()
    assert main(["--notebooks", notebooks, "run", "claimer", "-p", "seed=0"]) == 0, "the default's own value"
    assert json.loads((project / "figures" / "runs.json").read_text())["claimer"]["overrides"] == {}


def test_an_overridden_run_published_explicitly_into_figures_is_marked_everywhere(project, capsys):
    write_notebook(project / "notebooks" / "claimer.ipynb", STANDARD_PARAMETERS, *CLAIMER)
    readme = project / "README.md"
    readme.write_text(README)
    assert main(["--notebooks", str(project / "notebooks"), "run", "claimer", "-p", "seed=3",
                 "--out-dir", "figures"]) == 0
    assert json.loads((project / "figures" / "runs.json").read_text())["claimer"]["overrides"] == {"seed": 3}
    mark = "**overridden**: `seed=3`"
    report = (project / "figures" / "REPORT.md").read_text()
    assert "+5.00 points, 95% CI [+4.91, +5.09]" in report
    section = report[report.index('<a id="nb-claimer">'):]
    assert mark in section.splitlines()[4], "the section header names the override"
    scorecard_row = next(line for line in report.splitlines() if "A beats B" in line)
    assert mark in scorecard_row
    assert mark in next(line for line in readme.read_text().splitlines() if "A beats B" in line)


def test_a_dry_run_refuses_an_out_dir_holding_real_outputs_and_marks_its_own(project, capsys):
    """B5: a dry run must not replace a real run's outputs, and its outputs say they are a dry run's."""
    write_notebook(project / "notebooks" / "claimer.ipynb", STANDARD_PARAMETERS, *CLAIMER)
    notebooks = str(project / "notebooks")
    real, dry = project / "real", project / "dry"
    assert main(["--notebooks", notebooks, "run", "claimer", "--out-dir", str(real)]) == 0
    before = {path.name: path.read_bytes() for path in real.iterdir()}
    assert main(["--notebooks", notebooks, "run", "claimer", "--dry-run", "1", "--out-dir", str(real)]) == 2
    assert "holds a real run's outputs" in capsys.readouterr().err
    assert {path.name: path.read_bytes() for path in real.iterdir()} == before
    assert main(["--notebooks", notebooks, "run", "claimer", "--dry-run", "1", "--out-dir", str(dry)]) == 0
    assert json.loads((dry / "claimer__claims.json").read_text())["dry_run"] == 1
    assert json.loads((dry / "runs.json").read_text())["claimer"]["dry_run"] == 1
    report = (dry / "REPORT.md").read_text()
    assert "**dry run** (1 timed steps per loop; numbers meaningless)" in next(
        line for line in report.splitlines() if "A beats B" in line)
    assert main(["--notebooks", notebooks, "run", "claimer", "--dry-run", "1", "--out-dir", str(dry)]) == 0, \
        "a dry run may replace a dry run's outputs"
    assert main(["--notebooks", notebooks, "run", "claimer", "--out-dir", str(dry)]) == 0
    assert not json.loads((dry / "claimer__claims.json").read_text())["dry_run"], "a real run replaces them"


SCRATCHY = ["from protolab import figures\nfigures.start('scratchy', globals())\n"
            "(figures.scratch_dir() / 'checkpoint.pt').write_text('weights')",
            "assert seed == 0, 'failing on purpose'"]


def test_scratch_folders_stay_with_a_failed_run_and_go_with_a_finished_one_or_protolab_clean(project, capsys):
    """B8: checkpoints live in the run's folder; a failed run leaves them for the user, `protolab clean` and
    the next run remove them once that run has ended, a successful notebook removes its own."""
    write_notebook(project / "notebooks" / "scratchy.ipynb", STANDARD_PARAMETERS, *SCRATCHY)
    notebooks = str(project / "notebooks")

    def run_in_own_process(*arguments: str) -> int:  # a run's process ends with it, as at the command line
        return subprocess.run([sys.executable, "-m", "protolab", "--notebooks", notebooks, "run", "scratchy",
                               *arguments], stdin=subprocess.DEVNULL, capture_output=True, timeout=300).returncode

    assert run_in_own_process("-p", "seed=1") == 1
    (failed,) = (project / "runs").glob("*/scratchy.scratch")
    assert (failed / "checkpoint.pt").read_text() == "weights"
    assert run_in_own_process() == 0
    assert not failed.exists(), "the next run removes the scratch of a run that has ended"
    assert not list((project / "runs").glob("*/scratchy.scratch")), "a successful notebook leaves none"
    assert run_in_own_process("-p", "seed=1") == 1
    (left,) = (project / "runs").glob("*/scratchy.scratch")
    capsys.readouterr()
    assert main(["--notebooks", notebooks, "clean"]) == 0
    assert not left.exists() and f"removed {left}" in capsys.readouterr().out


def test_a_running_owner_keeps_its_scratch_and_an_ended_one_does_not(tmp_path):
    from protolab.runner.scratch import OWNER_FILE, claim_run, clean_scratch, run_has_ended

    mine, ended, unknown = tmp_path / "mine", tmp_path / "ended", tmp_path / "unknown"
    claim_run(mine)
    sleeper = subprocess.Popen([sys.executable, "-c", "import sys; sys.path[:0] = %r\n"
                                "from protolab.runner.scratch import claim_run; claim_run(%r)" % (sys.path, str(ended))])
    sleeper.wait(timeout=60)
    unknown.mkdir()
    for run in (mine, ended, unknown):
        (run / "model.scratch").mkdir()
        (run / "model.scratch" / "checkpoint.pt").write_bytes(b"x" * 2048)
    assert json.loads((mine / OWNER_FILE).read_text())["pid"] == os.getpid()
    assert (run_has_ended(mine), run_has_ended(ended), run_has_ended(unknown)) == (False, True, False)
    assert clean_scratch(tmp_path) == [(ended / "model.scratch", 2048)]
    assert (mine / "model.scratch").exists() and (unknown / "model.scratch").exists()


def test_list_names_the_checkout_and_the_library_and_warns_when_they_differ(project, capsys):
    assert main(["--notebooks", str(project / "notebooks"), "list"]) == 0
    head = capsys.readouterr().out.split("\n\n")[0]
    assert f"checkout: {project}" in head and "library:" in head
    assert "warning: the library is not this checkout's lib/protolab" in head
    repository = Path(__file__).resolve().parents[1]
    assert main(["--root", str(repository), "list"]) == 0
    head = capsys.readouterr().out.split("\n\n")[0]
    assert head == f"checkout: {repository}\nlibrary:  {repository / 'lib' / 'protolab'}"


def test_papermill_no_longer_warns_about_valid_parameters_it_cannot_parse(project):
    write_notebook(project / "notebooks" / "choosy.ipynb",
                   "from typing import Literal\n" + STANDARD_PARAMETERS
                   + 'mode: Literal["fast", "slow"] = "fast"  # a choice papermill\'s parser misses\n'
                   + "margin: float | None = None  # so is this annotation\n",
                   "from protolab import figures\nfigures.start('choosy', globals())\n"
                   "figures.save_text(f'{mode} {margin}', 'chosen')")
    result = run_notebooks(["choosy"], notebooks=project / "notebooks", overrides={"mode": "slow", "margin": "0.5"},
                           out_dir=project / "out")[0]
    assert result.status == "ok", result.error
    assert (project / "out" / "choosy__chosen.md").read_text().strip() == "slow 0.5"
    log = Path(result.log).read_text()
    assert "Passed unknown parameter" not in log and "Unable to parse line" not in log
    assert "Executing notebook" in log


def test_the_papermill_filters_drop_only_the_parameter_warnings():
    import logging

    from protolab.runner.papermill_main import DROPPED, DropParameterWarnings

    def record(logger: str, message: str) -> logging.LogRecord:
        return logging.LogRecord(logger, logging.WARNING, __file__, 1, message, (), None)

    keep = {logger: DropParameterWarnings(prefix).filter for logger, prefix in DROPPED.items()}
    assert not keep["papermill"](record("papermill", "Passed unknown parameter: mode"))
    assert not keep["papermill.translators"](record("papermill.translators", "Unable to parse line 3 'a: int'."))
    assert keep["papermill"](record("papermill", "Executing notebook with kernel: python3"))
    assert keep["papermill"](record("papermill", "Ending Cell 3-----"))


UPSTREAM = ["from protolab import figures\nimport time\nimport pandas as pd\nfigures.start('upstream', globals())",
            "time.sleep(3)\nassert not fail, 'failed on purpose'\n"
            "figures.save_table(pd.DataFrame({'value': [seed]}), 'numbers')"]
READER = ["from protolab import figures\nimport pandas as pd\nsession = figures.start('reader', globals())",
          "table, run_id, folder = figures.upstream_table('upstream', 'numbers')\n"
          "figures.save_table(pd.DataFrame({'value': table.value, 'run_id': run_id, 'folder': folder, "
          "'this_run': session.run_id}), 'read')"]


@pytest.fixture
def pipeline(project):
    """``reader`` reads the table ``upstream`` publishes; by name it would run first."""
    notebooks = project / "notebooks"
    write_notebook(notebooks / "upstream.ipynb", STANDARD_PARAMETERS + "fail: bool = False  # fail on purpose\n",
                   *UPSTREAM)
    write_notebook(notebooks / "reader.ipynb", STANDARD_PARAMETERS, *READER)
    (notebooks / "profiles.yaml").write_text("healthy:\n  smoke: {epochs: 2}\nreader:\n  depends_on: [upstream]\n")
    return project


def test_a_notebook_runs_after_its_dependency_and_reads_that_runs_outputs(pipeline, capsys):
    notebooks = pipeline / "notebooks"
    assert list(plan(discover(notebooks), ["reader", "healthy", "upstream"], "default", {})) == \
        ["healthy", "upstream", "reader"]
    assert main(["--notebooks", str(notebooks), "list"]) == 0
    assert "reads the outputs or cells of: upstream (run first when in the same run)" in capsys.readouterr().out
    results = run_notebooks(["reader", "upstream"], notebooks=notebooks, jobs=2, overrides={"seed": "4"},
                            out_dir=pipeline / "out")
    assert [(result.notebook, result.status) for result in results] == [("upstream", "ok"), ("reader", "ok")], results
    read = (pipeline / "out" / "reader__read.csv").read_text().splitlines()[1].split(",")
    assert read == ["4", results[0].run_id, "out", results[0].run_id], "the table this run's upstream just published"


def test_a_notebook_run_alone_reads_the_last_published_outputs_and_names_their_run(pipeline):
    notebooks = pipeline / "notebooks"
    published = run_notebooks(["upstream"], notebooks=notebooks)[0]
    assert published.status == "ok" and (pipeline / "figures" / "upstream__numbers.csv").exists()
    alone = run_notebooks(["reader"], notebooks=notebooks, profile="smoke")[0]
    assert alone.status == "ok", alone.error
    read = next((pipeline / "runs").glob("*-smoke-*/figures/reader__read.csv")).read_text().splitlines()[1].split(",")
    assert read == ["0", published.run_id, "figures", alone.run_id]


def test_a_notebook_whose_dependency_failed_in_the_run_is_skipped_naming_it(pipeline, capsys):
    code = main(["--notebooks", str(pipeline / "notebooks"), "run", "reader", "upstream", "-p", "fail=true",
                 "--out-dir", "out"])
    assert code == 1
    runs = json.loads((pipeline / "out" / "runs.json").read_text())
    assert runs["upstream"]["status"] == "failed" and runs["reader"]["status"] == "skipped"
    assert runs["reader"]["error"] == "not started: it reads the outputs of upstream, which did not succeed in this run"
    assert not (_run_dir(pipeline) / "reader.log").exists()
    assert "skipped reader: it reads the outputs of upstream" in capsys.readouterr().out


@pytest.mark.parametrize("depends_on, fragment", [
    ("reader:\n  depends_on: [upstream]\nupstream:\n  depends_on: [healthy]\nhealthy:\n  depends_on: [reader]\n",
     "cycle: healthy → reader → upstream → healthy"),
    ("reader:\n  depends_on: [upstreem]\n", "no such other notebook: reader depends on 'upstreem'"),
    ("reader:\n  depends_on: upstream\n", "depends_on must be a list of notebook names"),
])
def test_a_dependency_cycle_or_unknown_name_is_refused_before_any_kernel(pipeline, capsys, depends_on, fragment):
    (pipeline / "notebooks" / "profiles.yaml").write_text(depends_on)
    assert main(["--notebooks", str(pipeline / "notebooks"), "run", "--profile", "smoke"]) == 2
    assert fragment in capsys.readouterr().err
    assert not (pipeline / "runs").exists()


def test_recorded_paths_are_relative_to_the_checkout_and_outside_ones_stay_absolute(project):
    notebooks = project / "notebooks"
    assert run_notebooks(["healthy"], notebooks=notebooks)[0].status == "ok"
    assert run_notebooks(["healthy"], notebooks=notebooks, overrides={"data_root": "/elsewhere/data"})[0].status == "ok"
    published = project / "figures"
    sidecar = json.loads((published / "healthy__table.json").read_text())
    assert sidecar["parameters"]["out_dir"] == "figures"
    run = json.loads((published / "runs.json").read_text())["healthy"]
    assert run["output"] == f"runs/{run['run_id']}/healthy.ipynb" and run["log"] == f"runs/{run['run_id']}/healthy.log"
    for path in [*published.glob("*.json"), published / "REPORT.md"]:
        assert str(project) not in path.read_text(), path.name
    other = next((project / "runs").glob("*/figures/healthy__table.json"))
    parameters = json.loads(other.read_text())["parameters"]
    assert parameters["data_root"] == "/elsewhere/data" and parameters["out_dir"] == f"runs/{other.parent.parent.name}/figures"


def test_a_quick_run_is_never_published_into_figures_and_is_marked_indicative(project, capsys):
    (project / "notebooks" / "profiles.yaml").write_text("healthy:\n  quick: {epochs: 3}\n")
    notebooks = str(project / "notebooks")
    for out_dir in (["--out-dir", "figures"], ["-p", f"out_dir={project / 'figures'}"]):
        assert main(["--notebooks", notebooks, "run", "healthy", "--profile", "quick", *out_dir]) == 2
        assert "only indicative (quick profile): it never publishes into" in capsys.readouterr().err
    assert not (project / "figures").exists() and not (project / "runs").exists()
    assert main(["--notebooks", notebooks, "run", "healthy", "--profile", "quick"]) == 0
    assert not (project / "figures").exists()
    run = json.loads(next((project / "runs").glob("*-quick-*/figures/runs.json")).read_text())["healthy"]
    assert run["indicative"] == "quick profile" and run["profile"] == "quick"
    assert main(["--notebooks", notebooks, "run", "healthy", "--profile", "smoke"]) == 0
    assert json.loads(next((project / "runs").glob("*-smoke-*/figures/runs.json")).read_text())["healthy"][
        "indicative"] == ""


def test_the_progress_line_shows_the_models_the_runs_grids_reported(tmp_path):
    import json as _json
    import time as _time

    from protolab.runner.progress import RunProgress

    folder = tmp_path / "progress"
    folder.mkdir()
    (folder / "ipn_ablations.json").write_text(_json.dumps({"done": 3, "total": 10}))
    (folder / "fewshot_tables.json").write_text(_json.dumps({"done": 1, "total": 5}))
    tracker = RunProgress({"a": 10.0, "b": None}, enabled=True, models_dir=folder)
    try:
        _time.sleep(1.5)
        assert "models 4/15" in str(tracker.bar)
    finally:
        tracker.close()
