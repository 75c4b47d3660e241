"""Model cost with fvcore (one multiply-add = one FLOP)."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from ablate.training.models import count_flops


@pytest.mark.slow
def test_segformer_mit_b2_params(cli, write_spec):
    path = write_spec()
    result = cli(
        "flops", path, "--json",
        "--set", "data={task: multiclass, num_classes: 19, synthetic: {channels: 3}, "
        "size: [256, 864]}",
        "--set", "model={arch: Segformer, encoder: mit_b2, decoder_segmentation_channels: 768}",
        "--set", "loss.weights={ce: 1}", "--set", "objective.metric=val_miou", "--set", "search={}",
    )
    assert result.exit_code == 0, result.output
    cost = json.loads(result.output)
    assert cost["params"] == 27_361_235
    assert cost["input"] == [3, 256, 864]
    assert cost["gflops"] > 0


def test_conv_flops_count_multiply_adds():
    conv = nn.Conv2d(2, 4, kernel_size=3, padding=1, bias=False)
    # every output pixel: 2 * 3 * 3 multiply-adds per output channel
    assert count_flops(conv, (2, 8, 8)) == 4 * 8 * 8 * 2 * 3 * 3
    assert torch.is_grad_enabled()


def test_model_flops_counted_once_per_shape():
    from ablate.spec import ModelSpec
    from ablate.training.models import _FLOPS, build_model, model_flops

    spec = ModelSpec(arch="Unet", encoder="resnet18", decoder_channels=[16, 8, 8, 8, 8])
    model = build_model(spec, 1, 1)
    first = model_flops(spec, model, (1, 32, 32), 1)
    assert first == count_flops(build_model(spec, 1, 1), (1, 32, 32))
    cached = len(_FLOPS)
    # another trial of the same shape (other weights) reads the count; a new size counts anew
    assert model_flops(spec, build_model(spec, 1, 1), (1, 32, 32), 1) == first
    assert len(_FLOPS) == cached
    assert model_flops(spec, model, (1, 64, 64), 1) == 4 * first
    assert len(_FLOPS) == cached + 1


def test_latency_timed_once_per_shape_device_and_layout(monkeypatch):
    import ablate.training.models as models
    from ablate.spec import ModelSpec

    timed = []
    real = models.latency_stats

    def counting(*args, **kwargs):
        timed.append(args[1])
        return real(*args, **kwargs)

    monkeypatch.setattr(models, "latency_stats", counting)
    monkeypatch.setattr(models, "_LATENCY", {})
    spec = ModelSpec(arch="Unet", encoder="resnet18", decoder_channels=[16, 8, 8, 8, 8])
    cpu = torch.device("cpu")
    first = models.model_latency(spec, models.build_model(spec, 1, 1), (1, 32, 32), 1, cpu, 2)
    assert len(first) == 2 and first[0] > 0
    # another trial of the same shape (other weights) reads the figure
    assert models.model_latency(spec, models.build_model(spec, 1, 1), (1, 32, 32), 1, cpu,
                                2) == first
    assert len(timed) == 1
    # another input size, memory format or repeat count is timed anew
    model = models.build_model(spec, 1, 1)
    models.model_latency(spec, model, (1, 64, 64), 1, cpu, 2)
    models.model_latency(spec, model, (1, 32, 32), 1, cpu, 2, torch.channels_last)
    models.model_latency(spec, model, (1, 32, 32), 1, cpu, 3)
    assert len(timed) == 4
