"""The one front door: what a user names (a model, a task or prompt file, a component list) resolved the same way
for the CLI, sweep files and the study. Configs from TOML files and ``--set`` overrides: ``modlens.config``.

Models are a local directory, a hub id (with a revision), or a member of a family built by ``modlens zoo``:
``zoo:MEMBER@STEP`` (``zoo:L3-seed0-noise0.00@300``), or ``zoo:KEY/MEMBER@STEP`` when several built families hold
the member. Component lists are one group name (``heads``, ``mlp``, ...) or addresses (``L0H1,L1.mlp,L2N17``).
"""

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from modlens.components import (
    SELECTIONS,
    Component,
    ComponentError,
    parse_component,
    parse_components,
    select_components,
)
from modlens.errors import ConfigError, ModelLoadError, TaskError
from modlens.models import loading
from modlens.models.loading import check_model_directory, looks_like_path, parse_dtype
from modlens.models.model import Model
from modlens.models.spec import ModelSpec
from modlens.tasks.batch import Batch
from modlens.tasks.model_layout import task_layout_of
from modlens.tasks.operations import parse_task_name
from modlens.tasks.prompts import load_prompt_batch, load_prompts
from modlens.tasks.synthetic import SyntheticTask
from modlens.zoo.cache import cache_root, checkpoint_dirname

ZOO_PREFIX = "zoo:"
_ZOO = re.compile(r"(?:(?P<key>[0-9a-f]{12})/)?(?P<member>[^/@]+)(?:@(?:step)?(?P<step>\d+))?")


@dataclass(frozen=True)
class ModelRef:
    """A model named by a user, checked but not loaded.

    Attributes:
        source: an absolute model directory, or a hub id.
        revision: the hub revision (None for directories).
        label: how the user wrote it (tables and unit keys use it).
    """

    source: str
    revision: str | None
    label: str


@dataclass(frozen=True)
class TaskRef:
    """A task named by a user: a synthetic task ``name`` or a JSONL ``prompts`` file (absolute path)."""

    name: str | None
    prompts: str | None
    label: str


# -- models ---------------------------------------------------------------------------------------------------


def model_ref(
    value: Any,
    *,
    revision: str | None = None,
    base_dir: "str | os.PathLike[str] | None" = None,
    cache_dir: "str | os.PathLike[str] | None" = None,
) -> ModelRef:
    """Checks a model name without loading it.

    Args:
        value: a directory, a hub id, ``zoo:[KEY/]MEMBER[@STEP]``, or a ``{source, revision}`` mapping.
        revision: hub revision (for ``zoo:`` names without ``@STEP``: the checkpoint step).
        base_dir: directory that relative paths are relative to (default: the working directory).
        cache_dir: where built families live (default: ``modlens.zoo.cache_root``).

    Raises:
        ConfigError: a malformed value, a missing path, or a family member that no built family holds.
        ModelLoadError: a directory that holds no model.
    """
    if isinstance(value, Mapping):
        unknown = sorted(set(value) - {"source", "revision"})
        if unknown:
            raise ConfigError(f"unknown model key {unknown[0]!r}; valid keys: revision, source")
        source, revision = value.get("source"), value.get("revision")
        if not isinstance(source, str) or not (revision is None or isinstance(revision, str)):
            raise ConfigError(f'a model table needs source = "..." and optionally revision = "...", got {value!r}')
    elif isinstance(value, str | os.PathLike):
        source = os.fspath(value)
    else:
        raise ConfigError(f"a model is a path, a hub id, zoo:MEMBER@STEP or {{source, revision}}, got {value!r}")
    label = source if revision is None else f"{source}@{revision}"
    if source.startswith(ZOO_PREFIX):
        return ModelRef(str(_zoo_checkpoint(source, revision, cache_dir)), None, label)
    base = Path(base_dir) if base_dir is not None else Path.cwd()
    path = base / Path(source).expanduser()
    if path.exists():
        check_model_directory(path)
        return ModelRef(str(path.resolve()), revision, label)
    if looks_like_path(source):
        where = f" (relative to {str(base)!r})" if base_dir is not None else ""
        raise ConfigError(f"model path {source!r} does not exist{where}")
    return ModelRef(source, revision, label)  # a hub id, resolved when it is loaded


