"""Family files: the study over checkpoints a user names instead of a family it pretrains itself.

A family file (TOML) lists one or more pretraining trajectories, each an ordered list of checkpoints::

    heldout = ["increment∘reverse", "rotate∘swap"]   # held-out composites (optional: the study's split)
    control = true                                  # add a step-0 random init per trajectory (seeded)
    quality = "heldout_text.jsonl"                  # prompt set whose answer loss is pretraining quality (optional)
    capability = "facts.jsonl"                      # prompt set fine-tuning does not train: kept or lost? (optional)
    finetune = "train.jsonl"                        # fine-tune on these prompts instead of the synthetic tasks ...
    heldout_prompts = "transfer.jsonl"              # ... and score these, never trained on (both or neither)

    [study]                                         # StudyConfig keys, as in --config (optional)
    n_eval = 128

    [[trajectories]]
    name = "recipe-a"                               # trajectories of one recipe share a name ...
    seed = 0                                        # ... and differ in their seed label
    checkpoints = [
        { source = "runs/a-seed0/step000300" },                     # a directory, relative to this file
        { source = "EleutherAI/pythia-160m", revision = "step1000" },  # a hub id at a revision
    ]

``load_family_file`` parses it with the config machinery (a wrong key names the valid ones); ``check_family``
checks every checkpoint before any unit runs (directories exist, hub revisions resolve in the local cache
without the network, one architecture, one tokenizer, a tokenizer that can write the synthetic tasks one token
per symbol), each refusal one line. A text tokenizer (Pythia's, GPT-2's, Llama's) gets the tasks rendered in its
own tokens (``modlens.tasks.rendering``); the rendering is recorded with the checked family.

With ``finetune`` and ``heldout_prompts`` every checkpoint is fine-tuned on a prompt file (every fifth line held
out for validation, at least ``MIN_FINETUNE_PROMPTS`` lines) and scored on prompts it never trained on
(``modlens.study.prompt_phases``); the synthetic ``heldout`` does not apply, and the mechanistic metrics, which
take apart the synthetic tasks' primitives, are NaN with their reason.
"""

import contextlib
import dataclasses
import functools
import hashlib
import json
import os
import re
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from transformers import PreTrainedTokenizerBase

from modlens.config import config_from_mapping, read_toml
from modlens.errors import ConfigError, ModelLoadError, TaskError
from modlens.models.saving import read_provenance
from modlens.models.spec import ModelSpec, pair_mismatches, spec_from_hf_config
from modlens.resolve import model_ref
from modlens.study.presets import PRIMARY_METRICS, StudyConfig
from modlens.tasks.prompts import encode_prompts, load_prompts
from modlens.tasks.rendering import Rendering
from modlens.tasks.synthetic import TaskLayout

FILE_KEYS = ("capability", "control", "finetune", "heldout", "heldout_prompts", "quality", "study", "trajectories")
PROMPT_KEYS = ("quality", "capability", "finetune", "heldout_prompts")
"""The family file's prompt-file keys, in the order ``CheckedFamily.as_dict`` records them."""
MIN_FINETUNE_PROMPTS = 10
"""Lines a ``finetune`` prompt file needs: every fifth is held out for validation."""
PROMPT_PRIMARY_METRICS = ("heldout_prompt_accuracy", "weight_drift_upper_share_fixed_budget")
"""The primary metrics of a study fine-tuned on prompt files, unless its ``[study]`` names its own."""
_STEP = re.compile(r"step0*(\d+)$")


@dataclass(frozen=True, kw_only=True)
class Checkpoint:
    """One checkpoint of a trajectory.

    Attributes:
        source: a local Hugging Face directory (relative paths are relative to the family file) or a hub id.
        revision: the hub revision, e.g. ``"step1000"`` (hub ids only).
        step: the pretraining step; default: read from ``revision`` or the directory name (``step1000``,
            ``step001000``), else from the checkpoint's saved provenance.
    """

    source: str
    revision: str | None = None
    step: int | None = None


@dataclass(frozen=True, kw_only=True)
class Trajectory:
    """One pretraining run: its checkpoints in training order.

    Attributes:
        name: the recipe (the analysis's ``corpus`` group): trajectories of one recipe share it.
        seed: the run's seed label (default: its position among the trajectories of its name); it also seeds
            the random-init control.
        checkpoints: the checkpoints, in training order (steps strictly increasing).
    """

    name: str = "family"
    seed: int | None = None
    checkpoints: tuple[Checkpoint, ...] = ()


