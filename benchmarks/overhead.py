#!/usr/bin/env python
"""What does running a trial through ablate cost over the same training as a bare PyTorch loop?

Both run in this one process, on the same data, model, loss, optimiser, schedule, seed and
epochs:

* **ablate**: one trial the way ``ablate study run`` runs it (the study's objective):
  ``load_spec(spec).resolve({})`` -> ``Tracker.start_run`` -> ``train()`` (FLOP count,
  per-epoch validation, best-epoch weights, final evaluation of train/val/test, curves and
  gallery figures, batch-1 latency) with ``RunLog.log_epoch`` after each epoch, then
  ``log_result``, ``log_artifacts`` and ``end``, into a temporary MLflow SQLite store. Not
  included: Optuna (sampling, ``trial.report``/pruning) and the once-per-study store set-up,
  which is timed and printed separately.
* **bare**: the loop a user would write in a notebook: an smp ``Unet`` built directly, the
  optimiser and schedule from ``torch.optim``, train for the epochs, then one evaluation pass
  over val and test computing IoU. No tracking, no per-epoch validation. For identical inputs
  it reuses ``ablate.data.load_data``/``make_loaders`` (same decoded, split, normalised,
  resized batches in the same order) and ``ablate.losses.build_loss`` (same loss terms).

Both are warmed up once (a 1-epoch run of each: imports, decode cache, MLflow/matplotlib/fvcore
code paths), then run ``--repeats`` times alternately; medians are reported. Because the
training is the same computation, the last-epoch validation IoU of both is printed as a check.

    .venv/bin/python benchmarks/overhead.py [--repeats 2] [--epochs N] [--spec studies/...]
"""

from __future__ import annotations

import argparse
import functools
import gc
import json
import math
import os
import random
import statistics
import sys
import tempfile
import time
import warnings
from collections import defaultdict
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, nullcontext
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

import numpy as np  # noqa: E402
import torch  # noqa: E402

DEFAULT_SPEC = ROOT / "studies" / "quickstart.yaml"


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------- timing


class Clock:
    """Seconds accumulated per named part of one run."""

    def __init__(self) -> None:
        self.parts: dict[str, float] = defaultdict(float)
        self.calls: dict[str, list[float]] = defaultdict(list)
        self.other_load: float | None = None  # cores other processes used meanwhile
        self.cpu: float = 0.0  # CPU seconds of this process (all threads) during the run

    @contextmanager
    def part(self, name: str) -> Iterator[None]:
        tick = time.perf_counter()
        try:
            yield
        finally:
            elapsed = time.perf_counter() - tick
            self.parts[name] += elapsed
            self.calls[name].append(elapsed)


@contextmanager
def timed_attr(owner: Any, attr: str, clock: Clock, name: str) -> Iterator[None]:
    """Replace ``owner.attr`` by a wrapper that adds its wall time to ``clock[name]``."""
    original = getattr(owner, attr)

    @functools.wraps(original)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with clock.part(name):
            return original(*args, **kwargs)

    setattr(owner, attr, wrapper)
    try:
        yield
    finally:
        setattr(owner, attr, original)


class OtherLoad:
    """CPU cores that *other* processes kept busy while a block ran (Linux /proc; else None).

    Machine-wide busy time from /proc/stat minus this process's own CPU time, over wall time.
    A run that shared the CPU with other work is slower for reasons that are not ablate's.
    """

    def __init__(self) -> None:
        self.cores: float | None = None
        self.own = 0.0  # this process's CPU seconds meanwhile

    @staticmethod
    def _busy_seconds() -> float | None:
        try:
            with open("/proc/stat") as f:
                values = [int(v) for v in f.readline().split()[1:9]]
            return (sum(values) - values[3] - values[4]) / os.sysconf("SC_CLK_TCK")
        except (OSError, ValueError, IndexError):
            return None

    def __enter__(self) -> OtherLoad:
        self._busy, self._own, self._wall = self._busy_seconds(), _own_cpu(), time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        busy, wall = self._busy_seconds(), time.perf_counter() - self._wall
        self.own = _own_cpu() - self._own
        if busy is not None and self._busy is not None and wall > 0:
            other = (busy - self._busy) - (_own_cpu() - self._own)
            self.cores = max(0.0, other / wall)


