"""The example notebooks: each runs top to bottom without a cell error, and each is committed with the outputs of
its last run, so that its figures show when it is opened: every cell tagged ``figure`` carries a static PNG of its
figure. ``examples/render_notebooks.py`` re-executes and saves them; a source edited since is caught here.

The notebooks share one cache directory per test session (as they share ``~/.cache/modlens`` on a user's
machine), so the small family the first one trains is reused by the others; each also runs alone on an
empty cache (about 20-40 s on 2 cores). Their files go to a temporary directory, never into the checkout.
"""

import ast
import importlib.util
import re
import time
from pathlib import Path

import nbformat
import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
NOTEBOOKS = sorted(EXAMPLES.glob("*.ipynb"))
_spec = importlib.util.spec_from_file_location("render_notebooks", EXAMPLES / "render_notebooks.py")
assert _spec is not None and _spec.loader is not None
render_notebooks = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(render_notebooks)
RENDER = ".venv/bin/python examples/render_notebooks.py"
MAX_NOTEBOOK_BYTES = 1_500_000
# Per notebook, all cells together; each takes well under 2 minutes alone on an empty cache on 2 cores.
NOTEBOOK_TIMEOUT_S = 300


def test_there_are_notebooks() -> None:
    assert len(NOTEBOOKS) >= 5, f"expected the example notebooks in {EXAMPLES}, found {[p.name for p in NOTEBOOKS]}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_ships_its_figures(path: Path) -> None:
    """Every figure cell carries its figure as a PNG (shown by GitHub, nbviewer and Jupyter before anything
    runs), the outputs come from the current sources, and no cell failed; no timings or widget state."""
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    figures = render_notebooks.figure_cells(nb)
    assert figures, f"{path.name}: no cell is tagged {render_notebooks.FIGURE_TAG!r}"
    missing = [i for i in figures if not _has(nb.cells[i], render_notebooks.PNG_MIME)]
    assert not missing, f"{path.name}: figure cells {missing} have no image; rerun {RENDER} {path.name}"
    untagged = [i for i, c in enumerate(nb.cells) if i not in figures and _shows_a_figure(c)]
    assert not untagged, f"{path.name}: cells {untagged} show a figure; tag them {render_notebooks.FIGURE_TAG!r}"
    assert render_notebooks.rendered_sources(nb) == render_notebooks.sources_digest(nb), (
        f"{path.name}: code changed since its outputs were saved; rerun {RENDER} {path.name}"
    )
    failed = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and _has_error(c)]
    assert not failed, f"{path.name}: cells {failed} saved with an error"
    timed = [i for i, c in enumerate(nb.cells) if "execution" in c.metadata]
    assert not timed, f"{path.name}: cells {timed} carry timings; rerun {RENDER} {path.name}"
    assert "widgets" not in nb.metadata, f"{path.name}: widget state in the metadata; rerun {RENDER} {path.name}"
    assert path.stat().st_size < MAX_NOTEBOOK_BYTES, f"{path.name} is {path.stat().st_size} bytes"


def _shows_a_figure(cell: nbformat.NotebookNode) -> bool:
    """A code cell whose output is a figure, or whose last statement calls a plot builder (``plot_*``, ``px.*``)."""
    if cell.cell_type != "code":
        return False
    if _has(cell, render_notebooks.PNG_MIME) or _has(cell, render_notebooks.PLOTLY_MIME):
        return True
    try:
        body = ast.parse(cell.source).body
    except SyntaxError:
        return False
    last = body[-1] if body else None
    if not (isinstance(last, ast.Expr) and isinstance(last.value, ast.Call)):
        return False
    func = last.value.func
    name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
    owner = func.value.id if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) else ""
    return name.startswith("plot_") or owner == "px"


def _has(cell: nbformat.NotebookNode, mime: str) -> bool:
    """Whether one of the cell's outputs carries ``mime``."""
    return any(mime in o.get("data", {}) for o in cell.outputs)


def _has_error(cell: nbformat.NotebookNode) -> bool:
    return any(o.get("output_type") == "error" for o in cell.outputs)


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
    monkeypatch.setenv("PLOTLY_RENDERER", render_notebooks.PLOTLY_RENDERER)  # figures as plotly JSON outputs
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
    blank = [i for i in render_notebooks.figure_cells(nb) if not _has(nb.cells[i], render_notebooks.PLOTLY_MIME)]
    assert not blank, f"{path.name}: figure cells {blank} displayed no figure"
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
