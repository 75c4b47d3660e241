"""Adaptive repeats stop at ``identical`` only between bit-reproducible trials: a trial
marked as not reproducible (CUDA, deterministic: false) gets more seeds instead."""

from __future__ import annotations

from ablate.inference import SequentialPlan
from ablate.study.adaptive import Entry, Seeds, wanted


def _seeds(exact: bool) -> dict[str, Seeds]:
    values = {0: 0.5, 1: 0.6, 2: 0.7}
    return {label: Seeds(dict(values), set(values), set(), exact=exact)
            for label in ("baseline", "+noop")}


def test_equal_values_of_noisy_trials_want_more_seeds():
    plan = SequentialPlan(3, 6)
    pairs = [("+noop", "baseline")]
    assert wanted(pairs, _seeds(exact=True), plan)[0] == set()  # identical: done
    add, why = wanted(pairs, _seeds(exact=False), plan)
    assert add == {Entry("+noop", 3), Entry("baseline", 3)}
    assert "undecided after 3 seed(s)" in why["+noop"]
