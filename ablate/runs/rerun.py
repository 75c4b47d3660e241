"""Training a tracked run again from its logged configuration, and checking the numbers.

The rerun is a new run in the original's experiment (role ``rerun``, tag ``ablate.rerun_of``),
never a trial of the study: the report does not count it. It trains the run's ``config.yaml``
(same seed, same data path; the batch size an out-of-memory retry settled on, when there was
one), so on the same machine, libraries and data it reproduces every number bit for bit
(on CUDA: with ``deterministic: true``, on the same GPU model; :mod:`ablate.training.determinism`).
"""

from __future__ import annotations

import math
from pathlib import Path

from ablate.errors import AblateError
from ablate.runs.diff import RunDiff, compare
from ablate.spec import RunConfig, set_dotted
from ablate.stores import Stores, StoreWatch
from ablate.tracking import TrackedRun, Tracker, find_run, localize, tracked_run
from ablate.tracking import names as keys


def rerun_config(original: TrackedRun) -> RunConfig:
    """The configuration ``original`` trained with; AblateError when it cannot run again here
    (no logged configuration, or its data folder is gone)."""
    if original.config is None:
        raise AblateError(f"run {original.run_id} has no {keys.CONFIG_ARTIFACT}; it cannot be "
                          "trained again from its configuration")
    data = dict(original.config)
    if keys.TAG_OOM_BATCH in original.tags:  # an out-of-memory retry trained with these
        set_dotted(data, "data.batch_size", int(original.tags[keys.TAG_OOM_BATCH]))
        set_dotted(data, "optim.grad_accum", int(original.tags[keys.TAG_OOM_ACCUM]))
        if keys.TAG_OOM_EVAL_BATCH in original.tags:
            set_dotted(data, "data.eval_batch_size", int(original.tags[keys.TAG_OOM_EVAL_BATCH]))
    config = RunConfig.model_validate(data)
    root = config.data.root
    if config.data.synthetic is None and (root is None or not Path(root).is_dir()):
        raise AblateError(f"run {original.run_id} trained on the data folder {root}, which no "
                          "longer exists; put the data back there (a rerun reads the same "
                          "files) and run it again")
    return config


def rerun(stores: Stores, ref: str, progress: bool = True) -> tuple[TrackedRun, TrackedRun]:
    """Train run ``ref`` (a run id or STUDY:TRIAL[:REPEAT]) again as a new tracked run;
    returns (original, rerun). Everything is checked before anything is written."""
    from ablate.runs.applied import device_applied, ignored_tags
    from ablate.runs.lifecycle import run_outcome
    from ablate.runs.preflight import preflight
    from ablate.runs.tracked import train_tracked

    reader = Tracker(stores, write=False)
    original = tracked_run(reader, find_run(reader, ref))
    config, ignored = device_applied(localize(reader, rerun_config(original)))
    preflight(config)
    tracker = Tracker(stores)
    run = tracker.start_run(
        original.study, config, role=keys.ROLE_RERUN, name=f"rerun-{original.name}",
        extra_tags={keys.TAG_RERUN_OF: original.run_id, **ignored_tags(ignored)},
    )
    run.fence = StoreWatch(stores.tracking_uri)
    spec_path = original.environment.get("spec_path")
    with run_outcome(run):
        train_tracked(config, run, progress=progress, description="rerun",
                      spec_path=spec_path if spec_path and Path(spec_path).is_file() else None)
    return original, tracked_run(tracker, run.run_id)


# A run that was not bit-reproducible (CUDA with deterministic: false, or an operation
# without a deterministic implementation) is checked against these: |difference| at most
# max(ABS_TOLERANCE, REL_TOLERANCE x the larger magnitude). GPU noise changes a run from its
# first steps on; over a training it moves the final scores by about a few thousandths.
ABS_TOLERANCE, REL_TOLERANCE = 0.01, 0.02


def reproducible(run: TrackedRun) -> bool:
    """Whether ``run`` can be reproduced bit for bit where it trained (its
    ``ablate.applied.reproducible`` tag; runs logged before the tag existed count as
    reproducible)."""
    return not run.tags.get(keys.TAG_REPRODUCIBLE, "").startswith("no")


def within_tolerance(a: float, b: float) -> bool:
    """Whether two final numbers of runs that are not bit-reproducible agree."""
    if a == b or (math.isnan(a) and math.isnan(b)):
        return True
    return abs(a - b) <= max(ABS_TOLERANCE, REL_TOLERANCE * max(abs(a), abs(b)))


def check(original: TrackedRun,
          again: TrackedRun) -> tuple[RunDiff, list[str], list[tuple[str, float, float]]]:
    """The comparison of a rerun with its original, its verdict as lines, and the final
    numbers that fail it (the measured times aside): every one must be equal, or, when
    either run was not bit-reproducible (:func:`reproducible`), within the tolerance of
    :func:`within_tolerance`."""
    diff = compare(original, again)
    differing = diff.differing_metrics()
    counted = [n for n, _, _ in diff.metrics if n not in keys.MEASURED]
    lines = []
    exact = reproducible(original) and reproducible(again)
    failing = differing if exact else [(n, a, b) for n, a, b in differing
                                       if not within_tolerance(a, b)]
    if not exact:
        why = next(r.tags[keys.TAG_REPRODUCIBLE] for r in (original, again)
                   if not reproducible(r))
        lines.append(f"not bit-reproducible ({why.removeprefix('no: ')}): final numbers "
                     f"are compared within max({ABS_TOLERANCE:g}, {REL_TOLERANCE:.0%} of the "
                     "value)")
    if failing:
        lines.append(f"metrics: {len(failing)} of {len(counted)} final numbers DIFFER"
                     + ("" if exact else " beyond the tolerance") + ": "
                     + ", ".join(n for n, _, _ in failing))
    elif differing:
        largest = max(differing, key=lambda row: abs(row[2] - row[1]))
        lines.append(f"metrics: within the tolerance ({len(differing)} of {len(counted)} "
                     f"final numbers differ, the most {largest[0]}: "
                     f"{abs(largest[2] - largest[1]):.3g})")
    else:
        lines.append(f"metrics: identical ({len(counted)} final numbers, bit for bit; measured "
                     f"times and latency left out: {', '.join(keys.MEASURED)})")
    lines.append(diff.curves_line())
    lines.append("data: " + ("DIFFERS for " + ", ".join(s for s, a, b in diff.data if a != b)
                             if diff.data_differs else "same digests"
                             if diff.data else "no digests recorded on the original"))
    if not original.environment:
        lines.append("environment: not recorded on the original")
    else:
        lines.append("environment: " + ("same" if not diff.environment else "differs in "
                                        + ", ".join(k for k, _, _ in diff.environment)))
    return diff, lines, failing
