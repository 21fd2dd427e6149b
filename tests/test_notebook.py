"""notebooks/walkthrough.ipynb runs top to bottom on a tiny run and shows the figures it promises."""

import ast
import json
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from slt_jax.config import get_config
from slt_jax.train import train

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "walkthrough.ipynb"


@pytest.fixture(scope="module")
def executed(corpus_dir, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("run")
    train(get_config("tiny", ["train.max_epochs=3"]), corpus_dir, workdir, progress=False)
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    parameters = next(c for c in notebook.cells if "parameters" in c.metadata.get("tags", []))
    parameters.source = f"WORKDIR = {str(workdir)!r}\nSPLIT = 'test'"
    NotebookClient(notebook, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path_factory.mktemp("cwd"))}}).execute()
    return notebook, workdir


def _outputs(notebook, marker: str) -> list[dict]:
    return next(c.outputs for c in notebook.cells if c.cell_type == "code" and marker in c.source)


def _pngs(outputs) -> int:
    return sum("image/png" in o.get("data", {}) for o in outputs)


def test_every_cell_runs_without_error(executed):
    notebook, _ = executed
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert not [o for o in cell.outputs if o.output_type == "error"], cell.source


def test_the_figures_are_drawn_as_images(executed):
    notebook, _ = executed
    assert _pngs(_outputs(notebook, 'sample["fig2a_cross_attention_sample"]')) == 1
    assert _pngs(_outputs(notebook, 'sample["fig2b_self_minus_cross_sample"]')) == 1
    assert _pngs(_outputs(notebook, "display(*averages.values())")) == 5  # Figures 3a, 3b, 4, 5, self share
    assert _pngs(_outputs(notebook, "deletion.png")) == 1
    assert _pngs(_outputs(notebook, "figures.lenses(")) == 1


def test_the_body_parts_shown_add_up_to_one(executed):
    notebook, _ = executed
    shown = ast.literal_eval(_outputs(notebook, "attribution.attribute(")[0]["data"]["text/plain"])
    assert set(shown) == {"body", "face", "left_hand", "right_hand"} and abs(sum(shown.values()) - 1) < 0.01


def test_the_split_numbers_are_those_analysis_json_holds(executed):
    notebook, workdir = executed
    shown = _outputs(notebook, "report.analyze(")[0]["data"]["text/plain"]
    written = json.loads((workdir / "analysis_test" / "analysis.json").read_text())
    assert f"'exact_match': {written['exact_match']!r}" in shown and f"'n': {written['n']}" in shown
