"""Scaling out without servers: distinct samples in parallel, reproducible ones alone, threads
per worker, the planned budget and the hints that name the stores in use."""

from __future__ import annotations

import re
from pathlib import Path

import optuna
import pytest

from ablate.spec import load_spec
from ablate.stores import resolve_stores
from ablate.study.samplers import build_sampler
from ablate.study.search import suggest
from ablate.study.workers import available_cores, threads_per_worker
from tests.conftest import spec_dict
from tests.study.test_recovery import _ablate, _study

pytestmark = pytest.mark.slow  # trains, or starts processes or servers

SMALL_DATA = {"synthetic": {"num_images": 8, "channels": 3, "size": 32, "seed": 1}}


def sampled(spec_path: Path, trials: int) -> list[tuple]:
    """The searched values of trials 0..trials-1 of a study run alone (an in-memory study
    with the spec's own sampler; nothing is trained)."""
    spec = load_spec(spec_path)
    study = optuna.create_study(sampler=build_sampler(spec.sampler, spec.search, spec.seed))
    study.optimize(lambda t: len(suggest(t, spec.search)), n_trials=trials)
    return [tuple(sorted(t.params.items())) for t in study.trials]


def configurations(study: optuna.Study) -> list[tuple]:
    return [tuple(sorted(t.params.items())) for t in study.get_trials(deepcopy=False)
            if t.state == optuna.trial.TrialState.COMPLETE]


@pytest.mark.parametrize("sampler", [{"name": "random", "seed": 0},
                                     {"name": "tpe", "seed": 0, "n_startup_trials": 3}])
def test_a_seed_gives_the_same_values_and_another_seed_others(write_spec, sampler):
    first = sampled(write_spec(spec_dict(sampler=sampler)), 8)
    assert sampled(write_spec(spec_dict(sampler=sampler)), 8) == first
    assert len(set(first)) == 8
    other = sampled(write_spec(spec_dict(sampler={**sampler, "seed": 1})), 8)
    assert not set(other) & set(first)


def test_single_worker_study_is_reproducible_from_its_seed(write_spec, store):
    # The run's values are those the seed gives any study of this spec (the test above shows
    # that those repeat), so running the same spec again gives them again.
    path = write_spec(spec_dict(trials=2, data=SMALL_DATA))
    proc = _ablate("study", "run", path, "--store", store, "--quiet")
    output, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, output
    assert configurations(_study(store)) == sampled(path, 2)


def test_three_workers_draw_six_distinct_configurations_on_sqlite(write_spec, store):
    path = write_spec(spec_dict(trials=6, data=SMALL_DATA))
    proc = _ablate("study", "run", path, "--store", store, "--workers", "3",
                   env_extra={"ABLATE_HEARTBEAT": "10"})
    output, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, output
    found = configurations(_study(store))
    assert len(found) == 6 and len(set(found)) == 6
    # trial i has the values of trial i of a study run alone: as many workers, same values
    assert set(found) == set(sampled(path, 6))
    split = re.search(r"3 worker\(s\) x (\d+) torch thread\(s\) on (\d+) core", output)
    assert split and int(split.group(1)) == max(1, available_cores() // 3)
    assert "torch thread(s) in this worker" in output
    assert f"report: ablate report tiny --store {store}" in output


def test_threads_per_worker_share_the_cores_unless_given():
    cores = available_cores()
    assert threads_per_worker(1) == cores
    assert threads_per_worker(cores + 1) == 1
    assert threads_per_worker(4, threads=3) == 3


def test_study_create_prints_the_planned_trials_of_a_factorial(cli, write_spec, store):
    spec = spec_dict(design={"kind": "factorial", "components": [
        "augment.hflip", "augment.vflip", "augment.rot90", "augment.blur"]})
    del spec["search"]
    result = cli("study", "create", write_spec(spec), "--store", store)
    assert result.exit_code == 0, result.output
    assert "(16 trials planned)" in result.output


def test_hints_name_the_stores_in_use(cli, write_spec, tmp_path, monkeypatch):
    storage = f"sqlite:///{tmp_path / 'elsewhere' / 'optuna.db'}"
    tracking = f"sqlite:///{tmp_path / 'tracking' / 'mlflow.db'}"
    result = cli("study", "create", write_spec(), "--storage", storage, "--tracking-uri",
                 tracking)
    assert result.exit_code == 0, result.output
    assert f"run it: ablate study run tiny --storage {storage} --tracking-uri {tracking}" in \
        result.output
    stores = resolve_stores(tmp_path / "s", None, "http://user:secret@mlflow:5000")
    assert stores.flags() == f" --store {tmp_path / 's'} --tracking-uri " \
        "'http://user:***@mlflow:5000'"
    assert stores.flags(storage=False) == " --tracking-uri 'http://user:***@mlflow:5000'"
    assert resolve_stores(Path("ablate_store")).flags() == ""
    # a store the environment gives is found again by the same command in that environment
    monkeypatch.setenv("ABLATE_STORAGE", "postgresql://u:pw@db/optuna")
    assert resolve_stores(None, None, "http://mlflow:5000").flags() == \
        " --tracking-uri http://mlflow:5000"


def test_report_reader_sql_over_http_is_one_line(cli):
    result = cli("report", "tiny", "--tracking-uri", "http://127.0.0.1:9", "--reader", "sql")
    assert result.exit_code == 2
    assert result.output.count("\n") == 1 and "--reader sql" in result.output


def test_report_accepts_storage(cli, write_spec, store, tmp_path):
    result = cli("report", "tiny", "--store", store, "--storage",
                 f"sqlite:///{tmp_path / 'optuna.db'}")
    assert result.exit_code == 2 and "no MLflow experiment named 'tiny'" in result.output
