"""Dry runs end to end: every notebook finishes with stopped loops, and the paper-size script on small layouts."""

from __future__ import annotations

import json

import pytest

from protolab.core import dryrun
from protolab.runner.execute import run_notebooks
from protolab.runner.parameters import discover

pytestmark = pytest.mark.notebook

EXPERIMENTS = discover()

TRAINING = {"poincare_uncertainty", "fewshot_tables", "reid_embeddings", "ipn_gzsl", "ipn_ablations",
            "consistency_study", "delta_hyperbolicity"}


def test_every_notebook_runs_to_its_end_in_a_dry_run_prices_its_loops_and_reaches_the_report(tmp_path):
    """One dry run of every notebook (each metered loop one step, every cell executed): each ends, prices its
    loops, writes a figure and its section of the report. (Real smoke runs: each notebook's own test.)"""
    results = run_notebooks(profile="smoke", dry_run=1, jobs=2, out_dir=tmp_path / "figures",
                            runs_dir=tmp_path / "runs", bar=False)
    assert {r.notebook: r.status for r in results} == {name: "ok" for name in EXPERIMENTS}, \
        [(r.notebook, r.failing_cell, r.error) for r in results if r.status != "ok"]
    run_dir = next((tmp_path / "runs").iterdir())
    report = (tmp_path / "figures" / "REPORT.md").read_text()
    for result in results:
        costs = dryrun.read_costs(run_dir / f"{result.notebook}.cost.jsonl")
        assert result.estimated_s is not None and result.estimated_s >= 0
        if result.notebook in TRAINING:
            assert costs and all(c.measured_steps <= 1 for c in costs), result.notebook
            assert result.estimated_s >= sum(c.estimated_seconds for c in costs) - 1e-9
        sidecars = [json.loads(path.read_text()) for path in (tmp_path / "figures").glob(f"{result.notebook}__*.json")]
        assert any(record["kind"] == "figure" for record in sidecars), f"{result.notebook} wrote no figure"
        assert all(record["profile"] == "smoke" and record["dry_run"] == 1 and record["dataset"]["description"]
                   for record in sidecars)
        assert f"## {EXPERIMENTS[result.notebook].title}" in report
    assert "**dry run**" in report


def test_the_paper_size_script_dry_runs_ipn_and_delta_on_small_generated_xlsa17_files():
    from benchmarks.dry_runs import main, table_markdown

    rows = main(["--only", "ipn_gzsl", "delta_hyperbolicity", "--scale", "0.05", "--steps", "1",
                 "--set", "ipn_gzsl.n_seeds=1", "delta_hyperbolicity.n_tries=2",
                 "delta_hyperbolicity.compare_points=100"])  # fewer seeds and tries: the script's path, quicker
    assert [row["status"] for row in rows] == ["ok", "ok"], rows
    ipn, delta = rows
    assert ipn["estimate_s"] > 10 * ipn["dry run (s)"] and ipn["peak memory (GiB)"] > 0  # 360 epochs priced
    assert delta["estimate_s"] > 0 and delta["peak memory (GiB)"] == "—"  # no metered loop: its wall time
    table = table_markdown(rows, 0.05)
    assert "| ipn_gzsl (CUB) | `full` |" in table and "0.05× the real sizes" in table


@pytest.mark.parametrize("argv", [["--set", "n_seeds=1"], ["--set", "nobook.n_seeds=1"],
                                  ["--set", "ipn_gzsl.n_seeds=1", "--readme"]])
def test_the_paper_size_script_refuses_a_malformed_change_or_one_bound_for_the_readme(argv, capsys):
    from benchmarks.dry_runs import main

    with pytest.raises(SystemExit):
        main(["--only", "ipn_gzsl", *argv])
    assert "--set" in capsys.readouterr().err
