#!/usr/bin/env python
"""Which bounds a trial: the data pipeline or the model's training step?

For each spec (default: the quickstart, and CamVid at 352x480 from ``road_efficiency.yaml``,
both with their flips turned on so that augmentation is part of the pipeline):

* **decode**: ``ablate.data.load_data`` from a cold per-process decode cache (files read and
  decoded once per process; every later epoch reads the cached arrays), images/s;
* **pipeline**: the train loader that ``ablate.data.make_loaders`` builds (augmentation,
  normalisation, collation) iterated on a warm cache with no model at all, for each
  ``--loader-workers`` count: images/s, and images per CPU second of the processes that did
  the work (the workers; with 0 workers this process, timed with one torch thread as a
  loader worker runs): **images/s per core**;
* **train step**: forward + loss + backward + optimiser step of ``ablate.training.engine``'s
  Engine on batches already in memory, images/s.

The smaller of the pipeline and the step bounds a trial's training epochs (with workers the
pipeline runs beside the step on other cores, so on a machine with few cores the two also
compete). On CUDA the loaders pin memory, as a run's do.

    .venv/bin/python benchmarks/data_pipeline.py [--steps 3] [--images 64] [--specs A.yaml ...]
        [--loader-workers 0,2,4,8]

Only APIs that older versions have too are used, so the script can measure another checkout
(``PYTHONPATH=/other/checkout python benchmarks/data_pipeline.py --code /other/checkout``).
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _code_root(argv: list[str] | None) -> Path:
    """The checkout whose ``ablate`` is measured (``--code``, default this one)."""
    args = sys.argv[1:] if argv is None else argv
    if "--code" in args:
        return Path(args[args.index("--code") + 1]).resolve()
    return ROOT


DEFAULT_SPECS = (ROOT / "studies" / "quickstart.yaml", ROOT / "studies" / "road_efficiency.yaml")
FLIPS = {"augment.hflip": True}


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds of the processes ``pids`` so far (Linux /proc; 0 if gone)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
        except (OSError, IndexError, ValueError):
            pass
    return total


def worker_pids(loader: object) -> list[int]:
    """The pids of a loader's live worker processes (none with 0 workers)."""
    iterator = getattr(loader, "_iterator", None)
    return [w.pid for w in getattr(iterator, "_workers", [])]


def pipeline_rate(loader: object, images: int) -> tuple[float, float]:
    """Images/s of iterating ``loader`` (epochs repeated until ``images`` are seen) and the
    images per CPU second of the processes that loaded them (the workers, else this one)."""
    pids = worker_pids(loader) or [os.getpid()]
    seen = 0
    cpu = cpu_seconds(pids)
    tick = time.perf_counter()
    while seen < images:  # each pass is the sampler's next epoch (new augmentation draws)
        for batch, _ in loader:  # type: ignore[attr-defined]
            seen += len(batch)
            if seen >= images:
                break
    wall = time.perf_counter() - tick
    used = cpu_seconds(pids) - cpu
    return seen / wall, (seen / used if used > 0 else float("nan"))


def step_rate(config: object, data: object, batches: list, steps: int) -> float:
    """Images/s of the training step (forward, loss, backward, step) on in-memory batches;
    the median over ``steps`` timed steps after one warm-up step."""
    import torch

    from ablate.training.engine import Engine
    from ablate.training.optim import build_optimizer
    from ablate.training.train import resolve_device, seed_everything

    seed_everything(0)
    device = resolve_device(config.device)  # type: ignore[attr-defined]
    engine = Engine(config, data, device)  # type: ignore[arg-type]
    engine.model.to(memory_format=engine.memory_format)
    optimizer = build_optimizer(config.optim, engine.model)  # type: ignore[attr-defined]
    engine.model.train()
    rates = []
    for i in range(steps + 1):
        images, masks = engine.to_device(*batches[i % len(batches)])
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        tick = time.perf_counter()
        with engine.autocast():
            loss, _ = engine.loss_fn(engine.model(images).float(), masks)
        optimizer.zero_grad(set_to_none=True)
        engine.scaler.scale(loss).backward()
        engine.scaler.step(optimizer)
        engine.scaler.update()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        if i > 0:
            rates.append(len(images) / (time.perf_counter() - tick))
    return statistics.median(rates)


