"""The ``identical`` decision only between bit-reproducible runs: a no-op component whose
runs trained on CUDA with deterministic: false is not declared identical even where its
values happen to equal the baseline's (fixed and adaptive repeats, the report and the
runner's rule alike)."""

from __future__ import annotations

import numpy as np
import pytest

from ablate.inference import Decision, SequentialPlan, final_decision
from ablate.reporting import assemble, load_runs
from ablate.stores import resolve_stores
from ablate.testing.fixtures import StoreWriter, sqlite_store
from ablate.tracking import names as keys

BASE = np.array([0.50, 0.70, 0.30, 0.60, 0.40, 0.80])
NOISY = {keys.TAG_REPRODUCIBLE: "no: deterministic is false (cuDNN autotuning, atomic sums)"}
EXACT = {keys.TAG_REPRODUCIBLE: "same GPU model"}


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    uri = sqlite_store(tmp_path_factory.mktemp("gpu_noise"))
    for name, tags, report in (("exact", EXACT, None), ("noisy", NOISY, None),
                               ("margin", NOISY, {"equivalence_margin": 0.01})):
        writer = StoreWriter(uri, name, design="one_at_a_time", baseline="baseline",
                             components=["x"], report=report)
        trial = 0
        for seed, value in enumerate(BASE):
            for config in ("baseline", "+noop"):
                writer.trial(trial, {"val_iou": float(value)}, config=config, repeat=seed,
                             seed=seed, components={"x": config != "baseline"},
                             extra_tags=tags)
                trial += 1
    return resolve_stores(tracking_uri=uri)


def _decision(stores, name: str) -> str:
    study = load_runs(stores, name)
    report = assemble.build(study, settings=study.settings)
    section = next(s for s in report.sections if s.title == "Ablation table")
    return str(section.table.data.set_index("config").loc["+noop", "decision"])


def test_identical_only_between_bit_reproducible_runs(stores):
    assert _decision(stores, "exact") == "identical"
    assert _decision(stores, "noisy") == "undecided"
    assert _decision(stores, "margin") == "equivalent"  # GPU noise: what a margin is for


def test_the_sequential_rule_too():
    plan = SequentialPlan(3, 6, equivalence_margin=None)
    zeros = [0.0] * 3
    assert final_decision(zeros, plan).decision == Decision.IDENTICAL
    noisy = SequentialPlan(3, 6, exact=False)
    assert final_decision(zeros + [0.0] * 3, noisy).decision == Decision.UNDECIDED
    margin = SequentialPlan(3, 6, equivalence_margin=0.01, exact=False)
    assert final_decision(zeros, margin).decision == Decision.EQUIVALENT
