"""The papermill runner and the ``protolab`` command (run.py, cli.py), on notebooks made by the tests."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from tests.conftest import STANDARD_PARAMETERS, write_notebook
from protolab.cli import main
from protolab.notebooks import ParameterError, discover
from protolab.run import plan, run_notebooks

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


def test_failing_notebook_does_not_stop_a_healthy_one_and_is_reported(project, capsys):
    code = main(["--notebooks", str(project / "notebooks"), "run", "--profile", "smoke", "--jobs", "2",
                 "-p", "lr=2e-05"])
    assert code == 1
    out, err = capsys.readouterr()
    assert "failing" in err and "ValueError: broken on purpose with seed 0" in out and "cell 3" in out
    figures_dir = project / "figures"
    assert (figures_dir / "healthy__line.png").exists() and (figures_dir / "healthy__line.pdf").exists()
    sidecar = json.loads((figures_dir / "healthy__table.json").read_text())
    assert sidecar["profile"] == "smoke" and sidecar["parameters"]["epochs"] == 2
    assert sidecar["parameters"]["lr"] == 2e-05
    runs = json.loads((figures_dir / "runs.json").read_text())
    assert runs["healthy"]["status"] == "ok" and runs["failing"]["status"] == "failed"
    report = (figures_dir / "REPORT.md").read_text()
    assert "## Healthy experiment" in report and "numbers made up in the cell" in report
    assert "**FAILED**" in report
    run_dir = next((project / "runs").iterdir())
    assert {"healthy.ipynb", "failing.ipynb", "summary.md", "summary.json"} <= {p.name for p in run_dir.iterdir()}


def test_outputs_of_a_notebook_that_later_fails_are_marked_stale(project):
    notebooks = project / "notebooks"
    assert run_notebooks(["healthy"], profile="smoke", notebooks=notebooks)[0].status == "ok"
    write_notebook(notebooks / "healthy.ipynb", STANDARD_PARAMETERS + "epochs: int = 5  # passes\n",
                   HEALTHY[0], "assert epochs > 100, 'too few epochs'", title="Healthy experiment")
    result = run_notebooks(["healthy"], profile="smoke", notebooks=notebooks)[0]
    assert result.status == "failed" and result.failing_cell == "cell 3"
    assert result.error == "AssertionError: too few epochs"
    report = (project / "figures" / "REPORT.md").read_text()
    assert "Last run failed" in report and "line — **stale**" in report


@pytest.mark.parametrize("args, fragment", [
    (["healthy", "-p", "epoch=3"], "'epoch'"),
    (["healthy", "-p", "epochs=three"], "'epochs'"),
    (["healthy", "-p", "seed=1.5"], "'seed'"),
    (["ghost"], "'ghost'"),
    (["healthy", "-p", "novalue"], "KEY=VALUE"),
])
def test_bad_names_and_parameters_are_refused_before_anything_runs(project, capsys, args, fragment):
    code = main(["--notebooks", str(project / "notebooks"), "run", *args])
    assert code == 2
    assert fragment in capsys.readouterr().err
    assert not (project / "runs").exists() and not (project / "figures").exists()


def test_an_override_applies_only_to_notebooks_that_declare_it(project):
    experiments = discover(project / "notebooks")
    resolved = plan(experiments, [], "smoke", {"epochs": "7"})
    assert resolved["healthy"]["epochs"] == 7 and "epochs" not in resolved["failing"]
    with pytest.raises(ParameterError, match="'epochs'"):
        plan(experiments, ["failing"], "smoke", {"epochs": "7"})


def test_a_notebook_past_its_timeout_is_killed(project):
    write_notebook(project / "notebooks" / "slow.ipynb", STANDARD_PARAMETERS, "import time\ntime.sleep(600)")
    result = run_notebooks(["slow"], profile="smoke", notebooks=project / "notebooks", timeout=20)[0]
    assert result.status == "timeout" and result.wall_time_s < 60


def test_list_shows_parameters_types_and_profiles(project, capsys):
    assert main(["--notebooks", str(project / "notebooks"), "list"]) == 0
    out = capsys.readouterr().out
    assert "healthy — Healthy experiment" in out and "epochs" in out and "int" in out and "passes" in out
    assert "smoke    epochs=2" in out


def test_the_command_works_headless_with_no_home_and_no_stdin(project):
    env = {key: value for key, value in os.environ.items() if key not in {"HOME", "MPLBACKEND", "DISPLAY"}}
    completed = subprocess.run([sys.executable, "-m", "protolab", "--notebooks", str(project / "notebooks"), "run",
                                "healthy", "--profile", "smoke"], env=env, stdin=subprocess.DEVNULL,
                               capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert (project / "figures" / "healthy__line.png").exists()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_stopping_the_runner_stops_the_notebooks_it_started(project):
    pids = project / "pids.txt"
    write_notebook(project / "notebooks" / "slow.ipynb", STANDARD_PARAMETERS,
                   f"import os, time\nopen({str(pids)!r}, 'w').write(f'{{os.getpid()}} {{os.getppid()}}')\n"
                   "time.sleep(600)")
    runner = subprocess.Popen([sys.executable, "-m", "protolab", "--notebooks", str(project / "notebooks"), "run",
                               "slow", "--profile", "smoke"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not (pids.exists() and pids.read_text()) and time.monotonic() < deadline:
        time.sleep(0.5)
    kernel, papermill = map(int, pids.read_text().split())
    runner.send_signal(signal.SIGTERM)
    assert runner.wait(timeout=30) != 0
    deadline = time.monotonic() + 30
    while (_alive(kernel) or _alive(papermill)) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not _alive(papermill) and not _alive(kernel)
