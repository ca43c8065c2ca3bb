"""Errors cnnkit raises for problems the user can fix (shown without a traceback by the CLI)."""


class CnnkitError(Exception):
    """Base class: a problem with the user's input, named with what to do about it."""


class ConfigError(CnnkitError, ValueError):
    """A wrong configuration key, value or flag."""


class DataError(CnnkitError):
    """A dataset or file that cannot be used."""


class CheckpointError(CnnkitError):
    """A checkpoint that cannot be loaded."""
