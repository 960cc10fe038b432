"""The bridge holds the model's weights, not a second copy of them."""

import torch

from modlens.models import Model


def test_the_bridge_shares_the_weights(family_model: Model) -> None:
    hf = {p.data_ptr() for p in family_model.hf.parameters()}
    bridge = family_model.bridge
    copied = sum(p.numel() for p in bridge.parameters() if p.data_ptr() not in hf)
    # only the bridge's split query/key/value projections (GPT-NeoX, GPT-2 fuse them) are its own
    attention = sum(p.numel() for n, p in family_model.hf.named_parameters() if "attn" in n or "attention" in n)
    assert copied <= attention and (copied == 0) == (family_model.spec.architecture == "LlamaForCausalLM")
    tokens = torch.randint(3, 20, (2, 10))
    torch.testing.assert_close(bridge(tokens), family_model.logits(tokens), rtol=1e-5, atol=1e-5)
