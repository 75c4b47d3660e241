#!/usr/bin/env python
"""``make gpu-check``: every CUDA path of ablate checked in one prepared command, about 8
minutes on one H100-class GPU. Without a CUDA device it prints one line and exits 0 at once.

Checks, in order (each prints PASS, FAIL or SKIP with its reason; a failure does not stop
the next one; the exit code is 1 when any failed):

1. ``tests``: the tests marked ``cuda`` (tests/training/test_cuda.py and the others): the
   AMP dtype of this GPU, fp16 with a GradScaler, channels_last on the model and the
   batches, pinned batches from persistent workers with uint8 masks, the kept label codes
   copied to the CPU, the figure thread beside the final evaluation, two deterministic runs
   bit for bit, a real out-of-memory error, the latency on the evaluation path;
2. ``study``: a quickstart-sized study with ``--workers 2 --gpus 0,0`` (two workers sharing
   the GPU) ends with exactly its budget of complete trials, every run on this GPU with its
   AMP dtype, its figures, and its latency tagged as shared;
3. ``precision``: the quickstart trained with the same seed in fp32, bf16 (where native),
   fp16 + GradScaler (forced, as on a T4), channels_last on and off: the final val IoU of
   each within :data:`TOLERANCE` of fp32's; fp32 trained twice (deterministic) bit for bit;
   the default trained with ``deterministic: false`` (its speed);
4. ``oom``: a deliberately huge batch (256 images of 1536x1536) with ``on_oom:
   halve_batch``: halved (batch, eval batch) until it fits, the trial completes with its
   FLOPs and latency;
5. ``resume``: a study killed after its third epoch and run again resumes the trial from
   its last epoch checkpoint (tag ``ablate.resumed_from_epoch``); "not available in this
   build" where the per-epoch checkpoints are not merged yet;
6. ``figures``: a trial against the fair hand-written loop (benchmarks/overhead.py) on the
   GPU, the train loader's images/s against the training step's at CamVid 352x480 for 0, 2,
   4 and 8 loader workers (benchmarks/data_pipeline.py), peak memory and epoch time per
   precision, the cost of ``deterministic: true``; printed as one table with the device.

The data sets come from the studies' folders (``../shared/data``); where they are missing,
synthetic data of the same shape stands in (said in the output). Nothing is downloaded.

    .venv/bin/python benchmarks/gpu_check.py [--only tests,study,...] [--budget 480]
    .venv/bin/python benchmarks/gpu_check.py --cpu-dry-run   # the script's own plumbing, tiny
"""

from __future__ import annotations

import argparse
import datetime
import math
import os
import subprocess
import sys
import tempfile
import time
import traceback
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = ROOT / "benchmarks"
for path in (ROOT, BENCHMARKS):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

STEPS = ("tests", "study", "precision", "oom", "resume", "figures")
# |final val IoU - fp32's| of the same seed in another precision or memory format: different
# rounding from the first step on moves a short training about as much as a seed would, less
TOLERANCE = 0.05
LOADER_WORKERS = (0, 2, 4, 8)


def log(text: str) -> None:
    print(text, flush=True)


# -------------------------------------------------------------------------------- bookkeeping


class Check:
    """Results and figures of the whole check, and the time left."""

    def __init__(self, budget: float, dry: bool):
        self.deadline = time.monotonic() + budget
        self.dry = dry
        self.rows: list[tuple[str, str, str]] = []  # step, PASS | FAIL | SKIP, detail
        self.figures: list[tuple[str, str]] = []
        self.results: dict[str, Any] = {}

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def add(self, step: str, status: str, detail: str) -> None:
        self.rows.append((step, status, detail))
        log(f"  {status} {step}: {detail}")

    def figure(self, name: str, value: str) -> None:
        self.figures.append((name, value))

    @contextmanager
    def step(self, name: str, needs: float) -> Iterator[bool]:
        """Run a step when ``needs`` seconds are left (yields False otherwise); an exception
        is the step's FAIL, with its last line."""
        if self.left() < needs:
            self.add(name, "SKIP", f"out of time ({self.left():.0f} s left, needs ~{needs:.0f})")
            yield False
            return
        log(f"== {name} ({self.left():.0f} s left)")
        tick = time.monotonic()
        try:
            yield True
        except Exception as err:  # noqa: BLE001 - a failed step must not end the check
            trace = traceback.format_exc().rstrip().splitlines()
            log("\n".join("    " + line for line in trace[-12:]))
            self.add(name, "FAIL", f"{type(err).__name__}: {str(err).splitlines()[0][:200]}"
                     if str(err) else type(err).__name__)
        log(f"   ({time.monotonic() - tick:.0f} s)")

    @property
    def failed(self) -> bool:
        return any(status == "FAIL" for _, status, _ in self.rows)