def measure(path: Path, steps: int, images: int, workers: list[int]) -> dict[str, object]:
    """The figures of one spec (printed, and returned for ``benchmarks/gpu_check.py``)."""
    import torch

    from ablate.data import clear_cache, load_data, make_loaders
    from ablate.spec import load_spec

    spec = load_spec(path)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    config = spec.resolve(dict(FLIPS))
    clear_cache()
    tick = time.perf_counter()
    data = load_data(config.data)
    decoded = sum(len(s) for s in data.splits.values())
    decode = decoded / (time.perf_counter() - tick)
    rates: dict[int, tuple[float, float]] = {}
    batches: list = []
    for count in workers:
        counted = spec.resolve({**FLIPS, "data.num_workers": count})
        train = make_loaders(data, counted, counted.seed, device)["train"]
        for batch in train:  # warm-up: worker start, first pass over the cached arrays
            if len(batches) < 2:
                batches.append(batch)
            break
        threads = torch.get_num_threads()
        if count == 0:  # the main process loads: one torch thread, as a loader worker has
            torch.set_num_threads(1)
        rates[count] = pipeline_rate(train, images)
        torch.set_num_threads(threads)
        del train  # persistent workers end here
    step = step_rate(config, data, batches, steps) if steps > 0 else float("nan")
    size = "x".join(str(s) for s in config.data.size) if config.data.size else "native"
    lines = [f"{spec.name}: {config.model.arch}/{config.model.encoder}, input {size}, batch "
             f"{config.data.batch_size}, augment hflip={config.augment.hflip}, {device.type}",
             f"  decode (cold cache, {decoded} files)       {decode:8.1f} images/s"]
    for count, (rate, per_core) in rates.items():
        ratio = f"  ({rate / step:5.2f}x the step)" if math.isfinite(step) else ""
        lines.append(f"  pipeline, {count} loader worker(s)         {rate:8.1f} images/s"
                     f"  {per_core:7.1f} images/s per core{ratio}")
    if math.isfinite(step):
        lines.append(f"  training step (fwd+bwd+step)         {step:8.1f} images/s")
    print("\n".join(lines), flush=True)
    return {"spec": spec.name, "decode": decode, "pipeline": rates, "step": step,
            "batch": config.data.batch_size, "size": size}


def main(argv: list[str] | None = None) -> int:
    code = _code_root(argv)
    if str(code) not in sys.path:
        sys.path.insert(0, str(code))
    import torch

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--specs", type=Path, nargs="+", default=list(DEFAULT_SPECS))
    parser.add_argument("--steps", type=int, default=3,
                        help="timed training steps (median; 0: the pipeline only)")
    parser.add_argument("--images", type=int, default=64, help="images the pipeline serves")
    parser.add_argument("--loader-workers", default="0",
                        help="comma-separated loader worker counts to time the pipeline with")
    parser.add_argument("--code", type=Path, default=ROOT,
                        help="the checkout whose ablate is measured (default: this one)")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore", category=UserWarning)
    workers = [int(w) for w in args.loader_workers.split(",")]
    device = "cuda" if torch.cuda.is_available() else "cpu"
    load = " ".join(f"{v:.2f}" for v in os.getloadavg())
    print(f"data pipeline vs training step: ablate from {args.code}, device {device}, cpus "
          f"{os.cpu_count()}, torch threads {torch.get_num_threads()}, load average {load}",
          flush=True)
    for path in args.specs:
        measure(path, args.steps, args.images, workers)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
