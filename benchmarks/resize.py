#!/usr/bin/env python
"""What does anti-aliased resizing (``data.resize: auto``) do to accuracy on a 5.3x shrink?

The ISBI 2012 membrane stack (``../shared/data/membrane``, 30 slices of 512x512) is resized to
96x96 and the same small Unet is trained through ablate's own ``train()`` (a ``RunConfig``, as
every trial gets it) once per seed and method:

* **old**: the behaviour before ``data.resize`` existed: images bicubic without anti-aliasing,
  masks by OpenCV's ``INTER_NEAREST`` (which takes the top-left pixel of each 5.3x5.3 block, so
  the mask sits about 2 px off the image). The product no longer offers that mask resize; this
  arm sets ``ablate.data.transforms.MASK_INTERPOLATION`` back to it for its runs.
* **cubic**: ``data.resize: cubic``: bicubic images, masks nearest at pixel centres.
* **auto**: ``data.resize: auto`` (the default): area (anti-aliased) images when shrinking,
  masks nearest at pixel centres.

Runs with the same seed share the initial weights and the batch order, so methods are compared
paired over seeds. The printed IoU (membrane = class 1) is computed at the original 512x512 (the
predicted label map resized back with nearest neighbour, ``eval.full_resolution``), so every
method is scored against the same masks; val picks the best epoch, test is scored once.

    .venv/bin/python benchmarks/resize.py [--seeds 5] [--epochs 10] [--methods old,cubic,auto]
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import cv2  # noqa: E402
from scipy import stats  # noqa: E402

MEMBRANE = ROOT.parent / "shared" / "data" / "membrane"
METHODS = ("old", "cubic", "auto")


def config(method: str, seed: int, epochs: int, size: int):  # -> RunConfig
    from ablate.spec import RunConfig

    return RunConfig.model_validate({
        "seed": seed,
        "device": "cpu",
        "data": {
            "task": "binary", "root": str(MEMBRANE), "images": "image", "masks": "label",
            "mask_map": {0: 1, 255: 0},  # membrane is the positive class
            "split_ratios": {"train": 0.6, "val": 0.2, "test": 0.2}, "split_seed": 0,
            "size": [size, size], "resize": "cubic" if method == "old" else method,
            "batch_size": 2,
        },
        "model": {"arch": "Unet", "encoder": "resnet18", "encoder_depth": 3,
                  "decoder_channels": [32, 16, 8]},
        "loss": {"weights": {"bce": 0.5, "jaccard": 0.5}},
        "optim": {"optimizer": "adamw", "lr": 0.003, "epochs": epochs, "scheduler": "cosine"},
        "eval": {"gallery": 0, "latency_repeats": 0, "thresholds": [0.5]},
        "objective": {"metric": "val_iou", "direction": "maximize"},
    })


@contextmanager
def mask_interpolation(method: str) -> Iterator[None]:
    """The old arm's mask resize (cv2.INTER_NEAREST); the product's for the others."""
    from ablate.data import transforms

    product = transforms.MASK_INTERPOLATION
    transforms.MASK_INTERPOLATION = cv2.INTER_NEAREST if method == "old" else product
    try:
        yield
    finally:
        transforms.MASK_INTERPOLATION = product


def run(method: str, seed: int, epochs: int, size: int) -> dict[str, float]:
    from ablate.training.train import train

    with mask_interpolation(method):
        result = train(config(method, seed, epochs, size), progress=False)
    return {"val": result.metrics["val"]["iou"], "test": result.metrics["test"]["iou"],
            "epoch": result.best_epoch}


def mean_std(values: list[float]) -> str:
    if len(values) < 2:
        return f"{values[0]:.4f}"
    return f"{statistics.mean(values):.4f} ± {statistics.stdev(values):.4f}"


def paired(new: list[float], old: list[float], level: float = 0.95) -> str:
    """Mean difference with its paired t interval and the two-sided p of the paired t test."""
    diffs = [a - b for a, b in zip(new, old, strict=True)]
    n = len(diffs)
    mean, sd = statistics.mean(diffs), statistics.stdev(diffs)
    half = stats.t.ppf(0.5 + level / 2, n - 1) * sd / math.sqrt(n)
    p = float(stats.ttest_rel(new, old).pvalue) if sd > 0 else float("nan")
    return (f"{mean:+.4f} [{mean - half:+.4f}, {mean + half:+.4f}] "
            f"(95% paired t, n={n}), p = {p:.3g}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--size", type=int, default=96)
    parser.add_argument("--methods", default="old,auto", help="of " + ",".join(METHODS))
    args = parser.parse_args(argv)
    methods = [m.strip() for m in args.methods.split(",")]
    if not (MEMBRANE / "image").is_dir():
        print(f"membrane data not found at {MEMBRANE}", file=sys.stderr)
        return 1

    results: dict[str, list[dict[str, float]]] = {m: [] for m in methods}
    started = time.perf_counter()
    for seed in range(args.seeds):  # methods interleaved: a slow spell hits all of them
        for method in methods:
            tick = time.perf_counter()
            results[method].append(run(method, seed, args.epochs, args.size))
            got = results[method][-1]
            print(f"seed {seed} {method:5s} val IoU {got['val']:.4f} test IoU {got['test']:.4f}"
                  f" best epoch {got['epoch']:.0f} ({time.perf_counter() - tick:.0f} s)",
                  file=sys.stderr, flush=True)
    print(f"membrane 512x512 -> {args.size}x{args.size} (shrink {512 / args.size:.1f}x), "
          f"Unet/resnet18 depth 3, {args.epochs} epochs, seeds 0..{args.seeds - 1}; IoU of "
          f"the membrane class at 512x512 ({time.perf_counter() - started:.0f} s in all)")
    for method in methods:
        print(f"  {method:5s}  val IoU {mean_std([r['val'] for r in results[method]])}   "
              f"test IoU {mean_std([r['test'] for r in results[method]])}")
    base = "old" if "old" in methods else methods[0]
    for method in methods:
        if method == base or args.seeds < 2:
            continue
        for split in ("val", "test"):
            new = [r[split] for r in results[method]]
            old = [r[split] for r in results[base]]
            print(f"  {method} - {base}, {split} IoU: {paired(new, old)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
