"""A user's own model, trained through `model.custom: tests.custom_models:TinyUNet` (or
`SlowUNet`)."""

from __future__ import annotations

import torch
from torch import nn


def _block(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU())


class TinyUNet(nn.Module):
    """Two-level U-Net: enough to learn the synthetic shapes, small enough for tests."""

    def __init__(self, in_channels: int, classes: int, width: int = 8):
        super().__init__()
        self.encoder = nn.ModuleDict({"down1": _block(in_channels, width),
                                      "down2": _block(width, 2 * width)})
        self.up = nn.ConvTranspose2d(2 * width, width, 2, stride=2)
        self.decoder = _block(2 * width, width)
        self.head = nn.Conv2d(width, classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skip = self.encoder["down1"](x)
        deep = self.encoder["down2"](nn.functional.max_pool2d(skip, 2))
        return self.head(self.decoder(torch.cat([self.up(deep), skip], dim=1)))


class DiesInTraining(TinyUNet):
    """Kills its own process at the first training step, as the system's out-of-memory
    killer would (evaluation passes, such as the preflight's, run normally)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            import os
            import signal

            os.kill(os.getpid(), signal.SIGKILL)
        return super().forward(x)


class SlowUNet(TinyUNet):
    """TinyUNet whose training steps also sleep ``delay`` seconds: epochs of a known length
    that do not depend on the machine's load (tests that must act in the middle of a trial)."""

    def __init__(self, in_channels: int, classes: int, width: int = 8, delay: float = 0.5):
        super().__init__(in_channels, classes, width)
        self.delay = delay

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and torch.is_grad_enabled():
            import time

            time.sleep(self.delay)
        return super().forward(x)
