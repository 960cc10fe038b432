import subprocess
import sys


def test_importing_modlens_changes_nothing_global() -> None:
    """No prints, no plotly default template change, no torch settings changed, on import."""
    code = """
import plotly.io as pio, torch, warnings
before = (pio.templates.default, torch.get_num_threads(), torch.get_default_dtype(), torch.is_grad_enabled())
import modlens, modlens.models, modlens.tasks, modlens.training, modlens.zoo, modlens.cli
after = (pio.templates.default, torch.get_num_threads(), torch.get_default_dtype(), torch.is_grad_enabled())
assert before == after, (before, after)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout == ""


def test_public_api_is_curated() -> None:
    import modlens

    assert all(hasattr(modlens, name) for name in modlens.__all__)
    assert {"load_model", "Model", "SyntheticTask", "pretrain", "finetune", "check_pair"} <= set(modlens.__all__)
