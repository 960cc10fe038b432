"""Progress bars: ``tqdm.auto`` (a widget in Jupyter, text in a terminal), switchable off per call or globally.

Every long step (pretraining, fine-tuning, sweeps, masks, drift, studies) takes ``progress=True/False``; a
notebook or script can also silence all of them at once with ``modlens.set_progress(False)`` or the
environment variable ``MODLENS_PROGRESS=0``.
"""

import os
from collections.abc import Iterable
from typing import Any

from tqdm.auto import tqdm

_OFF_WORDS = ("0", "false", "no", "off")
_global: dict[str, bool | None] = {"enabled": None}


def set_progress(enabled: bool | None) -> None:
    """Turns every modlens progress bar on or off; ``None`` goes back to ``$MODLENS_PROGRESS`` (default on).

    transformers' own bars (loading and writing weights) follow ``True``/``False`` too; ``None`` leaves them
    as they are.
    """
    _global["enabled"] = enabled
    if enabled is not None:
        from transformers.utils import logging as hf_logging

        (hf_logging.enable_progress_bar if enabled else hf_logging.disable_progress_bar)()


def progress_enabled(requested: bool = True) -> bool:
    """Whether a bar asked for with ``progress=requested`` is shown: a call can only switch it off."""
    if not requested:
        return False
    if _global["enabled"] is not None:
        return bool(_global["enabled"])
    return os.environ.get("MODLENS_PROGRESS", "1").strip().lower() not in _OFF_WORDS


def progress_bar(iterable: Iterable[Any] | None = None, *, enabled: bool = True, **kwargs: Any) -> tqdm:
    """A ``tqdm.auto`` bar over ``iterable`` (or a manual one with ``total=``), hidden when progress is off."""
    return tqdm(iterable, disable=not progress_enabled(enabled), **kwargs)
