"""Depth Anything V2 (transformers ``DepthAnythingForDepthEstimation``), batched per frame, then stabilized."""

from __future__ import annotations

from typing import Any

import numpy as np

from pvtt.depth import DepthEstimator
from pvtt.depth.temporal import stabilize_depth_torch
from pvtt.models.loading import batches, load_pretrained
from pvtt.models.preprocess import fit_multiple, frames_to_tensor, resize_normalize
from pvtt.types import Clip


class DepthAnythingEstimator(DepthEstimator):
    """Relative depth of every frame (network input: short side ``input_size``, sides multiples of 14)."""

    name = "depth-anything"

    def load(self) -> tuple[Any, Any]:
        from transformers import AutoModelForDepthEstimation

        s = self.settings
        return load_pretrained(AutoModelForDepthEstimation, s.model, s.allow_download, self.stage, dtype=self.dtype), None

    def predict(self, frames: np.ndarray) -> np.ndarray:
        """Raw per-frame predictions ``(T, H, W)`` float32, each frame with its own scale (no stabilization)."""
        import torch
        import torch.nn.functional as F

        self._require_setup()
        if frames.ndim != 4 or len(frames) == 0:
            raise ValueError(f"frames must be a non-empty (T, H, W, 3) array, got shape {frames.shape}")
        height, width = frames.shape[1:3]
        size = fit_multiple(height, width, self.settings.input_size, 14, keep="short")
        out = self._host((len(frames), height, width))
        with torch.inference_mode():
            for sl in batches(len(frames), self.settings.batch_size):
                pixels = resize_normalize(frames_to_tensor(frames[sl], self.device), size, self.dtype)
                depth = self.model(pixel_values=pixels).predicted_depth  # (N, h, w)
                depth = F.interpolate(depth[:, None].float(), size=(height, width), mode="bilinear",
                                      align_corners=False)[:, 0]
                out[sl].copy_(depth, non_blocking=True)
        return self._finish(out)

    def _host(self, shape: tuple[int, ...]):
        """A host buffer for the output; page-locked on CUDA so the copies run at full bus speed."""
        import torch

        return torch.empty(shape, dtype=torch.float32, pin_memory=torch.device(self.device).type == "cuda")

    def _finish(self, out) -> np.ndarray:
        import torch

        if torch.device(self.device).type == "cuda":
            torch.cuda.synchronize(self.device)
        return out.numpy()

    def estimate(self, clip: Clip) -> np.ndarray:
        """Predict, stabilize at the network's resolution on the model's device, then upsample per batch.

        Stabilizing before upsampling keeps the per-frame fit and the EMA on the GPU and sends each
        full-resolution map to the host once (profiled: the full-size host round trip and a NumPy
        stabilization cost more than the network itself).
        """
        import torch
        import torch.nn.functional as F

        self._require_setup()
        frames = clip.frames
        if frames.ndim != 4 or len(frames) == 0:
            raise ValueError(f"frames must be a non-empty (T, H, W, 3) array, got shape {frames.shape}")
        height, width = frames.shape[1:3]
        size = fit_multiple(height, width, self.settings.input_size, 14, keep="short")
        with torch.inference_mode():
            small = []
            for sl in batches(len(frames), self.settings.batch_size):
                pixels = resize_normalize(frames_to_tensor(frames[sl], self.device), size, self.dtype)
                small.append(self.model(pixel_values=pixels).predicted_depth.float())
            stable = stabilize_depth_torch(torch.cat(small), ema=self.settings.ema, align=self.settings.align)
            out = self._host((len(frames), height, width))
            for sl in batches(len(frames), self.settings.batch_size):
                up = F.interpolate(stable[sl][:, None], size=(height, width), mode="bilinear", align_corners=False)
                out[sl].copy_(up[:, 0], non_blocking=True)
        return self._finish(out)
