"""Loading models from a local directory, a hub id (with revision), or an object already in memory."""

import copy
import logging
import os
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from modlens.errors import ModelLoadError, NonFiniteError
from modlens.models.model import Model
from modlens.models.spec import spec_from_hf_config

log = logging.getLogger(__name__)

DTYPES: dict[str, torch.dtype] = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
"""Weight dtypes by name (CLI ``--dtype``, sweep files)."""


def parse_dtype(name: str) -> torch.dtype:
    """The dtype called ``name``.

    Raises:
        ModelLoadError: an unknown name (the valid ones listed).
    """
    if name not in DTYPES:
        raise ModelLoadError(f"unknown dtype {name!r}; choose one of {', '.join(DTYPES)}")
    return DTYPES[name]


_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.json", "tokenizer.model")


def load_model(
    source: "str | os.PathLike[str] | Model | PreTrainedModel | Any",
    *,
    revision: str | None = None,
    device: str | torch.device | None = None,
    dtype: torch.dtype = torch.float32,
    trust_remote_code: bool = False,
) -> Model:
    """Loads a causal LM as a ``Model``.

    Args:
        source: a local Hugging Face model directory; a hub id such as ``"EleutherAI/pythia-70m"``;
            a ``Model``; an HF ``PreTrainedModel``; or a TransformerLens ``TransformerBridge``.
        revision: hub revision (branch, tag, commit; ``"step1000"`` picks a Pythia checkpoint).
        device: where to put the weights (default: CPU). Never chosen implicitly.
        dtype: floating-point dtype of the weights.
        trust_remote_code: allow model code from the hub. Off unless asked for.

    Raises:
        ModelLoadError: the source does not exist, holds no model or a truncated or corrupt one, its tokenizer
            cannot be read, it cannot be reached, or the device does not exist.
        NonFiniteError: a weight holds NaN or infinity.
    """
    device = check_device(device or "cpu")
    # Objects handed in are copied, never converted in place: the caller's module stays as it was.
    if isinstance(source, Model):
        if (source.device, source.dtype) == (device, dtype):
            return source
        return _from_hf(copy.deepcopy(source.hf), source.tokenizer, source.source, source.revision, device, dtype)
    if isinstance(source, PreTrainedModel):
        return _from_hf(copy.deepcopy(source), None, "<in-memory>", None, device, dtype)
    if _is_bridge(source):
        return _from_bridge(source, device, dtype)
    if not isinstance(source, str | os.PathLike):
        raise ModelLoadError(
            f"cannot load a model from a {type(source).__name__}; pass a directory, a hub id, "
            "a transformers PreTrainedModel or a TransformerBridge"
        )
    text = os.fspath(source)
    path = Path(text).expanduser()
    if path.exists():
        return _from_directory(path, device, dtype, trust_remote_code)
    if looks_like_path(text):
        raise ModelLoadError(f"model path {text!r} does not exist")
    return _from_hub(text, revision, device, dtype, trust_remote_code)


def looks_like_path(text: str) -> bool:
    """Hub ids are ``name`` or ``org/name``; anything else that names a missing file is a missing path."""
    return not text or text.startswith((".", "/", "~")) or text.count("/") > 1 or text.endswith("/") or "\\" in text


def check_model_directory(path: Path) -> None:
    """Raises ``ModelLoadError`` unless the existing ``path`` is a directory holding ``config.json``."""
    if not path.is_dir():
        raise ModelLoadError(f"{str(path)!r} is a file; pass the directory holding config.json and the weights")
    if not (path / "config.json").is_file():
        raise ModelLoadError(
            f"directory {str(path)!r} holds no model: no config.json (expected a Hugging Face model "
            "directory written by save_pretrained or modlens.save_model)"
        )


def _from_directory(path: Path, device: torch.device, dtype: torch.dtype, trust: bool) -> Model:
    check_model_directory(path)
    try:
        hf = AutoModelForCausalLM.from_pretrained(
            path, dtype=dtype, attn_implementation="eager", trust_remote_code=trust
        )
    except SafetensorError as err:
        raise ModelLoadError(
            f"the weights in {str(path)!r} are truncated or corrupt ({_one_line(err)}); copy or save them again"
        ) from err
    except (OSError, ValueError, KeyError, RuntimeError) as err:
        raise ModelLoadError(f"cannot load the model in {str(path)!r}: {_one_line(err)}") from err
    tokenizer = None
    if any((path / f).is_file() for f in _TOKENIZER_FILES):
        try:
            tokenizer = AutoTokenizer.from_pretrained(path)
        except (OSError, ValueError, KeyError, RuntimeError, TypeError) as err:
            raise ModelLoadError(
                f"cannot read the tokenizer in {str(path)!r} ({_one_line(err)}); save it again, or remove its files "
                "to use the model without one"
            ) from err
    return _from_hf(hf, tokenizer, str(path), None, device, dtype)


def check_bridgeable(architecture: str) -> None:
    """Raises ``ModelLoadError`` for an architecture the TransformerLens bridge cannot load (every intervention
    in modlens runs through it or is checked against it)."""
    from transformer_lens.factories.architecture_adapter_factory import SUPPORTED_ARCHITECTURES

    if architecture not in SUPPORTED_ARCHITECTURES:
        raise ModelLoadError(
            f"{architecture} cannot be loaded by the TransformerLens bridge, which modlens runs on; causal LMs it "
            "loads include GPT-2, GPT-NeoX (Pythia), Llama, Qwen2, Mistral, Gemma, Phi and OPT"
        )


