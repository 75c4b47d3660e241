"""A fit's state after a finished epoch, saved so that training continues from there.

Everything the next epochs depend on is kept: the weights, the optimiser, the learning-rate
schedule, the grad scaler, the moving average (EMA), every random state (Python, NumPy,
torch, CUDA, CutMix's generator; the loaders draw from (seed, epoch, index) alone, so the
epoch number restores them), the divergence bound, the best epoch so far with its weights,
early stopping's count and the epoch records. On the CPU a fit continued from a state gives
bit for bit the numbers of an uninterrupted one.
"""

from __future__ import annotations

import copy
import os
import pickle
import random
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

FORMAT = 2  # bumped when the layout below changes; other formats are not resumed from


@dataclass
class FitState:
    """The state after ``epoch`` finished epochs (1-based: ``epoch`` 3 = three done)."""

    epoch: int
    history: list[dict[str, float]]
    best_value: float | None
    best_epoch: int
    stale: int  # epochs since the best one (early stopping)
    model: dict[str, Any]
    optimizer: dict[str, Any]
    scheduler: dict[str, Any]
    scaler: dict[str, Any]
    ema: dict[str, Any] | None
    rng: dict[str, Any]
    loss_bound: float | None
    # the best epoch's evaluated weights; None when that is the last finished epoch (then
    # they are the model's, or the moving average's, saved above)
    best_state: dict[str, torch.Tensor] | None
    seconds: tuple[float, float, int] = (0.0, 0.0, 0)  # loop, training, images (timing only)
    extra: dict[str, Any] = field(default_factory=dict)