def _own_cpu() -> float:
    t = os.times()
    return t.user + t.system


# With the model on CUDA the figures are drawn on another thread, overlapping the final
# evaluation (on the CPU they are drawn after it, and count in the "figures" row).
BACKGROUND = "figures_drawn"
BUSY_CORES = 0.25  # other processes using more than this many cores on average: disturbed
RETRY_BUDGET_S = 120.0  # no disturbed run is redone once the timed runs have taken this long


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# -------------------------------------------------------------------------------- ablate path


class AblateTrial:
    """One trial through ablate, tracked as ``ablate.study.TrialObjective`` tracks it."""

    def __init__(self, spec: Any, store: Path):
        from ablate.stores import resolve_stores
        from ablate.tracking import Tracker

        # Explicit URIs: MLFLOW_TRACKING_URI / ABLATE_STORAGE in the environment must not send
        # benchmark runs into a real store.
        self.stores = resolve_stores(
            store=store,
            storage=f"sqlite:///{store / 'optuna.db'}",
            tracking_uri=f"sqlite:///{store / 'mlflow.db'}",
        )
        self.spec = spec
        self.tracker = Tracker(self.stores)
        self.parent_id = self.tracker.parent_run(spec, None)
        self.number = 0

    def run(self, config: Any) -> tuple[float, Clock, Any]:
        import ablate.runs.environment
        import ablate.tracking.checkpoints
        import ablate.training.train
        from ablate.tracking import RunLog, Tracker
        from ablate.training.engine import Engine

        clock = Clock()
        with ExitStack() as stack:
            # Attribute the time spent inside train() to its parts (wrappers cost microseconds).
            for owner, attr, name in (
                (ablate.training.train, "load_data", "data"),
                (ablate.training.train, "make_loaders", "data"),
                (ablate.training.train, "model_flops", "flops"),
                (ablate.training.train, "model_latency", "latency"),
                (Engine, "train_epoch", "train_epochs"),
                (Engine, "evaluate", "evaluate"),
                (ablate.training.train, "prepare_artifacts", "figures"),
                (ablate.training.train, "draw_figures",
                 BACKGROUND if torch.cuda.is_available() else "figures"),
                (ablate.tracking.checkpoints, "localize", "setup"),
                (Tracker, "start_run", "setup"),
                (ablate.runs.environment, "collect", "setup"),
                (ablate.runs.environment, "git_diff", "setup"),
                (RunLog, "log_environment", "setup"),
                (RunLog, "log_data", "setup"),
                (RunLog, "log_epoch", "tracking"),
                (RunLog, "log_result", "tracking"),
                (RunLog, "log_artifacts", "artifacts"),
                (RunLog, "end", "artifacts"),
            ):
                stack.enter_context(timed_attr(owner, attr, clock, name))
            gc.collect()
            tick = time.perf_counter()
            result = self._trial(config)
            sync(torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu"))
            total = time.perf_counter() - tick
        # evaluate(): one call per epoch on val, then train, val, test on the best weights.
        evals = clock.calls.get("evaluate", [])
        epochs = result.epochs_run
        clock.parts["epoch_val"] = sum(evals[:epochs])
        clock.parts["final_eval"] = sum(evals[epochs:])
        del clock.parts["evaluate"]
        return total, clock, result

    def _trial(self, config: Any) -> Any:
        import ablate.tracking.checkpoints
        from ablate.runs.tracked import train_tracked
        from ablate.tracking.names import TAG_CONFIG, TAG_REPEAT, trial_label, trial_run_name

        number = self.number
        self.number += 1
        config = ablate.tracking.checkpoints.localize(self.tracker, config)
        run = self.tracker.start_run(
            self.spec.name, config, role="trial", name=trial_run_name(number),
            parent_id=self.parent_id, trial=number,
            extra_tags={TAG_CONFIG: trial_label(number), TAG_REPEAT: "0"},
        )
        result = train_tracked(config, run, progress=False)
        run.end("COMPLETE")
        return result


# ---------------------------------------------------------------------------------- bare path

# Settings a plain loop does not reproduce: (section, field, value that means "off").
NOT_IN_BARE = (
    ("optim", "ema", False),
    ("optim", "freeze_encoder_epochs", 0),
    ("optim", "encoder_lr_mult", 1.0),
    ("optim", "grad_accum", 1),
    ("optim", "grad_clip", None),
    ("optim", "early_stopping_patience", None),
    ("optim", "warmup_epochs", 0),
    ("augment", "cutmix", False),
    ("eval", "tta_flip", False),
    ("model", "custom", None),
    ("model", "init_from", None),
)


def bare_differences(config: Any) -> list[str]:
    """The spec's settings that the bare loop leaves out (the comparison is then not like for
    like; the IoU check at the end shows by how much)."""
    out = []
    for section, name, off in NOT_IN_BARE:
        value = getattr(getattr(config, section), name)
        if value != off:
            out.append(f"{section}.{name}={value}")
    return out


def bare_run(config: Any, validate: bool) -> tuple[float, Clock, dict[str, float]]:
    """The same training written as a plain PyTorch loop (what a notebook would hold).

    ``validate``: the careful notebook (the *fair* loop): val IoU from confusion counts after
    every epoch, a copy of the best epoch's weights, val and test evaluated on them at the end.
    Without it: train all epochs, then evaluate val and test once on the last weights.
    """
    import segmentation_models_pytorch as smp

    from ablate.data import load_data, make_loaders
    from ablate.losses import build_loss
    from ablate.training import precision

    clock = Clock()
    gc.collect()
    tick = time.perf_counter()

    random.seed(config.seed)
    np.random.seed(config.seed % 2**32)
    torch.manual_seed(config.seed)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if config.device != "auto":
        device = torch.device(config.device)
    task = config.data.task
    num_classes = config.data.num_classes or 2
    ignore = config.data.ignore_index

    with clock.part("data"):
        data = load_data(config.data)
        # the loaders a run gets on this device (CUDA: pinned, data.num_workers: auto workers)
        loaders = make_loaders(data, config, config.seed, device)

    model = getattr(smp, config.model.arch)(
        encoder_name=config.model.encoder,
        encoder_weights=None,
        in_channels=data.in_channels,
        classes=1 if task == "binary" else num_classes,
        **config.model.kwargs,
    ).to(device)
    loss_fn = build_loss(config.loss, task, num_classes, ignore, data.class_pixels).to(device)
    optimizer, scheduler = bare_optimiser(config.optim, model)

    # The same mixed precision / memory format ablate uses on CUDA (nothing changes on CPU).
    cuda = device.type == "cuda"
    amp_dtype = precision.amp_dtype(device, config.optim.amp)  # bf16 where native, else fp16
    scaler = torch.amp.GradScaler("cuda", enabled=amp_dtype == torch.float16)
    memory_format = torch.channels_last if cuda and config.optim.channels_last else None
    if memory_format is not None:
        model = model.to(memory_format=memory_format)

    def autocast() -> Any:
        return torch.autocast("cuda", dtype=amp_dtype) if amp_dtype else nullcontext()

    def forward(images: torch.Tensor) -> torch.Tensor:
        images = images.to(device, non_blocking=True)
        if memory_format is not None:
            images = images.contiguous(memory_format=memory_format)
        with autocast():
            return model(images).float()

    def split_iou(split: str) -> float:
        """IoU over the whole split from its confusion counts (as ablate reports it)."""
        counts = torch.zeros(num_classes * num_classes, dtype=torch.int64, device=device)
        with torch.no_grad():
            model.eval()
            for images, masks in loaders[split]:
                logits = forward(images)
                if task == "binary":
                    pred = (logits[:, 0].sigmoid() > config.eval.threshold).long()
                else:
                    pred = logits.argmax(1)
                target = masks.to(device)
                if ignore is not None:
                    keep = target != ignore
                    target, pred = target[keep], pred[keep]
                counts += torch.bincount(
                    (target * num_classes + pred).reshape(-1), minlength=num_classes**2
                )
        m = counts.reshape(num_classes, num_classes).cpu().double()
        tp = m.diag()
        iou = tp / (m.sum(0) + m.sum(1) - tp)  # per class; NaN where a class is absent
        return float(iou[1]) if task == "binary" else float(np.nanmean(iou.numpy()))

    best_iou, best_state = -math.inf, None
    for _ in range(config.optim.epochs):
        with clock.part("train_epochs"):
            model.train()
            for images, masks in loaders["train"]:
                loss, _ = loss_fn(forward(images), masks.to(device, non_blocking=True))
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
            scheduler.step()
        if validate:
            # the careful notebook: val IoU each epoch, a CPU copy of the best weights
            with clock.part("epoch_val"):
                iou = split_iou("val")
                if iou > best_iou:
                    best_iou = iou
                    best_state = {k: v.detach().to("cpu", copy=True)
                                  for k, v in model.state_dict().items()}

    with clock.part("final_eval"):
        if best_state is not None:
            model.load_state_dict(best_state)
        ious = {split: split_iou(split) for split in ("val", "test") if split in loaders}
    sync(device)
    return time.perf_counter() - tick, clock, ious


def bare_optimiser(optim: Any, model: torch.nn.Module) -> tuple[Any, Any]:
    """torch.optim as a user would write it; ablate's helpers for the less common settings."""
    if optim.scheduler not in ("none", "cosine", "step") or optim.warmup_epochs:
        from ablate.training.optim import EpochScheduler, build_optimizer

        optimizer = build_optimizer(optim, model)
        return optimizer, EpochScheduler(optim, optimizer, maximize=True)
    params = model.parameters()
    if optim.optimizer == "adamw":
        optimizer = torch.optim.AdamW(params, lr=optim.lr, weight_decay=optim.weight_decay)
    elif optim.optimizer == "adam":
        optimizer = torch.optim.Adam(params, lr=optim.lr, weight_decay=optim.weight_decay)
    else:
        optimizer = torch.optim.SGD(
            params, lr=optim.lr, momentum=optim.momentum, weight_decay=optim.weight_decay
        )
    if optim.scheduler == "cosine":
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=optim.epochs)
    elif optim.scheduler == "step":
        scheduler = torch.optim.lr_scheduler.StepLR(
            optimizer, step_size=optim.step_size, gamma=optim.gamma
        )
    else:
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)
    return optimizer, scheduler