def run_cli(args: list[str], timeout: float, env: dict[str, str] | None = None,
            ) -> subprocess.CompletedProcess:
    """``python -m ablate.cli ARGS`` as its own process (stdout and stderr together)."""
    full = dict(os.environ)
    full.pop("ABLATE_FAULT", None)
    full.update(env or {})
    return subprocess.run([sys.executable, "-m", "ablate.cli", *args], cwd=ROOT, env=full,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=max(timeout, 1), check=False)


def tail(text: str, lines: int = 6) -> str:
    return " | ".join(line.strip() for line in text.strip().splitlines()[-lines:])


# -------------------------------------------------------------------------------------- data


def write_yaml(path: Path, data: dict[str, Any]) -> Path:
    import yaml

    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def study_dict(name: str, dry: bool, folder: Path) -> tuple[dict[str, Any], str]:
    """The quickstart spec as data (its data root made absolute), or a synthetic stand-in of
    its shape where the membrane stack is missing; and which one it is."""
    import yaml

    spec = yaml.safe_load((ROOT / "studies" / "quickstart.yaml").read_text())
    spec.pop("profiles", None)
    root = (ROOT / "studies" / spec["data"]["root"]).resolve()
    if root.is_dir():
        spec["data"]["root"] = str(root)
        what = f"quickstart ({root})"
    else:
        data = {k: v for k, v in spec["data"].items()
                if k not in ("root", "images", "masks", "mask_map")}
        spec["data"] = data | {"synthetic": {"num_images": 30, "size": 512, "channels": 1}}
        what = f"quickstart-shaped synthetic data ({root} not here)"
    spec["name"] = name
    if dry:  # the script's plumbing on a CPU: tiny
        spec["data"]["size"] = [32, 32]
        spec["optim"]["epochs"] = 1
        spec["trials"] = 2
        spec["eval"] = {**spec.get("eval", {}), "latency_repeats": 1}
    return spec, what


def camvid_spec(folder: Path, dry: bool) -> tuple[Path, str]:
    """CamVid at 352x480 (road_efficiency.yaml, data root made absolute), or synthetic
    11-class data of the same size where CamVid is missing."""
    import yaml

    spec = yaml.safe_load((ROOT / "studies" / "road_efficiency.yaml").read_text())
    spec.pop("profiles", None)
    root = (ROOT / "studies" / spec["data"]["root"]).resolve()
    if root.is_dir():
        spec["data"]["root"] = str(root)
        what = f"CamVid ({root})"
    else:
        spec["data"] = {k: v for k, v in spec["data"].items()
                        if k not in ("root", "split_dirs", "palette")}
        spec["data"]["synthetic"] = {"num_images": 120, "size": 360, "channels": 3}
        spec["data"]["split_ratios"] = {"train": 0.8, "val": 0.1, "test": 0.1}
        what = f"CamVid-shaped synthetic data, 11 classes ({root} not here)"
    if dry:
        spec["data"]["max_images"] = {"train": 16, "val": 2, "test": 2}
        spec["data"]["size"] = [64, 96]
    return write_yaml(folder / "camvid.yaml", spec), what


# ------------------------------------------------------------------------------------- steps


def check_tests(check: Check) -> None:
    """The tests marked ``cuda``."""
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "cuda",
               "tests"]
    done = subprocess.run(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, timeout=max(check.left() - 240, 60), check=False)
    summary = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else "no output"
    if done.returncode != 0:
        log(done.stdout[-6000:])
    if check.dry:  # every test skips without CUDA
        check.add("tests", "SKIP" if done.returncode == 0 else "FAIL", f"pytest -m cuda: "
                  f"{summary}")
        return
    passed = done.returncode == 0 and "passed" in summary and "skipped" not in summary
    check.add("tests", "PASS" if passed else "FAIL", f"pytest -m cuda: {summary}")


