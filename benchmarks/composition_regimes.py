"""Exploration: in which regime do fine-tuned models generalise to composite pairs they never saw?

Each regime pretrains small GPT-NeoX models on primitives (checkpoints along one trajectory), fine-tunes every
checkpoint on the trained composite pairs with primitive replay, and records, along fine-tuning, accuracy on
the trained pairs and on held-out pairs that are functionally distinct from every trained pair and primitive
(``modlens.tasks.splits``). A ``joint`` regime trains from scratch on primitives and the trained pairs at once
(an upper bound at this scale, free of the pretrain/fine-tune staging).

    python benchmarks/composition_regimes.py --regimes direct intermediates given --seeds 0 \
        --json benchmarks/results/composition_regimes.json

Whole-answer accuracy is teacher-forced, which equals greedy decoding's exact match: every token right given
the right prefix is exactly what greedy decoding needs to reproduce the answer.
"""

import argparse
import dataclasses
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import torch

from modlens.models.factory import tiny_model
from modlens.models.model import Model
from modlens.tasks.metrics import answer_accuracy
from modlens.tasks.operations import PRIMITIVES
from modlens.tasks.splits import split_composites
from modlens.tasks.synthetic import SyntheticTask, TaskLayout, sample_mixture, step_forms
from modlens.training.loop import Schedule, train, trainable_copy
from modlens.training.pretrain import PretrainConfig, mixture_weights, pretrain


@dataclass(frozen=True, kw_only=True)
class Regime:
    name: str
    depth: int = 3
    d_model: int = 64
    n_heads: int = 4
    d_mlp: int = 256
    n_digits: int = 6
    write_intermediates: bool = True
    step_fraction: float = 0.0
    pretrain_composites: int = 0  # trained pairs also in the pretraining corpus
    composite_fraction: float = 0.0
    n_heldout: int = 8
    n_finetune: int | None = None
    pretrain_steps: int = 1000
    checkpoints: tuple[int, ...] = (0, 300, 1000)
    pretrain_lr: float = 3e-3
    finetune_lr: float = 1e-3
    finetune_steps: int = 1500
    finetune_batch: int = 64
    replay_fraction: float = 0.3
    eval_at: tuple[int, ...] = (0, 100, 250, 500, 1000, 1500)
    joint: bool = False  # from scratch on primitives (+given) and trained pairs together
    task_seed: int = 0
    notes: str = field(default="", compare=False)


REGIMES = {
    r.name: r
    for r in (
        Regime(name="direct", write_intermediates=False, notes="answer only, as the presets before"),
        Regime(name="intermediates", notes="the model writes g(x) ; f(g(x)); primitives with id in one slot"),
        Regime(name="steps", step_fraction=0.6, notes="+ 60% step forms: each primitive as one step of every program"),
        Regime(
            name="steps_long",
            step_fraction=0.6,
            pretrain_steps=3000,
            checkpoints=(0, 300, 1000, 3000),
            notes="step forms, 3000 pretraining steps",
        ),
        Regime(
            name="steps_digits4",
            step_fraction=0.6,
            n_digits=4,
            pretrain_steps=3000,
            checkpoints=(0, 300, 1000, 3000),
            notes="step forms, 4-digit inputs, 3000 pretraining steps",
        ),
        Regime(name="steps_wide", step_fraction=0.6, depth=4, d_model=128, d_mlp=512, notes="step forms, 4 x 128"),
        Regime(
            name="intermediates_more_pairs",
            n_heldout=6,
            finetune_steps=3000,
            eval_at=(0, 500, 1000, 2000, 3000),
            notes="no step forms; 20 trained pairs, 3000 fine-tuning steps",
        ),
        Regime(
            name="joint_steps",
            step_fraction=0.6,
            joint=True,
            checkpoints=(0,),
            finetune_steps=3000,
            eval_at=(0, 500, 1000, 2000, 3000),
            notes="upper bound: from scratch on primitives, step forms and trained pairs at once",
        ),
        Regime(
            name="joint_intermediates",
            joint=True,
            checkpoints=(0,),
            finetune_steps=3000,
            eval_at=(0, 500, 1000, 2000, 3000),
            notes="upper bound without step forms",
        ),
    )
}


def evaluate(model_hf: torch.nn.Module, batches: dict[str, object]) -> dict[str, float]:
    model_hf.eval()
    with torch.no_grad():
        out = {name: float(answer_accuracy(model_hf(b.tokens).logits, b)) for name, b in batches.items()}  # type: ignore[attr-defined]
    model_hf.train()
    return out


