"""Against real servers: PostgreSQL (Optuna storage, MLflow's database) and ``mlflow server``
over HTTP with proxied artifacts, as several machines would use them (tests/servers.py starts
both on 127.0.0.1; `make test` runs these too)."""

from __future__ import annotations

import subprocess
import time
from collections import Counter
from contextlib import closing

import optuna
import pandas as pd
import psycopg
import pytest
import yaml
from mlflow.tracking import MlflowClient
from optuna.trial import TrialState

from ablate.stores import resolve_stores
from ablate.study.storage import RUN_ID_ATTR
from ablate.tracking import fetch
from ablate.tracking import names as keys
from tests.conftest import spec_dict, unique_name
from tests.reporting.test_tables import write_oat
from tests.study.test_kill_anywhere import kill_spec
from tests.study.test_recovery import _ablate
from tests.study.test_scaleout import SMALL_DATA, configurations, sampled
from tests.study.test_summaries import check_readers_agree

pytestmark = pytest.mark.servers


def _ok(*args: object, env: dict | None = None, timeout: float = 600) -> str:
    proc = _ablate(*args, env_extra=env)
    output, _ = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, output
    return output


def test_report_sql_reader_on_postgres_equals_the_api_reader(pg_tracking, cli):
    name = unique_name("oat")
    write_oat(pg_tracking, name)
    stores = resolve_stores(tracking_uri=pg_tracking)
    sql = fetch(stores, name, "sql")
    fast = sql.set_index("run_id").sort_index()
    slow = fetch(stores, name, "mlflow").set_index("run_id").sort_index()
    assert set(fast.columns) == set(slow.columns)
    pd.testing.assert_frame_equal(fast, slow[fast.columns], check_dtype=False)
    pd.testing.assert_frame_equal(fetch(stores, name, "auto"), sql)  # auto reads SQL here
    texts = {}
    for reader in ("sql", "mlflow"):
        result = cli("report", name, "--tracking-uri", pg_tracking, "--reader", reader)
        assert result.exit_code == 0, result.output
        texts[reader] = result.output
    assert texts["sql"] == texts["mlflow"] and "## Ablation table" in texts["sql"]


def test_study_list_sql_reader_on_postgres_equals_optuna(pg_storage, tmp_path):
    check_readers_agree(resolve_stores(tmp_path / "store", storage=pg_storage))


def test_parallel_search_over_http_on_postgres(write_spec, pg_storage, mlflow_server, tmp_path):
    name = unique_name("par")
    path = write_spec(spec_dict(name=name, trials=6, data=SMALL_DATA))
    flags = ["--storage", pg_storage, "--tracking-uri", mlflow_server.url]
    assert "(6 trials planned)" in _ok("study", "create", path, *flags)
    output = _ok("study", "run", name, *flags, "--workers", "3",
                 env={"ABLATE_HEARTBEAT": "10"})
    assert len({w for w in ("[w0]", "[w1]", "[w2]") if w in output}) >= 2  # work was shared
    hint = f"report: ablate report {name} --storage {pg_storage} --tracking-uri " \
           f"{mlflow_server.url}"
    assert output.count(hint) == 4  # each worker's and the launcher's
    # The budget lock (an advisory lock) held: exactly the budget, and 6 distinct values,
    # the same as a study run alone.
    study = optuna.load_study(study_name=name, storage=pg_storage)
    assert [t.state for t in study.get_trials(deepcopy=False)] == [TrialState.COMPLETE] * 6
    found = configurations(study)
    assert len(set(found)) == 6 and set(found) == set(sampled(path, 6))

    client = MlflowClient(tracking_uri=mlflow_server.url)
    experiment = client.get_experiment_by_name(name)
    assert experiment.artifact_location.startswith("mlflow-artifacts:")
    runs = client.search_runs([experiment.experiment_id])
    parents = [r for r in runs if r.data.tags[keys.TAG_ROLE] == "parent"]
    trials = [r for r in runs if r.data.tags[keys.TAG_ROLE] == "trial"]
    assert len(parents) == 1 and len(trials) == 6
    assert {r.data.tags[keys.TAG_PARENT] for r in trials} == {parents[0].info.run_id}
    assert {r.info.status for r in trials} == {"FINISHED"}
    # artifacts come back through the server
    run = trials[0]
    local = client.download_artifacts(run.info.run_id, "config.yaml", str(tmp_path))
    config = yaml.safe_load(open(local))
    assert str(config["optim"]["lr"]) == run.data.params["optim.lr"]

    report = _ok("report", name, *flags)
    assert "trial-" in report and report.count("| trial-") >= 6


