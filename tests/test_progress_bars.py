"""The library's progress bars come from ``tqdm.auto``: widgets in a Jupyter kernel (JupyterLab, papermill), text
on a terminal, and no warning about either (training/loops.py, zsl/fit.py, runner/grid.py)."""

from __future__ import annotations

import nbformat
import pytest
import tqdm.auto
import tqdm.notebook
from nbclient import NotebookClient

from protolab.runner import grid
from protolab.training import loops
from protolab.zsl import fit

WIDGET = "application/vnd.jupyter.widget-view+json"


def test_the_library_draws_its_bars_with_tqdm_auto_which_is_text_off_a_kernel():
    for module in (loops, fit, grid):
        assert module.tqdm is tqdm.auto.tqdm, f"{module.__name__} draws plain tqdm bars"
    assert not issubclass(tqdm.auto.tqdm, tqdm.notebook.tqdm), "a widget bar outside a Jupyter kernel"


@pytest.mark.notebook
def test_in_a_jupyter_kernel_the_bars_are_widgets_and_nothing_warns(tmp_path):
    """Run as papermill and JupyterLab run a notebook (an ipykernel, headless): the training loop's bar is a
    widget, not text on stderr, and neither tqdm nor ipywidgets warns (no TqdmExperimentalWarning, no
    "IProgress not found")."""
    sources = [
        "import warnings\nwarnings.simplefilter('always')",
        "import torch\nfrom torch import nn\nimport tqdm.notebook\n"
        "from protolab.data.images import LabeledImages\nfrom protolab.runner import grid\n"
        "from protolab.training import loops\nfrom protolab.zsl import fit\n"
        "print(all(issubclass(module.tqdm, tqdm.notebook.tqdm) for module in (loops, fit, grid)))",
        "data = LabeledImages(labels=torch.arange(8) % 2, class_names=['a', 'b'], description='toy',\n"
        "                     images=torch.rand(8, 1, 4, 4))\n"
        "history = loops.fit_classifier(nn.Sequential(nn.Flatten(), nn.Linear(16, 2)), data, epochs=2,\n"
        "                               batch_size=4, lr=0.1, device=torch.device('cpu'), seed=0)\n"
        "len(history)",
    ]
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source) for source in sources])
    NotebookClient(notebook, kernel_name="python3", timeout=300,
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = [output for cell in notebook.cells for output in cell.outputs]
    stderr = "".join(output.get("text", "") for output in outputs if output.get("name") == "stderr")
    assert "tqdm" not in stderr.lower() and "IProgress" not in stderr and "train" not in stderr, stderr
    imports, training = notebook.cells[1].outputs, notebook.cells[2].outputs
    assert [output.get("text") for output in imports] == ["True\n"]
    assert any(WIDGET in output.get("data", {}) for output in training), training
    assert training[-1]["data"]["text/plain"] == "2"