def check_study(check: Check, folder: Path) -> None:
    """``--workers 2 --gpus 0,0``: exactly the budget, every run on this GPU."""
    import optuna
    from mlflow.tracking import MlflowClient

    from ablate.stores import resolve_stores
    from ablate.tracking import Tracker, artifact_names
    from ablate.tracking import names as keys

    spec, what = study_dict("gpucheck_study", check.dry, folder)
    path = write_yaml(folder / "study.yaml", spec)
    store = folder / "study_store"
    gpus = [] if check.dry else ["--gpus", "0,0"]
    done = run_cli(["study", "run", str(path), "--workers", "2", *gpus, "--store", str(store),
                    "--quiet"], timeout=check.left() - 200)
    if done.returncode != 0:
        raise RuntimeError(f"exit code {done.returncode}: {tail(done.stdout)}")
    study = optuna.load_study(study_name=spec["name"], storage=f"sqlite:///{store}/optuna.db")
    states = [t.state.name for t in study.trials]
    budget = spec["trials"]
    problems = []
    if states != ["COMPLETE"] * budget:
        problems.append(f"trials {states}, budget {budget}")
    client = MlflowClient(tracking_uri=f"sqlite:///{store}/mlflow.db")
    experiment = client.get_experiment_by_name(spec["name"]).experiment_id
    runs = client.search_runs([experiment], f"tags.`{keys.TAG_ROLE}` = 'trial'")
    device = _device_name(check)
    tracker = Tracker(resolve_stores(store), write=False)
    for run in runs:
        tags = run.data.tags
        files = set(artifact_names(tracker, run.info.run_id))
        if tags.get(keys.env_tag("device")) != device:
            problems.append(f"run {run.info.run_name} on {tags.get(keys.env_tag('device'))}")
        if not {"curves.png", "gallery.png"} <= files:
            problems.append(f"run {run.info.run_name} lacks figures ({sorted(files)})")
        if not check.dry and not tags.get(keys.applied_tag("latency"), "").startswith("shared"):
            problems.append(f"run {run.info.run_name}: latency not marked as shared")
    amp = sorted({r.data.tags.get(keys.TAG_AMP_DTYPE, "?") for r in runs})
    workers = sorted({r.data.tags.get(keys.applied_tag("loader_workers"), "?") for r in runs})
    detail = (f"{what}: {len(runs)} runs, {states.count('COMPLETE')}/{budget} complete, AMP "
              f"{'/'.join(amp)}, {'/'.join(workers)} loader worker(s) each")
    if problems:
        raise RuntimeError(f"{detail}; " + "; ".join(problems[:4]))
    check.add("study", "PASS", detail + ("" if check.dry else ", latency tagged as shared"))


def _device_name(check: Check) -> str:
    import torch

    if torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    from ablate.runs.environment import collect

    return collect("cpu")["device"]


def _train(spec: Any, values: dict[str, Any], fp16: bool = False) -> tuple[Any, float]:
    """One in-process run of ``spec`` with ``values`` (dotted paths); ``fp16``: autocast
    forced to fp16 with a GradScaler (the path of a GPU without native bf16)."""
    import torch

    import ablate.training.engine as engine_module
    from ablate.training.train import train

    config = spec.resolve(values)
    real = engine_module.amp_dtype
    if fp16:
        engine_module.amp_dtype = lambda device, enabled: (
            torch.float16 if enabled and device.type == "cuda" else None)
    try:
        tick = time.perf_counter()
        result = train(config, progress=False)
        return result, time.perf_counter() - tick
    finally:
        engine_module.amp_dtype = real


