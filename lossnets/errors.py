"""The project's own error types: what the user gave is wrong (an option, a setting, a file, a package).

The command line prints these (and OSError) as one line naming the argument or file; every other exception is a
bug and keeps its traceback. Each derives from the builtin type that callers have always caught as well.
"""
from __future__ import annotations


class LossnetsError(Exception):
    """Base of every error that says what the user gave is wrong, and what was expected."""


class ConfigError(LossnetsError, ValueError):
    """A bad option, setting or config file entry."""


class MissingPackageError(LossnetsError, ImportError):
    """An optional package is needed for what was asked; the message says how to get it."""
