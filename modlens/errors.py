"""Errors a user can cause. The CLI prints their message as one line and exits non-zero."""


class ModlensError(Exception):
    """A problem with the user's input (paths, names, files, configs), not a bug in modlens."""


class ModelLoadError(ModlensError):
    """A model source could not be loaded."""


class PairMismatchError(ModlensError):
    """Two models cannot be compared weight by weight."""


class TaskError(ModlensError):
    """A task name, prompt file or batch is invalid."""


class ConfigError(ModlensError):
    """A configuration key or value is invalid."""


class NonFiniteError(ModlensError):
    """A model's weights or outputs hold NaN or infinity."""
