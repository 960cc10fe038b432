"""``python -m modlens.cli``: the same as the ``modlens`` console script."""

from modlens.cli import console_main

console_main()