def random_states(cutmix: torch.Generator) -> dict[str, Any]:
    """Every random stream a fit draws from."""
    states: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
        "cutmix": cutmix.get_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def restore_random_states(states: dict[str, Any], cutmix: torch.Generator) -> None:
    """Put back what :func:`random_states` took."""
    random.setstate(states["python"])
    np.random.set_state(states["numpy"])
    torch.set_rng_state(states["torch"])
    cutmix.set_state(states["cutmix"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


MAGIC = b"ablate-fit-state\n"


@dataclass(frozen=True)
class _TensorAt:
    """Where a tensor was in a state: its place among the raw tensors after the header."""

    index: int


def save_state(state: FitState, path: Path) -> None:
    """Write ``state`` to ``path`` whole or not at all (a temporary file renamed over it), so
    a kill while writing leaves the previous state.

    The layout is a pickled header (the state with each tensor replaced by its place, and the
    tensors' types and shapes) followed by the tensors' raw bytes. Raw bytes are written
    without holding Python's lock (unlike ``torch.save``'s archive), so a write on a thread
    beside training does not stall the training loop."""
    tensors: list[torch.Tensor] = []

    def stripped(value: Any) -> Any:
        if isinstance(value, torch.Tensor):
            tensors.append(value.detach().to("cpu").contiguous())
            return _TensorAt(len(tensors) - 1)
        return _rebuilt(value, lambda _, item: stripped(item))

    body = stripped(state.__dict__)
    header = pickle.dumps({"format": FORMAT, "state": body,
                           "tensors": [(str(t.dtype), tuple(t.shape)) for t in tensors]},
                          protocol=pickle.HIGHEST_PROTOCOL)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(temporary, "wb") as out:
            out.write(MAGIC + struct.pack("<Q", len(header)) + header)
            for tensor in tensors:
                out.write(_bytes_of(tensor).data)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def load_state(path: Path, device: torch.device) -> FitState | None:
    """The state saved at ``path`` (tensors on ``device``; random states on the CPU, where
    torch keeps them), or None when there is none or it is of another format or unreadable
    (a fit then starts from epoch 0)."""
    if not path.is_file():
        return None
    try:
        with open(path, "rb") as source:
            if source.read(len(MAGIC)) != MAGIC:
                return None
            (size,) = struct.unpack("<Q", source.read(8))
            # The header holds random states (tuples, numpy arrays) besides tensors' places:
            # written by this worker's own store, never taken from elsewhere.
            payload = pickle.loads(source.read(size))  # noqa: S301
            if not isinstance(payload, dict) or payload.get("format") != FORMAT:
                return None
            tensors = []
            for dtype, shape in payload["tensors"]:
                tensor = torch.empty(shape, dtype=getattr(torch, dtype.removeprefix("torch.")))
                raw = _bytes_of(tensor)
                if source.readinto(raw.data) != raw.nbytes:
                    return None  # torn
                tensors.append(tensor)
    except Exception:  # noqa: BLE001 - a torn or foreign file is not a state to resume
        return None

    def placed(value: Any, where: torch.device) -> Any:
        if isinstance(value, _TensorAt):
            return tensors[value.index].to(where)
        return _rebuilt(value, lambda _, item: placed(item, where))

    body = payload["state"]
    state = {key: placed(value, torch.device("cpu") if key == "rng" else device)
             for key, value in body.items()}
    return FitState(**state)


def _bytes_of(tensor: torch.Tensor) -> np.ndarray:
    """A contiguous CPU tensor's memory as bytes (shared, not copied)."""
    return tensor.reshape(-1).view(torch.uint8).numpy()


def _rebuilt(value: Any, each: Callable[[Any, Any], Any]) -> Any:
    """``value`` with ``each(place, item)`` applied to the items of its dicts (place: the
    key), lists and tuples (the index); a module state dict keeps its layers' versions.
    Anything else is returned as it is."""
    if isinstance(value, dict):
        rebuilt = (dict((k, each(k, v)) for k, v in value.items()) if type(value) is dict
                   else type(value)((k, each(k, v)) for k, v in value.items()))
        if hasattr(value, "_metadata"):
            rebuilt._metadata = copy.deepcopy(value._metadata)  # type: ignore[attr-defined]
        return rebuilt
    if isinstance(value, list):
        return [each(i, v) for i, v in enumerate(value)]
    if isinstance(value, tuple):
        return tuple(each(i, v) for i, v in enumerate(value))
    return value


StateSink = Callable[[FitState], None]


class StateWriter:
    """Keeps fit states at ``path`` without holding training up: each state's tensors are
    copied (into buffers reused from one epoch to the next) before :meth:`__call__` returns,
    and the file is written on a thread while training goes on. At most one write is in
    flight: the next state waits for it. A kill while writing leaves the previous state
    (see :func:`save_state`), so the state kept is the last one whose write finished."""

    def __init__(self, path: Path):
        self.path = path
        self._buffers: dict[str, torch.Tensor] = {}
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def __call__(self, state: FitState) -> None:
        self.wait()
        copy = FitState(**{k: _copied(v, k, self._buffers) for k, v in state.__dict__.items()})
        self._thread = threading.Thread(target=self._write, args=(copy,),
                                        name="ablate-state", daemon=True)
        self._thread.start()

    def _write(self, state: FitState) -> None:
        try:
            _lowest_priority()
            save_state(state, self.path)
        except BaseException as err:  # noqa: BLE001 - raised in the training thread by wait()
            self._error = err

    def wait(self) -> None:
        """Return once no write is in flight; a write that failed raises its error here."""
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._error is not None:
            error, self._error = self._error, None
            raise error


def _lowest_priority() -> None:
    """Run this thread at the lowest CPU priority (Linux: threads have their own nice value):
    beside torch's threads on every core, a writer at normal priority stalls them at each
    parallel region's barrier, costing training far more than the write's own CPU time."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
    except (AttributeError, OSError):  # not Linux, or not allowed: write at normal priority
        pass


def _copied(value: Any, key: str, buffers: dict[str, torch.Tensor]) -> Any:
    """``value`` with every tensor in it copied to the CPU, into the buffer kept for its place
    (``key``) when one of the same shape and type exists."""
    if isinstance(value, torch.Tensor):
        held = buffers.get(key)
        if held is None or held.shape != value.shape or held.dtype != value.dtype:
            held = buffers[key] = torch.empty_like(value, device="cpu")
        held.copy_(value.detach())
        return held
    if isinstance(value, dict | list | tuple):
        return _rebuilt(value, lambda place, item: _copied(item, f"{key}/{place}", buffers))
    return copy.deepcopy(value)
