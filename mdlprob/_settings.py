"""Global settings: one seed for everything, determinism, progress bars, verbosity, CPU threads."""

from __future__ import annotations

import logging
import random

import numpy as np
import torch


class _Settings:
    """Package-wide settings, reachable as ``mdlprob.settings``.

    Attributes
    ----------
    progress_bar
        Whether long waits (training, refits, imputation, benchmark cells, reports) show a
        progress bar; bars also need ``verbosity`` at ``"info"`` or below.

    Examples
    --------
    >>> import mdlprob
    >>> mdlprob.settings.seed = 0  # seeds random, numpy, torch, CUDA and Pyro
    >>> mdlprob.settings.verbosity = "warning"  # no progress bars, no INFO lines
    >>> mdlprob.settings.verbosity = "info"
    """

    def __init__(self) -> None:
        self._seed: int | None = None
        self._deterministic = False
        self._verbosity = logging.INFO
        self.progress_bar = True
        log = logging.getLogger("mdlprob")
        if log.level == logging.NOTSET:
            log.setLevel(self._verbosity)

    @property
    def verbosity(self) -> int:
        """Level of the ``mdlprob`` logger (``logging.INFO`` = 20 by default).

        Set it to a ``logging`` level or its name (``"debug"``, ``"info"``, ``"warning"``,
        ``"error"``, ``"critical"``). Above ``"info"`` progress bars are hidden too (the
        CLI's ``--quiet`` sets ``"warning"``). INFO lines reach the screen only where a
        handler prints them (the CLI adds one; in Python use ``logging.basicConfig()``).
        """
        return self._verbosity

    @verbosity.setter
    def verbosity(self, value: int | str) -> None:
        names = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR,
                 "critical": logging.CRITICAL}
        if isinstance(value, str) and value.lower() in names:
            level = names[value.lower()]
        elif isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value >= 0:
            level = int(value)
        else:
            msg = f"Expected settings.verbosity to be a logging level (int >= 0) or one of {list(names)}, got {value!r}."
            raise ValueError(msg)
        self._verbosity = level
        logging.getLogger("mdlprob").setLevel(level)

    @property
    def show_progress(self) -> bool:
        """Whether progress bars are shown: ``progress_bar`` and ``verbosity`` at most ``"info"``."""
        return bool(self.progress_bar) and self._verbosity <= logging.INFO

    @property
    def n_threads(self) -> int:
        """Threads torch uses for CPU work (``torch.get_num_threads()``); set it to an int >= 1."""
        return torch.get_num_threads()

    @n_threads.setter
    def n_threads(self, value: int) -> None:
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            msg = f"Expected settings.n_threads to be an int >= 1 (CPU threads for torch), got {value!r}."
            raise ValueError(msg)
        torch.set_num_threads(int(value))

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
