"""The trivial predictors' line under the ablation table: predicting the train split's majority
class everywhere (binary: also the positive class), scored on val from the tracked counts."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ablate.reporting import assemble, load_runs
from ablate.reporting.trivial import constant_matrix
from ablate.stores import resolve_stores
from ablate.testing.fixtures import StoreWriter, binary_metrics, sqlite_store
from ablate.tracking import Tracker
from tests.conftest import save_image, spec_dict

CLASSES = ["sky", "road", "Road sign"]


def _multiclass(split: str, labelled: list[int], right: list[int]) -> dict[str, float]:
    """Per-class count metrics of a split: ``labelled`` pixels per class, ``right`` of them
    predicted right (the rest of each class predicted as class 0, or 1 for class 0)."""
    out: dict[str, float] = {}
    fp = [0] * len(labelled)
    for c, (n, ok) in enumerate(zip(labelled, right, strict=True)):
        fp[1 if c == 0 else 0] += n - ok
    for c, name in enumerate(["sky", "road", "road_sign"]):
        out |= {f"{split}_tp_{name}": right[c], f"{split}_fn_{name}": labelled[c] - right[c],
                f"{split}_fp_{name}": fp[c]}
    return out


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    """A binary search (train majority: negative) and a multi-class design whose train
    majority (road) is not val's (sky), written with known counts."""
    folder = tmp_path_factory.mktemp("trivial")
    uri = sqlite_store(folder)
    binary = StoreWriter(uri, "bin", search={"optim.lr": "float"},
                         classes=["cell", "membrane"])
    for trial, (tp, fp, fn, tn) in enumerate([(90, 10, 30, 870), (60, 40, 60, 840)]):
        metrics = {**binary_metrics("train", 50, 10, 50, 890),
                   **binary_metrics("val", tp, fp, fn, tn)}
        binary.trial(trial, metrics, searched={"optim.lr": 0.01 / (trial + 1)})
    multi = StoreWriter(uri, "multi", task="multiclass", objective="val_miou",
                        classes=CLASSES, design="one_at_a_time", baseline="baseline",
                        components=["ce"])
    for trial, config in enumerate(["baseline", "+ce"]):
        metrics = {**_multiclass("train", [300, 600, 100], [300, 600, 100]),
                   **_multiclass("val", [500, 300, 200], [100, 100, 40 + 40 * trial]),
                   "val_miou": 0.05 + 0.01 * trial, "val_accuracy": 0.24 + 0.04 * trial}
        multi.trial(trial, metrics, config=config, repeat=0, seed=0,
                    components={"ce": config == "+ce"})
    return resolve_stores(folder)


def test_constant_matrix_puts_every_pixel_in_one_column():
    matrix = constant_matrix(np.array([5, 0, 7]), 2)
    assert matrix.tolist() == [[0, 0, 5], [0, 0, 0], [0, 0, 7]]


def test_binary_study_majority_and_all_positive_under_the_table(stores):
    report = assemble.build(load_runs(stores, "bin"))
    trivial = report.trivial
    assert trivial is not None and trivial["majority"] == "cell"
    assert trivial["config"] == "trial-000" and trivial["metrics"] == ["iou", "accuracy"]
    # val: 120 membrane and 880 cell pixels (tp + fn, tn + fp of either trial)
    majority, positive = trivial["constants"]
    assert majority["scores"] == {"iou": 0.0, "accuracy": pytest.approx(0.88)}
    assert positive["scores"] == {"iou": pytest.approx(0.12), "accuracy": pytest.approx(0.12)}
    assert "(all-positive)" in positive["label"]
    assert trivial["best"] == {"iou": pytest.approx(90 / 130), "accuracy": pytest.approx(0.96)}
    assert trivial["beaten"] is True
    ablation = report.sections[0]
    assert ablation.title == "Ablation table"
    line = ablation.notes[0]  # the first line under the table
    assert line.startswith("Trivial predictors on val")
    assert "the majority class `cell` everywhere: iou 0, accuracy 0.88" in line
    assert "`membrane` everywhere (all-positive): iou 0.12, accuracy 0.12" in line
    assert "iou 0.692, accuracy 0.96: above every trivial predictor" in line
    for fmt in ("md", "html"):
        assert "Trivial predictors on val" in assemble.render(report, fmt)
    document = json.loads(assemble.render(report, "json"))
    assert document["trivial"]["constants"][1]["scores"]["iou"] == pytest.approx(0.12)