def check_precision(check: Check, folder: Path) -> None:
    """fp32, bf16, fp16 + GradScaler, channels_last on/off against fp32; determinism."""
    import torch

    from ablate.spec import load_spec
    from ablate.training.precision import NATIVE_BF16

    data, what = study_dict("gpucheck_precision", check.dry, folder)
    data["eval"] = {**data.get("eval", {}), "gallery": 0, "latency_repeats": 5}
    spec = load_spec(write_yaml(folder / "precision.yaml", data))
    native = (torch.cuda.is_available()
              and tuple(torch.cuda.get_device_capability(0)) >= NATIVE_BF16)
    variants: list[tuple[str, dict[str, Any], bool]] = [
        ("fp32", {"optim.amp": False, "optim.channels_last": False}, False),
        ("fp32 + channels_last", {"optim.amp": False, "optim.channels_last": True}, False),
    ]
    if native:
        variants += [("bf16", {"optim.amp": True, "optim.channels_last": False}, False),
                     ("bf16 + channels_last", {}, False)]
    variants += [("fp16 + GradScaler", {"optim.amp": True, "optim.channels_last": False}, True),
                 ("fp16 + GradScaler + channels_last", {}, True)]
    results = {}
    for name, values, fp16 in variants:
        results[name] = _train(spec, values, fp16)
        result, seconds = results[name]
        log(f"    {name}: val IoU {result.objective:.4f}, {seconds:.1f} s, epoch "
            f"{result.train_seconds / result.epochs_run:.2f} s, peak "
            f"{result.peak_memory_mb or 0:.0f} MiB, {result.applied.get('reproducible')}")
    again, _ = _train(spec, variants[0][1])
    reference = results["fp32"][0].objective
    problems = []
    for name, (result, _) in results.items():
        difference = result.objective - reference
        if not (math.isfinite(result.objective) and abs(difference) <= TOLERANCE):
            problems.append(f"{name}: val IoU {result.objective:.4f} ({difference:+.4f})")
        check.figure(f"{name}", f"val IoU {result.objective:.4f} ({difference:+.4f} vs fp32), "
                     f"epoch {result.train_seconds / result.epochs_run:.2f} s, peak "
                     f"{result.peak_memory_mb or 0:.0f} MiB")
    if repr(again.history) != repr(results["fp32"][0].history):
        problems.append("fp32 twice with deterministic: true differs")
    default = "bf16 + channels_last" if native else "fp16 + GradScaler + channels_last"
    fast, _ = _train(spec, {"deterministic": False}, fp16=not native)
    slow = results[default][0]
    check.figure("deterministic: true / false",
                 f"{slow.images_per_second:.0f} / {fast.images_per_second:.0f} train images/s "
                 f"= {slow.images_per_second / fast.images_per_second:.2f}x ({default})")
    check.results["precision"] = results
    detail = (f"{what}: {len(results)} variants within ±{TOLERANCE} of fp32's val IoU "
              f"{reference:.4f}; fp32 twice bit for bit")
    if not native:
        detail += "; bf16 is not native here: fp16 + GradScaler is what runs"
    if problems:
        raise RuntimeError("; ".join(problems))
    check.add("precision", "PASS", detail)


def check_oom(check: Check, folder: Path) -> None:
    """A batch far beyond the GPU's memory, halved until it fits."""
    import optuna
    from mlflow.tracking import MlflowClient

    from ablate.tracking import names as keys

    if check.dry:
        check.add("oom", "SKIP", "no device memory to exhaust on the CPU")
        return
    name = "gpucheck_oom"
    spec = {
        "name": name, "trials": 1, "on_oom": "halve_batch",
        "data": {"task": "binary", "synthetic": {"num_images": 300, "size": 256, "channels": 3},
                 "split_ratios": {"train": 0.9, "val": 0.05, "test": 0.05},
                 "size": [1536, 1536], "batch_size": 256, "eval_batch_size": 256,
                 "num_workers": 0},
        "model": {"arch": "Unet", "encoder": "resnet18"},
        "optim": {"epochs": 1}, "eval": {"gallery": 1, "latency_repeats": 3},
        "objective": {"metric": "val_iou", "direction": "maximize"},
    }
    store = folder / "oom_store"
    done = run_cli(["study", "run", str(write_yaml(folder / "oom.yaml", spec)), "--store",
                    str(store)], timeout=check.left() - 120)
    halvings = [line.strip() for line in done.stdout.splitlines() if "out of memory" in line]
    for line in halvings:
        log(f"    {line}")
    study = optuna.load_study(study_name=name, storage=f"sqlite:///{store}/optuna.db")
    client = MlflowClient(tracking_uri=f"sqlite:///{store}/mlflow.db")
    runs = client.search_runs([client.get_experiment_by_name(name).experiment_id],
                              f"tags.`{keys.TAG_ROLE}` = 'trial'")
    if done.returncode != 0 or [t.state.name for t in study.trials] != ["COMPLETE"]:
        raise RuntimeError(f"exit code {done.returncode}, trials "
                           f"{[t.state.name for t in study.trials]}: {tail(done.stdout)}")
    tags, metrics = runs[0].data.tags, runs[0].data.metrics
    batch = tags.get(keys.TAG_OOM_BATCH)
    eval_batch = tags.get(keys.TAG_OOM_EVAL_BATCH)
    measured = all(math.isfinite(metrics.get(k, math.nan))
                   for k in ("model/gflops", "model/latency_ms"))
    if not halvings or batch is None or eval_batch is None or not measured:
        raise RuntimeError(f"halvings {halvings}, batch tag {batch}, eval batch tag "
                           f"{eval_batch}, FLOPs and latency measured: {measured}")
    check.figure("out of memory: batch 256 at 1536x1536",
                 f"{batch} x {tags.get(keys.TAG_OOM_ACCUM)} (eval batch {eval_batch})")
    check.add("oom", "PASS", f"{len(halvings)} halving(s): trained at batch {batch} x "
              f"{tags.get(keys.TAG_OOM_ACCUM)}, eval batch {eval_batch}, FLOPs and latency "
              "measured")


