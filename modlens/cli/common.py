"""From a subcommand's arguments to the front door (``modlens.resolve``): its model, its task batch, its components."""

import argparse
from pathlib import Path

from modlens.components import Component
from modlens.errors import TaskError
from modlens.models import Model
from modlens.resolve import TaskRef, load_model, resolve_components, task_batch, task_ref
from modlens.tasks import Batch


def model_from_args(source: str, args: argparse.Namespace, *, revision_arg: str = "revision") -> Model:
    """``source`` loaded with the command's device, dtype and the revision in ``args.<revision_arg>``."""
    return load_model(source, revision=getattr(args, revision_arg), device=args.device, dtype=args.dtype)


def task_from_args(args: argparse.Namespace) -> TaskRef:
    """``--task NAME`` (checked now) or ``--prompts FILE`` (read when the batch is drawn)."""
    if args.prompts:
        return TaskRef(None, str(Path(args.prompts).expanduser().resolve()), args.prompts)
    return task_ref(args.task)


def batch_from_args(model: Model, args: argparse.Namespace, *, split: str = "test") -> Batch:
    """The batch a subcommand analyses: ``--n-examples`` of a synthetic task's ``split``, or the prompts file."""
    if not args.prompts and args.n_examples <= 0:
        raise TaskError(f"--n-examples must be positive, got {args.n_examples}")
    return task_batch(model, task_from_args(args), n=args.n_examples, seed=args.seed, split=split)


def components_from_args(model: Model, args: argparse.Namespace) -> list[Component]:
    """``--components``: a group or comma-separated addresses, checked against the model."""
    return resolve_components(model.spec, args.components)
