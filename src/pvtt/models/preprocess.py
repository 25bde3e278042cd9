"""Frame preprocessing on the model's device: uint8 RGB frames → normalized float tensors.

Done with torch ops rather than the transformers image processors so a clip is resized on the
GPU in one call per batch (no PIL round trip per frame) and no torchvision is needed.
"""

from __future__ import annotations

from typing import Any

import numpy as np

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def frames_to_tensor(frames: np.ndarray, device: Any) -> Any:
    """``(N, H, W, 3)`` uint8 → ``(N, 3, H, W)`` float32 in [0, 1] on ``device``."""
    import torch

    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be (N, H, W, 3) uint8 RGB, got {frames.shape} {frames.dtype}")
    tensor = torch.from_numpy(np.ascontiguousarray(frames)).to(device, non_blocking=True)
    return tensor.permute(0, 3, 1, 2).float().div_(255.0)


def resize_normalize(images: Any, size: tuple[int, int], dtype: Any, mean: tuple[float, ...] = IMAGENET_MEAN,
                     std: tuple[float, ...] = IMAGENET_STD, mode: str = "bicubic") -> Any:
    """Resize ``(N, 3, H, W)`` [0, 1] images to ``size`` (h, w), normalize by ``mean``/``std``, cast to ``dtype``."""
    import torch
    import torch.nn.functional as F

    if tuple(images.shape[-2:]) != tuple(size):
        kwargs = {"align_corners": False} if mode in ("bilinear", "bicubic") else {}
        images = F.interpolate(images, size=size, mode=mode, antialias=mode in ("bilinear", "bicubic"), **kwargs)
        images = images.clamp_(0.0, 1.0)
    mean_t = torch.tensor(mean, device=images.device, dtype=images.dtype).view(1, -1, 1, 1)
    std_t = torch.tensor(std, device=images.device, dtype=images.dtype).view(1, -1, 1, 1)
    return ((images - mean_t) / std_t).to(dtype)


def fit_multiple(height: int, width: int, target: int, multiple: int, keep: str = "short") -> tuple[int, int]:
    """Scale ``(height, width)`` so the ``short`` (or ``long``) side is about ``target``, both sides multiples of ``multiple``."""
    side = min(height, width) if keep == "short" else max(height, width)
    scale = target / side
    new_h = max(multiple, int(round(height * scale / multiple)) * multiple)
    new_w = max(multiple, int(round(width * scale / multiple)) * multiple)
    return new_h, new_w
