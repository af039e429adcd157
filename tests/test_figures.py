"""Outputs: deterministic names, atomic writes, provenance sidecars, the report (figures.py, runner/report.py)."""

from __future__ import annotations

import json
import os
import stat
import subprocess

import matplotlib.pyplot as plt
import pandas as pd
import pytest

from tests.conftest import STANDARD_PARAMETERS, write_notebook
from protolab import figures
from protolab.core.atomic import atomic_write_text
from protolab.runner.parameters import ParameterError
from protolab.runner.report import build_report, record_runs

EXP_PARAMETERS = STANDARD_PARAMETERS + "epochs: int = 2  # passes\n"


def _git(repo, *args):
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.org", *args], cwd=repo,
                          check=True, capture_output=True, text=True).stdout.strip()


def _checkout(root):
    """A git checkout at ``root`` whose one commit holds ``notebooks/exp.ipynb`` and ``notebooks/profiles.yaml``."""
    write_notebook(root / "notebooks" / "exp.ipynb", EXP_PARAMETERS, title="An experiment")
    (root / "notebooks" / "profiles.yaml").write_text("{}\n")
    _git(root, "init", "-q")
    _git(root, "add", "notebooks")
    _git(root, "commit", "-q", "-m", "start")
    return root


@pytest.fixture
def session(tmp_path, monkeypatch):
    notebooks = _checkout(tmp_path) / "notebooks"
    monkeypatch.setenv("PROTOLAB_NOTEBOOKS_DIR", str(notebooks))
    monkeypatch.setenv("PROTOLAB_RUN_ID", "run-1")
    namespace = dict(dataset="toy", data_root="", profile="smoke", seed=3, device="cpu",
                     out_dir=str(tmp_path / "out"), epochs=2)
    return figures.start("exp", namespace)


def _figure():
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    return fig


def test_outputs_have_deterministic_names_and_provenance(session):
    figures.describe_data("toy data, built in the test")
    paths = figures.save_figure(_figure(), "curve", caption="a line")
    figures.save_table(pd.DataFrame({"method": ["a", "b"], "acc": [0.5, 0.25]}), "scores")
    assert [path.name for path in paths] == ["exp__curve.png", "exp__curve.pdf"]
    assert paths[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and paths[1].read_bytes()[:5] == b"%PDF-"
    record = json.loads((session.out_dir / "exp__curve.json").read_text())
    assert record["notebook"] == "exp" and record["title"] == "An experiment" and record["run_id"] == "run-1"
    assert record["seed"] == 3 and record["profile"] == "smoke" and record["parameters"]["epochs"] == 2
    assert record["dataset"] == {"name": "toy", "description": "toy data, built in the test"}
    assert {"torch", "geoopt", "python"} <= set(record["versions"]) and record["wall_time_s"] >= 0
    assert record["git_commit"] == _git(session.out_dir.parent, "rev-parse", "HEAD")
    assert pd.read_csv(session.out_dir / "exp__scores.csv")["acc"].tolist() == [0.5, 0.25]
    assert (session.out_dir / "exp__scores.md").read_text().splitlines()[:3] == [
        "| method | acc |", "|---|---|", "| a | 0.5 |"]


def test_pdf_output_is_byte_identical_across_writes(session):
    first = figures.save_figure(_figure(), "same")[1].read_bytes()
    assert figures.save_figure(_figure(), "same")[1].read_bytes() == first


def test_interrupted_figure_write_leaves_previous_file_intact(session, monkeypatch):
    png = figures.save_figure(_figure(), "curve")[0]
    before = png.read_bytes()
    fig = _figure()

    def crash_midway(handle, **kwargs):
        handle.write(b"\x89PNG half of a file")
        raise KeyboardInterrupt("killed while writing")

    monkeypatch.setattr(fig, "savefig", crash_midway)
    with pytest.raises(KeyboardInterrupt):
        figures.save_figure(fig, "curve")
    assert png.read_bytes() == before
    assert sorted(path.name for path in session.out_dir.iterdir()) == ["exp__curve.json", "exp__curve.pdf",
                                                                       "exp__curve.png"]


def test_wrong_parameter_type_from_papermill_is_refused_with_its_name(tmp_path, monkeypatch, session):
    namespace = dict(session.parameters, epochs="2")
    with pytest.raises(ValueError, match="'epochs'"):
        figures.start("exp", namespace)


def test_output_names_are_checked(session):
    with pytest.raises(ValueError, match="output name"):
        figures.save_text("x", "../escape")


def test_report_marks_outputs_of_a_failed_notebook_as_stale(session):
    figures.save_figure(_figure(), "curve")
    figures.save_text("We observed a line.", "observations")
    record_runs(session.out_dir, [{"notebook": "exp", "status": "ok", "run_id": "run-1", "profile": "smoke",
                                   "wall_time_s": 1.0}])
    markdown = build_report(session.out_dir)[0].read_text()
    assert "## An experiment" in markdown and "![curve](exp__curve.png)" in markdown
    assert "We observed a line." in markdown and "stale" not in markdown.lower()
    record_runs(session.out_dir, [{"notebook": "exp", "status": "failed", "run_id": "run-2", "profile": "smoke",
                                   "wall_time_s": 1.0, "failing_cell": "cell 3", "error": "ValueError: boom"}])
    md_path, html_path = build_report(session.out_dir)
    markdown = md_path.read_text()
    assert "Last run failed" in markdown and "cell 3" in markdown and "ValueError: boom" in markdown
    assert "Curve — **stale** (from run `run-1`)" in markdown
    assert '<img src="exp__curve.png"' in html_path.read_text()


def test_report_shows_long_tables_by_their_first_rows_and_short_ones_whole(session):
    figures.save_table(pd.DataFrame({"epoch": range(1, 101), "loss": [1.0 / e for e in range(1, 101)]}), "history")
    figures.save_table(pd.DataFrame({"method": ["a", "b"], "H": [0.5, 0.25]}), "results")
    markdown = build_report(session.out_dir)[0].read_text()
    history = markdown[markdown.index("### History"):markdown.index("### Results")]
    assert "| 10 | 0.1 |" in history and "| 11 |" not in history
    assert "First 10 of 100 rows; all of them in the [CSV](exp__history.csv)" in history
    assert "| b | 0.25 |" in markdown[markdown.index("### Results"):]


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_atomic_writes_honour_the_umask(tmp_path, umask, mode):
    previous = os.umask(umask)
    try:
        atomic_write_text(tmp_path / "out.txt", "text")
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "out.txt").stat().st_mode) == mode