def check_resume(check: Check, folder: Path) -> None:
    """A study killed after its third epoch, run again: resumed from its last epoch."""
    from mlflow.tracking import MlflowClient

    from ablate.tracking import names as keys

    spec, what = study_dict("gpucheck_resume", check.dry, folder)
    spec["trials"] = 1
    spec["search"] = {}
    spec["optim"]["epochs"] = 2 if check.dry else 6
    path = write_yaml(folder / "resume.yaml", spec)
    store = folder / "resume_store"
    fast = {"ABLATE_HEARTBEAT": "1"}  # a killed trial is stale after 3 s
    kill_at = "mid_log:1" if check.dry else "mid_log:3"
    killed = run_cli(["study", "run", str(path), "--store", str(store), "--quiet"],
                     timeout=check.left() - 60, env={**fast, "ABLATE_FAULT": kill_at})
    if killed.returncode != -9:
        raise RuntimeError(f"the first run was not killed at {kill_at} (exit code "
                           f"{killed.returncode}): {tail(killed.stdout)}")
    time.sleep(3.5)
    done = run_cli(["study", "run", str(path), "--store", str(store), "--quiet"],
                   timeout=check.left() - 30, env=fast)
    if done.returncode != 0:
        raise RuntimeError(f"the second run: exit code {done.returncode}: {tail(done.stdout)}")
    client = MlflowClient(tracking_uri=f"sqlite:///{store}/mlflow.db")
    runs = client.search_runs([client.get_experiment_by_name(spec["name"]).experiment_id],
                              f"tags.`{keys.TAG_STATE}` = 'COMPLETE' and "
                              f"tags.`{keys.TAG_ROLE}` = 'trial'")
    resumed = [r.data.tags.get(keys.TAG_RESUMED_FROM) for r in runs]
    if not runs or not all(v is not None and v.isdigit() and int(v) >= 1 for v in resumed):
        raise RuntimeError(f"complete runs' {keys.TAG_RESUMED_FROM}: {resumed}")
    check.add("resume", "PASS", f"killed at {kill_at}, resumed from epoch {resumed[0]}")


def check_figures(check: Check, folder: Path) -> None:
    """The trial against the fair loop; the loader against the step at CamVid size."""
    import data_pipeline
    import overhead
    import torch

    from ablate.spec import load_spec
    from ablate.training import determinism
    from ablate.training.devices import resolve_device

    data, what = study_dict("gpucheck_overhead", check.dry, folder)
    data["search"] = {}
    spec = load_spec(write_yaml(folder / "overhead.yaml", data))
    config = spec.resolve({})
    warm = spec.resolve({"optim.epochs": 1})
    device = resolve_device(config.device)
    with tempfile.TemporaryDirectory(prefix="gpucheck-") as tmp:
        trial = overhead.AblateTrial(spec, Path(tmp))
        trial.run(warm)
        determinism.apply(config.deterministic, device)  # the same settings for both
        overhead.bare_run(warm, validate=True)
        ablate_s, _, result = trial.run(config)
        determinism.apply(config.deterministic, device)
        fair_s, _, fair_iou = overhead.bare_run(config, validate=True)
    check.figure("trial / fair loop",
                 f"{ablate_s:.1f} s / {fair_s:.1f} s = {ablate_s / fair_s:.2f}x ({what}, "
                 f"{config.optim.epochs} epochs; val IoU {result.objective:.4f} / "
                 f"{fair_iou.get('val', math.nan):.4f})")
    path, camvid = camvid_spec(folder, check.dry)
    determinism.apply(True, device)
    counts = [0, 2] if check.dry else list(LOADER_WORKERS)
    measured = data_pipeline.measure(path, steps=3 if check.dry else 10,
                                     images=16 if check.dry else 384, workers=counts)
    step = measured["step"]
    fed = [n for n, (rate, _) in measured["pipeline"].items() if rate >= step]
    for count, (rate, per_core) in measured["pipeline"].items():
        check.figure(f"train loader, {count} worker(s)",
                     f"{rate:.0f} images/s ({per_core:.0f} per core) = {rate / step:.2f}x "
                     "the step")
    check.figure("training step", f"{step:.0f} images/s ({camvid}, {measured['size']}, batch "
                 f"{measured['batch']}, fwd+bwd+step on in-memory batches)")
    check.figure("loader workers that keep the GPU fed",
                 f"from {min(fed)}" if fed else f"none of {counts}: the loader starves it")
    check.add("figures", "PASS", "measured (table below)")
    del torch


