"""``ablate rerun --check`` on runs that are not bit-reproducible (CUDA with deterministic:
false): final numbers compared within a tolerance, bit for bit otherwise."""

from __future__ import annotations

from ablate.runs.rerun import ABS_TOLERANCE, check, reproducible, within_tolerance
from ablate.tracking import TrackedRun
from ablate.tracking import names as keys

NOISY = "no: deterministic is false (cuDNN autotuning, atomic sums)"


def _run(run_id: str, metrics: dict[str, float], reproducible_tag: str | None) -> TrackedRun:
    tags = {} if reproducible_tag is None else {keys.TAG_REPRODUCIBLE: reproducible_tag}
    return TrackedRun(run_id, run_id, "s", "FINISHED", tags=tags, metrics=metrics)


def test_exact_runs_must_agree_bit_for_bit():
    a = _run("a", {"val_iou": 0.5, "train_seconds": 10.0}, "same GPU model")
    b = _run("b", {"val_iou": 0.5000001, "train_seconds": 12.0}, "same GPU model")
    _, lines, failing = check(a, b)
    assert [n for n, _, _ in failing] == ["val_iou"]
    assert lines[0].startswith("metrics: 1 of 1 final numbers DIFFER: val_iou")
    # runs logged before the tag existed are held to the same rule
    assert reproducible(_run("c", {}, None)) and not reproducible(_run("d", {}, NOISY))


def test_noisy_runs_agree_within_the_tolerance_and_fail_beyond_it():
    a = _run("a", {"val_iou": 0.5, "val_loss": 1.0, "test_iou": 0.4}, "same GPU model")
    close = _run("b", {"val_iou": 0.504, "val_loss": 1.015, "test_iou": 0.4}, NOISY)
    _, lines, failing = check(a, close)
    assert failing == []
    assert lines[0].startswith("not bit-reproducible (deterministic is false")
    assert lines[1] == ("metrics: within the tolerance (2 of 3 final numbers differ, the most "
                        "val_loss: 0.015)")
    far = _run("c", {"val_iou": 0.5 + 2 * ABS_TOLERANCE, "val_loss": 1.0, "test_iou": 0.4},
               NOISY)
    _, lines, failing = check(a, far)
    assert [n for n, _, _ in failing] == ["val_iou"]
    assert "DIFFER beyond the tolerance: val_iou" in lines[1]


def test_tolerance_is_absolute_for_small_values_and_relative_for_large_ones():
    assert within_tolerance(0.1, 0.109) and not within_tolerance(0.1, 0.111)
    assert within_tolerance(100.0, 101.9) and not within_tolerance(100.0, 102.1)
    assert within_tolerance(float("nan"), float("nan"))
