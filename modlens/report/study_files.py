"""Reading a study store and writing its report: ``report.html`` plus the static PNG/PDF figures named in
``STATIC_FIGURES`` for papers."""

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import plotly.graph_objects as go

from modlens.analysis import PRIMARY_METRICS
from modlens.analysis.answer import Answer
from modlens.analysis.correlation import N_PERM
from modlens.analysis.methods import MethodAnalysis
from modlens.analysis.study import analyse_study
from modlens.atomic import write_text_atomic
from modlens.errors import ModlensError
from modlens.provenance import provenance as current_provenance
from modlens.report.static import save_figures
from modlens.report.study_figures import CORRELATIONS, MAIN, drift_figures, mask_figures, study_figures
from modlens.report.study_report import REPORT_FILE, render_study_report

log = logging.getLogger(__name__)

FIGURES_DIR = "figures"
STATIC_FIGURES = (MAIN, CORRELATIONS)  # the figures written as PNG and PDF, by name (= file stem)
STATIC_FORMATS = ("png", "pdf")
STUDY_KIND = "study"


@dataclass(frozen=True)
class StudyData:
    """A study store's contents as the report needs them."""

    root: Path
    metrics: pd.DataFrame
    drift_layers: pd.DataFrame
    mask_layers: pd.DataFrame
    config: dict[str, Any]
    provenance: dict[str, Any]


@dataclass(frozen=True)
class StudyReportFiles:
    """What ``write_study_report`` wrote: the page, the static figures, and why any were skipped; the answer, and
    the per-method analysis when the study ran several fine-tuning methods."""

    html: Path
    figures: tuple[Path, ...]
    skipped: str | None
    answer: Answer
    methods: MethodAnalysis | None = None


def load_study(root: "str | os.PathLike[str]") -> StudyData:
    """Reads a study store (``modlens study --out DIR``).

    Raises:
        ModlensError: ``root`` is missing, holds no store, holds another kind of store, or no measured units.
    """
    from modlens.store import Store
    from modlens.study.pipeline import split_tables

    path = Path(root).expanduser()
    if not path.is_dir():
        raise ModlensError(f"{str(path)!r} is not a directory; give the --out directory of a modlens study")
    store = Store.read(path)
    if store.kind != STUDY_KIND:
        raise ModlensError(f"{str(path)!r} holds a {store.kind!r} store, not a study")
    frame = store.frame()
    # split_tables needs the table tag; a store with no finished unit has no rows to tag.
    tables = split_tables(frame) if "table" in frame.columns else None
    if tables is None or tables.metrics.empty:
        raise ModlensError(f"the study in {str(path)!r} has no measured checkpoints yet; run or resume it first")
    return StudyData(
        root=path,
        metrics=tables.metrics,
        drift_layers=tables.drift_layers,
        mask_layers=tables.mask_layers,
        config=store.config,
        provenance=dict(store.manifest.get("provenance") or {}),
    )


def write_study_report(
    root: "str | os.PathLike[str]",
    *,
    out: "str | os.PathLike[str] | None" = None,
    static: bool = True,
    chromium: "str | os.PathLike[str] | None" = None,
    extra_figures: Mapping[str, go.Figure] = {},
    n_perm: int = N_PERM,
    seed: int = 0,
    n_boot: int | None = None,
) -> StudyReportFiles:
    """Rebuilds a study's report from its store.

    Writes ``report.html`` (or ``out``) and, with ``static``, ``figures/main.{png,pdf}`` and
    ``figures/correlations.{png,pdf}`` beside it. Without a Chromium for static export the page is still
    written; the static figures are skipped and the reason returned (and logged). The primary metrics are
    the study config's ``primary_metrics`` (default ``modlens.analysis.PRIMARY_METRICS``).

    Args:
        root: the study store directory.
        out: the HTML file (default: ``root/report.html``).
        static: also write the static figures.
        chromium: browser for static export (default: see ``modlens.report.find_chromium``).
        extra_figures: figures added after the drift and mask figures built from the store.
        n_perm, seed: the permutation tests (and the power simulation's seed).
        n_boot: former name of ``n_perm``, used when given.
    """
    study = load_study(root)
    primary = tuple(study.config.get("primary_metrics") or PRIMARY_METRICS)
    n_perm = n_boot if n_boot is not None else n_perm
    analysis = analyse_study(study.metrics, primary_metrics=primary, n_perm=n_perm, seed=seed)
    figures = {**study_figures(analysis), **drift_figures(study.drift_layers), **mask_figures(study.mask_layers)}
    page = render_study_report(
        analysis,
        config=study.config,
        provenance={
            "study": study.provenance,
            "report": current_provenance(n_perm=n_perm, permutation_seed=seed, primary_metrics=list(primary)),
        },
        extra_figures=extra_figures,
        title=f"modlens study: {study.root.name}",
        figures=figures,
    )
    target = Path(out).expanduser() if out is not None else study.root / REPORT_FILE
    target.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(target, page)  # a reader never sees half a page
    written: list[Path] = []
    skipped = None
    if static:
        items = [
            (figures[name].figure, target.parent / FIGURES_DIR / f"{name}.{fmt}")
            for name in STATIC_FIGURES
            for fmt in STATIC_FORMATS
        ]
        try:
            written = save_figures(items, chromium=chromium)
        except ModlensError as err:
            skipped = f"static figures skipped: {err}"
    return StudyReportFiles(
        html=target, figures=tuple(written), skipped=skipped, answer=analysis.answer, methods=analysis.methods
    )
