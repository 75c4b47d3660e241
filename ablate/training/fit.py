"""Fitting: the epoch loop, the best epoch's weights on val, early stopping, callbacks."""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import torch
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from ablate.metrics.counts import compute_metrics
from ablate.spec import RunConfig
from ablate.training.checkpoint import FitState, StateSink, random_states, restore_random_states
from ablate.training.engine import Engine, SplitPass
from ablate.training.optim import EpochScheduler, build_optimizer

EpochCallback = Callable[[int, dict[str, float]], None]
# True: a bar on a terminal, else a line per epoch; "bar": always a bar; False: neither
Progress = bool | Literal["bar"]


@dataclass
class Resume:
    """Continuing a fit: ``state``, saved after an earlier attempt's last finished epoch
    (None: start from epoch 0), ``save``, which keeps the state after each epoch, and
    ``close``, called once the epochs are done (e.g. to finish a write in flight)."""

    state: FitState | None = None
    save: StateSink | None = None
    close: Callable[[], None] | None = None


@dataclass
class Fit:
    """What the epoch loop produced."""

    history: list[dict[str, float]] = field(default_factory=list)
    best_value: float | None = None
    best_epoch: int = 0  # its number, 1-based (0: no epoch had a finite objective)
    best_state: dict[str, torch.Tensor] | None = None
    best_pass: SplitPass | None = None  # the best epoch's val pass (loss, kept codes)
    stopped_early: bool = False
    seconds: float = 0.0  # the whole loop, validation included
    train_seconds: float = 0.0  # training passes only
    train_images: int = 0

    @property
    def images_per_second(self) -> float:
        return self.train_images / self.train_seconds if self.train_seconds > 0 else math.nan


def improved(value: float, best: float | None, maximize: bool, min_delta: float) -> bool:
    """Whether ``value`` beats ``best`` by more than ``min_delta`` (the first finite value
    always does)."""
    if not math.isfinite(value):
        return False
    if best is None:
        return True
    return value > best + min_delta if maximize else value < best - min_delta


def validate(engine: Engine, loader: DataLoader, metric: str) -> tuple[float, SplitPass]:
    """The objective's metric (without its ``val_`` prefix) over the val split, and the pass
    (its loss, and its codes: the best epoch's are counted again by the final evaluation)."""
    data = engine.config.data
    evaluated = engine.evaluate(loader, keep=True)
    values = compute_metrics(evaluated.counts.matrix, data.task, data.names, data.ignore_index)
    return float(values[metric]), evaluated.kept


def epoch_line(description: str, epoch: int, epochs: int, record: dict[str, float],
               metric: str, seconds: float) -> str:
    """The one line per epoch written when stdout is not a terminal (a log file, CI);
    ``epoch``: its number, 1-based."""
    return (f"{description} epoch {epoch}/{epochs}: train_loss {record['train_loss']:.4f} "
            f"val_loss {record['val_loss']:.4f} {metric} {record[metric]:.4f} "
            f"({seconds:.1f} s)")


