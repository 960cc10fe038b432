import json

import pytest
import torch

from modlens.errors import TaskError
from modlens.tasks import encode_prompts, load_prompt_batch, load_prompts


def write_jsonl(path, rows) -> None:
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n")


def test_prompts_are_tokenized_with_answers_marked(tmp_path, tokenizer) -> None:
    file = tmp_path / "p.jsonl"
    write_jsonl(
        file,
        [
            {"prompt": "<bos> reverse id 1 2 3 4 =", "answer": "4 3 2 1"},
            {"prompt": "<bos> sort id 3 1 =", "answer": "1"},
        ],
    )
    batch = load_prompt_batch(file, tokenizer, n_ctx=32)
    assert batch.tokens.shape == (2, 12)
    assert batch.answer_mask[0].tolist() == [False] * 8 + [True] * 4
    assert batch.answer_mask[1].sum() == 1 and batch.answer_mask[1, 6]
    answer_ids = batch.tokens[0, batch.answer_mask[0]].tolist()
    assert answer_ids == tokenizer("4 3 2 1", add_special_tokens=False)["input_ids"]
    assert (batch.tokens[1, 7:] == tokenizer.pad_token_id).all()


def test_malformed_line_is_named(tmp_path) -> None:
    file = tmp_path / "bad.jsonl"
    write_jsonl(file, [{"prompt": "a", "answer": "b"}, "", '{"prompt": "x", "answer": }'])
    with pytest.raises(TaskError, match="line 3: malformed JSON"):
        load_prompts(file)


def test_missing_keys_are_named(tmp_path) -> None:
    file = tmp_path / "bad.jsonl"
    write_jsonl(file, [{"prompt": "a"}])
    with pytest.raises(TaskError, match="line 1: expected"):
        load_prompts(file)


def test_empty_file_and_missing_file(tmp_path) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n\n")
    with pytest.raises(TaskError, match="no rows"):
        load_prompts(empty)
    with pytest.raises(TaskError, match="does not exist"):
        load_prompts(tmp_path / "missing.jsonl")


def test_prompt_longer_than_context_is_refused(tokenizer) -> None:
    from modlens.tasks.prompts import PromptExample

    long = PromptExample(" ".join(["1"] * 40), " 2")
    with pytest.raises(TaskError, match="example 1 is 41 tokens long, more than the model's context of 32"):
        encode_prompts([long], tokenizer, n_ctx=32)


def test_model_without_tokenizer_cannot_read_prompts(tmp_path) -> None:
    file = tmp_path / "p.jsonl"
    write_jsonl(file, [{"prompt": "a", "answer": "b"}])
    with pytest.raises(TaskError, match="no tokenizer"):
        load_prompt_batch(file, None, n_ctx=8)


def test_batch_rejects_answers_at_position_zero() -> None:
    from modlens.tasks import Batch

    with pytest.raises(TaskError, match="position 0"):
        Batch(torch.zeros(1, 3, dtype=torch.long), torch.tensor([[True, False, False]]))


def test_an_answer_glued_to_its_prompt_is_named(tokenizer, caplog) -> None:
    from modlens.tasks.prompts import PromptExample

    glued = [PromptExample("<bos> sort id 3 1 =", " 1"), PromptExample("<bos> sort id 3 1 = 1", "3")]
    encode_prompts(glued, tokenizer, n_ctx=32)
    assert [r.getMessage() for r in caplog.records] == [
        "warning: example 2: the answer '3' is glued to the last word of its prompt; begin it with a space"
    ]


def test_bos_handling_follows_the_tokenizer(tokenizer_dir) -> None:
    from tokenizers.processors import TemplateProcessing
    from transformers import AutoTokenizer

    from modlens.tasks.prompts import PromptExample, prepends_bos

    plain = AutoTokenizer.from_pretrained(tokenizer_dir)
    with_bos = AutoTokenizer.from_pretrained(tokenizer_dir)
    bos = with_bos.bos_token_id
    with_bos.backend_tokenizer.post_processor = TemplateProcessing(single="<bos> $A", special_tokens=[("<bos>", bos)])
    assert not prepends_bos(plain) and prepends_bos(with_bos) and not prepends_bos(None)
    batch = encode_prompts([PromptExample("sort id 3 1 =", " 1")], with_bos, n_ctx=32)
    assert batch.tokens[0, 0] == bos and batch.answer_mask[0].tolist()[-1]