# -------------------------------------------------------------------------------------- main


def header() -> str:
    import torch

    now = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    if not torch.cuda.is_available():
        return f"gpu-check dry run on the CPU ({os.cpu_count()} cores), {now}"
    props = torch.cuda.get_device_properties(0)
    return (f"gpu-check on {props.name} (sm_{props.major}{props.minor}, "
            f"{props.total_memory / 2**30:.1f} GiB), {torch.cuda.device_count()} GPU(s) "
            f"visible, torch {torch.__version__}, CUDA {torch.version.cuda}, cuDNN "
            f"{torch.backends.cudnn.version()}, {os.cpu_count()} cores, {now}")


def table(check: Check, title: str) -> str:
    width = max([len(n) for n, _ in check.figures] + [len(s) for s, _, _ in check.rows] + [6])
    lines = [title, "", f"{'check':<{width}}  result  detail"]
    lines += [f"{step:<{width}}  {status:<6}  {detail}" for step, status, detail in check.rows]
    if check.figures:
        lines += ["", f"{'figure':<{width}}  value"]
        lines += [f"{name:<{width}}  {value}" for name, value in check.figures]
    return "\n".join(lines)


STEP_NEEDS = {"tests": 60, "study": 60, "precision": 60, "oom": 60, "resume": 40,
              "figures": 60}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=",".join(STEPS),
                        help=f"comma-separated steps ({', '.join(STEPS)})")
    parser.add_argument("--budget", type=float, default=480, help="seconds for all steps")
    parser.add_argument("--cpu-dry-run", action="store_true",
                        help="run the steps' plumbing on the CPU with tiny settings (checks "
                             "nothing about CUDA; for developing this script)")
    args = parser.parse_args(argv)
    import torch

    if not torch.cuda.is_available() and not args.cpu_dry_run:
        built = (f"built for CUDA {torch.version.cuda}" if torch.version.cuda
                 else "a CPU-only build")
        print(f"gpu-check: no CUDA device here (torch {torch.__version__}, {built}); nothing "
              "to check")
        return 0
    warnings.filterwarnings("ignore", category=UserWarning)
    unknown = set(args.only.split(",")) - set(STEPS)
    if unknown:
        parser.error(f"unknown steps {sorted(unknown)}; choose from {', '.join(STEPS)}")
    check = Check(args.budget, dry=not torch.cuda.is_available())
    title = header()
    log(title)
    steps: dict[str, Callable[..., None]] = {
        "tests": lambda folder: check_tests(check), "study": lambda f: check_study(check, f),
        "precision": lambda f: check_precision(check, f), "oom": lambda f: check_oom(check, f),
        "resume": lambda f: check_resume(check, f), "figures": lambda f: check_figures(check, f),
    }
    with tempfile.TemporaryDirectory(prefix="ablate-gpu-check-") as tmp:
        for name in STEPS:
            if name not in args.only.split(","):
                continue
            folder = Path(tmp) / name
            folder.mkdir()
            with check.step(name, STEP_NEEDS[name]) as go:
                if go:
                    steps[name](folder)
    print("\n" + table(check, title), flush=True)
    return 1 if check.failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
