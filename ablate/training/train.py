"""The one train function: every trial, baseline and benchmark goes through :func:`train`.

``train`` is a composition: fit (epochs, best weights on val, early stopping) -> evaluate
(every split once, on the best weights) -> measure (params, FLOPs, size, latency) ->
:class:`~ablate.training.result.TrainResult`.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

from ablate.data import DataSplits, load_data, make_loaders
from ablate.spec import RunConfig
from ablate.testing.faults import fault_point
from ablate.training import determinism
from ablate.training.allocator import keep_freed_memory
from ablate.training.devices import gpu_sharers, resolve_device
from ablate.training.engine import Engine, TrainingError
from ablate.training.evaluation import Evaluation, eval_sources, evaluate_splits, load_best
from ablate.training.fit import EpochCallback, Fit, Progress, Resume, fit
from ablate.training.memory import is_out_of_memory, release_memory
from ablate.training.models import (
    build_model,
    count_params,
    model_flops,
    model_latency,
    model_size_mb,
)
from ablate.training.precision import dtype_name
from ablate.training.result import TrainResult, efficiency

__all__ = ["EpochCallback", "Resume", "TrainResult", "TrainingError", "resolve_device", "train"]


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def train(
    config: RunConfig,
    on_epoch: EpochCallback | None = None,
    artifact_dir: Path | None = None,
    progress: Progress = True,
    description: str = "train",
    on_data: Callable[[DataSplits], None] | None = None,
    resume: Resume | None = None,
) -> TrainResult:
    """Train one configuration, evaluate its best epoch on every split, return the numbers.

    ``on_epoch(epoch, record)`` is called after each epoch with the train/val loss, the learning
    rate and the validation objective; it may raise (e.g. ``optuna.TrialPruned``) to stop.
    The objective is read on val only; test is evaluated once, on the final (best) weights.
    Figures (curves, gallery) and (unless ``eval.save_weights: none``) ``model.pt`` go to
    ``artifact_dir``. ``on_data(data)`` is called once the data is loaded (its fingerprints
    say which data the run sees). ``resume``: continue from a state saved after an earlier
    attempt's last finished epoch, and save the state after each epoch
    (:class:`~ablate.training.fit.Resume`).
    """
    keep_freed_memory()
    determinism.prepare_process()  # before this process's first cuBLAS handle
    seed_everything(config.seed)
    device = resolve_device(config.device)
    determinism.apply(config.deterministic, device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)  # the figure is this run's peak
    data = load_data(config.data)
    if on_data is not None:
        on_data(data)
    exact = config.deterministic and device.type == "cuda"
    with determinism.nondeterministic_ops(exact) as ops:
        loaders = make_loaders(data, config, config.seed, device)
        engine = Engine(config, data, device)
        shape, params, flops = measure_model(engine, loaders["val"])
        engine.model.to(memory_format=engine.memory_format)
        engine.start_ema()

        fitted = fit(engine, loaders, on_epoch, progress, description, resume)
        fault_point("before_evaluation")
        load_best(engine, fitted.best_state)
        evaluation = evaluate_and_draw(engine, fitted, data, loaders, artifact_dir)
        latency = measure_latency(engine, shape)
    objective = float(evaluation.metrics["val"][config.objective.metric.removeprefix("val_")])
    gflops = flops / 1e9
    return TrainResult(
        objective=objective,
        best_epoch=fitted.best_epoch,
        epochs_run=len(fitted.history),
        stopped_early=fitted.stopped_early,
        metrics=evaluation.metrics,
        matrices=evaluation.matrices,
        params=params,
        gflops=gflops,
        efficiency=efficiency(objective, gflops),
        train_seconds=fitted.seconds,
        images_per_second=fitted.images_per_second,
        input_shape=shape,
        history=fitted.history,
        normalisation={"mean": list(data.mean), "std": list(data.std)},
        threshold_matrices=evaluation.threshold_matrices,
        model_size_mb=model_size_mb(engine.eval_model),
        latency_ms=latency[0],
        latency_iqr_ms=latency[1],
        peak_memory_mb=(torch.cuda.max_memory_allocated(device) / 2**20
                        if device.type == "cuda" else None),
        image_counts=evaluation.images,
        applied=applied_settings(config, device, loaders["train"], ops, latency[2]),
    )


def applied_settings(config: RunConfig, device: torch.device,
                     train_loader: torch.utils.data.DataLoader, ops: list[str],
                     latency_note: str) -> dict[str, str]:
    """How the run trained where its configuration does not say (``TrainResult.applied``):
    its loader workers, what it can be reproduced on (``ops``: the operations that ran
    without a deterministic implementation) and, when it is not a figure timed alone, why
    the latency is what it is."""
    applied = {
        "loader_workers": str(train_loader.num_workers),
        "reproducible": determinism.reproducibility(device, config.deterministic, ops),
    }
    if device.type == "cuda" and gpu_sharers() > 1:
        applied["latency"] = (f"shared: timed while {gpu_sharers() - 1} other worker(s) "
                              "trained on the same GPU")
    if latency_note:
        applied["latency"] = latency_note
    return applied


def measure_model(
    engine: Engine, val_loader: torch.utils.data.DataLoader
) -> tuple[tuple[int, int, int], int, float]:
    """The model's input shape (C, H, W) as the val loader gives it, its parameter count and
    its FLOPs at that shape (fvcore: one multiply-add = one FLOP). When the batch-1 pass
    does not fit on the device, the FLOPs are counted on a CPU copy (they do not depend on
    the device)."""
    images, _ = next(iter(val_loader))
    shape = (int(images.shape[1]), int(images.shape[2]), int(images.shape[3]))
    config = engine.config
    try:
        flops = model_flops(config.model, engine.model, shape, config.data.out_channels)
        return shape, count_params(engine.model), flops
    except Exception as err:  # noqa: BLE001 - only out of memory is handled here
        if not is_out_of_memory(err):
            raise
    release_memory()  # out of the except block: the failed pass's tensors are dropped
    fresh = config.model.model_copy(update={"init_from": None, "encoder_weights": None})
    on_cpu = build_model(fresh, shape[0], config.data.out_channels)  # no GPU memory needed
    flops = model_flops(config.model, on_cpu, shape, config.data.out_channels)
    return shape, count_params(engine.model), flops


def measure_latency(engine: Engine, shape: tuple[int, int, int]) -> tuple[float, float, str]:
    """Median and IQR (ms) of the batch-1 evaluation path (:meth:`Engine.logits`: the
    evaluated weights, memory format, autocast dtype and flip TTA as evaluated) on the run's
    device, and a note (empty when timed): NaN, NaN and why when it ran out of memory."""
    config = engine.config
    path = (dtype_name(engine.amp_dtype), config.eval.tta_flip)
    try:
        median, iqr = model_latency(config.model, engine.logits, shape,
                                    config.data.out_channels, engine.device,
                                    config.eval.latency_repeats, engine.memory_format, path)
        return median, iqr, ""
    except Exception as err:  # noqa: BLE001 - only out of memory is handled here
        if not is_out_of_memory(err):
            raise
    release_memory()
    return math.nan, math.nan, "not measured: out of memory at batch 1"


def evaluate_and_draw(engine: Engine, fitted: Fit, data: DataSplits,
                      loaders: dict[str, torch.utils.data.DataLoader],
                      artifact_dir: Path | None) -> Evaluation:
    """Every split evaluated on the best weights (val counted again from the best epoch's
    pass), the figures drawn and the weights written; returns once all are done (so the run
    is closed only after the files are written; a figure that failed fails the run).

    With the model on an accelerator the figures are drawn on another thread meanwhile (the
    loaders' worker processes forked before it starts). On
    the CPU they come after: torch's threads use every core, and a drawing thread beside
    them slows each parallel operation by more than it saves.
    """
    if artifact_dir is None:
        return evaluate_splits(engine, data, loaders, fitted.best_pass)
    arguments = prepare_artifacts(engine, fitted, loaders["val"], artifact_dir)
    if engine.device.type == "cpu":
        evaluation = evaluate_splits(engine, data, loaders, fitted.best_pass)
        draw_figures(*arguments)
        return evaluation
    # every loader worker is forked before the figure thread starts (eval_sources)
    sources = eval_sources(data, engine, loaders, fitted.best_pass)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="ablate-figures") as pool:
        drawn = pool.submit(draw_figures, *arguments)
        evaluation = evaluate_splits(engine, data, loaders, fitted.best_pass, sources)
    drawn.result()
    return evaluation


def prepare_artifacts(engine: Engine, fitted: Fit, val_loader: torch.utils.data.DataLoader,
                      folder: Path) -> tuple[list[dict[str, float]], list, RunConfig, Path,
                                             dict[str, torch.Tensor] | None]:
    """What the figures need from the model (the gallery's predictions, from the best epoch's
    val pass when it kept them) and the evaluated weights to write as ``model.pt`` unless
    ``eval.save_weights`` is ``none`` (a study keeps only some of them:
    :mod:`ablate.study.weights`): the arguments of :func:`draw_figures`."""
    from ablate.training import figures as plots

    folder.mkdir(parents=True, exist_ok=True)
    rows = plots.gallery_rows(engine, val_loader, engine.config, fitted.best_pass)
    weights = (engine.eval_model.state_dict() if engine.config.eval.save_weights != "none"
               else None)
    return fitted.history, rows, engine.config, folder, weights


def draw_figures(history: list[dict[str, float]], rows: list, config: RunConfig,
                 folder: Path, weights: dict[str, torch.Tensor] | None = None) -> None:
    """The curves and gallery figures, and ``weights`` as ``model.pt`` (safe off the main
    thread: the evaluation beside it reads the weights, never writes them)."""
    from ablate.training import figures as plots

    if weights is not None:
        torch.save(weights, folder / "model.pt")
    plots.curves(history, folder / "curves.png")
    plots.draw_gallery(rows, config, folder / "gallery.png")
