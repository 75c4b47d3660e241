"""ablate.losses: every term, the weighted total, ignored pixels, class weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ablate.losses import build_loss, class_weights
from ablate.spec import LossSpec

C = 4
BINARY_TERMS = ["bce", "dice", "jaccard", "focal", "lovasz", "tversky"]
MULTICLASS_TERMS = ["ce", "dice", "jaccard", "focal", "lovasz", "tversky"]
CASES = [("binary", t, 255) for t in BINARY_TERMS] + [
    ("multiclass", t, ii) for t in MULTICLASS_TERMS for ii in (255, 0)
]


def spec(**raw) -> LossSpec:
    return LossSpec.model_validate(raw)


def make_batch(task: str, ignore_index: int | None, seed: int = 0):
    """Logits (B, K, H, W) and int64 targets with about 20 % ignored pixels."""
    g = torch.Generator().manual_seed(seed)
    k = 1 if task == "binary" else C
    logits = torch.randn(2, k, 12, 12, generator=g) * 2
    target = torch.randint(0, 2 if task == "binary" else C, (2, 12, 12), generator=g)
    ignored = torch.rand(target.shape, generator=g) < 0.2
    if ignore_index is not None:
        target[ignored] = ignore_index
    return logits.requires_grad_(), target, target == ignore_index


@pytest.mark.parametrize(("task", "term", "ignore_index"), CASES)
def test_term_is_finite_scalar_with_gradients(task: str, term: str, ignore_index: int) -> None:
    loss = build_loss(spec(weights={term: 1.0}), task, C, ignore_index)
    logits, target, _ = make_batch(task, ignore_index)
    total, parts = loss(logits, target)
    assert total.ndim == 0 and torch.isfinite(total)
    assert list(parts) == [term] and not parts[term].requires_grad
    total.backward()
    assert torch.isfinite(logits.grad).all() and logits.grad.abs().sum() > 0


@pytest.mark.parametrize(("task", "term", "ignore_index"), CASES)
def test_ignored_pixels_change_nothing(task: str, term: str, ignore_index: int) -> None:
    extra = {"jaccard": {"pos_weight": 1.0, "neg_weight": 0.7}, "focal": {"alpha": 0.25}}
    loss = build_loss(spec(weights={term: 1.0}, **extra), task, C, ignore_index)
    logits, target, ignored = make_batch(task, ignore_index, seed=1)
    assert ignored.any()
    noise = torch.randn(logits.shape) * 10 * ignored.unsqueeze(1)
    moved = (logits.detach() + noise).requires_grad_()
    before, _ = loss(logits, target)
    after, _ = loss(moved, target)
    torch.testing.assert_close(after, before)
    after.backward()
    assert (moved.grad * ignored.unsqueeze(1)).abs().max() == 0


@pytest.mark.parametrize("task", ["binary", "multiclass"])
def test_total_is_weighted_sum_of_reported_terms(task: str) -> None:
    first = "bce" if task == "binary" else "ce"
    weights = {first: 1.5, "dice": 0.5, "focal": 2.0, "lovasz": 0.25, "tversky": 0.1}
    loss = build_loss(spec(weights=weights), task, C, 255)
    logits, target, _ = make_batch(task, 255)
    total, parts = loss(logits, target)
    assert set(parts) == set(weights)
    expected = sum(weights[name] * value for name, value in parts.items())
    torch.testing.assert_close(total.detach(), expected)


def test_zero_weight_term_is_not_built() -> None:
    loss = build_loss(spec(weights={"ce": 1.0, "dice": 0.0}), "multiclass", C, None)
    assert list(loss.terms) == ["ce"]
    _, parts = loss(*make_batch("multiclass", None)[:2])
    assert list(parts) == ["ce"]
    with pytest.raises(ValueError, match="every loss weight is 0"):
        build_loss(spec(weights={"dice": 0.0}), "multiclass", C, None)
    with pytest.raises(ValueError, match="not for a binary"):
        build_loss(spec(weights={"ce": 1.0}), "binary", 2, None)


def test_bce_pos_and_neg_weights_follow_the_formula() -> None:
    loss = build_loss(
        spec(weights={"bce": 1.0}, bce={"pos_weight": 3.0, "neg_weight": 0.5}), "binary", 2, 255
    )
    logits, target, ignored = make_batch("binary", 255, seed=2)
    value, _ = loss(logits, target)
    x, keep = logits.detach()[:, 0][~ignored], ~ignored
    y = target[keep].float()
    per_pixel = -(3.0 * y * torch.sigmoid(x).log() + 0.5 * (1 - y) * (1 - torch.sigmoid(x)).log())
    torch.testing.assert_close(value, per_pixel.mean())


def _soft_jaccard_loss(p: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    inter = (p * y).sum()
    return 1 - inter / (p.sum() + y.sum() - inter)


def test_binary_jaccard_negative_side_is_jaccard_of_the_complement() -> None:
    logits, target, ignored = make_batch("binary", 255, seed=3)
    p = torch.sigmoid(logits.detach()[:, 0])[~ignored]
    y = target[~ignored].float()
    pos = _soft_jaccard_loss(p, y)
    neg = _soft_jaccard_loss(1 - p, 1 - y)

    only_neg = spec(weights={"jaccard": 1.0}, jaccard={"pos_weight": 0.0, "neg_weight": 1.0})
    only_pos = spec(weights={"jaccard": 1.0}, jaccard={"pos_weight": 1.0, "neg_weight": 0.0})
    both = spec(weights={"jaccard": 1.0}, jaccard={"pos_weight": 0.3, "neg_weight": 2.0})
    torch.testing.assert_close(build_loss(only_neg, "binary", 2, 255)(logits, target)[0], neg)
    torch.testing.assert_close(build_loss(only_pos, "binary", 2, 255)(logits, target)[0], pos)
    torch.testing.assert_close(
        build_loss(both, "binary", 2, 255)(logits, target)[0], 0.3 * pos + 2.0 * neg
    )


def test_class_weight_formulas() -> None:
    counts = np.array([10, 30, 60, 0])
    inverse = class_weights(counts, "inverse")
    raw = np.array([1 / 0.1, 1 / 0.3, 1 / 0.6, 0.0])
    np.testing.assert_allclose(inverse, raw * 4 / raw.sum())
    assert inverse.sum() == pytest.approx(4) and inverse[3] == 0

    root = class_weights(counts, "inverse_sqrt")
    raw = np.array([0.1**-0.5, 0.3**-0.5, 0.6**-0.5, 0.0])
    np.testing.assert_allclose(root, raw * 4 / raw.sum())

    np.testing.assert_allclose(class_weights(np.array([5, 5, 5]), "inverse"), [1, 1, 1])
    with pytest.raises(ValueError):
        class_weights(counts, "log")
    with pytest.raises(ValueError):
        class_weights(np.zeros(3), "inverse")


def test_ce_class_weights_from_counts_and_list() -> None:
    counts = np.array([100, 50, 25, 25])
    logits, target, _ = make_batch("multiclass", 255, seed=4)
    inverse = spec(weights={"ce": 1.0}, ce={"class_weights": "inverse"})
    with pytest.raises(ValueError, match="class_pixels"):
        build_loss(inverse, "multiclass", C, 255)
    value, _ = build_loss(inverse, "multiclass", C, 255, class_pixels=counts)(logits, target)
    w = torch.tensor(class_weights(counts, "inverse"), dtype=torch.float32)
    torch.testing.assert_close(value, F.cross_entropy(logits, target, weight=w, ignore_index=255))

    listed = spec(weights={"ce": 1.0}, ce={"class_weights": [1.0, 2.0, 0.5, 1.0]})
    value, _ = build_loss(listed, "multiclass", C, 255)(logits, target)
    w = torch.tensor([1.0, 2.0, 0.5, 1.0])
    torch.testing.assert_close(value, F.cross_entropy(logits, target, weight=w, ignore_index=255))


@pytest.mark.parametrize("task", ["binary", "multiclass"])
def test_fully_ignored_batch_gives_zero_not_nan(task: str) -> None:
    terms = BINARY_TERMS if task == "binary" else MULTICLASS_TERMS
    loss = build_loss(spec(weights=dict.fromkeys(terms, 1.0)), task, C, 255)
    logits, target, _ = make_batch(task, 255)
    total, parts = loss(logits, torch.full_like(target, 255))
    assert total.item() == 0 and all(v.item() == 0 for v in parts.values())
    total.backward()
    assert torch.isfinite(logits.grad).all()


def test_tversky_with_gamma_below_one_keeps_finite_gradients_on_empty_foreground() -> None:
    # smp's own TverskyLoss back-propagates NaN here (0 ** gamma at a zeroed loss).
    loss = build_loss(spec(weights={"tversky": 1.0}, tversky={"gamma": 0.75}), "binary", 2, None)
    logits = torch.randn(2, 1, 8, 8, requires_grad=True)
    total, _ = loss(logits, torch.zeros(2, 8, 8, dtype=torch.long))
    total.backward()
    assert total.item() == 0 and torch.isfinite(logits.grad).all()


def test_shapes_are_checked() -> None:
    loss = build_loss(spec(weights={"ce": 1.0}), "multiclass", C, None)
    with pytest.raises(ValueError, match="logits"):
        loss(torch.randn(2, C + 1, 4, 4), torch.zeros(2, 4, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="target"):
        loss(torch.randn(2, C, 4, 4), torch.zeros(2, 1, 4, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="binary classes"):
        build_loss(spec(weights={"bce": 1.0}), "binary", 2, 1)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("task", ["binary", "multiclass"])
def test_cuda_under_autocast_matches_cpu(task: str) -> None:
    terms = BINARY_TERMS if task == "binary" else MULTICLASS_TERMS
    loss = build_loss(spec(weights=dict.fromkeys(terms, 1.0)), task, C, 255)
    logits, target, _ = make_batch(task, 255)
    _, cpu_parts = loss(logits.half().float(), target)  # the same fp16-rounded input
    with torch.autocast("cuda", dtype=torch.float16):
        _, gpu_parts = loss.cuda()(logits.detach().cuda().half(), target.cuda())
    for name in terms:
        torch.testing.assert_close(gpu_parts[name].cpu(), cpu_parts[name], rtol=1e-4, atol=1e-5)


def test_registry_covers_the_spec_vocabulary():
    import typing

    from ablate.losses import TERMS
    from ablate.spec.sections import LossTerm

    assert set(TERMS) == set(typing.get_args(LossTerm))
    assert {n for n, t in TERMS.items() if "binary" in t.tasks} == set(BINARY_TERMS)
    assert {n for n, t in TERMS.items() if "multiclass" in t.tasks} == set(MULTICLASS_TERMS)
