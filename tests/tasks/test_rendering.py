"""The synthetic tasks rendered for a text tokenizer: a byte-level BPE tokenizer learned here (as GPT-2's and
Pythia's are) writes every symbol as one token, so rendered sequences keep the layout's every position; a
hand-built solver that reads the rendered tokens back scores 1, and the faithfulness probes edit rendered ids."""

import dataclasses

import numpy as np
import pytest
import torch
from tokenizers import ByteLevelBPETokenizer, Tokenizer, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

from modlens.errors import TaskError
from modlens.faithfulness import PROBES, run_faithfulness
from modlens.tasks import SyntheticTask, TaskLayout, answer_accuracy, decode, sample_mixture
from modlens.tasks.operations import OPERATIONS, PRIMITIVES
from modlens.tasks.rendering import Rendering, render_for
from modlens.tasks.vocab import BOS, PAD, SEP, STEP, SyntheticVocab

LAYOUT = TaskLayout(n_digits=4, write_intermediates=True)
ENDOFTEXT = "<|endoftext|>"


def text_tokenizer(*, vocab_size: int = 600) -> PreTrainedTokenizerFast:
    """A GPT-2-like tokenizer learned on text that holds the symbols as words (with few merges it splits them)."""
    words = [f" {d}" for d in range(10)] + [f" {op}" for op in OPERATIONS] + [" =", " ;"]
    text = ["the answer is" + "".join(words)] * 50 + ["plain text about digits such as 12345, and more"] * 20
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(text, vocab_size=vocab_size, min_frequency=1, special_tokens=[ENDOFTEXT])
    return PreTrainedTokenizerFast(tokenizer_object=bpe, bos_token=ENDOFTEXT, eos_token=ENDOFTEXT)


@pytest.fixture(scope="module")
def tokenizer() -> PreTrainedTokenizerFast:
    return text_tokenizer()


@pytest.fixture(scope="module")
def layout(tokenizer) -> TaskLayout:
    return LAYOUT.rendered_for(tokenizer)


def test_every_symbol_is_one_token_with_distinct_ids(tokenizer) -> None:
    rendering = render_for(tokenizer, 10)
    assert rendering is not None
    table = rendering.as_dict()
    assert table["7"]["text"] == " 7" and table["reverse"]["text"] == " reverse" and table[SEP]["text"] == " ="
    assert table[BOS]["text"] == ENDOFTEXT and table[PAD]["text"] == ENDOFTEXT  # GPT-2 style: one special for both
    for symbol, entry in table.items():
        assert tokenizer.encode(entry["text"], add_special_tokens=False) == [entry["id"]], symbol
    answers = [table[s]["id"] for s in SyntheticVocab(10).tokens if s not in ("<pad>", "<bos>", "<eos>", "<unk>")]
    assert len(set(answers)) == len(answers) == 10 + len(OPERATIONS) + 2
    assert table[BOS]["id"] not in answers


def test_the_synthetic_vocabulary_needs_no_rendering() -> None:
    assert render_for(LAYOUT.vocab.tokenizer(), LAYOUT.base) is None
    assert LAYOUT.rendered_for(LAYOUT.vocab.tokenizer()) == LAYOUT
    assert LAYOUT.rendered_for(None) == LAYOUT


def test_a_word_level_tokenizer_with_the_symbols_at_other_ids_is_rendered_exactly() -> None:
    ids = dict(LAYOUT.vocab.ids)
    shuffled = dict(zip(ids, reversed(list(ids.values())), strict=True))  # same tokens, other ids
    tk = Tokenizer(models.WordLevel(vocab=shuffled, unk_token="<unk>"))
    tk.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    rendering = render_for(PreTrainedTokenizerFast(tokenizer_object=tk, unk_token="<unk>"), LAYOUT.base)
    assert rendering is not None
    assert rendering.ids == tuple(shuffled[token] for token in LAYOUT.vocab.tokens)


def test_a_tokenizer_that_splits_the_symbols_is_refused_in_one_line() -> None:
    few_merges = text_tokenizer(vocab_size=270)
    with pytest.raises(TaskError, match=r"cannot render the synthetic symbol '\w+' as one token; tried ' ") as info:
        render_for(few_merges, 10)
    assert "\n" not in str(info.value)
    with pytest.raises(TaskError, match=r"symbol '1[0-5]'"):  # base 16's digits 10..15 are no words of the text
        dataclasses.replace(LAYOUT, base=16).rendered_for(text_tokenizer())


