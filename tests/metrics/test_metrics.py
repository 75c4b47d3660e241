"""ablate.metrics against torchmetrics and against numbers computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torchmetrics.classification import (
    BinaryAccuracy,
    BinaryConfusionMatrix,
    BinaryF1Score,
    BinaryJaccardIndex,
    BinaryPrecision,
    BinaryRecall,
    BinarySpecificity,
    MulticlassConfusionMatrix,
    MulticlassF1Score,
    MulticlassJaccardIndex,
)

from ablate.metrics.counts import ConfusionMatrix, compute_metrics, predict

NAMES = ["Background", "road", "Car (parked)", "sky", "tree"]
KEYS = ["background", "road", "car_parked", "sky", "tree"]


def _batches(num_classes: int, ignore_index: int | None, n: int = 4, seed: int = 0):
    """Random (pred, target) batches; some target pixels set to ignore_index."""
    g = torch.Generator().manual_seed(seed)
    for _ in range(n):
        target = torch.randint(0, num_classes, (3, 17, 13), generator=g)
        pred = torch.randint(0, num_classes, (3, 17, 13), generator=g)
        # Predictions that agree with the target more often than chance, so IoUs differ.
        agree = torch.rand(target.shape, generator=g) < 0.4
        pred = torch.where(agree, target, pred)
        if ignore_index is not None:
            target[torch.rand(target.shape, generator=g) < 0.2] = ignore_index
        yield pred, target


@pytest.mark.parametrize("ignore_index", [None, 255, 2])
def test_matrix_and_scores_match_torchmetrics(ignore_index: int | None) -> None:
    c = len(NAMES)
    ours = ConfusionMatrix(c, ignore_index=ignore_index)
    tm_cm = MulticlassConfusionMatrix(c, ignore_index=ignore_index)
    tm_iou = MulticlassJaccardIndex(c, average=None, ignore_index=ignore_index)
    tm_miou = MulticlassJaccardIndex(c, average="macro", ignore_index=ignore_index)
    tm_f1 = MulticlassF1Score(c, average=None, ignore_index=ignore_index, multidim_average="global")
    for pred, target in _batches(c, ignore_index):
        ours.update(pred, target)
        for metric in (tm_cm, tm_iou, tm_miou, tm_f1):
            metric.update(pred, target)

    assert ours.matrix.dtype == torch.int64
    assert torch.equal(ours.matrix, tm_cm.compute().long())
    if ignore_index == 2:  # an in-range ignore_index never appears as a target
        assert ours.matrix[2].sum() == 0

    m = compute_metrics(ours.matrix, "multiclass", NAMES, ignore_index=ignore_index)
    iou, f1 = tm_iou.compute(), tm_f1.compute()
    for c_id, key in enumerate(KEYS):
        if c_id == ignore_index:
            assert math.isnan(m[f"iou_{key}"]) and math.isnan(m[f"f1_{key}"])
            continue
        assert m[f"iou_{key}"] == pytest.approx(iou[c_id].item(), rel=1e-6)
        assert m[f"f1_{key}"] == pytest.approx(f1[c_id].item(), rel=1e-6)
    assert m["miou"] == pytest.approx(tm_miou.compute().item(), rel=1e-6)
    matrix = ours.matrix.numpy()
    assert m["accuracy"] == pytest.approx(np.trace(matrix) / matrix.sum())


def test_absent_class_is_left_out_of_the_mean() -> None:
    # Class 3 never occurs in target or prediction: its IoU is undefined, not 0 or 1.
    target = torch.tensor([[[0, 0, 1, 1, 2, 2]]])
    pred = torch.tensor([[[0, 1, 1, 1, 2, 0]]])
    cm = ConfusionMatrix(4)
    cm.update(pred, target)
    m = compute_metrics(cm.matrix, "multiclass", ["a", "b", "c", "d"])

    iou_a, iou_b, iou_c = 1 / 3, 2 / 3, 1 / 2  # tp / (tp + fp + fn), by hand
    assert m["iou_a"] == pytest.approx(iou_a)
    assert m["iou_b"] == pytest.approx(iou_b)
    assert m["iou_c"] == pytest.approx(iou_c)
    assert math.isnan(m["iou_d"]) and math.isnan(m["f1_d"])
    assert m["miou"] == pytest.approx((iou_a + iou_b + iou_c) / 3)
    f1_a, f1_b, f1_c = 2 / 4, 4 / 5, 2 / 3
    assert m["mf1"] == pytest.approx((f1_a + f1_b + f1_c) / 3)

    # torchmetrics 1.9 also drops absent classes from the macro mean (its per-class value is 0).
    tm_macro = MulticlassJaccardIndex(4, average="macro")(pred, target)
    tm_none = MulticlassJaccardIndex(4, average=None)(pred, target)
    assert m["miou"] == pytest.approx(tm_macro.item())
    assert tm_none[3].item() == 0.0


def test_class_only_predicted_is_present_and_scores_zero() -> None:
    target = torch.tensor([[[0, 0, 1, 1]]])
    pred = torch.tensor([[[0, 2, 1, 1]]])  # class 2 is predicted but never a target
    m = compute_metrics(torch.bincount(target.flatten() * 3 + pred.flatten(), minlength=9)
                        .reshape(3, 3), "multiclass", ["a", "b", "c"])
    assert m["iou_c"] == 0.0
    assert m["miou"] == pytest.approx((1 / 2 + 1 + 0) / 3)


def test_hand_computed_multiclass_example() -> None:
    matrix = np.array(
        [
            [5, 1, 0],  # target 0
            [2, 3, 1],  # target 1
            [0, 0, 4],  # target 2
        ]
    )
    m = compute_metrics(matrix, "multiclass", ["x", "y", "z"])
    # class x: tp 5, fp 2, fn 1; class y: tp 3, fp 1, fn 3; class z: tp 4, fp 1, fn 0
    assert (m["tp_x"], m["fp_x"], m["fn_x"]) == (5.0, 2.0, 1.0)
    assert (m["tp_y"], m["fp_y"], m["fn_y"]) == (3.0, 1.0, 3.0)
    assert (m["tp_z"], m["fp_z"], m["fn_z"]) == (4.0, 1.0, 0.0)
    assert m["iou_x"] == pytest.approx(5 / 8)
    assert m["iou_y"] == pytest.approx(3 / 7)
    assert m["iou_z"] == pytest.approx(4 / 5)
    assert m["f1_y"] == pytest.approx(6 / 10)
    assert m["miou"] == pytest.approx((5 / 8 + 3 / 7 + 4 / 5) / 3)
    assert m["mf1"] == pytest.approx((10 / 13 + 6 / 10 + 8 / 9) / 3)
    assert m["accuracy"] == pytest.approx(12 / 16)
    # Totals over classes; tn_c = total - tp_c - fp_c - fn_c = 8, 9, 11.
    assert (m["tp"], m["fp"], m["fn"], m["tn"]) == (12.0, 4.0, 4.0, 28.0)


def test_hand_computed_binary_example_and_nan_for_zero_denominators() -> None:
    target = torch.tensor([[[1, 1, 1, 0, 0, 0, 0, 255]]])
    pred = torch.tensor([[[1, 1, 0, 1, 0, 0, 0, 1]]])
    cm = ConfusionMatrix(2, ignore_index=255)
    cm.update(pred, target)
    m = compute_metrics(cm.matrix, "binary", ["bg", "fg"])
    assert (m["tp"], m["fp"], m["fn"], m["tn"]) == (2.0, 1.0, 1.0, 3.0)
    assert m["iou"] == pytest.approx(2 / 4)
    assert m["f1"] == pytest.approx(4 / 6)
    assert m["precision"] == pytest.approx(2 / 3)
    assert m["recall"] == pytest.approx(2 / 3)
    assert m["specificity"] == pytest.approx(3 / 4)
    assert m["accuracy"] == pytest.approx(5 / 7)

    # No positive anywhere: iou, f1, precision, recall have no denominator -> NaN, not 0 or 1.
    empty = compute_metrics(np.array([[10, 0], [0, 0]]), "binary", ["bg", "fg"])
    for key in ("iou", "f1", "precision", "recall"):
        assert math.isnan(empty[key])
    assert empty["specificity"] == 1.0 and empty["accuracy"] == 1.0


@pytest.mark.parametrize("ignore_index", [None, 255])
def test_binary_matches_torchmetrics(ignore_index: int | None) -> None:
    threshold = 0.3
    ours = ConfusionMatrix(2, ignore_index=ignore_index)
    kw = {"threshold": threshold, "ignore_index": ignore_index}
    tm = {
        "cm": BinaryConfusionMatrix(**kw),
        "iou": BinaryJaccardIndex(**kw),
        "f1": BinaryF1Score(**kw),
        "precision": BinaryPrecision(**kw),
        "recall": BinaryRecall(**kw),
        "specificity": BinarySpecificity(**kw),
        "accuracy": BinaryAccuracy(**kw),
    }
    g = torch.Generator().manual_seed(1)
    for _ in range(3):
        logits = torch.randn(2, 1, 16, 16, generator=g) * 3
        target = (torch.rand(2, 16, 16, generator=g) < 0.3).long()
        if ignore_index is not None:
            target[torch.rand(target.shape, generator=g) < 0.1] = ignore_index
        ours.update(predict(logits, "binary", threshold), target)
        for metric in tm.values():
            metric.update(logits[:, 0], target)  # torchmetrics applies the sigmoid itself

    assert torch.equal(ours.matrix, tm.pop("cm").compute().long())
    m = compute_metrics(ours.matrix, "binary", ["background", "foreground"])
    for key, metric in tm.items():
        assert m[key] == pytest.approx(metric.compute().item(), rel=1e-6), key


def test_whole_split_counts_differ_from_mean_of_batch_scores() -> None:
    batches = [
        (torch.tensor([[[1, 0, 0, 0]]]), torch.tensor([[[1, 0, 0, 0]]])),  # batch IoU 1
        (torch.tensor([[[1, 1, 0, 0]]]), torch.tensor([[[1, 1, 1, 1]]])),  # batch IoU 1/2
    ]
    cm = ConfusionMatrix(2)
    per_batch = []
    for pred, target in batches:
        cm.update(pred, target)
        single = ConfusionMatrix(2)
        single.update(pred, target)
        per_batch.append(compute_metrics(single.matrix, "binary", ["bg", "fg"])["iou"])
    split_iou = compute_metrics(cm.matrix, "binary", ["bg", "fg"])["iou"]
    assert np.mean(per_batch) == pytest.approx(0.75)
    assert split_iou == pytest.approx(3 / 5)  # tp 3, fp 0, fn 2 over the whole split


def test_counts_do_not_depend_on_batching() -> None:
    pred, target = next(_batches(4, 255, n=1, seed=3))
    whole, pieces = ConfusionMatrix(4, 255), ConfusionMatrix(4, 255)
    whole.update(pred, target)
    for i in range(pred.shape[0]):
        pieces.update(pred[i : i + 1], target[i : i + 1])
    assert torch.equal(whole.matrix, pieces.matrix)


def test_per_image_counts_come_from_the_same_bincount() -> None:
    pred, target = next(_batches(4, 255, n=1, seed=5))
    counted = ConfusionMatrix(4, 255, per_image=True)
    counted.update(pred, target)
    counted.update(pred[0], target[0])  # a single (H, W) map is one image
    empty = torch.full_like(target[:1], 255)  # every pixel ignored: the image keeps its row
    counted.update(pred[:1], empty)
    images = counted.image_matrices
    assert images.shape == (pred.shape[0] + 2, 4, 4)
    assert np.array_equal(images.sum(axis=0), counted.matrix.numpy())
    for i in range(pred.shape[0]):
        alone = ConfusionMatrix(4, 255)
        alone.update(pred[i : i + 1], target[i : i + 1])
        assert np.array_equal(images[i], alone.matrix.numpy())
    assert np.array_equal(images[pred.shape[0]], images[0]) and images[-1].sum() == 0
    plain = ConfusionMatrix(4, 255)
    plain.update(pred, target)
    assert plain.image_matrices.shape == (0, 4, 4)  # only kept when asked for


def test_image_counts_per_class_from_matrices() -> None:
    from ablate.metrics.scores import image_counts

    # rows target, columns prediction; one image
    m = np.array([[[5, 1, 0], [2, 7, 1], [0, 0, 4]]])
    counts = image_counts(m, "multiclass")
    # class 1: tp 7, fp 1 (target 0 predicted 1), fn 3 (target 1 predicted 0 or 2), tn 9
    assert counts.shape == (1, 3, 4) and counts[0, 1].tolist() == [7, 1, 3, 9]
    binary = image_counts(np.array([[[10, 2], [3, 5]]]), "binary")
    assert binary.tolist() == [[[5, 2, 3, 10]]]  # positive class: tp, fp, fn, tn


def test_reset_bad_ids_and_shapes() -> None:
    cm = ConfusionMatrix(3, ignore_index=255)
    cm.update(torch.tensor([[0, 1]]), torch.tensor([[0, 255]]))
    assert cm.matrix.sum() == 1
    cm.reset()
    assert cm.matrix.sum() == 0
    with pytest.raises(ValueError, match="outside"):
        cm.update(torch.tensor([[0, 3]]), torch.tensor([[0, 1]]))  # prediction 3 of 3 classes
    with pytest.raises(ValueError, match="outside"):
        cm.update(torch.tensor([[0, 1]]), torch.tensor([[0, 7]]))  # a target that is not ignored
    with pytest.raises(ValueError, match="shape"):
        cm.update(torch.zeros(1, 2, dtype=torch.long), torch.zeros(1, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="distinct"):
        compute_metrics(np.eye(2, dtype=np.int64), "multiclass", ["Road", "road"])


def test_predict() -> None:
    logits = torch.tensor([-2.0, -0.1, 0.1, 3.0]).reshape(1, 1, 2, 2)
    assert predict(logits, "binary").tolist() == [[[0, 0], [1, 1]]]
    assert predict(logits, "binary", threshold=0.9).tolist() == [[[0, 0], [0, 1]]]
    assert predict(logits.half(), "binary").dtype == torch.int64
    multi = torch.zeros(1, 3, 1, 2)
    multi[0, 2, 0, 0] = 1.0
    multi[0, 1, 0, 1] = 1.0
    assert predict(multi, "multiclass").tolist() == [[[2, 1]]]
    with pytest.raises(ValueError):
        predict(multi, "binary")


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_counts_equal_cpu_counts_in_deterministic_mode() -> None:
    previous = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        cpu, gpu = ConfusionMatrix(5, 255), ConfusionMatrix(5, 255)  # gpu follows its input
        for pred, target in _batches(5, 255):
            cpu.update(pred, target)
            gpu.update(pred.cuda(), target.cuda())
        assert gpu.matrix.device.type == "cuda"
        assert torch.equal(cpu.matrix, gpu.matrix.cpu())
    finally:
        torch.use_deterministic_algorithms(previous)


def test_threshold_counts_equal_a_matrix_per_threshold():
    """One bincount of threshold codes gives, at every threshold, the counts of thresholding
    the probabilities there (ignored pixels, NaN scores and per-image counts included)."""
    from ablate.metrics.counts import ThresholdCounts, threshold_codes

    generator = torch.Generator().manual_seed(3)
    thresholds = [0.2, 0.5, 0.8]
    scan = ThresholdCounts(thresholds, ignore_index=255, per_image=True)
    direct = {t: ConfusionMatrix(2, ignore_index=255, per_image=True) for t in thresholds}
    for _ in range(3):
        scores = torch.rand((4, 9, 7), generator=generator)
        scores[0, 0, :3] = torch.tensor([0.2, 0.5, float("nan")])  # ties and NaN
        target = torch.randint(0, 2, (4, 9, 7), generator=generator)
        target[1, 2:5] = 255
        target[2] = 255  # an image with every pixel ignored keeps its (empty) row
        scan.update(threshold_codes(scores, torch.tensor(thresholds)), target)
        for t, matrix in direct.items():
            matrix.update((scores > t).long(), target)
    for t, matrix in direct.items():
        assert torch.equal(scan.at(t).matrix, matrix.matrix), t
        assert np.array_equal(scan.at(t).image_matrices, matrix.image_matrices), t
    assert len(scan.at(0.5).image_matrices) == 12
    with pytest.raises(ValueError, match="ascending"):
        ThresholdCounts([0.5, 0.2])


def test_count_pairs_rejects_ids_out_of_range_but_not_ignored_ones():
    from ablate.metrics.counts import count_pairs

    target = torch.tensor([[0, 1, 255]])
    codes = torch.tensor([[1, 0, 7]])  # 7 sits on an ignored pixel: not counted, no error
    assert count_pairs(target, codes, 2, 2, ignore_index=255).tolist() == [[0, 1], [1, 0]]
    with pytest.raises(ValueError, match="outside 0..1"):
        count_pairs(torch.tensor([[0, 2]]), torch.tensor([[0, 0]]), 2, 2)
    with pytest.raises(ValueError, match=r"\[5\]"):
        count_pairs(torch.tensor([[0, 1]]), torch.tensor([[5, 0]]), 2, 2, ignore_index=255)