# ------------------------------------------------------------------------------------- report

SIDES = ("bare", "fair", "ablate")

ROWS = (
    ("data", "data (load_data + make_loaders)"),
    ("setup", "run set-up (start_run, environment, data inputs)"),
    ("flops", "FLOP count (fvcore)"),
    ("train_epochs", "training epochs"),
    ("epoch_val", "per-epoch val evaluation"),
    ("tracking", "MLflow metrics and JSON artifacts"),
    ("final_eval", "final evaluation"),
    ("figures", "figures (curves, gallery) + model.pt"),
    ("latency", "batch-1 latency measurement"),
    ("artifacts", "artifact files (figures) + end of run"),
    ("other", "other (build, seed, best-state copy...)"),
)


def median_parts(runs: list[tuple[float, Clock]]) -> dict[str, float]:
    out: dict[str, float] = {}
    for key, _ in ROWS:
        if key == "other":
            values = [total - sum(v for k, v in c.parts.items() if k != BACKGROUND)
                      for total, c in runs]
        else:
            values = [c.parts.get(key, 0.0) for _, c in runs]
        out[key] = statistics.median(values)
    return out


def fmt(value: float) -> str:
    return "-" if value == 0.0 else f"{value:.2f}"


def clean(runs: list[tuple[float, Clock]]) -> list[tuple[float, Clock]]:
    """The runs that no other process disturbed (all of them where that cannot be measured)."""
    return [r for r in runs if r[1].other_load is None or r[1].other_load <= BUSY_CORES]


