"""Creating a study with a large fixed design: its whole queue in one transaction vs one
``Study.enqueue_trial`` call per configuration x seed (what `ablate study create` did before).

    .venv/bin/python benchmarks/enqueue.py              # factorial, 8 components x 3 seeds = 768
    .venv/bin/python benchmarks/enqueue.py --repeats 5

Both ways write the same rows into a fresh temporary SQLite file (WAL mode, as ablate opens
it); timings exclude opening the storage (table creation), include the study row, its stored
spec and the queue. Also timed: appending the same entries to an existing study with
``queue_once`` (the adaptive-repeats path), and the no-op call that finds them all queued.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import optuna

from ablate.spec import spec_from_dict
from ablate.stores import resolve_stores
from ablate.study import rdb
from ablate.study.queue import as_queued, design_entries, queue_once
from ablate.study.storage import CONFIG_PARAM, REPEAT_ATTR, SPEC_ATTR, open_storage


def factorial_spec(components: int, repeats: int):  # noqa: ANN201 - a StudySpec
    return spec_from_dict({
        "name": "bench",
        "data": {"task": "binary", "synthetic": {"num_images": 8, "size": 16}},
        "design": {"kind": "factorial", "repeats": repeats,
                   "components": [{"name": f"c{i}", "set": {"optim.weight_decay": 1e-4 * i}}
                                  for i in range(components)]},
    })


def one_by_one(storage: optuna.storages.RDBStorage, spec) -> None:  # noqa: ANN001
    study = optuna.create_study(study_name=spec.name, storage=storage,
                                directions=spec.directions)
    study.set_user_attr(SPEC_ATTR, spec.model_dump(mode="json"))
    for entry in design_entries(spec):
        study.enqueue_trial({CONFIG_PARAM: entry.label}, user_attrs={REPEAT_ATTR: entry.repeat})


def one_transaction(storage: optuna.storages.RDBStorage, spec) -> None:  # noqa: ANN001
    rdb.create_study(storage, spec.name, spec.directions,
                     {SPEC_ATTR: spec.model_dump(mode="json")},
                     as_queued(design_entries(spec)))


def timed(fn, spec) -> float:  # noqa: ANN001
    with tempfile.TemporaryDirectory() as tmp:
        storage = open_storage(resolve_stores(Path(tmp)), write=True)
        start = time.perf_counter()
        fn(storage, spec)
        elapsed = time.perf_counter() - start
        study = optuna.load_study(study_name=spec.name, storage=storage)
        assert len(study.get_trials(deepcopy=False)) == len(design_entries(spec))
        storage.engine.dispose()
    return elapsed


def appended(spec) -> tuple[float, float]:  # noqa: ANN001
    with tempfile.TemporaryDirectory() as tmp:
        storage = open_storage(resolve_stores(Path(tmp)), write=True)
        rdb.create_study(storage, spec.name, spec.directions, {}, [])
        study = optuna.load_study(study_name=spec.name, storage=storage)
        start = time.perf_counter()
        queue_once(study, storage, design_entries(spec))
        first = time.perf_counter() - start
        start = time.perf_counter()
        assert not queue_once(study, storage, design_entries(spec))
        again = time.perf_counter() - start
        storage.engine.dispose()
    return first, again


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--components", type=int, default=8)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of each way")
    args = parser.parse_args()
    spec = factorial_spec(args.components, args.seeds)
    count = len(design_entries(spec))
    new = [timed(one_transaction, spec) for _ in range(args.repeats)]
    old = [timed(one_by_one, spec) for _ in range(args.repeats)]
    added = [appended(spec) for _ in range(args.repeats)]
    print(f"{count} configurations x seeds queued on SQLite (median of {args.repeats}):")
    print(f"  one enqueue_trial per entry (before):   {statistics.median(old):7.3f} s")
    print(f"  study + spec + queue, one transaction:  {statistics.median(new):7.3f} s")
    print(f"  ratio: {statistics.median(old) / statistics.median(new):.0f}x faster")
    print(f"  queue_once on an existing study:        "
          f"{statistics.median(a for a, _ in added):7.3f} s "
          f"(again, nothing to add: {statistics.median(b for _, b in added):.3f} s)")


if __name__ == "__main__":
    main()