def _running_with_run(storage: str, study: str) -> list[int]:
    """Numbers of the study's RUNNING trials whose MLflow run exists (read-only SQL)."""
    query = """
        SELECT t.number FROM trials t JOIN studies s ON s.study_id = t.study_id
        WHERE s.study_name = %s AND t.state = 'RUNNING' AND EXISTS (
            SELECT 1 FROM trial_user_attributes a
            WHERE a.trial_id = t.trial_id AND a.key = %s)
    """
    try:
        with closing(psycopg.connect(storage.replace("+psycopg", ""))) as conn:
            return [n for (n,) in conn.execute(query, (study, RUN_ID_ATTR)).fetchall()]
    except psycopg.Error:
        return []


def _wait_for_trial(proc: subprocess.Popen, storage: str, study: str) -> None:
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if _running_with_run(storage, study):
            return
        if proc.poll() is not None:
            raise AssertionError(f"worker exited ({proc.returncode}):\n{proc.stdout.read()}")
        time.sleep(0.1)
    proc.kill()
    raise AssertionError("no trial started within 300 s")


def test_fixed_design_runs_once_when_a_worker_is_killed_on_postgres(
    write_spec, pg_storage, mlflow_server
):
    name = unique_name("kill")
    spec = spec_dict(name=name, optim={"epochs": 2}, data=SMALL_DATA,
                     design={"kind": "cumulative",
                             "components": ["augment.hflip", "augment.vflip"]})
    del spec["search"]
    flags = ["--storage", pg_storage, "--tracking-uri", mlflow_server.url]
    _ok("study", "create", write_spec(spec), *flags)
    env = {"ABLATE_HEARTBEAT": "2"}  # a dead worker's trial is re-queued after 6 s
    doomed = _ablate("study", "run", name, *flags, "--quiet", env_extra=env)
    _wait_for_trial(doomed, pg_storage, name)
    survivor = _ablate("study", "run", name, *flags, "--quiet", env_extra=env)
    time.sleep(0.5)
    doomed.kill()
    doomed.communicate()
    output, _ = survivor.communicate(timeout=600)
    assert survivor.returncode == 0, output

    trials = optuna.load_study(study_name=name, storage=pg_storage).get_trials(deepcopy=False)
    states = Counter(t.state for t in trials)
    assert states[TrialState.RUNNING] == states[TrialState.WAITING] == 0
    assert states[TrialState.FAIL] >= 1  # the killed attempt, re-run as a new trial
    complete = Counter(t.params["config"] for t in trials if t.state == TrialState.COMPLETE)
    assert complete == {"baseline": 1, "+hflip": 1, "+hflip+vflip": 1}

    client = MlflowClient(tracking_uri=mlflow_server.url)
    experiment = client.get_experiment_by_name(name).experiment_id
    runs = client.search_runs([experiment], f"tags.`{keys.TAG_ROLE}` = 'trial'")
    assert not [r for r in runs if r.info.status == "RUNNING"]
    done = Counter(r.data.tags[keys.TAG_CONFIG] for r in runs
                   if r.data.tags[keys.TAG_STATE] == "COMPLETE")
    assert done == complete
    killed = [r for r in runs if r.info.status == "KILLED"]
    assert killed and all(r.data.tags[keys.TAG_REASON] == "worker died" for r in killed)


def test_three_runs_of_one_spec_at_once_on_a_fresh_database(write_spec, pg_storage,
                                                            mlflow_server):
    # A fresh PostgreSQL database: the first opening creates Optuna's tables, the first
    # worker creates the study; the others wait for it (advisory locks) and join.
    name = unique_name("join")
    spec = kill_spec()
    spec.update(name=name)
    spec["design"]["components"] = ["augment.hflip", "augment.vflip", "augment.rot90"]
    spec["optim"]["epochs"] = 2
    path = write_spec(spec)
    flags = ["--storage", pg_storage, "--tracking-uri", mlflow_server.url, "--quiet"]
    procs = [_ablate("study", "run", path, *flags,
                     env_extra={"ABLATE_WORKER": f"w{i}", "ABLATE_HEARTBEAT": "10"})
             for i in range(3)]
    outputs = [proc.communicate(timeout=600)[0] for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0, 0], "\n".join(outputs)
    assert optuna.get_all_study_names(pg_storage) == [name]
    study = optuna.load_study(study_name=name, storage=pg_storage)
    done = [t.params["config"] for t in study.get_trials(deepcopy=False)
            if t.state == TrialState.COMPLETE]
    assert sorted(done) == ["baseline", "hflip", "rot90", "vflip"]  # each exactly once
    client = MlflowClient(tracking_uri=mlflow_server.url)
    runs = client.search_runs([client.get_experiment_by_name(name).experiment_id])
    roles = Counter(r.data.tags[keys.TAG_ROLE] for r in runs)
    assert roles == {"parent": 1, "trial": 4}
    worked = [i for i, text in enumerate(outputs) if f"[w{i}] trial" in text]
    assert len(worked) >= 2, outputs  # the trials were shared, not run by one process