@dataclass(frozen=True)
class ResolvedCheckpoint:
    """A checked checkpoint: ``source`` is an absolute directory or a hub id (with ``revision``); ``step`` is known.
    ``control`` marks the random initialisation built from ``source``'s config (no weights are read)."""

    source: str
    revision: str | None
    step: int
    label: str
    control: bool = False

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class StudyFamily:
    """A parsed family file: its trajectories, control switch, held-out tasks, study keys and where it lives;
    ``quality``, ``capability``, ``finetune`` and ``heldout_prompts``: absolute paths of its prompt files (``None``
    when it names none)."""

    trajectories: tuple[Trajectory, ...]
    control: bool
    heldout: tuple[str, ...]
    study: Mapping[str, Any]
    base_dir: Path
    quality: str | None = None
    capability: str | None = None
    finetune: str | None = None
    heldout_prompts: str | None = None

    def study_config(self, base: StudyConfig) -> StudyConfig:
        """``base`` with the file's ``[study]`` keys and its held-out tasks applied; a family fine-tuned on prompt
        files whose ``[study]`` declares no ``primary_metrics`` and whose ``base`` has the default ones gets
        ``PROMPT_PRIMARY_METRICS`` (the defaults name metrics of the synthetic tasks)."""
        config = config_from_mapping(StudyConfig, dict(self.study), base=base, prefix="study.")
        declared = "primary_metrics" in self.study or base.primary_metrics != PRIMARY_METRICS
        if self.finetune is not None and not declared:
            config = dataclasses.replace(config, primary_metrics=PROMPT_PRIMARY_METRICS)
        if self.heldout:
            config = config_from_mapping(StudyConfig, {"heldout_composites": list(self.heldout)}, base=config)
        return config


@dataclass(frozen=True)
class CheckedFamily:
    """A family whose every checkpoint was checked: trajectory ``(name, seed)`` -> checkpoints in step order;
    ``rendering``: how the tasks are written for the family's tokenizer (``None``: the synthetic vocabulary)."""

    runs: dict[tuple[str, int], tuple[ResolvedCheckpoint, ...]]
    spec: ModelSpec
    rendering: Rendering | None = None
    quality: str | None = None
    capability: str | None = None
    finetune: str | None = None
    heldout_prompts: str | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "runs": [
                {"name": name, "seed": seed, "checkpoints": [c.as_dict() for c in checkpoints]}
                for (name, seed), checkpoints in self.runs.items()
            ],
            "spec": self.spec.as_dict(),
        }
        if self.rendering is not None:  # absent for the synthetic vocabulary, so those fingerprints stay as they were
            out["rendering"] = self.rendering.as_dict()
        for key in PROMPT_KEYS:  # likewise absent unless the file names a prompt set
            if getattr(self, key) is not None:
                out[key] = {"path": getattr(self, key), "sha256": _file_hash(getattr(self, key))}
        return out

    def fingerprint(self) -> str:
        return hashlib.sha256(json.dumps(self.as_dict(), sort_keys=True).encode()).hexdigest()[:12]


def load_family_file(path: "str | os.PathLike[str]") -> StudyFamily:
    """Parses a family file (see the module docstring); relative checkpoint paths are relative to the file.

    Raises:
        ConfigError: a missing or malformed file, an unknown key (the valid ones named), a wrong type.
    """
    file = Path(path).expanduser()
    return parse_family(read_toml(file, what="family file"), base_dir=file.resolve().parent)


