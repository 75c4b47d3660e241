"""Trials that continue from the last finished epoch of an attempt that was stopped.

After every finished epoch a trial keeps its fit's state
(:class:`~ablate.training.checkpoint.FitState`) in the study's checkpoint folder
(``<store>/cache/resume/<study>/`` for a store folder, or ``ABLATE_CHECKPOINT_DIR`` /
``--checkpoint-dir``, which several machines may share), one file per configuration x seed.
A trial queued again after its attempt was stopped (killed, interrupted, preempted, taken for
dead) continues from that state on whichever worker takes it; its run is tagged
``ablate.resumed_from_epoch``. A state is used only by a retry of the attempt that wrote it and
only for the same resolved configuration, and it is written only while the trial is its
writer's own (the fence). Finished trials' states are deleted.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path

import torch

from ablate.naming import slug
from ablate.spec import RunConfig
from ablate.stores import Stores
from ablate.training.checkpoint import FitState, StateWriter, load_state
from ablate.training.fit import Resume

CHECKPOINT_ENV = "ABLATE_CHECKPOINT_DIR"


def checkpoint_root(stores: Stores, study: str, override: str | None = None) -> Path | None:
    """The folder of ``study``'s resumable states: ``override`` (a flag or the spec), else
    ``ABLATE_CHECKPOINT_DIR``, else ``<store>/cache/resume`` (None: no folder to keep them)."""
    base = override or os.environ.get(CHECKPOINT_ENV)
    if base:
        return Path(base).expanduser().absolute() / study
    if stores.folder is None:
        return None
    return stores.folder / "cache" / "resume" / study


def config_digest(config: RunConfig) -> str:
    """A digest of everything a run trains with (its seed included)."""
    text = json.dumps(config.model_dump(mode="json"), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class TrialCheckpoint:
    """The resumable state of one configuration x seed: ``key`` names it in the folder,
    ``trial`` is the attempt now training it, ``retries`` the attempts it replaces."""

    def __init__(self, folder: Path, key: str, trial: int, retries: list[int],
                 config: RunConfig, fence_check: Callable[[], None]):
        self.path = folder / f"{slug(key)}.pt"
        self.writer = StateWriter(self.path)
        self.trial = trial
        self.retries = set(retries)
        self.digest = config_digest(config)
        self._check = fence_check

    def load(self, device: torch.device) -> FitState | None:
        """The state to continue from: one written by an attempt this trial retries, for the
        same configuration; None otherwise (a fresh trial starts from epoch 0)."""
        if not self.retries:
            return None
        state = load_state(self.path, device)
        if state is None:
            return None
        if state.extra.get("trial") not in self.retries or state.extra.get("config") != self.digest:
            return None
        return state

    def save(self, state: FitState) -> None:
        """Keep ``state`` (only while the trial is this worker's: the fence is checked); the
        file is written in the background (:class:`StateWriter`)."""
        self._check()
        state.extra = {"trial": self.trial, "config": self.digest}
        self.writer(state)

    def resume(self, device: torch.device) -> Resume:
        """What ``train()`` continues from and saves to."""
        return Resume(self.load(device), self.save, self.writer.wait)

    def discard(self) -> None:
        """Delete the state (its configuration x seed is finished), once no write of it is
        in flight, and what killed writers left of theirs."""
        try:
            self.writer.wait()
        finally:
            self.path.unlink(missing_ok=True)
            for torn in self.path.parent.glob(f".{self.path.name}.*.tmp"):
                torn.unlink(missing_ok=True)
