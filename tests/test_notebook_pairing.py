"""Every notebook is paired with a jupytext percent script beside it, and the two hold the same cells."""

from __future__ import annotations

import io
import tokenize
from pathlib import Path

import jupytext
import nbformat
import pytest

NOTEBOOKS = sorted((Path(__file__).parents[1] / "notebooks").glob("*.ipynb"))


def _cells(notebook) -> list[tuple[str, str, tuple[str, ...]]]:
    return [(cell.cell_type, cell.source.strip(), tuple(cell.metadata.get("tags", ()))) for cell in notebook.cells]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_percent_script_holds_the_notebooks_cells(path):
    script = path.with_suffix(".py")
    assert script.exists(), f"{script.name} is missing: run `make sync-notebooks`"
    notebook = nbformat.read(path, as_version=4)
    assert notebook.metadata.get("jupytext", {}).get("formats") == "ipynb,py:percent", \
        f"{path.name} is not paired: run `jupytext --set-formats ipynb,py:percent {path.name}`"
    assert _cells(jupytext.read(script)) == _cells(notebook), \
        f"{path.name} and {script.name} differ: edit one, then run `make sync-notebooks`"


def test_every_percent_script_has_its_notebook():
    scripts = sorted((Path(__file__).parents[1] / "notebooks").glob("*.py"))
    assert [script.with_suffix(".ipynb") for script in scripts] == [path for path in NOTEBOOKS]


def test_the_comparison_sees_a_changed_cell(tmp_path):
    notebook = nbformat.read(NOTEBOOKS[0], as_version=4)
    script = jupytext.reads(jupytext.writes(notebook, fmt="py:percent"), fmt="py:percent")
    assert _cells(script) == _cells(notebook)
    script.cells[-1].source += "\nx = 1"
    assert _cells(script) != _cells(notebook)


MAX_LINE = 120


def logical_lines(source: str) -> int:
    """Statements of a code cell (Python's logical lines: a call wrapped over three lines counts once)."""
    return sum(token.type == tokenize.NEWLINE for token in tokenize.generate_tokens(io.StringIO(source).readline))


def test_logical_lines_count_statements_not_wrapped_lines():
    assert logical_lines("x = f(1,\n      2)\n# a comment\n\ny = 3\n") == 2
    assert logical_lines("for i in range(3):\n    print(i)\n") == 2


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_notebook_reads_like_a_paper_section_with_its_logic_in_lib(path):
    code = [cell.source for cell in nbformat.read(path, as_version=4).cells if cell.cell_type == "code"]
    sizes = [logical_lines(source) for source in code]
    assert sum(sizes) <= 150, f"{path.name}: {sum(sizes)} statements (at most 150: move logic to lib/protolab)"
    assert max(sizes) <= 35, f"{path.name}: a code cell of {max(sizes)} statements (at most 35)"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_notebook_lines_fit_a_reader_s_screen(path):
    script = path.with_suffix(".py").read_text(encoding="utf-8").splitlines()
    long = [f"line {number}: {len(line)} characters" for number, line in enumerate(script, 1) if len(line) > MAX_LINE]
    assert not long, f"{path.with_suffix('.py').name}: lines over {MAX_LINE} characters: {long}"
