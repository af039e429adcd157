"""The report and the README scorecard (protolab.runner.report), on output folders written by the tests."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from protolab.claims import Sesoi, claims_table, decide
from protolab.runner.report import (
    README_END, README_START, build_report, first_sentence, humanise, markdown_table, readme_scorecard, record_runs,
    scorecard, write_readme_scorecard,
)


def _save(out_dir: Path, notebook: str, name: str, table: pd.DataFrame, run_id: str = "run-1", caption: str = "",
          title: str = "") -> None:
    """A table as ``figures.save_table`` writes it (CSV, Markdown, sidecar), without a kernel."""
    stem = f"{notebook}__{name}"
    table.to_csv(out_dir / f"{stem}.csv", index=False)
    (out_dir / f"{stem}.md").write_text(markdown_table(table))
    (out_dir / f"{stem}.json").write_text(json.dumps({
        "notebook": notebook, "title": f"The {notebook} experiment", "name": name, "output_title": title,
        "kind": "table", "files": [f"{stem}.csv", f"{stem}.md"], "caption": caption, "run_id": run_id,
        "profile": "default", "seed": 0, "dataset": {"name": "toy", "description": "made up"}, "parameters": {},
        "git_commit": "abc", "versions": {}, "wall_time_s": 1.0}))


SESOI = Sesoi(1.0, "points", "a test's")


def _claims(*rows: tuple[str, list[float]]) -> pd.DataFrame:
    return claims_table([decide(statement, "Table 1: +2", "toy", differences, sesoi=SESOI)
                         for statement, differences in rows])


def _figures(tmp_path: Path) -> Path:
    figures = tmp_path / "figures"
    figures.mkdir()
    _save(figures, "alpha", "claims", _claims(("A beats B", [2.0, 2.1, 1.9, 2.0, 2.2]), ("C beats D", [1, -1, 2, 0, 1])))
    _save(figures, "beta", "claims", _claims(("E beats F", [-3.0, -2.9, -3.1, -3.0, -2.8])), run_id="run-0")
    record_runs(figures, [{"notebook": "alpha", "status": "ok", "run_id": "run-1", "profile": "default",
                           "wall_time_s": 1.0},
                          {"notebook": "beta", "status": "failed", "run_id": "run-2", "profile": "default",
                           "wall_time_s": 1.0, "error": "ValueError: boom"}])
    return figures


def test_the_report_opens_with_every_notebooks_claims_and_their_verdict_counts(tmp_path):
    figures = _figures(tmp_path)
    md_path, html_path = build_report(figures, order=["beta", "alpha"])
    markdown = md_path.read_text()
    assert "<h2>Claims scorecard</h2>" in html_path.read_text() and "<td><strong>holds</strong></td>" in \
        html_path.read_text()
    card = markdown[markdown.index("## Claims scorecard"):markdown.index("## Experiments")]
    assert markdown.index("## Claims scorecard") < markdown.index('<a id="nb-')
    assert ("3 claims from 2 notebooks, with Holm's correction across the scorecard (family-wise 5%): **1 holds**, "
            "**1 does not hold**, **1 inconclusive**. Without it (each claim at 95%): 1 holds, 1 does not hold, "
            "1 inconclusive; 1 **stale**" in card)
    assert "| notebook | claim | paper's evidence | our data | our measurement | verdict | verdict with Holm |" in card
    rows = [line for line in card.splitlines() if line.startswith("| [")]
    assert [row.split("](")[0] for row in rows] == ["| [beta", "| [alpha", "| [alpha"], "notebooks in the given order"
    assert rows[0].startswith("| [beta](#nb-beta) — **stale** (run `run-0`) | E beats F | Table 1: +2 | toy |")
    assert rows[0].endswith("| **does not hold** | does not hold | — |") and "stale" not in rows[1] + rows[2]
    assert "+2.04 points, 95% CI [+1.90, +2.18] over 5 seed(s) | **holds** | holds |" in rows[1]


def test_scorecard_rows_are_the_csv_rows(tmp_path):
    rows, raw, holm = scorecard(_figures(tmp_path))
    assert [row["claim"] for row in rows] == ["A beats B", "C beats D", "E beats F"]
    assert raw == holm == {"holds": 1, "inconclusive": 1, "does not hold": 1}


def test_the_scorecard_applies_holm_across_notebooks(tmp_path):
    """Each claim alone holds at 95% (p ≈ 0.03); across three claims Holm tests the smallest p at 0.05/3: none."""
    figures = tmp_path / "figures"
    figures.mkdir()
    marginal = [0.3, 2.5, 1.0, 0.6, 1.6]
    for notebook in ("alpha", "beta", "gamma"):
        _save(figures, notebook, "claims", _claims((f"{notebook} holds alone", marginal)))
    rows, raw, holm = scorecard(figures)
    assert 0.01 < float(rows[0]["p_value"]) < 0.05
    assert raw == {"holds": 3} and holm == {"inconclusive": 3}
    alone = pd.read_csv(figures / "alpha__claims.csv")
    assert alone.verdict_holm.tolist() == ["holds"], "one claim in its notebook: Holm changes nothing there"


def test_regenerating_the_readme_block_from_the_figures_csvs_is_exact(tmp_path):
    figures = _figures(tmp_path)
    readme = tmp_path / "README.md"
    before, after = "# project\n\n## Quick start\n\ntext\n\n", "\n\n## The runner\n\nmore text\n"
    readme.write_text(before + f"{README_START}\nhand-typed, outdated\n{README_END}" + after)
    assert write_readme_scorecard(readme, figures)
    text = readme.read_text()
    assert text == before + readme_scorecard(figures) + after
    block = text[len(before):-len(after)]
    assert block.startswith(README_START + "\n## Claims scorecard") and block.endswith(README_END)
    assert ("| [alpha](figures/REPORT.md#nb-alpha) | A beats B | Table 1: +2 | toy | +2.04 points, 95% CI [+1.90, +2.18] "
            "over 5 seed(s) | **holds** | holds | — |") in block
    assert "hand-typed" not in block
    assert write_readme_scorecard(readme, figures) and readme.read_text() == text


def test_a_readme_without_markers_is_left_alone(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("# project\n")
    assert not write_readme_scorecard(readme, _figures(tmp_path))
    assert readme.read_text() == "# project\n"


def test_outputs_are_headed_by_titles_and_missing_numbers_are_dashes(tmp_path):
    figures = tmp_path / "figures"
    figures.mkdir()
    _save(figures, "alpha", "acc_vs_c", pd.DataFrame({"c": [0.1, 1.0], "accuracy_%": [51.5, float("nan")]}))
    older = figures / "alpha__acc_vs_c.md"  # written before markdown_table showed NaN as "—"
    older.write_text(older.read_text().replace("—", "nan"))
    _save(figures, "alpha", "gzsl", pd.DataFrame({"H": [0.5]}), caption="GZSL accuracy per method. Higher is better.")
    _save(figures, "alpha", "runs", pd.DataFrame({"seed": [0]}), title="Every run", caption="One row per seed.")
    markdown = build_report(figures)[0].read_text()
    assert "### Acc vs c\n" in markdown and "<sub>`alpha__acc_vs_c.csv`</sub>" in markdown
    assert "### GZSL accuracy per method\n" in markdown and "_Higher is better._" in markdown
    assert "### Every run\n" in markdown and "_One row per seed._" in markdown
    assert "| 1 | — |" in markdown and "| nan |" not in markdown
    assert "Percentages (0–100): `accuracy_%`; no other column of this table is in percent." in markdown
    section = markdown[markdown.index("### GZSL"):]
    assert "Percentages" not in section[:section.index("###", 4)]


def test_title_helpers():
    assert humanise("acc_vs_c") == "Acc vs c" and humanise("H-vs-K") == "H vs K"
    assert first_sentence("Accuracy vs c, e.g. 1-shot. More.") == "Accuracy vs c, e.g. 1-shot"
    assert markdown_table(pd.DataFrame({"x": [float("nan"), None, 1.5]}).astype(object)).splitlines()[2:] == [
        "| — |", "| — |", "| 1.5 |"]


def test_the_readme_scorecard_is_the_one_generated_from_the_committed_figures():
    """README.md's scorecard block must be what `protolab run` writes from figures/*__claims.csv: a README showing
    another run's verdicts than figures/ fails here (regenerate with `make figures`)."""
    root = Path(__file__).resolve().parents[1]
    text = (root / "README.md").read_text()
    start, end = text.index(README_START), text.index(README_END) + len(README_END)
    assert text[start:end] == readme_scorecard(root / "figures")


def test_quick_and_skipped_runs_are_marked_in_the_report(tmp_path):
    from protolab.runner.report import run_marks

    assert run_marks({"indicative": "quick profile"}) == ("**indicative** (quick profile: a first look, not a "
                                                          "decision)")
    assert run_marks({"status": "ok"}) == ""
    figures = _figures(tmp_path)
    record_runs(figures, [{"notebook": "beta", "status": "skipped", "run_id": "run-3", "profile": "default",
                           "wall_time_s": 0.0, "error": "not started: it reads the outputs of alpha"}])
    markdown = build_report(figures)[0].read_text()
    assert "**Last run was skipped (a notebook it reads did not succeed)**" in markdown
