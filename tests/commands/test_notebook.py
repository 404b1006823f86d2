"""``examples/interactive.ipynb`` executed top to bottom by a real Jupyter kernel (nbclient
driving ipykernel, the kernel being this venv's python), its outputs asserted.

The kernel spec lives in a temporary directory named by ``JUPYTER_PATH`` for this test
only, so no user or system Jupyter configuration is read or changed.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat", reason="needs the dev extra (nbclient, ipykernel)")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

NOTEBOOK = Path(__file__).resolve().parents[2] / "examples" / "interactive.ipynb"
KERNEL = "dataspace-agency-test"


@pytest.fixture
def kernel_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    spec = tmp_path / "kernels" / KERNEL
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "dataspace-agency tests", "language": "python"}))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path))
    monkeypatch.setenv("JUPYTER_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "runtime"))
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
    return KERNEL


def _text(cell) -> str:
    """All a cell printed or displayed, as text."""
    parts = []
    for output in cell.get("outputs", []):
        if output["output_type"] == "stream":
            parts.append(output["text"])
        elif output["output_type"] in ("execute_result", "display_data"):
            parts.append(output["data"].get("text/plain", ""))
        elif output["output_type"] == "error":
            parts.append(f"{output['ename']}: {output['evalue']}")
    return "".join(parts)


def test_the_notebook_runs_top_to_bottom_in_a_real_kernel(kernel_name):
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(notebook, kernel_name=kernel_name, timeout=60,
                                     resources={"metadata": {"path": str(NOTEBOOK.parent)}})
    client.execute()  # raises CellExecutionError if any cell fails

    by_tag = {cell.metadata["tags"][0]: _text(cell)
              for cell in notebook.cells if cell.cell_type == "code"}
    assert "DataspaceClientHandle 'me'" in by_tag["setup"]
    assert by_tag["arequest"].strip() == "5"
    assert by_tag["error"].startswith("ActionError: TypeError: unsupported operand")
    assert by_tag["send"].strip() == "{'name': '[response]', 'args': {'value': 30}} True"
    assert by_tag["facts"].strip() == "[('calc',), ('me',)]"
    assert by_tag["watch"].splitlines() == [
        "now: [('calc',), ('me',)]",
        "Event(kind='added', captures=('latecomer',))",
        "Event(kind='removed', captures=('latecomer',))",
    ]
    assert by_tag["foreground"].splitlines() == ["['from me', 'typed here']", "2"]
    assert by_tag["add_action"].splitlines() == [
        "desserts",
        "{'description': 'Reverse a text.', 'args': {'text': {'type': 'string',"
        " 'description': 'What to reverse.'}}, 'returns': {'type': 'string'}}",
    ]
    assert by_tag["eval"].splitlines() == [
        'as me: PermissionError: "calc.eval" not permitted', "as admin: 37"]
    assert by_tag["teardown"].strip() == "facts left: 0"