def check_device(device: str | torch.device) -> torch.device:
    """The device, if this machine has it.

    Raises:
        ModelLoadError: a malformed device name, or a device this machine does not have.
    """
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ModelLoadError(f"unknown device {str(device)!r}; use cpu, cuda, cuda:N or mps") from err
    if dev.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ModelLoadError(f"device {str(device)!r} asked for, but this machine has no CUDA device; use cpu")
        if (dev.index or 0) >= count:
            raise ModelLoadError(f"device {str(device)!r} does not exist; this machine has cuda:0..cuda:{count - 1}")
    elif dev.type == "mps" and not torch.backends.mps.is_available():
        raise ModelLoadError(f"device {str(device)!r} asked for, but MPS is not available here; use cpu")
    elif dev.type not in ("cpu", "cuda", "mps"):
        raise ModelLoadError(f"device {str(device)!r} is not supported; use cpu, cuda, cuda:N or mps")
    return dev


def check_finite_weights(hf: PreTrainedModel, source: str) -> None:
    """Raises ``NonFiniteError`` naming the first parameter that holds NaN or infinity."""
    for name, param in hf.named_parameters():
        if not torch.isfinite(param).all():
            raise NonFiniteError(
                f"weight {name} of {source} holds NaN or infinity; the checkpoint is damaged "
                "(or overflowed when cast to a smaller dtype)"
            )


def _from_hub(name: str, revision: str | None, device: torch.device, dtype: torch.dtype, trust: bool) -> Model:
    try:
        hf = AutoModelForCausalLM.from_pretrained(
            name, revision=revision, dtype=dtype, attn_implementation="eager", trust_remote_code=trust
        )
        tokenizer = AutoTokenizer.from_pretrained(name, revision=revision)
    except (OSError, ValueError, SafetensorError) as err:
        where = f"{name!r}" + (f" at revision {revision!r}" if revision else "")
        raise ModelLoadError(
            f"{where} is neither a local model directory nor loadable from the Hugging Face hub "
            f"({_one_line(err)}); pass a local model directory when offline"
        ) from err
    return _from_hf(hf, tokenizer, name, revision, device, dtype)


def _from_hf(
    hf: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase | None,
    source: str,
    revision: str | None,
    device: torch.device,
    dtype: torch.dtype,
) -> Model:
    check_bridgeable(spec_from_hf_config(hf.config).architecture)  # fail early, with a clear message
    if hf.config._attn_implementation != "eager":
        # Eager attention gives the bridge its patterns and keeps HF and bridge numerics identical.
        hf.set_attn_implementation("eager")
    hf = hf.to(device=device, dtype=dtype).eval()  # type: ignore[call-arg]  # transformers wraps .to; mypy misreads it
    for p in hf.parameters():
        p.requires_grad_(False)
    check_finite_weights(hf, source)
    return Model(hf=hf, tokenizer=tokenizer, source=source, revision=revision)


def _is_bridge(obj: Any) -> bool:
    return type(obj).__name__ == "TransformerBridge" and hasattr(obj, "original_model")


def _from_bridge(bridge: Any, device: torch.device, dtype: torch.dtype) -> Model:
    """Rebuilds a clean HF module from a bridge's weights (the bridge rewrites the module it wraps)."""
    hf = unwrap_bridge(bridge)
    tokenizer = getattr(bridge, "tokenizer", None)
    model = _from_hf(hf, tokenizer, "<in-memory>", None, device, dtype)
    if (model.device, model.dtype) == (torch.device(bridge.cfg.device), bridge.cfg.dtype):
        model.__dict__["bridge"] = bridge  # reuse the caller's bridge rather than booting another
    return model


def unwrap_bridge(bridge: Any) -> PreTrainedModel:
    """A fresh HF module holding a bridge's current weights (GPT-NeoX's split q/k/v written back)."""
    config = bridge.original_model.config
    if bridge.cfg.architecture == "GPTNeoXForCausalLM":
        _sync_neox_fused_qkv(bridge)
    fresh = AutoModelForCausalLM.from_config(config, attn_implementation="eager")
    raw = {k.replace("._original_component", ""): v for k, v in bridge.original_model.state_dict().items()}
    missing = [k for k in fresh.state_dict() if k not in raw]
    if missing:
        raise ModelLoadError(f"bridge lacks weights the HF model needs: {missing[:5]}")
    fresh.load_state_dict({k: raw[k] for k in fresh.state_dict()})
    return fresh


@torch.no_grad()
def _sync_neox_fused_qkv(bridge: Any) -> None:
    """GPT-NeoX bridges hold *copies* of q/k/v; write them back into ``query_key_value``."""
    n, dh, dm = bridge.cfg.n_heads, bridge.cfg.d_head, bridge.cfg.d_model
    for block in bridge.blocks:
        qkv = block.attn.original_component.query_key_value
        weight = qkv.weight.view(n, 3, dh, dm)
        bias = qkv.bias.view(n, 3, dh)
        for i, lin in enumerate((block.attn.q, block.attn.k, block.attn.v)):
            weight[:, i] = lin.weight.view(n, dh, dm)
            bias[:, i] = lin.bias.view(n, dh)


def _one_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__