def parse_family(values: Mapping[str, Any], *, base_dir: "str | os.PathLike[str]") -> StudyFamily:
    """A family from the mapping a family file holds (see ``load_family_file``)."""
    unknown = sorted(set(values) - set(FILE_KEYS))
    if unknown:
        raise ConfigError(f"unknown family file key {unknown[0]!r}; valid keys: {', '.join(FILE_KEYS)}")
    raw = values.get("trajectories")
    if not isinstance(raw, list) or not raw or not all(isinstance(t, Mapping) for t in raw):
        raise ConfigError("a family file lists its trajectories as [[trajectories]] tables with checkpoints = [...]")
    trajectories = []
    for i, entry in enumerate(raw):
        prefix = f"trajectories.{i}."
        points = entry.get("checkpoints")
        if not isinstance(points, list) or not points:
            raise ConfigError(f"{prefix}checkpoints must list at least one checkpoint")
        checkpoints = []
        for j, point in enumerate(points):
            if isinstance(point, str):
                point = {"source": point}
            if not isinstance(point, Mapping):
                raise ConfigError(f'{prefix}checkpoints.{j} is "DIR" or {{source = "...", revision = "..."}}')
            if "source" not in point:
                raise ConfigError(f"{prefix}checkpoints.{j} needs source (a directory or a hub id)")
            checkpoints.append(config_from_mapping(Checkpoint, point, prefix=f"{prefix}checkpoints.{j}."))
        rest = {k: v for k, v in entry.items() if k != "checkpoints"}
        trajectory = config_from_mapping(Trajectory, rest, prefix=prefix)
        trajectories.append(dataclasses.replace(trajectory, checkpoints=tuple(checkpoints)))
    control = values.get("control", False)
    if not isinstance(control, bool):
        raise ConfigError(f"control must be true or false, got {control!r}")
    heldout = values.get("heldout", [])
    if not isinstance(heldout, list) or not all(isinstance(h, str) for h in heldout):
        raise ConfigError(f'heldout lists task names, e.g. ["increment∘reverse"], got {heldout!r}')
    study = values.get("study", {})
    if not isinstance(study, Mapping):
        raise ConfigError("study is a table of study config keys ([study])")
    prompts = {key: _prompt_file(values, key, Path(base_dir)) for key in PROMPT_KEYS}
    if (prompts["finetune"] is None) != (prompts["heldout_prompts"] is None):
        raise ConfigError(
            "finetune and heldout_prompts come together: the prompts fine-tuned on and the prompts never trained on"
        )
    if prompts["finetune"] is not None and heldout:
        raise ConfigError(
            "heldout names synthetic composites, and this family is fine-tuned on prompt files; drop heldout "
            "(heldout_prompts are its held-out tasks)"
        )
    return StudyFamily(tuple(trajectories), control, tuple(heldout), dict(study), Path(base_dir), **prompts)


