"""Exceptions for problems the user can fix: the CLI prints them without a traceback."""


class HfftError(Exception):
    """Base class for expected, user-facing errors."""


class ConfigError(HfftError):
    """The recipe configuration is invalid (unknown key, wrong type, bad value)."""


class DataError(HfftError):
    """The dataset cannot be used as given (missing path, column, labels, ...)."""


class ModelError(HfftError):
    """The checkpoint cannot be used as given (missing, unsafe, wrong head, ...)."""


class TrainingError(HfftError):
    """Training stopped for a reason the user can fix (out of accelerator memory, disk full)."""