def chosen(runs: list[tuple[float, Clock]], repeats: int) -> list[tuple[float, Clock]]:
    """The runs the medians are taken over: the undisturbed ones if there are enough."""
    undisturbed = clean(runs)
    return undisturbed if len(undisturbed) >= repeats else runs


def report(
    runs: dict[str, list[tuple[float, Clock]]],
    repeats: int,
    setup_seconds: float,
    checks: dict[str, float],
    config: Any,
) -> None:
    used = {side: chosen(runs[side], repeats) for side in SIDES}
    total = {side: statistics.median(t for t, _ in used[side]) for side in SIDES}
    fastest = {side: min(t for t, _ in runs[side]) for side in SIDES}
    cpu = {side: statistics.median(c.cpu for _, c in used[side]) for side in SIDES}
    parts = {side: median_parts(used[side]) for side in SIDES}
    width = max(len(label) for _, label in ROWS) + 2
    counts = "/".join(str(len(used[side])) for side in SIDES)
    head = f"seconds (median, {counts} runs)"
    lines = [
        "",
        f"{head:<{width}}{'bare':>8}{'fair':>8}{'ablate':>8}{'extra':>8}",
        "-" * (width + 32),
    ]
    for key, label in ROWS:
        values = [parts[side][key] for side in SIDES]
        extra = parts["ablate"][key] - parts["fair"][key]
        lines.append(f"{label:<{width}}" + "".join(f"{fmt(v):>8}" for v in values)
                     + f"{extra:>+8.2f}")
    lines += [
        "-" * (width + 32),
        f"{'total wall time':<{width}}" + "".join(f"{total[s]:>8.2f}" for s in SIDES)
        + f"{total['ablate'] - total['fair']:>+8.2f}",
        f"{'fastest run (least disturbed)':<{width}}" + "".join(f"{fastest[s]:>8.2f}"
                                                                for s in SIDES),
        f"{'CPU seconds of the process':<{width}}" + "".join(f"{cpu[s]:>8.2f}" for s in SIDES)
        + f"{cpu['ablate'] - cpu['fair']:>+8.2f}",
        "",
        f"ratio ablate / fair loop (validates each epoch): {total['ablate'] / total['fair']:.2f}x"
        f"   (fastest runs: {fastest['ablate'] / fastest['fair']:.2f}x)",
        f"ratio ablate / bare loop (no validation):       {total['ablate'] / total['bare']:.2f}x"
        f"   (fastest runs: {fastest['ablate'] / fastest['bare']:.2f}x)",
        f"CPU-time ratios (less sensitive to other processes): ablate / fair "
        f"{cpu['ablate'] / cpu['fair']:.2f}x, ablate / bare {cpu['ablate'] / cpu['bare']:.2f}x",
        "",
        *(f"{side + ' runs:':<13}{runs_text(runs[side], used[side])}" for side in SIDES),
        *([f"figures drawn on a thread while the final evaluation runs (not in the sum): "
           f"{statistics.median(c.parts.get(BACKGROUND, 0.0) for _, c in used['ablate']):.2f} s"]
          if any(BACKGROUND in c.parts for _, c in used["ablate"]) else []),
        f"once per study, in no column: MLflow store set-up (create DB + experiment + parent "
        f"run) {setup_seconds:.2f} s",
        "final evaluation: bare = val + test on the last weights; fair = val + test on the best "
        "epoch's weights; ablate = train + val + test on them (3-threshold scan, per-image "
        "counts" + (", at the masks' original resolution)" if config.eval.full_resolution
                    else ")"),
        f"same training check: val IoU on the best weights ablate "
        f"{checks['ablate_objective']:.4f}, fair {checks['fair_val']:.4f}; last-epoch val IoU "
        f"ablate {checks['ablate_last_val']:.4f}, bare {checks['bare_val']:.4f}",
        f"cpus {os.cpu_count()}, load average {' '.join(f'{v:.2f}' for v in os.getloadavg())}",
    ]
    loads = [c.other_load for side in SIDES for _, c in used[side] if c.other_load is not None]
    if loads and max(loads) > BUSY_CORES:
        lines.append(
            f"warning: other processes used up to {max(loads):.1f} of {os.cpu_count()} CPU cores "
            "during the runs in the medians; timings are unreliable (see 'fastest run'), run "
            "again on an idle machine"
        )
    print("\n".join(lines), flush=True)


