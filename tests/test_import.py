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


def test_lazy_api_matches_the_type_checking_imports() -> None:
    """The lazily loaded names and the eager imports type checkers read are the same set, module by module."""
    import ast
    from pathlib import Path

    import modlens

    tree = ast.parse(Path(modlens.__file__).read_text(encoding="utf-8"))
    (guard,) = [node for node in tree.body if isinstance(node, ast.If)]
    eager = {
        (node.module, alias.name) for node in guard.body if isinstance(node, ast.ImportFrom) for alias in node.names
    }
    lazy = {(module, name) for module, names in modlens._EXPORTS.items() for name in names}
    assert eager == lazy


def test_the_command_line_parser_does_not_import_heavy_libraries() -> None:
    """``modlens --help`` builds every subcommand's parser; that must not import torch, pandas or transformers."""
    code = """
import sys
from modlens.cli import build_parser
build_parser()
heavy = sorted({"torch", "pandas", "transformers", "plotly", "transformer_lens"} & set(sys.modules))
assert not heavy, heavy
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
