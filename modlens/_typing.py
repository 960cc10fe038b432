"""Tensor type aliases with the fixed dimension vocabulary: batch pos layer head d_model d_head d_mlp d_vocab."""

from jaxtyping import Bool, Float, Int
from torch import Tensor

Tokens = Int[Tensor, "batch pos"]
AnswerMask = Bool[Tensor, "batch pos"]
Logits = Float[Tensor, "batch pos d_vocab"]
Residual = Float[Tensor, "batch pos d_model"]

__all__ = ["AnswerMask", "Bool", "Float", "Int", "Logits", "Residual", "Tensor", "Tokens"]
