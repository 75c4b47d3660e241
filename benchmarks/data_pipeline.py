#!/usr/bin/env python
"""Which bounds a trial: the data pipeline or the model's training step?

For each spec (default: the quickstart, and CamVid at 352x480 from ``road_efficiency.yaml``,
both with their flips turned on so that augmentation is part of the pipeline):

* **decode**: ``ablate.data.load_data`` from a cold per-process decode cache (files read and
  decoded once per process; every later epoch reads the cached arrays), images/s;
* **pipeline**: the train loader that ``ablate.data.make_loaders`` builds (augmentation,
  normalisation, collation, ``data.num_workers`` workers as the spec sets them) iterated on a
  warm cache with no model at all, images/s;
* **train step**: forward + loss + backward + optimiser step of ``ablate.engine.Engine`` on
  batches already in memory, images/s.

The smaller of the last two bounds a trial's training epochs (with workers, the pipeline runs
beside the step on other cores, so on a machine with few cores the two also compete).

    .venv/bin/python benchmarks/data_pipeline.py [--steps 3] [--images 64] [--specs A.yaml ...]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

DEFAULT_SPECS = (ROOT / "studies" / "quickstart.yaml", ROOT / "studies" / "road_efficiency.yaml")
FLIPS = {"augment.hflip": True}


def pipeline_rate(loader: torch.utils.data.DataLoader, images: int) -> float:
    """Images/s of iterating ``loader`` (epochs repeated until ``images`` are seen)."""
    seen = 0
    tick = time.perf_counter()
    while seen < images:  # each pass is the sampler's next epoch (new augmentation draws)
        for batch, _ in loader:
            seen += len(batch)
            if seen >= images:
                break
    return seen / (time.perf_counter() - tick)


def step_rate(config: object, data: object, batches: list, steps: int) -> float:
    """Images/s of the training step (forward, loss, backward, step) on in-memory batches;
    the median over ``steps`` timed steps after one warm-up step."""
    from ablate.training.engine import Engine
    from ablate.training.optim import build_optimizer
    from ablate.training.train import resolve_device, seed_everything

    seed_everything(0)
    device = resolve_device(config.device)
    engine = Engine(config, data, device)
    engine.model.to(memory_format=engine.memory_format)
    optimizer = build_optimizer(config.optim, engine.model)
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


def measure(path: Path, steps: int, images: int) -> None:
    from ablate.data import clear_cache, load_data, make_loaders
    from ablate.spec import load_spec

    spec = load_spec(path)
    config = spec.resolve(dict(FLIPS))
    clear_cache()
    tick = time.perf_counter()
    data = load_data(config.data)
    decoded = sum(len(s) for s in data.splits.values())
    decode = decoded / (time.perf_counter() - tick)
    loaders = make_loaders(data, config, config.seed)
    train = loaders["train"]
    batches = []
    for batch in train:  # warm-up: worker start, first pass over the cached arrays
        batches.append(batch)
        if len(batches) >= 2:
            break
    pipeline = pipeline_rate(train, images)
    step = step_rate(config, data, batches, steps)
    del loaders, train  # persistent workers end here
    bound = "the data pipeline" if pipeline < step else "the training step (model)"
    size = "x".join(str(s) for s in config.data.size) if config.data.size else "native"
    print(
        f"{spec.name}: {config.model.arch}/{config.model.encoder}, input {size}, batch "
        f"{config.data.batch_size}, {config.data.num_workers} loader worker(s), "
        f"augment hflip={config.augment.hflip}\n"
        f"  decode (cold cache, {decoded} files)   {decode:8.1f} images/s\n"
        f"  data pipeline alone              {pipeline:8.1f} images/s\n"
        f"  training step (fwd+bwd+step)     {step:8.1f} images/s\n"
        f"  pipeline / step = {pipeline / step:.1f}x: {bound} bounds the training epochs",
        flush=True,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--specs", type=Path, nargs="+", default=list(DEFAULT_SPECS))
    parser.add_argument("--steps", type=int, default=3, help="timed training steps (median)")
    parser.add_argument("--images", type=int, default=64, help="images the pipeline serves")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore", category=UserWarning)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    load = " ".join(f"{v:.2f}" for v in os.getloadavg())
    print(f"data pipeline vs training step: device {device}, cpus {os.cpu_count()}, "
          f"torch threads {torch.get_num_threads()}, load average {load}", flush=True)
    for path in args.specs:
        measure(path, args.steps, args.images)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
