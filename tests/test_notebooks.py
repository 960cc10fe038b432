"""The example notebooks: each runs top to bottom without a cell error, and each is committed without outputs.

The notebooks share one cache directory per test session (as they share ``~/.cache/modlens`` on a user's
machine), so the small family the first one trains is reused by the others; each also runs alone on an
empty cache (about 20-40 s on 2 cores). Their files go to a temporary directory, never into the checkout.
"""

import re
import time
from pathlib import Path

import nbformat
import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
NOTEBOOKS = sorted(EXAMPLES.glob("*.ipynb"))
# Per notebook, all cells together; each takes well under 2 minutes alone on an empty cache on 2 cores.
NOTEBOOK_TIMEOUT_S = 300


def test_there_are_notebooks() -> None:
    assert len(NOTEBOOKS) >= 5, f"expected the example notebooks in {EXAMPLES}, found {[p.name for p in NOTEBOOKS]}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_stripped(path: Path) -> None:
    """Committed notebooks carry no outputs and no execution counts (diffs stay readable, no stale results)."""
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    dirty = [
        i
        for i, cell in enumerate(nb.cells)
        if cell.cell_type == "code"
        and (cell.outputs or cell.execution_count is not None or "execution" in cell.metadata)
    ]
    assert not dirty, (
        f"{path.name}: cells {dirty} have outputs, execution counts or timings; clear them before committing"
    )
    assert "widgets" not in nb.metadata, f"{path.name}: widget state in the metadata; clear it before committing"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_starts_with_an_explanation(path: Path) -> None:
    first = nbformat.read(path, as_version=4).cells[0]
    assert first.cell_type == "markdown" and first.source.lstrip().startswith("# "), (
        f"{path.name} should open with a markdown cell: a title and the question it answers"
    )


@pytest.fixture(scope="session")
def notebook_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The kernel's environment: cache and results in temporary directories, one torch thread.

    One thread, because on a shared 2-core machine two OpenMP threads per process oversubscribe the cores
    (a 10 s pretraining took over 3 minutes with 2 threads under load; see tests/conftest.py).
    """
    root = tmp_path_factory.mktemp("notebooks")
    return {
        "MODLENS_CACHE": str(root / "cache"),
        "MODLENS_EXAMPLES_RESULTS": str(root / "results"),
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "MODLENS_PROGRESS": "0",  # bars in a test log are noise; 01_quickstart still switches them explicitly
    }


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs(path: Path, notebook_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError

    for key, value in notebook_env.items():
        monkeypatch.setenv(key, value)  # the kernel inherits the environment of this process
    before = _tree(EXAMPLES)
    nb = nbformat.read(path, as_version=4)
    deadline = time.monotonic() + NOTEBOOK_TIMEOUT_S
    client = NotebookClient(
        nb,
        kernel_name="python3",
        resources={"metadata": {"path": str(EXAMPLES)}},  # the kernel's working directory
        # the whole notebook's budget, not a fresh budget per cell
        timeout_func=lambda cell: max(1, int(deadline - time.monotonic())),
        timeout=NOTEBOOK_TIMEOUT_S,
    )
    try:
        client.execute()
    except (CellExecutionError, CellTimeoutError) as err:
        index, cell = _failing_cell(nb)
        errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"] if cell else []
        detail = "\n".join(errors[-1]["traceback"]) if errors else str(err)
        source = cell.source if cell is not None else "(unknown)"
        pytest.fail(
            f"{path.name}: cell {index} failed\n--- cell source ---\n{source}\n--- error ---\n{_plain(detail)}",
            pytrace=False,
        )
    assert _tree(EXAMPLES) == before, f"{path.name} wrote into the checkout: {sorted(_tree(EXAMPLES) ^ before)}"
    if path.name == "04_paper_figures.ipynb":
        _check_paper_figures(Path(notebook_env["MODLENS_EXAMPLES_RESULTS"]) / path.stem / "figures")


def _failing_cell(nb: nbformat.NotebookNode) -> tuple[int | None, nbformat.NotebookNode | None]:
    """The cell execution stopped at (its index among all cells): the last one the kernel started."""
    started = [
        (i, c)
        for i, c in enumerate(nb.cells)
        if c.cell_type == "code" and "iopub.execute_input" in c.metadata.get("execution", {})
    ]
    return started[-1] if started else (None, None)


def _plain(text: str) -> str:
    """Tracebacks from the kernel come coloured; pytest's message should not."""
    return re.sub(r"\x1b\[[0-9;]*m", "", text)


def _tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if ".ipynb_checkpoints" not in p.parts}


def _check_paper_figures(figures: Path) -> None:
    """With a browser for kaleido (CI installs Chromium) the paper figures are PDF and SVG; else HTML."""
    from modlens.report import find_chromium

    suffixes = {".pdf", ".svg"} if find_chromium() is not None else {".html"}
    written = {p.suffix for p in figures.iterdir()} if figures.is_dir() else set()
    assert written == suffixes, f"expected {sorted(suffixes)} figures in {figures}, found {sorted(written)}"
    assert all(p.stat().st_size > 1000 for p in figures.iterdir())
    pdf = next(figures.glob("*.pdf"), None)
    assert pdf is None or pdf.read_bytes().startswith(b"%PDF")