def _file_hash(path: str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


def _prompt_file(values: Mapping[str, Any], key: str, base_dir: Path) -> str | None:
    """The absolute path of the prompt file ``key`` names (relative to the family file), checked line by line."""
    if key not in values:
        return None
    written = values[key]
    if not isinstance(written, str) or not written:
        raise ConfigError(f'{key} names a prompt file, {key} = "FILE.jsonl", got {written!r}')
    path = base_dir / Path(written).expanduser()
    if not path.is_file():
        raise ConfigError(f"{key} prompt file {written!r} does not exist (relative to {str(base_dir)!r})")
    try:
        lines = len(load_prompts(path))
    except TaskError as err:
        raise ConfigError(f"{key} prompt file: {err}") from None
    if key == "finetune" and lines < MIN_FINETUNE_PROMPTS:
        raise ConfigError(
            f"finetune prompt file {written!r} has {lines} lines; it needs at least {MIN_FINETUNE_PROMPTS} "
            "(every fifth is held out for validation)"
        )
    return str(path.resolve())


# -- checking, before any unit runs ------------------------------------------------------------------------------


def check_family(family: StudyFamily, study: StudyConfig) -> CheckedFamily:
    """Checks every checkpoint without loading weights: exists (directories) or resolves in the local hub cache
    (hub ids: the network is not used when ``HF_HUB_OFFLINE`` is set, else asked with a short timeout); one
    architecture and shape; one tokenizer; that tokenizer writes ``study``'s tasks one token per symbol (the
    synthetic task vocabulary, or a text tokenizer they are rendered for) within the model's vocabulary.

    Raises:
        ConfigError: a missing directory, an unresolvable revision, an unknown step, steps out of order, two
            trajectories with one (name, seed), a prompt-file line longer than the model's context.
        ModelLoadError: a directory without a model, architectures or tokenizers that differ, a tokenizer that
            cannot write the tasks, a vocabulary smaller than the ids they need.
    """
    if "proxy" in study.finetune_methods:
        raise ConfigError(
            "proxy-tuning needs a small expert for every checkpoint, and a family file names none; "
            "drop proxy from study.finetune_methods"
        )
    runs: dict[tuple[str, int], tuple[ResolvedCheckpoint, ...]] = {}
    counts: dict[str, int] = {}
    first: tuple[str, ModelSpec, dict[str, int] | None] | None = None
    layout = study.family.layout
    rendering: Rendering | None = None
    for trajectory in family.trajectories:
        seed = trajectory.seed if trajectory.seed is not None else counts.get(trajectory.name, 0)
        counts[trajectory.name] = counts.get(trajectory.name, 0) + 1
        if (trajectory.name, seed) in runs:
            raise ConfigError(f"two trajectories are named {trajectory.name!r} with seed {seed}; give each its seed")
        checked: list[ResolvedCheckpoint] = []
        for point in trajectory.checkpoints:
            resolved, directory = _resolve(point, family.base_dir)
            spec, tokenizer = _read_spec_and_tokenizer(directory, resolved.label)
            vocab = dict(tokenizer.get_vocab()) if tokenizer is not None else None
            if first is None:
                first = (resolved.label, spec, vocab)
                rendering = _check_rendering(resolved.label, spec, tokenizer, layout)
                _check_prompt_lengths(family, resolved.label, spec, tokenizer)
            else:
                _check_same(first, resolved.label, spec, vocab)
            _check_layout(resolved.label, directory, layout)
            if checked and resolved.step <= checked[-1].step:
                raise ConfigError(
                    f"trajectory {trajectory.name!r} seed {seed}: checkpoints must be in training order; step "
                    f"{resolved.step} ({resolved.label}) follows step {checked[-1].step}"
                )
            checked.append(resolved)
        if family.control:
            if checked[0].step == 0:
                raise ConfigError(
                    f"trajectory {trajectory.name!r} seed {seed} already has a step-0 checkpoint; drop control = true"
                )
            control = dataclasses.replace(checked[0], step=0, label=f"random init ({checked[0].label})", control=True)
            checked.insert(0, control)
        runs[(trajectory.name, seed)] = tuple(checked)
    assert first is not None  # parse_family requires a checkpoint
    prompts = {key: getattr(family, key) for key in PROMPT_KEYS}
    return CheckedFamily(runs, first[1], rendering, **prompts)


def _check_prompt_lengths(
    family: StudyFamily, label: str, spec: ModelSpec, tokenizer: PreTrainedTokenizerBase | None
) -> None:
    """Every prompt file's lines fit the model's context in its tokenizer (the family shares one tokenizer and
    shape, so the first checkpoint's stand for all): refused now, not when a unit reaches the line."""
    if tokenizer is None:
        return
    for key in PROMPT_KEYS:
        path = getattr(family, key)
        if path is None:
            continue
        try:
            encode_prompts(load_prompts(path), tokenizer, n_ctx=spec.n_ctx, task=key)
        except TaskError as err:
            raise ConfigError(f"{key} prompt file {Path(path).name}, in {label}'s tokenizer: {err}") from None


def _resolve(point: Checkpoint, base_dir: Path) -> tuple[ResolvedCheckpoint, Path]:
    """The checkpoint's source and step, and the local directory holding its config (and tokenizer)."""
    label = point.source if point.revision is None else f"{point.source}@{point.revision}"
    # the front door checks directories (relative to the file) and zoo:MEMBER@STEP names; a hub id comes back as is
    path = Path(model_ref(point.source, base_dir=base_dir).source)
    if path.is_absolute() and path.is_dir():
        if point.revision is not None:
            raise ConfigError(f"{label}: revision applies to hub ids; {point.source!r} is a local checkpoint")
        step = point.step if point.step is not None else _step_of(path.name, path, label)
        return ResolvedCheckpoint(str(path), None, step, label), path
    where = f"no directory {point.source!r} exists relative to {str(base_dir)!r}, and as a hub id it"
    directory = _hub_snapshot(point.source, point.revision, label, where)
    step = point.step if point.step is not None else _step_of(point.revision or "", directory, label)
    return ResolvedCheckpoint(point.source, point.revision, step, label), directory


def _step_of(name: str, directory: Path, label: str) -> int:
    match = _STEP.fullmatch(name)
    if match:
        return int(match.group(1))
    recorded = read_provenance(directory).get("step")
    if isinstance(recorded, int):
        return recorded
    raise ConfigError(f"{label}: cannot tell its pretraining step; add step = N to the checkpoint")


def hub_offline() -> bool:
    """Whether the hub must not be asked (``HF_HUB_OFFLINE``)."""
    from huggingface_hub import constants

    flag = os.environ.get("HF_HUB_OFFLINE", "").strip().upper() in {"1", "ON", "YES", "TRUE"}
    return flag or bool(constants.HF_HUB_OFFLINE)


def _hub_snapshot(repo: str, revision: str | None, label: str, where: str) -> Path:
    """The cached snapshot directory of ``repo`` at ``revision`` holding its ``config.json``; downloads only the
    config (and tokenizer) files, and only when the hub may be asked."""
    from huggingface_hub import hf_hub_download, try_to_load_from_cache
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    cached = try_to_load_from_cache(repo, "config.json", revision=revision)
    if isinstance(cached, str):
        return Path(cached).parent
    if hub_offline():
        raise ConfigError(
            f"{label}: {where} is not in the local Hugging Face cache and HF_HUB_OFFLINE is set; download it "
            "first (or unset HF_HUB_OFFLINE)"
        )
    unreachable = _hub_unreachable()
    if unreachable:
        raise ConfigError(
            f"{label}: {where} is not in the local Hugging Face cache, and the hub cannot be reached ({unreachable})"
        )
    try:
        config = hf_hub_download(repo, "config.json", revision=revision, etag_timeout=10)
    except (HfHubHTTPError, LocalEntryNotFoundError, OSError, ValueError) as err:
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ConfigError(f"{label}: {where} cannot be resolved on the Hugging Face hub ({reason})") from None
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        with contextlib.suppress(HfHubHTTPError, LocalEntryNotFoundError, OSError, ValueError):
            hf_hub_download(repo, name, revision=revision, etag_timeout=10)  # absent in some repos
    return Path(config).parent


@functools.cache
def _hub_unreachable(timeout: float = 5.0) -> str | None:
    """Why the hub's host cannot be reached (one quick connection, so no download retries for minutes), or None."""
    from urllib.parse import urlparse

    from huggingface_hub import constants

    url = urlparse(constants.ENDPOINT)
    host, port = url.hostname or "huggingface.co", url.port or (443 if url.scheme == "https" else 80)
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as err:
        return f"{host}: {err.strerror or err}"
    return None


def _read_spec_and_tokenizer(directory: Path, label: str) -> tuple[ModelSpec, PreTrainedTokenizerBase | None]:
    from transformers import AutoConfig, AutoTokenizer

    try:
        spec = spec_from_hf_config(AutoConfig.from_pretrained(directory))
    except (OSError, ValueError, KeyError) as err:
        raise ModelLoadError(f"{label}: cannot read its config.json ({str(err).splitlines()[0]})") from None
    if not any((directory / f).is_file() for f in ("tokenizer.json", "tokenizer_config.json", "vocab.json")):
        return spec, None
    try:
        tokenizer = AutoTokenizer.from_pretrained(directory)
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ModelLoadError(f"{label}: cannot read its tokenizer ({str(err).splitlines()[0]})") from None
    return spec, tokenizer


def _check_same(
    first: tuple[str, ModelSpec, dict[str, int] | None], label: str, spec: ModelSpec, vocab: dict[str, int] | None
) -> None:
    first_label, first_spec, first_vocab = first
    problems = pair_mismatches(first_spec, spec)
    if problems:
        shown = "; ".join(p.replace("base ", f"{first_label} ").replace("tuned ", f"{label} ") for p in problems)
        raise ModelLoadError(f"checkpoints of one family must share an architecture and shape: {shown}")
    if vocab != first_vocab:
        raise ModelLoadError(
            f"checkpoints of one family must share a tokenizer: {label}'s differs from {first_label}'s "
            f"({_vocab_difference(first_vocab, vocab)})"
        )


def _vocab_difference(a: dict[str, int] | None, b: dict[str, int] | None) -> str:
    if a is None or b is None:
        return "one has no tokenizer files"
    if len(a) != len(b):
        return f"{len(a)} vs {len(b)} tokens"
    token = next(t for t in sorted(set(a) | set(b)) if a.get(t) != b.get(t))
    return f"token {token!r}: id {a.get(token)} vs {b.get(token)}"


def _check_rendering(
    label: str, spec: ModelSpec, tokenizer: PreTrainedTokenizerBase | None, layout: TaskLayout
) -> Rendering | None:
    """How ``layout``'s tasks are written for the family's tokenizer (``None``: the synthetic vocabulary, or no
    tokenizer files), once the model's vocabulary is known to hold every id they use."""
    try:
        rendered = layout.rendered_for(tokenizer)
    except TaskError as err:
        raise ModelLoadError(f"{label}'s tokenizer cannot write the study's tasks: {err}") from None
    if spec.d_vocab < rendered.n_vocab:
        tasks = "the synthetic tasks" if rendered.rendering is None else "the tasks written in its tokenizer's ids"
        raise ModelLoadError(f"{label} has a vocabulary of {spec.d_vocab} tokens; {tasks} need {rendered.n_vocab}")
    return rendered.rendering


def _check_layout(label: str, directory: Path, layout: TaskLayout) -> None:
    """A checkpoint that recorded its task layout (modlens.save_model) must match the study's."""
    recorded = read_provenance(directory).get("layout")
    if not isinstance(recorded, dict):
        return
    try:
        theirs = TaskLayout.from_record(recorded)  # its rendering, if any, is checked by the tokenizer
    except (TypeError, KeyError, TaskError):
        return
    if theirs != layout:
        fields = [f.name for f in dataclasses.fields(TaskLayout) if getattr(theirs, f.name) != getattr(layout, f.name)]
        wanted = ", ".join(f"study.family.{f} = {getattr(theirs, f)!r}" for f in fields)
        raise ConfigError(f"{label} was trained on another task layout; set {wanted} in the family file's [study]")
