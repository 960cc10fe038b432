"""Tasks as data: synthetic primitives and composites, prompt files, batches and metrics."""

from modlens.errors import TaskError
from modlens.tasks.batch import Batch
from modlens.tasks.metrics import (
    METRICS,
    Metric,
    answer_accuracy,
    evaluate,
    example_correct,
    logit_diff,
    loss,
    token_accuracy,
    token_losses,
)
from modlens.tasks.model_layout import task_layout_of
from modlens.tasks.operations import OPERATIONS, PRIMITIVES, apply_ops, composites, parse_task_name, task_name
from modlens.tasks.prompts import encode_prompts, load_prompt_batch, load_prompts
from modlens.tasks.rendering import Rendering, render_for
from modlens.tasks.synthetic import SPLITS, SyntheticTask, TaskLayout, decode, sample_mixture, split_of
from modlens.tasks.vocab import SyntheticVocab

__all__ = [
    "METRICS",
    "OPERATIONS",
    "PRIMITIVES",
    "SPLITS",
    "Batch",
    "Metric",
    "Rendering",
    "SyntheticTask",
    "SyntheticVocab",
    "TaskError",
    "TaskLayout",
    "answer_accuracy",
    "apply_ops",
    "composites",
    "decode",
    "encode_prompts",
    "evaluate",
    "example_correct",
    "load_prompt_batch",
    "load_prompts",
    "logit_diff",
    "loss",
    "parse_task_name",
    "render_for",
    "sample_mixture",
    "split_of",
    "task_layout_of",
    "task_name",
    "token_accuracy",
    "token_losses",
]