def test_rendered_sequences_keep_the_layout(layout) -> None:
    rendering = layout.rendering
    assert isinstance(rendering, Rendering)
    task = SyntheticTask.from_name("increment∘reverse", layout)
    synthetic = SyntheticTask.from_name("increment∘reverse", LAYOUT).sample(32, seed=3)
    rendered = task.sample(32, seed=3)
    assert rendered.tokens.shape == (32, layout.seq_len)
    torch.testing.assert_close(rendered.answer_mask, synthetic.answer_mask)
    torch.testing.assert_close(rendered.tokens, torch.from_numpy(rendering.tokens(synthetic.tokens.numpy())))
    torch.testing.assert_close(rendering.symbols(rendered.tokens)[:, 1:], synthetic.tokens[:, 1:])
    assert (rendered.tokens[:, layout.answer_start - 1] == layout.token_id(SEP)).all()
    assert (rendered.tokens[:, layout.segment(1).start - 1] == layout.token_id(STEP)).all()
    assert decode(rendered.tokens[:1], layout) == decode(synthetic.tokens[:1], LAYOUT)
    assert decode(rendered.tokens[:1], layout)[0].startswith(f"{BOS} increment reverse ")


class Solver:
    """Reads rendered tokens back through the rendering and writes each answer digit: the first segment is
    ``g(x)``, the segment after the last ``;`` is ``f`` of the intermediate written before it (of ``g(x)`` when
    that is no digits). Records every token it is shown."""

    def __init__(self, layout: TaskLayout) -> None:
        assert layout.rendering is not None
        self.layout, self.rendering, self.seen = layout, layout.rendering, set[int]()

    def logits(self, tokens: torch.Tensor) -> torch.Tensor:
        lay, vocab = self.layout, self.layout.vocab
        self.seen |= set(tokens.flatten().tolist())
        out = torch.zeros(*tokens.shape, self.rendering.n_vocab)
        digit_ids = range(vocab.digit_offset, vocab.digit_offset + lay.base)
        x_start, n = 1 + lay.n_slots, lay.n_digits
        for b, row in enumerate(self.rendering.symbols(tokens).tolist()):
            outer, inner = (vocab.tokens[t] for t in row[1:x_start])
            x = np.array([row[x_start : x_start + n]]) - vocab.digit_offset
            first = OPERATIONS[inner](x, lay.base)[0]
            steps = [i for i, t in enumerate(row) if t == vocab.ids[STEP]]
            for p in range(lay.answer_start - 1, len(row)):
                s = max((i for i in steps if i <= p), default=None)
                j = p - (lay.answer_start - 1) if s is None else p - s
                if j >= n:
                    continue
                if s is None:
                    digit = first[j]
                else:
                    written = row[s - n : s]
                    read = np.array([written]) - vocab.digit_offset if set(written) <= set(digit_ids) else first[None]
                    digit = OPERATIONS[outer](read, lay.base)[0, j]
                out[b, p, self.rendering.ids[vocab.digit_offset + int(digit)]] = 1.0
        return out


def test_a_solver_of_the_rendered_tasks_scores_one(layout) -> None:
    tasks = [SyntheticTask.from_name(name, layout) for name in ("increment∘reverse", "sort∘double", "swap∘rotate")]
    tasks += [SyntheticTask((p,), layout) for p in PRIMITIVES]
    batch = sample_mixture(tasks, 64, split="test", seed=1)
    solver = Solver(layout)
    assert float(answer_accuracy(solver.logits(batch.tokens), batch)) == 1.0
    assert solver.seen <= set(layout.rendering.ids)  # type: ignore[union-attr]


def test_faithfulness_probes_edit_rendered_tokens(layout) -> None:
    batch = SyntheticTask.from_name("increment∘reverse", layout).sample(16, split="test", seed=2)
    solver = Solver(layout)
    frame = run_faithfulness(solver, batch, layout).set_index("probe")
    assert list(frame.index) == list(PROBES)
    assert (frame["clean_accuracy"] == 1.0).all()
    assert frame.loc["corruption", "follows"] == 1.0  # the solver reads the intermediate it is given
    assert frame.loc["corruption", "n"] > 0
    # the probes wrote the rendered step separator and filler, never a synthetic id outside the rendering
    assert solver.seen <= set(layout.rendering.ids)  # type: ignore[union-attr]
    assert layout.token_id(PAD) in solver.seen


def test_a_rendered_layout_is_read_back_from_provenance_without_its_rendering(layout) -> None:
    recorded = dataclasses.asdict(layout)
    assert TaskLayout.from_record(recorded) == LAYOUT  # the rendering is made again from the tokenizer
    with pytest.raises(TaskError, match="base 10"):
        TaskLayout(base=8, rendering=layout.rendering)