def runs_text(runs: list[tuple[float, Clock]], used: list[tuple[float, Clock]]) -> str:
    """Each run's seconds, with the cores other processes used meanwhile when that was notable
    and whether the run was left out of the medians."""
    parts = []
    for run in runs:
        seconds, clock = run
        notes = []
        if clock.other_load is not None and clock.other_load > BUSY_CORES:
            notes.append(f"others busy: {clock.other_load:.1f} cores")
        if not any(run is u for u in used):
            notes.append("not in the medians")
        parts.append(f"{seconds:.2f}" + (f" ({'; '.join(notes)})" if notes else ""))
    return ", ".join(parts) + " s"


# --------------------------------------------------------------------------------------- main


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", type=Path, default=DEFAULT_SPEC, help="study spec (YAML)")
    parser.add_argument("--epochs", type=int, default=None, help="epochs (default: the spec's)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of each (default 3)")
    parser.add_argument(
        "--retries",
        type=int,
        default=2,
        help="rounds of re-runs for runs disturbed by other processes (default 2)",
    )
    parser.add_argument("--metrics", type=Path, default=None,
                        help="write the ablate trial's final metrics as JSON here (a check "
                             "that a change leaves every logged number as it was)")
    args = parser.parse_args(argv)
    if args.repeats < 1 or (args.epochs is not None and args.epochs < 1) or args.retries < 0:
        parser.error("--repeats and --epochs must be at least 1, --retries at least 0")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=UserWarning)
    from ablate.spec import load_spec

    spec = load_spec(args.spec)
    config = spec.resolve({})  # exactly what a trial without searched values gets
    if args.epochs is not None:
        config = spec.resolve({"optim.epochs": args.epochs})
    warm = spec.resolve({"optim.epochs": 1})
    differences = bare_differences(config)
    # train() sets the allocator up once per process; done first, every side runs with it
    from ablate.training.allocator import keep_freed_memory

    kept = keep_freed_memory()
    device = "cuda" if torch.cuda.is_available() and config.device in ("auto", "cuda") else "cpu"

    print(
        f"ablate overhead benchmark: spec {args.spec.name} ({config.data.task}, "
        f"{config.model.arch}/{config.model.encoder}, size {config.data.size}, "
        f"batch {config.data.batch_size}), {config.optim.epochs} epoch(s), "
        f"{args.repeats} repeat(s) each\n"
        f"device {device}, torch {torch.__version__}, torch threads {torch.get_num_threads()}, "
        f"cpus {os.cpu_count()}, load average {os.getloadavg()[0]:.2f}\n"
        f"allocator: {'glibc thresholds set by ablate (all sides)' if kept else 'as it was'}\n"
        "bare/fair loops reuse ablate.data.load_data/make_loaders and ablate.losses.build_loss "
        f"(identical inputs and loss terms); all seeded with seed {config.seed}",
        flush=True,
    )
    if differences:
        print(f"note: the plain loops leave out {', '.join(differences)}", flush=True)

    with tempfile.TemporaryDirectory(prefix="ablate-bench-") as tmp:
        tick = time.perf_counter()
        trial = AblateTrial(spec, Path(tmp))
        setup_seconds = time.perf_counter() - tick

        log("warm-up: 1 epoch of each ...")
        tick = time.perf_counter()
        bare_run(warm, validate=True)
        _, first, _ = trial.run(warm)
        once = {k: first.parts.get(k, 0.0) for k in ("flops", "latency")}
        log(f"warm-up done in {time.perf_counter() - tick:.1f} s")

        checks: dict[str, float] = {}
        final: dict[str, float] = {}

        def timed(side: str) -> tuple[float, Clock]:
            with OtherLoad() as load:
                if side == "ablate":
                    seconds, clock, result = trial.run(config)
                    key = config.objective.metric
                    checks["ablate_last_val"] = result.history[-1].get(key, math.nan)
                    checks["ablate_objective"] = result.objective
                    final.clear()
                    final.update(result_numbers(result))
                else:
                    seconds, clock, ious = bare_run(config, validate=side == "fair")
                    checks[f"{side}_val"] = ious.get("val", math.nan)
            clock.other_load, clock.cpu = load.cores, load.own
            return seconds, clock

        runs: dict[str, list[tuple[float, Clock]]] = {side: [] for side in SIDES}
        started = time.perf_counter()
        for i in range(args.repeats):
            # Rotate the order so that no side always runs first.
            for side in SIDES[i % 3:] + SIDES[:i % 3]:
                runs[side].append(timed(side))
            log(f"repeat {i + 1}/{args.repeats}: "
                + ", ".join(f"{side} {runs[side][-1][0]:.2f} s" for side in SIDES))
        # A run that shared the CPU with other processes is redone (a few times, within a time
        # budget), so that the medians come from undisturbed runs where the machine allows.
        for _ in range(args.retries):
            short = [side for side, done in runs.items() if len(clean(done)) < args.repeats]
            if not short or time.perf_counter() - started > RETRY_BUDGET_S:
                break
            for side in short:
                log(f"other processes were busy during a {side} run; running it again")
                runs[side].append(timed(side))

    report(runs, args.repeats, setup_seconds, checks, config)
    print(f"paid once per model shape per worker process (here by the warm-up trial, in no "
          f"column): FLOP count {once['flops']:.2f} s, latency measurement "
          f"{once['latency']:.2f} s", flush=True)
    if args.metrics is not None:
        args.metrics.write_text(json.dumps(final, indent=1, sort_keys=True))
        print(f"final metrics of the last ablate trial: {args.metrics}")
    return 0


def result_numbers(result: Any) -> dict[str, Any]:
    """Every number a trial logs but its timings (seconds, images/s, latency): the final
    metrics, the epoch curves, the confusion matrices (per split, per scanned threshold) and
    each val/test image's counts."""
    from ablate.tracking.writer import logged_metrics

    timing = ("seconds", "per_second", "latency", "peak_memory")
    out: dict[str, Any] = {k: float(v) for k, v in logged_metrics(result).items()
                           if not any(t in k for t in timing)}
    out["history"] = [{k: float(v) for k, v in record.items()} for record in result.history]
    out["matrices"] = {split: m.tolist() for split, m in result.matrices.items()}
    out["thresholds"] = {split: {f"{t:g}": m.tolist() for t, m in scan.items()}
                         for split, scan in result.threshold_matrices.items()}
    if result.image_counts is not None:
        out["images"] = {split: np.asarray(c).tolist()
                         for split, c in result.image_counts.counts.items()}
    out["best_epoch"] = result.best_epoch
    return out


if __name__ == "__main__":
    raise SystemExit(main())
