"""Executes the example notebooks and saves them with their outputs, so that their figures show when a notebook is
opened (on GitHub, in nbviewer, in Jupyter before anything is run).

    .venv/bin/python examples/render_notebooks.py                  # every examples/*.ipynb
    .venv/bin/python examples/render_notebooks.py 02_drift.ipynb   # or some of them

Each notebook runs top to bottom in a fresh kernel, on the small models it already uses (a few minutes for all
on 2 CPU cores). Its files and the model cache go to a temporary directory, never into the checkout. A cell
tagged ``figure`` must display a figure: it is saved both as the plotly figure (interactive where Jupyter has
plotly's extension) and as a static PNG (everywhere else), rendered by kaleido in a local Chromium
(``modlens.report.save_figures``). Timings and widget state are left out, so a rerun changes only what the
notebook computes. ``tests/test_notebooks.py`` checks that every figure cell ships its image.
"""

import argparse
import base64
import hashlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import nbformat
import plotly.graph_objects as go

EXAMPLES = Path(__file__).resolve().parent
FIGURE_TAG = "figure"
PLOTLY_MIME = "application/vnd.plotly.v1+json"
PNG_MIME = "image/png"
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
PLOTLY_RENDERER = "plotly_mimetype"  # figures as plotly JSON only, no HTML with plotly.js inlined (megabytes)
DIGEST_KEY = "modlens"  # notebook metadata: {"rendered_sources": the sources_digest its outputs came from}
PNG_SCALE = 1.5  # sharp on high-density screens, about 50-100 KB a figure
TIMEOUT_S = 600


def figure_cells(nb: nbformat.NotebookNode) -> list[int]:
    """Indices of the code cells tagged ``figure``."""
    return [
        i for i, cell in enumerate(nb.cells) if cell.cell_type == "code" and FIGURE_TAG in cell.metadata.get("tags", [])
    ]


def sources_digest(nb: nbformat.NotebookNode) -> str:
    """A digest of the notebook's code: its outputs are current while this equals ``rendered_sources``."""
    code = [cell.source for cell in nb.cells if cell.cell_type == "code"]
    return hashlib.sha256(json.dumps(code, ensure_ascii=False).encode("utf-8")).hexdigest()[:16]


def rendered_sources(nb: nbformat.NotebookNode) -> str | None:
    """The ``sources_digest`` recorded when the outputs were saved (None if never)."""
    return nb.metadata.get(DIGEST_KEY, {}).get("rendered_sources")


def render(path: Path, workdir: Path) -> None:
    """Executes one notebook in ``workdir`` and writes it back with its outputs and static figures."""
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    tagged = figure_cells(nb)
    os.environ["PLOTLY_RENDERER"] = PLOTLY_RENDERER
    NotebookClient(
        nb, kernel_name="python3", timeout=TIMEOUT_S, resources={"metadata": {"path": str(workdir)}}
    ).execute()
    images = _static_figures(nb, tagged, workdir / f"{path.stem}-figures")
    for index, cell in enumerate(nb.cells):
        cell.metadata.pop("execution", None)
        if cell.cell_type != "code":
            continue
        cell.outputs = [o for o in cell.outputs if WIDGET_MIME not in o.get("data", {})]
        shown = [o for o in cell.outputs if PLOTLY_MIME in o.get("data", {})]
        if shown and index not in tagged:
            raise SystemExit(f"{path.name}: cell {index} displays a figure but is not tagged {FIGURE_TAG!r}")
        for output, png in zip(shown, images.get(index, []), strict=True):
            output.data[PNG_MIME] = base64.b64encode(png).decode("ascii")
    nb.metadata.pop("widgets", None)
    nb.metadata[DIGEST_KEY] = {"rendered_sources": sources_digest(nb)}
    nbformat.validate(nb)
    nbformat.write(nb, path)


def _static_figures(nb: nbformat.NotebookNode, tagged: list[int], out: Path) -> dict[int, list[bytes]]:
    """PNG bytes of every figure a tagged cell displayed (one browser start for all of them)."""
    from modlens.report import save_figures

    items: list[tuple[go.Figure, Path]] = []
    owners: list[int] = []
    for index in tagged:
        shown = [o for o in nb.cells[index].outputs if PLOTLY_MIME in o.get("data", {})]
        if not shown:
            raise SystemExit(f"cell {index} is tagged {FIGURE_TAG!r} but displayed no figure")
        for k, output in enumerate(shown):
            items.append((go.Figure(output.data[PLOTLY_MIME]), out / f"cell{index}-{k}.png"))
            owners.append(index)
    images: dict[int, list[bytes]] = {}
    for index, written in zip(owners, save_figures(items, scale=PNG_SCALE), strict=True):
        images.setdefault(index, []).append(written.read_bytes())
    return images


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", help="notebook names or paths (default: every examples/*.ipynb)")
    args = parser.parse_args()
    paths = [Path(n) if Path(n).is_file() else EXAMPLES / Path(n).name for n in args.notebooks]
    paths = paths or sorted(EXAMPLES.glob("*.ipynb"))
    with tempfile.TemporaryDirectory(prefix="modlens-notebooks-") as tmp:
        workdir = Path(tmp)
        # One cache for all, as on a user's machine: the family the first notebook trains serves the others.
        os.environ["MODLENS_CACHE"] = str(workdir / "cache")
        os.environ.pop("MODLENS_EXAMPLES_RESULTS", None)  # results/ relative to the kernel's directory, workdir
        # No progress bars (modlens's, transformers', any tqdm): saved, they are widgets without their state.
        quiet = {"MODLENS_PROGRESS": "0", "HF_HUB_DISABLE_PROGRESS_BARS": "1", "TQDM_DISABLE": "1"}
        os.environ.update(quiet | {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"})
        for path in paths:
            start = time.monotonic()
            render(path, workdir)
            print(f"{path.name}: {time.monotonic() - start:.0f} s, {path.stat().st_size / 1024:.0f} KiB", flush=True)


if __name__ == "__main__":
    sys.exit(main())
