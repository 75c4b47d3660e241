"""The store fixtures write what a study writes: the same tags on the parent and on a trial run
as the real writer gives them (so a change to the writer reaches the report's tests too)."""

from __future__ import annotations

import json

from mlflow.tracking import MlflowClient

from ablate.spec import load_spec
from ablate.stores import resolve_stores
from ablate.testing.fixtures import StoreWriter
from ablate.tracking import Tracker
from ablate.tracking import names as keys
from tests.conftest import spec_dict

# what only a study started from a spec file carries: its source, path, description and note
FROM_THE_SPEC = {keys.TAG_SOURCE_NAME, keys.TAG_SOURCE_TYPE, keys.TAG_SPEC_PATH,
                 keys.TAG_SPEC_DESCRIPTION, keys.TAG_NOTE}
# ids that differ between two studies by nature
OWN = {keys.TAG_STUDY, keys.TAG_PARENT}


def _tags(client: MlflowClient, run_id: str) -> dict[str, str]:
    tags = client.get_run(run_id).data.tags
    return {k: v for k, v in tags.items()
            if k not in FROM_THE_SPEC and not k.startswith("mlflow.")}


def test_fixture_runs_carry_the_tags_a_study_writes(store, write_spec):
    raw = spec_dict(design={"kind": "one_at_a_time", "components": ["augment.hflip"]})
    del raw["search"]
    spec = load_spec(write_spec(raw))
    stores = resolve_stores(store=store)
    tracker = Tracker(stores)
    parent = tracker.parent_run(spec, "baseline")
    extra = {keys.TAG_CONFIG: "hflip", keys.TAG_REPEAT: "1",
             keys.TAG_COMPONENTS: json.dumps({"hflip": True})}
    real = tracker.start_run(spec.name, spec.resolve({"augment.hflip": True}), role="trial",
                             name="trial-001", parent_id=parent, trial=1, extra_tags=extra)

    objective = spec.objective
    writer = StoreWriter(
        stores.tracking_uri, "fixture", task=spec.data.task, objective=objective.metric,
        direction=objective.direction, design="one_at_a_time", search={},
        classes=spec.data.names, baseline="baseline", components=["hflip"],
        objectives=[objective.model_dump()], thresholds=spec.eval.thresholds,
        report=spec.report.model_dump(mode="json"), repeats=1)
    made = writer.trial(1, {"val_iou": 0.5}, state="RUNNING", config="hflip", repeat=1,
                        seed=spec.seed, components={"hflip": True})

    client = MlflowClient(stores.tracking_uri)
    for real_id, fixture_id in ((parent, writer.parent_id), (real.run_id, made)):
        expected, written = _tags(client, real_id), _tags(client, fixture_id)
        assert set(written) == set(expected)
        assert {k: v for k, v in written.items() if k not in OWN} == \
            {k: v for k, v in expected.items() if k not in OWN}
    # the Y/N tag of each component, which the hand-built fixtures lacked
    assert _tags(client, made)[keys.COMPONENT_PREFIX + "hflip"] == "Y"


def test_a_finished_fixture_run_ends_as_the_writer_ends_runs(store):
    stores = resolve_stores(store=store)
    writer = StoreWriter(stores.tracking_uri, "ends")
    failed = writer.trial(0, {}, state="FAIL", reason="out of memory at batch size 4")
    done = writer.trial(1, {"val_iou": 0.4}, epochs=[{"val_iou": 0.3}, {"val_iou": 0.4}])
    client = MlflowClient(stores.tracking_uri)
    run = client.get_run(failed)
    assert run.info.status == "FAILED" and run.data.tags[keys.TAG_STATE] == "FAIL"
    assert run.data.tags[keys.TAG_REASON] == "out of memory at batch size 4"
    assert client.get_run(done).info.status == "FINISHED"
    curve = client.get_metric_history(done, keys.epoch_key("val_iou"))
    assert [m.step for m in curve] == [1, 2]  # epochs count from 1, as a trial logs them