def fit(
    engine: Engine,
    loaders: dict[str, DataLoader],
    on_epoch: EpochCallback | None = None,
    progress: Progress = True,
    description: str = "train",
    resume: Resume | None = None,
) -> Fit:
    """Train for ``optim.epochs`` epochs (fewer with early stopping), validating after each.

    Epochs are numbered from 1 everywhere (the console's "epoch 3/6", the metric steps, the
    pruning steps, ``best_epoch``). The weights of the best epoch by the objective on val are
    kept (a CPU copy of the evaluated weights: the moving average with EMA).
    ``on_epoch(epoch, record)`` sees the epoch's number and its train/val loss, learning rate
    and objective; it may raise to stop (pruning).
    ``progress``: True, a tqdm bar on a terminal, else one :func:`epoch_line` per epoch on
    stdout; ``"bar"``, always a bar (a notebook's widget in Jupyter); False, neither.
    ``resume``: continue after the epochs of a saved state, and save one after each epoch.
    """
    config: RunConfig = engine.config
    optimizer = build_optimizer(config.optim, engine.model)
    maximize = config.objective.direction == "maximize"
    scheduler = EpochScheduler(config.optim, optimizer, maximize)
    metric = config.objective.metric.removeprefix("val_")
    patience = config.optim.early_stopping_patience
    result, stale = Fit(), 0
    done = 0  # epochs finished (by an earlier attempt, when resumed)
    if resume is not None and resume.state is not None:
        done, stale = restore(resume.state, engine, optimizer, scheduler, loaders, result)
    started = time.perf_counter() - result.seconds
    bar = tqdm(range(done + 1, config.optim.epochs + 1), desc=description, unit="epoch",
               leave=False, dynamic_ncols=True, initial=done, total=config.optim.epochs,
               # None: no bar when not on a terminal
               disable=False if progress == "bar" else None if progress else True)
    lines = progress is True and not sys.stdout.isatty()
    for epoch in bar:
        lr = scheduler.lr
        tick = time.perf_counter()
        train_loss, seen = engine.train_epoch(loaders["train"], optimizer, epoch, bar)
        result.train_seconds += time.perf_counter() - tick
        result.train_images += seen
        value, val_pass = validate(engine, loaders["val"], metric)
        record = {"train_loss": train_loss, "val_loss": val_pass.loss, "lr": lr,
                  f"val_{metric}": value}
        result.history.append(record)
        bar.set_postfix({"loss": f"{train_loss:.4f}", f"val_{metric}": f"{value:.4f}"})
        if lines:
            print(epoch_line(description, epoch, config.optim.epochs, record, f"val_{metric}",
                             time.perf_counter() - started), flush=True)
        delta = config.optim.early_stopping_min_delta if result.best_value is not None else 0.0
        if improved(value, result.best_value, maximize, delta):
            result.best_value, result.best_epoch, stale = value, epoch, 0
            result.best_state = {k: v.detach().to("cpu", copy=True)
                                 for k, v in engine.eval_model.state_dict().items()}
            result.best_pass = val_pass
        else:
            stale += 1
        scheduler.step(value)
        stop = patience is not None and stale >= patience
        if resume is not None and resume.save is not None and not stop:
            result.seconds = time.perf_counter() - started
            resume.save(capture(epoch, engine, optimizer, scheduler, result, stale))
        if on_epoch is not None:
            on_epoch(epoch, record)
        if stop:
            result.stopped_early = True
            break
    bar.close()
    if resume is not None and resume.close is not None:
        resume.close()
    result.seconds = time.perf_counter() - started
    return result


def capture(epochs: int, engine: Engine, optimizer: torch.optim.Optimizer,
            scheduler: EpochScheduler, result: Fit, stale: int) -> FitState:
    """The fit's state after ``epochs`` finished epochs (tensors as they are: the state is
    written at once, before training changes them)."""
    current = result.best_epoch == epochs
    return FitState(
        epoch=epochs, history=list(result.history), best_value=result.best_value,
        best_epoch=result.best_epoch, stale=stale,
        model=engine.model.state_dict(), optimizer=optimizer.state_dict(),
        scheduler=scheduler.state_dict(), scaler=engine.scaler.state_dict(),
        ema=engine.ema.state_dict() if engine.ema is not None else None,
        rng=random_states(engine.rng), loss_bound=engine.watch.bound,
        best_state=None if current else result.best_state,
        seconds=(result.seconds, result.train_seconds, result.train_images),
    )


def restore(state: FitState, engine: Engine, optimizer: torch.optim.Optimizer,
            scheduler: EpochScheduler, loaders: dict[str, DataLoader], result: Fit
            ) -> tuple[int, int]:
    """Put a saved state back; returns the epochs it finished and early stopping's count.
    The best epoch's val pass is not kept: the final evaluation runs val again on the best
    weights (the same counts)."""
    engine.model.load_state_dict(state.model)
    if engine.ema is not None and state.ema is not None:
        engine.ema.load_state_dict(state.ema)
    optimizer.load_state_dict(state.optimizer)
    scheduler.load_state_dict(state.scheduler)
    engine.scaler.load_state_dict(state.scaler)
    engine.watch.bound = state.loss_bound
    restore_random_states(state.rng, engine.rng)
    result.history = list(state.history)
    result.best_value, result.best_epoch = state.best_value, state.best_epoch
    best = state.best_state if state.best_state is not None else engine.eval_model.state_dict()
    result.best_state = {k: v.detach().to("cpu", copy=True) for k, v in best.items()}
    result.seconds, result.train_seconds, result.train_images = state.seconds
    sampler = loaders["train"].sampler
    if hasattr(sampler, "epoch"):  # the train order of epoch e is drawn from (seed, e)
        sampler.epoch = state.epoch
    return state.epoch, state.stale
