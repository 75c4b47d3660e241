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
        if busy is not None and self._busy is not None and wall > 0:
            other = (busy - self._busy) - (_own_cpu() - self._own)
            self.cores = max(0.0, other / wall)


def _own_cpu() -> float:
    t = os.times()
    return t.user + t.system


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
        import ablate.plots
        import ablate.tracking.checkpoints
        import ablate.train
        from ablate.engine import Engine
        from ablate.tracking import RunLog, Tracker

        clock = Clock()
        with ExitStack() as stack:
            # Attribute the time spent inside train() to its parts (wrappers cost microseconds).
            for owner, attr, name in (
                (ablate.train, "load_data", "data"),
                (ablate.train, "make_loaders", "data"),
                (ablate.train, "count_flops", "flops"),
                (ablate.train, "latency_stats", "latency"),
                (Engine, "train_epoch", "train_epochs"),
                (Engine, "evaluate", "evaluate"),
                (ablate.plots, "curves", "figures"),
                (ablate.plots, "gallery", "figures"),
                (ablate.tracking.checkpoints, "localize", "tracking"),
                (Tracker, "start_run", "tracking"),
                (RunLog, "log_epoch", "tracking"),
                (RunLog, "log_result", "tracking"),
                (RunLog, "log_artifacts", "tracking"),
                (RunLog, "end", "tracking"),
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
        from ablate.tracked import train_tracked
        from ablate.tracking.names import TAG_CONFIG, TAG_REPEAT

        number = self.number
        self.number += 1
        config = ablate.tracking.checkpoints.localize(self.tracker, config)
        run = self.tracker.start_run(
            self.spec.name, config, role="trial", name=f"trial-{number:03d}",
            parent_id=self.parent_id, trial=number,
            extra_tags={TAG_CONFIG: f"trial-{number}", TAG_REPEAT: "0"},
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


def bare_run(config: Any) -> tuple[float, Clock, dict[str, float]]:
    """The same training written as a plain PyTorch loop (what a notebook would hold)."""
    import segmentation_models_pytorch as smp

    from ablate.data import load_data, make_loaders
    from ablate.losses import build_loss

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
        loaders = make_loaders(data, config, config.seed)

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
    amp_dtype = None
    if cuda and config.optim.amp:
        amp_dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
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

    with clock.part("train_epochs"):
        for _ in range(config.optim.epochs):
            model.train()
            for images, masks in loaders["train"]:
                loss, _ = loss_fn(forward(images), masks.to(device, non_blocking=True))
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
            scheduler.step()

    ious: dict[str, float] = {}
    with clock.part("final_eval"), torch.no_grad():
        model.eval()
        for split in ("val", "test"):
            if split not in loaders:
                continue
            counts = torch.zeros(num_classes * num_classes, dtype=torch.int64, device=device)
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
            ious[split] = float(iou[1]) if task == "binary" else float(np.nanmean(iou.numpy()))
    sync(device)
    return time.perf_counter() - tick, clock, ious


def bare_optimiser(optim: Any, model: torch.nn.Module) -> tuple[Any, Any]:
    """torch.optim as a user would write it; ablate's helpers for the less common settings."""
    if optim.scheduler not in ("none", "cosine", "step") or optim.warmup_epochs:
        from ablate.optim import EpochScheduler, build_optimizer

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

ROWS = (
    ("data", "data (load_data + make_loaders)"),
    ("flops", "FLOP count (fvcore)"),
    ("latency", "batch-1 latency measurement"),
    ("train_epochs", "training epochs"),
    ("epoch_val", "per-epoch val evaluation"),
    ("final_eval", "final evaluation"),
    ("figures", "figures (curves + gallery)"),
    ("tracking", "MLflow tracking"),
    ("other", "other (build, seed, best-state copy...)"),
)

ABLATE_ONLY = ("flops", "latency", "epoch_val", "figures", "tracking")


def median_parts(runs: list[tuple[float, Clock]]) -> dict[str, float]:
    out: dict[str, float] = {}
    for key, _ in ROWS:
        if key == "other":
            values = [total - sum(c.parts.values()) for total, c in runs]
        else:
            values = [c.parts.get(key, 0.0) for _, c in runs]
        out[key] = statistics.median(values)
    return out


def fmt(value: float | None) -> str:
    return "-" if value is None or value == 0.0 else f"{value:.2f}"


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
    bare, ablate = chosen(runs["bare"], repeats), chosen(runs["ablate"], repeats)
    bare_total = statistics.median(t for t, _ in bare)
    ablate_total = statistics.median(t for t, _ in ablate)
    full_res = config.eval.full_resolution
    bare_min = min(t for t, _ in runs["bare"])
    ablate_min = min(t for t, _ in runs["ablate"])
    b, a = median_parts(bare), median_parts(ablate)
    width = max(len(label) for _, label in ROWS) + 2
    head = (
        f"seconds (median of {len(bare)} runs)"
        if len(bare) == len(ablate)
        else f"seconds (median, {len(bare)}/{len(ablate)} runs)"
    )
    lines = [
        "",
        f"{head:<{width}}{'bare':>9}{'ablate':>9}{'extra':>9}",
        "-" * (width + 27),
    ]
    for key, label in ROWS:
        bare_v = None if key in ABLATE_ONLY else b[key]
        extra = a[key] - (bare_v or 0.0)
        lines.append(f"{label:<{width}}{fmt(bare_v):>9}{fmt(a[key]):>9}{extra:>+9.2f}")
    lines += [
        "-" * (width + 27),
        f"{'total wall time':<{width}}{bare_total:>9.2f}{ablate_total:>9.2f}"
        f"{ablate_total - bare_total:>+9.2f}",
        f"{'ratio ablate / bare':<{width}}{ablate_total / bare_total:>18.2f}x",
        f"{'fastest run (least disturbed)':<{width}}{bare_min:>9.2f}{ablate_min:>9.2f}"
        f"{ablate_min - bare_min:>+9.2f}   ratio {ablate_min / bare_min:.2f}x",
        "",
        f"bare runs:   {runs_text(runs['bare'], bare)}",
        f"ablate runs: {runs_text(runs['ablate'], ablate)}",
        f"once per study, not in the ablate column: MLflow store set-up "
        f"(create DB + experiment + parent run) {setup_seconds:.2f} s",
        "final evaluation: bare = val + test; ablate = train + val + test on the best-epoch "
        "weights" + (", at the masks' original resolution" if full_res else ""),
        f"same training check: last-epoch val IoU ablate {checks['ablate_last_val']:.4f}, "
        f"bare {checks['bare_val']:.4f} (ablate's objective, final evaluation: "
        f"{checks['ablate_objective']:.4f}); bare test IoU {checks['bare_test']:.4f}",
    ]
    loads = [c.other_load for _, c in bare + ablate if c.other_load is not None]
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
            notes.append(f"other processes busy: {clock.other_load:.1f} cores")
        if not any(run is u for u in used):
            notes.append("not in the medians")
        parts.append(f"{seconds:.2f}" + (f" ({'; '.join(notes)})" if notes else ""))
    return ", ".join(parts) + " s"


# --------------------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", type=Path, default=DEFAULT_SPEC, help="study spec (YAML)")
    parser.add_argument("--epochs", type=int, default=None, help="epochs (default: the spec's)")
    parser.add_argument("--repeats", type=int, default=2, help="timed runs of each (default 2)")
    parser.add_argument(
        "--retries",
        type=int,
        default=3,
        help="rounds of re-runs for runs disturbed by other processes (default 3)",
    )
    args = parser.parse_args(argv)
    if args.repeats < 1 or (args.epochs is not None and args.epochs < 1) or args.retries < 0:
        parser.error("--repeats and --epochs must be at least 1, --retries at least 0")

    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=UserWarning)
    from ablate.spec import load_spec

    spec = load_spec(args.spec)
    config = spec.resolve({})  # exactly what a trial without searched values gets
    if args.epochs is not None:
        config = spec.resolve({"optim.epochs": args.epochs})
    warm = spec.resolve({"optim.epochs": 1})
    differences = bare_differences(config)
    device = "cuda" if torch.cuda.is_available() and config.device in ("auto", "cuda") else "cpu"

    print(
        f"ablate overhead benchmark: spec {args.spec.name} ({config.data.task}, "
        f"{config.model.arch}/{config.model.encoder}, size {config.data.size}, "
        f"batch {config.data.batch_size}), {config.optim.epochs} epoch(s), "
        f"{args.repeats} repeat(s) each\n"
        f"device {device}, torch {torch.__version__}, torch threads {torch.get_num_threads()}, "
        f"cpus {os.cpu_count()}\n"
        "bare loop reuses ablate.data.load_data/make_loaders and ablate.losses.build_loss "
        "(identical inputs and loss terms); both seeded with seed "
        f"{config.seed}",
        flush=True,
    )
    if differences:
        print(f"note: the bare loop leaves out {', '.join(differences)}", flush=True)

    with tempfile.TemporaryDirectory(prefix="ablate-bench-") as tmp:
        tick = time.perf_counter()
        trial = AblateTrial(spec, Path(tmp))
        setup_seconds = time.perf_counter() - tick

        log("warm-up: 1 epoch of each ...")
        tick = time.perf_counter()
        bare_run(warm)
        trial.run(warm)
        log(f"warm-up done in {time.perf_counter() - tick:.1f} s")

        checks: dict[str, float] = {}

        def timed(side: str) -> tuple[float, Clock]:
            with OtherLoad() as load:
                if side == "bare":
                    seconds, clock, ious = bare_run(config)
                    checks["bare_val"] = ious.get("val", math.nan)
                    checks["bare_test"] = ious.get("test", math.nan)
                else:
                    seconds, clock, result = trial.run(config)
                    key = config.objective.metric
                    checks["ablate_last_val"] = result.history[-1].get(key, math.nan)
                    checks["ablate_objective"] = result.objective
            clock.other_load = load.cores
            return seconds, clock

        runs: dict[str, list[tuple[float, Clock]]] = {"bare": [], "ablate": []}
        started = time.perf_counter()
        for i in range(args.repeats):
            # Alternate the order so that neither side always runs first.
            for side in ("bare", "ablate") if i % 2 == 0 else ("ablate", "bare"):
                runs[side].append(timed(side))
            log(
                f"repeat {i + 1}/{args.repeats}: bare {runs['bare'][-1][0]:.2f} s, "
                f"ablate {runs['ablate'][-1][0]:.2f} s"
            )
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
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
