"""Training checkpoints (atomic, loadable with ``weights_only=True``) and stopping on SIGINT/SIGTERM.

A checkpoint holds everything the epoch loop needs to continue exactly where it was: the
module's weights, the optimiser's state, the random number generators (torch, numpy,
Python), the epoch and step counters, the loss history, the early-stopping state (best
loss, patience counter, best weights) and, when written in the middle of an epoch, that
epoch's batch order, position and running loss. Continuing from it on CPU gives the weights
an uninterrupted run gives, bit for bit (``tests/reliability/test_checkpoint.py``).
"""

from __future__ import annotations

import contextlib
import io
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .._io import atomic_path
from ..exceptions import ModelFileError

CHECKPOINT_FILE = "checkpoint.pt"
#: Version of the checkpoint layout; a checkpoint of another version is refused with a clear error.
FORMAT = 1


def rng_state() -> dict[str, Any]:
    """Every generator training draws from, as tensors and plain Python values."""
    import random

    kind, keys, pos, has_gauss, cached = np.random.get_state()  # noqa: NPY002 (the legacy global generator settings.seed seeds)
    state = {"torch": torch.get_rng_state(), "python": random.getstate(),
             "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(cached)]}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore generators saved by :func:`rng_state`."""
    import random

    torch.set_rng_state(state["torch"])
    random.setstate(_tuples(state["python"]))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))  # noqa: NPY002
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _tuples(value: Any) -> Any:
    return tuple(_tuples(v) for v in value) if isinstance(value, list | tuple) else value


class Checkpointer:
    """Writes and reads ``checkpoint.pt`` in ``directory``.

    Parameters
    ----------
    directory
        Folder of the checkpoint (created when first written).
    every
        Epochs between checkpoints (the last epoch is always written).
    identity
        What the checkpoint must match to be resumed (model class, sizes, options); a
        mismatch on resume raises naming the differing entries.
    extra
        Saved with every checkpoint as they are (e.g. the training split).
    """

    def __init__(self, directory: str | Path, every: int, identity: dict[str, Any],
                 extra: dict[str, Any] | None = None) -> None:
        self.directory = Path(directory)
        self.path = self.directory / CHECKPOINT_FILE
        self.every = every
        self.identity = identity
        self.extra = extra or {}

    def save(self, state: dict[str, Any]) -> None:
        """Atomically replace the checkpoint with ``state`` (plus identity and generators)."""
        payload = {"format": FORMAT, "identity": self.identity, "rng": rng_state(), **self.extra, **state}
        buffer = io.BytesIO()
        torch.save(payload, buffer)  # serialised in memory: a full disk then fails as a plain write
        with atomic_path(self.path) as tmp:
            tmp.write_bytes(buffer.getvalue())

    def load(self) -> dict[str, Any]:
        """The saved state, checked against this run's identity."""
        if not self.path.exists():
            msg = (f"No checkpoint to resume from: {self.path} does not exist. Train without resume=True "
                   f"(checkpoints are written every {self.every} epoch(s) into checkpoint_dir).")
            raise FileNotFoundError(msg)
        try:
            payload = torch.load(self.path, map_location="cpu", weights_only=True)
        except Exception as err:  # torch's message would advise weights_only=False: unsafe for a damaged file
            msg = (f"{self.path} is not a readable mdlprob checkpoint ({type(err).__name__}); it may be truncated "
                   "or damaged. Delete it and train without resume=True.")
            raise ModelFileError(msg) from None
        if not isinstance(payload, dict) or payload.get("format") != FORMAT:
            msg = f"{self.path} is not a checkpoint of this mdlprob version (format {FORMAT}); train without resume=True."
            raise ModelFileError(msg)
        differing = sorted(k for k in set(self.identity) | set(payload["identity"])
                           if self.identity.get(k) != payload["identity"].get(k))
        if differing:
            detail = "; ".join(f"{k}: checkpoint {payload['identity'].get(k)!r}, now {self.identity.get(k)!r}"
                               for k in differing)
            msg = (f"The checkpoint in {self.directory} was written by a different run ({detail}). Resume with the "
                   "same model, data and training options, or use another checkpoint_dir.")
            raise ValueError(msg)
        return payload


class StopRequest:
    """Set by SIGINT or SIGTERM while installed: the loop stops after its current step."""

    def __init__(self) -> None:
        self.signal: int | None = None

    def __bool__(self) -> bool:
        return self.signal is not None


@contextlib.contextmanager
def stop_on_signals(enabled: bool) -> Iterator[StopRequest]:
    """Turn SIGINT/SIGTERM into a :class:`StopRequest` (main thread only); a second SIGINT interrupts at once."""
    request = StopRequest()
    if not enabled or threading.current_thread() is not threading.main_thread():
        yield request
        return
    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}

    def handler(signum, frame) -> None:
        if request and signum == signal.SIGINT:
            signal.default_int_handler(signum, frame)
        request.signal = signum

    for s in previous:
        signal.signal(s, handler)
    try:
        yield request
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
