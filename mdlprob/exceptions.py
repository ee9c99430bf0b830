"""Exceptions and warnings raised by mdlprob."""

from __future__ import annotations


class NotTrainedError(RuntimeError):
    """A method that needs a trained model was called before ``train``."""


class RegistrationError(ValueError):
    """Data were not registered with ``setup_mudata`` or do not match a model's registry."""


class DataWarning(UserWarning):
    """Data passed validation but look suspicious (constant or all-NaN features, ...)."""


class ModelFileError(ValueError):
    """A saved model folder or checkpoint is incomplete, damaged or not mdlprob's."""


class TrainingDivergedError(FloatingPointError):
    """The training loss became non-finite; the model was put back to its last good weights."""


class TrainingInterrupted(KeyboardInterrupt):
    """Training stopped on SIGINT or SIGTERM after saving a checkpoint to resume from.

    Attributes
    ----------
    signal
        The signal number that asked training to stop.
    checkpoint
        The checkpoint file written, or ``None`` when none could be (backed data mid-epoch).
    """

    def __init__(self, message: str, signal: int, checkpoint: str | None) -> None:
        super().__init__(message)
        self.signal, self.checkpoint = signal, checkpoint
