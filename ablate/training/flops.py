"""Model cost at the evaluation input size: params and GFLOPs (fvcore)."""

from __future__ import annotations

from typing import Any

from ablate.spec import RunConfig
from ablate.training.models import build_model, count_params, model_flops


def input_shape(config: RunConfig) -> tuple[int, int, int]:
    """(C, H, W) the model sees at evaluation; reads one sample only when the spec can't tell."""
    data = config.data
    if data.synthetic is not None:
        channels = data.synthetic.channels + len(data.derived.names)
        side = round(data.synthetic.size * data.upscale)
        height, width = data.size or (side, side)
        return channels, height, width
    from ablate.data import load_data

    splits = load_data(data)
    sample = splits.splits["val"][0]
    height, width = data.size or sample.image.shape[:2]
    return splits.in_channels, int(height), int(width)


def model_cost(config: RunConfig) -> dict[str, Any]:
    """``{"params", "gflops", "input"}`` of the configured model (one multiply-add = one FLOP)."""
    shape = input_shape(config)
    model = build_model(config.model, shape[0], config.data.out_channels)
    return {
        "params": count_params(model),
        "gflops": model_flops(config.model, model, shape, config.data.out_channels) / 1e9,
        "input": list(shape),
    }
