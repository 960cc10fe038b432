"""The names a user types: every choice the CLI and config files accept, in one module that imports nothing heavy.

The registries that give these names meaning (metric functions, replacement builders, mask algorithms, ...) live
beside their code; ``tests/test_names.py`` and the registries' own tests check that each registry holds exactly
the names listed here, so the parser (which must not import torch: ``modlens --help`` stays fast) and the code
cannot drift apart.
"""

REPLACEMENTS = ("zero", "mean", "resample")
"""What an ablated activation becomes (``--replacement``); patching's replacement is the other run's value."""

MASK_REPLACEMENTS = ("zero", "mean")
"""Replacements a learned mask can interpolate towards (a resampled value has no fixed target to learn against)."""

ALGORITHMS = ("continuous_sparsification", "hard_concrete")
"""Mask-learning algorithms (``--algorithm``)."""

GRANULARITIES = ("component", "weight")
"""What one mask entry gates: a head or neuron, or one weight."""

METRICS = ("loss", "token_accuracy", "answer_accuracy", "logit_diff")
"""Behavioural metrics on the answer tokens (``--metric``)."""

DTYPES = ("float32", "bfloat16", "float16")
"""Weight dtypes a model can be loaded in (``--dtype``)."""

DIRECTIONS = ("noising", "denoising")
"""Activation patching directions: clean run with corrupted activations, or the reverse."""

MEASURES = ("linear_cka", "debiased_cka", "cosine", "rel_change")
"""Per-layer activation drift measures (``modlens drift --measures``)."""

SELECTIONS = ("heads", "attn", "mlp", "neurons", "resid", "all")
"""Named groups of components (``--components``)."""

FINETUNE_METHODS = ("full", "upper", "lora", "svf", "proxy")
"""Fine-tuning methods (``modlens.training.methods``): all weights, the upper layers only, LoRA adapters merged into
the weights, singular-value scales only (Transformer²'s SVF), and decoding-time proxy-tuning (the base untouched)."""

FIXED_BUDGET = "_fixed_budget"
"""Suffix of the study's metrics measured on the fixed-budget arm (every checkpoint fine-tuned for the same steps)."""

PRESETS = ("quick", "full", "large", "tiny")
"""Study presets (``modlens study --preset``)."""

EXECUTOR_FORMS = ("local", "processes", "processes:N", "dask://HOST:PORT")
"""Where units run (``--executor``)."""
