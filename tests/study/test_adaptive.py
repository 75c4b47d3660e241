"""Adaptive repeats: which seeds the rule queues (from results alone, each once), and a tiny
synthetic study run by two workers: noop identical, frozen worse, no (config, seed) twice."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import optuna
import pytest
from optuna.distributions import CategoricalDistribution
from optuna.trial import TrialState, create_trial

from ablate.inference import SequentialPlan
from ablate.metrics.scores import matrix_scores
from ablate.spec import spec_from_dict
from ablate.study.adaptive import Seeds, plan_for, top_up, wanted
from ablate.study.storage import CONFIG_PARAM, REPEAT_ATTR
from ablate.tracking import names as keys
from ablate.training.result import ImageCounts
from tests.conftest import spec_dict
from tests.study.test_recovery import _ablate, _study, _trial_runs

PLAN = SequentialPlan(3, 10, rows=2)
PAIRS = [("noop", "baseline"), ("frozen", "baseline")]
BASE = [0.70, 0.50, 0.49, 0.66, 0.61, 0.58, 0.62, 0.55, 0.68, 0.52]
NOISE = [0.05, -0.04, 0.03, -0.05, 0.02, 0.04, -0.03, 0.05, -0.02, 0.01]  # undecidable row
FROZEN = [b + d for b, d in zip(BASE, [-0.41, -0.36, -0.12], strict=False)]  # worse, unsure


def _seeds(values, pending=(), tried=None) -> Seeds:
    done = dict(enumerate(values)) if isinstance(values, list) else dict(values)
    return Seeds(done, set(tried if tried is not None else done) | set(pending), set(pending))


def test_only_undecided_rows_get_a_seed_and_the_reference_with_them():
    seeds = {"baseline": _seeds(BASE[:3]), "noop": _seeds(BASE[:3]),
             "frozen": _seeds(FROZEN)}
    add, why = wanted(PAIRS, seeds, PLAN)
    assert add == {("frozen", 3), ("baseline", 3)}  # noop is identical: decided
    assert "frozen vs baseline undecided after 3 seed(s)" in why["frozen"]
    # the reference already has seed 3 (another row asked): only the row's own is missing
    seeds["baseline"] = _seeds(BASE[:4])
    assert wanted(PAIRS, seeds, PLAN)[0] == {("frozen", 3)}


def test_a_look_waits_for_every_seed_tried_so_far():
    frozen = FROZEN
    running = {"baseline": _seeds(BASE[:3]), "frozen": _seeds(frozen, pending=[3])}
    assert wanted(PAIRS[1:], running, PLAN)[0] == set()
    reference_running = {"baseline": _seeds(BASE[:3], pending=[3]),
                         "frozen": _seeds(frozen + [0.2])}
    assert wanted(PAIRS[1:], reference_running, PLAN)[0] == set()


def test_unpaired_seeds_are_paired_before_the_next_look():
    # a queueing cut short: the row has seed 3, the reference none; or a cumulative
    # predecessor that got seed 3 as another row's reference
    seeds = {"baseline": _seeds(BASE[:3]),
             "noisy": _seeds([b + e for b, e in zip(BASE[:4], NOISE, strict=False)])}
    assert wanted([("noisy", "baseline")], seeds, PLAN)[0] == {("baseline", 3)}
    # a decided comparison needs no more of its reference's seeds
    decided = {"baseline": _seeds(BASE[:3]), "same": _seeds(BASE[:3] + [0.9])}
    assert wanted([("same", "baseline")], decided, PLAN)[0] == set()


def test_rows_stop_at_max_and_failed_runs_are_made_up_for():
    noisy = [b + e for b, e in zip(BASE, NOISE, strict=True)]
    at_max = {"baseline": _seeds(BASE), "noisy": _seeds(noisy)}
    assert wanted([("noisy", "baseline")], at_max, PLAN)[0] == set()
    # seed 1 failed (tried, no value): 2 differences, below min, so seed 3 is wanted
    failed = {"baseline": _seeds(BASE[:3]),
              "noisy": _seeds({0: noisy[0], 2: noisy[2]}, tried=[0, 1, 2])}
    assert wanted([("noisy", "baseline")], failed, PLAN)[0] == {("noisy", 3), ("baseline", 3)}


def _adaptive_spec(**report):
    spec = spec_dict(design={"kind": "one_at_a_time", "repeats": {"min": 3, "max": 10},
                             "components": [{"name": "noop", "set": {"eval.gallery": 1}},
                                            {"name": "frozen", "set": {"optim.lr": 1e-7}}]},
                     report=report or {"alpha": 0.05})
    del spec["search"]
    return spec


def test_top_up_queues_each_entry_once_from_the_storage(tmp_path):
    spec = spec_from_dict(_adaptive_spec())
    plan = plan_for(spec)
    assert (plan.min_n, plan.max_n, plan.rows, plan.alpha) == (3, 10, 2, 0.05)
    storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 'optuna.db'}")
    study = optuna.create_study(storage=storage)
    labels = ["baseline", "noop", "frozen"]
    for label, values in (("baseline", BASE[:3]), ("noop", BASE[:3]),
                          ("frozen", FROZEN)):
        for repeat, value in enumerate(values):
            study.add_trial(create_trial(
                state=TrialState.COMPLETE, value=value, params={CONFIG_PARAM: label},
                distributions={CONFIG_PARAM: CategoricalDistribution(labels)},
                user_attrs={REPEAT_ATTR: repeat}))
    lines: list[str] = []
    assert top_up(study, storage, spec, lines.append) == [("baseline", 3), ("frozen", 3)]
    assert "queued baseline seed 3, frozen seed 3" in lines[0]
    waiting = study.get_trials(states=(TrialState.WAITING,))
    assert sorted((t.system_attrs["fixed_params"][CONFIG_PARAM], t.user_attrs[REPEAT_ATTR])
                  for t in waiting) == [("baseline", 3), ("frozen", 3)]
    assert top_up(study, storage, spec) == []  # deciding again (e.g. after a kill) queues nothing
    fixed = spec_from_dict({**_adaptive_spec(), "design": {**_adaptive_spec()["design"],
                                                           "repeats": 3}})
    assert top_up(study, storage, fixed) == []  # fixed repeats: never


# --- a tiny synthetic study, two workers ---------------------------------------------------

TINY = {"custom": "tests.custom_models:TinyUNet", "width": 8}


@pytest.fixture(scope="module")
def adaptive_store(tmp_path_factory):
    """baseline / noop (eval.gallery: untouched training) / frozen (lr 1e-7) with repeats
    {min: 3, max: 10}, run by two worker processes sharing the store."""
    import yaml

    folder = tmp_path_factory.mktemp("adaptive")
    spec = _adaptive_spec()
    spec.update(model=TINY, loss={"weights": {"bce": 1.0}},
                optim={"lr": 0.01, "epochs": 2}, eval={"gallery": 2, "latency_repeats": 0})
    spec["data"].update(synthetic={"num_images": 24, "channels": 3, "size": 32, "seed": 1},
                        batch_size=4)
    path = folder / "adaptive.yaml"
    path.write_text(yaml.safe_dump(spec))
    store = folder / "store"
    create = _ablate("study", "create", path, "--store", store)
    assert create.wait(timeout=300) == 0, create.stdout.read()
    workers = [_ablate("study", "run", "tiny", "--store", store, "--quiet",
                       env_extra={"ABLATE_WORKER": f"w{i}"}) for i in range(2)]
    outputs = [w.communicate(timeout=900)[0] for w in workers]
    assert all(w.returncode == 0 for w in workers), outputs
    return store, outputs


@pytest.mark.slow
def test_two_workers_never_train_a_configuration_seed_twice(adaptive_store):
    store, outputs = adaptive_store
    assert all("COMPLETE" in out for out in outputs)  # both workers trained
    assert any("adaptive repeats: queued" in out for out in outputs)
    trials = _study(store).get_trials(deepcopy=False)
    assert {t.state for t in trials} == {TrialState.COMPLETE}
    entries = Counter((t.params[CONFIG_PARAM], t.user_attrs[REPEAT_ATTR]) for t in trials)
    assert max(entries.values()) == 1
    runs = _trial_runs(store)
    seeds = Counter((r.data.tags[keys.TAG_CONFIG], r.data.tags[keys.TAG_SEED]) for r in runs)
    assert max(seeds.values()) == 1 and len(runs) == len(trials)
    by_config = {c: sorted(int(s) for cc, s in seeds if cc == c) for c, _ in seeds}
    assert by_config["noop"] == [0, 1, 2]  # identical at the first look: no more seeds
    assert 3 < len(by_config["frozen"]) <= 10
    assert by_config["baseline"] == by_config["frozen"]  # the reference at every seed needed


@pytest.mark.slow
def test_report_says_identical_for_noop_and_worse_for_frozen(adaptive_store, cli):
    store, _ = adaptive_store
    result = cli("report", "tiny", "--store", store, "--format", "json")
    assert result.exit_code == 0, result.output
    rows = {r["config"]: r for r in json.loads(result.output)["tables"]["ablation"]["rows"]}
    assert rows["noop"]["decision"] == "identical"
    assert rows["frozen"]["decision"] == "worse" and rows["frozen"]["ci_high"] < 0
    assert rows["frozen"]["p_better"] == 0.0
    markdown = cli("report", "tiny", "--store", store)
    assert "| identical" in markdown.output and "| worse" in markdown.output
    assert "group-sequential paired t test" in markdown.output


@pytest.mark.slow
def test_runs_log_per_image_counts_summing_to_the_split_counts(adaptive_store):
    store, _ = adaptive_store
    run = _trial_runs(store)[0]
    folder = store / "artifacts" / "tiny" / run.info.run_id / "artifacts"
    counts = ImageCounts.from_npz((folder / keys.IMAGE_COUNTS_ARTIFACT).read_bytes())
    matrices = json.loads((folder / keys.MATRICES_ARTIFACT).read_text())  # the split counts
    assert set(counts.counts) == {"val", "test"} and counts.classes == ["foreground"]
    for split in ("val", "test"):
        total = counts.counts[split].sum(axis=0)[0]
        scores = matrix_scores(np.asarray(matrices[split]), "binary", ["foreground"])
        logged = [scores[c] for c in ("tp", "fp", "fn", "tn")]
        assert total.tolist() == logged
        assert len(counts.names[split]) == counts.counts[split].shape[0] == 6
        assert np.all(counts.counts[split] >= 0)