def test_multiclass_majority_chosen_on_train_and_a_model_below_it(stores):
    report = assemble.build(load_runs(stores, "multi"))
    trivial = report.trivial
    # train's majority is road (600 of 1000); val holds 500 sky, 300 road, 200 sign pixels
    assert trivial is not None and trivial["majority"] == "road"
    (road,) = trivial["constants"]
    # road everywhere: road IoU 300 / 1000, sky and sign IoU 0 -> mIoU 0.1; accuracy 0.3
    assert road["scores"] == {"miou": pytest.approx(0.1), "accuracy": pytest.approx(0.3)}
    assert trivial["config"] == "+ce" and trivial["best"]["accuracy"] == pytest.approx(0.28)
    assert trivial["beaten"] is False
    line = report.sections[0].notes[0]
    assert "**not above every trivial predictor**" in line


def test_no_counts_no_line(tmp_path):
    uri = sqlite_store(tmp_path)
    StoreWriter(uri, "bare", search={"optim.lr": "float"}).trial(
        0, {"val_iou": 0.5}, searched={"optim.lr": 0.01})
    report = assemble.build(load_runs(resolve_stores(tmp_path), "bare"))
    assert report.trivial is None
    assert not any("Trivial" in note for note in report.sections[0].notes)


@pytest.mark.slow
def test_real_tiny_study_line_matches_the_masks(cli, store, tmp_path, write_spec):
    """A real study on files whose masks hold known pixel counts: the report's trivial scores
    are those counts' (val: 768 of 2048 pixels positive; train's majority is negative)."""
    rng = np.random.default_rng(0)
    rows = {"train": 8, "val": 12, "test": 4}  # positive rows of each 32 x 32 mask
    for split, count in {"train": 4, "val": 2, "test": 2}.items():
        for i in range(count):
            mask = np.zeros((32, 32), np.uint8)
            mask[: rows[split]] = 1
            save_image(tmp_path / "data" / split / "masks" / f"{i}.png", mask)
            save_image(tmp_path / "data" / split / "images" / f"{i}.png",
                       rng.integers(0, 255, (32, 32, 3), dtype=np.uint8))
    data = {"task": "binary", "class_names": ["back", "fore"], "root": str(tmp_path / "data"),
            "split_dirs": {s: {"images": f"{s}/images", "masks": f"{s}/masks"}
                           for s in rows},
            "batch_size": 2}
    spec = spec_dict()
    spec["data"] = data  # replaced whole: no synthetic data, no carved ratios
    result = cli("study", "run", write_spec(spec), "--store", store, "--quiet")
    assert result.exit_code == 0, result.output
    out = tmp_path / "report.json"
    assert cli("report", "tiny", "--store", store, "--format", "json", "--out",
               out).exit_code == 0
    trivial = json.loads(out.read_text())["trivial"]
    majority, positive = trivial["constants"]
    assert trivial["majority"] == "back"
    assert majority["scores"] == {"iou": 0.0, "accuracy": 1280 / 2048}
    assert positive["scores"] == {"iou": 768 / 2048, "accuracy": 768 / 2048}
    text = out.with_suffix(".md")
    assert cli("report", "tiny", "--store", store, "--out", text).exit_code == 0
    table, under = text.read_text().split("## Ablation table")[1].split("\n\n")[2:4]
    assert table.startswith("| config") and under.startswith("Trivial predictors on val")
    parent = Tracker(resolve_stores(store), write=False).find_parent("tiny")
    assert "Trivial predictors on val" in parent.data.tags["mlflow.note.content"]
