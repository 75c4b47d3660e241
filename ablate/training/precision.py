"""Mixed precision: which autocast dtype a run's own GPU does natively.

bf16 needs no loss scaling, but only GPUs of compute capability 8.0 (Ampere) and newer have
bf16 tensor cores and bf16 cuDNN convolutions. ``torch.cuda.is_bf16_supported()`` is also
true on older cards (a T4, sm_75, emulates it), where bf16 convolutions fail or run slower
than fp32; those cards get fp16 with a GradScaler instead.
"""

from __future__ import annotations

import torch

NATIVE_BF16 = (8, 0)  # the first compute capability with bf16 tensor cores (A100)
NAMES = {torch.bfloat16: "bf16", torch.float16: "fp16"}


def amp_dtype(device: torch.device, enabled: bool) -> torch.dtype | None:
    """The autocast dtype of a run on ``device`` with ``optim.amp`` = ``enabled``: None off
    CUDA or with AMP off; bf16 where that GPU (not the current one) has native bf16, else
    fp16 (trained with a GradScaler)."""
    if not enabled or device.type != "cuda":
        return None
    capability = torch.cuda.get_device_capability(device)
    return torch.bfloat16 if tuple(capability) >= NATIVE_BF16 else torch.float16


def dtype_name(dtype: torch.dtype | None) -> str:
    """``bf16``, ``fp16`` or ``none`` (full fp32): what the run logs as its precision."""
    return NAMES.get(dtype, "none") if dtype is not None else "none"