def run_regime(regime: Regime, seed: int) -> list[dict]:
    layout = TaskLayout(n_digits=regime.n_digits, write_intermediates=regime.write_intermediates)
    split = split_composites(
        seed=regime.task_seed, n_heldout=regime.n_heldout, n_finetune=regime.n_finetune, n_digits=regime.n_digits
    )
    prims = [SyntheticTask((p,), layout) for p in PRIMITIVES]
    steps = step_forms(layout) if regime.step_fraction else []
    trained = [SyntheticTask.from_name(n, layout) for n in split.finetune]
    heldout = [SyntheticTask.from_name(n, layout) for n in split.heldout]
    tests = {
        "primitives": sample_mixture(prims, 512, split="test", seed=1),
        "trained_pairs": sample_mixture(trained, 512, split="test", seed=3),
        "heldout_pairs": sample_mixture(heldout, 512, split="test", seed=2),
    }
    if steps:
        tests["step_forms"] = sample_mixture(steps, 512, split="test", seed=4)
    init = tiny_model(
        "gpt_neox",
        tokenizer=layout.vocab.tokenizer(),
        n_layers=regime.depth,
        d_model=regime.d_model,
        n_heads=regime.n_heads,
        d_mlp=regime.d_mlp,
        n_ctx=max(32, layout.seq_len),
        seed=seed,
    )
    started = time.perf_counter()
    if regime.joint:
        checkpoints = {0: init}
    else:
        config = PretrainConfig(
            steps=regime.pretrain_steps,
            checkpoints=regime.checkpoints,
            label_noise=0.0,
            composite_fraction=regime.composite_fraction,
            step_fraction=regime.step_fraction,
            lr=regime.pretrain_lr,
            seed=seed,
        )
        extra = trained[: regime.pretrain_composites]
        checkpoints = pretrain(init, prims, config, composites=extra, steps=steps, progress=False).checkpoints
    pretrain_seconds = time.perf_counter() - started
    rows = []
    for step, base in checkpoints.items():
        rows += finetune_trajectory(regime, seed, step, base, trained, prims, steps, tests, pretrain_seconds)
    return rows


def finetune_trajectory(
    regime: Regime,
    seed: int,
    step: int,
    base: Model,
    trained: list[SyntheticTask],
    prims: list[SyntheticTask],
    steps: list[SyntheticTask],
    tests: dict,
    pretrain_seconds: float,
) -> list[dict]:
    # replay mirrors the pretraining corpus; joint training: half the batch from the trained pairs
    share = 0.5 if regime.joint else regime.replay_fraction
    tasks, weights = mixture_weights(
        trained, (prims, share * (1 - regime.step_fraction)), (steps, share * regime.step_fraction)
    )
    rows: list[dict] = []
    started = time.perf_counter()

    def sampler(i: int):
        return sample_mixture(tasks, regime.finetune_batch, split="train", seed=seed * 7_000_003 + i, weights=weights)

    def check(done: int, hf: torch.nn.Module) -> bool:
        if done in regime.eval_at:
            acc = evaluate(hf, tests)
            rows.append(
                {
                    "regime": regime.name,
                    "seed": seed,
                    "pretrain_step": step,
                    "finetune_step": done,
                    **acc,
                    "seconds": round(time.perf_counter() - started, 1),
                    "pretrain_seconds": round(pretrain_seconds, 1),
                }
            )
            print(json.dumps(rows[-1]), flush=True)
        return False

    hf = trainable_copy(base.hf)
    schedule = Schedule(lr=regime.finetune_lr, warmup=20, decay_to=1.0, total=regime.finetune_steps)
    train(hf, sampler, steps=regime.finetune_steps, schedule=schedule, seed=0, on_step=check, progress=False)
    return rows


def summary_table(rows: list[dict]) -> str:
    """Markdown: per regime (with its notes) and pretraining level, zero-shot accuracy and accuracy after 500
    and after the last fine-tuning step (trained pairs / held-out pairs)."""
    frame = pd.DataFrame(rows)
    frame["notes"] = [row.get("config", {}).get("notes", "") for row in rows]
    lines = [
        "| regime | pretraining steps | zero-shot | after 500 steps | after the last step |",
        "|---|---|---|---|---|",
    ]
    for (regime, step), part in frame.groupby(["regime", "pretrain_step"], sort=False):
        accuracy = part.groupby("finetune_step")[["trained_pairs", "heldout_pairs"]].mean()

        def cell(at: int, acc: pd.DataFrame = accuracy) -> str:
            return (
                f"{acc.loc[at, 'trained_pairs']:.2f} / {acc.loc[at, 'heldout_pairs']:.2f}" if at in acc.index else "—"
            )

        last = int(accuracy.index.max())
        name = (
            f"`{regime}`: {part['notes'].iloc[0]}"
            if step == frame[frame["regime"] == regime]["pretrain_step"].min()
            else ""
        )
        level = "from scratch" if part["config"].iloc[0].get("joint") else str(step)
        lines.append(f"| {name} | {level} | {cell(0)} | {cell(500)} | {cell(last)} (step {last}) |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--summarize", type=Path, default=None, help="print the markdown table of a results JSON")
    parser.add_argument("--regimes", nargs="+", default=list(REGIMES), choices=sorted(REGIMES))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--json", type=Path, default=None, help="append rows to this JSON file")
    args = parser.parse_args()
    if args.summarize:
        print(summary_table(json.loads(args.summarize.read_text())["rows"]))
        return
    torch.set_num_threads(args.threads)
    rows: list[dict] = []
    if args.json and args.json.exists():
        rows = json.loads(args.json.read_text())["rows"]
    for name in args.regimes:
        regime = REGIMES[name]
        for item in args.overrides:
            key, value = item.split("=", 1)
            kind = type(getattr(regime, key))
            parsed = tuple(int(v) for v in value.split(",")) if kind is tuple else kind(value)
            regime = dataclasses.replace(regime, **{key: parsed})
        for seed in args.seeds:
            new = run_regime(regime, seed)
            for row in new:
                row["config"] = dataclasses.asdict(regime)
            rows += new
            if args.json:
                args.json.parent.mkdir(parents=True, exist_ok=True)
                args.json.write_text(json.dumps({"rows": rows}, indent=1))
    table = pd.DataFrame(rows).drop(columns=["config"])
    print(table.to_string(index=False))


if __name__ == "__main__":
    main()
