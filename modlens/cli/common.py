"""Arguments shared by several subcommands: models, tasks, progress."""

import argparse

from modlens.errors import TaskError
from modlens.models import Model, load_model
from modlens.models.loading import DTYPES, parse_dtype
from modlens.tasks import Batch, SyntheticTask, load_prompt_batch, task_layout_of


def add_task_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument(
        "--task", help="synthetic task name, e.g. 'reverse' or 'increment∘reverse' (or 'increment.reverse')"
    )
    group.add_argument("--prompts", metavar="FILE.jsonl", help='JSONL file of {"prompt": ..., "answer": ...} lines')
    parser.add_argument("--n-examples", type=int, default=256, help="examples drawn for a synthetic task")
    parser.add_argument("--seed", type=int, default=0, help="sampling seed")


def add_model_arguments(parser: argparse.ArgumentParser, *names: str) -> None:
    for name in names or ("model",):
        parser.add_argument(name, help="model directory or hub id (use --revision for a checkpoint)")
    parser.add_argument("--revision", default=None, help="hub revision, e.g. step1000 for a Pythia checkpoint")
    parser.add_argument("--device", default="cpu", help="torch device (default: cpu)")
    parser.add_argument("--dtype", default="float32", choices=list(DTYPES), help="weight dtype (default: float32)")


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
