"""The run's curves figure shows the trend of the losses: clipped or log scale."""

from __future__ import annotations

import pytest

from ablate.training.figures import curves, loss_scale


def test_one_large_first_epoch_is_clipped_off_the_axis():
    scale, limits = loss_scale([50.0, 1.0, 0.9, 0.8, 0.7, 0.65, 1.1, 0.95, 0.85, 0.75])
    assert scale == "linear" and limits is not None
    low, high = limits
    assert 0.5 < low < 0.65 and 1.1 < high < 1.3  # the bulk, with a margin; 50 is off


def test_losses_spanning_orders_of_magnitude_use_a_log_scale():
    assert loss_scale([1e3, 10.0, 1.0, 0.1]) == ("log", None)


def test_an_outlying_first_epoch_of_both_curves_is_clipped_in_a_short_run():
    # 4 epochs of train and val loss: the two epoch-0 values are a quarter of the points
    scale, limits = loss_scale([40.0, 1.0, 0.8, 0.7, 30.0, 0.9, 0.85, 0.8])
    assert scale == "linear" and limits is not None and limits[1] < 2


@pytest.mark.parametrize("values", [[0.9, 0.8, 0.7, 0.6], [1.0, 1.0, 1.0], [0.5],
                                    [2.0, 1.5, 1.2, 1.0, 0.9, 0.85]])
def test_ordinary_losses_keep_the_full_linear_axis(values):
    assert loss_scale(values) == ("linear", None)


def test_curves_png_is_written_with_an_outlying_epoch(tmp_path):
    history = [{"train_loss": t, "val_loss": v, "lr": 1e-3, "val_iou": 0.1 * i}
               for i, (t, v) in enumerate([(40.0, 30.0), (1.0, 0.9), (0.8, 0.85), (0.7, 0.8)])]
    curves(history, tmp_path / "curves.png")
    assert (tmp_path / "curves.png").stat().st_size > 1000
