"""Exceptions and warnings raised by mdlprob."""

from __future__ import annotations


class NotTrainedError(RuntimeError):
    """A method that needs a trained model was called before ``train``."""


class RegistrationError(ValueError):
    """Data were not registered with ``setup_mudata`` or do not match a model's registry."""


class DataWarning(UserWarning):
    """Data passed validation but look suspicious (constant or all-NaN features, ...)."""
