import pytest
import torch

from modlens.errors import ConfigError
from modlens.models import tiny_model
from modlens.tasks import answer_accuracy, sample_mixture
from modlens.training import PretrainConfig, Trajectory, pretrain


def test_small_pretraining_run_reaches_95_percent_on_held_out_primitives(
    small_trajectory: Trajectory, primitive_tasks
) -> None:
    test = sample_mixture(primitive_tasks, 1024, split="test", seed=11)
    final = small_trajectory.checkpoints[900]
    assert answer_accuracy(final.logits(test.tokens), test).item() >= 0.95
    # quality is graded along the trajectory: random init < 300 steps < 900 steps
    accs = [answer_accuracy(small_trajectory.checkpoints[s].logits(test.tokens), test).item() for s in (0, 300, 900)]
    assert accs[0] < 0.01 and accs[0] < accs[1] < accs[2]


def test_step_zero_checkpoint_is_the_initial_model(small_trajectory: Trajectory, tokenizer) -> None:
    init = tiny_model("gpt_neox", tokenizer=tokenizer, n_layers=2, d_model=64, n_heads=4, d_mlp=256, n_ctx=16)
    tokens = torch.randint(0, len(tokenizer), (2, 8), generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(small_trajectory.checkpoints[0].logits(tokens), init.logits(tokens), atol=0, rtol=0)


def test_pretraining_is_deterministic_and_leaves_the_input_untouched(tokenizer, primitive_tasks) -> None:
    init = tiny_model("llama", tokenizer=tokenizer, n_layers=1, d_model=32, n_heads=4, n_kv_heads=2, n_ctx=16, seed=3)
    before = {k: v.clone() for k, v in init.hf.state_dict().items()}
    config = PretrainConfig(steps=20, checkpoints=(10, 20), batch_size=16, seed=4)
    a = pretrain(init, primitive_tasks, config, progress=False)
    b = pretrain(init, primitive_tasks, config, progress=False)
    assert a.steps == [10, 20]
    for step in a.steps:
        for (name, x), y in zip(
            a.checkpoints[step].hf.state_dict().items(), b.checkpoints[step].hf.state_dict().values(), strict=True
        ):
            torch.testing.assert_close(x, y, atol=0, rtol=0, msg=name)
    for name, value in init.hf.state_dict().items():
        torch.testing.assert_close(value, before[name], atol=0, rtol=0, msg=name)
    changed = any(not torch.equal(before[k], v) for k, v in a.checkpoints[20].hf.state_dict().items())
    assert changed


def test_different_seeds_give_different_weights(tokenizer, primitive_tasks) -> None:
    init = tiny_model("gpt2", tokenizer=tokenizer, n_layers=1, d_model=32, n_heads=4, n_ctx=16)
    runs = [
        pretrain(init, primitive_tasks, PretrainConfig(steps=5, checkpoints=(5,), batch_size=8, seed=s), progress=False)
        for s in (0, 1)
    ]
    w0, w1 = (r.checkpoints[5].hf.state_dict()["transformer.h.0.mlp.c_fc.weight"] for r in runs)
    assert not torch.equal(w0, w1)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"steps": 10, "checkpoints": (0, 20)}, "outside"),
        ({"label_noise": 2.0}, "label_noise"),
        ({"composite_fraction": 1.0}, "composite_fraction"),
    ],
)
def test_bad_pretrain_configs(kwargs: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        PretrainConfig(**kwargs)
