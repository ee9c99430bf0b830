"""Global settings: one seed for everything, determinism, progress bars."""

from __future__ import annotations

import random

import numpy as np
import torch


class _Settings:
    """Package-wide settings, reachable as ``mdlprob.settings``.

    Examples
    --------
    >>> import mdlprob
    >>> mdlprob.settings.seed = 0  # seeds random, numpy, torch, CUDA and Pyro
    """

    def __init__(self) -> None:
        self._seed: int | None = None
        self._deterministic = False
        self.progress_bar = True

    @property
    def seed(self) -> int | None:
        """Seed last set; setting it seeds ``random``, numpy, torch, CUDA and Pyro."""
        return self._seed

    @seed.setter
    def seed(self, value: int | None) -> None:
        if value is None:
            self._seed = None
            return
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
            msg = f"Expected settings.seed to be a non-negative int, got {value!r}."
            raise ValueError(msg)
        import pyro

        self._seed = int(value)
        random.seed(self._seed)
        np.random.seed(self._seed)  # noqa: NPY002 - seeds third-party code using the global state
        torch.manual_seed(self._seed)
        pyro.set_rng_seed(self._seed)

    @property
    def deterministic(self) -> bool:
        """Whether torch uses deterministic algorithms only."""
        return self._deterministic

    @deterministic.setter
    def deterministic(self, value: bool) -> None:
        self._deterministic = bool(value)
        torch.use_deterministic_algorithms(self._deterministic, warn_only=True)


settings = _Settings()