def _namespace(**values):
    return dict(dict(dataset="toy", data_root="", profile="smoke", seed=3, device="cpu", out_dir="figures", epochs=2),
                **values)


@pytest.fixture
def elsewhere(tmp_path, monkeypatch):
    """A directory outside any checkout, as the current directory, with no runner environment."""
    for name in ("PROTOLAB_NOTEBOOKS_DIR", "PROTOLAB_RUN_ID", "PROTOLAB_STAGE_DIR"):
        monkeypatch.delenv(name, raising=False)
    directory = tmp_path / "elsewhere"
    directory.mkdir()
    monkeypatch.chdir(directory)
    return directory


def test_a_notebook_copied_outside_the_checkout_finds_its_parameters_cell(elsewhere):
    write_notebook(elsewhere / "exp.ipynb", EXP_PARAMETERS, title="An experiment")
    session = figures.start("exp", _namespace())
    assert session.title == "An experiment" and session.parameters["epochs"] == 2
    assert session.out_dir == elsewhere / "runs" / "interactive" / "figures"
    with pytest.raises(ValueError, match="'epochs'"):
        figures.start("exp", _namespace(epochs="2"))


def test_a_kernel_started_anywhere_in_the_checkout_finds_the_notebook_there(tmp_path, elsewhere, monkeypatch):
    checkout = _checkout(tmp_path / "checkout")
    (checkout / "sub").mkdir()
    monkeypatch.chdir(checkout / "sub")
    session = figures.start("exp", _namespace())
    assert session.title == "An experiment"
    assert session.out_dir == checkout / "runs" / "interactive" / "figures" and not (checkout / "figures").exists()


def test_jupyterlab_names_the_notebook_it_runs(elsewhere, tmp_path):
    path = write_notebook(tmp_path / "copies" / "exp-Copy1.ipynb", EXP_PARAMETERS, title="A copy")
    assert figures.start("exp", _namespace(__session__=str(path))).title == "A copy"


def test_without_the_notebook_file_the_executed_parameters_cell_is_used(elsewhere):
    history = ["", EXP_PARAMETERS, "from protolab import figures"]
    assert figures.start("exp", _namespace(In=history)).parameters["epochs"] == 2
    with pytest.raises(ValueError, match="'epochs'"):
        figures.start("exp", _namespace(In=history, epochs="2"))


def test_without_any_parameters_cell_only_the_required_parameters_are_checked(elsewhere):
    with pytest.warns(UserWarning, match="exp.ipynb not found"):
        session = figures.start("exp", _namespace(epochs="not checked"))
    assert set(session.parameters) == {"dataset", "data_root", "profile", "seed", "device", "out_dir"}
    with pytest.warns(UserWarning), pytest.raises(ValueError, match="'seed'"):
        figures.start("exp", _namespace(seed="3"))


