"""What several subcommands do with their arguments: load the model, draw the task batch."""

import argparse

from modlens.errors import TaskError
from modlens.models import Model, load_model
from modlens.models.loading import parse_dtype
from modlens.tasks import Batch, SyntheticTask, load_prompt_batch, task_layout_of


def load_cli_model(source: str, args: argparse.Namespace, *, revision_arg: str = "revision") -> Model:
    """``source`` loaded with the command's device, dtype and the revision in ``args.<revision_arg>``."""
    revision = getattr(args, revision_arg)
    return load_model(source, revision=revision, device=args.device, dtype=parse_dtype(args.dtype))


def task_batch(model: Model, args: argparse.Namespace) -> Batch:
    """The batch a subcommand analyses: a synthetic task's test split, or a prompts file."""
    if args.prompts:
        return load_prompt_batch(args.prompts, model.tokenizer, n_ctx=model.spec.n_ctx)
    if args.n_examples <= 0:
        raise TaskError(f"--n-examples must be positive, got {args.n_examples}")
    layout = task_layout_of(model)
    task = SyntheticTask.from_name(args.task, layout)
    if layout.seq_len > model.spec.n_ctx:
        raise TaskError(
            f"task sequences are {layout.seq_len} tokens, longer than the model's context {model.spec.n_ctx}"
        )
    return task.sample(args.n_examples, split="test", seed=args.seed)
