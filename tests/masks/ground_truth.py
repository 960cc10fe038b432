"""A one-layer GPT-2 whose weights are written by hand: head 0 computes subroutine A, head 1 subroutine B.

Vocabulary: 0 pad, 1 sink, 2 query-A, 3 query-B, 4..11 letters (set A), 12..19 digits (set B).
Sequence ``sink x y query answer`` holds one letter and one digit in random order; subroutine A answers
the letter after query-A, B the digit after query-B. Head 0 attends from query-A to the letter and
copies it; head 1 does the same for query-B and digits; heads 2-3 and the MLP are zero.
"""

import tempfile

import torch
from transformers import AutoTokenizer, PreTrainedTokenizerFast

from modlens.models import Model, tiny_model
from modlens.tasks import Batch

SINK, QUERY_A, QUERY_B = 1, 2, 3
LETTERS = list(range(4, 12))
DIGITS = list(range(12, 20))
D_VOCAB = 20


def disk_tokenizer(d_vocab: int) -> PreTrainedTokenizerFast:
    """An id-level tokenizer saved to disk (the bridge reloads its tokenizer from ``name_or_path``)."""
    from tokenizers import Tokenizer, models, pre_tokenizers

    tk = Tokenizer(models.WordLevel(vocab={f"<{i}>": i for i in range(d_vocab)}, unk_token="<0>"))
    tk.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok = PreTrainedTokenizerFast(tokenizer_object=tk, unk_token="<0>", pad_token="<0>")
    directory = tempfile.mkdtemp(prefix="modlens-test-tok-")
    tok.save_pretrained(directory)
    return AutoTokenizer.from_pretrained(directory)


def two_head_model(*, attn_gain: float = 2.0, copy_gain: float = 2.0) -> Model:
    """The hand-written model (1 layer, 4 heads of width 8, d_model 32, d_mlp 16)."""
    model = tiny_model("gpt2", tokenizer=disk_tokenizer(D_VOCAB), n_layers=1, d_model=32, n_heads=4, d_mlp=16, n_ctx=8)
    hf = model.hf
    d_model, d_head = 32, 8
    with torch.no_grad():
        for p in hf.parameters():
            p.zero_()
        for ln in (hf.transformer.h[0].ln_1, hf.transformer.h[0].ln_2, hf.transformer.ln_f):
            ln.weight.fill_(1.0)
        # LayerNorm of a one-hot vector is alpha * e_t - beta; this bias cancels beta, so every head reads
        # exactly the token it was written to read (no small cross-talk through the offset)
        mean = 1.0 / d_model
        hf.transformer.h[0].ln_1.bias.fill_(mean / (mean * (1 - mean) + hf.config.layer_norm_epsilon) ** 0.5)
        hf.transformer.wte.weight[:, :D_VOCAB] = torch.eye(D_VOCAB)  # one-hot embeddings; lm_head is tied
        qkv = torch.zeros(d_model, 3 * d_model)  # Conv1D: x @ W, columns [q | k | v], heads of d_head
        proj = torch.zeros(d_model, d_model)
        for head, (query, tokens) in enumerate(((QUERY_A, LETTERS), (QUERY_B, DIGITS))):
            q0, k0, v0 = head * d_head, d_model + head * d_head, 2 * d_model + head * d_head
            qkv[query, q0] = attn_gain  # query: "I am this subroutine's query token"
            qkv[tokens, k0] = 1.0  # key: "I am a token of this subroutine's set"
            for j, tok in enumerate(tokens):
                qkv[tok, v0 + j] = 1.0  # value: which token of the set
                proj[head * d_head + j, tok] = copy_gain  # output: write that token's logit direction
        hf.transformer.h[0].attn.c_attn.weight.copy_(qkv)
        hf.transformer.h[0].attn.c_proj.weight.copy_(proj)
    return model


def task_batch(subroutine: str, n: int, *, seed: int = 0) -> Batch:
    """``n`` examples of subroutine ``"A"`` (answer the letter) or ``"B"`` (answer the digit)."""
    gen = torch.Generator().manual_seed(seed * 2 + (subroutine == "B"))
    letters = torch.tensor(LETTERS)[torch.randint(0, 8, (n,), generator=gen)]
    digits = torch.tensor(DIGITS)[torch.randint(0, 8, (n,), generator=gen)]
    swap = torch.rand(n, generator=gen) < 0.5
    first = torch.where(swap, digits, letters)
    second = torch.where(swap, letters, digits)
    query = torch.full((n,), QUERY_A if subroutine == "A" else QUERY_B)
    answer = letters if subroutine == "A" else digits
    tokens = torch.stack([torch.full((n,), SINK), first, second, query, answer], dim=1)
    mask = torch.zeros_like(tokens, dtype=torch.bool)
    mask[:, 4] = True
    return Batch(tokens, mask, subroutine)
