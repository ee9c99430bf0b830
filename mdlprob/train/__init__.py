"""Training loop, out-of-core epochs and data-parallel (``torch.distributed``) training."""

from __future__ import annotations

from ._ddp import check_parallel, fit_spawned, fit_torchrun, launched_by_torchrun
from ._loop import FitConfig, fit

__all__ = ["FitConfig", "check_parallel", "fit", "fit_spawned", "fit_torchrun", "launched_by_torchrun"]
