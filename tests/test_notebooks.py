"""The notebooks run top to bottom (in their fast mode), as a reader would run them."""

import os
from pathlib import Path

import pytest

nbclient = pytest.importorskip("nbclient", reason="notebook extra not installed")
nbformat = pytest.importorskip("nbformat")
pytest.importorskip("matplotlib")
pytest.importorskip("ipykernel")

NOTEBOOKS = sorted((Path(__file__).parent.parent / "notebooks").glob("*.ipynb"))


def test_notebooks_exist():
    assert [p.name for p in NOTEBOOKS] == ["01_policies.ipynb", "02_half_precision_numbers.ipynb"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_and_is_stored_without_outputs(path, monkeypatch):
    book = nbformat.read(path, as_version=4)
    assert all(not c.get("outputs") and not c.get("execution_count")
               for c in book.cells if c.cell_type == "code"), "strip outputs before committing"
    monkeypatch.setenv("NBMP_FAST", "1")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    nbclient.NotebookClient(book, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}}).execute()
    errors = [o for c in book.cells if c.cell_type == "code" for o in c.outputs
              if o.output_type == "error"]
    assert not errors
    assert os.environ["NBMP_FAST"] == "1"