def test_a_parameter_papermill_injected_that_the_notebook_does_not_declare_is_refused(elsewhere):
    write_notebook(elsewhere / "exp.ipynb", EXP_PARAMETERS)
    history = ["", EXP_PARAMETERS, '# Parameters\nepochs = 3\nepoch = 3\nlr = 0.1\n', "from protolab import figures"]
    with pytest.raises(ParameterError, match="unknown parameter\\(s\\) 'epoch', 'lr'"):
        figures.start("exp", _namespace(In=history, epoch=3, lr=0.1))
    figures.start("exp", _namespace(In=history[:2] + ['# Parameters\nepochs = 3\n'], epochs=3))


README = "# exp\n\n<!-- scorecard:start -->\nold scorecard\n<!-- scorecard:end -->\n\n## More\n"


def test_the_dirty_flag_ignores_what_runs_write_but_not_other_changes(tmp_path, monkeypatch):
    """Outputs under figures/, runs/ or the run's out_dir and the README's scorecard block leave a checkout clean."""
    repo = _checkout(tmp_path / "repo")
    for path, text in [("figures/exp__old.md", "old\n"), ("runs/kept/summary.md", "old\n"), ("out/exp__x.md", "x\n"),
                       ("README.md", README), ("lib/code.py", "x = 1\n")]:
        (repo / path).parent.mkdir(parents=True, exist_ok=True)
        (repo / path).write_text(text)
    _git(repo, "add", "-f", ".")
    _git(repo, "commit", "-q", "-m", "outputs")
    monkeypatch.setenv("PROTOLAB_NOTEBOOKS_DIR", str(repo / "notebooks"))
    monkeypatch.setenv("PROTOLAB_STAGE_DIR", str(tmp_path / "stage"))
    head = _git(repo, "rev-parse", "HEAD")

    def commit(out_dir: str = str(tmp_path / "other")) -> str:
        return figures.start("exp", _namespace(out_dir=out_dir)).git_commit

    (repo / "figures" / "exp__old.md").write_text("rewritten by a run\n")
    (repo / "runs" / "kept" / "summary.md").write_text("rewritten\n")
    (repo / "README.md").write_text(README.replace("old scorecard", "new scorecard\n| rows |"))
    assert commit() == head
    (repo / "out" / "exp__x.md").write_text("rewritten by this run\n")
    assert commit(str(repo / "out")) == head, "the run's own out_dir"
    assert commit() == f"{head} (with uncommitted changes)", "another out_dir"
    _git(repo, "checkout", "out")
    (repo / "README.md").write_text(README.replace("## More", "## More, edited"))
    assert commit() == f"{head} (with uncommitted changes)", "the README outside its scorecard block"
    _git(repo, "checkout", "README.md")
    assert commit() == head
    (repo / "lib" / "code.py").write_text("x = 2\n")
    assert commit() == f"{head} (with uncommitted changes)"


def test_start_refuses_a_value_outside_the_declared_choices(elsewhere):
    write_notebook(elsewhere / "exp.ipynb", EXP_PARAMETERS + 'geometry: Literal["euclidean", "both"] = "both"  # m\n')
    assert figures.start("exp", _namespace(geometry="euclidean")).parameters["geometry"] == "euclidean"
    with pytest.raises(ParameterError, match="'geometry': 'nosuch' is not one of the allowed values 'euclidean', 'both'"):
        figures.start("exp", _namespace(geometry="nosuch"))


def test_a_cell_ending_in_a_save_shows_its_caption_and_file_names_not_paths(session):
    """In JupyterLab the value of a cell's last line is displayed: a save shows what the report will call the
    output and the files written, not ``[PosixPath(...), ...]``; the paths stay reachable by index."""
    from IPython.core.formatters import DisplayFormatter

    saved = figures.save_figure(_figure(), "curve", caption="A falling line. From 1 to 0, p < 0.05.")
    shown, _ = DisplayFormatter().format(saved)
    assert shown["text/plain"] == ("<saved figure exp__curve.png, exp__curve.pdf: "
                                   "A falling line. From 1 to 0, p < 0.05.>")
    assert shown["text/html"] == ("<div><strong>A falling line</strong> — From 1 to 0, p &lt; 0.05.<br><small>saved "
                                  "figure: <code>exp__curve.png</code>, <code>exp__curve.pdf</code> in <code>out</code>"
                                  "</small></div>")
    assert [path.name for path in saved] == ["exp__curve.png", "exp__curve.pdf"] and saved[0].is_file()
    table = figures.save_table(pd.DataFrame({"a": [1]}), "scores", caption="x" * 200, title="Scores")
    shown, _ = DisplayFormatter().format(table)
    assert "PosixPath" not in shown["text/plain"] and len(shown["text/plain"]) < 140
    assert "<strong>Scores</strong>" in shown["text/html"] and "<code>exp__scores.md</code>" in shown["text/html"]
    text, _ = DisplayFormatter().format(figures.save_text("We observed a line.", "observations"))
    assert text["text/plain"] == "<saved text exp__observations.md>"
    assert text["text/html"].startswith("<div><strong>Observations</strong><br>")