def load_ref(ref: ModelRef, *, device: str = "cpu", dtype: str = "float32") -> Model:
    """Loads a checked model reference (``dtype`` by name: ``float32``, ``bfloat16``, ``float16``)."""
    return loading.load_model(ref.source, revision=ref.revision, device=device, dtype=parse_dtype(dtype))


def load_model(
    source: Any,
    *,
    revision: str | None = None,
    device: str = "cpu",
    dtype: "str | torch.dtype" = "float32",
    cache_dir: "str | os.PathLike[str] | None" = None,
    trust_remote_code: bool = False,
) -> Model:
    """Loads a model by any name a user gives it (``modlens.load_model``).

    Args:
        source: a local Hugging Face directory, a hub id (with ``revision``, e.g. ``"step1000"``), a built family
            member ``zoo:[KEY/]MEMBER[@STEP]``; or a ``Model``, HF ``PreTrainedModel`` or ``TransformerBridge``.
        revision: hub revision; for a ``zoo:`` name without ``@STEP``, the checkpoint step.
        device: where the weights go.
        dtype: weight dtype, by name (``float32``, ``bfloat16``, ``float16``) or as a torch dtype.
        cache_dir: where built families live (default: ``$MODLENS_CACHE`` or ``~/.cache/modlens``).
        trust_remote_code: allow model code from the hub.

    Raises:
        ModelLoadError: a name that resolves to nothing loadable, with what would be right.
    """
    torch_dtype = parse_dtype(dtype) if isinstance(dtype, str) else dtype
    if isinstance(source, (str, os.PathLike)):
        try:
            ref = model_ref(str(source), revision=revision, cache_dir=cache_dir)
        except ConfigError as err:
            raise ModelLoadError(str(err)) from None
        source, revision = ref.source, ref.revision
    return loading.load_model(
        source, revision=revision, device=device, dtype=torch_dtype, trust_remote_code=trust_remote_code
    )


def _zoo_checkpoint(text: str, revision: str | None, cache_dir: "str | os.PathLike[str] | None") -> Path:
    """The checkpoint directory ``zoo:[KEY/]MEMBER[@STEP]`` names (default step: the member's last)."""
    match = _ZOO.fullmatch(text.removeprefix(ZOO_PREFIX))
    step_text = match and match.group("step")
    if match is None or (revision is not None and (step_text or not revision.removeprefix("step").isdigit())):
        raise ConfigError(f"{text!r}: write zoo:MEMBER@STEP, e.g. zoo:L3-seed0-noise0.00@300")
    root = cache_root(cache_dir)
    families = [root / f"family-{match.group('key')}"] if match.group("key") else sorted(root.glob("family-*"))
    member = match.group("member")
    holders = [f / member for f in families if (f / member).is_dir()]
    if not holders:
        raise ConfigError(f"no family built in {str(root)!r} holds {member!r}; build it with modlens zoo")
    if len(holders) > 1:
        keys = ", ".join(h.parent.name.removeprefix("family-") for h in holders)
        raise ConfigError(f"{member!r} is in several built families ({keys}); write zoo:KEY/{member}")
    steps = sorted(p.name for p in holders[0].glob("step*") if p.is_dir())
    if not steps:
        raise ConfigError(f"{str(holders[0])!r} holds no checkpoints (step* directories)")
    step = step_text or (revision.removeprefix("step") if revision else None)
    if step is None:
        return holders[0] / steps[-1]
    checkpoint = holders[0] / checkpoint_dirname(int(step))
    if not checkpoint.is_dir():
        shown = ", ".join(str(int(s.removeprefix("step"))) for s in steps)
        raise ConfigError(f"{member!r} has no checkpoint at step {int(step)}; steps: {shown}")
    return checkpoint


# -- tasks ----------------------------------------------------------------------------------------------------


