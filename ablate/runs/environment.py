"""The environment a run trained in: library versions, the device, and the code's git state.

Every entry is a short string, so that two runs' environments compare key by key
(``ablate diff``). Git is asked through ``git`` with argument lists (never a shell); where there
is no git work tree, or no git, the entries say so.
"""

from __future__ import annotations

import functools
import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path

# Distributions whose versions decide the numbers, by the key they are recorded under.
PACKAGES = {
    "ablate": "ablate",
    "torch": "torch",
    "torchvision": "torchvision",
    "smp": "segmentation-models-pytorch",
    "timm": "timm",
    "albumentations": "albumentations",
    "optuna": "optuna",
    "mlflow": "mlflow",
    "numpy": "numpy",
    "opencv": "opencv-python-headless",
}
NOT_GIT = "not a git work tree"
DIFF_LIMIT = 2_000_000  # characters of `git diff` kept with a run whose work tree is dirty


def collect(device: str = "auto", spec_path: str | None = None) -> dict[str, str]:
    """Versions, device and git state; ``spec_path``: the spec file, whose work tree's commit
    is recorded (its folder, or the working directory when the file is not on this machine)."""
    env = dict(_process())
    env.update(_device(device))
    env.update(slurm())
    env["spec_path"] = spec_path or "none (no spec file)"
    folder = Path(spec_path).parent if spec_path and Path(spec_path).is_file() else Path.cwd()
    env.update(git_state(folder))
    return env


@functools.cache
def _process() -> dict[str, str]:
    """What cannot change while this process runs: Python, the platform, the versions of
    the packages and the state of the ablate code it imported (read once; the work tree of
    the spec is read for every run)."""
    env = {"python": platform.python_version(), "platform": platform.platform()}
    env.update({key: _version(dist) for key, dist in PACKAGES.items()})
    ablate_code = git_state(Path(__file__).resolve().parent)
    env["ablate_commit"] = ablate_code["git_commit"]
    env["ablate_dirty"] = ablate_code["git_dirty"]
    return env


# Slurm's facts about the job a run trained in, by the entry they are recorded under
# (ablate.env.slurm_job_id, ...); an array task's job id is the array's, as squeue shows it.
SLURM = {
    "slurm_job_id": ("SLURM_ARRAY_JOB_ID", "SLURM_JOB_ID"),
    "slurm_array_task_id": ("SLURM_ARRAY_TASK_ID",),
    "slurm_partition": ("SLURM_JOB_PARTITION",),
    "slurm_node": ("SLURMD_NODENAME",),
    "slurm_restart_count": ("SLURM_RESTART_COUNT",),
}


def slurm() -> dict[str, str]:
    """The Slurm job and array task this process runs in (none outside Slurm); a job
    requeued after a time limit or preemption has its restart count."""
    if not os.environ.get("SLURM_JOB_ID"):
        return {}
    out = {}
    for key, names in SLURM.items():
        value = next((os.environ[n] for n in names if os.environ.get(n)), None)
        if value is not None:
            out[key] = value
    out.setdefault("slurm_restart_count", "0")
    return out


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        if dist == "opencv-python-headless":
            return _version("opencv-python")
        return "not installed"


def _device(name: str) -> dict[str, str]:
    """The device a run trains on: the GPU's name with CUDA and cuDNN versions, or the CPU."""
    import torch

    from ablate.training.devices import resolve_device

    out = {"torch_threads": str(torch.get_num_threads())}
    device = resolve_device(name)  # a --gpus worker's cuda:N is its one GPU, cuda:0
    if device.type == "cuda":
        out["device"] = torch.cuda.get_device_name(device.index or 0)
        out["cuda"] = str(torch.version.cuda)
        out["cudnn"] = str(torch.backends.cudnn.version())
    else:
        out["device"] = f"cpu: {_cpu_name()}"
    return out


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _git(folder: Path, *args: str) -> str | None:
    """Output of ``git -C folder args`` (stripped), or None when git fails or is missing."""
    try:
        done = subprocess.run(["git", "-C", str(folder), *args], capture_output=True, text=True,
                              timeout=20, check=False, env={**os.environ, "LC_ALL": "C"})
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def git_state(folder: Path) -> dict[str, str]:
    """``git_tree`` (the work tree's top folder), ``git_commit`` and ``git_dirty`` (``true``
    with the count of changed or untracked files, or ``false``) of the work tree holding
    ``folder``."""
    top = _git(folder, "rev-parse", "--show-toplevel") if folder.is_dir() else None
    if top is None:
        return {"git_tree": NOT_GIT, "git_commit": NOT_GIT, "git_dirty": NOT_GIT}
    commit = _git(folder, "rev-parse", "HEAD") or "no commit yet"
    status = _git(folder, "status", "--porcelain")
    changed = [line for line in (status or "").splitlines() if line.strip()]
    dirty = f"true ({len(changed)} changed or untracked)" if changed else "false"
    return {"git_tree": top, "git_commit": commit, "git_dirty": dirty if status is not None
            else "unknown"}


def git_diff(env: dict[str, str]) -> str | None:
    """The uncommitted changes of the spec's work tree (``git diff HEAD`` and the untracked
    file names), when ``env`` says it is dirty; None otherwise."""
    if not env.get("git_dirty", "").startswith("true"):
        return None
    top = Path(env["git_tree"])
    diff = _git(top, "diff", "HEAD") or ""
    untracked = _git(top, "ls-files", "--others", "--exclude-standard") or ""
    text = diff + ("\n# untracked files:\n" + untracked + "\n" if untracked else "")
    return text[:DIFF_LIMIT]
