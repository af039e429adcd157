"""Outputs: deterministic names, atomic writes, provenance sidecars, the report (figures.py, report.py)."""

from __future__ import annotations

import json

import matplotlib.pyplot as plt
import pandas as pd
import pytest

from tests.conftest import STANDARD_PARAMETERS, write_notebook
from protolab import figures
from protolab.report import build_report, record_runs


@pytest.fixture
def session(tmp_path, monkeypatch):
    notebooks = tmp_path / "notebooks"
    write_notebook(notebooks / "exp.ipynb", STANDARD_PARAMETERS + "epochs: int = 2  # passes\n", title="An experiment")
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
    assert record["git_commit"]
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
    assert "curve — **stale** (from run `run-1`)" in markdown
    assert '<img src="exp__curve.png"' in html_path.read_text()


def test_report_shows_long_tables_by_their_first_rows_and_short_ones_whole(session):
    figures.save_table(pd.DataFrame({"epoch": range(1, 101), "loss": [1.0 / e for e in range(1, 101)]}), "history")
    figures.save_table(pd.DataFrame({"method": ["a", "b"], "H": [0.5, 0.25]}), "results")
    markdown = build_report(session.out_dir)[0].read_text()
    history = markdown[markdown.index("### history"):markdown.index("### results")]
    assert "| 10 | 0.1 |" in history and "| 11 |" not in history
    assert "First 10 of 100 rows; all of them in the [CSV](exp__history.csv)" in history
    assert "| b | 0.25 |" in markdown[markdown.index("### results"):]