def task_ref(value: Any, *, base_dir: "str | os.PathLike[str] | None" = None) -> TaskRef:
    """Checks a task: a synthetic task name, or ``{"prompts": FILE}`` (malformed prompt lines fail now).

    Raises:
        TaskError: an unknown task name.
        ConfigError: a malformed value or a missing or malformed prompts file.
    """
    if isinstance(value, str):
        parse_task_name(value)
        return TaskRef(value, None, value)
    if isinstance(value, Mapping):
        if set(value) != {"prompts"} or not isinstance(value["prompts"], str | os.PathLike):
            raise ConfigError(f'a prompt-file task is {{prompts = "FILE.jsonl"}}, got {value!r}')
        written = os.fspath(value["prompts"])
        base = Path(base_dir) if base_dir is not None else Path.cwd()
        path = base / Path(written).expanduser()
        if not path.is_file():
            where = f" (relative to {str(base)!r})" if base_dir is not None else ""
            raise ConfigError(f"prompts file {written!r} does not exist{where}")
        load_prompts(path)  # malformed lines fail now, naming the line, not in the middle of the run
        return TaskRef(None, str(path.resolve()), written)
    raise ConfigError(f'a task is a synthetic task name or {{prompts = "FILE.jsonl"}}, got {value!r}')


def task_batch(model: Model, task: TaskRef, *, n: int, seed: int, split: str = "test") -> Batch:
    """The batch a task gives ``model``: ``n`` examples of a synthetic task's ``split`` drawn with ``seed``, or
    the whole prompts file.

    Raises:
        TaskError: ``n`` not positive, or task sequences longer than the model's context.
    """
    if task.prompts:
        return load_prompt_batch(task.prompts, model.tokenizer, n_ctx=model.spec.n_ctx)
    if n <= 0:
        raise TaskError(f"the number of examples must be positive, got {n}")
    layout = task_layout_of(model)
    synthetic = SyntheticTask.from_name(str(task.name), layout)
    if layout.seq_len > model.spec.n_ctx:
        raise TaskError(
            f"task sequences are {layout.seq_len} tokens, longer than the model's context {model.spec.n_ctx}"
        )
    return synthetic.sample(n, split=split, seed=seed)  # type: ignore[arg-type]


# -- names and components ---------------------------------------------------------------------------------------


def choice_list(key: str, value: "str | Sequence[str]", valid: Sequence[str]) -> tuple[str, ...]:
    """Names (a comma-separated string or a list), each one of ``valid``.

    Raises:
        ConfigError: an empty list, or a name not in ``valid`` (named, with the valid ones).
    """
    items = value.split(",") if isinstance(value, str) else list(value)
    names = tuple(str(item).strip() for item in items if str(item).strip())
    if not names:
        raise ConfigError(f"{key} must list at least one of {', '.join(valid)}")
    for name in names:
        if name not in valid:
            raise ConfigError(f"unknown {key} entry {name!r}; valid: {', '.join(valid)}")
    return names


def component_list(value: "str | Sequence[str]") -> tuple[str, ...]:
    """Checks a component list without a model: one group name, or addresses (a comma-separated string or a list).

    Raises:
        ConfigError: an empty list.
        ComponentError: an unknown group or a malformed address.
    """
    items = value.split(",") if isinstance(value, str) else list(value)
    entries = tuple(str(item).strip() for item in items if str(item).strip())
    if not entries:
        raise ConfigError(f"the component list is empty; give a group ({'|'.join(SELECTIONS)}) or addresses")
    if len(entries) == 1 and _is_group(entries[0]):
        if entries[0] not in SELECTIONS:
            raise ComponentError(f"unknown component group {entries[0]!r}; choose one of {', '.join(SELECTIONS)}")
        return entries
    for entry in entries:
        parse_component(entry)
    return entries


def resolve_components(spec: ModelSpec, value: "str | Sequence[str]") -> list[Component]:
    """A component list (see ``component_list``) as components of a model, checked against its ``spec``."""
    entries = component_list(value)
    if len(entries) == 1 and _is_group(entries[0]):
        return select_components(spec, entries[0])
    return parse_components(entries, spec)


def _is_group(text: str) -> bool:
    """A lone word that is no address (addresses start with ``L``) names a group."""
    return text in SELECTIONS or not text.startswith("L")
