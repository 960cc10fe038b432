import torch

from modlens.tasks import Batch, answer_accuracy, evaluate, logit_diff, loss, token_accuracy


def make_case():
    """Two sequences of 4 tokens, answers at positions 2 and 3; vocabulary of 3."""
    tokens = torch.tensor([[0, 1, 2, 1], [0, 1, 0, 2]])
    mask = torch.tensor([[False, False, True, True], [False, False, True, True]])
    logits = torch.zeros(2, 4, 3)
    # row 0 predicts both answers right (targets 2 then 1); row 1 gets the first right (0), the second wrong
    logits[0, 1, 2] = 2.0
    logits[0, 2, 1] = 2.0
    logits[1, 1, 0] = 2.0
    logits[1, 2, 1] = 2.0  # target is 2
    return logits, Batch(tokens, mask)


def test_accuracies_on_hand_computed_case() -> None:
    logits, batch = make_case()
    assert token_accuracy(logits, batch).item() == 0.75
    assert answer_accuracy(logits, batch).item() == 0.5


def test_loss_on_hand_computed_case() -> None:
    logits, batch = make_case()
    right = -torch.log_softmax(torch.tensor([0.0, 0.0, 2.0]), 0)[2]
    wrong = -torch.log_softmax(torch.tensor([0.0, 2.0, 0.0]), 0)[2]
    torch.testing.assert_close(loss(logits, batch), (3 * right + wrong) / 4)


def test_logit_diff_on_hand_computed_case() -> None:
    logits, batch = make_case()
    torch.testing.assert_close(logit_diff(logits, batch), torch.tensor((2 + 2 + 2 - 2) / 4))


def test_evaluate_returns_floats() -> None:
    logits, batch = make_case()
    values = evaluate(logits, batch)
    assert set(values) == {"loss", "token_accuracy", "answer_accuracy", "logit_diff"}
    assert all(isinstance(v, float) for v in values.values())
